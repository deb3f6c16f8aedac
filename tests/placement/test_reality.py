"""Prediction against cluster state, on hand-made pods: which combinations agree and what is said."""

from __future__ import annotations

from nodeagent.placement.model import pod_from_obj
from nodeagent.placement.reality import compare
from nodeagent.placement.rules import evaluate, index_usage
from tests.placement.builders import make_ds, make_node, pod_obj


def _pod(name, node, phase="Running", ready=True, **extra):
    obj = pod_obj(name, node, owner=("DaemonSet", "agent"), phase=phase)
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    obj["status"]["conditions"] = conditions
    obj["status"].update(extra)
    return pod_from_obj(obj, [])


def _compare(ds, nodes, pods, status=None):
    ds.generation = 1
    ds.status = status or {"observedGeneration": 1}
    return compare(evaluate(ds, nodes, index_usage([])), pods)


def test_excluded_node_with_a_pod_is_deleted_by_the_controller():
    ds = make_ds({"nodeSelector": {"pool": "infra"}}, name="agent")
    live = _compare(ds, [make_node("a")], [_pod("agent-a", "a")])
    assert live.disagreements == [
        "a: excluded by the DaemonSet's node selection, yet pod agent-a is ready (the controller deletes it)"
    ]


def test_no_execute_taint_with_a_pod_means_eviction():
    ds = make_ds(name="agent")
    node = make_node("a", taints=[{"key": "drain", "effect": "NoExecute"}])
    (line,) = _compare(ds, [node], [_pod("agent-a", "a")]).disagreements
    assert line.endswith("(it predates the taint; the controller deletes it)")


def test_runs_but_crash_looping_pod_disagrees_with_the_waiting_reason():
    ds = make_ds(name="agent")
    crashing = _pod(
        "agent-a", "a", ready=False,
        containerStatuses=[{"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
    )  # fmt: skip
    (line,) = _compare(ds, [make_node("a")], [crashing]).disagreements
    assert line == "a: predicted to run, but pod agent-a is not-ready: main: CrashLoopBackOff"


def test_status_counts_are_compared_when_current():
    ds = make_ds(name="agent")
    status = {"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 1, "numberMisscheduled": 0}
    live = _compare(ds, [make_node("a")], [_pod("agent-a", "a")], status)
    assert live.status_current
    # numberReady 1 matches the prediction (1 runs); desiredNumberScheduled 2 does not.
    assert live.disagreements == ["status.desiredNumberScheduled is 2, predicted 1"]
    assert live.counts["numberReady"] == {"actual": 1, "predicted": 1}


def test_pods_of_other_daemonsets_or_namespaces_are_ignored():
    ds = make_ds(name="agent", namespace="ops")
    other = _pod("agent-a", "a")  # namespace default
    live = _compare(ds, [make_node("a")], [other])
    assert live.nodes["a"].pods == [] and not live.nodes["a"].agrees
