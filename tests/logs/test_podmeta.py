"""Pod metadata, the pure parts: what a recorded Pod object gives a record, owners, key filters, the
cache, path shapes outside */pods/, and the logs.kubernetes config section."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import load_yaml
from nodeagent.config.logs import PodMetadataConfig, parse_logs_config
from nodeagent.logs.checkpoint import Cursor, Segment
from nodeagent.logs.kubernetes import metadata_from_path
from nodeagent.logs.podmeta import EnrichingInput, Filters, KeyFilter, PodCache, PodInfo, owner_of, pod_info
from nodeagent.logs.record import Records
from tests.placement.builders import KIND_PODS

PODS = {p["metadata"]["name"]: p for p in json.loads(KIND_PODS.read_text())["items"]}
ALL = Filters.of(PodMetadataConfig())
COREDNS = "coredns-74ff55c5b-cpfqs"


def info_of(name: str) -> PodInfo:
    info = pod_info(PODS[name], ALL)
    assert info is not None
    return info


def test_a_deployment_pod_gives_labels_owner_image_and_ip() -> None:
    pod = PODS[COREDNS]
    info = pod_info(pod, ALL)
    assert info is not None
    path = {"namespace": "kube-system", "pod": COREDNS, "pod_uid": info.uid, "container": "coredns",
            "restart_count": 0}  # fmt: skip
    assert info.metadata(path) == {
        **path,
        "labels": {"k8s-app": "kube-dns", "pod-template-hash": "74ff55c5b"},
        "owner_kind": "Deployment",  # the ReplicaSet coredns-74ff55c5b, by its pod-template-hash suffix
        "owner_name": "coredns",
        "pod_ip": "10.244.0.4",
        "image": "k8s.gcr.io/coredns:1.7.0",
        "image_id": "sha256:bfe3a36ebd2528b454be6aebece806db5b40407b833e2af9617bf39afaff8c16",
    }


def test_owners() -> None:
    assert owner_of(PODS["kindnet-x9fsq"]["metadata"]) == ("DaemonSet", "kindnet")
    assert owner_of(PODS["etcd-kind-control-plane"]["metadata"]) == ("Node", "kind-control-plane")
    # A ReplicaSet not named after the pod's template hash is not a Deployment's.
    meta = copy.deepcopy(PODS[COREDNS]["metadata"])
    meta["labels"]["pod-template-hash"] = "other"
    assert owner_of(meta) == ("ReplicaSet", "coredns-74ff55c5b")
    meta["ownerReferences"] = [
        {"kind": "Job", "name": "a"},
        {"kind": "ReplicaSet", "name": "b", "controller": True},
    ]
    assert owner_of(meta) == ("ReplicaSet", "b")
    assert owner_of({}) is None
    assert owner_of({"ownerReferences": ["junk", {"kind": 3}]}) is None


def test_a_static_pod_is_found_by_its_kubelet_uid() -> None:
    pod = PODS["etcd-kind-control-plane"]
    info = pod_info(pod, ALL)
    assert info is not None
    cache = PodCache(grace=60, max_pods=10)
    cache.put(info)
    kubelet_uid = pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert kubelet_uid != info.uid
    assert cache.find({"namespace": "kube-system", "pod": info.name, "pod_uid": kubelet_uid}) is info
    assert "kubernetes.io/config.hash" in info.metadata({"pod_uid": kubelet_uid})["annotations"]


def test_key_filters() -> None:
    labels = {"app": "a", "app.kubernetes.io/name": "n", "pod-template-hash": "h", "team": "t"}
    assert KeyFilter()(labels) == labels
    assert KeyFilter(deny=["pod-template-hash", "re:te.m"])(labels) == {
        "app": "a",
        "app.kubernetes.io/name": "n",
    }
    assert KeyFilter(allow=["app*"], deny=["app.kubernetes.io/*"])(labels) == {"app": "a"}
    assert KeyFilter(allow=["re:app"])(labels) == {"app": "a"}  # a regex matches the whole key
    assert KeyFilter()({"k": 1, 2: "v", "ok": "v"}) == {"ok": "v"}
    assert KeyFilter()("not a mapping") == {}


def test_labels_and_annotations_can_be_left_out() -> None:
    config = PodMetadataConfig(labels=False, annotation_allow=("kubernetes.io/config.*",),
                               annotation_deny=("kubernetes.io/config.seen",))  # fmt: skip
    info = pod_info(PODS["kube-scheduler-kind-control-plane"], Filters.of(config))
    assert info is not None
    assert "labels" not in info.common
    assert set(info.common["annotations"]) == {
        "kubernetes.io/config.hash",
        "kubernetes.io/config.mirror",
        "kubernetes.io/config.source",
    }


def test_a_docker_path_finds_its_pod_by_container_id() -> None:
    info = pod_info(PODS[COREDNS], ALL)
    assert info is not None
    cache = PodCache(grace=60, max_pods=10)
    cache.put(info)
    cid = "1dc31e13a155607ade9d7c204919d05fa8d05058fd734488b4fae2ea027c6c31"
    meta = info.metadata({"container_id": cid})
    assert cache.find({"container_id": cid}) is info
    assert (meta["pod"], meta["container"], meta["owner_name"]) == (COREDNS, "coredns", "coredns")


def test_the_cache_keeps_deleted_pods_for_the_grace_period_and_stays_bounded() -> None:
    now = [0.0]
    cache = PodCache(grace=10, max_pods=3, clock=lambda: now[0])
    a, b, c, d = (
        info_of(n) for n in (COREDNS, "kindnet-x9fsq", "kube-proxy-g79v6", "etcd-kind-control-plane")
    )
    for info in (a, b, c):
        cache.put(info)
    cache.delete(a.uid)
    now[0] = 5
    assert cache.find({"pod_uid": a.uid}) is a  # late lines of a terminated pod
    cache.put(d)  # full: the deleted pod goes first
    assert cache.find({"pod_uid": a.uid}) is None and len(cache) == 3
    cache.replace_all([b, d])  # a re-list without c: c is deleted, kept for the grace period
    assert cache.find({"pod_uid": c.uid}) is c
    now[0] = 16
    cache.expire()
    assert cache.find({"pod_uid": c.uid}) is None
    assert cache.find({"namespace": b.namespace, "pod": b.name}) is b


def test_a_recreated_pod_with_the_same_name_is_not_the_old_one() -> None:
    old = pod_info(PODS[COREDNS], ALL)
    assert old is not None
    cache = PodCache(grace=60, max_pods=10)
    cache.put(old)
    assert cache.find({"namespace": "kube-system", "pod": COREDNS, "pod_uid": "another-uid"}) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
POD_KEYS = [
    "name",
    "namespace",
    "uid",
    "labels",
    "ownerReferences",
    "containerStatuses",
    "containers",
    "podIP",
]
POD_VALUES = (
    st.none()
    | st.integers()
    | st.lists(st.integers() | st.dictionaries(st.sampled_from(["name", "image", "kind"]), st.integers()))
    | st.text(max_size=5)
    | st.lists(st.text(max_size=3))
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3))
)


@given(JSON)
def test_any_json_is_a_pod_or_none(obj: object) -> None:
    info = pod_info(obj, ALL)
    if info is not None:
        info.metadata({"container": "c"})


@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status"]),
                       st.dictionaries(st.sampled_from(POD_KEYS), POD_VALUES)))  # fmt: skip
def test_malformed_pods_do_not_break_it(obj: dict) -> None:
    info = pod_info(obj, ALL)
    if info is not None:
        info.metadata({"container": "c", "container_id": "x"})


UID = "0123abcd-0000-4000-8000-00000000beef"


@pytest.mark.parametrize("root", ["/host", "/var/lib/kubelet/logs", "/mnt/rootfs/var/log/custom-pods"])
def test_a_pod_tree_outside_pods_is_recognised_by_its_shape(root: str) -> None:
    assert metadata_from_path(f"{root}/kube-system_coredns-74ff55c5b-cpfqs_{UID}/coredns/2.log") == {
        "namespace": "kube-system",
        "pod": "coredns-74ff55c5b-cpfqs",
        "pod_uid": UID,
        "container": "coredns",
        "restart_count": 2,
    }
    static = "7c3c5bfb9e4a1d6e8f0a2b4c6d8e0f12"  # a static pod's kubelet uid (config hash)
    assert metadata_from_path(f"{root}/kube-system_etcd-cp_{static}/etcd/0.log.20260101-000000") is not None


@pytest.mark.parametrize(
    "path",
    [
        f"/data/Kube-System_p_{UID}/c/0.log",  # not a DNS-1123 name
        "/data/ns_p_not-a-uid/c/0.log",
        f"/data/ns_p_{UID}/C_x/0.log",
        f"/data/ns_p_{UID}/c/current.log",
        "/var/log/app/a_b_c/d/1.log",
    ],
)
def test_other_trees_outside_pods_give_nothing(path: str) -> None:
    assert metadata_from_path(path) is None


def test_config_section(tmp_path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    text = f"""
kubernetes:
  kubeconfig: {kubeconfig}
  label_deny: [pod-template-hash, "re:controller-.*"]
  wait_for_metadata: 500ms
"""
    config = parse_logs_config(load_yaml(text, "agent.yaml"), source="agent.yaml", environ={})
    assert config.kubernetes.enabled is True  # auto: a kubeconfig is given
    assert config.kubernetes.wait_for_metadata == 0.5
    assert config.kubernetes.label_deny == ("pod-template-hash", "re:controller-.*")
    # auto outside a cluster (no service-account token): off; the default section too
    assert parse_logs_config(load_yaml("kubernetes: {}\n", "a.yaml"), environ={}).kubernetes.enabled is False
    assert parse_logs_config(None, environ={}).kubernetes.enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kubernetes:\n  label_allow: ['re:(']\n",
            "agent.yaml:2: logs.kubernetes.label_allow: invalid regular",
        ),
        ("kubernetes:\n  enabled: maybe\n", "agent.yaml:2: logs.kubernetes.enabled:"),
        ("kubernetes:\n  wait_for_metadata: soon\n", "agent.yaml:2: logs.kubernetes.wait_for_metadata:"),
        ("kubernetes:\n  kubeconfig: relative\n", "agent.yaml:2: logs.kubernetes.kubeconfig:"),
        ("kubernetes:\n  labls: true\n", "agent.yaml:2: logs.kubernetes.labls: unknown key"),
    ],
)
def test_config_errors_are_one_line_with_key_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_logs_config(load_yaml(text, "agent.yaml"), source="agent.yaml", environ={})
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


class ListPipeline:
    """What the enricher passes on, in order."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    async def wait_for_space(self) -> None:
        return None

    def put(self, segment: Segment) -> None:
        self.segments.append(segment)


def segment(cursor: Cursor, path_meta: dict, message: str, nbytes: int = 10) -> Segment:
    records = Records(["2026-01-01T00:00:00Z"], [message], ["stdout"], cursor.path, "n", dict(path_meta))
    return Segment(cursor, records, [nbytes], nbytes)


def enricher(max_held_bytes: int = 1000) -> tuple[EnrichingInput, PodCache, ListPipeline, list[float]]:
    now = [0.0]
    cache = PodCache(grace=60, max_pods=10, clock=lambda: now[0])
    out = ListPipeline()
    return (
        EnrichingInput(out, cache, wait=2.0, max_held_bytes=max_held_bytes, clock=lambda: now[0]),
        cache,
        out,
        now,
    )


def test_the_enricher_holds_an_unknown_pod_in_order_until_it_arrives() -> None:
    enrich, cache, out, now = enricher()
    info = info_of(COREDNS)
    path = {"namespace": info.namespace, "pod": info.name, "pod_uid": info.uid, "container": "coredns"}
    cursor = Cursor((1, 2), 0, "", "/p", 0)
    enrich.put(segment(cursor, {"namespace": "a"}, "no pod key"))  # not a pod's log: passes at once
    enrich.put(segment(cursor, path, "one"))
    enrich.put(segment(cursor, path, "two"))
    assert [s.records.messages[0] for s in out.segments] == ["no pod key"]
    assert cursor.inflight == 2  # held records keep the checkpoint behind them
    now[0] = 1.0
    cache.put(info)
    enrich._release_due()
    assert [s.records.messages[0] for s in out.segments] == ["no pod key", "one", "two"]
    assert cursor.inflight == 0
    assert out.segments[1].records.kubernetes is not None
    assert out.segments[1].records.kubernetes["owner_name"] == "coredns"
    assert enrich.longest_hold == 1.0


def test_the_enricher_ships_after_the_bound_and_does_not_hold_that_pod_again() -> None:
    enrich, _, out, now = enricher()
    cursor = Cursor((1, 3), 0, "", "/p", 0)
    ghost = {"namespace": "ns", "pod": "ghost", "pod_uid": "u", "container": "c"}
    enrich.put(segment(cursor, ghost, "one"))
    now[0] = 1.9
    enrich._release_due()
    assert out.segments == []
    now[0] = 2.0
    enrich._release_due()
    assert [s.records.kubernetes for s in out.segments] == [ghost]
    enrich.put(segment(cursor, ghost, "two"))  # given up on: not held again
    assert len(out.segments) == 2 and cursor.inflight == 0
    assert enrich.longest_hold == 2.0


def test_the_enricher_holds_a_bounded_number_of_bytes_and_flushes_at_shutdown() -> None:
    enrich, _, out, _ = enricher(max_held_bytes=25)
    cursor = Cursor((1, 4), 0, "", "/p", 0)
    first = {"namespace": "ns", "pod": "a", "pod_uid": "ua", "container": "c"}
    second = {"namespace": "ns", "pod": "b", "pod_uid": "ub", "container": "c"}
    enrich.put(segment(cursor, first, "a1"))
    enrich.put(segment(cursor, first, "a2"))
    enrich.put(segment(cursor, second, "b1"))  # 30 bytes held: the oldest pod's go on
    assert [s.records.messages[0] for s in out.segments] == ["a1", "a2"]
    enrich.flush()
    assert [s.records.messages[0] for s in out.segments] == ["a1", "a2", "b1"]
    assert cursor.inflight == 0


def test_segments_of_one_file_share_one_merged_dict_until_the_pod_changes() -> None:
    enrich, cache, out, _ = enricher()
    info = info_of(COREDNS)
    cache.put(info)
    cursor = Cursor((1, 5), 0, "", "/p", 0)
    tailer_dict = {"namespace": info.namespace, "pod": info.name, "pod_uid": info.uid, "container": "coredns"}
    segments = [segment(cursor, {}, message) for message in ("one", "two", "three")]
    for item in segments:
        item.records.kubernetes = tailer_dict  # as the tailer does: one dict per file
    enrich.put(segments[0])
    enrich.put(segments[1])
    assert segments[0].records.kubernetes is segments[1].records.kubernetes
    changed = copy.deepcopy(PODS[COREDNS])
    changed["metadata"]["labels"]["version"] = "2"
    new_info = pod_info(changed, ALL)
    assert new_info is not None
    cache.put(new_info)
    enrich.put(segments[2])
    merged = segments[2].records.kubernetes
    assert merged is not None and merged is not segments[0].records.kubernetes
    assert merged["labels"]["version"] == "2"
    assert [s.records.messages[0] for s in out.segments] == ["one", "two", "three"]
