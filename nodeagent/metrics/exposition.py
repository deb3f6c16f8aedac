"""Prometheus text format 0.0.4, written exactly as node_exporter (client_golang) writes it.

prometheus_client's own text writer formats 1.0 as ``1.0`` and does not sort; node_exporter writes
``1`` and sorts families by name and samples by label values. Writing the same bytes lets users diff
our output against node_exporter's and keeps recording rules byte-stable. OpenMetrics output uses
prometheus_client's writer unchanged (see server).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from operator import itemgetter

from prometheus_client.metrics_core import Metric

_TYPE_NAMES = {
    "counter": "counter",
    "gauge": "gauge",
    "summary": "summary",
    "histogram": "histogram",
    "unknown": "untyped",
    "untyped": "untyped",
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
}


# Kernel strings (an interface alias, a mount point, a file name) are read with surrogateescape and may
# carry bytes that are not UTF-8; other sources may carry lone surrogates. Each run of them becomes one
# U+FFFD in the output, as Go's strings.ToValidUTF8 does in node_exporter >= 1.10.
_INVALID_RUN = re.compile("[\ud800-\udfff]+")


def valid_utf8(text: str) -> str:
    """``text`` with each run of undecodable bytes (surrogates) replaced by one U+FFFD."""
    return _INVALID_RUN.sub("\ufffd", text)


def encode(text: str) -> bytes:
    """A rendered page as UTF-8; the rare page with undecodable bytes pays for one extra pass."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return valid_utf8(text).encode("utf-8")


def valid_families(families: Iterable[Metric]) -> list[Metric]:
    """Copies of ``families`` whose help texts and label values are valid UTF-8 (for writers that
    encode strictly, such as prometheus_client's OpenMetrics writer)."""
    out = []
    for family in families:
        clean = copy.copy(family)
        clean.documentation = valid_utf8(family.documentation)
        clean.samples = [
            s._replace(labels={k: valid_utf8(v) for k, v in s.labels.items()}) for s in family.samples
        ]
        out.append(clean)
    return out


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses for sample values.

    Shortest round-trip digits, as Python's repr(); exponent form when the decimal exponent is < -4 or
    >= 6. repr() switches to exponent form at the same small exponent, with the same spelling
    (``1.5e-07``), but only from 1e16 up: between 1e6 and 1e16 its positional digits are rewritten.
    """
    if -1e6 < value < 1e6:
        as_int = int(value)
        return str(as_int) if as_int == value else repr(float(value))
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if value < 0 else ""
    if -1e16 < value < 1e16 and int(value) == value:  # large counters (bytes, seconds): exact digits
        int_part, frac_part = str(abs(int(value))), ""
    else:
        text = repr(abs(float(value)))
        if "e" in text:
            return sign + text
        int_part, _, frac_part = text.partition(".")
    digits = (int_part + frac_part).rstrip("0")
    mantissa = f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits
    return f"{sign}{mantissa}e+{len(int_part) - 1:02d}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# Label sets repeat from scrape to scrape ({cpu="0",mode="idle"}): keep each one's rendered text and
# sort key. Bounded: a source of ever-new label values only makes the cache start over.
_LABEL_CACHE_LIMIT = 20_000
_label_cache: dict[tuple[tuple[str, str], ...], tuple[str, tuple[str, ...]]] = {}


def _render_labels(key: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...]]:
    """``{a="1",b="2"}`` with names sorted, and the values in that order (the sample's sort key)."""
    pairs = sorted(key)
    entry = ("{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}", tuple(v for _, v in pairs))
    if len(_label_cache) >= _LABEL_CACHE_LIMIT:
        _label_cache.clear()
    _label_cache[key] = entry
    return entry


_HAS_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_KEEPS_ORDER = frozenset({"histogram", "summary"})  # bucket/quantile order is meaningful
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
    append = out.append
    for type_name, family in sorted([(_type_name(family), family) for family in merged.values()], key=_first):
        append(_header(type_name, family.documentation, family.type))
        keep_order = family.type in _KEEPS_ORDER
        # prometheus_client adds <name>_created to its own counters, histograms and summaries; text 0.0.4
        # has no such series. A gauge that happens to end in _created is data and stays.
        created = family.name + "_created" if family.type in _HAS_CREATED else None
        rows = []
        values: tuple[str, ...]
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name == created:
                continue
            if not labels:
                label_text, values = "", ()
            elif keep_order:
                label_text, values = _render_labels_le_last(labels), ()
            else:
                key = tuple(labels.items())
                label_text, values = _label_cache.get(key) or _render_labels(key)
            line = f"{name}{label_text} {format_value(sample.value)}\n"
            if keep_order:
                append(line)
            else:
                rows.append((name != type_name, values, line))
        if len(rows) > 1:
            rows.sort(key=_sort_key)
        out += [row[2] for row in rows]
    return "".join(out)


_header_cache: dict[tuple[str, str, str], str] = {}


def _header(type_name: str, documentation: str, type_: str) -> str:
    """The HELP and TYPE lines of a family (cached: they are the same every scrape)."""
    key = (type_name, documentation, type_)
    header = _header_cache.get(key)
    if header is None:
        header = (
            f"# HELP {type_name} {_escape_help(documentation)}\n"
            f"# TYPE {type_name} {_TYPE_NAMES.get(type_, 'untyped')}\n"
        )
        if len(_header_cache) >= _LABEL_CACHE_LIMIT:
            _header_cache.clear()
        _header_cache[key] = header
    return header


_first = itemgetter(0)
_sort_key = itemgetter(0, 1)  # (not the family's own name, label values): the _sum/_count of a summary last


def _type_name(family: Metric) -> str:
    """The name on HELP/TYPE lines: prometheus_client strips a counter's ``_total``; put it back."""
    if family.type == "counter" and family.samples and family.samples[0].name == family.name + "_total":
        return family.name + "_total"
    return family.name
