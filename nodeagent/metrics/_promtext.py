"""A parser for the Prometheus text format 0.0.4 that accepts and rejects what node_exporter's does.

The textfile collector must read a file exactly as node_exporter (Go's expfmt.TextParser) does:
metric names are kept as written (``foo`` stays ``foo`` even when typed counter), a TYPE line
after samples or a second HELP is an error, summaries and histograms are grouped by their label
sets, and a file with client-side timestamps is rejected as a whole by the caller.
prometheus_client's parser differs on each of these points, so this is our own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodeagent.metrics.host.gonum import parse_float, parse_int

TYPES = ("counter", "gauge", "untyped", "summary", "histogram")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_LABEL_START = _NAME_START - {":"}
_LABEL_CHARS = _NAME_CHARS - {":"}
_VALUE_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class TextParseError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"text format parsing error in line {line}: {message}")
        self.line = line


@dataclass
class SeriesValue:
    """One series of a family: its labels (without quantile/le) and its value(s)."""

    labels: dict[str, str]
    value: float = 0.0  # counter, gauge, untyped
    timestamp_ms: int | None = None
    quantiles: dict[float, float] = field(default_factory=dict)  # summary
    buckets: dict[float, float] = field(default_factory=dict)  # histogram
    sum: float = 0.0
    count: float = 0.0


@dataclass
class ParsedFamily:
    name: str
    help: str | None = None
    type: str | None = None  # None until a TYPE line; untyped then
    series: list[SeriesValue] = field(default_factory=list)
    _grouped: dict[tuple[tuple[str, str], ...], SeriesValue] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.type or "untyped"

    @property
    def has_timestamps(self) -> bool:
        return any(series.timestamp_ms is not None for series in self.series)


def go_float(text: str) -> float:
    """A sample value as expfmt reads it: Go's ParseFloat, minus 'p' exponents and underscores (so no
    hexadecimal floats either)."""
    try:
        if "p" in text or "P" in text or "_" in text:
            raise ValueError("unsupported character")
        return parse_float(text)
    except ValueError:
        raise ValueError(f"invalid value {text[:40]!r}") from None


def _is_name(text: str, start: frozenset[str], chars: frozenset[str]) -> bool:
    return bool(text) and text[0] in start and all(ch in chars for ch in text[1:])


def _unescape_help(text: str, line: int) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt == "\\":
                out.append("\\")
            elif nxt == "n":
                out.append("\n")
            else:
                raise TextParseError(line, f"invalid escape sequence '\\{nxt}'")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_labels(text: str, pos: int, line: int) -> tuple[list[tuple[str, str]], int]:
    """Labels from ``text[pos]`` (just after '{') to the closing '}'; returns (pairs, index after '}')."""
    pairs: list[tuple[str, str]] = []
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == "}":
            return pairs, pos + 1
        start = pos
        while pos < n and text[pos] in _LABEL_CHARS:
            pos += 1
        name = text[start:pos]
        if not _is_name(name, _LABEL_START, _LABEL_CHARS):
            raise TextParseError(line, f"invalid label name {text[start : pos + 1]!r}")
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "=":
            raise TextParseError(line, f"expected '=' after label name {name!r}")
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != '"':
            raise TextParseError(line, f"expected '\"' to start the value of label {name!r}")
        pos += 1
        value: list[str] = []
        while True:
            if pos >= n:
                raise TextParseError(line, f"unterminated value of label {name!r}")
            ch = text[pos]
            if ch == '"':
                pos += 1
                break
            if ch == "\\":
                escaped = _VALUE_ESCAPES.get(text[pos + 1 : pos + 2])
                if escaped is None:
                    raise TextParseError(line, f"invalid escape sequence in the value of label {name!r}")
                value.append(escaped)
                pos += 2
                continue
            value.append(ch)
            pos += 1
        if name == "__name__":
            raise TextParseError(line, "label name '__name__' is reserved")
        if any(existing == name for existing, _ in pairs):
            raise TextParseError(line, f"duplicate label name {name!r}")
        pairs.append((name, "".join(value)))
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        if pos < n and text[pos] == "}":
            return pairs, pos + 1
        raise TextParseError(line, "expected ',' or '}' after a label value")


class _Parser:
    def __init__(self) -> None:
        self.families: dict[str, ParsedFamily] = {}

    def family_for(self, name: str) -> tuple[ParsedFamily, str]:
        """(family, role) of a metric name: role is '' or one of _sum/_count/_bucket."""
        family = self.families.get(name)
        if family is not None:
            return family, ""
        for suffix, types in (
            ("_sum", ("summary", "histogram")),
            ("_count", ("summary", "histogram")),
            ("_bucket", ("histogram",)),
        ):
            if name.endswith(suffix):
                base = self.families.get(name[: -len(suffix)])
                if base is not None and base.type in types:
                    return base, suffix
        family = self.families[name] = ParsedFamily(name)
        return family, ""

    def comment(self, text: str, line: int) -> None:
        parts = text[1:].split(None, 2)
        if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
            return  # an ordinary comment
        keyword, name = parts[0], parts[1]
        rest = parts[2].rstrip("\r") if len(parts) > 2 else ""  # leading blanks already skipped
        if not _is_name(name, _NAME_START, _NAME_CHARS):
            raise TextParseError(line, f"invalid metric name in comment {name!r}")
        family, _ = self.family_for(name)
        if keyword == "HELP":
            if family.help is not None:
                raise TextParseError(line, f"second HELP line for metric name {name!r}")
            family.help = _unescape_help(rest, line)
            return
        kind = rest.strip().lower()
        if kind not in TYPES:
            raise TextParseError(line, f"unknown metric type {rest.strip()!r}")
        if family.type is not None or family.series:
            raise TextParseError(line, f"second TYPE line for metric name {name!r}, or TYPE after samples")
        family.type = kind

    def sample(self, text: str, line: int) -> None:
        n = len(text)
        pos = 0
        while pos < n and text[pos] in _NAME_CHARS:
            pos += 1
        name = text[:pos]
        if not _is_name(name, _NAME_START, _NAME_CHARS):
            raise TextParseError(line, f"invalid metric name in {text!r}")
        pairs: list[tuple[str, str]] = []
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == "{":
            pairs, pos = _parse_labels(text, pos + 1, line)
        rest = text[pos:].split()
        if not rest:
            raise TextParseError(line, f"no value for metric {name!r}")
        if len(rest) > 2:
            raise TextParseError(line, f"unexpected text after the value of metric {name!r}")
        try:
            value = go_float(rest[0])
        except ValueError as exc:
            raise TextParseError(line, str(exc)) from None
        timestamp = None
        if len(rest) == 2:
            try:
                timestamp = parse_int(rest[1])
            except ValueError:
                raise TextParseError(line, f"invalid timestamp {rest[1]!r}") from None
        family, role = self.family_for(name)
        kind = family.kind
        if kind not in ("summary", "histogram"):
            family.series.append(SeriesValue(dict(pairs), value, timestamp))
            return
        special = "quantile" if kind == "summary" else "le"
        bound = None
        labels = {}
        for key, label_value in pairs:
            if key != special:
                labels[key] = label_value
            elif role == ("" if kind == "summary" else "_bucket"):
                try:
                    bound = go_float(label_value)
                except ValueError:
                    raise TextParseError(line, f"invalid {special} label value {label_value!r}") from None
        label_set = tuple(sorted(labels.items()))
        series = family._grouped.get(label_set)
        if series is None:
            series = family._grouped[label_set] = SeriesValue(labels, timestamp_ms=timestamp)
            family.series.append(series)
        elif timestamp is not None:
            series.timestamp_ms = timestamp
        if role == "_sum":
            series.sum = value
        elif role == "_count":
            series.count = value
        elif bound is not None:
            (series.quantiles if kind == "summary" else series.buckets)[bound] = value


def parse_text(text: str) -> dict[str, ParsedFamily]:
    """All families of one text-format document, by name; raises TextParseError on the first error."""
    parser = _Parser()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.lstrip(" \t")
        if not line.strip():
            continue
        if line[0] == "#":
            parser.comment(line, number)
        else:
            parser.sample(line, number)
    return {name: family for name, family in parser.families.items() if family.series}
