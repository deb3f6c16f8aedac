"""The placement monitor (`check-placement --watch`) as a process against the fake API server's watch streams:
a node that joins with a new taint gets its verdict series within seconds, through watches, not new lists."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from nodeagent.placement.model import pod_from_obj
from nodeagent.placement.rules import NodeUsage
from tests.conftest import free_port
from tests.placement.builders import make_pod
from tests.placement.fake_apiserver import recorded_cluster, serving

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60  # generous on a loaded machine; the check itself is no timing assertion


def series(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` with exactly these labels, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def scrape(url: str) -> str:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return await response.text()
    except aiohttp.ClientError:
        return ""


async def wait_for(url: str, condition, what: str) -> str:
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = await scrape(url)
        if text and condition(text):
            return text
        await asyncio.sleep(0.2)
    pytest.fail(f"{what} did not happen within {DEADLINE_SECONDS}s; last scrape:\n{text[-3000:]}")


@pytest.fixture
async def monitor(tmp_path):
    cluster = recorded_cluster()
    async with serving(cluster, tmp_path) as kubeconfig:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nodeagent", "check-placement", "--watch",
            "--kubeconfig", str(kubeconfig), "--context", "test", "--request-timeout", "10s",
            "--metrics-address", f"127.0.0.1:{port}",
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            yield cluster, f"http://127.0.0.1:{port}/metrics", process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def _synced(text: str) -> bool:
    return all(
        series(text, "nodeagent_placement_watch_synced", resource=kind) == 1
        for kind in ("nodes", "pods", "daemonsets")
    )


async def test_new_tainted_node_gets_its_verdict_series_through_watches(monitor):
    cluster, url, process = monitor
    nginx_cp = dict(
        namespace="default",
        daemonset="nginx-daemonset",
        node="kind-control-plane",
        verdict="blocked",
        rule="taint",
    )
    text = await wait_for(
        url,
        lambda t: _synced(t) and series(t, "nodeagent_daemonset_node_verdict", **nginx_cp) == 1,
        "the first sync",
    )
    # The CNI tolerates everything and runs everywhere: no per-node series, full coverage.
    assert 'daemonset="kindnet",node=' not in text
    assert (
        series(text, "nodeagent_daemonset_coverage_ratio", namespace="kube-system", daemonset="kindnet") == 1
    )
    lists_before = {kind: len(cluster.list_requests(path)) for kind, path in PATHS.items()}

    joining = copy.deepcopy(next(n for n in cluster.nodes if n["metadata"]["name"] == "kind-worker2"))
    joining["metadata"]["name"] = "edge-1"
    joining["metadata"]["labels"]["kubernetes.io/hostname"] = "edge-1"
    joining["spec"]["taints"] = [{"key": "example.com/edge", "value": "true", "effect": "NoSchedule"}]
    await cluster.change("nodes", "ADDED", joining)

    fluentd_edge = dict(
        namespace="kube-system", daemonset="fluentd", node="edge-1", verdict="blocked", rule="taint"
    )
    text = await wait_for(
        url,
        lambda t: series(t, "nodeagent_daemonset_node_verdict", **fluentd_edge) == 1,
        "the new node's series",
    )
    reason = next(
        line for line in text.splitlines() if line.startswith("nodeagent_daemonset_node_reason_info{")
    )
    assert reason  # at least one reason line exists; the new node's names its taint:
    assert any(
        'node="edge-1"' in line
        and "example.com/edge=true:NoSchedule" in line
        and 'daemonset="fluentd"' in line
        for line in text.splitlines()
        if line.startswith("nodeagent_daemonset_node_reason_info{")
    )
    assert 'daemonset="kindnet",node="edge-1"' not in text  # tolerates every NoSchedule taint
    coverage = series(
        text, "nodeagent_daemonset_coverage_ratio", namespace="kube-system", daemonset="fluentd"
    )
    assert coverage is not None and coverage < 1
    assert series(
        text, "nodeagent_daemonset_nodes", namespace="kube-system", daemonset="fluentd", verdict="blocked"
    )

    # Watches, not polling: nothing was listed again; each kind is watched.
    assert {kind: len(cluster.list_requests(path)) for kind, path in PATHS.items()} == lists_before
    for path in PATHS.values():
        (first, *_) = cluster.watch_requests(path)
        assert first["allowWatchBookmarks"].lower() == "true" and first["resourceVersion"]

    # The component's ClusterRole grants exactly the calls made.
    used = {
        (
            "watch" if query.get("watch") else "list",
            "apps" if path.startswith("/apis/apps/") else "",
            path.rsplit("/", 1)[1],
        )
        for _, path, query in cluster.requests
    }
    assert used == granted()

    # The node leaves again: its series go.
    await cluster.change("nodes", "DELETED", joining)
    await wait_for(url, lambda t: 'node="edge-1"' not in t, "the removed node's series to go")

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_gone_resource_version_lists_again(monitor):
    cluster, url, _ = monitor
    await wait_for(url, _synced, "the first sync")
    cluster.oldest_version = 10**9  # the server compacted its history: every watch now gets 410 Gone
    await cluster.change(
        "daemonsets", "DELETED", next(d for d in cluster.daemonsets if d["metadata"]["name"] == "kindnet")
    )
    cluster.oldest_version = 0
    text = await wait_for(
        url,
        lambda t: (
            series(t, "nodeagent_placement_relists_total", resource="daemonsets") is not None
            and 'daemonset="kindnet"' not in t
        ),
        "the DaemonSet's removal",
    )
    assert "nodeagent_daemonset_nodes{" in text


def granted() -> set[tuple[str, str, str]]:
    rbac = ROOT / "manifests" / "components" / "placement-monitor" / "rbac.yaml"
    role = next(doc for doc in yaml.safe_load_all(rbac.read_text()) if doc["kind"] == "ClusterRole")
    return {
        (verb, group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


PATHS = {"nodes": "/api/v1/nodes", "pods": "/api/v1/pods", "daemonsets": "/apis/apps/v1/daemonsets"}


def test_usage_remove_undoes_add():
    port = {"containerPort": 80, "hostPort": 80}
    pods = [
        make_pod(
            "a", "n", containers=[{"name": "c", "image": "x", "ports": [port]}], owner=("DaemonSet", "d")
        ),
        make_pod("b", "n", containers=[{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]),
    ]
    usage = NodeUsage()
    for pod in pods:
        usage.add(pod)
    for pod in pods:
        usage.remove(pod)
    assert usage == NodeUsage()
    assert pod_from_obj({"metadata": {"name": "x"}}, []).name == "x"


def test_metrics_address_is_checked():
    from nodeagent.placement.monitor import parse_address

    assert parse_address(":9102") == ("0.0.0.0", 9102)
    assert parse_address("127.0.0.1:1") == ("127.0.0.1", 1)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("9102", "host:", "host:99999"):
        with pytest.raises(Exception, match="metrics-address"):
            parse_address(bad)


async def test_incremental_state_equals_a_fresh_check():
    """After a run of watch events, the monitor's verdicts are a one-shot check's of the final objects."""
    import random

    from nodeagent.placement.model import daemonset_from_obj, node_from_obj
    from nodeagent.placement.monitor import PlacementState
    from nodeagent.placement.rules import evaluate, index_usage
    from tests.placement.builders import DAEMONSETS, MODERN_NODES, MODERN_PODS, SEEDS, read_objects

    nodes = {obj["metadata"]["name"]: obj for obj in read_objects(MODERN_NODES)}
    pods = {
        f"p{i}": dict(obj, metadata=dict(obj["metadata"], uid=f"p{i}"))
        for i, obj in enumerate(read_objects(MODERN_PODS))
    }
    daemonsets = {
        obj["metadata"]["name"]: obj
        for path in [*DAEMONSETS.glob("*.yaml"), *SEEDS.glob("*.yaml")]
        for obj in read_objects(path)
        if obj.get("kind") == "DaemonSet"
    }
    state = PlacementState()
    state.replace("nodes", list(nodes.values()))
    state.replace("pods", list(pods.values()))
    state.replace("daemonsets", list(daemonsets.values()))
    await state.evaluate_dirty()
    rng = random.Random(5)
    port = {"containerPort": 9100, "hostPort": 9100}
    for step in range(60):
        choice = rng.randrange(5)
        if choice == 0:  # a node gets or loses a taint
            name = rng.choice(sorted(nodes))
            obj = copy.deepcopy(nodes[name])
            obj["spec"]["taints"] = (
                [] if rng.random() < 0.5 else [{"key": f"t{step}", "effect": "NoSchedule"}]
            )
            nodes[name] = obj
            state.apply("nodes", "MODIFIED", obj)
        elif choice == 1:  # a pod holding a host port lands on a node
            target = rng.choice(sorted(nodes))
            obj = {"metadata": {"name": f"n{step}", "namespace": "default", "uid": f"n{step}"},
                   "spec": {"nodeName": target, "containers": [{"name": "c", "ports": [port]}]},
                   "status": {"phase": "Running"}}  # fmt: skip
            pods[f"n{step}"] = obj
            state.apply("pods", "ADDED", obj)
        elif choice == 2 and pods:  # a pod goes
            key = rng.choice(sorted(pods))
            state.apply("pods", "DELETED", pods.pop(key))
        elif choice == 3:  # a DaemonSet starts tolerating everything, or stops
            name = rng.choice(sorted(daemonsets))
            obj = copy.deepcopy(daemonsets[name])
            spec = obj["spec"]["template"]["spec"]
            spec["tolerations"] = [] if spec.get("tolerations") else [{"operator": "Exists"}]
            daemonsets[name] = obj
            state.apply("daemonsets", "MODIFIED", obj)
        elif choice == 4 and step % 2:  # a node joins
            obj = copy.deepcopy(nodes["worker-1"])
            obj["metadata"]["name"] = f"joined-{step}"
            nodes[obj["metadata"]["name"]] = obj
            state.apply("nodes", "ADDED", obj)
        if rng.random() < 0.3:
            await state.evaluate_dirty()
    await state.evaluate_dirty()

    model_nodes = [node_from_obj(obj, []) for obj in nodes.values()]
    usage = index_usage(pod_from_obj(obj, []) for obj in pods.values())
    for obj in daemonsets.values():
        ds = daemonset_from_obj(obj, "test")
        fresh = {
            r.node.name: r.verdict
            for r in evaluate(ds, model_nodes, usage).nodes
            if r.verdict.value != "runs"
        }
        kept = {node: problem.verdict for node, problem in state.problems[(ds.namespace, ds.name)].items()}
        assert kept == fresh, ds.key
