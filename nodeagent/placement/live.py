"""Read-only access to a cluster for live mode, through kubernetes_asyncio (which runs on aiohttp).

Only list/get calls are made. Responses are read as plain JSON (not the client's model classes) so live
objects go through exactly the same parsing as files do.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

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
        self._api_client: Any = None

    async def __aenter__(self) -> Cluster:
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        try:
            if self._kubeconfig is None:
                if self._context:
                    raise ClusterError(
                        "--context needs a kubeconfig; in-cluster configuration has no contexts"
                    )
                config.load_incluster_config(client_configuration=configuration)
            else:
                await config.load_kube_config(
                    config_file=self._kubeconfig,
                    context=self._context,
                    client_configuration=configuration,
                    persist_config=False,  # read-only: never write refreshed credentials back
                )
        except config.ConfigException as error:
            raise ClusterError(f"kubeconfig: {' '.join(str(error).split())}") from None
        self._api_client = client.ApiClient(configuration)
        self._core = client.CoreV1Api(self._api_client)
        self._apps = client.AppsV1Api(self._api_client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._api_client is not None:
            await self._api_client.close()

    async def _json(self, method: Any, *args: Any, **kwargs: Any) -> dict:
        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            response = await method(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            try:
                body = await response.read()
            finally:
                response.release()
        except ApiException as error:
            raise ClusterError(f"API request failed: {error.status} {error.reason}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ClusterError(f"cannot reach the API server: {error or type(error).__name__}") from None
        if not 200 <= response.status < 300:
            try:
                message = json.loads(body).get("message", "")
            except (ValueError, AttributeError):
                message = body[:200].decode("utf-8", "replace")
            raise ClusterError(f"API request failed: HTTP {response.status} {' '.join(str(message).split())}")
        try:
            # One page (PAGE_SIZE objects) decodes in milliseconds to a few tens of them; json.loads holds
            # the GIL, so a worker thread would not let the loop run meanwhile anyway.
            return json.loads(body)
        except ValueError:
            raise ClusterError("the API server sent a response that is not JSON") from None

    async def _list(self, method: Any, *args: Any, **kwargs: Any) -> list[dict]:
        return (await self._list_versioned(method, *args, **kwargs))[0]

    async def _list_versioned(self, method: Any, *args: Any, **kwargs: Any) -> tuple[list[dict], str]:
        """Every item, page by page, and the list's resourceVersion (where a watch starts)."""
        items: list[dict] = []
        token = None
        while True:
            page_args = dict(kwargs, limit=PAGE_SIZE)
            if token:
                page_args["_continue"] = token
            page = await self._json(method, *args, **page_args)
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion") or "")

    def _kind(self, kind: str, field_selector: str | None = None) -> tuple[Any, dict[str, str]]:
        """The list call of one of KINDS and its arguments; ``field_selector`` replaces the kind's own."""
        method, kwargs = self._kind_default(kind)
        if field_selector is not None:
            kwargs = {"field_selector": field_selector}
        return method, kwargs

    def _kind_default(self, kind: str) -> tuple[Any, dict[str, str]]:
        if kind == "nodes":
            return self._core.list_node, {}
        if kind == "pods":
            # Finished pods take nothing from a node; leaving them out keeps the list small.
            return self._core.list_pod_for_all_namespaces, {
                "field_selector": "status.phase!=Succeeded,status.phase!=Failed"
            }
        return self._apps.list_daemon_set_for_all_namespaces, {}

    async def list_kind(self, kind: str, field_selector: str | None = None) -> tuple[list[dict], str]:
        """All objects of one of KINDS (cluster-wide, or those ``field_selector`` picks, e.g.
        ``spec.nodeName=<node>``) and the resourceVersion to watch from."""
        method, kwargs = self._kind(kind, field_selector)
        return await self._list_versioned(method, **kwargs)

    async def watch(
        self, kind: str, resource_version: str, field_selector: str | None = None
    ) -> AsyncIterator[tuple[str, dict]]:
        """(type, object) events of one of KINDS from ``resource_version`` until the server ends the watch
        (after WATCH_SECONDS); ``field_selector`` as for :meth:`list_kind`. BOOKMARK events come through
        (their object carries only the new resourceVersion). Raises ResourceVersionGone when the version is
        too old, ClusterError else."""
        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        method, kwargs = self._kind(kind, field_selector)
        try:
            response = await method(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(self._timeout or 30.0, WATCH_SECONDS + 60.0),
                **kwargs,
            )
        except ApiException as error:
            if error.status == 410:
                raise ResourceVersionGone(f"{kind}: resourceVersion {resource_version} is gone") from None
            raise ClusterError(f"API request failed: {error.status} {error.reason}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ClusterError(f"cannot reach the API server: {error or type(error).__name__}") from None
        try:
            if response.status == 410:
                raise ResourceVersionGone(f"{kind}: resourceVersion {resource_version} is gone")
            if not 200 <= response.status < 300:
                raise ClusterError(f"API request failed: HTTP {response.status} (watch {kind})")
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending += chunk
                while (end := pending.find(b"\n")) >= 0:
                    line = bytes(pending[:end])
                    del pending[: end + 1]
                    if line.strip():
                        yield _watch_event(kind, line)
                if len(pending) > MAX_EVENT_BYTES:
                    raise ClusterError(
                        f"watch {kind}: an event is larger than {MAX_EVENT_BYTES // 2**20} MiB"
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ClusterError(f"watch {kind} broke: {error or type(error).__name__}") from None
        finally:
            response.release()

    async def node(self, name: str) -> dict:
        """One Node object (a ``get``: needs only that verb on nodes)."""
        return await self._json(self._core.read_node, name)

    async def nodes(self) -> list[dict]:
        return (await self.list_kind("nodes"))[0]

    async def pods(self) -> list[dict]:
        return (await self.list_kind("pods"))[0]

    async def daemonsets(self, namespace: str | None = None) -> list[dict]:
        if namespace:
            return await self._list(self._apps.list_namespaced_daemon_set, namespace)
        return await self._list(self._apps.list_daemon_set_for_all_namespaces)

    async def scheduling_events(self, namespace: str) -> list[dict]:
        """FailedScheduling events of pods in a namespace (filtered here too, in case the server did not)."""
        events = await self._list(
            self._core.list_namespaced_event,
            namespace,
            field_selector="involvedObject.kind=Pod,reason=FailedScheduling",
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
