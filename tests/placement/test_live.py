"""Live mode against a recorded API served on 127.0.0.1, driven through a kubeconfig like a user's."""

from __future__ import annotations

import asyncio
import json

import pytest

from nodeagent.placement.live import ClusterError, resolve_kubeconfig
from tests.placement.builders import SEEDS
from tests.placement.fake_apiserver import NGINX_PENDING_MESSAGE, check_placement, recorded_cluster, serving


@pytest.fixture
async def apiserver(tmp_path):
    cluster = recorded_cluster()
    async with serving(cluster, tmp_path) as kubeconfig:
        yield cluster, kubeconfig


def by_name(document: dict) -> dict[str, dict]:
    return {f"{d['namespace']}/{d['name']}": d for d in document["daemonsets"]}


def verdicts(ds: dict) -> dict[str, str]:
    return {node["name"]: node["verdict"] for node in ds["nodes"]}


async def test_live_prediction_against_the_recorded_cluster(apiserver):
    cluster, kubeconfig = apiserver
    code, out, err = await check_placement(
        "--live", "--kubeconfig", str(kubeconfig), "--context", "test", "-o", "json"
    )
    assert code == 1, err
    results = by_name(json.loads(out))
    assert set(results) == {
        "kube-system/kindnet",
        "kube-system/kube-proxy",
        "kube-system/fluentd",
        "default/nginx-daemonset",
        "monitoring/node-exporter",
    }

    # kindnet is the CNI: hostNetwork, so it starts on the NotReady (no CNI yet) worker; reality agrees.
    kindnet = results["kube-system/kindnet"]
    assert set(verdicts(kindnet).values()) == {"runs"}
    assert kindnet["live"]["disagreements"] == []
    assert kindnet["live"]["counts"]["numberReady"] == {"actual": 3, "predicted": 3}

    fluentd = results["kube-system/fluentd"]
    assert verdicts(fluentd) == {
        "kind-control-plane": "runs",
        "kind-worker": "pending",
        "kind-worker2": "runs",
    }
    assert fluentd["live"]["disagreements"] == []
    worker = next(n for n in fluentd["nodes"] if n["name"] == "kind-worker")
    assert worker["live"]["pods"] == [
        {"name": "fluentd-w1", "state": "starting", "detail": "fluentd: ContainerCreating"}
    ]

    nginx = results["default/nginx-daemonset"]
    assert verdicts(nginx)["kind-control-plane"] == "blocked"
    assert nginx["live"]["counts"]["numberMisscheduled"] == {"actual": 1, "predicted": 1}
    (disagreement,) = nginx["live"]["disagreements"]
    assert disagreement.startswith(
        "kind-control-plane: blocked by a taint, yet pod nginx-daemonset-cp is ready"
    )
    assert "NoSchedule does not evict, so it stays, counted as misscheduled" in disagreement
    pending = next(n for n in nginx["nodes"] if n["name"] == "kind-worker")
    assert pending["verdict"] == "pending" and pending["live"]["agrees"]
    assert pending["live"]["pods"][0] == {
        "name": "nginx-daemonset-w1",
        "state": "unschedulable",
        "detail": NGINX_PENDING_MESSAGE,
    }

    exporter = results["monitoring/node-exporter"]
    assert exporter["live"]["status_current"] is False
    assert "not compared" in exporter["live"]["notes"][0]
    assert (
        "kind-worker2: predicted to run, but the DaemonSet has no pod on this node"
        in exporter["live"]["disagreements"]
    )

    # Read-only, paged, and scheduler events fetched only where a pod waits for the scheduler.
    assert {method for method, _, _ in cluster.requests} == {"GET"}
    node_pages = [query for _, path, query in cluster.requests if path == "/api/v1/nodes"]
    assert len(node_pages) == 2 and node_pages[1]["continue"] == "2"
    pod_queries = [query for _, path, query in cluster.requests if path == "/api/v1/pods"]
    assert pod_queries[0]["fieldSelector"] == "status.phase!=Succeeded,status.phase!=Failed"
    event_paths = {path for _, path, _ in cluster.requests if path.endswith("/events")}
    assert event_paths == {"/api/v1/namespaces/default/events"}


async def test_live_table_marks_disagreements(apiserver):
    _, kubeconfig = apiserver
    code, out, _ = await check_placement(
        "--live",
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        "test",
        "--daemonset",
        "default/nginx-daemonset",
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[1].split() == ["NODE", "ROLE", "VERDICT", "CLUSTER", "REASON"]
    control_plane = next(line for line in lines if line.startswith("kind-control-plane"))
    assert control_plane.split()[2:5] == ["blocked", "ready", "(!)"]
    assert any(line.startswith("Cluster: desiredNumberScheduled 2 (predicted 2)") for line in lines)
    assert "Prediction and cluster disagree:" in lines


async def test_daemonset_filter_reads_one_namespace(apiserver):
    cluster, kubeconfig = apiserver
    code, _, err = await check_placement(
        "--live", "--kubeconfig", str(kubeconfig), "--context", "test", "--daemonset", "kube-system/kindnet"
    )
    assert code == 0, err
    assert any(path == "/apis/apps/v1/namespaces/kube-system/daemonsets" for _, path, _ in cluster.requests)
    assert not any(path == "/apis/apps/v1/daemonsets" for _, path, _ in cluster.requests)


async def test_files_checked_against_live_nodes(apiserver):
    cluster, kubeconfig = apiserver
    code, out, _ = await check_placement(
        "--live", "--kubeconfig", str(kubeconfig), "--context", "test",
        "-f", str(SEEDS / "03-node-exporter-daemonset.yaml"), "-o", "json",
    )  # fmt: skip
    (ds,) = json.loads(out)["daemonsets"]
    assert code == 1 and "live" not in ds
    assert verdicts(ds)["kind-control-plane"] == "blocked"
    assert not any("daemonsets" in path for _, path, _ in cluster.requests)


async def test_unreachable_current_context_is_one_line_exit_2(apiserver):
    _, kubeconfig = apiserver
    code, out, err = await check_placement("--live", "--kubeconfig", str(kubeconfig))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot reach the API server" in err


async def test_rejected_credentials_are_one_line_exit_2(apiserver, tmp_path):
    _, kubeconfig = apiserver
    wrong = tmp_path / "wrong-token"
    wrong.write_text(kubeconfig.read_text().replace("test-token-5b2f", "stolen"))
    code, _, err = await check_placement("--live", "--kubeconfig", str(wrong), "--context", "test")
    assert code == 2 and "HTTP 401 Unauthorized" in err and err.count("\n") == 1


async def test_unknown_context_is_one_line_exit_2(apiserver):
    _, kubeconfig = apiserver
    code, _, err = await check_placement("--live", "--kubeconfig", str(kubeconfig), "--context", "nope")
    assert code == 2 and err.startswith("nodeagent: error: kubeconfig:") and err.count("\n") == 1


def test_kubeconfig_resolution(tmp_path):
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n")
    assert resolve_kubeconfig(str(config), {}) == str(config)
    assert resolve_kubeconfig(None, {"KUBECONFIG": "/a:/b", "HOME": str(tmp_path)}) == "/a:/b"
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\n")
    assert resolve_kubeconfig(None, {"HOME": str(tmp_path)}) == str(tmp_path / ".kube" / "config")
    empty_home = tmp_path / "empty"
    empty_home.mkdir()
    assert resolve_kubeconfig(None, {"HOME": str(empty_home), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
    with pytest.raises(ClusterError, match="no kubeconfig found"):
        resolve_kubeconfig(None, {"HOME": str(empty_home)})
    with pytest.raises(ClusterError, match="not found"):
        resolve_kubeconfig(str(tmp_path / "missing"), {})


async def test_run_works_from_inside_a_running_loop():
    # An application that embeds the checker may call run() from a coroutine: it must not need the loop.
    from nodeagent.placement.cli import _run_coroutine

    assert _run_coroutine(asyncio.sleep(0, result="done")) == "done"
