"""deploy/prometheus-rules.yaml, the plain rule file: generated from the PrometheusRule (one source) and
checked by promtool like the PrometheusRule itself (check rules, and the unit tests of alerts.test.yaml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.deploy.conftest import DATA, find
from tests.deploy.test_prometheus import promtool

RULES = ROOT / "deploy" / "prometheus-rules.yaml"
GENERATOR = ROOT / "deploy" / "generate-prometheus-rules.py"


def test_rule_file_is_generated_from_the_prometheusrule() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_rule_file_holds_the_rendered_prometheusrules_groups(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    rule = find(all_renderings["manifests/components/prometheus-operator"], "PrometheusRule")
    assert yaml.safe_load(RULES.read_text()) == rule["spec"]


def test_rule_file_passes_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_rule_file_passes_the_alert_unit_tests(tmp_path: Path) -> None:
    shutil.copy(RULES, tmp_path / "rules.yaml")  # the name alerts.test.yaml's rule_files gives
    shutil.copy(DATA / "alerts.test.yaml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
