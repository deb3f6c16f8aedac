"""Record encoding and time formats: the one place every sink takes its wire format from.

- JSON lines: :func:`encode_json_lines` (a batch, built from the reader's columns) and
  :func:`record_json` (one record; byte for byte the same line).
- Times: records carry RFC 3339 UTC with nine fractional digits (``2026-11-27T22:38:48.123456789Z``):
  :func:`rfc3339_ns` makes one from nanoseconds, :func:`normalize_time` from any RFC 3339 text (what CRI
  and docker lines carry), :func:`unix_nanos` turns one back into nanoseconds (Loki) and
  :func:`syslog_timestamp` into an RFC 5424 TIMESTAMP (syslog).
"""

from __future__ import annotations

import calendar
import json
import re
import time as _time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nodeagent.logs.record import RecordBatch, Records, fields_items

if TYPE_CHECKING:
    from nodeagent.logs.record import Record

# ---------------------------------------------------------------------------------------------------
# Times

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)
_SECONDS_CACHE: dict[str, int] = {}
_SECONDS_CACHE_MAX = 4096


def rfc3339_ns(ns: int) -> str:
    """Nanoseconds since the epoch as a record time."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds)) + f".{nanos:09d}Z"


def normalize_time(text: str) -> str | None:
    """RFC 3339 (any offset, 0-9+ fractional digits) -> UTC with nine digits and ``Z``; None if invalid."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            moment = moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError):
        return None
    nanos = (frac or "")[:9].ljust(9, "0")
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{nanos}Z"
    )


def _is_record_time(text: str) -> bool:
    """Already in the record form ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (shape only)?"""
    return len(text) == 30 and text[19] == "." and text[29] == "Z" and text[20:29].isdigit()


def unix_nanos(text: str | None) -> int | None:
    """Nanoseconds since the epoch, or None when the text is not an RFC 3339 time."""
    if not text:
        return None
    if not _is_record_time(text):
        normalized = normalize_time(text)
        if normalized is None:
            return None
        text = normalized
    prefix = text[:19]
    seconds = _SECONDS_CACHE.get(prefix)
    if seconds is None:
        try:
            moment = _time.strptime(prefix, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
        seconds = calendar.timegm(moment)
        if len(_SECONDS_CACHE) >= _SECONDS_CACHE_MAX:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[prefix] = seconds
    return seconds * 1_000_000_000 + int(text[20:29])


def syslog_timestamp(text: str | None) -> str:
    """RFC 5424 TIMESTAMP (at most six fractional digits), or the NILVALUE ``-``."""
    if not text or unix_nanos(text) is None:
        return "-"
    if not (len(text) == 30 and text[19] == "." and text[29] == "Z"):
        text = normalize_time(text) or ""
    return text[:26] + "Z"


# ---------------------------------------------------------------------------------------------------
# JSON lines

_encode_string = json.encoder.encode_basestring  # C-accelerated, ensure_ascii=False semantics
_encode_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What a JSON string escapes (with ensure_ascii=False); text without any of it goes between quotes as is.
_ESCAPED = (*map(chr, range(0x20)), '"', "\\")


def record_json(record: Record) -> str:
    """One record as one line of JSON, no trailing newline (invalid UTF-8 was replaced by the reader)."""
    return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))


def encode_json_lines(batch: Sequence[Record]) -> bytes:
    """The batch as JSON lines; a stray lone surrogate becomes '?' rather than an encoding error.

    Byte for byte what :func:`record_json` gives, but built from columns (:class:`Records`): the fields
    a file's records share (stream, file, node, kubernetes) are encoded once per run, and times and
    messages are escaped only when some of them have anything to escape. The pieces of every run go
    into one list, joined and encoded once: each copy of a batch costs about as much as parsing it.
    """
    parts: list[str] = []
    for run in as_runs(batch):
        _encode_run(run, parts)
    return ("".join(parts) or "\n").encode("utf-8", "replace")


def as_runs(batch: Sequence[Record]) -> list[Records]:
    """The batch as runs of :class:`Records` (those the reader made, or grouped from single records)."""
    if isinstance(batch, RecordBatch):
        return batch.runs
    if isinstance(batch, Records):
        return [batch]
    return _runs_of(batch)


def _runs_of(records: Sequence[Record]) -> list[Records]:
    """Records one by one, grouped into runs of the same file, node and kubernetes object."""
    runs: list[Records] = []
    key = None
    for record in records:
        if (record.file, record.node, id(record.kubernetes)) != key:
            key = (record.file, record.node, id(record.kubernetes))
            runs.append(Records([], [], [], record.file, record.node, record.kubernetes))
        run = runs[-1]
        if record.fields is not None and run.fields is None:
            run.fields = [None] * len(run.messages)
        run.times.append(record.time)
        run.messages.append(record.message)
        run.streams.append(record.stream)
        if run.fields is not None:
            run.fields.append(record.fields)
    return runs


def _fields_json(fields: dict[str, Any] | None) -> str:
    """A record's fields as ``,"key":value`` pairs, as :meth:`Record.to_dict` places them."""
    if not fields:
        return ""
    return "".join(f",{_encode_string(key)}:{_encode_value(value)}" for key, value in fields_items(fields))


def _needs_escaping(column: Sequence[str]) -> bool:
    """Does a string of ``column`` hold a character JSON escapes? (raises TypeError for a non-string)"""
    text = "".join(column)
    return any(map(text.__contains__, _ESCAPED))  # a memchr per character: faster than one scan


def _encode_run(run: Records, parts: list[str]) -> None:
    """Append the run's JSON lines, each ending with a newline, to ``parts``."""
    times: Sequence[str] | map[str] = run.times
    messages: Sequence[str] | map[str] = run.messages
    try:
        escape = [_needs_escaping(run.times), _needs_escaping(run.messages)]  # both: both type-checked
    except TypeError:  # not all strings: the general encoder (it raises for what JSON cannot hold)
        parts += [record_json(record) + "\n" for record in run]
        return
    if not any(escape):
        # Nothing to escape (the usual log line): the strings go between quotes as they are.
        head, middle, close = '{"time":"', '","message":"', '"'
    else:
        head, middle, close = '{"time":', ',"message":', ""
        times, messages = map(_encode_string, run.times), map(_encode_string, run.messages)
    shared = f',"file":{_encode_value(run.file)},"node":{_encode_value(run.node)}'
    if run.kubernetes is not None:
        shared += f',"kubernetes":{_encode_value(run.kubernetes)}'
    # The pieces of every line side by side in the list, filled a column at a time (slice assignment
    # copies references in C: faster than interleaving with zip).
    count = len(run.streams)
    step = 5 if run.fields is None else 6
    base = len(parts)
    parts += [head] * (step * count)
    parts[base + 1 :: step] = times
    parts[base + 2 :: step] = [middle] * count
    parts[base + 3 :: step] = messages
    if run.fields is None:
        end = "}\n"
    else:  # some records have fields: they go before each object's end
        end = ""
        parts[base + 5 :: 6] = [f"{fields}}}\n" for fields in map(_fields_json, run.fields)]
    tails = {stream: f'{close},"stream":{_encode_value(stream)}{shared}{end}' for stream in set(run.streams)}
    parts[base + 4 :: step] = map(tails.__getitem__, run.streams)
