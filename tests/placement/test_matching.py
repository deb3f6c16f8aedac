"""Toleration and selector matching: Kubernetes' documented cases, then properties over generated input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nodeagent.placement.matching import (
    DISK_PRESSURE,
    MEMORY_PRESSURE,
    NETWORK_UNAVAILABLE,
    NOT_READY,
    PID_PRESSURE,
    UNREACHABLE,
    UNSCHEDULABLE,
    daemon_pod_tolerations,
    label_requirement_error,
    label_requirement_matches,
    match_term,
    match_terms,
    node_selector_mismatches,
    parse_int64,
    tolerates,
    untolerated_taints,
)
from nodeagent.placement.model import Requirement, SelectorTerm, Taint, Toleration

NS, NE, PNS = "NoSchedule", "NoExecute", "PreferNoSchedule"


# ---------------------------------------------------------------- tolerations, case by case


def test_exists_with_empty_key_and_effect_tolerates_everything():
    everything = Toleration(operator="Exists")
    for taint in (Taint("a", "", NS), Taint("b", "v", NE), Taint("c", "x", PNS)):
        assert tolerates(everything, taint)


def test_empty_effect_matches_every_effect_of_that_key():
    toleration = Toleration(key="dedicated", operator="Exists")
    assert tolerates(toleration, Taint("dedicated", "gpu", NS))
    assert tolerates(toleration, Taint("dedicated", "gpu", NE))
    assert not tolerates(toleration, Taint("other", "gpu", NS))


def test_equal_compares_values_and_empty_operator_means_equal():
    taint = Taint("dedicated", "gpu", NS)
    assert tolerates(Toleration("dedicated", "Equal", "gpu", NS), taint)
    assert tolerates(Toleration("dedicated", "", "gpu", NS), taint)
    assert not tolerates(Toleration("dedicated", "Equal", "cpu", NS), taint)
    # Equal with no value only matches a taint without a value.
    assert not tolerates(Toleration("dedicated", "Equal", "", NS), taint)
    assert tolerates(Toleration("dedicated", "Equal", "", NS), Taint("dedicated", "", NS))


def test_effect_must_match_when_set():
    assert not tolerates(Toleration("k", "Exists", "", NS), Taint("k", "", NE))


def test_toleration_seconds_do_not_change_matching():
    timed = Toleration("k", "Exists", "", NE, toleration_seconds=300)
    assert tolerates(timed, Taint("k", "", NE))


def test_empty_key_with_equal_matches_any_key_with_that_value():
    # The API server rejects this toleration, but ToleratesTaint itself matches on value alone.
    assert tolerates(Toleration("", "Equal", "v", ""), Taint("anything", "v", NS))
    assert not tolerates(Toleration("", "Equal", "v", ""), Taint("anything", "w", NS))


def test_unknown_operator_tolerates_nothing():
    assert not tolerates(Toleration("k", "Matches", "v", NS), Taint("k", "v", NS))


def test_numeric_gt_lt_operators():
    assert tolerates(Toleration("sla", "Gt", "90", NS), Taint("sla", "95", NS))
    assert not tolerates(Toleration("sla", "Gt", "90", NS), Taint("sla", "90", NS))
    assert tolerates(Toleration("sla", "Lt", "90", NS), Taint("sla", "-5", NS))
    assert not tolerates(Toleration("sla", "Lt", "90", NS), Taint("sla", "high", NS))
    assert not tolerates(Toleration("sla", "Gt", "9e1", NS), Taint("sla", "95", NS))


def test_parse_int64_is_strict_like_go():
    assert parse_int64("+42") == 42 and parse_int64("-7") == -7
    for bad in ("", " 1", "1_000", "0x10", "1.0", "٣", str(2**63)):
        assert parse_int64(bad) is None


def test_prefer_no_schedule_never_blocks():
    assert untolerated_taints([Taint("soft", "", PNS)], []) == []


def test_untolerated_taints_lists_each_blocking_taint():
    taints = [Taint("a", "", NS), Taint("b", "", NE), Taint("c", "", PNS)]
    assert untolerated_taints(taints, [Toleration("a", "Exists")]) == [Taint("b", "", NE)]


# ---------------------------------------------------------------- the controller's own tolerations


CONTROLLER_TAINTS = [
    Taint(NOT_READY, "", NE),
    Taint(UNREACHABLE, "", NE),
    Taint(DISK_PRESSURE, "", NS),
    Taint(MEMORY_PRESSURE, "", NS),
    Taint(PID_PRESSURE, "", NS),
    Taint(UNSCHEDULABLE, "", NS),
]


def test_controller_adds_condition_tolerations():
    tolerations = daemon_pod_tolerations([], host_network=False)
    assert untolerated_taints(CONTROLLER_TAINTS, tolerations) == []
    # not-ready and unreachable are tolerated for NoExecute only: the NoSchedule twins still block.
    assert untolerated_taints([Taint(NOT_READY, "", NS)], tolerations) == [Taint(NOT_READY, "", NS)]
    assert untolerated_taints([Taint(NETWORK_UNAVAILABLE, "", NS)], tolerations) != []


def test_network_unavailable_is_tolerated_only_with_host_network():
    tolerations = daemon_pod_tolerations([], host_network=True)
    assert untolerated_taints([Taint(NETWORK_UNAVAILABLE, "", NS)], tolerations) == []


def test_controller_replaces_a_user_toleration_with_the_same_identity():
    user = Toleration(NOT_READY, "Exists", "", NE, toleration_seconds=300)
    result = daemon_pod_tolerations([user], host_network=False)
    not_ready = [t for t in result if t.key == NOT_READY]
    assert not_ready == [Toleration(NOT_READY, "Exists", "", NE)]


def test_controller_keeps_a_user_toleration_that_differs_in_operator():
    # Equal (or no operator) is a different identity from Exists, so both stay.
    user = Toleration(NOT_READY, "", "", NE, toleration_seconds=300)
    result = daemon_pod_tolerations([user], host_network=False)
    assert user in result and Toleration(NOT_READY, "Exists", "", NE) in result


# ---------------------------------------------------------------- selectors, case by case


def test_label_requirement_operators():
    labels = {"zone": "a", "gen": "5", "flag": ""}
    assert label_requirement_matches(Requirement("zone", "In", ("a", "b")), labels)
    assert not label_requirement_matches(Requirement("zone", "NotIn", ("a",)), labels)
    assert label_requirement_matches(Requirement("missing", "NotIn", ("a",)), labels)
    assert not label_requirement_matches(Requirement("missing", "In", ("a",)), labels)
    assert label_requirement_matches(Requirement("flag", "Exists"), labels)
    assert label_requirement_matches(Requirement("missing", "DoesNotExist"), labels)
    assert label_requirement_matches(Requirement("gen", "Gt", ("4",)), labels)
    assert not label_requirement_matches(Requirement("gen", "Lt", ("5",)), labels)
    assert not label_requirement_matches(Requirement("zone", "Gt", ("1",)), labels)  # not an integer
    assert not label_requirement_matches(Requirement("missing", "Lt", ("9",)), labels)


def test_invalid_requirements_are_reported():
    assert label_requirement_error(Requirement("zone", "In", ())) is not None
    assert label_requirement_error(Requirement("zone", "Exists", ("a",))) is not None
    assert label_requirement_error(Requirement("gen", "Gt", ("1", "2"))) is not None
    assert label_requirement_error(Requirement("gen", "Gt", ("one",))) is not None
    assert label_requirement_error(Requirement("zone", "Like", ("a",))) is not None
    assert label_requirement_error(Requirement("bad key!", "Exists")) is not None
    assert label_requirement_error(Requirement("example.com/zone", "In", ("a",))) is None


def test_terms_are_ored_and_expressions_anded():
    labels = {"zone": "a", "disk": "ssd"}
    both = SelectorTerm((Requirement("zone", "In", ("a",)), Requirement("disk", "In", ("hdd",))))
    other = SelectorTerm((Requirement("disk", "Exists"),))
    assert not match_term(both, labels, {}).matched
    assert match_term(both, labels, {}).failed == (Requirement("disk", "In", ("hdd",)),)
    assert match_terms([both, other], labels, {})[0]


def test_empty_term_and_invalid_term_match_nothing():
    assert not match_term(SelectorTerm(), {"a": "b"}, {}).matched
    invalid = SelectorTerm((Requirement("zone", "In", ()),))
    outcome = match_term(invalid, {"zone": "a"}, {})
    assert not outcome.matched and outcome.error


def test_match_fields_on_node_name():
    term = SelectorTerm(match_fields=(Requirement("metadata.name", "In", ("node-a",)),))
    assert match_term(term, {}, {"metadata.name": "node-a"}).matched
    assert not match_term(term, {}, {"metadata.name": "node-b"}).matched
    not_in = SelectorTerm(match_fields=(Requirement("metadata.name", "NotIn", ("node-a",)),))
    assert match_term(not_in, {}, {"metadata.name": "node-b"}).matched
    two_values = SelectorTerm(match_fields=(Requirement("metadata.name", "In", ("a", "b")),))
    assert match_term(two_values, {}, {"metadata.name": "a"}).error


# ---------------------------------------------------------------- properties

label_names = st.sampled_from(["zone", "disk", "gen", "example.com/team", "kubernetes.io/os"])
label_values = st.sampled_from(["", "a", "b", "ssd", "linux", "1", "7", "-3", "42"])
effects = st.sampled_from([NS, NE, PNS])
taints = st.builds(Taint, key=label_names, value=label_values, effect=effects)
tolerations = st.builds(
    Toleration,
    key=st.one_of(st.just(""), label_names),
    operator=st.sampled_from(["", "Equal", "Exists", "Gt", "Lt"]),
    value=label_values,
    effect=st.one_of(st.just(""), effects),
    toleration_seconds=st.one_of(st.none(), st.integers(0, 3600)),
)
label_sets = st.dictionaries(label_names, label_values, max_size=5)


@given(taints)
def test_a_toleration_copied_from_a_taint_tolerates_it(taint):
    assert tolerates(Toleration(taint.key, "Equal", taint.value, taint.effect), taint)
    assert tolerates(Toleration(taint.key, "Exists", "", taint.effect), taint)


@given(tolerations, taints)
def test_widening_a_toleration_never_loses_a_match(toleration, taint):
    if tolerates(toleration, taint):
        wider = Toleration(toleration.key, "Exists", "", "")
        assert tolerates(wider, taint)
        assert tolerates(Toleration("", "Exists", "", toleration.effect), taint)


@given(tolerations, taints)
def test_a_set_effect_or_key_that_differs_never_matches(toleration, taint):
    if (toleration.effect and toleration.effect != taint.effect) or (
        toleration.key and toleration.key != taint.key
    ):
        assert not tolerates(toleration, taint)


@given(st.lists(taints, max_size=6), st.lists(tolerations, max_size=4), st.lists(tolerations, max_size=3))
def test_more_tolerations_never_block_more(node_taints, some, more):
    before = untolerated_taints(node_taints, some)
    after = untolerated_taints(node_taints, some + more)
    assert set(after) <= set(before) <= set(node_taints)
    assert all(t.effect != PNS for t in before)


@given(st.lists(tolerations, max_size=5), st.booleans())
def test_controller_tolerations_are_idempotent_and_keep_unrelated_ones(user, host_network):
    once = daemon_pod_tolerations(user, host_network)
    assert daemon_pod_tolerations(once, host_network) == once
    assert untolerated_taints(CONTROLLER_TAINTS, once) == []
    controller_keys = {t.key for t in CONTROLLER_TAINTS} | {NETWORK_UNAVAILABLE}
    for toleration in user:
        if toleration.key not in controller_keys:
            assert toleration in once


@given(label_names, st.lists(label_values, min_size=1, max_size=3), label_sets)
def test_in_and_notin_are_complements(key, values, labels):
    values = tuple(values)
    inside = label_requirement_matches(Requirement(key, "In", values), labels)
    outside = label_requirement_matches(Requirement(key, "NotIn", values), labels)
    assert inside != outside
    assert inside == (key in labels and labels[key] in values)


@given(label_names, label_sets)
def test_exists_and_does_not_exist_are_complements(key, labels):
    exists = label_requirement_matches(Requirement(key, "Exists"), labels)
    assert exists == (key in labels)
    assert exists != label_requirement_matches(Requirement(key, "DoesNotExist"), labels)


@given(label_names, st.integers(-100, 100), label_sets)
def test_gt_lt_compare_integers_and_reject_the_rest(key, bound, labels):
    gt = label_requirement_matches(Requirement(key, "Gt", (str(bound),)), labels)
    lt = label_requirement_matches(Requirement(key, "Lt", (str(bound),)), labels)
    value = parse_int64(labels[key]) if key in labels else None
    if value is None:
        assert not gt and not lt
    else:
        assert gt == (value > bound) and lt == (value < bound)


requirements = st.builds(
    Requirement,
    key=label_names,
    operator=st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
    values=st.lists(label_values, min_size=1, max_size=2).map(tuple),
).map(lambda r: Requirement(r.key, r.operator, () if r.operator in ("Exists", "DoesNotExist") else r.values))
terms = st.builds(SelectorTerm, match_expressions=st.lists(requirements, min_size=1, max_size=3).map(tuple))


@given(st.lists(terms, min_size=1, max_size=3), terms, label_sets)
def test_terms_or_and_expressions_and(some_terms, extra, labels):
    matched, _ = match_terms(some_terms, labels, {})
    # A term with an invalid requirement (e.g. value "-3" is not a label value) selects nothing.
    expected = any(
        all(label_requirement_error(r) is None for r in t.match_expressions)
        and all(label_requirement_matches(r, labels) for r in t.match_expressions)
        for t in some_terms
    )
    assert matched == expected
    if matched:
        assert match_terms([*some_terms, extra], labels, {})[0]


@given(label_sets, label_sets)
def test_node_selector_needs_every_pair(selector, labels):
    mismatches = node_selector_mismatches(selector, labels)
    assert (not mismatches) == all(labels.get(k) == v for k, v in selector.items())
    assert not node_selector_mismatches(selector, {**labels, **selector})
