"""manifests/components/placement-monitor: it renders and validates strictly, runs one replica of
`check-placement --watch` under its own account, and its alerts pass promtool's check and unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from nodeagent.cli import build_parser
from tests.conftest import require_binary
from tests.deploy.conftest import MANIFESTS, find, kustomize
from tests.deploy.crd_schemas import SCHEMAS
from tests.placement.builders import DATA

COMPONENT = MANIFESTS / "components" / "placement-monitor"
ALERTS = COMPONENT / "prometheus-operator"
VERSIONS = ("1.28.0", kubernetes_validate.latest_version())


def render(directory: Path, *components: Path) -> list[dict[str, Any]]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(MANIFESTS, directory)],
                "components": [os.path.relpath(component, directory) for component in components],
            }
        )
    )
    return kustomize(directory)


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(tmp_path_factory.mktemp("monitor"), COMPONENT, ALERTS)


def test_objects_validate_strictly(objects):
    for obj in objects:
        schema = SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if schema is not None:
            jsonschema.validate(obj, schema)
            continue
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "nodeagent", obj["metadata"]["name"]


def test_one_replica_of_the_watch_under_its_own_account(objects):
    deployment = find(objects, "Deployment", "nodeagent-placement-monitor")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "nodeagent-placement-monitor"
    (container,) = pod["containers"]
    assert (
        container["image"]
        == find(objects, "DaemonSet", "nodeagent")["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    args = build_parser("check-placement").parse_args(container["args"])
    assert args.watch and args.metrics_address == ":9102"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = find(objects, "Service", "nodeagent-placement-monitor")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    monitor = find(objects, "ServiceMonitor", "nodeagent-placement-monitor")
    assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    binding = find(objects, "ClusterRoleBinding", "nodeagent-placement-monitor")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "nodeagent-placement-monitor", "namespace": "nodeagent"}
    ]
    # The agents keep no API access.
    daemonset_pod = find(objects, "DaemonSet", "nodeagent")["spec"]["template"]["spec"]
    assert daemonset_pod["automountServiceAccountToken"] is False


def test_alerts_pass_promtool(objects, tmp_path):
    promtool = os.environ.get("PROMTOOL") or require_binary("promtool")
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump(find(objects, "PrometheusRule")["spec"], sort_keys=False)
    )
    check = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and "SUCCESS: 2 rules found" in check.stdout, check.stdout + check.stderr
    shutil.copy(DATA / "monitor" / "alerts.test.yaml", tmp_path)
    test = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert test.returncode == 0, test.stdout + test.stderr
