"""The DaemonSet lands on every Linux node: `nodeagent check-placement` on the rendered manifests, against
every node list in the shared fixtures and the edited ones in data/ (1.24+ control-plane taint, GPU and
spot pools, a Windows node, NotReady/unreachable/cordoned/pressure nodes)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, require_shared
from tests.deploy.conftest import DATA, MANIFESTS

NODES = FIXTURES / "nodes"
NODE_LISTS = {
    "sonobuoy-kind-1.20": NODES / "sonobuoy-kind-3node-v1.20.nodelist.json",
    "openshift-4.7": NODES / "openshift-4.7-gcp-6node",
    "popeye-edited": NODES / "popeye-5node-list.yaml",
    "k9s-minikube-1.15": NODES / "k9s-minikube-1node-v1.15.json",
    "kind-1.28-control-plane-taint": DATA / "kind-1.28-control-plane-taint.nodelist.json",
    "tainted-pools": DATA / "tainted-pools.nodelist.json",
    "node-trouble": DATA / "node-trouble.nodelist.json",
}
WINDOWS_NODES = {("tainted-pools", "win-1")}
# Nodes in a state that may keep any pod from starting: the DaemonSet controller still creates the agent's
# pod there (no taint or selector keeps it out); the checker may report it pending, for the node's state
# alone (these rules), never for a taint, selector, affinity or host port.
UNHEALTHY_NODES = {
    ("sonobuoy-kind-1.20", "kind-worker"): {"notReady"},  # NotReady for lack of CNI: hostNetwork pods start
    ("popeye-edited", "n3"): {"resources"},  # posts no status.allocatable
    ("popeye-edited", "n4"): {"notReady", "resources"},  # Ready=False, no allocatable
    ("popeye-edited", "n5"): {"notReady", "resources"},  # no Ready condition, 10Mi allocatable in all
    ("node-trouble", "notready-1"): {"notReady"},  # CNI not ready, as kind-worker
    ("node-trouble", "unreachable-1"): {"notReady"},  # the kubelet stopped posting status
}
CHECK_TIMEOUT = 120


def check_placement(manifests: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "nodeagent", "check-placement", "-f", str(manifests), "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), f"check-placement failed ({result.returncode}): {result.stderr}"
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def rendered(base_objects: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rendered") / "nodeagent.yaml"
    path.write_text(yaml.safe_dump_all(base_objects))
    return path


def verdicts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [daemonset] = report["daemonsets"]
    assert (daemonset["namespace"], daemonset["name"]) == ("nodeagent", "nodeagent")
    return {node["name"]: node for node in daemonset["nodes"]}


@pytest.mark.parametrize("name", NODE_LISTS)
def test_daemonset_gets_a_pod_on_every_linux_node(name: str, rendered: Path) -> None:
    nodes = require_shared(NODE_LISTS[name])
    status, report = check_placement(rendered, "--nodes", str(nodes))
    results = verdicts(report)
    assert results, "no nodes were read"
    for node, result in results.items():
        rules = {reason["rule"] for reason in result["reasons"]}
        if (name, node) in WINDOWS_NODES:
            assert (result["verdict"], rules) == ("excluded", {"nodeAffinity"}), result
        elif (name, node) in UNHEALTHY_NODES:
            assert result["verdict"] in ("runs", "pending"), result
            assert rules <= UNHEALTHY_NODES[name, node], result
        else:
            assert result["verdict"] == "runs", result
    # A Windows node is excluded by design (issue 13): not a failure.
    assert status == (0 if all(r["verdict"] == "runs" or r["by_design"] for r in results.values()) else 1)


def test_only_windows_is_left_out_on_purpose(rendered: Path) -> None:
    status, _ = check_placement(rendered, "--nodes", str(NODE_LISTS["tainted-pools"]), "--allow-excluded")
    assert status == 0


def test_fits_beside_the_system_pods_already_running(rendered: Path) -> None:
    """With kind's real kube-system pods on the nodes: resources, pod counts and host port 9100 are free."""
    nodes = require_shared(NODE_LISTS["sonobuoy-kind-1.20"])
    pods = require_shared(NODES / "sonobuoy-kind-3node-v1.20.kube-system-pods.json")
    _, report = check_placement(rendered, "--nodes", str(nodes), "--pods", str(pods))
    results = verdicts(report)
    assert results["kind-control-plane"]["verdict"] == "runs"
    assert results["kind-worker2"]["verdict"] == "runs"
    assert {r["rule"] for r in results["kind-worker"]["reasons"]} <= {"notReady"}


def test_kustomization_directory_is_accepted_as_is() -> None:
    """The README's form: -f manifests/ (rendered by the checker through kubectl kustomize)."""
    status, report = check_placement(MANIFESTS, "--nodes", str(NODE_LISTS["kind-1.28-control-plane-taint"]))
    assert status == 0
    assert {n["verdict"] for n in verdicts(report).values()} == {"runs"}


def test_without_the_tolerations_tainted_nodes_would_be_missed(
    base_objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The check above is not vacuous: the same DaemonSet without its toleration misses the tainted nodes."""
    objects = copy.deepcopy(base_objects)  # the fixture is shared by every test of the session
    daemonset = next(o for o in objects if o["kind"] == "DaemonSet")
    pod_spec = daemonset["spec"]["template"]["spec"]
    daemonset["spec"]["template"]["spec"] = {k: v for k, v in pod_spec.items() if k != "tolerations"}
    untolerant = tmp_path / "untolerant.yaml"
    untolerant.write_text(yaml.safe_dump_all(objects))
    status, report = check_placement(untolerant, "--nodes", str(NODE_LISTS["tainted-pools"]))
    blocked = {name for name, result in verdicts(report).items() if result["verdict"] == "blocked"}
    assert status == 1
    assert blocked == {
        "cp-transition",
        "gpu-a100-1",
        "gke-spot-1",
        "aks-spot-1",
        "karpenter-spot-1",
        "infra-1",
    }
