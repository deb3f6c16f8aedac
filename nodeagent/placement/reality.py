"""Prediction against reality (live mode): the DaemonSet's status counts and, node by node, whether its pod
exists, is Ready, or is Pending and why. Pure functions over API objects; live.py does the fetching."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nodeagent.placement.model import DaemonSet, ExistingPod, as_dict, as_list, as_str
from nodeagent.placement.rules import DaemonSetResult, NodeResult, Rule, Verdict


@dataclass(frozen=True, slots=True)
class PodState:
    name: str
    state: str  # ready | not-ready | starting | unschedulable | terminating | failed
    detail: str = ""

    def describe(self) -> str:
        return f"pod {self.name} is {self.state}" + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class NodeReality:
    pods: list[PodState]
    agrees: bool
    note: str = ""

    @property
    def pod(self) -> PodState | None:
        return self.pods[0] if self.pods else None


@dataclass(slots=True)
class LiveComparison:
    generation: int | None
    observed_generation: int | None
    status_current: bool
    counts: dict[str, dict[str, int | None]]  # name -> {"actual": n, "predicted": n}
    nodes: dict[str, NodeReality]
    disagreements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def owned_pods(ds: DaemonSet, pods: Iterable[ExistingPod]) -> list[ExistingPod]:
    """Pods whose controller is this DaemonSet (by uid when known, else namespace and name)."""
    result = []
    for pod in pods:
        owner = pod.owner
        if owner is None or owner.kind != "DaemonSet" or pod.namespace != ds.namespace:
            continue
        if (ds.uid and owner.uid) and owner.uid != ds.uid:
            continue
        if owner.name == ds.name:
            result.append(pod)
    return result


def _waiting_reasons(status: dict) -> str:
    reasons = []
    for entry in as_list(status.get("initContainerStatuses")) + as_list(status.get("containerStatuses")):
        entry = as_dict(entry)
        waiting = as_dict(as_dict(entry.get("state")).get("waiting"))
        if waiting.get("reason"):
            detail = as_str(waiting.get("reason"))
            if waiting.get("message"):
                detail += f" ({as_str(waiting['message'])})"
            reasons.append(f"{as_str(entry.get('name'))}: {detail}")
    return "; ".join(reasons)


def pod_state(pod: ExistingPod, scheduling_events: Mapping[tuple[str, str], list[str]]) -> PodState:
    raw = pod.raw
    status = as_dict(raw.get("status"))
    conditions = {as_str(c.get("type")): c for c in map(as_dict, as_list(status.get("conditions")))}
    if as_dict(raw.get("metadata")).get("deletionTimestamp"):
        return PodState(pod.name, "terminating")
    if pod.phase in ("Failed", "Succeeded"):
        detail = ": ".join(as_str(status.get(k)) for k in ("reason", "message") if status.get(k))
        return PodState(pod.name, "failed", detail or pod.phase)
    if as_dict(conditions.get("Ready")).get("status") == "True":
        return PodState(pod.name, "ready")
    scheduled = as_dict(conditions.get("PodScheduled"))
    if not pod.bound or scheduled.get("status") == "False":
        events = scheduling_events.get((pod.namespace, pod.name)) or []
        detail = events[-1] if events else as_str(scheduled.get("message")) or as_str(scheduled.get("reason"))
        return PodState(pod.name, "unschedulable", detail)
    if pod.phase == "Pending":
        return PodState(pod.name, "starting", _waiting_reasons(status))
    return PodState(pod.name, "not-ready", _waiting_reasons(status) or "containers are not Ready")


def _compare_node(node_result: NodeResult, pods: list[PodState]) -> tuple[bool, str]:
    verdict = node_result.verdict
    live = [p for p in pods if p.state not in ("terminating", "failed")]
    if verdict == Verdict.RUNS:
        if any(p.state == "ready" for p in live):
            return True, ""
        if not pods:
            return False, "predicted to run, but the DaemonSet has no pod on this node"
        return False, "predicted to run, but " + "; ".join(p.describe() for p in pods)
    if verdict == Verdict.PENDING:
        if any(p.state == "ready" for p in live):
            return False, "predicted pending, but the pod is Ready"
        if live:
            return True, "; ".join(p.describe() for p in live)
        if pods:
            return True, "; ".join(p.describe() for p in pods)
        return False, "predicted a pending pod, but the DaemonSet has no pod on this node"
    if not live:
        return True, ""
    existing = "; ".join(p.describe() for p in live)
    if verdict == Verdict.EXCLUDED:
        return (
            False,
            f"excluded by the DaemonSet's node selection, yet {existing} (the controller deletes it)",
        )
    evicting = any(r.rule is Rule.TAINT and "NoExecute" in r.message for r in node_result.reasons)
    fate = (
        "the controller deletes it"
        if evicting
        else "NoSchedule does not evict, so it stays, counted as misscheduled"
    )
    return False, f"blocked by a taint, yet {existing} (it predates the taint; {fate})"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def compare(
    result: DaemonSetResult,
    pods: Iterable[ExistingPod],
    scheduling_events: Mapping[tuple[str, str], list[str]] | None = None,
) -> LiveComparison:
    ds = result.daemonset
    events = scheduling_events or {}
    by_node: dict[str, list[ExistingPod]] = {}
    for pod in owned_pods(ds, pods):
        by_node.setdefault(pod.node_name, []).append(pod)

    nodes: dict[str, NodeReality] = {}
    disagreements: list[str] = []
    predicted_misscheduled = 0
    for node_result in result.nodes:
        name = node_result.node.name
        states = [pod_state(pod, events) for pod in by_node.pop(name, [])]
        agrees, note = _compare_node(node_result, states)
        nodes[name] = NodeReality(states, agrees, note)
        if node_result.verdict in (Verdict.BLOCKED, Verdict.EXCLUDED) and any(
            s.state != "failed" for s in states
        ):
            predicted_misscheduled += 1
        if not agrees:
            disagreements.append(f"{name}: {note}")
    for node_name, orphans in by_node.items():
        names = ", ".join(pod.name for pod in orphans)
        disagreements.append(
            f"{node_name or '<unassigned>'}: pod(s) {names} target a node that is not in the node list"
        )

    status = ds.status
    generation, observed = ds.generation, _int(status.get("observedGeneration"))
    current = observed is not None and (generation is None or observed >= generation)
    summary = result.summary()
    counts = {
        "desiredNumberScheduled": {
            "actual": _int(status.get("desiredNumberScheduled")),
            "predicted": summary["runs"] + summary["pending"],
        },
        "numberReady": {"actual": _int(status.get("numberReady")), "predicted": summary["runs"]},
        "numberMisscheduled": {
            "actual": _int(status.get("numberMisscheduled")),
            "predicted": predicted_misscheduled,
        },
    }
    if current:
        for name, pair in counts.items():
            if pair["actual"] is not None and pair["actual"] != pair["predicted"]:
                disagreements.insert(0, f"status.{name} is {pair['actual']}, predicted {pair['predicted']}")
    notes = []
    if not current:
        notes.append(
            f"status is for generation {observed}, the spec is at generation {generation}: the controller "
            "has not caught up, so the status counts are not compared"
        )
    return LiveComparison(generation, observed, current, counts, nodes, disagreements, notes)
