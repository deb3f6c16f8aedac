"""Prometheus text format 0.0.4, written exactly as node_exporter (client_golang) writes it.

prometheus_client's own text writer formats 1.0 as ``1.0`` and does not sort; node_exporter writes
``1`` and sorts families by name and samples by label values. Writing the same bytes lets users diff
our output against node_exporter's and keeps recording rules byte-stable. OpenMetrics output uses
prometheus_client's writer unchanged (see server).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

_TYPE_NAMES = {"counter": "counter", "gauge": "gauge", "summary": "summary", "histogram": "histogram",
               "unknown": "untyped", "untyped": "untyped", "info": "gauge", "stateset": "gauge",
               "gaugehistogram": "histogram"}


_INT_EXACT = 2.0**53  # below this every integer is a float, and its digits are its shortest form


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses for sample values.

    Shortest round-trip digits; exponent form when the decimal exponent is < -4 or >= 6. Between 1e-4
    and 1e6 that is exactly Python's repr(), the common case, so it is taken first.
    """
    if -1e6 < value < 1e6:
        as_int = int(value)
        if as_int == value:
            return str(as_int)
        if value >= 1e-4 or value <= -1e-4:
            return repr(float(value))
    elif -_INT_EXACT < value < _INT_EXACT and int(value) == value:  # large counters: bytes, seconds
        digits = str(abs(int(value)))
        significant = digits.rstrip("0")
        body = f"{significant[0]}.{significant[1:]}" if len(significant) > 1 else significant
        return f"{'-' if value < 0 else ''}{body}e+{len(digits) - 1:02d}"
    return _format_general(float(value))


def _format_general(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    text = repr(abs(value))
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # position of the decimal point relative to the first significant digit
    point = len(int_part) + (int(exp_text) if exp_text else 0) - (len(int_part + frac_part) - len(digits))
    digits = digits.rstrip("0") or "0"
    exp = point - 1
    if exp < -4 or exp >= 6:
        body = f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# Label sets repeat from scrape to scrape ({cpu="0",mode="idle"}): keep each one's rendered text and
# sort key. Bounded: a source of ever-new label values only makes the cache start over.
_LABEL_CACHE_LIMIT = 20_000
_label_cache: dict[tuple[tuple[str, str], ...], tuple[str, tuple[str, ...]]] = {}


def _render_labels(labels: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """``{a="1",b="2"}`` with names sorted, and the values in that order (the sample's sort key)."""
    key = tuple(labels.items())
    entry = _label_cache.get(key)
    if entry is None:
        pairs = sorted(key)
        text = "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"
        entry = (text, tuple(v for _, v in pairs))
        if len(_label_cache) >= _LABEL_CACHE_LIMIT:
            _label_cache.clear()
        _label_cache[key] = entry
    return entry


_HAS_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_BUCKET_LABELS = ("le", "quantile")


def _render_labels_le_last(labels: dict[str, str]) -> str:
    """client_golang writes a histogram's ``le`` and a summary's ``quantile`` after the other labels."""
    pairs = sorted((k, v) for k, v in labels.items() if k not in _BUCKET_LABELS)
    pairs += [(k, labels[k]) for k in _BUCKET_LABELS if k in labels]
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


def render_text(families: Iterable[Metric]) -> str:
    """Render families as text 0.0.4: sorted by name, samples sorted by label values, labels by name."""
    merged: dict[str, Metric] = {}
    for family in families:
        if not family.samples:
            continue
        existing = merged.get(family.name)
        if existing is None:
            merged[family.name] = family
        else:  # two collectors may contribute to one family; client_golang merges them too
            existing.samples.extend(family.samples)
    out: list[str] = []
    named = [(_type_name(family), family) for family in merged.values()]
    named.sort(key=_first)
    for type_name, family in named:
        out.append(_header(type_name, family.documentation, family.type))
        keep_order = family.type in ("histogram", "summary")  # bucket/quantile order is meaningful
        # prometheus_client adds <name>_created to its own counters, histograms and summaries; text 0.0.4
        # has no such series. A gauge that happens to end in _created is data and stays.
        created = family.name + "_created" if family.type in _HAS_CREATED else None
        rows = []
        for sample in family.samples:
            name = sample.name
            if name == created:
                continue
            if keep_order and sample.labels:
                label_text, values = _render_labels_le_last(sample.labels), ()
            elif sample.labels:
                label_text, values = _render_labels(sample.labels)
            else:
                label_text, values = "", ()
            line = f"{name}{label_text} {format_value(sample.value)}\n"
            if keep_order:
                out.append(line)
            else:
                rows.append(((name != type_name, values), line))
        if rows:
            if len(rows) > 1:
                rows.sort(key=_first)
            out.extend(line for _, line in rows)
    return "".join(out)


_header_cache: dict[tuple[str, str, str], str] = {}


def _header(type_name: str, documentation: str, type_: str) -> str:
    """The HELP and TYPE lines of a family (cached: they are the same every scrape)."""
    key = (type_name, documentation, type_)
    header = _header_cache.get(key)
    if header is None:
        header = (f"# HELP {type_name} {_escape_help(documentation)}\n"
                  f"# TYPE {type_name} {_TYPE_NAMES.get(type_, 'untyped')}\n")
        if len(_header_cache) >= _LABEL_CACHE_LIMIT:
            _header_cache.clear()
        _header_cache[key] = header
    return header


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _type_name(family: Metric) -> str:
    """The name on HELP/TYPE lines: prometheus_client strips a counter's ``_total``; put it back."""
    if family.type == "counter" and family.samples and family.samples[0].name == family.name + "_total":
        return family.name + "_total"
    return family.name
