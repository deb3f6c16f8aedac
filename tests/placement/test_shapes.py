"""Shapes of the fields the checker reads: what fits, what is refused and how the refusal names the field."""

from __future__ import annotations

import pytest

from nodeagent.placement.shapes import shape_problem
from tests.placement.builders import (
    DAEMONSETS,
    KIND_NODES,
    KIND_PODS,
    ds_obj,
    node_obj,
    pod_obj,
    read_objects,
)


def test_real_objects_fit():
    for path in sorted(DAEMONSETS.glob("*.yaml")):
        for obj in read_objects(path):
            if obj.get("kind") == "DaemonSet":
                assert shape_problem("DaemonSet", obj) is None, path
    for kind, path in (("Node", KIND_NODES), ("Pod", KIND_PODS)):
        objects = read_objects(path)
        assert objects
        for obj in objects:
            assert shape_problem(kind, obj) is None


def test_null_stands_for_an_absent_field():
    obj = ds_obj({"tolerations": None, "nodeSelector": None, "affinity": {"nodeAffinity": None}})
    assert shape_problem("DaemonSet", obj) is None


def test_fields_the_checker_does_not_read_are_not_looked_at():
    obj = node_obj("n1")
    obj["spec"]["podCIDRs"] = {"odd": ["but", "unread"]}
    obj["metadata"]["annotations"] = [1, 2]
    assert shape_problem("Node", obj) is None


@pytest.mark.parametrize(
    ("pod_spec", "path", "message"),
    [
        ({"tolerations": 5}, "tolerations", "expected a list, got an integer"),
        ({"tolerations": ["Exists"]}, "tolerations[0]", "expected a mapping, got a string"),
        ({"nodeSelector": ["a", "b"]}, "nodeSelector", "expected a mapping, got a list"),
        ({"nodeSelector": {"disk": True}}, "nodeSelector.disk", "expected a string, got a boolean"),
        ({"nodeName": ["a"]}, "nodeName", "expected a string, got a list"),
        ({"hostNetwork": "yes"}, "hostNetwork", "expected a boolean, got a string"),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": "v"}]}]
            }}}},
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].values",
            "expected a list, got a string",
        ),
        (
            {"containers": [{"name": "c", "ports": [{"hostPort": [80]}]}]},
            "containers[0].ports[0].hostPort",
            "expected a number or a string, got a list",
        ),
    ],
)  # fmt: skip
def test_template_mismatch_names_the_field_path(pod_spec, path, message):
    problem = shape_problem("DaemonSet", ds_obj(pod_spec))
    assert problem == f"DaemonSet agent: spec.template.spec.{path}: {message}"


def test_the_first_mismatch_is_reported_and_names_are_bounded():
    assert shape_problem("Node", node_obj("n1") | {"metadata": {"name": ["a"]}}) == (
        "Node <unnamed>: metadata.name: expected a string, got a list"
    )
    long_name = "x" * 10_000
    problem = shape_problem("Node", node_obj(long_name) | {"spec": {"taints": 5}})
    assert problem is not None and len(problem) < 300 and "more characters" in problem
    odd_key = node_obj("n1")
    odd_key["metadata"]["labels"] = {1: "one"}
    assert shape_problem("Node", odd_key) == "Node n1: metadata.labels: key '1' is an integer, not a string"


def test_pod_fields():
    pod = pod_obj("p", "n1")
    assert shape_problem("Pod", pod) is None
    pod["status"] = {"phase": ["Running"]}
    assert shape_problem("Pod", pod) == "Pod p: status.phase: expected a string, got a list"
