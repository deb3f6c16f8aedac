"""Read-only access to a cluster for live mode, through :mod:`nodeagent.kubeclient` (on aiohttp).

Only list/get calls are made. Responses are read as plain JSON (not the client's model classes) so live
objects go through exactly the same parsing as files do.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import quote

from nodeagent.kubeclient import (
    KubeClient,
    KubeConfigError,
    KubeRequestError,
    incluster_config,
    load_kubeconfig,
)

PAGE_SIZE = 500
WATCH_SECONDS = 240  # the server ends each watch after this; the client then watches again from where it was
MAX_EVENT_BYTES = 16 * 2**20  # one watch event (an object); a Node or Pod is a few tens of KiB
# The objects watched by the placement monitor (and listed by the one-shot check).
KINDS = ("nodes", "pods", "daemonsets")


class ClusterError(Exception):
    """The cluster could not be reached or refused a request; the message is one line."""


class ResourceVersionGone(ClusterError):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def resolve_kubeconfig(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The kubeconfig to use (as kubectl picks it), or None for in-cluster configuration."""
    if environ is None:
        environ = os.environ
    if explicit:
        if not Path(explicit).expanduser().is_file():
            raise ClusterError(f"{explicit}: kubeconfig not found")
        return str(Path(explicit).expanduser())
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    default = Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"
    if default.is_file():
        return str(default)
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise ClusterError(
        "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running in a pod"
    )


class Cluster:
    """An open, read-only connection: `async with Cluster(...) as cluster: await cluster.nodes()`."""

    def __init__(
        self, kubeconfig: str | None, context: str | None = None, timeout: float | None = 30.0
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._timeout = timeout
        self._api: KubeClient | None = None

    async def __aenter__(self) -> Cluster:
        try:
            if self._kubeconfig is None:
                if self._context:
                    raise ClusterError(
                        "--context needs a kubeconfig; in-cluster configuration has no contexts"
                    )
                config = incluster_config()
            else:
                config = load_kubeconfig(self._kubeconfig, self._context)
            self._api = await KubeClient(config, self._timeout).__aenter__()
        except KubeConfigError as error:
            raise ClusterError(f"kubeconfig: {error}") from None
        except KubeRequestError as error:
            raise ClusterError(str(error)) from None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._api is not None:
            await self._api.__aexit__(*exc_info)

    async def _json(self, path: str, params: dict[str, str]) -> dict:
        assert self._api is not None
        try:
            # One page (PAGE_SIZE objects) decodes in milliseconds to a few tens of them; json.loads holds
            # the GIL, so a worker thread would not let the loop run meanwhile anyway.
            return await self._api.get_json(path, params)
        except KubeRequestError as error:
            raise ClusterError(str(error)) from None

    async def _list(self, path: str, params: dict[str, str] | None = None) -> list[dict]:
        return (await self._list_versioned(path, params or {}))[0]

    async def _list_versioned(self, path: str, params: dict[str, str]) -> tuple[list[dict], str]:
        """Every item, page by page, and the list's resourceVersion (where a watch starts)."""
        items: list[dict] = []
        token = None
        while True:
            page_params = dict(params, limit=str(PAGE_SIZE))
            if token:
                page_params["continue"] = token
            page = await self._json(path, page_params)
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion") or "")

    @staticmethod
    def _kind(kind: str, field_selector: str | None = None) -> tuple[str, dict[str, str]]:
        """The path of one of KINDS and its query; ``field_selector`` replaces the kind's own."""
        path, params = Cluster._kind_default(kind)
        return path, params if field_selector is None else {"fieldSelector": field_selector}

    @staticmethod
    def _kind_default(kind: str) -> tuple[str, dict[str, str]]:
        if kind == "nodes":
            return "/api/v1/nodes", {}
        if kind == "pods":
            # Finished pods take nothing from a node; leaving them out keeps the list small.
            return "/api/v1/pods", {"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
        return "/apis/apps/v1/daemonsets", {}

    async def list_kind(self, kind: str, field_selector: str | None = None) -> tuple[list[dict], str]:
        """All objects of one of KINDS (cluster-wide, or those ``field_selector`` picks, e.g.
        ``spec.nodeName=<node>``) and the resourceVersion to watch from."""
        path, params = self._kind(kind, field_selector)
        return await self._list_versioned(path, params)

    async def watch(
        self, kind: str, resource_version: str, field_selector: str | None = None
    ) -> AsyncIterator[tuple[str, dict]]:
        """(type, object) events of one of KINDS from ``resource_version`` until the server ends the watch
        (after WATCH_SECONDS); ``field_selector`` as for :meth:`list_kind`. BOOKMARK events come through
        (their object carries only the new resourceVersion). Raises ResourceVersionGone when the version is
        too old, ClusterError else."""
        assert self._api is not None
        path, params = self._kind(kind, field_selector)
        params = dict(
            params,
            watch="1",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),
        )
        try:
            async with self._api.stream(path, params, WATCH_SECONDS + 60.0, MAX_EVENT_BYTES) as lines:
                async for line in lines:
                    yield _watch_event(kind, line)
        except KubeRequestError as error:
            if error.status == 410:
                raise ResourceVersionGone(f"{kind}: resourceVersion {resource_version} is gone") from None
            raise ClusterError(f"watch {kind}: {error}" if error.status == 0 else str(error)) from None

    async def node(self, name: str) -> dict:
        """One Node object (a ``get``: needs only that verb on nodes)."""
        return await self._json(f"/api/v1/nodes/{quote(name, safe='')}", {})

    async def replicaset(self, namespace: str, name: str) -> dict:
        """One ReplicaSet object (a ``get``)."""
        return await self._json(
            f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/replicasets/{quote(name, safe='')}", {}
        )

    async def nodes(self) -> list[dict]:
        return (await self.list_kind("nodes"))[0]

    async def pods(self) -> list[dict]:
        return (await self.list_kind("pods"))[0]

    async def daemonsets(self, namespace: str | None = None) -> list[dict]:
        if namespace:
            return await self._list(f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/daemonsets")
        return await self._list("/apis/apps/v1/daemonsets")

    async def scheduling_events(self, namespace: str) -> list[dict]:
        """FailedScheduling events of pods in a namespace (filtered here too, in case the server did not)."""
        events = await self._list(
            f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
            {"fieldSelector": "involvedObject.kind=Pod,reason=FailedScheduling"},
        )
        return [
            event
            for event in events
            if event.get("reason") == "FailedScheduling"
            and (event.get("involvedObject") or {}).get("kind") == "Pod"
        ]


def _watch_event(kind: str, line: bytes) -> tuple[str, dict]:
    try:
        event = json.loads(line)
    except ValueError:
        raise ClusterError(f"watch {kind}: an event is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise ClusterError(f"watch {kind}: an event has no object")
    kind_of_event, obj = str(event.get("type")), event["object"]
    if kind_of_event == "ERROR":
        if obj.get("code") == 410:
            raise ResourceVersionGone(f"{kind}: resourceVersion is gone")
        message = " ".join(str(obj.get("message") or "").split())[:200]
        raise ClusterError(f"watch {kind}: error {obj.get('code')}: {message}")
    return kind_of_event, obj


def events_by_pod(events: list[dict]) -> dict[tuple[str, str], list[str]]:
    """Event messages per (namespace, pod name), oldest first."""

    def when(event: dict) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")

    result: dict[tuple[str, str], list[str]] = {}
    for event in sorted(events, key=when):
        involved = event.get("involvedObject") or {}
        key = (str(involved.get("namespace") or ""), str(involved.get("name") or ""))
        message = " ".join(str(event.get("message") or "").split())
        if message:
            result.setdefault(key, []).append(message)
    return result
