"""Kubernetes matching semantics, reproduced exactly: tolerations against taints (k8s.io/api core/v1
ToleratesTaint), the tolerations the DaemonSet controller adds to every daemon pod, and node selector
requirements and terms (component-helpers nodeaffinity, apimachinery label and field selectors)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nodeagent.placement.model import (
    NO_EXECUTE,
    NO_SCHEDULE,
    Requirement,
    SelectorTerm,
    Taint,
    Toleration,
)

BLOCKING_EFFECTS = frozenset({NO_SCHEDULE, NO_EXECUTE})

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

_INT64 = re.compile(r"^[+-]?[0-9]+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def parse_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): optional sign, ASCII digits, int64 range; else None."""
    if not _INT64.match(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator
    if operator in ("", "Equal"):
        return toleration.value == taint.value
    if operator == "Exists":
        return True
    if operator in ("Lt", "Gt"):  # numeric comparison, newer clusters (TaintTolerationComparisonOperators)
        wanted, actual = parse_int64(toleration.value), parse_int64(taint.value)
        if wanted is None or actual is None:
            return False
        return actual < wanted if operator == "Lt" else actual > wanted
    return False


def untolerated_taints(
    taints: Iterable[Taint], tolerations: Iterable[Toleration], effects: frozenset[str] = BLOCKING_EFFECTS
) -> list[Taint]:
    tolerations = tuple(tolerations)
    return [
        taint
        for taint in taints
        if taint.effect in effects and not any(tolerates(toleration, taint) for toleration in tolerations)
    ]


def add_or_update_toleration(tolerations: list[Toleration], toleration: Toleration) -> None:
    """AddOrUpdateTolerationInPodSpec: replace tolerations with the same key/operator/value/effect."""
    replaced = False
    for index, existing in enumerate(tolerations):
        if existing.same_identity(toleration):
            tolerations[index] = toleration
            replaced = True
    if not replaced:
        tolerations.append(toleration)


def daemon_pod_tolerations(tolerations: Iterable[Toleration], host_network: bool) -> tuple[Toleration, ...]:
    """The pod's tolerations after the DaemonSet controller's AddOrUpdateDaemonPodTolerations."""
    result = list(tolerations)
    for key, effect in (
        (NOT_READY, NO_EXECUTE),
        (UNREACHABLE, NO_EXECUTE),
        (DISK_PRESSURE, NO_SCHEDULE),
        (MEMORY_PRESSURE, NO_SCHEDULE),
        (PID_PRESSURE, NO_SCHEDULE),
        (UNSCHEDULABLE, NO_SCHEDULE),
    ):
        add_or_update_toleration(result, Toleration(key=key, operator="Exists", effect=effect))
    if host_network:
        add_or_update_toleration(
            result, Toleration(key=NETWORK_UNAVAILABLE, operator="Exists", effect=NO_SCHEDULE)
        )
    return tuple(result)


def _qualified_name_error(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"key {key!r}: prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return f"key {key!r} is not a valid label key"
    return None


def _label_value_error(value: str) -> str | None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        return f"value {value!r} is not a valid label value"
    return None


def label_requirement_error(requirement: Requirement) -> str | None:
    """Why labels.NewRequirement would refuse this matchExpressions entry, or None."""
    operator, values = requirement.operator, requirement.values
    if operator not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
        return f"{requirement.key}: operator {operator!r} is not supported"
    error = _qualified_name_error(requirement.key)
    if error:
        return error
    if operator in ("In", "NotIn") and not values:
        return f"{requirement.key} {operator}: values must not be empty"
    if operator in ("Exists", "DoesNotExist") and values:
        return f"{requirement.key} {operator}: values must be empty"
    if operator in ("Gt", "Lt"):
        if len(values) != 1:
            return f"{requirement.key} {operator}: exactly one value is required"
        if parse_int64(values[0]) is None:
            return f"{requirement.key} {operator}: value {values[0]!r} must be an integer"
    for value in values:
        error = _label_value_error(value)
        if error:
            return f"{requirement.key}: {error}"
    return None


def label_requirement_matches(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    """labels.Requirement.Matches for a requirement that passed label_requirement_error."""
    operator, key = requirement.operator, requirement.key
    if operator == "In":
        return key in labels and labels[key] in requirement.values
    if operator == "NotIn":
        return key not in labels or labels[key] not in requirement.values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        if key not in labels:
            return False
        actual, wanted = parse_int64(labels[key]), parse_int64(requirement.values[0])
        if actual is None or wanted is None:
            return False
        return actual > wanted if operator == "Gt" else actual < wanted
    return False


def field_requirement_error(requirement: Requirement) -> str | None:
    """matchFields take In or NotIn with exactly one value."""
    if len(requirement.values) != 1:
        return f"matchFields {requirement.key}: must have exactly one value"
    if requirement.operator not in ("In", "NotIn"):
        return f"matchFields {requirement.key}: operator {requirement.operator!r} is not supported"
    return None


def field_requirement_matches(requirement: Requirement, fields: Mapping[str, str]) -> bool:
    actual = fields.get(requirement.key, "")
    return (actual == requirement.values[0]) == (requirement.operator == "In")


@dataclass(frozen=True, slots=True)
class TermOutcome:
    matched: bool
    error: str | None = None  # the term is invalid, so Kubernetes treats it as matching nothing
    failed: tuple[Requirement, ...] = ()  # requirements the node does not satisfy


def term_error(term: SelectorTerm) -> str | None:
    """Why Kubernetes would treat the term as matching nothing, or None for a valid term."""
    if not term.match_expressions and not term.match_fields:
        return "the term is empty and selects no node"
    errors = [e for e in map(label_requirement_error, term.match_expressions) if e]
    errors += [e for e in map(field_requirement_error, term.match_fields) if e]
    return "; ".join(errors) or None


def term_failures(
    term: SelectorTerm, labels: Mapping[str, str], fields: Mapping[str, str]
) -> tuple[Requirement, ...]:
    """Requirements of a valid term that the node does not satisfy (empty: the term matches)."""
    failed = [r for r in term.match_expressions if not label_requirement_matches(r, labels)]
    failed += [r for r in term.match_fields if not field_requirement_matches(r, fields)]
    return tuple(failed)


def match_term(term: SelectorTerm, labels: Mapping[str, str], fields: Mapping[str, str]) -> TermOutcome:
    error = term_error(term)
    if error:
        return TermOutcome(False, error)
    failed = term_failures(term, labels, fields)
    return TermOutcome(not failed, None, failed)


def match_terms(
    terms: Iterable[SelectorTerm], labels: Mapping[str, str], fields: Mapping[str, str]
) -> tuple[bool, list[TermOutcome]]:
    """nodeSelectorTerms are ORed; the outcomes explain a miss term by term."""
    outcomes = []
    for term in terms:
        outcome = match_term(term, labels, fields)
        if outcome.matched:
            return True, [outcome]
        outcomes.append(outcome)
    return False, outcomes


def node_selector_mismatches(selector: Mapping[str, str], labels: Mapping[str, str]) -> list[str]:
    """Keys of spec.nodeSelector the node's labels do not satisfy (every pair must match exactly)."""
    return [key for key, value in selector.items() if labels.get(key) != value]
