"""Filters: pure functions of a record, configured as a ``filters:`` list on an input or on a sink.

Each filter is a frozen dataclass built from its config mapping (:func:`parse_filter`, regexes compiled
then) and called with a :class:`~nodeagent.logs.record.Record`; it returns the record to pass on (a new
one when it changed anything: records, their ``fields`` and ``kubernetes`` are never changed in place,
since records of one file share their ``kubernetes`` dict), ``None`` to drop it, or :data:`FAILED` when
it could not do its work (a message that is not JSON, a time that does not parse): the record then
goes on unchanged and the failure is counted. No filter raises on any record.

Fields are addressed by dotted paths: ``message``, ``time``, ``stream``, ``file``, ``node``,
``kubernetes.<key>...`` and ``fields.<key>...`` (what filters parsed or added). Every path can be read;
only ``message`` and ``fields.<key>...`` can be written (``time`` by the ``time`` filter).

Hostile messages are bounded: JSON and logfmt parsing refuse messages above ``max_bytes``, JSON nested
deeper than ``max_depth`` and logfmt with more than ``max_keys`` keys (failures, the record goes on
as it was); JSON numbers that JSON consumers cannot hold (``1e999``, integers of more than
:data:`MAX_INT_DIGITS` digits, ``NaN``) are kept as their text; duplicate keys: the last one wins.

:class:`FilterChain` runs a list of filters over records or the reader's columns and counts what it
dropped and what failed.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from nodeagent.config.errors import ConfigError
from nodeagent.config.schema import REQUIRED, Field, ListOf, Section
from nodeagent.config.values import (
    bounded,
    parse_bool,
    parse_choice,
    parse_nonempty_str,
    parse_regex,
    parse_size,
    parse_str,
    positive_int,
    shown,
)
from nodeagent.logs.encoding import normalize_time, rfc3339_ns
from nodeagent.logs.record import Record, RecordBatch, Records

MAX_INT_DIGITS = 100  # longer JSON integers are kept as text
MAX_TIME_CHARS = 256  # longer time values are not parsed

Path = tuple[str, ...]


class _Failed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final = _Failed()
Outcome = Record | None | _Failed
_MISSING: Final = object()


# ---------------------------------------------------------------------------------------------------
# Paths

_TOP = ("time", "message", "stream", "file", "node", "kubernetes", "fields")


def parse_path(raw: Any) -> Path:
    """``fields.level`` -> ("fields", "level"); the first part must be one of the record's keys."""
    parts = tuple(parse_nonempty_str(raw).split("."))
    if parts[0] not in _TOP:
        raise ValueError(f"expected a path starting with one of {', '.join(_TOP)}, got {shown(raw)}")
    if any(not part for part in parts):
        raise ValueError(f"empty part in the path {shown(raw)}")
    if parts[0] in ("time", "message", "stream", "file", "node") and len(parts) > 1:
        raise ValueError(f"{parts[0]} has no parts, got {shown(raw)}")
    return parts


def parse_writable_path(raw: Any) -> Path:
    """A path a filter may write: ``message`` or ``fields.<key>...``."""
    path = parse_path(raw)
    if path != ("message",) and (path[0] != "fields" or len(path) < 2):
        raise ValueError(f"only message and fields.<name> can be written, got {shown(raw)}")
    return path


def parse_fields_path(raw: Any) -> Path:
    """A path that can be removed or renamed away: ``fields.<key>...``."""
    path = parse_path(raw)
    if path[0] != "fields" or len(path) < 2:
        raise ValueError(f"expected fields.<name>, got {shown(raw)}")
    return path


def parse_parse_target(raw: Any) -> Path:
    """Where parsed keys go: ``fields`` (merged into the fields) or ``fields.<key>...``."""
    path = parse_path(raw)
    if path[0] != "fields":
        raise ValueError(f"expected fields or fields.<name>, got {shown(raw)}")
    return path


def get_value(record: Record, path: Path) -> Any:
    """The value at ``path``, or ``_MISSING``."""
    head = path[0]
    if head == "fields":
        value: Any = record.fields
    elif head == "kubernetes":
        value = record.kubernetes
    else:
        value = getattr(record, head)
    if value is None:
        return _MISSING
    for key in path[1:]:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _as_text(value: Any) -> str:
    """A value as the text regexes see and ``message`` gets: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _set_in(mapping: Mapping[str, Any] | None, keys: Sequence[str], value: Any) -> dict[str, Any] | None:
    """A copy of ``mapping`` with ``value`` at ``keys`` (copies along the path only); None when a value
    on the way is not a mapping."""
    copy = dict(mapping) if mapping is not None else {}
    if len(keys) == 1:
        copy[keys[0]] = value
        return copy
    inner = copy.get(keys[0])
    if inner is not None and not isinstance(inner, Mapping):
        return None
    changed = _set_in(inner, keys[1:], value)
    if changed is None:
        return None
    copy[keys[0]] = changed
    return copy


def _remove_in(mapping: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any] | None:
    """A copy of ``mapping`` without ``keys``; None when there is nothing to remove."""
    if len(keys) == 1:
        if keys[0] not in mapping:
            return None
        return {k: v for k, v in mapping.items() if k != keys[0]}
    inner = mapping.get(keys[0])
    if not isinstance(inner, Mapping):
        return None
    changed = _remove_in(inner, keys[1:])
    if changed is None:
        return None
    return {**mapping, keys[0]: changed}


def _with(record: Record, **changes: Any) -> Record:
    return Record(
        changes.get("time", record.time),
        changes.get("message", record.message),
        record.stream,
        record.file,
        record.node,
        record.kubernetes,
        changes.get("fields", record.fields),
    )


def set_value(record: Record, path: Path, value: Any) -> Record | None:
    """The record with ``value`` at a writable ``path`` (None when the path is blocked by a non-mapping)."""
    if path == ("message",):
        return _with(record, message=_as_text(value))
    fields = _set_in(record.fields, path[1:], value)
    return None if fields is None else _with(record, fields=fields)


def remove_value(record: Record, path: Path) -> Record:
    if not record.fields:
        return record
    fields = _remove_in(record.fields, path[1:])
    if fields is None:
        return record
    return _with(record, fields=fields or None)


# ---------------------------------------------------------------------------------------------------
# Parsing messages


def _parse_int(text: str) -> int | str:
    return int(text) if len(text) <= MAX_INT_DIGITS else text


def _parse_float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _keep_text(text: str) -> str:  # NaN, Infinity, -Infinity: not JSON, kept as text
    return text


_decode_json = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_keep_text
).decode


def _deeper_than(value: Any, limit: int) -> bool:
    """Is ``value`` nested more than ``limit`` levels (iteratively: no recursion on hostile input)?"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


def parse_json_object(text: str, max_bytes: int, max_depth: int) -> dict[str, Any] | None:
    """A JSON object, or None (not JSON, not an object, too big, too deep)."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return None
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = _decode_json(stripped)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    # Count brackets first: the usual flat object needs no walk.
    if stripped.count("{") + stripped.count("[") > max_depth and _deeper_than(value, max_depth):
        return None
    return value


_LOGFMT_PAIR = re.compile(r'([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?(?:\s+|$)')
_SPACE = re.compile(r"\s*")


def parse_logfmt(text: str, max_bytes: int, max_keys: int) -> dict[str, Any] | None:
    """``key=value key2="quoted \\" value" flag`` -> {"key": "value", "key2": 'quoted " value',
    "flag": True}; None when the text is not logfmt (a stray quote, no ``key=value`` pair at all, too
    many keys, too big). Values are strings; a key without ``=`` is true; the last of a repeated key wins."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return None
    result: dict[str, Any] = {}
    pos = _SPACE.match(text).end()  # type: ignore[union-attr]
    pairs = 0
    while pos < len(text):
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None or match.end() == pos:
            return None
        key, value = match.group(1), match.group(2)
        if value is None:
            result[key] = True
        else:
            pairs += 1
            if value.startswith('"'):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = value[1:-1]
            result[key] = value
        if len(result) > max_keys:
            return None
        pos = match.end()
    return result if pairs else None


# ---------------------------------------------------------------------------------------------------
# Times

TIME_FORMATS = ("rfc3339", "unix", "unix_ms", "unix_us", "unix_ns")
_UNIT_NANOS = {"unix": 1_000_000_000, "unix_ms": 1_000_000, "unix_us": 1_000, "unix_ns": 1}
_MAX_NANOS = 253402300799_999_999_999  # 9999-12-31T23:59:59.999999999Z
_DECIMAL = re.compile(r"\s*(-?)(\d{1,20})(?:\.(\d{1,9})\d*)?\s*")


def parse_time_value(value: Any, fmt: str) -> str | None:
    """A field's value as a record time (RFC 3339 UTC, nine digits), or None.

    ``fmt``: ``rfc3339`` (any offset), ``unix`` / ``unix_ms`` / ``unix_us`` / ``unix_ns`` (a number or
    a decimal string), or a strptime format (``%d/%b/%Y:%H:%M:%S %z``; without ``%z`` the time is UTC).
    """
    if isinstance(value, bool):
        return None
    if fmt in _UNIT_NANOS:
        return _unix_time(value, _UNIT_NANOS[fmt])
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        return None
    if fmt == "rfc3339":
        return normalize_time(value)
    try:
        moment = datetime.strptime(value.strip(), fmt)
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    seconds = calendar.timegm(moment.utctimetuple())
    return _from_nanos(seconds * 1_000_000_000 + moment.microsecond * 1000)


def _unix_time(value: Any, unit: int) -> str | None:
    if isinstance(value, int):
        return _from_nanos(value * unit)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > 1e20:
            return None
        whole = math.floor(value)
        return _from_nanos(whole * unit + round((value - whole) * unit))
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        return None
    match = _DECIMAL.fullmatch(value)
    if match is None:
        return None
    sign, whole_text, frac = match.groups()
    nanos = int(whole_text) * unit + (int((frac or "").ljust(9, "0")) * unit) // 1_000_000_000
    return _from_nanos(-nanos if sign else nanos)


def _from_nanos(nanos: int) -> str | None:
    return rfc3339_ns(nanos) if 0 <= nanos <= _MAX_NANOS else None


def parse_time_format(raw: Any) -> str:
    text = parse_nonempty_str(raw)
    if text not in TIME_FORMATS and "%" not in text:
        raise ValueError(f"expected one of {', '.join(TIME_FORMATS)} or a strptime format, got {shown(raw)}")
    return text


# ---------------------------------------------------------------------------------------------------
# The filters


def compiled_regex(raw: Any) -> re.Pattern[str]:
    return re.compile(parse_regex(raw))


@dataclass(frozen=True)
class ParseJson:
    """``parse_json``: the JSON object in ``source`` becomes fields (Fluent Bit's parser filter)."""

    source: Path = ("message",)
    target: Path = ("fields",)
    max_bytes: int = 256 * 1024
    max_depth: int = 32

    def __call__(self, record: Record) -> Outcome:
        return _parse_into(
            record, self.source, self.target, lambda t: parse_json_object(t, self.max_bytes, self.max_depth)
        )


@dataclass(frozen=True)
class ParseLogfmt:
    """``parse_logfmt``: the ``key=value`` pairs in ``source`` become fields."""

    source: Path = ("message",)
    target: Path = ("fields",)
    max_bytes: int = 256 * 1024
    max_keys: int = 256

    def __call__(self, record: Record) -> Outcome:
        return _parse_into(
            record, self.source, self.target, lambda t: parse_logfmt(t, self.max_bytes, self.max_keys)
        )


def _parse_into(
    record: Record, source: Path, target: Path, parse: Callable[[str], dict[str, Any] | None]
) -> Outcome:
    """The keys ``parse`` finds in the text at ``source``, put at ``target``."""
    value = get_value(record, source)
    parsed = parse(value) if isinstance(value, str) else None
    if parsed is None:
        return FAILED
    if len(target) == 1:
        return _with(record, fields={**record.fields, **parsed} if record.fields else parsed)
    changed = set_value(record, target, parsed)
    return FAILED if changed is None else changed


@dataclass(frozen=True)
class Grep:
    """``keep`` (``keep=True``): pass on only records whose ``field`` matches ``regex`` (Fluent Bit grep
    ``Regex``); ``drop``: drop those whose ``field`` matches (grep ``Exclude``). A missing field does not
    match."""

    field: Path
    regex: re.Pattern[str]
    keep: bool

    def __call__(self, record: Record) -> Outcome:
        value = get_value(record, self.field)
        matched = value is not _MISSING and self.regex.search(_as_text(value)) is not None
        return record if matched == self.keep else None


@dataclass(frozen=True)
class Redact:
    """``redact``: replace what ``regex`` matches in a text ``field`` (``\\1`` refers to groups)."""

    field: Path
    regex: re.Pattern[str]
    replacement: str = "[REDACTED]"

    def __call__(self, record: Record) -> Outcome:
        value = get_value(record, self.field)
        if not isinstance(value, str):
            return record
        try:
            text, count = self.regex.subn(self.replacement, value)
        except (re.error, IndexError):  # a group the match did not take part in
            return FAILED
        return (set_value(record, self.field, text) or record) if count else record


@dataclass(frozen=True)
class Add:
    """``add`` (only where the field is missing) and ``set`` (always): a fixed value at ``field``."""

    field: Path
    value: Any
    overwrite: bool = False

    def __call__(self, record: Record) -> Outcome:
        if not self.overwrite and get_value(record, self.field) is not _MISSING:
            return record
        return set_value(record, self.field, self.value) or record


@dataclass(frozen=True)
class Remove:
    """``remove``: drop these fields."""

    fields: tuple[Path, ...]

    def __call__(self, record: Record) -> Outcome:
        for path in self.fields:
            record = remove_value(record, path)
        return record


@dataclass(frozen=True)
class Copy:
    """``copy`` / ``rename`` (``move``): the value at ``source`` also (or instead) at ``target``;
    an existing target is kept unless ``overwrite``."""

    source: Path
    target: Path
    overwrite: bool = False
    move: bool = False

    def __call__(self, record: Record) -> Outcome:
        value = get_value(record, self.source)
        if value is _MISSING:
            return record
        if (
            not self.overwrite
            and self.target != ("message",)
            and get_value(record, self.target) is not _MISSING
        ):
            return record
        changed = set_value(record, self.target, value)
        if changed is None:
            return record
        return remove_value(changed, self.source) if self.move else changed


@dataclass(frozen=True)
class SetTime:
    """``time``: the record time from ``field`` in ``format``; the read time stays when it fails."""

    field: Path
    format: str = "rfc3339"

    def __call__(self, record: Record) -> Outcome:
        value = get_value(record, self.field)
        if value is _MISSING:
            return FAILED
        parsed = parse_time_value(value, self.format)
        return FAILED if parsed is None else _with(record, time=parsed)


Filter = Callable[[Record], Outcome]


# ---------------------------------------------------------------------------------------------------
# Config


def parse_field_value(raw: Any) -> Any:
    """A value ``add``/``set`` writes: a string, number, boolean or null (no lists or mappings)."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"expected a finite number, got {shown(raw)}")
    if raw is not None and not isinstance(raw, (str, int, float, bool)):
        raise ValueError(f"expected a string, number or boolean, got a {type(raw).__name__}")
    return raw


def _paths(raw: Any) -> tuple[Path, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("expected a list of fields.<name> paths")
    return tuple(map(parse_fields_path, items))


_TYPE = Field("type", REQUIRED, "The filter.", parse_nonempty_str)
_SOURCE = Field("source", ("message",), "Path of the text to parse.", parse_path)
_TARGET = Field("target", ("fields",), "Where parsed keys go: fields, or fields.<name>.", parse_parse_target)
_MAX_BYTES = Field("max_bytes", 256 * 1024, "Longer text is not parsed.", bounded(parse_size, 1))
_FIELD_ANY = Field("field", REQUIRED, "Path of the value.", parse_path)
_FIELD_WRITABLE = Field("field", REQUIRED, "message or fields.<name>.", parse_writable_path)
_REGEX = Field("regex", REQUIRED, "Regular expression (Python syntax, searched).", compiled_regex)
_OVERWRITE = Field("overwrite", False, "Replace an existing target.", parse_bool)
_FROM = Field("from", REQUIRED, "Path of the value.", parse_path)
_FROM_FIELDS = Field("from", REQUIRED, "fields.<name> to rename.", parse_fields_path)
_TO = Field("to", REQUIRED, "message or fields.<name>.", parse_writable_path)


@dataclass(frozen=True)
class _Kind:
    section: Section
    build: Callable[[dict[str, Any]], Filter]


FILTER_TYPES: dict[str, _Kind] = {
    "parse_json": _Kind(
        Section(
            (
                _TYPE,
                _SOURCE,
                _TARGET,
                _MAX_BYTES,
                Field("max_depth", 32, "Deeper JSON is not parsed.", positive_int),
            )
        ),
        lambda v: ParseJson(v["source"], v["target"], v["max_bytes"], v["max_depth"]),
    ),
    "parse_logfmt": _Kind(
        Section(
            (
                _TYPE,
                _SOURCE,
                _TARGET,
                _MAX_BYTES,
                Field("max_keys", 256, "Text with more keys is not parsed.", positive_int),
            )
        ),
        lambda v: ParseLogfmt(v["source"], v["target"], v["max_bytes"], v["max_keys"]),
    ),
    "keep": _Kind(Section((_TYPE, _FIELD_ANY, _REGEX)), lambda v: Grep(v["field"], v["regex"], keep=True)),
    "drop": _Kind(Section((_TYPE, _FIELD_ANY, _REGEX)), lambda v: Grep(v["field"], v["regex"], keep=False)),
    "redact": _Kind(
        Section(
            (
                _TYPE,
                _FIELD_WRITABLE,
                _REGEX,
                Field("replacement", "[REDACTED]", "What a match becomes.", parse_str),
            )
        ),
        lambda v: Redact(v["field"], v["regex"], v["replacement"]),
    ),
    "add": _Kind(
        Section((_TYPE, _FIELD_WRITABLE, Field("value", REQUIRED, "The value.", parse_field_value))),
        lambda v: Add(v["field"], v["value"], overwrite=False),
    ),
    "set": _Kind(
        Section((_TYPE, _FIELD_WRITABLE, Field("value", REQUIRED, "The value.", parse_field_value))),
        lambda v: Add(v["field"], v["value"], overwrite=True),
    ),
    "remove": _Kind(
        Section((_TYPE, Field("fields", REQUIRED, "fields.<name> paths.", _paths))),
        lambda v: Remove(v["fields"]),
    ),
    "rename": _Kind(
        Section((_TYPE, _FROM_FIELDS, _TO, _OVERWRITE)),
        lambda v: Copy(v["from"], v["to"], v["overwrite"], move=True),
    ),
    "copy": _Kind(
        Section((_TYPE, _FROM, _TO, _OVERWRITE)),
        lambda v: Copy(v["from"], v["to"], v["overwrite"], move=False),
    ),
    "time": _Kind(
        Section(
            (
                _TYPE,
                _FIELD_ANY,
                Field(
                    "format",
                    "rfc3339",
                    "rfc3339, unix, unix_ms, unix_us, unix_ns or strptime.",
                    parse_time_format,
                ),
            )
        ),
        lambda v: SetTime(v["field"], v["format"]),
    ),
}
_type_choice = parse_choice(*FILTER_TYPES)


def parse_filter(raw: Any) -> Filter:
    """One filter from its mapping (``type:`` and the type's keys); errors name the key."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping with a type ({', '.join(FILTER_TYPES)})")
    kind_name = next((raw[k] for k in raw if k == "type"), None)
    if kind_name is None:
        raise ValueError(f"'type' is required (one of {', '.join(FILTER_TYPES)})")
    try:
        kind = FILTER_TYPES[_type_choice(kind_name)]
    except ValueError as exc:
        line = raw.line_of("type") if hasattr(raw, "line_of") else None
        raise ConfigError(str(exc), key="type", file=getattr(raw, "file", None), line=line) from None
    return kind.build(kind.section.read(raw))


parse_filters = ListOf(parse_filter)


# ---------------------------------------------------------------------------------------------------
# Running a chain


@dataclass(slots=True)
class Tally:
    """What a chain did: records it dropped on purpose, filters that failed on a record."""

    dropped: int = 0
    failures: int = 0

    def add(self, other: Tally) -> None:
        self.dropped += other.dropped
        self.failures += other.failures


@dataclass(frozen=True)
class FilterChain:
    filters: tuple[Filter, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.filters)

    def apply(self, record: Record, tally: Tally) -> Record | None:
        for step in self.filters:
            try:
                outcome = step(record)
            except Exception:  # a bug in a filter costs its work on one record, never the record
                outcome = FAILED
            if outcome is None:
                tally.dropped += 1
                return None
            if outcome is FAILED:
                tally.failures += 1
                continue
            record = outcome  # type: ignore[assignment]
        return record

    def apply_records(self, records: Records, tally: Tally) -> tuple[Records, list[int]]:
        """The records a run keeps, as a run, and the indexes of those kept."""
        times: list[str] = []
        messages: list[str] = []
        streams: list[str | None] = []
        fields: list[dict[str, Any] | None] = []
        kept: list[int] = []
        for index, record in enumerate(records):
            result = self.apply(record, tally)
            if result is None:
                continue
            kept.append(index)
            times.append(result.time)
            messages.append(result.message)
            streams.append(result.stream)
            fields.append(result.fields)
        has_fields = any(item is not None for item in fields)
        run = Records(
            times,
            messages,
            streams,
            records.file,
            records.node,
            records.kubernetes,
            fields if has_fields else None,
        )
        return run, kept

    def apply_batch(self, batch: Sequence[Record], tally: Tally) -> RecordBatch:
        """A batch (of runs, or any records) without the records the chain drops."""
        runs: Iterable[Records] = batch.runs if isinstance(batch, RecordBatch) else _as_runs(batch)
        return RecordBatch([run for run in (self.apply_records(r, tally)[0] for r in runs) if len(run)])


def _as_runs(records: Sequence[Record]) -> list[Records]:
    if isinstance(records, Records):
        return [records]
    return [
        Records([r.time], [r.message], [r.stream], r.file, r.node, r.kubernetes, [r.fields]) for r in records
    ]


def keep_offsets(offsets: list[int], kept: list[int]) -> list[int]:
    """The offsets of the records kept, the last one taking the offset of the last record read: a
    dropped record's bytes are passed by the acknowledgement of a kept record after it, and the
    dropped ones at the end by that of the last kept record."""
    if not kept:
        return []
    result = [offsets[index] for index in kept]
    result[-1] = offsets[-1]
    return result
