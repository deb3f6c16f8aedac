"""Advice that never makes things worse: foreign platforms are excluded by design and fixed with node
selection, never a toleration; sidecar host ports count; kubectl conventions; `-o patch` applied makes the
DaemonSets run on every node that can run them."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nodeagent.placement.cli import add_arguments, parse_duration, run
from nodeagent.placement.matching import untolerated_taints
from nodeagent.placement.patch import LIFECYCLE_TAINT_PREFIXES
from nodeagent.placement.rules import Rule, Verdict, evaluate, index_usage
from tests.conftest import require_binary
from tests.placement.builders import (
    DAEMONSETS,
    MODERN_NODES,
    MODERN_PODS,
    SEEDS,
    make_ds,
    make_node,
    make_pod,
    node_obj,
    read_objects,
)

ROOT = Path(__file__).resolve().parents[2]
WINDOWS_TAINT = {"key": "os", "value": "windows", "effect": "NoSchedule"}
FIXTURE_DAEMONSETS = sorted(DAEMONSETS.glob("*.yaml")) + sorted(SEEDS.glob("*.yaml"))


@pytest.fixture
def nodes_file(tmp_path: Path) -> Path:
    """The modern cluster plus a Windows node tainted os=windows:NoSchedule and an arm64 Linux node."""
    nodes = read_objects(MODERN_NODES)
    nodes.append(
        node_obj(
            "win-tainted",
            labels={"kubernetes.io/os": "windows", "kubernetes.io/arch": "amd64"},
            taints=[WINDOWS_TAINT],
        )
    )
    nodes.append(node_obj("arm-1", labels={"kubernetes.io/arch": "arm64"}))
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": nodes}))
    return path


def cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="check-placement")
    add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    saved, sys.stderr = sys.stderr, err
    try:
        code = run(parser.parse_args(argv), stdout=out)
    finally:
        sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def nodes_of(out: str) -> dict[str, dict]:
    (ds,) = json.loads(out)["daemonsets"]
    return {node["name"]: node for node in ds["nodes"]}


# ---------------------------------------------------------------- Windows and architecture


def test_tainted_windows_node_is_excluded_and_never_gets_a_toleration(nodes_file):
    for seed in sorted(SEEDS.glob("*.yaml")):
        _, out, _ = cli("-f", str(seed), "--nodes", str(nodes_file), "-o", "json")
        windows = nodes_of(out)["win-tainted"]
        assert windows["verdict"] == "excluded" and windows["by_design"], seed
        assert windows["reasons"][0]["rule"] == "platform"
        assert all(
            reason["fix"] is None or "toleration" not in reason["fix"] for reason in windows["reasons"]
        )
        _code, patch, _ = cli("-f", str(seed), "--nodes", str(nodes_file), "-o", "patch")
        assert "key: os\n" not in patch and "windows" not in patch.split("kubernetes.io/os")[0]
        for document in filter(None, yaml.safe_load_all(patch)):
            spec = document["spec"]["template"]["spec"]
            assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
            assert all(t.get("key") != "os" for t in spec.get("tolerations", []))


def test_repository_daemonset_on_a_cluster_with_windows_is_not_a_failure(nodes_file):
    code, out, err = cli("-k", str(ROOT / "manifests"), "--nodes", str(nodes_file), "-o", "json")
    assert code == 0, err
    nodes = nodes_of(out)
    for name in ("win-1", "win-tainted"):
        assert nodes[name]["verdict"] == "excluded" and nodes[name]["by_design"]
        assert [reason["fix"] for reason in nodes[name]["reasons"]] == [None]  # no "relabel the node"
    assert {node["verdict"] for name, node in nodes.items() if not name.startswith("win")} == {"runs"}
    _, patch, _ = cli("-k", str(ROOT / "manifests"), "--nodes", str(nodes_file), "--fix")
    assert "# nodeagent/nodeagent: no change needed" in patch


def test_os_selector_mismatch_is_by_design_but_a_custom_label_is_not():
    linux_only = make_ds({"nodeSelector": {"kubernetes.io/os": "linux"}})
    windows = make_node("win", labels={"kubernetes.io/os": "windows"})
    (result,) = evaluate(linux_only, [windows], {}).nodes
    assert result.by_design and result.reasons[0].fix is None
    pool = make_ds({"nodeSelector": {"pool": "infra"}})
    (result,) = evaluate(pool, [make_node("n")], {}).nodes
    assert result.verdict == Verdict.EXCLUDED and not result.by_design


def test_architecture_from_platform_flag(nodes_file):
    seed = str(SEEDS / "02-fluentd-daemonset.yaml")
    _code, out, _ = cli("-f", seed, "--nodes", str(nodes_file), "--platform", "linux/amd64", "-o", "json")
    arm = nodes_of(out)["arm-1"]
    assert arm["verdict"] == "excluded" and arm["by_design"] and arm["reasons"][0]["rule"] == "platform"
    assert "kubernetes.io/arch=arm64" in arm["reasons"][0]["message"]
    _, out, _ = cli("-f", seed, "--nodes", str(nodes_file), "-o", "json")
    assert nodes_of(out)["arm-1"]["verdict"] == "runs"  # without --platform any architecture is fine
    _, patch, _ = cli("-f", seed, "--nodes", str(nodes_file), "--platform", "linux/amd64", "--fix")
    (document,) = filter(None, yaml.safe_load_all(patch))
    assert document["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    }
    platforms = ("--platform", "linux/amd64", "--platform", "linux/s390x")
    _, patch, _ = cli("-f", seed, "--nodes", str(nodes_file), *platforms, "--fix")
    (document,) = filter(None, yaml.safe_load_all(patch))
    terms = document["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "s390x"]}]}
    ]


def test_pod_os_field_declares_a_windows_daemonset():
    windows_ds = make_ds({"os": {"name": "windows"}})
    linux, windows = make_node("l"), make_node("w", labels={"kubernetes.io/os": "windows"})
    result = evaluate(windows_ds, [linux, windows], {})
    assert [r.verdict for r in result.nodes] == [Verdict.EXCLUDED, Verdict.RUNS]
    assert "(spec.os.name)" in result.nodes[0].reasons[0].message


# ---------------------------------------------------------------- sidecar host ports


SIDECAR = {
    "name": "proxy",
    "image": "x",
    "restartPolicy": "Always",
    "ports": [{"containerPort": 15090, "hostPort": 15090}],
}


def test_sidecar_host_port_of_the_new_pod_counts():
    ds = make_ds({"initContainers": [SIDECAR]})
    holder = make_pod(
        "holder",
        "n",
        containers=[{"name": "c", "image": "x", "ports": [{"containerPort": 1, "hostPort": 15090}]}],
    )
    (result,) = evaluate(ds, [make_node("n")], index_usage([holder])).nodes
    assert result.verdict == Verdict.PENDING
    assert result.reasons[0].rule is Rule.HOST_PORT and "15090/TCP" in result.reasons[0].message


def test_sidecar_host_port_of_a_pod_already_on_the_node_counts():
    ds = make_ds(
        {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 15090, "hostPort": 15090}]}]}
    )
    holder = make_pod("mesh", "n", initContainers=[SIDECAR])
    (result,) = evaluate(ds, [make_node("n")], index_usage([holder])).nodes
    assert result.verdict == Verdict.PENDING and "default/mesh" in result.reasons[0].message
    plain_init = dict(SIDECAR, restartPolicy=None)
    finished_init = make_pod("job", "n", initContainers=[plain_init])
    (result,) = evaluate(ds, [make_node("n")], index_usage([finished_init])).nodes
    assert result.verdict == Verdict.RUNS  # a plain init container has finished before the pod runs


# ---------------------------------------------------------------- kubectl conventions


def test_namespace_all_namespaces_and_kustomize(tmp_path, nodes_file):
    code, out, _ = cli("-f", str(SEEDS), "--nodes", str(nodes_file), "-n", "kube-system", "-o", "json")
    assert [ds["name"] for ds in json.loads(out)["daemonsets"]] == ["fluentd"]
    code, _, err = cli("-f", str(SEEDS), "--nodes", str(nodes_file), "-n", "nowhere")
    assert code == 2 and err == f"nodeagent: error: no DaemonSet in namespace nowhere in {SEEDS}\n"
    code, _, err = cli("-f", str(SEEDS), "--nodes", str(nodes_file), "-n", "x", "-A")
    assert code == 2 and "exclude each other" in err
    # A manifest without a namespace is in the -n namespace, as with kubectl apply -n.
    bare = tmp_path / "bare.yaml"
    bare.write_text((SEEDS / "01-nginx-daemonset.yaml").read_text().replace("  namespace: default\n", ""))
    _, out, _ = cli("-f", str(bare), "--nodes", str(nodes_file), "-n", "edge", "-o", "json")
    assert json.loads(out)["daemonsets"][0]["namespace"] == "edge"
    _, out, _ = cli(
        "-f", str(SEEDS), "--nodes", str(nodes_file), "-n", "kube-system", "--daemonset", "fluentd"
    )
    assert out.startswith("DaemonSet kube-system/fluentd")
    kustomization = tmp_path / "k"
    kustomization.mkdir()
    (kustomization / "ds.yaml").write_text((SEEDS / "02-fluentd-daemonset.yaml").read_text())
    (kustomization / "kustomization.yaml").write_text("resources: [ds.yaml]\nnamespace: logging\n")
    _, out, _ = cli("-k", str(kustomization), "--nodes", str(nodes_file), "-o", "json")
    (ds,) = json.loads(out)["daemonsets"]
    assert (ds["namespace"], ds["name"]) == ("logging", "fluentd")


def test_output_formats(nodes_file):
    argv = ("-f", str(SEEDS / "01-nginx-daemonset.yaml"), "--nodes", str(nodes_file))
    _, as_json, _ = cli(*argv, "-o", "json")
    _, as_yaml, _ = cli(*argv, "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    _, wide, _ = cli(*argv, "-o", "wide")
    lines = wide.splitlines()
    assert lines[1].split() == ["NODE", "ROLE", "VERDICT", "PLATFORM", "TAINTS", "REASON"]
    assert next(line for line in lines if line.startswith("win-tainted")).split()[2:5] == [
        "excluded",
        "windows/amd64",
        "os=windows:NoSchedule",
    ]


def test_durations_as_kubectl_takes_them():
    assert parse_duration("5s") == 5 and parse_duration("1m30s") == 90 and parse_duration("250ms") == 0.25
    assert parse_duration("2") == 2 and parse_duration("0") == 0 and parse_duration("1.5h") == 5400
    for bad in ("5x", "s", "", "-1s", "5 s"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)


@pytest.mark.parametrize(
    "argv",
    [
        ["check-placement", "--request-timeout", "5parsecs", "--live"],
        ["check-placement", "-o", "xml"],
        ["check-placement", "-f", "/nonexistent.yaml", "--nodes", "/nonexistent.yaml"],
        ["run", "--no-such-flag"],
    ],
)
def test_one_error_prefix_for_every_command(argv):
    completed = subprocess.run(
        [sys.executable, "-m", "nodeagent", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.startswith("nodeagent: error: ") and completed.stderr.count("\n") == 1


# ---------------------------------------------------------------- -o patch, applied


def _apply(kubectl: str, manifest: Path, patch: str, work: Path) -> Path:
    """The manifest with the patch applied by kubectl's own strategic merge (offline, --local)."""
    documents = [d for d in yaml.safe_load_all(patch) if d]
    if not documents:
        return manifest
    (document,) = documents
    patch_file = work / f"{manifest.stem}.patch.yaml"
    patch_file.write_text(yaml.safe_dump(document))
    completed = subprocess.run(
        [kubectl, "patch", "--local", "-f", str(manifest), "--type", "strategic",
         "--patch-file", str(patch_file), "-o", "yaml"],
        capture_output=True, text=True, timeout=60, check=False, env={"KUBECONFIG": "/dev/null"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    patched = work / f"{manifest.stem}.patched.yaml"
    patched.write_text(completed.stdout)
    return patched


@pytest.mark.parametrize("manifest", FIXTURE_DAEMONSETS, ids=lambda path: path.name)
def test_patch_makes_the_daemonset_run_on_every_node_that_can_run_it(tmp_path, nodes_file, manifest):
    kubectl = require_binary("kubectl")
    args = ("--nodes", str(nodes_file), "--pods", str(MODERN_PODS))
    _, before_json, _ = cli("-f", str(manifest), *args, "-o", "json")
    before = nodes_of(before_json)
    _, patch, _ = cli("-f", str(manifest), *args, "-o", "patch")
    patched = _apply(kubectl, manifest, patch, tmp_path)
    _code, after_json, _ = cli("-f", str(patched), *args, "-o", "json")
    after = nodes_of(after_json)
    model_nodes = {node.name: node for node in _nodes(nodes_file)}
    for name, node in after.items():
        if node["by_design"]:
            assert before[name]["verdict"] == "excluded"  # never widened onto a foreign platform
            continue
        if before[name]["verdict"] == "excluded":
            assert node["verdict"] == "excluded"  # the DaemonSet's own selection is respected
            continue
        if node["verdict"] == "blocked":  # only a node's lifecycle taints may still block: it cannot run pods
            taints = [r["message"].split()[1] for r in node["reasons"]]
            assert all(t.startswith(LIFECYCLE_TAINT_PREFIXES) for t in taints), (name, taints)
            continue
        if node["verdict"] == "pending":  # the scheduler or kubelet, not the DaemonSet, keeps it off for now
            assert all(r["rule"] != "taint" for r in node["reasons"])
            continue
        assert node["verdict"] == "runs", (name, node)
    windows = {name for name, node in model_nodes.items() if node.label(("kubernetes.io/os",)) == "windows"}
    assert all(after[name]["verdict"] == "excluded" for name in windows)
    # Applied again, the patch has nothing left to add but the platform selection it already holds.
    _, second, _ = cli("-f", str(patched), *args, "-o", "patch")
    for document in filter(None, yaml.safe_load_all(second)):
        assert set(document["spec"]["template"]["spec"]) <= {"nodeSelector", "affinity"}


def test_patch_is_a_kustomize_patch_too(tmp_path, nodes_file):
    require_binary("kubectl")
    seed = SEEDS / "01-nginx-daemonset.yaml"
    _, patch, _ = cli("-f", str(seed), "--nodes", str(nodes_file), "--fix")
    (tmp_path / "ds.yaml").write_text(seed.read_text())
    (tmp_path / "placement.patch.yaml").write_text(patch)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [ds.yaml]\npatches:\n  - path: placement.patch.yaml\n"
    )
    code, out, err = cli("-k", str(tmp_path), "--nodes", str(nodes_file), "-o", "json")
    assert code == 1, err  # worker-notready stays NotReady
    verdicts = {name: node["verdict"] for name, node in nodes_of(out).items()}
    assert verdicts["cp-1"] == verdicts["gpu-1"] == verdicts["spot-1"] == "runs"
    assert verdicts["win-1"] == verdicts["win-tainted"] == "excluded"


def _nodes(path: Path) -> list:
    from nodeagent.placement.model import node_from_obj

    return [node_from_obj(obj, []) for obj in read_objects(path)]


def test_lifecycle_taints_are_never_tolerated_by_the_patch():
    from nodeagent.placement.patch import patch_for

    node = make_node(
        "sick", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    )
    result = evaluate(make_ds(), [node], {})
    assert result.nodes[0].verdict == Verdict.BLOCKED
    assert patch_for(result) is None
    assert untolerated_taints(node.taints, ())  # still blocked: the pod network is missing there
