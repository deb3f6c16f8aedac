"""Label and value rendering, fuzzed: whatever bytes a label value or help text holds (kernel strings with
bytes that are not UTF-8, quotes, backslashes, newlines), the page parses with prometheus_client's
parsers and gives back the same series, with undecodable bytes as U+FFFD."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from nodeagent.metrics.exposition import valid_utf8
from nodeagent.metrics.scrape import render

LABEL_NAMES = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_]{0,8}\Z")
# Text as the agent meets it: any code point (lone surrogates included), or bytes read with surrogateescape.
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.binary(max_size=30).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
VALUES = st.floats(allow_nan=True, allow_infinity=True)
BUDGET = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _key(value: float) -> object:
    return "NaN" if math.isnan(value) else value


@st.composite
def families(draw: st.DrawFn) -> tuple[GaugeMetricFamily, list[tuple[dict[str, str], float]]]:
    names = draw(st.lists(LABEL_NAMES, min_size=0, max_size=3, unique=True))
    family = GaugeMetricFamily("node_fuzz", draw(ANY_TEXT), labels=names)
    series = []
    seen = set()
    for _ in range(draw(st.integers(1, 4))):
        values = [draw(ANY_TEXT) for _ in names]
        clean = tuple(valid_utf8(v) for v in values)
        if clean in seen:  # one series per label set, as a valid exposition has
            continue
        seen.add(clean)
        value = draw(VALUES)
        family.add_metric(values, value)
        series.append((dict(zip(names, clean, strict=True)), value))
    return family, series


def _parsed(parsed_families: list) -> tuple[str, list[tuple[tuple[tuple[str, str], ...], object]]]:  # type: ignore[type-arg]
    (family,) = parsed_families
    rows = sorted((tuple(sorted(s.labels.items())), _key(s.value)) for s in family.samples)
    return family.documentation.strip(), [(labels, value) for labels, value in rows]


def _expected(family: GaugeMetricFamily, series: list[tuple[dict[str, str], float]]):  # type: ignore[no-untyped-def]
    rows = sorted((tuple(sorted(labels.items())), _key(value)) for labels, value in series)
    # Whitespace around a HELP text does not survive any text-format parser (it separates the fields).
    return valid_utf8(family.documentation).strip(), rows


@BUDGET
@given(families())
def test_text_format_round_trips(case: tuple[GaugeMetricFamily, list[tuple[dict[str, str], float]]]) -> None:
    family, series = case
    body = render([family], "text").decode("utf-8")  # strict: the page is valid UTF-8
    assert _parsed(list(parse_text(body))) == _expected(family, series)


@BUDGET
@given(families())
def test_openmetrics_round_trips(case: tuple[GaugeMetricFamily, list[tuple[dict[str, str], float]]]) -> None:
    family, series = case
    body = render([family], "openmetrics").decode("utf-8")
    assert _parsed(list(parse_openmetrics(body))) == _expected(family, series)


def test_each_run_of_undecodable_bytes_is_one_replacement_character() -> None:
    raw = b"eth0 \xff\xfe alias \xc3"
    assert valid_utf8(raw.decode("utf-8", "surrogateescape")) == "eth0 \ufffd alias \ufffd"
    assert valid_utf8("plain") == "plain"
