"""Pod metadata end to end: the real shipper (``run_logs``) reading a kubelet pod log tree, with its pod
watch against the fake API server (tests/placement/fake_apiserver.py) serving the recorded kind cluster.

The tree lives under ``<tmp>/kubelet-logs`` (not ``*/var/log/pods``): it is recognised by its shape.
``wait_for_metadata`` is 1 s here; the enricher reports the longest it held any record
(``longest_hold``), which must stay within that bound plus one loop tick.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import nodeagent.logs.podmeta
from nodeagent.logs.podmeta import PodMetadata
from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines
from tests.placement.fake_apiserver import FakeCluster, recorded_cluster, serving

NODE = "kind-control-plane"
WAIT = 1.0
TICK = 0.5  # the enricher releases on a timer; a loaded machine may run it this much late
SELECTOR = f"spec.nodeName={NODE}"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[FakeCluster, Path]]:
    cluster = recorded_cluster()
    async with serving(cluster, tmp_path) as kubeconfig:
        document = yaml.safe_load(kubeconfig.read_text())
        document["current-context"] = "test"
        kubeconfig.write_text(yaml.safe_dump(document))
        yield cluster, kubeconfig


@pytest.fixture
def enrichers(monkeypatch: pytest.MonkeyPatch) -> list[PodMetadata]:
    """The PodMetadata the shipper builds, to read its enricher's longest hold."""
    built: list[PodMetadata] = []

    class Recorded(PodMetadata):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(nodeagent.logs.podmeta, "PodMetadata", Recorded)
    return built


def pod(cluster: FakeCluster, name: str) -> dict:
    return next(p for p in cluster.pods if p["metadata"]["name"] == name)


def new_pod(cluster: FakeCluster, like: str, name: str, uid: str, labels: dict[str, str]) -> dict:
    obj = copy.deepcopy(pod(cluster, like))
    obj["metadata"].update(name=name, uid=uid, labels=labels)
    return obj


def log_file(tmp_path: Path, obj: dict, container: str) -> Path:
    meta = obj["metadata"]
    path = (
        tmp_path / "kubelet-logs" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container / "0.log"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def config_for(tmp_path: Path, kubeconfig: Path, **options: Any) -> Any:
    return make_config(
        tmp_path,
        [str(tmp_path / "kubelet-logs" / "*" / "*" / "*.log")],
        retry_max_backoff="1s",  # the watch's retries during an outage (the sinks do not fail here)
        kubernetes={
            "kubeconfig": str(kubeconfig),
            "node_name": NODE,
            "wait_for_metadata": f"{WAIT}s",
            **options,
        },
    )


def by_message(sink: MemorySink) -> dict[str, dict]:
    return {r.message: r.kubernetes or {} for r in sink.records}


def first_pages(cluster: FakeCluster) -> list[dict[str, str]]:
    """The pod lists the agent started (each may take several pages)."""
    return [query for query in cluster.list_requests("/api/v1/pods") if "continue" not in query]


def assert_scoped(cluster: FakeCluster) -> None:
    """Every pod request of the agent asked for this node's pods only."""
    requests = cluster.list_requests("/api/v1/pods") + cluster.watch_requests("/api/v1/pods")
    assert requests
    assert all(query.get("fieldSelector") == SELECTOR for query in requests), requests


async def test_records_carry_labels_owner_and_image_from_the_watch(tmp_path, api, enrichers) -> None:
    cluster, kubeconfig = api
    coredns = pod(cluster, "coredns-74ff55c5b-cpfqs")
    etcd = pod(cluster, "etcd-kind-control-plane")
    dns_log = log_file(tmp_path, coredns, "coredns")
    # A static pod's log directory carries its kubelet UID, which the mirror pod has as an annotation.
    etcd_meta = dict(etcd["metadata"], uid=etcd["metadata"]["annotations"]["kubernetes.io/config.mirror"])
    etcd_log = log_file(tmp_path, {"metadata": etcd_meta}, "etcd")
    write_lines(dns_log, ["dns 1"])
    write_lines(etcd_log, ["etcd 1"])
    sink = MemorySink()
    config = config_for(tmp_path, kubeconfig, label_deny=["pod-template-hash"], node_labels=True)
    async with shipping(config, sink):
        await eventually(lambda: {"dns 1", "etcd 1"} <= set(sink.messages()), 10, "the first lines")
        meta = by_message(sink)
        assert meta["dns 1"] == {
            "namespace": "kube-system",
            "pod": "coredns-74ff55c5b-cpfqs",
            "pod_uid": coredns["metadata"]["uid"],
            "container": "coredns",
            "restart_count": 0,
            "labels": {"k8s-app": "kube-dns"},  # pod-template-hash denied
            "owner_kind": "Deployment",
            "owner_name": "coredns",
            "pod_ip": "10.244.0.4",
            "image": "k8s.gcr.io/coredns:1.7.0",
            "image_id": "sha256:bfe3a36ebd2528b454be6aebece806db5b40407b833e2af9617bf39afaff8c16",
            "node_labels": meta["dns 1"]["node_labels"],
        }
        assert meta["dns 1"]["node_labels"]["kubernetes.io/hostname"] == NODE
        assert (meta["etcd 1"]["owner_kind"], meta["etcd 1"]["owner_name"]) == ("Node", NODE)
        assert meta["etcd 1"]["labels"] == {"component": "etcd", "tier": "control-plane"}

        # MODIFIED: new labels reach the next records.
        changed = copy.deepcopy(coredns)
        changed["metadata"]["labels"]["version"] = "2"
        await cluster.change("pods", "MODIFIED", changed)
        cached = enrichers[0].cache
        uid = coredns["metadata"]["uid"]
        await eventually(lambda: "version" in cached.pods[uid].common["labels"], 5, "the MODIFIED event")
        write_lines(dns_log, ["dns 2"])
        await eventually(lambda: "dns 2" in sink.messages(), 5, "dns 2")
        assert by_message(sink)["dns 2"]["labels"] == {"k8s-app": "kube-dns", "version": "2"}

        # ADDED after start: a new pod's lines get its metadata (held until the event, if need be).
        web = new_pod(cluster, "coredns-74ff55c5b-cpfqs", "web-1", "11111111-2222-4333-8444-555555555555",
                      {"app": "web"})  # fmt: skip
        web_log = log_file(tmp_path, web, "coredns")
        write_lines(web_log, ["web 1"])
        await asyncio.sleep(0.2)
        await cluster.change("pods", "ADDED", web)
        await eventually(lambda: "web 1" in sink.messages(), 5, "web 1")
        assert by_message(sink)["web 1"]["labels"] == {"app": "web"}

        # DELETED: late lines of the terminated pod still get its metadata (grace period).
        await cluster.change("pods", "DELETED", web)
        await eventually(lambda: enrichers[0].cache.deleted, 5, "the DELETED event")
        write_lines(web_log, ["web late"])
        await eventually(lambda: "web late" in sink.messages(), 5, "web late")
        assert by_message(sink)["web late"]["labels"] == {"app": "web"}

        # BOOKMARK: the next watch resumes from the bookmark's resourceVersion.
        await cluster.bookmark("pods")
        bookmark = str(cluster.version)
        await asyncio.sleep(0.2)
        watches = len(cluster.watch_requests("/api/v1/pods"))
        await cluster.end_watches()
        await eventually(lambda: len(cluster.watch_requests("/api/v1/pods")) > watches, 5, "a new watch")
        assert cluster.watch_requests("/api/v1/pods")[-1]["resourceVersion"] == bookmark
        assert cluster.watch_requests("/api/v1/pods")[-1]["allowWatchBookmarks"].lower() == "true"

    assert_scoped(cluster)
    assert len(first_pages(cluster)) == 1  # no re-list for a closed watch or a bookmark
    assert [q for _, path, q in cluster.requests if path == f"/api/v1/nodes/{NODE}"]
    assert not [path for _, path, _ in cluster.requests if path == "/api/v1/nodes"]  # no node list
    assert enrichers[0].input.longest_hold <= WAIT + TICK


async def keep_writing(path: Path, prefix: str, count: int, interval: float, written: list[str]) -> None:
    for i in range(count):
        line = f"{prefix} {i}"
        write_lines(path, [line])
        written.append(line)
        await asyncio.sleep(interval)


async def test_a_410_mid_watch_relists_and_loses_nothing(tmp_path, api, enrichers) -> None:
    cluster, kubeconfig = api
    coredns = pod(cluster, "coredns-74ff55c5b-cpfqs")
    dns_log = log_file(tmp_path, coredns, "coredns")
    sink = MemorySink()
    written: list[str] = []
    expired = sample("nodeagent_logs_podmeta_watch_restarts_total", {"reason": "expired"})
    async with shipping(config_for(tmp_path, kubeconfig), sink):
        await eventually(lambda: enrichers[0].watch.healthy, 10, "the first list")
        writer = asyncio.create_task(keep_writing(dns_log, "dns", 150, 0.01, written))
        await asyncio.sleep(0.3)
        await cluster.expire("pods")  # ERROR 410 on the open watch: the agent lists again
        # A pod that appears while the agent re-lists.
        web = new_pod(cluster, "coredns-74ff55c5b-cpfqs", "web-2", "21111111-2222-4333-8444-555555555555",
                      {"app": "web2"})  # fmt: skip
        await cluster.change("pods", "ADDED", web)
        web_writer = asyncio.create_task(
            keep_writing(log_file(tmp_path, web, "coredns"), "web", 50, 0.01, written)
        )
        await asyncio.gather(writer, web_writer)
        await eventually(lambda: len(sink.records) >= len(written), 10, "every line")
        await eventually(lambda: len(first_pages(cluster)) >= 2, 5, "a re-list")

    assert sorted(sink.messages()) == sorted(written)  # none lost, none twice
    meta = by_message(sink)
    assert [
        line for line in written if line.startswith("dns") and meta[line].get("owner_name") != "coredns"
    ] == []
    assert all(meta[line]["labels"] == {"app": "web2"} for line in written if line.startswith("web"))
    assert sample("nodeagent_logs_podmeta_watch_restarts_total", {"reason": "expired"}) > expired
    assert enrichers[0].input.longest_hold <= WAIT + TICK
    assert_scoped(cluster)


async def test_a_30s_api_outage_keeps_shipping_within_the_bound(tmp_path, api, enrichers) -> None:
    cluster, kubeconfig = api
    coredns = pod(cluster, "coredns-74ff55c5b-cpfqs")
    dns_log = log_file(tmp_path, coredns, "coredns")
    sink = MemorySink()
    written: list[str] = []
    errors = sample("nodeagent_logs_podmeta_api_errors_total")
    unavailable = sample(
        "nodeagent_logs_podmeta_records_without_metadata_total", {"reason": "api_unavailable"}
    )
    async with shipping(config_for(tmp_path, kubeconfig), sink):
        await eventually(lambda: enrichers[0].watch.healthy, 10, "the first list")
        await cluster.set_unavailable(True)
        outage_started = time.monotonic()
        # A pod that starts during the outage: its records cannot wait for the API beyond the bound.
        web = new_pod(cluster, "coredns-74ff55c5b-cpfqs", "web-3", "31111111-2222-4333-8444-555555555555",
                      {"app": "web3"})  # fmt: skip
        cluster.pods.append(web)  # listed once the API is back
        web_log = log_file(tmp_path, web, "coredns")
        await asyncio.gather(
            keep_writing(dns_log, "dns", 300, 0.1, written),  # 30 s of lines
            keep_writing(web_log, "web", 60, 0.5, written),
        )
        assert time.monotonic() - outage_started >= 30
        # Shipped during the outage, all of them: the cached pod's with its metadata, the new one's without.
        await eventually(lambda: len(sink.records) >= len(written), 10, "every line of the outage")
        await cluster.set_unavailable(False)
        await eventually(lambda: enrichers[0].watch.healthy, 10, "the watch after the outage")
        write_lines(web_log, ["after web"])
        written.append("after web")
        await eventually(lambda: "after web" in sink.messages(), 5, "after web")

    assert sorted(sink.messages()) == sorted(written)
    meta = by_message(sink)
    assert all(meta[line]["owner_name"] == "coredns" for line in written if line.startswith("dns"))
    assert all("labels" not in meta[line] for line in written if line.startswith("web "))
    assert all(meta[line]["pod"] == "web-3" for line in written if line.startswith("web"))
    assert meta["after web"]["labels"] == {"app": "web3"}
    assert sample("nodeagent_logs_podmeta_api_errors_total") > errors
    assert sample("nodeagent_logs_podmeta_records_without_metadata_total", {"reason": "api_unavailable"}) >= (
        unavailable + 60
    )
    assert enrichers[0].input.longest_hold <= WAIT + TICK


async def test_a_pod_not_cached_is_shipped_with_path_metadata_after_the_bound(
    tmp_path, api, enrichers
) -> None:
    cluster, kubeconfig = api
    ghost = {
        "metadata": {"namespace": "default", "name": "ghost", "uid": "41111111-2222-4333-8444-555555555555"}
    }
    ghost_log = log_file(tmp_path, ghost, "app")
    sink = MemorySink()
    not_found = sample("nodeagent_logs_podmeta_records_without_metadata_total", {"reason": "wait_expired"})
    async with shipping(config_for(tmp_path, kubeconfig), sink):
        await eventually(lambda: enrichers[0].watch.healthy, 10, "the first list")
        started = time.monotonic()
        write_lines(ghost_log, ["ghost 1", "ghost 2"])
        await eventually(lambda: len(sink.records) == 2, 10, "the ghost's lines")
        assert time.monotonic() - started >= WAIT  # held for the bound (the pod might have come) ...
        write_lines(ghost_log, ["ghost 3"])  # ... but only once: later lines are not held again
        await eventually(lambda: len(sink.records) == 3, 5, "ghost 3")

    assert sink.messages() == ["ghost 1", "ghost 2", "ghost 3"]
    assert all(r.kubernetes == {"namespace": "default", "pod": "ghost", "pod_uid": ghost["metadata"]["uid"],
                                "container": "app", "restart_count": 0} for r in sink.records)  # fmt: skip
    assert sample("nodeagent_logs_podmeta_records_without_metadata_total", {"reason": "wait_expired"}) == (
        not_found + 2
    )
    assert sample("nodeagent_logs_podmeta_records_without_metadata_total", {"reason": "not_found"}) >= 1
    assert enrichers[0].input.longest_hold <= WAIT + TICK
    assert_scoped(cluster)


async def test_replicaset_owners_from_the_api_when_asked(tmp_path, api) -> None:
    cluster, kubeconfig = api
    uid = "51111111-2222-4333-8444-555555555555"
    rollout_pod = new_pod(cluster, "coredns-74ff55c5b-cpfqs", "web-5d9f-x", uid, {"app": "web"})
    rollout_pod["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "web-5d9f", "controller": True}
    ]
    cluster.pods.append(rollout_pod)
    cluster.replicasets = [
        {"metadata": {"namespace": "kube-system", "name": "coredns-74ff55c5b",
                      "ownerReferences": [{"kind": "Deployment", "name": "coredns", "controller": True}]}},
        {"metadata": {"namespace": "kube-system", "name": "web-5d9f",
                      "ownerReferences": [{"kind": "Rollout", "name": "web", "controller": True}]}},
    ]  # fmt: skip
    for obj, line in ((pod(cluster, "coredns-74ff55c5b-cpfqs"), "dns"), (rollout_pod, "web")):
        write_lines(log_file(tmp_path, obj, "coredns"), [line])
    sink = MemorySink()
    async with shipping(config_for(tmp_path, kubeconfig, resolve_replicasets=True), sink):
        await eventually(lambda: len(sink.records) == 2, 10, "both lines")
    meta = by_message(sink)
    assert (meta["dns"]["owner_kind"], meta["dns"]["owner_name"]) == ("Deployment", "coredns")
    assert (meta["web"]["owner_kind"], meta["web"]["owner_name"]) == ("Rollout", "web")
    gets = [path for _, path, _ in cluster.requests if "/replicasets/" in path]
    assert sorted(gets) == [  # one get per ReplicaSet, both coredns pods share theirs
        "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-74ff55c5b",
        "/apis/apps/v1/namespaces/kube-system/replicasets/web-5d9f",
    ]
