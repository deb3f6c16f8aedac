"""The shapes of the API fields the checker reads, checked before the model is built.

The model builders turn odd values into notes and carry on; a value of the wrong type, though (a list where
a mapping belongs, a mapping where a name belongs), would otherwise be coerced silently and give a verdict
about something the API server would never accept. So each object is first held against the shape of the
fields the checker reads; the first mismatch is reported with its field path. Fields not listed here are
not looked at, and null stands for an absent field, as in the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nodeagent.safeio import quote

# A mismatch found deep inside a value: the path to it, innermost part first, and what is wrong. The path is
# built only when something is wrong: checking runs for every pod of a cluster, so the common case must do
# little more than look at types.
Fault = tuple[list[str], str]


class Shape:
    expected: str = ""

    def fault(self, value: Any) -> Fault | None:
        raise NotImplementedError


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def printable(text: str) -> str:
    """Input text for a one-line message: as it is when short and printable, else quoted and cut."""
    return text if len(text) <= 100 and text.isprintable() else quote(text, 100)


def _wrong(shape: Shape, value: Any) -> Fault:
    return [], f"expected {shape.expected}, got {describe(value)}"


@dataclass(frozen=True)
class Leaf(Shape):
    """A scalar of exactly one of ``types`` (YAML and JSON build no subclasses; a bool is no int here)."""

    types: frozenset[type]
    expected: str

    def fault(self, value: Any) -> Fault | None:
        if value is None or type(value) in self.types:
            return None
        return _wrong(self, value)


class Fields(Shape):
    """A mapping; the listed fields have their shapes, others are not read."""

    expected = "a mapping"

    def __init__(self, shapes: dict[str, Shape]) -> None:
        self.fields = tuple(shapes.items())

    def fault(self, value: Any) -> Fault | None:
        if type(value) is not dict:
            return None if value is None else _wrong(self, value)
        get = value.get
        for name, shape in self.fields:
            item = get(name)
            if item is not None:
                found = shape.fault(item)
                if found:
                    found[0].append(name)
                    return found
        return None


def _first_fault(
    members: Iterable[tuple[Any, Any]], check: Callable[[Any], Fault | None], label: Callable[[Any], str]
) -> Fault | None:
    """The first member whose value does not fit, with its label added to the path."""
    for key, item in members:
        found = check(item)
        if found:
            found[0].append(label(key))
            return found
    return None


@dataclass(frozen=True)
class MapOf(Shape):
    """A mapping with string keys and values of one shape (labels, nodeSelector, resource lists)."""

    values: Shape
    expected: str = "a mapping"

    def fault(self, value: Any) -> Fault | None:
        if type(value) is not dict:
            return None if value is None else _wrong(self, value)
        for key in value:
            if type(key) is not str:
                return [], f"key {quote(repr(key), 100)} is {describe(key)}, not a string"
        return _first_fault(value.items(), self.values.fault, printable)


@dataclass(frozen=True)
class ListOf(Shape):
    items: Shape
    expected: str = "a list"

    def fault(self, value: Any) -> Fault | None:
        if type(value) is not list:
            return None if value is None else _wrong(self, value)
        return _first_fault(enumerate(value), self.items.fault, "[{}]".format)


def _path(parts: list[str]) -> str:
    return "".join(part if part.startswith("[") else "." + part for part in reversed(parts)).lstrip(".")


STRING = Leaf(frozenset({str}), "a string")
BOOLEAN = Leaf(frozenset({bool}), "a boolean")
# Quantities and port numbers: their builders read numbers and strings and note values they cannot use.
NUMBER_OR_STRING = Leaf(frozenset({str, int, float}), "a number or a string")

_RESOURCE_LIST = MapOf(NUMBER_OR_STRING)
_RESOURCES = Fields({"requests": _RESOURCE_LIST, "limits": _RESOURCE_LIST})
_CONTAINER = Fields(
    {
        "resources": _RESOURCES,
        "restartPolicy": STRING,
        "ports": ListOf(
            Fields(
                {
                    "hostPort": NUMBER_OR_STRING,
                    "containerPort": NUMBER_OR_STRING,
                    "protocol": STRING,
                    "hostIP": STRING,
                }
            )
        ),
    }
)
_REQUIREMENTS = ListOf(Fields({"key": STRING, "operator": STRING, "values": ListOf(STRING)}))
_AFFINITY = Fields(
    {
        "nodeAffinity": Fields(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": Fields(
                    {
                        "nodeSelectorTerms": ListOf(
                            Fields({"matchExpressions": _REQUIREMENTS, "matchFields": _REQUIREMENTS})
                        )
                    }
                )
            }
        )
    }
)
# What the resource and host-port rules read of any pod spec, existing pods and DaemonSet templates alike.
_PLACED_POD_FIELDS: dict[str, Shape] = {
    "nodeName": STRING,
    "affinity": _AFFINITY,
    "hostNetwork": BOOLEAN,
    "containers": ListOf(_CONTAINER),
    "initContainers": ListOf(_CONTAINER),
    "resources": _RESOURCES,
    "overhead": _RESOURCE_LIST,
}
# A DaemonSet's pod template is read in full: selection, tolerations and priority too.
TEMPLATE_SPEC = Fields(
    _PLACED_POD_FIELDS
    | {
        "nodeSelector": MapOf(STRING),
        "tolerations": ListOf(Fields({"key": STRING, "operator": STRING, "value": STRING, "effect": STRING})),
        "priorityClassName": STRING,
        "runtimeClassName": STRING,
        "os": Fields({"name": STRING}),
    }
)
_METADATA = Fields({"name": STRING, "namespace": STRING, "uid": STRING, "labels": MapOf(STRING)})

DAEMONSET = Fields(
    {
        "metadata": _METADATA,
        "spec": Fields({"template": Fields({"spec": TEMPLATE_SPEC})}),
        "status": Fields({}),
    }
)
NODE = Fields(
    {
        "metadata": _METADATA,
        "spec": Fields(
            {
                "taints": ListOf(Fields({"key": STRING, "value": STRING, "effect": STRING})),
                "unschedulable": BOOLEAN,
            }
        ),
        "status": Fields(
            {
                "allocatable": _RESOURCE_LIST,
                "conditions": ListOf(
                    Fields({"type": STRING, "status": STRING, "reason": STRING, "message": STRING})
                ),
            }
        ),
    }
)
POD = Fields(
    {
        "metadata": Fields(
            {
                "name": STRING,
                "namespace": STRING,
                "ownerReferences": ListOf(
                    Fields({"kind": STRING, "name": STRING, "uid": STRING, "controller": BOOLEAN})
                ),
            }
        ),
        "spec": Fields(_PLACED_POD_FIELDS),
        "status": Fields({"phase": STRING}),
    }
)
SHAPES = {"DaemonSet": DAEMONSET, "Node": NODE, "Pod": POD}


def shape_problem(kind: str, obj: dict) -> str | None:
    """``kind NAME: field.path: expected ..., got ...`` for an object that does not fit, else None."""
    found = SHAPES[kind].fault(obj)
    if found is None:
        return None
    parts, message = found
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    label = printable(name) if isinstance(name, str) and name else "<unnamed>"
    return f"{kind} {label}: {_path(parts)}: {message}"
