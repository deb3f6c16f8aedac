"""What a pod asks of a node: effective resource requests and host ports, computed the way the scheduler
does (sidecar-aware init container maximum, overhead, pod-level resources, API defaulting of manifests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodeagent.placement.quantity import QuantityError, resource_units

# Resources the scheduler's NodeResourcesFit filter compares; anything else in a request is not checked.
_FIRST_CLASS = ("cpu", "memory", "ephemeral-storage")
_POD_LEVEL_PREFIXES = ("hugepages-",)


@dataclass(frozen=True, slots=True)
class HostPort:
    host_ip: str  # "0.0.0.0" when unset
    protocol: str  # "TCP" when unset
    port: int

    def __str__(self) -> str:
        where = "" if self.host_ip == "0.0.0.0" else f" on {self.host_ip}"
        return f"{self.port}/{self.protocol}{where}"


def scheduler_checks(resource: str) -> bool:
    return (
        resource in _FIRST_CLASS
        or resource.startswith("hugepages-")
        or resource.startswith("attachable-volumes-")
        or "/" in resource  # extended resources (nvidia.com/gpu) and kubernetes.io/-prefixed native ones
    )


def _supported_pod_level(resource: str) -> bool:
    return resource in ("cpu", "memory") or resource.startswith(_POD_LEVEL_PREFIXES)


def resource_list(value: Any, where: str, problems: list[str], *context: Any) -> dict[str, int]:
    """A ResourceList as integer amounts (cpu in millicores); unreadable entries are noted and skipped."""
    if not isinstance(value, dict):
        return {}
    result = {}
    for name, raw in value.items():
        if not isinstance(name, str):
            name = str(name)
        try:
            result[name] = resource_units(name, raw)
        except QuantityError as error:
            part = " ".join(map(str, (where, *context)))  # built only here: this loop runs for every pod
            problems.append(f"{part}: {name}: {error}; ignored")
    return result


def _add(into: dict[str, int], amounts: dict[str, int]) -> None:
    for name, amount in amounts.items():
        into[name] = into.get(name, 0) + amount


def _max(into: dict[str, int], amounts: dict[str, int]) -> None:
    for name, amount in amounts.items():
        if amount > into.get(name, 0):
            into[name] = amount


def _container_requests(container: Any, where: str, problems: list[str]) -> dict[str, int]:
    resources = container.get("resources") if isinstance(container, dict) else None
    if not isinstance(resources, dict):
        return {}
    name = container.get("name")
    requests = resource_list(resources.get("requests"), where, problems, "container", name, "requests")
    limits = resources.get("limits")
    if limits:
        # API defaulting: a limit without a request becomes the request (manifests are not defaulted yet).
        for resource, amount in resource_list(limits, where, problems, "container", name, "limits").items():
            requests.setdefault(resource, amount)
    return requests


def pod_requests(pod_spec: dict, where: str, problems: list[str]) -> dict[str, int]:
    """Effective requests of a pod as the scheduler computes them (k8s resource helpers' PodRequests)."""
    total: dict[str, int] = {}
    containers = pod_spec.get("containers")
    for index, container in enumerate(containers if isinstance(containers, list) else ()):
        requests = _container_requests(container, where, problems)
        if index == 0:
            total = requests  # a fresh dict: no need to copy
        else:
            _add(total, requests)

    init_containers = pod_spec.get("initContainers")
    if init_containers and isinstance(init_containers, list):
        # While init container i runs, the sidecars (restartPolicy Always) started before it run too.
        sidecars: dict[str, int] = {}
        init_peak: dict[str, int] = {}
        for container in init_containers:
            requests = _container_requests(container, where, problems)
            if isinstance(container, dict) and container.get("restartPolicy") == "Always":
                _add(total, requests)
                _add(sidecars, requests)
                _max(init_peak, sidecars)
            else:
                during = dict(requests)
                _add(during, sidecars)
                _max(init_peak, during)
        _max(total, init_peak)

    pod_level = pod_spec.get("resources")
    if pod_level and isinstance(pod_level, dict):
        level_requests = resource_list(pod_level.get("requests"), where, problems, "resources.requests")
        level_limits = resource_list(pod_level.get("limits"), where, problems, "resources.limits")
        for name, amount in level_limits.items():
            # Defaulting: a pod-level limit becomes the pod-level request when no container requests it.
            if name not in level_requests and total.get(name, 0) == 0:
                level_requests[name] = amount
        for name, amount in level_requests.items():
            if _supported_pod_level(name):
                total[name] = amount

    overhead = pod_spec.get("overhead")
    if overhead:
        _add(total, resource_list(overhead, where, problems, "overhead"))
    return total


def _port_holders(pod_spec: dict) -> list[Any]:
    """The containers whose host ports the scheduler counts (GetHostPorts): the regular ones and, since
    Kubernetes 1.33/1.34, restartable init containers (sidecars, restartPolicy Always), which keep their
    ports for the pod's whole life. Plain init containers run one at a time before them and are not
    counted."""
    containers = pod_spec.get("containers")
    holders = list(containers) if isinstance(containers, list) else []
    init_containers = pod_spec.get("initContainers")
    if init_containers and isinstance(init_containers, list):
        holders += [c for c in init_containers if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    return holders


def pod_host_ports(pod_spec: dict, where: str, problems: list[str]) -> tuple[HostPort, ...]:
    """Host ports of the pod's containers and sidecars, for the new pod and for pods already on the node
    alike (the scheduler's NodePorts filter).

    With hostNetwork the API server defaults every hostPort to its containerPort.
    """
    host_network = pod_spec.get("hostNetwork") is True
    ports = []
    for container in _port_holders(pod_spec):
        container_ports = container.get("ports") if isinstance(container, dict) else None
        for entry in container_ports if isinstance(container_ports, list) else ():
            if not isinstance(entry, dict):
                continue
            host_port = entry.get("hostPort") or 0
            if host_network and not host_port:
                host_port = entry.get("containerPort") or 0
            if isinstance(host_port, str) and host_port.isdigit():
                host_port = int(host_port)
            if not isinstance(host_port, int) or isinstance(host_port, bool) or not 0 <= host_port <= 65535:
                problems.append(f"{where}: host port {host_port!r} is not a port number; ignored")
                continue
            if host_port <= 0:
                continue
            ports.append(
                HostPort(
                    host_ip=str(entry.get("hostIP") or "0.0.0.0"),
                    protocol=str(entry.get("protocol") or "TCP"),
                    port=host_port,
                )
            )
    return tuple(ports) if ports else ()
