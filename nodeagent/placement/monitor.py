"""Continuous placement monitoring (`nodeagent check-placement --watch`): one replica in the cluster watches
DaemonSets, nodes and pods and exports, with the same rules as the one-shot check, which nodes do not run a
DaemonSet that should and why.

Watches, not polling: each kind is listed once (paged), then watched from the list's resourceVersion; a watch
the server ends is resumed from the last version seen, and only a 410 Gone lists again. State is kept parsed
and small (no API objects): nodes, prepared DaemonSets, pods reduced to what the scheduler rules read, with
identical request maps and owner references shared, and per-node usage updated in place. An event marks nodes
or DaemonSets dirty; a single task re-evaluates only those, coalescing bursts, and yields to the loop between
DaemonSets so watches and scrapes are never starved.

Exported (only nodes that should run a DaemonSet and do not get a series of their own, so the series count
follows the problems, not nodes x DaemonSets):
- nodeagent_daemonset_node_verdict{namespace, daemonset, node, verdict, rule} 1 per blocked or pending node
  and rule
- nodeagent_daemonset_node_reason_info{namespace, daemonset, node, rule, reason} 1: the reason, for alerts
- nodeagent_daemonset_nodes{namespace, daemonset, verdict} node counts, by_design as its own verdict label
- nodeagent_daemonset_coverage_ratio{namespace, daemonset}: nodes running it / nodes that should
- nodeagent_placement_watch_synced{resource}, nodeagent_placement_watch_events_total{resource},
  nodeagent_placement_relists_total{resource}, nodeagent_placement_evaluations_total
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from nodeagent.metrics.exposition import _escape_label as escape_label
from nodeagent.metrics.exposition import format_value
from nodeagent.placement.live import KINDS, Cluster, ClusterError, ResourceVersionGone
from nodeagent.placement.model import (
    DaemonSet,
    ExistingPod,
    Node,
    Platform,
    node_from_obj,
    pod_from_obj,
)
from nodeagent.placement.rules import NodeResult, NodeUsage, Prepared, Verdict, evaluate_node, prepare
from nodeagent.placement.sources import InputError, Loaded, daemonsets_from
from nodeagent.safeio import quote

log = logging.getLogger("nodeagent.placement.monitor")

COALESCE_SECONDS = 0.2  # gather a burst of events into one evaluation
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)  # backoff after a failed list or watch
REASON_BYTES = 200
_EMPTY: dict = {}


@dataclass(slots=True)
class Problem:
    """Why one DaemonSet does not run on one node: the verdict, rules and first reason per rule."""

    verdict: Verdict
    by_design: bool
    reasons: dict[str, str]  # rule -> first reason message


# Excluded nodes export no series of their own, only counts: one shared record each, without reason texts
# (a DaemonSet for one pool of a big cluster excludes most nodes).
_EXCLUDED = {by_design: Problem(Verdict.EXCLUDED, by_design, {}) for by_design in (False, True)}


def _problem(result: NodeResult) -> Problem:
    if result.verdict == Verdict.EXCLUDED:
        return _EXCLUDED[result.by_design]
    reasons: dict[str, str] = {}
    for reason in result.reasons:
        reasons.setdefault(reason.rule.value, quote(reason.message, REASON_BYTES))
    return Problem(result.verdict, result.by_design, reasons)


class PlacementState:
    """Everything the monitor knows, updated by watch events and evaluated on demand. Not thread-safe: one
    event loop owns it."""

    def __init__(self, platforms: tuple[Platform, ...] = ()) -> None:
        self.platforms = platforms
        self.nodes: dict[str, Node] = {}
        self.daemonsets: dict[tuple[str, str], Prepared] = {}
        self.pods: dict[str, ExistingPod] = {}
        self.usage: dict[str, NodeUsage] = {}
        self.problems: dict[tuple[str, str], dict[str, Problem]] = {}  # DaemonSet -> node -> not running
        self.dirty_nodes: set[str] = set()
        self.dirty_daemonsets: set[tuple[str, str]] = set()
        self.evaluations = 0
        self._shared: dict[object, object] = {}  # identical request maps and owner refs, stored once

    # ------------------------------------------------------------ events

    def apply(self, kind: str, event: str, obj: dict) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) or listed object (ADDED)."""
        if kind == "nodes":
            self._node(event, obj)
        elif kind == "pods":
            self._pod(event, obj)
        else:
            self._daemonset(event, obj)

    def replace(self, kind: str, objects: list[dict]) -> None:
        """A fresh list: objects missing from it were deleted while nobody watched."""
        if kind == "nodes":
            names = {node_from_obj(obj, []).name for obj in objects}
            for gone in [name for name in self.nodes if name not in names]:
                self._forget_node(gone)
        elif kind == "pods":
            keys = {_pod_key(obj) for obj in objects}
            for gone in [key for key in self.pods if key not in keys]:
                self._unplace(self.pods.pop(gone))
        else:
            listed = {(ds.namespace, ds.name) for ds in map(_daemonset, objects) if ds is not None}
            for missing in [key for key in self.daemonsets if key not in listed]:
                self._forget_daemonset(missing)
        for obj in objects:
            self.apply(kind, "ADDED", obj)

    def _node(self, event: str, obj: dict) -> None:
        node = node_from_obj(obj, [])
        if event == "DELETED":
            self._forget_node(node.name)
        elif self.nodes.get(node.name) != node:  # heartbeats change nothing the rules read
            self.nodes[node.name] = node
            self.dirty_nodes.add(node.name)

    def _forget_node(self, name: str) -> None:
        self.nodes.pop(name, None)
        self.dirty_nodes.discard(name)
        for problems in self.problems.values():
            problems.pop(name, None)

    def _daemonset(self, event: str, obj: dict) -> None:
        ds = _daemonset(obj)
        if ds is None:
            return
        key = (ds.namespace, ds.name)
        if event == "DELETED":
            self._forget_daemonset(key)
            return
        known = self.daemonsets.get(key)
        if known is not None and known.ds.template == ds.template and known.ds.uid == ds.uid:
            return  # a status update
        self.daemonsets[key] = prepare(ds, self.platforms)
        self.dirty_daemonsets.add(key)

    def _forget_daemonset(self, key: tuple[str, str]) -> None:
        self.daemonsets.pop(key, None)
        self.problems.pop(key, None)
        self.dirty_daemonsets.discard(key)

    def _pod(self, event: str, obj: dict) -> None:
        key = _pod_key(obj)
        old = self.pods.pop(key, None)
        new = None if event == "DELETED" else self._compact(pod_from_obj(obj, []))
        if old is not None and new is not None and _placement_of(old) == _placement_of(new):
            self.pods[key] = old  # a status change: the node's usage is the same
            return
        if old is not None:
            self._unplace(old)
        if new is not None:
            self.pods[key] = new
            if new.bound and not new.terminated:
                usage = self.usage.get(new.node_name)
                if usage is None:
                    usage = self.usage[new.node_name] = NodeUsage()
                usage.add(new)
                self.dirty_nodes.add(new.node_name)

    def _unplace(self, pod: ExistingPod) -> None:
        if pod.bound and not pod.terminated:
            usage = self.usage.get(pod.node_name)
            if usage is not None:
                usage.remove(pod)
                if not usage.pod_count:
                    del self.usage[pod.node_name]
            self.dirty_nodes.add(pod.node_name)

    def _compact(self, pod: ExistingPod) -> ExistingPod:
        """Drop the API object and share what repeats across pods (a DaemonSet's pods ask for the same)."""
        pod.raw = _EMPTY
        pod.requests = self._share(tuple(sorted(pod.requests.items())), pod.requests)  # type: ignore[assignment]
        if pod.owner is not None:
            pod.owner = self._share(pod.owner, pod.owner)  # type: ignore[assignment]
        return pod

    def _share(self, key: object, value: object) -> object:
        return self._shared.setdefault(key, value)

    # ------------------------------------------------------------ evaluation

    def _evaluate(self, prepared: Prepared, node: Node) -> None:
        self.evaluations += 1
        result = evaluate_node(prepared, node, self.usage.get(node.name) or NodeUsage())
        problems = self.problems.setdefault((prepared.ds.namespace, prepared.ds.name), {})
        if result.verdict == Verdict.RUNS:
            problems.pop(node.name, None)
        else:
            problems[node.name] = _problem(result)

    async def evaluate_dirty(self) -> None:
        """Re-evaluate what changed: whole DaemonSets, then changed nodes against the other DaemonSets.

        Nodes changed while this runs (it yields between DaemonSets) stay dirty for the next call."""
        names, self.dirty_nodes = self.dirty_nodes, set()
        done: set[tuple[str, str]] = set()
        while self.dirty_daemonsets:
            key = self.dirty_daemonsets.pop()
            prepared = self.daemonsets.get(key)
            if prepared is None:
                continue
            self.problems[key] = {}
            for node in list(self.nodes.values()):
                self._evaluate(prepared, node)
            done.add(key)
            await asyncio.sleep(0)
        nodes = [self.nodes[name] for name in names if name in self.nodes]
        if nodes:
            for key, prepared in list(self.daemonsets.items()):
                if key not in done:
                    for node in nodes:
                        self._evaluate(prepared, node)
                    await asyncio.sleep(0)

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_nodes or self.dirty_daemonsets)


def _pod_key(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    uid = meta.get("uid")
    return str(uid) if uid else f"{meta.get('namespace')}/{meta.get('name')}"


def _placement_of(pod: ExistingPod) -> tuple:
    """What of a pod the rules read: where it is and what it holds there."""
    return (pod.node_name, pod.bound, pod.terminated, pod.requests, pod.host_ports, pod.owner, pod.name)


def _daemonset(obj: dict) -> DaemonSet | None:
    try:
        found = daemonsets_from([Loaded(dict(obj, kind="DaemonSet"), "cluster")])
    except InputError as error:
        log.warning("DaemonSet ignored: %s", error)
        return None
    return found[0] if found else None


# ---------------------------------------------------------------- exposition


def _labels(**labels: str) -> str:
    return ",".join(f'{name}="{escape_label(value)}"' for name, value in labels.items())


def render(state: PlacementState, watches: dict[str, WatchStatus]) -> str:
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")

    family(
        "nodeagent_daemonset_node_verdict",
        "gauge",
        "1 for each node that should run a DaemonSet and does not (blocked, pending), per rule; nodes that "
        "run it or are excluded have no series.",
    )
    for (namespace, name), problems in sorted(state.problems.items()):
        for node, problem in sorted(problems.items()):
            if problem.verdict == Verdict.EXCLUDED:
                continue
            for rule in problem.reasons:
                labels = _labels(
                    namespace=namespace, daemonset=name, node=node, verdict=problem.verdict.value, rule=rule
                )
                out.append(f"nodeagent_daemonset_node_verdict{{{labels}}} 1\n")
    family(
        "nodeagent_daemonset_node_reason_info",
        "gauge",
        "The first reason per rule why a DaemonSet does not run on a node, as check-placement reports it.",
    )
    for (namespace, name), problems in sorted(state.problems.items()):
        for node, problem in sorted(problems.items()):
            if problem.verdict == Verdict.EXCLUDED:
                continue
            for rule, reason in problem.reasons.items():
                labels = _labels(namespace=namespace, daemonset=name, node=node, rule=rule, reason=reason)
                out.append(f"nodeagent_daemonset_node_reason_info{{{labels}}} 1\n")
    family(
        "nodeagent_daemonset_nodes",
        "gauge",
        "Nodes per verdict for each DaemonSet; by_design: excluded as another OS or architecture.",
    )
    coverage: list[str] = []
    for (namespace, name), _ in sorted(state.daemonsets.items()):
        problems = state.problems.get((namespace, name), {})
        counts = {verdict.value: 0 for verdict in Verdict} | {"by_design": 0}
        for problem in problems.values():
            counts["by_design" if problem.by_design else problem.verdict.value] += 1
        counts["runs"] = len(state.nodes) - len(problems)
        for verdict, count in counts.items():
            labels = _labels(namespace=namespace, daemonset=name, verdict=verdict)
            out.append(f"nodeagent_daemonset_nodes{{{labels}}} {count}\n")
        should = counts["runs"] + counts["blocked"] + counts["pending"]
        ratio = counts["runs"] / should if should else 1.0
        labels = _labels(namespace=namespace, daemonset=name)
        coverage.append(f"nodeagent_daemonset_coverage_ratio{{{labels}}} {format_value(ratio)}\n")
    family(
        "nodeagent_daemonset_coverage_ratio",
        "gauge",
        "Nodes running the DaemonSet / nodes that should (all but those its selection or platform exclude).",
    )
    out.extend(coverage)
    for metric, kind, text, value in (
        ("nodeagent_placement_watch_synced", "gauge", "1 once the kind is listed and watched.", "synced"),
        ("nodeagent_placement_watch_events_total", "counter", "Watch events applied.", "events"),
        ("nodeagent_placement_relists_total", "counter", "Lists after the first (410 Gone).", "relists"),
    ):
        family(metric, kind, text)
        for resource, status in sorted(watches.items()):
            number = getattr(status, value)
            out.append(f'{metric}{{resource="{resource}"}} {int(number)}\n')
    family("nodeagent_placement_evaluations_total", "counter", "Node x DaemonSet evaluations done.")
    out.append(f"nodeagent_placement_evaluations_total {state.evaluations}\n")
    return "".join(out)


# ---------------------------------------------------------------- running


@dataclass(slots=True)
class WatchStatus:
    synced: bool = False
    events: int = 0
    relists: int = -1  # the first list is not a relist


async def _follow(
    cluster: Cluster, kind: str, state: PlacementState, status: WatchStatus, changed: Callable[[], None]
) -> None:
    """List once, then watch for ever; list again only when the version is gone."""
    version = ""
    failures = 0
    while True:
        try:
            if not version:
                objects, version = await cluster.list_kind(kind)
                status.relists += 1
                state.replace(kind, objects)
                del objects
                status.synced = True
                changed()
            async for event, obj in cluster.watch(kind, version):
                if event == "BOOKMARK":
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    continue
                state.apply(kind, event, obj)
                status.events += 1
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                changed()
            failures = 0
        except ResourceVersionGone:
            log.info("watch %s: resourceVersion gone, listing again", kind)
            version = ""
        except ClusterError as error:
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            log.warning("watch %s: %s; again in %.0fs", kind, error, delay)
            await asyncio.sleep(delay)


async def _evaluate_forever(state: PlacementState, wake: asyncio.Event) -> None:
    while True:
        await wake.wait()
        await asyncio.sleep(COALESCE_SECONDS)
        wake.clear()
        await state.evaluate_dirty()


def parse_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"--metrics-address {text!r}: expected [HOST]:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


async def run_monitor(
    kubeconfig: str | None,
    context: str | None,
    timeout: float | None,
    address: str,
    platforms: tuple[Platform, ...] = (),
) -> int:
    host, port = parse_address(address)
    state = PlacementState(platforms)
    watches = {kind: WatchStatus() for kind in KINDS}
    wake = asyncio.Event()

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=render(state, watches), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        ready = all(status.synced for status in watches.values())
        return web.Response(text="ok\n" if ready else "syncing\n", status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise InputError(f"--metrics-address {address}: {error.strerror or error}") from None
        log.info("placement monitor: metrics on %s:%d", host, port)
        async with Cluster(kubeconfig, context, timeout) as cluster:
            tasks = [
                asyncio.create_task(_follow(cluster, kind, state, watches[kind], wake.set)) for kind in KINDS
            ]
            tasks.append(asyncio.create_task(_evaluate_forever(state, wake)))
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await runner.cleanup()
    return 0
