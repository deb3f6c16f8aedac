"""The report renders (prediction, live comparison) pairs: JSON for programs, the table for people."""

from __future__ import annotations

import json

from nodeagent.placement.model import pod_from_obj
from nodeagent.placement.reality import compare
from nodeagent.placement.report import exit_status, render_json, render_table, to_json
from nodeagent.placement.rules import Rule, Verdict, evaluate, index_usage
from tests.placement.builders import make_ds, make_node, pod_obj


def _checked(live: bool):
    ds = make_ds({"nodeSelector": {"pool": "infra"}}, name="agent")
    ds.generation = 1
    ds.status = {"observedGeneration": 1, "desiredNumberScheduled": 0}
    nodes = [make_node("a", labels={"pool": "infra"}), make_node("b")]
    result = evaluate(ds, nodes, index_usage([]))
    pod = pod_from_obj(pod_obj("agent-b", "b", owner=("DaemonSet", "agent"), phase="Running"), [])
    return [(result, compare(result, [pod]) if live else None)]


def test_offline_pairs_carry_no_live_section():
    document = to_json(_checked(live=False))
    (daemonset,) = document["daemonsets"]
    assert "live" not in daemonset
    assert all("live" not in entry for entry in daemonset["nodes"])
    assert "CLUSTER" not in render_table(_checked(live=False))


def test_live_comparison_is_rendered_from_the_pair():
    checked = _checked(live=True)
    (daemonset,) = json.loads(render_json(checked))["daemonsets"]
    assert daemonset["live"]["counts"]["desiredNumberScheduled"] == {"actual": 0, "predicted": 1}
    by_name = {entry["name"]: entry for entry in daemonset["nodes"]}
    assert by_name["b"]["live"]["agrees"] is False
    assert [p["name"] for p in by_name["b"]["live"]["pods"]] == ["agent-b"]
    table = render_table(checked)
    assert "CLUSTER" in table and "Prediction and cluster disagree:" in table


def test_reason_rule_is_a_closed_enum_serialised_as_its_plain_name():
    ((result, _),) = _checked(live=False)
    excluded = next(n for n in result.nodes if n.verdict is Verdict.EXCLUDED)
    assert excluded.reasons[0].rule is Rule.NODE_SELECTOR
    (daemonset,) = to_json(_checked(live=False))["daemonsets"]
    (reason,) = next(entry for entry in daemonset["nodes"] if entry["name"] == "b")["reasons"]
    assert reason["rule"] == "nodeSelector"
    assert json.dumps(reason["rule"]) == '"nodeSelector"'


def test_exit_status_reads_the_predictions_of_the_pairs():
    checked = _checked(live=True)
    assert exit_status(checked) == 1
    assert exit_status(checked, allow_excluded=True) == 0
