"""Pod metadata from the Kubernetes API for container log records (``logs.kubernetes``).

Three parts:

- :func:`pod_info`: a pure function from a Pod object (as the API sends it) to what records get: labels
  and annotations (through :class:`KeyFilter` allow/deny lists), the controlling owner (a ReplicaSet named
  ``<deployment>-<pod-template-hash>`` resolved to its Deployment from the pod's own label, no API call),
  pod IP, and image / image ID per container from ``status.*containerStatuses``.
- :class:`PodWatch`: one list + watch of this node's pods (``fieldSelector=spec.nodeName=<node>``, never
  the cluster's) through :class:`nodeagent.placement.live.Cluster`, into a bounded :class:`PodCache`.
  410 Gone (at connect or as an ERROR event) lists again; BOOKMARKs move the resourceVersion on; an
  outage or any other error is counted and retried with exponential backoff and full jitter while
  records keep flowing with what is cached. A deleted pod stays findable for ``deleted_pod_grace`` so
  the last lines of a terminated container still get its metadata.
- :class:`EnrichingInput`: sits between the reader and the pipeline. A segment of a pod that is cached
  gets the pod's metadata at once. A segment of a pod not cached yet (just started, or the first list
  still under way) is held, with every later segment of that pod behind it in order, until the pod
  arrives or ``wait_for_metadata`` has passed since the first one was held; then it goes on with the
  path's metadata only (counted). The bound holds per record: nothing is held longer than
  ``wait_for_metadata`` (plus one loop tick). Held records count as in flight on their cursor, so no
  checkpoint moves past them; the bytes held are bounded by ``buffer_max_bytes`` (the oldest pod's
  records go on unenriched when it is full).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import logging
import math
import os
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nodeagent.config.logs import PodMetadataConfig
from nodeagent.logs import metrics
from nodeagent.logs.checkpoint import Segment
from nodeagent.logs.pipeline import PipelineInput
from nodeagent.placement.live import Cluster, ClusterError, ResourceVersionGone, resolve_kubeconfig

log = logging.getLogger("nodeagent.logs.podmeta")

STABLE_SECONDS = 60.0  # a watch that failed after working this long starts again at the initial backoff
EXPIRY_INTERVAL = 30.0  # seconds between looks for deleted pods past their grace period
MAX_GIVEN_UP = 4096  # pods whose wait ran out (later records of theirs are not held again)
_NO_LABELS: Mapping[str, str] = MappingProxyType({})
MAX_MERGED = 4096  # files whose merged metadata is kept for their next segments
MAX_REPLICASETS = 4096  # owners of ReplicaSets remembered (resolve_replicasets)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"  # a static pod's UID in kubelet (its log directory's)


# -- pure part ---------------------------------------------------------------------------------------


class KeyFilter:
    """Keeps the keys ``allow`` matches (all when empty) and ``deny`` does not. Patterns are globs
    (``app.kubernetes.io/*``) or, written ``re:<regex>``, regular expressions matched in full."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self._allow = _matcher(allow)
        self._deny = _matcher(deny)
        self._has_allow = bool(tuple(allow))

    def __call__(self, mapping: Any) -> dict[str, str]:
        if not isinstance(mapping, Mapping):
            return {}
        return {
            key: value
            for key, value in mapping.items()
            if isinstance(key, str)
            and isinstance(value, str)
            and (not self._has_allow or self._allow(key))
            and not self._deny(key)
        }


def _matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    parts = [
        pattern[3:] if pattern.startswith("re:") else fnmatch.translate(pattern).removesuffix(r"\Z")
        for pattern in patterns
    ]
    if not parts:
        return lambda key: False
    compiled = re.compile("|".join(f"(?:{part})" for part in parts))
    return lambda key: compiled.fullmatch(key) is not None


@dataclass(frozen=True)
class PodInfo:
    """What a pod gives its records; ``common`` goes to every container's, ``containers`` per name."""

    namespace: str
    name: str
    uid: str
    mirror_uid: str  # a static pod's kubelet UID (its log directory), else ""
    common: dict[str, Any]
    containers: dict[str, dict[str, str]]  # name -> image, image_id, container_id
    container_ids: tuple[str, ...] = ()

    def metadata(self, path_meta: Mapping[str, Any]) -> dict[str, Any]:
        """The record's kubernetes block: the path's fields, then the pod's."""
        container = path_meta.get("container")
        if not isinstance(container, str):  # a docker json-file path knows only the container id
            cid = path_meta.get("container_id")
            container = next((n for n, c in self.containers.items() if c.get("container_id") == cid), None)
        merged = {"namespace": self.namespace, "pod": self.name, "pod_uid": self.uid}
        if container:
            merged["container"] = container
        merged.update(path_meta)
        merged.update(self.common)
        info = self.containers.get(container or "", {})
        merged.update((k, v) for k, v in info.items() if k != "container_id")
        return merged


@dataclass(frozen=True)
class Filters:
    labels: KeyFilter | None
    annotations: KeyFilter | None

    @classmethod
    def of(cls, config: PodMetadataConfig) -> Filters:
        return cls(
            KeyFilter(config.label_allow, config.label_deny) if config.labels else None,
            KeyFilter(config.annotation_allow, config.annotation_deny) if config.annotations else None,
        )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def controller_of(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's controller, else of its first owner."""
    owners = [o for o in _items(metadata.get("ownerReferences")) if isinstance(o, Mapping)]
    owner = next((o for o in owners if o.get("controller") is True), owners[0] if owners else None)
    if owner is None:
        return None
    kind, name = _str(owner.get("kind")), _str(owner.get("name"))
    return (kind, name) if kind and name else None


def owner_of(metadata: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the pod's controller (else its first owner); a ReplicaSet named
    ``<name>-<pod-template-hash>`` whose hash is the pod's ``pod-template-hash`` label is reported as the
    Deployment ``<name>`` (that is how the Deployment controller names them)."""
    controller = controller_of(metadata)
    if controller is None:
        return None
    kind, name = controller
    labels = metadata.get("labels")
    template_hash = _str(labels.get("pod-template-hash")) if isinstance(labels, Mapping) else ""
    if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _container_id(raw: Any) -> str:
    text = _str(raw)
    return text.split("://", 1)[1] if "://" in text else text


def pod_info(pod: Any, filters: Filters) -> PodInfo | None:
    """The record metadata of a Pod object, or None when it lacks namespace, name or uid."""
    if not isinstance(pod, Mapping) or not isinstance(pod.get("metadata"), Mapping):
        return None
    metadata = pod["metadata"]
    namespace, name, uid = (
        _str(metadata.get("namespace")),
        _str(metadata.get("name")),
        _str(metadata.get("uid")),
    )
    if not (namespace and name and uid):
        return None
    spec = _mapping(pod.get("spec"))
    status = _mapping(pod.get("status"))
    common: dict[str, Any] = {}
    if filters.labels is not None and (labels := filters.labels(metadata.get("labels"))):
        common["labels"] = labels
    if filters.annotations is not None and (annotations := filters.annotations(metadata.get("annotations"))):
        common["annotations"] = annotations
    owner = owner_of(metadata)
    if owner:
        common["owner_kind"], common["owner_name"] = owner
    if pod_ip := _str(status.get("podIP")):
        common["pod_ip"] = pod_ip
    containers: dict[str, dict[str, str]] = {}
    for key in ("initContainers", "containers", "ephemeralContainers"):  # the spec's image until it runs
        for item in _items(spec.get(key)):
            if isinstance(item, Mapping) and _str(item.get("name")) and _str(item.get("image")):
                containers[item["name"]] = {"image": item["image"]}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for item in _items(status.get(key)):
            if not isinstance(item, Mapping) or not _str(item.get("name")):
                continue
            found = {
                "image": _str(item.get("image")),
                "image_id": _str(item.get("imageID")),
                "container_id": _container_id(item.get("containerID")),
            }
            containers[item["name"]] = {k: v for k, v in found.items() if v}
    annotations = metadata.get("annotations")
    mirror = _str(annotations.get(MIRROR_ANNOTATION)) if isinstance(annotations, Mapping) else ""
    ids = tuple(c["container_id"] for c in containers.values() if c.get("container_id"))
    return PodInfo(namespace, name, uid, mirror, common, containers, ids)


# -- cache -------------------------------------------------------------------------------------------


class PodCache:
    """This node's pods by UID (and static pods by their kubelet UID, pods by name and by container ID);
    deleted ones stay for ``grace`` seconds. At most ``max_pods`` entries: deleted ones go first."""

    def __init__(self, grace: float, max_pods: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.max_pods = max_pods
        self.clock = clock
        self.pods: dict[str, PodInfo] = {}
        self.deleted: OrderedDict[str, float] = OrderedDict()  # uid -> when it expires, oldest first
        self._by_alias: dict[str, str] = {}  # mirror uid / container id -> uid
        self._by_name: dict[tuple[str, str], str] = {}
        self.node_labels: dict[str, str] = {}
        self.version = 0  # bumped on every change (the enricher looks at its held pods again)

    def __len__(self) -> int:
        return len(self.pods)

    def put(self, info: PodInfo) -> None:
        old = self.pods.get(info.uid)
        if old is None and len(self.pods) >= self.max_pods:
            self.expire(force=1)
            if len(self.pods) >= self.max_pods:
                return  # only live pods: a node does not run this many; refuse rather than grow
        if old is not None:
            self._unindex(old)
        self.deleted.pop(info.uid, None)
        self.pods[info.uid] = info
        self._by_name[(info.namespace, info.name)] = info.uid
        for alias in (info.mirror_uid, *info.container_ids):
            if alias:
                self._by_alias[alias] = info.uid
        self.version += 1
        self._gauges()

    def delete(self, uid: str) -> None:
        if uid in self.pods and uid not in self.deleted:
            self.deleted[uid] = self.clock() + self.grace
            self.version += 1
            self._gauges()

    def replace_all(self, infos: Iterable[PodInfo]) -> None:
        """A fresh list: pods not in it are deleted (kept for the grace period)."""
        listed = set()
        for info in infos:
            listed.add(info.uid)
            self.put(info)
        for uid in [uid for uid in self.pods if uid not in listed]:
            self.delete(uid)

    def expire(self, force: int = 0) -> None:
        """Forget deleted pods past their grace period (and ``force`` more, oldest first)."""
        now = self.clock()
        while self.deleted:
            uid, until = next(iter(self.deleted.items()))
            if until > now and force <= 0:
                break
            force -= 1
            del self.deleted[uid]
            self._unindex(self.pods.pop(uid))
            self.version += 1
        self._gauges()

    def _unindex(self, info: PodInfo) -> None:
        if self._by_name.get((info.namespace, info.name)) == info.uid:
            del self._by_name[(info.namespace, info.name)]
        for alias in (info.mirror_uid, *info.container_ids):
            if alias and self._by_alias.get(alias) == info.uid:
                del self._by_alias[alias]

    def find(self, path_meta: Mapping[str, Any]) -> PodInfo | None:
        """The pod a log path belongs to: by pod UID when the path has it (so a pod re-created under the
        same name is not mistaken for the old one), else by container ID, else by namespace and name."""
        uid = path_meta.get("pod_uid")
        if isinstance(uid, str):
            return self.pods.get(uid) or self.pods.get(self._by_alias.get(uid, ""))
        cid = path_meta.get("container_id")
        if isinstance(cid, str) and cid in self._by_alias:
            return self.pods.get(self._by_alias[cid])
        namespace, name = path_meta.get("namespace"), path_meta.get("pod")
        if isinstance(namespace, str) and isinstance(name, str):
            return self.pods.get(self._by_name.get((namespace, name), ""))
        return None

    def _gauges(self) -> None:
        metrics.PODMETA_CACHED_PODS.labels("deleted").set(len(self.deleted))
        metrics.PODMETA_CACHED_PODS.labels("live").set(len(self.pods) - len(self.deleted))


def pod_key(path_meta: Mapping[str, Any]) -> str | None:
    """What identifies a log file's pod, for holding its records together; None: not a pod's log."""
    for key in ("pod_uid", "container_id"):
        if isinstance(path_meta.get(key), str):
            return str(path_meta[key])
    if isinstance(path_meta.get("namespace"), str) and isinstance(path_meta.get("pod"), str):
        return f"{path_meta['namespace']}/{path_meta['pod']}"
    return None


# -- the watch ---------------------------------------------------------------------------------------


def cluster_source(config: PodMetadataConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The kubeconfig to use, None for in-cluster: the option, else in-cluster when in a pod, else as
    kubectl picks it ($KUBECONFIG, ~/.kube/config)."""
    environ = os.environ if environ is None else environ
    if config.kubeconfig:
        return config.kubeconfig
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    return resolve_kubeconfig(None, environ)


class PodWatch:
    """Keeps :attr:`cache` filled with this node's pods, from one list + watch, for as long as it runs."""

    def __init__(
        self,
        config: PodMetadataConfig,
        node_name: str,
        cache: PodCache,
        *,
        on_change: Callable[[], None] = lambda: None,
        environ: Mapping[str, str] | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.config = config
        self.backoff = backoff  # initial, max: the shipper's retry_initial_backoff, retry_max_backoff
        self.node_name = node_name
        self.selector = f"spec.nodeName={node_name}"
        self.cache = cache
        self.filters = Filters.of(config)
        self.node_label_filter = KeyFilter(config.label_allow, config.label_deny)
        self.on_change = on_change
        self.environ = environ
        self.replicaset_owners: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self.healthy = False  # listed and watching; False during an outage
        self.synced = asyncio.Event()  # the first list is in the cache

    async def run(self) -> None:
        initial, most = self.backoff
        backoff = initial
        reported = False
        last_list = -math.inf
        while True:
            try:
                async with Cluster(
                    cluster_source(self.config, self.environ), timeout=self.config.request_timeout
                ) as api:
                    async for _ in self._follow(api):
                        last_list = time.monotonic()
                        if reported:
                            log.info("pod metadata watch is back", extra={"node": self.node_name})
                            reported = False
            except Exception as exc:  # an outage (ClusterError) or a bug: records keep flowing either way
                metrics.PODMETA_API_ERRORS.inc()
                if not isinstance(exc, ClusterError):
                    log.exception("pod metadata watch failed unexpectedly")
                if not reported:  # once per outage, not once per retry
                    log.warning(
                        "pod metadata: the API is unavailable; records carry cached and path metadata",
                        extra={"node": self.node_name, "err": str(exc)[:300]},
                    )
                    reported = True
            self._set_healthy(False)
            metrics.PODMETA_WATCH_RESTARTS.labels("error").inc()
            if time.monotonic() - last_list > STABLE_SECONDS:
                backoff = initial  # it had worked for a while: a new problem
            # Full jitter, and no reset while lists succeed but watches keep failing: 5,000 agents must not
            # list again in step.
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, most)

    async def _follow(self, api: Cluster) -> AsyncIterator[None]:
        """List, then watch from the list's version; again on 410. Yields after each successful list."""
        while True:
            items, version = await api.list_kind("pods", self.selector)
            if self.config.node_labels:
                node = await api.node(self.node_name)
                self.cache.node_labels = self.node_label_filter(_mapping(node.get("metadata")).get("labels"))
            self.cache.replace_all([i for pod in items if (i := await self._info(api, pod)) is not None])
            self._set_healthy(True)
            self.synced.set()
            self.on_change()
            yield
            try:
                while True:
                    started, events = time.monotonic(), 0
                    async for kind, obj in api.watch("pods", version, self.selector):
                        events += 1
                        version = _str((obj.get("metadata") or {}).get("resourceVersion")) or version
                        if kind in ("ADDED", "MODIFIED"):
                            if (info := await self._info(api, obj)) is not None:
                                self.cache.put(info)
                        elif kind == "DELETED":
                            self.cache.delete(_str((obj.get("metadata") or {}).get("uid")))
                        self.cache.expire()
                        self.on_change()
                    if not events and time.monotonic() - started < 1.0:
                        raise ClusterError("the pod watch ended at once")  # e.g. a proxy: back off
                    metrics.PODMETA_WATCH_RESTARTS.labels("closed").inc()  # the server ends every watch
            except ResourceVersionGone:
                metrics.PODMETA_WATCH_RESTARTS.labels("expired").inc()

    async def _info(self, api: Cluster, pod: Any) -> PodInfo | None:
        """:func:`pod_info`, with the owner of its ReplicaSet from the API when ``resolve_replicasets``
        is on (one get per ReplicaSet, remembered; on failure the name rule stands)."""
        info = pod_info(pod, self.filters)
        if info is None or not self.config.resolve_replicasets:
            return info
        controller = controller_of(pod["metadata"])
        if controller is None or controller[0] != "ReplicaSet":
            return info
        key = (info.namespace, controller[1])
        owner = self.replicaset_owners.get(key)
        if owner is None:
            try:
                replicaset = await api.replicaset(*key)
            except ClusterError as exc:
                metrics.PODMETA_API_ERRORS.inc()
                log.warning(
                    "pod metadata: cannot get a ReplicaSet", extra={"rs": "/".join(key), "err": str(exc)}
                )
                return info
            owner = controller_of(_mapping(replicaset.get("metadata"))) or controller
            self.replicaset_owners[key] = owner
            if len(self.replicaset_owners) > MAX_REPLICASETS:
                self.replicaset_owners.popitem(last=False)
        common = {**info.common, "owner_kind": owner[0], "owner_name": owner[1]}
        return dataclasses.replace(info, common=common)

    def _set_healthy(self, healthy: bool) -> None:
        self.healthy = healthy
        metrics.PODMETA_API_UP.set(1 if healthy else 0)


# -- the enricher ------------------------------------------------------------------------------------


@dataclass
class _Held:
    since: float
    segments: deque[Segment] = field(default_factory=deque)
    nbytes: int = 0


class EnrichingInput:
    """A :class:`~nodeagent.logs.pipeline.PipelineInput` that adds pod metadata to container log segments
    before they enter the pipeline (see the module's docstring for when it holds them back)."""

    def __init__(
        self,
        pipeline: PipelineInput,
        cache: PodCache,
        *,
        wait: float,
        max_held_bytes: int,
        is_healthy: Callable[[], bool] = lambda: True,
        node_labels: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.cache = cache
        self.wait = wait
        self.max_held_bytes = max_held_bytes
        self.is_healthy = is_healthy
        self.node_labels = node_labels
        self.clock = clock
        self._held: OrderedDict[str, _Held] = OrderedDict()  # oldest first
        self._held_bytes = 0
        self._given_up: OrderedDict[str, None] = OrderedDict()
        self._changed = asyncio.Event()
        # id(path dict) -> (path dict, pod, node labels, merged): the path dict is kept, so its id stays its
        self._merged: OrderedDict[int, tuple[Mapping[str, Any], PodInfo, Mapping[str, str], dict[str, Any]]]
        self._merged = OrderedDict()
        self.longest_hold = 0.0  # seconds, for tests and the log

    async def wait_for_space(self) -> None:
        await self.pipeline.wait_for_space()

    def put(self, segment: Segment) -> None:
        path_meta = segment.records.kubernetes
        key = pod_key(path_meta) if path_meta else None
        if key is None or path_meta is None:
            self.pipeline.put(segment)
            return
        held = self._held.get(key)
        if held is None:
            info = self.cache.find(path_meta)
            if info is not None:
                self._enrich(segment, info)
                self._given_up.pop(key, None)
                self.pipeline.put(segment)
                return
            if self.wait <= 0 or key in self._given_up:
                self._without_metadata(segment)
                self.pipeline.put(segment)
                return
            held = self._held[key] = _Held(self.clock())
            self._changed.set()
        held.segments.append(segment)
        held.nbytes += segment.nbytes
        self._held_bytes += segment.nbytes
        segment.cursor.inflight += len(segment.records)  # no checkpoint moves past what is held
        while self._held_bytes > self.max_held_bytes and self._held:
            self._release(next(iter(self._held)), "hold_full")

    def notify(self) -> None:
        """The cache changed: held pods may be known now."""
        self._changed.set()

    async def run(self) -> None:
        """Release held records when their pod arrives or their wait is over."""
        while True:
            self._changed.clear()
            self._release_due()
            self.cache.expire()  # deleted pods past their grace, also while no watch event comes
            timeout = EXPIRY_INTERVAL
            if self._held:
                first = next(iter(self._held.values()))
                timeout = min(timeout, max(0.0, first.since + self.wait - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def flush(self) -> None:
        """Shutdown: everything held goes on now, with what is known."""
        for key in list(self._held):
            self._release(key, "shutdown")

    def _release_due(self) -> None:
        now = self.clock()
        for key, held in list(self._held.items()):
            info = self.cache.find(held.segments[0].records.kubernetes or {})
            if info is not None:
                self._release(key, None)
            elif now >= held.since + self.wait:
                self._release(key, "wait_expired" if self.is_healthy() else "api_unavailable")

    def _release(self, key: str, reason: str | None) -> None:
        held = self._held.pop(key)
        self._held_bytes -= held.nbytes
        self.longest_hold = max(self.longest_hold, self.clock() - held.since)
        if reason is not None and reason != "shutdown":
            self._given_up[key] = None
            if len(self._given_up) > MAX_GIVEN_UP:
                self._given_up.popitem(last=False)
        for segment in held.segments:
            segment.cursor.inflight -= len(segment.records)
            info = self.cache.find(segment.records.kubernetes or {})
            if info is not None:
                self._enrich(segment, info)
            else:
                self._without_metadata(segment, reason or "wait_expired")
            self.pipeline.put(segment)

    def _enrich(self, segment: Segment, info: PodInfo) -> None:
        # Every segment of a file carries the tailer's one path dict: while neither it, the pod nor the
        # node labels change, its segments share one merged dict (built once; sinks that group records
        # by their metadata object, as OTLP's resources, see one group per file).
        path_meta = segment.records.kubernetes or {}
        node_labels = self.cache.node_labels if self.node_labels else _NO_LABELS
        entry = self._merged.get(id(path_meta))
        if entry is None or entry[0] is not path_meta or entry[1] is not info or entry[2] is not node_labels:
            meta = info.metadata(path_meta)
            if node_labels:
                meta["node_labels"] = node_labels
            entry = self._merged[id(path_meta)] = (path_meta, info, node_labels, meta)
            if len(self._merged) > MAX_MERGED:
                self._merged.popitem(last=False)
        self._merged.move_to_end(id(path_meta))
        segment.records.kubernetes = entry[3]

    def _without_metadata(self, segment: Segment, reason: str | None = None) -> None:
        if reason is None:
            reason = "not_found" if self.is_healthy() else "api_unavailable"
        metrics.PODMETA_RECORDS_WITHOUT_METADATA.labels(reason).inc(len(segment.records))


class PodMetadata:
    """The watch and the enricher together, as the shipper runs them."""

    def __init__(
        self,
        config: PodMetadataConfig,
        node_name: str,
        pipeline: PipelineInput,
        max_held_bytes: int,
        backoff: tuple[float, float] = (0.5, 30.0),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.cache = PodCache(config.deleted_pod_grace, config.max_cached_pods)
        self.watch = PodWatch(config, node_name, self.cache, environ=environ, backoff=backoff)
        self.input = EnrichingInput(
            pipeline,
            self.cache,
            wait=config.wait_for_metadata,
            max_held_bytes=max_held_bytes,
            is_healthy=lambda: self.watch.healthy,
            node_labels=config.node_labels,
        )
        self.watch.on_change = self.input.notify

    async def run(self) -> None:
        await asyncio.gather(self.watch.run(), self.input.run())


def node_name_for(
    config: PodMetadataConfig, agent_node: str, environ: Mapping[str, str] | None = None
) -> str:
    """The node whose pods to watch: the option, else $NODEAGENT_NODE_NAME, else the agent's node name."""
    environ = os.environ if environ is None else environ
    return config.node_name or environ.get("NODEAGENT_NODE_NAME") or agent_node
