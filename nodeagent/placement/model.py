"""The objects the placement checker reasons about, built from Kubernetes API objects (plain dicts).

Parsing never raises on odd input: each builder appends a human-readable note to `problems` and
carries on with the parts it understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodeagent.placement.resources import HostPort, pod_host_ports, pod_requests, resource_list

CONTROL_PLANE_KEY = "node-role.kubernetes.io/control-plane"
LEGACY_MASTER_KEY = "node-role.kubernetes.io/master"
ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
# Labels the kubelet sets from the machine itself: a node whose value differs really is another platform.
OS_LABELS = ("kubernetes.io/os", "beta.kubernetes.io/os")
ARCH_LABELS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
PLATFORM_LABELS = OS_LABELS + ARCH_LABELS

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"

# Built-in PriorityClasses, and the priority from which the kubelet treats a pod as critical.
CRITICAL_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
SYSTEM_CRITICAL_PRIORITY = 2000000000


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = ""  # "" is Equal, as in the API
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None

    def same_identity(self, other: Toleration) -> bool:
        """Kubernetes treats tolerations as one when key, operator, value and effect agree."""
        return (self.key, self.operator, self.value, self.effect) == (
            other.key,
            other.operator,
            other.value,
            other.effect,
        )

    def __str__(self) -> str:
        text = f"key={self.key or '*'} operator={self.operator or 'Equal'}"
        if self.value:
            text += f" value={self.value}"
        text += f" effect={self.effect or '*'}"
        if self.toleration_seconds is not None:
            text += f" tolerationSeconds={self.toleration_seconds}"
        return text


@dataclass(frozen=True, slots=True)
class Requirement:
    """One nodeSelectorRequirement (matchExpressions or matchFields entry)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return f"{self.key} {self.operator}"
        if self.operator in ("Gt", "Lt") and len(self.values) == 1:
            return f"{self.key} {self.operator} {self.values[0]}"
        return f"{self.key} {self.operator} [{', '.join(self.values)}]"


@dataclass(frozen=True, slots=True)
class SelectorTerm:
    match_expressions: tuple[Requirement, ...] = ()
    match_fields: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class OwnerRef:
    kind: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Platform:
    """An OS and optionally an architecture the pod's images are built for (``linux``, ``linux/arm64``)."""

    os: str
    arch: str = ""  # "" is any architecture

    @classmethod
    def parse(cls, text: str) -> Platform:
        os_name, _, arch = text.strip().lower().partition("/")
        if not os_name or "/" in arch:
            raise ValueError(f"not OS or OS/ARCH: {text!r}")
        return cls(os_name, arch)

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}" if self.arch else self.os


@dataclass(slots=True)
class Node:
    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: dict[str, int]
    allocatable_reported: bool
    conditions: dict[str, Condition]
    control_plane: bool
    roles: tuple[str, ...]

    @property
    def role(self) -> str:
        return ",".join(self.roles) if self.roles else "-"

    def label(self, keys: tuple[str, ...]) -> str:
        """The first of ``keys`` the node carries (the GA label, then its beta twin), or ""."""
        for key in keys:
            if key in self.labels:
                return self.labels[key]
        return ""

    @property
    def platform(self) -> str:
        os_name, arch = self.label(OS_LABELS), self.label(ARCH_LABELS)
        return f"{os_name or '?'}/{arch or '?'}"


@dataclass(slots=True)
class PodTemplate:
    """What the DaemonSet controller would put into each daemon pod."""

    node_name: str
    node_selector: dict[str, str]
    required_affinity: tuple[SelectorTerm, ...] | None  # None: no required node affinity at all
    tolerations: tuple[Toleration, ...]
    host_network: bool
    requests: dict[str, int]
    host_ports: tuple[HostPort, ...]
    priority_class_name: str
    priority: int | None
    runtime_class_name: str
    has_overhead: bool
    os_name: str = ""  # spec.os.name: the OS the pod declares it needs (Kubernetes 1.25+)

    @property
    def critical(self) -> bool:
        """The kubelet admits critical pods even under disk or PID pressure."""
        if self.priority is not None:
            return self.priority >= SYSTEM_CRITICAL_PRIORITY
        return self.priority_class_name in CRITICAL_PRIORITY_CLASSES


@dataclass(slots=True)
class DaemonSet:
    namespace: str
    name: str
    uid: str
    generation: int | None
    template: PodTemplate
    source: str
    status: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class ExistingPod:
    namespace: str
    name: str
    node_name: str  # the node it is bound to, or the node its affinity targets when not yet bound
    bound: bool
    phase: str
    requests: dict[str, int]
    host_ports: tuple[HostPort, ...]
    owner: OwnerRef | None
    raw: dict

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def _taints(value: Any, where: str, problems: list[str]) -> tuple[Taint, ...]:
    taints = []
    for index, item in enumerate(as_list(value)):
        if not isinstance(item, dict) or not item.get("key"):
            problems.append(f"{where}: taint #{index + 1} has no key; ignored")
            continue
        effect = as_str(item.get("effect"))
        if effect not in (NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE):
            problems.append(f"{where}: taint {item.get('key')} has unknown effect {effect!r}")
        taints.append(Taint(as_str(item["key"]), as_str(item.get("value")), effect))
    return tuple(taints)


def parse_tolerations(value: Any, where: str, problems: list[str]) -> tuple[Toleration, ...]:
    tolerations = []
    for index, item in enumerate(as_list(value)):
        if not isinstance(item, dict):
            problems.append(f"{where}: toleration #{index + 1} is not a mapping; ignored")
            continue
        seconds = item.get("tolerationSeconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
            problems.append(
                f"{where}: toleration #{index + 1} tolerationSeconds {seconds!r} is not an integer"
            )
            seconds = None
        toleration = Toleration(
            key=as_str(item.get("key")),
            operator=as_str(item.get("operator")),
            value=as_str(item.get("value")),
            effect=as_str(item.get("effect")),
            toleration_seconds=seconds,
        )
        if not toleration.key and toleration.operator != "Exists":
            problems.append(
                f"{where}: toleration #{index + 1} has an empty key with operator "
                f"{toleration.operator or 'Equal'}; the API server accepts an empty key only with Exists"
            )
        if toleration.operator == "Exists" and toleration.value:
            problems.append(
                f"{where}: toleration #{index + 1} uses Exists with a value; the value is ignored"
            )
        tolerations.append(toleration)
    return tuple(tolerations)


def _requirements(value: Any) -> tuple[Requirement, ...]:
    requirements = []
    for item in as_list(value):
        item = as_dict(item)
        values = tuple(as_str(v) for v in as_list(item.get("values")))
        requirements.append(Requirement(as_str(item.get("key")), as_str(item.get("operator")), values))
    return tuple(requirements)


def parse_required_affinity(pod_spec: dict) -> tuple[SelectorTerm, ...] | None:
    node_affinity = as_dict(as_dict(pod_spec.get("affinity")).get("nodeAffinity"))
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    terms = []
    for term in as_list(as_dict(required).get("nodeSelectorTerms")):
        term = as_dict(term)
        terms.append(
            SelectorTerm(_requirements(term.get("matchExpressions")), _requirements(term.get("matchFields")))
        )
    return tuple(terms)


def node_from_obj(obj: dict, problems: list[str]) -> Node:
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    status = as_dict(obj.get("status"))
    name = as_str(meta.get("name")) or "<unnamed>"
    where = f"node {name}"
    labels = {as_str(k): as_str(v) for k, v in as_dict(meta.get("labels")).items()}
    taints = _taints(spec.get("taints"), where, problems)
    allocatable_raw = status.get("allocatable")
    allocatable = resource_list(allocatable_raw, f"{where} allocatable", problems)
    conditions = {}
    for item in as_list(status.get("conditions")):
        item = as_dict(item)
        kind = as_str(item.get("type"))
        if kind:
            conditions[kind] = Condition(
                as_str(item.get("status")), as_str(item.get("reason")), as_str(item.get("message"))
            )
    control_plane = (
        CONTROL_PLANE_KEY in labels
        or LEGACY_MASTER_KEY in labels
        or any(t.key in (CONTROL_PLANE_KEY, LEGACY_MASTER_KEY) for t in taints)
    )
    roles = sorted(
        {key[len(ROLE_LABEL_PREFIX) :] for key in labels if key.startswith(ROLE_LABEL_PREFIX)}
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
        | ({"control-plane"} if control_plane else set())
    )
    if control_plane:
        # kubeadm nodes carry both role labels; show one control-plane role, not two.
        roles = ["control-plane"] + [r for r in roles if r not in ("control-plane", "master")]
    return Node(
        name=name,
        labels=labels,
        taints=taints,
        unschedulable=spec.get("unschedulable") is True,
        allocatable=allocatable,
        allocatable_reported=isinstance(allocatable_raw, dict) and bool(allocatable_raw),
        conditions=conditions,
        control_plane=control_plane,
        roles=tuple(roles),
    )


def _priority(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def template_from_pod_spec(pod_spec: dict, where: str, problems: list[str]) -> PodTemplate:
    return PodTemplate(
        node_name=as_str(pod_spec.get("nodeName")),
        node_selector={as_str(k): as_str(v) for k, v in as_dict(pod_spec.get("nodeSelector")).items()},
        required_affinity=parse_required_affinity(pod_spec),
        tolerations=parse_tolerations(pod_spec.get("tolerations"), where, problems),
        host_network=pod_spec.get("hostNetwork") is True,
        requests=pod_requests(pod_spec, where, problems),
        host_ports=pod_host_ports(pod_spec, where, problems),
        priority_class_name=as_str(pod_spec.get("priorityClassName")),
        priority=_priority(pod_spec.get("priority")),
        runtime_class_name=as_str(pod_spec.get("runtimeClassName")),
        has_overhead=bool(pod_spec.get("overhead")),
        os_name=as_str(as_dict(pod_spec.get("os")).get("name")).lower(),
    )


def daemonset_from_obj(obj: dict, source: str, default_namespace: str = "default") -> DaemonSet:
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    namespace = as_str(meta.get("namespace")) or default_namespace
    name = as_str(meta.get("name")) or "<unnamed>"
    problems: list[str] = []
    template = as_dict(spec.get("template"))
    pod_spec = as_dict(template.get("spec"))
    if not pod_spec:
        problems.append("spec.template.spec is missing")
    elif not as_list(pod_spec.get("containers")):
        problems.append("spec.template.spec.containers is empty")
    generation = meta.get("generation")
    return DaemonSet(
        namespace=namespace,
        name=name,
        uid=as_str(meta.get("uid")),
        generation=generation if isinstance(generation, int) and not isinstance(generation, bool) else None,
        template=template_from_pod_spec(pod_spec, "spec.template.spec", problems),
        source=source,
        status=as_dict(obj.get("status")),
        problems=problems,
    )


def target_node_name(pod_spec: dict) -> tuple[str, bool]:
    """The node a pod is bound to, else the one its `metadata.name` affinity pins it to (as the DaemonSet
    controller reads it); the flag says whether the pod is bound."""
    bound = as_str(pod_spec.get("nodeName"))
    if bound:
        return bound, True
    for term in parse_required_affinity(pod_spec) or ():
        for requirement in term.match_fields:
            if (
                requirement.key == "metadata.name"
                and requirement.operator == "In"
                and len(requirement.values) == 1
            ):
                return requirement.values[0], False
    return "", False


def pod_from_obj(obj: dict, problems: list[str]) -> ExistingPod:
    # Runs once per pod in the cluster (150,000 in a big one): the common path avoids helper calls.
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    namespace = meta.get("namespace") or "default"
    name = meta.get("name") or "<unnamed>"
    if not isinstance(namespace, str) or not isinstance(name, str):
        namespace, name = str(namespace), str(name)
    where = f"pod {namespace}/{name}"
    owner = None
    references = meta.get("ownerReferences")
    if references and isinstance(references, list):
        for ref in references:
            ref = as_dict(ref)
            if ref.get("controller") is True or owner is None:
                owner = OwnerRef(as_str(ref.get("kind")), as_str(ref.get("name")), as_str(ref.get("uid")))
    node_name = spec.get("nodeName")
    if node_name and isinstance(node_name, str):
        bound = True
    else:
        node_name, bound = target_node_name(spec)
    status = obj.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return ExistingPod(
        namespace=namespace,
        name=name,
        node_name=node_name,
        bound=bound,
        phase=phase if isinstance(phase, str) else "",
        requests=pod_requests(spec, where, problems),
        host_ports=pod_host_ports(spec, where, problems),
        owner=owner,
        raw=obj,
    )
