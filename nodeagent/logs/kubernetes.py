"""Kubernetes metadata from a container log's path (no API calls): what kubelet and docker encode in it.

Layouts (matched on the trailing path components, so a test tree under tmp_path works the same):

- kubelet: ``.../pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log``, also rotated
  ``<n>.log.<timestamp>`` -> namespace, pod, pod_uid, container, restart_count (int). The same tree under
  another name (a custom kubelet log root, a copy under a rootfs prefix) is recognised by its shape alone:
  DNS-1123 namespace and pod name, a pod UID (a UUID, or 32 hex digits for a static pod) and a
  container name, so that no path outside a pod tree passes for one.
- kubelet symlinks: ``.../containers/<pod>_<namespace>_<container>-<64 hex container id>.log``
  -> namespace, pod, container, container_id.
- docker json-file: ``.../containers/<id>/<id>-json.log`` (also rotated ``-json.log.<n>``) -> container_id.

Pod names and namespaces are DNS-1123 names (no ``_``), so the ``_``-separated parts split
unambiguously; a container name may contain ``-``, so the 64-hex id is taken from the end.
"""

from __future__ import annotations

import re
import sys
from typing import Any

_POD_DIR = re.compile(r"([^_/]+)_([^_/]+)_([^_/]+)")
_RESTART_FILE = re.compile(r"(\d+)\.log(?:\.[^/]+)?")
_CONTAINERS_LINK = re.compile(r"([^_/]+)_([^_/]+)_([^/]+)-([0-9a-f]{64})\.log")
_DOCKER_FILE = re.compile(r"([0-9a-f]{64})-json\.log(?:\.\d+)?")
# Outside a ``pods`` directory only the strict shape counts.
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*"
_POD_UID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_STRICT_POD_DIR = re.compile(rf"({_DNS_LABEL})_({_DNS_SUBDOMAIN})_({_POD_UID})")
_STRICT_CONTAINER = re.compile(_DNS_LABEL)


def metadata_from_path(path: str) -> dict[str, Any] | None:
    """The fields the path gives, or None for a path that is not a known container log layout."""
    parts = path.split("/")
    if len(parts) < 3:
        return None
    name = parts[-1]

    if len(parts) >= 4:
        under_pods = parts[-4] == "pods"
        pod_dir = (_POD_DIR if under_pods else _STRICT_POD_DIR).fullmatch(parts[-3])
        restart = _RESTART_FILE.fullmatch(name)
        container = parts[-2]
        container_ok = bool(container) if under_pods else _STRICT_CONTAINER.fullmatch(container) is not None
        if pod_dir and restart and container_ok:
            namespace, pod, pod_uid = pod_dir.groups()
            return {
                # Kept per file followed: names many files share are kept once (interned).
                "namespace": sys.intern(namespace),
                "pod": pod,
                "pod_uid": pod_uid,
                "container": sys.intern(container),
                "restart_count": int(restart.group(1)),
            }
        if under_pods:
            return None

    if parts[-2] == "containers":
        link = _CONTAINERS_LINK.fullmatch(name)
        if link:
            pod, namespace, container, container_id = link.groups()
            return {"namespace": namespace, "pod": pod, "container": container, "container_id": container_id}
        return None

    if parts[-3] == "containers":
        docker = _DOCKER_FILE.fullmatch(name)
        if docker and docker.group(1) == parts[-2]:
            return {"container_id": docker.group(1)}
    return None
