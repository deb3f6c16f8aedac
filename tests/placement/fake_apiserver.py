"""A tiny read-only Kubernetes API server for live-mode tests, serving recorded objects over plain HTTP.

Lists carry the cluster's resourceVersion, and `?watch=true` streams watch events (newline-delimited JSON, as
the API server sends them) from a given resourceVersion: tests change the cluster with `FakeCluster.change`,
which the open watches deliver at once; a version older than `FakeCluster.oldest_version` gets 410 Gone.

The cluster is the real kind cluster from the sonobuoy fixtures (nodes and kube-system pods), its kindnet and
kube-proxy DaemonSets rebuilt from their pods, and three seed-example DaemonSets with pods in the states
real clusters show (Ready, starting, unschedulable with a FailedScheduling event, left on a tainted node).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from nodeagent.placement.cli import add_arguments, run
from tests.conftest import free_port
from tests.placement.builders import KIND_NODES, KIND_PODS, SEEDS

TOKEN = "test-token-5b2f"
NGINX_PENDING_MESSAGE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/master: }, "
    "2 node(s) didn't match Pod's node affinity/selector."
)


def _daemonset_from_pod(pod: dict, name: str, uid: str, status: dict, generation: int = 1) -> dict:
    """A DaemonSet object as the API returns it, with the pod's spec as template (minus per-node parts)."""
    spec = copy.deepcopy(pod["spec"])
    for per_pod in ("nodeName", "affinity"):  # the controller adds these per node
        spec.pop(per_pod, None)
    return {
        "metadata": {
            "name": name,
            "namespace": pod["metadata"]["namespace"],
            "uid": uid,
            "generation": generation,
        },
        "spec": {
            "selector": {"matchLabels": {"k8s-app": name}},
            "template": {"metadata": {"labels": {"k8s-app": name}}, "spec": spec},
        },
        "status": status,
    }


def _daemonset_from_seed(file: str, uid: str, status: dict, generation: int) -> dict:
    obj = yaml.safe_load((SEEDS / file).read_text())
    obj["metadata"].update(uid=uid, generation=generation)
    obj["status"] = status
    obj.pop("apiVersion"), obj.pop("kind")  # list items come without them
    return obj


def _status(desired: int, ready: int, misscheduled: int, observed: int) -> dict:
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": desired,
        "numberReady": ready,
        "numberMisscheduled": misscheduled,
        "observedGeneration": observed,
    }


def _pod(ds: dict, suffix: str, node: str, state: str) -> dict:
    namespace, name, uid = ds["metadata"]["namespace"], ds["metadata"]["name"], ds["metadata"]["uid"]
    spec = copy.deepcopy(ds["spec"]["template"]["spec"])
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            }
        }
    }
    conditions = [{"type": "PodScheduled", "status": "True"}]
    status: dict[str, Any] = {"phase": "Running", "conditions": conditions}
    if state == "unschedulable":
        conditions[0] = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": NGINX_PENDING_MESSAGE}  # fmt: skip
        status["phase"] = "Pending"
    else:
        spec["nodeName"] = node
    if state == "ready":
        conditions.append({"type": "Ready", "status": "True"})
    if state == "starting":
        status["phase"] = "Pending"
        status["containerStatuses"] = [
            {"name": spec["containers"][0]["name"], "ready": False,
             "state": {"waiting": {"reason": "ContainerCreating"}}}
        ]  # fmt: skip
    return {
        "metadata": {
            "name": f"{name}-{suffix}",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name, "uid": uid, "controller": True}
            ],
        },
        "spec": spec,
        "status": status,
    }


@dataclass
class FakeCluster:
    nodes: list[dict]
    pods: list[dict]
    daemonsets: list[dict]
    events: list[dict]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, query
    page_size: int | None = 2  # forces the client to follow `continue` tokens
    version: int = 1000
    oldest_version: int = 0
    history: list[tuple[int, str, str, dict]] = field(default_factory=list)  # version, kind, type, object
    _changed: asyncio.Condition | None = None
    closed: bool = False  # set when the server stops: open watches end
    unavailable: bool = False  # an outage: every request gets 503, open watches end
    watch_generation: int = 0  # bumped by end_watches: open watches end (as the server's timeout does)
    replicasets: list[dict] = field(default_factory=list)  # served by get only

    def objects(self, kind: str) -> list[dict]:
        return {"nodes": self.nodes, "pods": self.pods, "daemonsets": self.daemonsets}[kind]

    async def change(self, kind: str, event: str, obj: dict) -> None:
        """ADDED, MODIFIED or DELETED: update the stored objects and tell every watcher."""
        self.version += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        objects = self.objects(kind)
        name = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        objects[:] = [o for o in objects if (o["metadata"].get("namespace"), o["metadata"]["name"]) != name]
        if event != "DELETED":
            objects.append(obj)
        self.history.append((self.version, kind, event, obj))
        async with self.changed:
            self.changed.notify_all()

    async def bookmark(self, kind: str) -> None:
        """A BOOKMARK event: only the current resourceVersion (sent to watches that asked for bookmarks)."""
        self.version += 1
        self.history.append(
            (self.version, kind, "BOOKMARK", {"metadata": {"resourceVersion": str(self.version)}})
        )
        await self._notify()

    async def expire(self, kind: str) -> None:
        """The watch cache moved on: open watches get an ERROR 410 event, older versions 410 at connect."""
        self.version += 1
        self.oldest_version = self.version
        gone = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410,
                "message": "too old resource version"}  # fmt: skip
        self.history.append((self.version, kind, "ERROR", gone))
        await self._notify()

    async def end_watches(self) -> None:
        self.watch_generation += 1
        await self._notify()

    async def set_unavailable(self, unavailable: bool) -> None:
        self.unavailable = unavailable
        await self._notify()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def watch_requests(self, path: str) -> list[dict[str, str]]:
        return [query for _, where, query in self.requests if where == path and _is_watch(query)]

    def list_requests(self, path: str) -> list[dict[str, str]]:
        return [query for _, where, query in self.requests if where == path and not _is_watch(query)]


def _is_watch(query: dict[str, str]) -> bool:
    return query.get("watch", "").lower() in ("true", "1")


def _selected(obj: dict, query: dict[str, str]) -> bool:
    """The one field selector the fake honours: ``spec.nodeName=<node>`` (others are ignored)."""
    for term in (query.get("fieldSelector") or "").split(","):
        if term.startswith("spec.nodeName="):
            return (obj.get("spec") or {}).get("nodeName") == term.split("=", 1)[1]
    return True


async def _watch(request: web.Request, cluster: FakeCluster, kind: str) -> web.StreamResponse:
    since = int(request.query.get("resourceVersion") or cluster.version)
    generation = cluster.watch_generation
    bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("true", "1")
    if since < cluster.oldest_version:
        gone = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410,
                "message": f"too old resource version: {since} ({cluster.oldest_version})"}  # fmt: skip
        return web.json_response(gone, status=410)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    deadline = asyncio.get_running_loop().time() + float(request.query.get("timeoutSeconds") or 60)
    sent = since
    while True:
        for version, event_kind, event, obj in list(cluster.history):
            if version > sent:
                sent = version
                if event_kind != kind or (event == "BOOKMARK" and not bookmarks):
                    continue
                if event in ("ADDED", "MODIFIED", "DELETED") and not _selected(obj, dict(request.query)):
                    continue
                await response.write(json.dumps({"type": event, "object": obj}).encode() + b"\n")
                if event == "ERROR":
                    return response
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0 or cluster.closed or cluster.unavailable or cluster.watch_generation != generation:
            return response
        async with cluster.changed:
            if (
                (cluster.version == sent or not cluster.history)
                and cluster.watch_generation == generation
                and not cluster.unavailable
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cluster.changed.wait(), remaining)


def recorded_cluster() -> FakeCluster:
    nodes = json.loads(KIND_NODES.read_text())["items"]
    pods = json.loads(KIND_PODS.read_text())["items"]
    kindnet_pod = next(p for p in pods if p["metadata"]["name"] == "kindnet-x9fsq")
    proxy_pod = next(p for p in pods if p["metadata"]["name"] == "kube-proxy-g79v6")
    kindnet = _daemonset_from_pod(
        kindnet_pod, "kindnet", kindnet_pod["metadata"]["ownerReferences"][0]["uid"], _status(3, 3, 0, 1)
    )
    proxy = _daemonset_from_pod(
        proxy_pod, "kube-proxy", proxy_pod["metadata"]["ownerReferences"][0]["uid"], _status(3, 3, 0, 1)
    )
    fluentd = _daemonset_from_seed("02-fluentd-daemonset.yaml", "uid-fluentd", _status(3, 2, 0, 2), 2)
    nginx = _daemonset_from_seed("01-nginx-daemonset.yaml", "uid-nginx", _status(2, 1, 1, 3), 3)
    exporter = _daemonset_from_seed("03-node-exporter-daemonset.yaml", "uid-exporter", _status(2, 0, 0, 1), 2)
    pods += [
        _pod(fluentd, "cp", "kind-control-plane", "ready"),
        _pod(fluentd, "w1", "kind-worker", "starting"),
        _pod(fluentd, "w2", "kind-worker2", "ready"),
        _pod(nginx, "cp", "kind-control-plane", "ready"),  # from before the master taint
        _pod(nginx, "w1", "kind-worker", "unschedulable"),
        _pod(nginx, "w2", "kind-worker2", "ready"),
    ]
    events = [
        {
            "metadata": {"name": "nginx-daemonset-w1.17d", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-daemonset-w1"},
            "reason": "FailedScheduling",
            "type": "Warning",
            "message": NGINX_PENDING_MESSAGE,
            "lastTimestamp": "2022-01-27T14:45:00Z",
        },
        {
            "metadata": {"name": "unrelated.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx-daemonset-w1"},
            "reason": "Pulled",
            "type": "Normal",
            "message": "Successfully pulled image",
        },
    ]
    return FakeCluster(nodes, pods, [kindnet, proxy, fluentd, nginx, exporter], events)


def _page(
    request: web.Request, items: list[dict], kind: str, page_size: int | None, version: int = 1000
) -> web.Response:
    start = int(request.query.get("continue") or 0)
    limit = int(request.query.get("limit") or 0) or len(items)
    if page_size:
        limit = min(limit, page_size)
    chunk = items[start : start + limit]
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if start + limit < len(items):
        metadata["continue"] = str(start + limit)
    return web.json_response({"kind": kind, "apiVersion": "v1", "metadata": metadata, "items": chunk})


def build_app(cluster: FakeCluster) -> web.Application:
    @web.middleware
    async def record_and_authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        cluster.requests.append((request.method, request.path, dict(request.query)))
        if cluster.unavailable:
            return web.json_response({"kind": "Status", "message": "unavailable", "code": 503}, status=503)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "message": "Unauthorized", "code": 401}, status=401)
        if request.method != "GET":
            return web.json_response(
                {"kind": "Status", "message": "read-only test server", "code": 405}, status=405
            )
        return await handler(request)

    async def nodes(request: web.Request) -> web.StreamResponse:
        if _is_watch(dict(request.query)):
            return await _watch(request, cluster, "nodes")
        return _page(request, cluster.nodes, "NodeList", cluster.page_size, cluster.version)

    async def pods(request: web.Request) -> web.StreamResponse:
        if _is_watch(dict(request.query)):
            return await _watch(request, cluster, "pods")
        pods = [pod for pod in cluster.pods if _selected(pod, dict(request.query))]
        return _page(request, pods, "PodList", cluster.page_size, cluster.version)

    async def node(request: web.Request) -> web.Response:
        found = [n for n in cluster.nodes if n["metadata"]["name"] == request.match_info["name"]]
        if not found:
            return web.json_response({"kind": "Status", "message": "not found", "code": 404}, status=404)
        return web.json_response({"kind": "Node", "apiVersion": "v1", **found[0]})

    async def replicaset(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        found = [
            r
            for r in cluster.replicasets
            if (r["metadata"]["namespace"], r["metadata"]["name"]) == (namespace, name)
        ]
        if not found:
            return web.json_response({"kind": "Status", "message": "not found", "code": 404}, status=404)
        return web.json_response({"kind": "ReplicaSet", "apiVersion": "apps/v1", **found[0]})

    async def daemonsets(request: web.Request) -> web.StreamResponse:
        if _is_watch(dict(request.query)):
            return await _watch(request, cluster, "daemonsets")
        namespace = request.match_info.get("namespace")
        items = [d for d in cluster.daemonsets if namespace in (None, d["metadata"]["namespace"])]
        return _page(request, items, "DaemonSetList", cluster.page_size, cluster.version)

    async def events(request: web.Request) -> web.Response:
        items = [e for e in cluster.events if e["metadata"]["namespace"] == request.match_info["namespace"]]
        return _page(request, items, "EventList", cluster.page_size)

    app = web.Application(middlewares=[record_and_authenticate])
    app.router.add_get("/api/v1/nodes", nodes)
    app.router.add_get("/api/v1/nodes/{name}", node)
    app.router.add_get("/api/v1/pods", pods)
    app.router.add_get("/apis/apps/v1/namespaces/{namespace}/replicasets/{name}", replicaset)
    app.router.add_get("/apis/apps/v1/daemonsets", daemonsets)
    app.router.add_get("/apis/apps/v1/namespaces/{namespace}/daemonsets", daemonsets)
    app.router.add_get("/api/v1/namespaces/{namespace}/events", events)
    return app


def kubeconfig_text(server: str, dead_server: str) -> str:
    """Two contexts: the current one points at a closed port, `test` at the fake server."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "broken",
            "clusters": [
                {"name": "fake", "cluster": {"server": server}},
                {"name": "gone", "cluster": {"server": dead_server}},
            ],
            "users": [{"name": "viewer", "user": {"token": TOKEN}}],
            "contexts": [
                {"name": "test", "context": {"cluster": "fake", "user": "viewer"}},
                {"name": "broken", "context": {"cluster": "gone", "user": "viewer"}},
            ],
        }
    )


@contextlib.asynccontextmanager
async def serving(cluster: FakeCluster, directory: Path) -> AsyncIterator[Path]:
    """The fake API on 127.0.0.1 for the duration; yields a kubeconfig (context `test`) pointing at it."""
    runner = web.AppRunner(build_app(cluster))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{free_port()}"))
    try:
        yield kubeconfig
    finally:
        cluster.closed = True
        async with cluster.changed:
            cluster.changed.notify_all()
        await runner.cleanup()


async def check_placement(*argv: str) -> tuple[int, str, str]:
    """The CLI in a worker thread (it runs its own event loop), so this loop keeps serving the fake API."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--request-timeout", "10", *argv])
    out = io.StringIO()
    err = io.StringIO()

    def invoke() -> int:
        with contextlib.redirect_stderr(err):
            return run(args, stdout=out)

    code = await asyncio.wait_for(asyncio.to_thread(invoke), timeout=60)
    return code, out.getvalue(), err.getvalue()
