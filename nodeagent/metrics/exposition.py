"""Prometheus text format 0.0.4, written exactly as node_exporter (client_golang) writes it.

prometheus_client's own text writer formats 1.0 as ``1.0`` and does not sort; node_exporter writes
``1`` and sorts families by name and samples by label values. Writing the same bytes lets users diff
our output against node_exporter's and keeps recording rules byte-stable. OpenMetrics output uses
prometheus_client's writer unchanged (see server).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

_TYPE_NAMES = {"counter": "counter", "gauge": "gauge", "summary": "summary", "histogram": "histogram",
               "unknown": "untyped", "untyped": "untyped", "info": "gauge", "stateset": "gauge",
               "gaugehistogram": "histogram"}


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses for sample values.

    Shortest round-trip digits; exponent form when the decimal exponent is < -4 or >= 6.
    """
    value = float(value)  # samples from prometheus_client may hold ints
    if value != value:  # NaN
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    if value.is_integer() and -1e6 < value < 1e6:
        return str(int(value))  # the common case, fast
    sign = "-" if value < 0 else ""
    text = repr(abs(float(value)))
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
    for family in sorted(merged.values(), key=_type_name):
        type_name = _type_name(family)
        out.append(f"# HELP {type_name} {_escape_help(family.documentation)}\n")
        out.append(f"# TYPE {type_name} {_TYPE_NAMES.get(family.type, 'untyped')}\n")
        rows = []
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = sorted(sample.labels.items())
            sort_key = (sample.name != type_name and family.type not in ("histogram", "summary"),
                        [v for _, v in labels])
            if labels:
                label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
                line = f"{sample.name}{{{label_text}}} {format_value(sample.value)}\n"
            else:
                line = f"{sample.name} {format_value(sample.value)}\n"
            rows.append((sort_key, line))
        if family.type in ("histogram", "summary"):
            out.extend(line for _, line in rows)  # keep bucket/quantile order
        else:
            rows.sort(key=lambda row: row[0])
            out.extend(line for _, line in rows)
    return "".join(out)


def _type_name(family: Metric) -> str:
    """The name on HELP/TYPE lines: prometheus_client strips a counter's ``_total``; put it back."""
    if family.type == "counter" and family.samples and family.samples[0].name == family.name + "_total":
        return family.name + "_total"
    return family.name
