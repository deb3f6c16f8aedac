"""The placement decision: first the DaemonSet controller's (does the node get a pod at all?), then the
scheduler's and the kubelet's (can that pod be placed and started there now?).

Each rule is a small function returning Reasons; EXCLUDING_RULES, BLOCKING_RULES and SCHEDULER_RULES list
them in the order they are reported. Adding a rule means writing one function, listing it, and naming what
it reports in `Rule`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from nodeagent.placement.matching import (
    NETWORK_UNAVAILABLE,
    NOT_READY,
    UNREACHABLE,
    daemon_pod_tolerations,
    term_error,
    term_failures,
    tolerates,
    untolerated_taints,
)
from nodeagent.placement.model import (
    ARCH_LABELS,
    CONTROL_PLANE_KEY,
    LEGACY_MASTER_KEY,
    NO_EXECUTE,
    NO_SCHEDULE,
    OS_LABELS,
    PLATFORM_LABELS,
    DaemonSet,
    ExistingPod,
    Node,
    Platform,
    PodTemplate,
    Requirement,
    SelectorTerm,
    Taint,
    Toleration,
)
from nodeagent.placement.quantity import format_units
from nodeagent.placement.resources import HostPort, scheduler_checks


class Verdict(StrEnum):
    RUNS = "runs"
    BLOCKED = "blocked"  # an untolerated NoSchedule/NoExecute taint
    EXCLUDED = "excluded"  # nodeName, nodeSelector, node affinity, or a platform the images do not run on
    PENDING = "pending"  # the controller creates the pod, but it cannot be scheduled or started now


class Rule(StrEnum):
    """What a Reason is about; the value is what JSON output carries."""

    NODE_NAME = "nodeName"
    NODE_SELECTOR = "nodeSelector"
    NODE_AFFINITY = "nodeAffinity"
    TAINT = "taint"
    NOT_READY = "notReady"
    RESOURCES = "resources"
    POD_COUNT = "podCount"
    HOST_PORT = "hostPort"
    PLATFORM = "platform"  # the node's OS or architecture cannot run the pod's images


@dataclass(frozen=True, slots=True)
class Reason:
    rule: Rule
    message: str
    fix: str | None = None
    # The node is left out because it is another OS or architecture: intended, not a failure, nothing to fix
    # on the node (never relabel it, never tolerate its taints).
    by_design: bool = False


@dataclass(slots=True)
class NodeResult:
    node: Node
    verdict: Verdict
    reasons: list[Reason]

    @property
    def by_design(self) -> bool:
        """Excluded only because the node is a platform the pod cannot run on."""
        return self.verdict == Verdict.EXCLUDED and all(
            reason.by_design for reason in self.reasons if reason.rule is not Rule.TAINT
        )


@dataclass(slots=True)
class DaemonSetResult:
    daemonset: DaemonSet
    nodes: list[NodeResult]
    warnings: list[str]
    platforms: tuple[Platform, ...] = ()  # as given to evaluate (--platform); () means derived per template

    def summary(self) -> dict[str, int]:
        counts = {"nodes": len(self.nodes)} | {verdict.value: 0 for verdict in Verdict}
        for result in self.nodes:
            counts[result.verdict.value] += 1
        return counts


# ---------------------------------------------------------------- existing pods, indexed once per node


@dataclass(slots=True)
class NodeUsage:
    """What the non-terminated pods bound to one node already take."""

    pod_count: int = 0
    requested: dict[str, int] = field(default_factory=dict)
    ports: list[tuple[HostPort, ExistingPod]] = field(default_factory=list)
    daemon_pods: dict[tuple[str, str], list[ExistingPod]] = field(default_factory=dict)

    def add(self, pod: ExistingPod) -> None:
        self.pod_count += 1
        requested = self.requested
        for name, amount in pod.requests.items():
            requested[name] = requested.get(name, 0) + amount
        for port in pod.host_ports:
            self.ports.append((port, pod))
        if pod.owner is not None and pod.owner.kind == "DaemonSet":
            self.daemon_pods.setdefault((pod.namespace, pod.owner.name), []).append(pod)

    def remove(self, pod: ExistingPod) -> None:
        """Undo add(pod) (the placement monitor's pod deletions and updates); ``pod`` is the added object."""
        self.pod_count -= 1
        requested = self.requested
        for name, amount in pod.requests.items():
            left = requested.get(name, 0) - amount
            if left:
                requested[name] = left
            else:
                requested.pop(name, None)
        if pod.host_ports:
            self.ports = [(port, holder) for port, holder in self.ports if holder is not pod]
        if pod.owner is not None and pod.owner.kind == "DaemonSet":
            key = (pod.namespace, pod.owner.name)
            pods = [held for held in self.daemon_pods.get(key, ()) if held is not pod]
            if pods:
                self.daemon_pods[key] = pods
            else:
                self.daemon_pods.pop(key, None)


_NO_USAGE = NodeUsage()


def index_usage(pods: Iterable[ExistingPod]) -> dict[str, NodeUsage]:
    """Existing pods by node, as the scheduler's cache sees them: bound and not yet terminated."""
    index: dict[str, NodeUsage] = {}
    for pod in pods:
        if not pod.bound or pod.terminated:
            continue
        usage = index.get(pod.node_name)
        if usage is None:
            usage = index[pod.node_name] = NodeUsage()
        usage.add(pod)
    return index


def own_pods(ds: DaemonSet, usage: NodeUsage) -> list[ExistingPod]:
    """This DaemonSet's pods on the node: the new pod replaces them, so they must not count against it."""
    pods = usage.daemon_pods.get((ds.namespace, ds.name), ())
    if ds.uid:
        return [p for p in pods if not p.owner or not p.owner.uid or p.owner.uid == ds.uid]
    return list(pods)


# ---------------------------------------------------------------- per-DaemonSet preparation


@dataclass(slots=True)
class Prepared:
    """Everything about a DaemonSet that does not depend on the node, computed once."""

    ds: DaemonSet
    tolerations: tuple[Toleration, ...]
    valid_terms: list[tuple[int, SelectorTerm]]
    term_errors: list[tuple[int, str]]
    checked_requests: dict[str, int]
    platforms: tuple[Platform, ...]
    selected: frozenset[str]  # label keys of the DaemonSet's own nodeSelector and affinity


def image_platforms(template: PodTemplate, given: tuple[Platform, ...] = ()) -> tuple[Platform, ...]:
    """What the pod's images run on: as given (--platform), else spec.os.name, else Linux on any architecture
    (the images cannot be inspected offline; Linux is what a manifest without an OS means in practice)."""
    if given:
        return given
    return (Platform(template.os_name or "linux"),)


def selected_labels(template: PodTemplate) -> set[str]:
    """Label keys the DaemonSet's own node selection looks at (nodeSelector, required affinity)."""
    keys = set(template.node_selector)
    for term in template.required_affinity or ():
        keys.update(requirement.key for requirement in term.match_expressions)
    return keys


def prepare(ds: DaemonSet, platforms: tuple[Platform, ...] = ()) -> Prepared:
    template = ds.template
    valid_terms, term_errors = [], []
    for number, term in enumerate(template.required_affinity or (), start=1):
        error = term_error(term)
        if error:
            term_errors.append((number, error))
        else:
            valid_terms.append((number, term))
    return Prepared(
        ds=ds,
        tolerations=daemon_pod_tolerations(template.tolerations, template.host_network),
        valid_terms=valid_terms,
        term_errors=term_errors,
        checked_requests={
            name: amount
            for name, amount in template.requests.items()
            if amount > 0 and scheduler_checks(name)
        },
        platforms=image_platforms(template, platforms),
        selected=frozenset(selected_labels(template)),
    )


# ---------------------------------------------------------------- fix texts


def toleration_yaml(taint: Taint) -> str:
    lines = [f"- key: {taint.key}"]
    if taint.value:
        # Quoted: a bare `true` or `1` would be read back as a bool or number, which the API refuses.
        lines += ["  operator: Equal", f"  value: {json.dumps(taint.value)}"]
    else:
        lines.append("  operator: Exists")
    lines.append(f"  effect: {taint.effect}")
    return "\n".join(lines)


def _toleration_fix(taint: Taint) -> str:
    return "add to spec.template.spec.tolerations:\n" + toleration_yaml(taint)


def _explain_label(requirement: Requirement, node: Node) -> str:
    if requirement.key in node.labels:
        return f"node has {requirement.key}={node.labels[requirement.key]}"
    return f"node has no label {requirement.key}"


# ---------------------------------------------------------------- controller rules


def rule_node_name(p: Prepared, node: Node) -> list[Reason]:
    wanted = p.ds.template.node_name
    if not wanted or wanted == node.name:
        return []
    return [
        Reason(
            Rule.NODE_NAME,
            f"spec.template.spec.nodeName is {wanted}: the pod goes to that node only",
            "remove spec.template.spec.nodeName and pick nodes with nodeSelector or node affinity",
        )
    ]


def rule_node_selector(p: Prepared, node: Node) -> list[Reason]:
    reasons = []
    for key, value in p.ds.template.node_selector.items():
        actual = node.labels.get(key)
        if actual == value:
            continue
        if actual is None:
            fix: str | None
            message = f"nodeSelector {key}={value}: node has no label {key}"
            fix = f"kubectl label node {node.name} {key}={value}"
            if key in PLATFORM_LABELS:
                fix += " (the kubelet sets this label itself; a node without it is old or was edited)"
            else:
                fix += f", or drop {key} from spec.template.spec.nodeSelector"
        else:
            message = f"nodeSelector {key}={value}: node has {key}={actual}"
            if (
                key in PLATFORM_LABELS
            ):  # the node really runs another OS/architecture: leaving it out is the point
                reasons.append(Reason(Rule.NODE_SELECTOR, message + " (by design)", None, by_design=True))
                continue
            fix = (
                f"kubectl label node {node.name} {key}={value} --overwrite, "
                f"or change {key} in spec.template.spec.nodeSelector"
            )
        reasons.append(Reason(Rule.NODE_SELECTOR, message, fix))
    return reasons


def rule_node_affinity(p: Prepared, node: Node) -> list[Reason]:
    terms = p.ds.template.required_affinity
    if terms is None:
        return []
    fields = {"metadata.name": node.name}
    explanations = []
    platform_only = bool(p.valid_terms) and not p.term_errors
    for number, term in p.valid_terms:
        failed = term_failures(term, node.labels, fields)
        if not failed:
            return []
        platform_only = platform_only and all(
            requirement in term.match_expressions
            and requirement.key in PLATFORM_LABELS
            and requirement.key in node.labels
            for requirement in failed
        )
        parts = []
        for requirement in failed:
            if requirement in term.match_fields:
                parts.append(f"field {requirement}: node name is {node.name}")
            else:
                parts.append(f"{requirement}: {_explain_label(requirement, node)}")
        explanations.append(f"term {number}: " + "; ".join(parts))
    explanations += [f"term {number} is invalid ({error})" for number, error in p.term_errors]
    if not terms:
        explanations.append("nodeSelectorTerms is empty, which selects no node")
    message = "required node affinity matches no term: " + " | ".join(explanations)
    if platform_only:  # the node is another OS/architecture and the affinity keeps the pod off it on purpose
        return [Reason(Rule.NODE_AFFINITY, message + " (by design)", None, by_design=True)]
    fix = (
        "label the node so it satisfies one nodeSelectorTerm, or widen "
        "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    )
    if len(p.valid_terms) == 1 and not p.term_errors:
        term = p.valid_terms[0][1]
        failed = term_failures(term, node.labels, fields)
        if (
            len(failed) == 1
            and failed[0].operator == "In"
            and len(failed[0].values) == 1
            and failed[0] not in term.match_fields
        ):
            fix = (
                f"kubectl label node {node.name} {failed[0].key}={failed[0].values[0]}, or widen the affinity"
            )
    return [Reason(Rule.NODE_AFFINITY, message, fix)]


def platform_mismatch(p: Prepared, node: Node) -> tuple[str, str] | None:
    """(label key, node's value) when the node's OS, else its architecture, is not one the images run on
    and the DaemonSet's own selection does not already look at that label; None otherwise."""
    selected = p.selected
    node_os = node.label(OS_LABELS)
    if (
        node_os
        and not selected.intersection(OS_LABELS)
        and all(platform.os != node_os for platform in p.platforms)
    ):
        return OS_LABELS[0], node_os
    node_arch = node.label(ARCH_LABELS)
    if node_arch and not selected.intersection(ARCH_LABELS):
        fitting = [platform for platform in p.platforms if platform.os == node_os or not node_os]
        if fitting and all(platform.arch and platform.arch != node_arch for platform in fitting):
            return ARCH_LABELS[0], node_arch
    return None


def rule_platform(p: Prepared, node: Node) -> list[Reason]:
    mismatch = platform_mismatch(p, node)
    if mismatch is None:
        return []
    key, actual = mismatch
    wanted = ", ".join(map(str, p.platforms))
    origin = "spec.os.name" if p.ds.template.os_name else "--platform" if p.platforms[0].arch else "assumed"
    return [
        Reason(
            Rule.PLATFORM,
            f"node has {key}={actual}; the pod's images are for {wanted} ({origin}), so the pod cannot run "
            "here, yet nothing in the DaemonSet keeps it off this node",
            "keep the pods off such nodes with spec.template.spec.nodeSelector (or node affinity) on "
            f"{key} (see -o patch); do not tolerate this node's taints",
            by_design=True,
        )
    ]


def _taint_reason(taint: Taint, node: Node) -> Reason:
    evicts = " (NoExecute: running pods are evicted too)" if taint.effect == NO_EXECUTE else ""
    message = f"taint {taint} is not tolerated{evicts}"
    fix = _toleration_fix(taint)
    if taint.key in (NOT_READY, UNREACHABLE):
        state = "NotReady" if taint.key == NOT_READY else "unreachable"
        message = f"taint {taint} is not tolerated: the node controller marks the node {state}"
        fix = (
            f"bring node {node.name} back (kubelet, container runtime, network); to start the pod on such "
            "nodes anyway (e.g. a network plugin), " + fix
        )
    elif taint.key == NETWORK_UNAVAILABLE:
        message += (
            " (the node's pod network is not set up yet; the controller tolerates this taint only for "
            "hostNetwork pods)"
        )
        fix = "if this DaemonSet provides the pod network, set hostNetwork: true; otherwise " + fix
    elif taint.key in (CONTROL_PLANE_KEY, LEGACY_MASTER_KEY):
        fix += (
            "\n(to run on control-plane nodes of every Kubernetes version, tolerate both "
            f"{CONTROL_PLANE_KEY} and {LEGACY_MASTER_KEY})"
        )
    return Reason(Rule.TAINT, message, fix)


def rule_taints(p: Prepared, node: Node) -> list[Reason]:
    if not node.taints:
        return []
    return [_taint_reason(taint, node) for taint in untolerated_taints(node.taints, p.tolerations)]


# ---------------------------------------------------------------- scheduler and kubelet rules


def _network_not_ready(message: str) -> bool:
    """The kubelet is up but reports the pod network missing (no CNI yet): hostNetwork pods still start."""
    lowered = message.lower()
    return "networkready=false" in lowered or "network plugin" in lowered or "cni" in lowered


def rule_node_ready(p: Prepared, node: Node, usage: NodeUsage) -> list[Reason]:
    reasons = []
    ready = node.conditions.get("Ready")
    if ready is None:
        reasons.append(
            Reason(
                Rule.NOT_READY,
                "node reports no Ready condition (the node controller treats that as Unknown); "
                "the pod is created but cannot start",
                f"check that the kubelet on {node.name} runs and posts its status",
            )
        )
    elif ready.status != "True":
        detail = ": ".join(part for part in (ready.reason, ready.message) if part)
        state = f"node is NotReady (Ready={ready.status or '?'}{', ' + detail if detail else ''})"
        if ready.status == "False" and _network_not_ready(ready.message):
            if not p.ds.template.host_network:
                reasons.append(
                    Reason(
                        Rule.NOT_READY,
                        f"{state}; the pod needs the pod network, which is not up yet",
                        f"get the network plugin running on {node.name} (its DaemonSet uses hostNetwork and "
                        "starts on NotReady nodes); this pod starts after that",
                    )
                )
        else:
            reasons.append(
                Reason(
                    Rule.NOT_READY,
                    f"{state}; the pod is created but cannot start",
                    f"check the kubelet and container runtime (kubectl describe node {node.name})",
                )
            )
    if not p.ds.template.critical:
        for condition in ("DiskPressure", "PIDPressure"):
            pressure = node.conditions.get(condition)
            if pressure is not None and pressure.status == "True":
                reasons.append(
                    Reason(
                        Rule.NOT_READY,
                        f"node has {condition}: the kubelet rejects non-critical pods until it clears",
                        f"relieve the {condition} on {node.name}, or give the DaemonSet "
                        "priorityClassName: system-node-critical so the kubelet admits it under pressure",
                    )
                )
    return reasons


def _pod_names(pods: Iterable[ExistingPod], limit: int = 3) -> str:
    pods = list(pods)
    names = ", ".join(f"{pod.namespace}/{pod.name}" for pod in pods[:limit])
    return names + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


def rule_capacity(p: Prepared, node: Node, usage: NodeUsage) -> list[Reason]:
    """NodeResourcesFit: the pod count limit, then every requested resource against what is left."""
    if not node.allocatable_reported:
        return [
            Reason(
                Rule.RESOURCES,
                "node reports no status.allocatable: the scheduler sees zero capacity (pods, cpu, memory)",
                f"check that the kubelet on {node.name} has registered and posts its status",
            )
        ]
    mine = own_pods(p.ds, usage)
    pod_count = usage.pod_count - len(mine)
    reasons = []
    allowed = node.allocatable.get("pods", 0)
    if pod_count + 1 > allowed:
        reasons.append(
            Reason(
                Rule.POD_COUNT,
                f"node already runs {pod_count} pods and allows {allowed} (allocatable pods)",
                f"raise the kubelet's maxPods on {node.name} or move pods off it; a DaemonSet with a higher "
                "priorityClassName (e.g. system-node-critical) preempts lower-priority pods",
            )
        )
    for name, wanted in p.checked_requests.items():
        used = usage.requested.get(name, 0) - sum(pod.requests.get(name, 0) for pod in mine)
        allocatable = node.allocatable.get(name, 0)
        free = allocatable - used
        if wanted <= free:
            continue
        if allocatable == 0 and ("/" in name or name.startswith("hugepages-")):
            message = f"insufficient {name}: the pod requests {format_units(name, wanted)}, the node has none"
            fix = f"select only nodes that offer {name} (nodeSelector or node affinity on their label)"
        else:
            message = (
                f"insufficient {name}: the pod requests {format_units(name, wanted)}, "
                f"{format_units(name, max(free, 0))} free of {format_units(name, allocatable)} allocatable "
                f"({format_units(name, used)} requested by the {pod_count} other pod(s))"
            )
            fix = (
                f"lower the DaemonSet's {name} request or free {format_units(name, wanted - free)} on "
                f"{node.name}; a higher priorityClassName (e.g. system-node-critical) lets the scheduler "
                "preempt lower-priority pods"
            )
        reasons.append(Reason(Rule.RESOURCES, message, fix))
    return reasons


def rule_host_ports(p: Prepared, node: Node, usage: NodeUsage) -> list[Reason]:
    if not p.ds.template.host_ports or not usage.ports:
        return []
    mine = {id(pod) for pod in own_pods(p.ds, usage)}
    reasons = []
    for wanted in p.ds.template.host_ports:
        holders = [
            pod
            for used, pod in usage.ports
            if id(pod) not in mine
            and used.port == wanted.port
            and used.protocol == wanted.protocol
            and (wanted.host_ip == "0.0.0.0" or used.host_ip in ("0.0.0.0", wanted.host_ip))
        ]
        if holders:
            implied = (
                " (with hostNetwork every containerPort is a host port)" if p.ds.template.host_network else ""
            )
            reasons.append(
                Reason(
                    Rule.HOST_PORT,
                    f"host port {wanted} is already taken by pod {_pod_names(holders)}{implied}",
                    f"move or remove {_pod_names(holders)}, or change the DaemonSet's port {wanted.port}",
                )
            )
    return reasons


ControllerRule = Callable[[Prepared, Node], list[Reason]]
SchedulerRule = Callable[[Prepared, Node, NodeUsage], list[Reason]]

EXCLUDING_RULES: tuple[ControllerRule, ...] = (
    rule_node_name,
    rule_node_selector,
    rule_node_affinity,
    rule_platform,
)
BLOCKING_RULES: tuple[ControllerRule, ...] = (rule_taints,)
SCHEDULER_RULES: tuple[SchedulerRule, ...] = (rule_node_ready, rule_capacity, rule_host_ports)


def evaluate_node(p: Prepared, node: Node, usage: NodeUsage) -> NodeResult:
    excluded = [reason for rule in EXCLUDING_RULES for reason in rule(p, node)]
    blocked = [reason for rule in BLOCKING_RULES for reason in rule(p, node)]
    if excluded:
        result = NodeResult(node, Verdict.EXCLUDED, excluded + blocked)
        if blocked and result.by_design:  # a toleration would only put pods where they cannot run
            result.reasons = excluded + [Reason(r.rule, r.message, None, r.by_design) for r in blocked]
        return result
    if blocked:
        return NodeResult(node, Verdict.BLOCKED, blocked)
    pending = [reason for rule in SCHEDULER_RULES for reason in rule(p, node, usage)]
    return NodeResult(node, Verdict.PENDING if pending else Verdict.RUNS, pending)


# ---------------------------------------------------------------- DaemonSet-wide warnings


def _control_plane_warning(p: Prepared) -> str | None:
    def tolerated(key: str) -> bool:
        return any(tolerates(t, Taint(key, "", NO_SCHEDULE)) for t in p.tolerations)

    modern, legacy = tolerated(CONTROL_PLANE_KEY), tolerated(LEGACY_MASTER_KEY)
    if modern == legacy:
        return None
    has, lacks = (CONTROL_PLANE_KEY, LEGACY_MASTER_KEY) if modern else (LEGACY_MASTER_KEY, CONTROL_PLANE_KEY)
    era = (
        "kubeadm sets it on control-plane nodes since Kubernetes 1.24/1.25"
        if lacks == CONTROL_PLANE_KEY
        else "clusters older than Kubernetes 1.24 and some distributions still use it"
    )
    return f"tolerates {has}:NoSchedule but not {lacks}:NoSchedule ({era}); add:\n" + toleration_yaml(
        Taint(lacks, "", NO_SCHEDULE)
    )


def _eviction_warnings(p: Prepared, nodes: list[Node]) -> list[str]:
    """NoExecute taints tolerated only for a while: the pod runs, is evicted, and is created again."""
    timed: dict[tuple[Taint, int], list[str]] = {}
    for node in nodes:
        for taint in node.taints:
            if taint.effect != NO_EXECUTE:
                continue
            matching = [t for t in p.tolerations if tolerates(t, taint)]
            if matching and all(t.toleration_seconds is not None for t in matching):
                seconds = min(t.toleration_seconds or 0 for t in matching)
                timed.setdefault((taint, seconds), []).append(node.name)
    return [
        f"taint {taint} is tolerated for {seconds}s only: on {_names(names)} the pod is evicted after that "
        "and the controller creates it again; drop tolerationSeconds to keep it"
        for (taint, seconds), names in timed.items()
    ]


def _names(names: list[str], limit: int = 5) -> str:
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _warnings(p: Prepared, nodes: list[Node], results: list[NodeResult]) -> list[str]:
    ds, template = p.ds, p.ds.template
    warnings = list(ds.problems)
    cp = _control_plane_warning(p)
    if cp:
        warnings.append(cp)
    warnings += _eviction_warnings(p, nodes)
    for number, error in p.term_errors:
        warnings.append(f"required node affinity term {number} is invalid and matches no node: {error}")
    unguarded: dict[str, list[str]] = {}
    for r in results:
        if any(reason.rule is Rule.PLATFORM for reason in r.reasons):
            unguarded.setdefault(r.node.platform, []).append(r.node.name)
    for platform, names in unguarded.items():
        kind = "Windows" if platform.startswith("windows/") else platform
        warnings.append(
            f"{kind} node(s) {_names(names)}: the DaemonSet controller creates pods there that cannot run "
            f"(images for {', '.join(map(str, p.platforms))}); add a nodeSelector or node affinity on "
            "kubernetes.io/os / kubernetes.io/arch (see -o patch)"
        )
    if template.runtime_class_name and not template.has_overhead:
        warnings.append(
            f"runtimeClassName {template.runtime_class_name}: its RuntimeClass may add pod overhead that "
            "is not counted here"
        )
    unchecked = sorted(n for n, amount in template.requests.items() if amount > 0 and not scheduler_checks(n))
    if unchecked:
        warnings.append(f"requests for {', '.join(unchecked)} are not resources the scheduler checks")
    return warnings


def evaluate(
    ds: DaemonSet, nodes: list[Node], usage: dict[str, NodeUsage], platforms: tuple[Platform, ...] = ()
) -> DaemonSetResult:
    """Every node's verdict for one DaemonSet; ``platforms``: what the images run on (default: spec.os.name,
    else Linux)."""
    prepared = prepare(ds, platforms)
    results = [evaluate_node(prepared, node, usage.get(node.name, _NO_USAGE)) for node in nodes]
    return DaemonSetResult(ds, results, _warnings(prepared, nodes, results), platforms)
