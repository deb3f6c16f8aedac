"""The monitoring pieces, checked by Prometheus itself: alert rules (promtool check + unit tests) and the
example scrape config (promtool check, and a real Prometheus applying its relabeling)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, free_port, require_binary, running_prometheus
from tests.deploy.conftest import DATA, find

SCRAPE_CONFIG = ROOT / "deploy" / "prometheus-scrape-config.yaml"
PROMTOOL_TIMEOUT = 60
PROMETHEUS_TIMEOUT = 30
# The fields Prometheus documents for a kubernetes_sd_configs entry (used only where promtool was built
# without Kubernetes discovery, as Debian's is).
KUBERNETES_SD_FIELDS = {
    "api_server",
    "role",
    "kubeconfig_file",
    "namespaces",
    "selectors",
    "attach_metadata",
    "basic_auth",
    "authorization",
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "follow_redirects",
    "enable_http2",
    "tls_config",
}
KUBERNETES_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("PROMTOOL") or require_binary("promtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT, cwd=cwd)


def write_rules(objects: list[dict[str, Any]], directory: Path) -> Path:
    """The PrometheusRule's spec is a Prometheus rule file as it stands."""
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump(find(objects, "PrometheusRule")["spec"], sort_keys=False))
    return rules


@pytest.fixture(scope="module")
def operator_objects(all_renderings: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return all_renderings["manifests/components/prometheus-operator"]


def test_alert_rules_pass_promtool_check(operator_objects: list[dict[str, Any]], tmp_path: Path) -> None:
    result = promtool("check", "rules", str(write_rules(operator_objects, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_alerts_fire_when_they_should(operator_objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """data/alerts.test.yaml: each alert fires on its condition (labels and rendered annotations exact)
    and stays quiet on the healthy and idle cases."""
    write_rules(operator_objects, tmp_path)
    shutil.copy(DATA / "alerts.test.yaml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test(operator_objects: list[dict[str, Any]]) -> None:
    rules = find(operator_objects, "PrometheusRule")["spec"]["groups"]
    alerts = {rule["alert"] for group in rules for rule in group["rules"]}
    cases = yaml.safe_load((DATA / "alerts.test.yaml").read_text())["tests"]
    firing = {case["alertname"] for test in cases for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert alerts == firing


def test_alerts_use_the_agents_metric_names(operator_objects: list[dict[str, Any]]) -> None:
    """The names the log shipper registers (without _total for counters), as the rules spell them."""
    from nodeagent.logs import metrics as logs_metrics

    registered = {m._name for m in vars(logs_metrics).values() if hasattr(m, "_name")}
    text = yaml.safe_dump(find(operator_objects, "PrometheusRule")["spec"])
    for counter in ("nodeagent_logs_records_failed", "nodeagent_logs_records_dropped"):
        assert counter in registered and f"{counter}_total" in text
    for gauge in ("nodeagent_logs_bytes_behind", "nodeagent_logs_checkpoint_age_seconds"):
        assert gauge in registered and gauge in text


# ------------------------------------------------------------------------------------------- scrape config


def scrape_config() -> dict[str, Any]:
    return yaml.safe_load(SCRAPE_CONFIG.read_text())


def prometheus_yml(scrape_configs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
            "scrape_configs": scrape_configs,
        },
        sort_keys=False,
    )


def promtool_knows_kubernetes_sd(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.yml"
    probe.write_text(prometheus_yml([{"job_name": "probe", "kubernetes_sd_configs": [{"role": "pod"}]}]))
    result = promtool("check", "config", str(probe))
    return "kubernetes_sd_configs not found" not in result.stdout + result.stderr


def test_scrape_config_passes_promtool_check(tmp_path: Path) -> None:
    """A prometheus.yml holding the example as it stands passes `promtool check config`.

    Debian builds Prometheus without Kubernetes discovery, so there its promtool rejects the field itself.
    Then the job is checked with the discovery swapped for static targets (everything else, relabeling
    included, as written), and the kubernetes_sd_configs entries against Prometheus' documented fields.
    PROMTOOL=/path/to/upstream/promtool checks the file whole.
    """
    jobs = scrape_config()["scrape_configs"]
    assert [job["job_name"] for job in jobs] == ["nodeagent"]
    config = tmp_path / "prometheus.yml"
    if promtool_knows_kubernetes_sd(tmp_path):
        config.write_text(prometheus_yml(jobs))
    else:
        swapped = copy.deepcopy(jobs)
        for job in swapped:
            for sd in job.pop("kubernetes_sd_configs"):
                assert set(sd) <= KUBERNETES_SD_FIELDS, f"unknown kubernetes_sd_configs fields: {set(sd)}"
                assert sd["role"] in KUBERNETES_SD_ROLES
                assert set(sd.get("namespaces", {})) <= {"names", "own_namespace"}
                assert all(isinstance(n, str) for n in sd.get("namespaces", {}).get("names", []))
            job["static_configs"] = [{"targets": ["127.0.0.1:9100"]}]
        config.write_text(prometheus_yml(swapped))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def _endpoint_target(port: int, service: str, port_name: str, node: str) -> dict[str, Any]:
    """What Kubernetes endpoints discovery reports for one endpoint (the labels our relabeling reads)."""
    return {
        "targets": [f"127.0.0.1:{port}"],
        "labels": {
            "__meta_kubernetes_namespace": "nodeagent",
            "__meta_kubernetes_service_name": service,
            "__meta_kubernetes_endpoint_port_name": port_name,
            "__meta_kubernetes_endpoint_ready": "true",
            "__meta_kubernetes_pod_name": f"{service}-{node}",
            "__meta_kubernetes_pod_node_name": node,
        },
    }


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_scrape_config_keeps_only_agents_and_names_them_by_node(tmp_path: Path) -> None:
    """Prometheus applies the example's relabeling to endpoints as Kubernetes discovery would report
    them (fed through file discovery, which Debian's Prometheus has): the agents' metrics port is kept
    and named after its node; other ports and services are dropped."""
    unused_port = free_port()
    targets = [
        _endpoint_target(unused_port, "nodeagent", "metrics", "node-1"),
        _endpoint_target(unused_port, "nodeagent", "debug", "node-1"),
        _endpoint_target(unused_port, "kube-dns", "metrics", "node-1"),
    ]
    (tmp_path / "targets.json").write_text(json.dumps(targets))
    jobs = scrape_config()["scrape_configs"]
    for job in jobs:
        job.pop("kubernetes_sd_configs")
        job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    (tmp_path / "prometheus.yml").write_text(prometheus_yml(jobs))
    with running_prometheus(tmp_path / "prometheus.yml", tmp_path) as (port, proc):
        deadline = time.monotonic() + PROMETHEUS_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {proc.returncode}: "
                    f"{(tmp_path / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                data = _get_json(f"http://127.0.0.1:{port}/api/v1/targets")["data"]
                if len(data["activeTargets"]) + len(data["droppedTargets"]) == len(targets):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus did not discover the targets within {PROMETHEUS_TIMEOUT}s")
            time.sleep(0.2)
    [active] = data["activeTargets"]
    assert active["labels"] == {
        "job": "nodeagent",
        "instance": "node-1",
        "node": "node-1",
        "namespace": "nodeagent",
        "pod": "nodeagent-node-1",
    }
    assert active["scrapeUrl"] == f"http://127.0.0.1:{unused_port}/metrics"
    dropped = sorted(
        (
            t["discoveredLabels"]["__meta_kubernetes_service_name"],
            t["discoveredLabels"]["__meta_kubernetes_endpoint_port_name"],
        )
        for t in data["droppedTargets"]
    )
    assert dropped == [("kube-dns", "metrics"), ("nodeagent", "debug")]
