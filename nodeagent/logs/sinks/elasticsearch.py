"""Elasticsearch and OpenSearch: the ``_bulk`` API (NDJSON), per-item results, dead letters.

One sink serves both (``type: elasticsearch`` or its alias ``type: opensearch``): the ``_bulk`` API, its
answer and the index name rules are the same.

Options (besides the HTTP ones every HTTP sink has: headers, gzip, timeout, tls, credentials):
  url          base URL, e.g. ``https://es:9200`` (required); ``/_bulk`` is appended unless the URL ends
               with it
  index        index (or data stream) name template (default ``nodeagent-%Y.%m.%d``): ``%Y %y %m %d %j
               %H %%`` from the record time in UTC, ``{field}`` or ``{field|fallback}`` from the record
               (``node``, ``stream``, ``file``, ``kubernetes.<key>[.<key>...]``, ``fields.<key>...``); a
               missing field gives its fallback (default ``unknown``). The result is made a valid index
               name: lowercased, ``\\ / * ? " < > | , # :`` and spaces become ``_``, leading ``- _ +``
               dropped, at most 255 bytes.
  action       ``create`` (default: what data streams require, as Fluent Bit and Vector send) or
               ``index`` (plain indices only)
  pipeline     ingest pipeline to run (default none)
  timestamp_field  the field that gets the record time (default ``@timestamp``, what data streams and
               Kibana expect); the record keeps its own ``time`` too
  api_key | api_key_file   ``Authorization: ApiKey <key>`` (the encoded key, or ``id:key``)
  dead_letter_file  append refused records here as JSON lines (default none: counted and logged only)
  dead_letter_max_bytes  stop appending once the file is this large (default 100MiB)

Delivery: a 2xx answer is read item by item. Items refused with 429 or 5xx are sent again (only they: the
sink remembers which items of the batch the server accepted, because the pipeline retries with the same
batch); items refused with another 4xx (mapping errors, invalid index names) are dead letters: counted in
``nodeagent_logs_sink_dead_letter_records_total{sink,reason}``, written to ``dead_letter_file`` if set,
and reported to the pipeline as refused. A whole-request 413 splits the request in halves; a single
record too large for the server is a dead letter. Whole-request 429/5xx and network errors retry (with the
server's Retry-After), other whole-request 4xx (401, 403) refuse the batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import (
    parse_absolute_path,
    parse_choice,
    parse_http_url,
    parse_nonempty_str,
    parse_size,
)
from nodeagent.logs import metrics
from nodeagent.logs.encoding import encode_json_lines, normalize_time, rfc3339_ns
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import (
    HttpAnswer,
    HttpPoster,
    PostingSink,
    api_key_fields,
    check_http_options,
    endpoint,
    http_fields,
)
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from nodeagent.safeio import quote

log = logging.getLogger(__name__)

BULK_PATH = "/_bulk"
NDJSON = "application/x-ndjson"
# Only what the sink reads: the answer to a 10,000-item bulk shrinks from ~2 MB to ~200 kB.
FILTER_PATH = "errors,items.*.status,items.*.error"
DEFAULT_INDEX = "nodeagent-%Y.%m.%d"
DEFAULT_FALLBACK = "unknown"
DATE_CODES = frozenset("YymdjH%")  # nothing finer than an hour: an index per minute would be a mistake
MAX_INDEX_BYTES = 255
_INVALID_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:]')
_FIELD_REF = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")
_ANSWER_BASE_BYTES = 64 * 1024
_ANSWER_BYTES_PER_ITEM = 16 * 1024  # an item's error with its caused_by chain stays far below this
_PARSE_IN_THREAD_BYTES = 1024 * 1024
_REASON_CHARS = re.compile(r"[^a-z0-9_]")


def sanitize_index_name(name: str) -> str:
    """A name Elasticsearch accepts: lowercase, none of ``\\/*?"<>| ,#:``, not starting with ``-_+``,
    not ``.``/``..``, at most 255 bytes."""
    cleaned = _INVALID_INDEX_CHARS.sub("_", name.lower()).lstrip("-_+")
    if len(cleaned.encode("utf-8", "replace")) > MAX_INDEX_BYTES:
        cleaned = cleaned.encode("utf-8", "replace")[:MAX_INDEX_BYTES].decode("utf-8", "ignore")
    if cleaned in ("", ".", ".."):
        return "nodeagent"
    return cleaned


@dataclass(frozen=True)
class IndexTemplate:
    """``logs-{kubernetes.namespace|none}-%Y.%m.%d`` parsed: literal pieces (with date codes) between
    field references."""

    text: str
    literals: tuple[str, ...]  # one more than fields
    fields: tuple[tuple[tuple[str, ...], str], ...]  # (path, fallback)
    dated: bool

    @classmethod
    def parse(cls, raw: Any) -> IndexTemplate:
        text = parse_nonempty_str(raw)
        literals: list[str] = []
        fields: list[tuple[tuple[str, ...], str]] = []
        position = 0
        for match in _FIELD_REF.finditer(text):
            literals.append(text[position : match.start()])
            path = tuple(match[1].strip().split("."))
            if path[0] not in ("node", "stream", "file", "kubernetes", "fields") or not all(path):
                raise ValueError(
                    f"unknown field {match[1]!r} in {{...}} (known: node, stream, file, "
                    "kubernetes.<key>, fields.<key>)"
                )
            if path[0] in ("node", "stream", "file") and len(path) > 1:
                raise ValueError(f"{path[0]!r} has no sub-fields: {match[1]!r}")
            fallback = DEFAULT_FALLBACK if match[2] is None else match[2]
            fields.append((path, fallback))
            position = match.end()
        literals.append(text[position:])
        for literal in literals:
            if "{" in literal or "}" in literal:
                raise ValueError(
                    f"unbalanced braces in {text!r} (a field is written {{kubernetes.namespace}})"
                )
            codes = re.findall(r"%(.?)", literal)
            bad = sorted({code for code in codes if code not in DATE_CODES})
            if bad:
                raise ValueError(
                    f"unsupported date code %{bad[0] or ''} in {text!r} (use %Y %y %m %d %j %H or %%)"
                )
        dated = any("%" in literal for literal in literals)
        return cls(text, tuple(literals), tuple(fields), dated)


def _field_value(record: Record, path: tuple[str, ...]) -> str | None:
    value: Any
    if path[0] in ("node", "stream", "file"):
        value = getattr(record, path[0])
    else:
        value = getattr(record, path[0], None)  # ``fields`` exists once the filters stage adds it
        for key in path[1:]:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return str(value)


class IndexNames:
    """Index names of records, from a template; dates by the hour and sanitised names are cached."""

    _CACHE_MAX = 4096

    def __init__(self, template: IndexTemplate) -> None:
        self.template = template
        self._dates: dict[str, tuple[str, ...]] = {}
        self._names: dict[str, str] = {}

    def name(self, record: Record, stamp: str) -> str:
        """The index of ``record`` whose normalised time is ``stamp`` (``YYYY-MM-DDTHH:...Z``)."""
        template = self.template
        literals = template.literals
        if template.dated:
            hour = stamp[:13]
            literals = self._dates.get(hour) or self._date_literals(hour)
        if template.fields:
            parts = [literals[0]]
            for (path, fallback), literal in zip(template.fields, literals[1:], strict=True):
                value = _field_value(record, path)
                parts.append(fallback if value is None else value)
                parts.append(literal)
            raw = "".join(parts)
        else:
            raw = literals[0]
        name = self._names.get(raw)
        if name is None:
            if len(self._names) >= self._CACHE_MAX:
                self._names.clear()
            name = self._names[raw] = sanitize_index_name(raw)
        return name

    def _date_literals(self, hour: str) -> tuple[str, ...]:
        moment = time.strptime(hour, "%Y-%m-%dT%H")
        rendered = tuple(time.strftime(literal, moment) for literal in self.template.literals)
        if len(self._dates) >= self._CACHE_MAX:
            self._dates.clear()
        self._dates[hour] = rendered
        return rendered


def record_stamp(text: str, now: str) -> str:
    """The record time as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``; ``now`` when it is not a valid time."""
    if len(text) == 30 and text[19] == "." and text[29] == "Z" and text[4] == "-" and text[10] == "T":
        return text
    return normalize_time(text) or now


@dataclass
class _BatchState:
    """What the sink knows about the batch the pipeline is retrying: its encoded items and outcomes."""

    batch: Sequence[Record]
    entries: list[bytes]  # action line + source line per item
    indices: list[str]
    done: bytearray  # 0 pending, 1 accepted, 2 dead letter
    dead: int = 0
    first_dead: str = ""
    dead_letters: list[bytes] = field(default_factory=list)

    def pending(self) -> list[int]:
        done = self.done
        return [i for i in range(len(done)) if not done[i]]


def _error_text(error: Any) -> tuple[str, str]:
    """(type, reason) of an item's ``error`` object (or a bare string, as old versions answer)."""
    if isinstance(error, Mapping):
        kind = error.get("type")
        reason = error.get("reason")
        cause = error.get("caused_by")
        if isinstance(cause, Mapping) and cause.get("reason"):
            reason = f"{reason}: {cause.get('reason')}"
        return (str(kind) if kind else "unknown"), (str(reason) if reason else "")
    return "unknown", "" if error is None else str(error)


def _reason_label(kind: str) -> str:
    return _REASON_CHARS.sub("_", kind.lower())[:64] or "unknown"


class ElasticsearchSink(PostingSink):
    type: ClassVar[str] = "elasticsearch"
    option_schema: ClassVar[Section] = Section(
        (
            Field("url", REQUIRED, f"Base URL; {BULK_PATH} is appended.", parse_http_url),
            Field("index", IndexTemplate.parse(DEFAULT_INDEX), "Index name template.", IndexTemplate.parse),
            Field("action", "create", "create (data streams) or index.", parse_choice("create", "index")),
            Field("pipeline", None, "Ingest pipeline.", parse_nonempty_str),
            Field("timestamp_field", "@timestamp", "Field holding the record time.", parse_nonempty_str),
            Field("dead_letter_file", None, "Append refused records here (JSON lines).", parse_absolute_path),
            Field("dead_letter_max_bytes", 100 * 1024**2, "Dead-letter file size cap.", parse_size),
            *http_fields(gzip_default=False),
            *api_key_fields(),
        ),
        subject="an elasticsearch sink",
        check=check_http_options,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        settings = self.read_options()
        url = endpoint(settings["url"], BULK_PATH)
        query = {"filter_path": FILTER_PATH}
        if settings["pipeline"]:
            query["pipeline"] = settings["pipeline"]
        self.bulk_url = url + "?" + urlencode(query, safe=",*")
        self.index_names = IndexNames(settings["index"])
        self.action = settings["action"]
        self.timestamp_key = json.dumps(settings["timestamp_field"], ensure_ascii=False)
        self.dead_letter_file = settings["dead_letter_file"] or None
        self.dead_letter_max_bytes = settings["dead_letter_max_bytes"]
        self._actions: dict[str, bytes] = {}
        self._state: _BatchState | None = None
        self._poster = HttpPoster(name, "POST", self.bulk_url, settings)

    # -- encoding -----------------------------------------------------------------------------------

    def _action_line(self, index: str) -> bytes:
        line = self._actions.get(index)
        if line is None:
            if len(self._actions) >= 4096:
                self._actions.clear()
            meta = {self.action: {"_index": index}}
            line = self._actions[index] = json.dumps(meta, ensure_ascii=False).encode("utf-8", "replace")
        return line

    def encode(self, batch: Sequence[Record]) -> _BatchState:
        """Each record as an action line and a source line (its JSON with the timestamp field first)."""
        sources = encode_json_lines(batch).split(b"\n")
        now = rfc3339_ns(time.time_ns())
        key = self.timestamp_key
        key_bytes = key.encode("utf-8", "replace")
        entries: list[bytes] = []
        indices: list[str] = []
        for record, source in zip(batch, sources, strict=False):
            stamp = record_stamp(record.time, now) if isinstance(record.time, str) else now
            index = self.index_names.name(record, stamp)
            if key_bytes + b":" in source:  # the record has that field already: its value wins
                doc = source
            else:
                doc = b"{" + key_bytes + b':"' + stamp.encode() + b'",' + source[1:]
            entries.append(self._action_line(index) + b"\n" + doc + b"\n")
            indices.append(index)
        if len(entries) != len(batch):
            raise RuntimeError(f"{self.name}: encoded {len(entries)} items for {len(batch)} records")
        return _BatchState(batch, entries, indices, bytearray(len(entries)))

    # -- delivery -----------------------------------------------------------------------------------

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        state = self._state
        if state is None or state.batch is not batch:
            # A new batch: the previous one was delivered or given up by the pipeline.
            state = self._state = self.encode(batch)
        try:
            await self._submit(state, state.pending())
        except PermanentSinkError as exc:  # the whole request refused: what was not accepted is dropped
            self._state = None
            exc.refused = len(state.done) - state.done.count(1)
            raise
        finally:
            await self._write_dead_letters(state)
        self._state = None
        if state.dead:
            raise PermanentSinkError(
                f"{self.name}: {state.dead} of {len(state.entries)} records refused for good "
                f"(dead letters); first: {state.first_dead}",
                refused=state.dead,
            )

    async def _submit(self, state: _BatchState, items: list[int]) -> None:
        if not items:
            return
        body = b"".join([state.entries[i] for i in items])
        answer = await self._poster.exchange(
            body, NDJSON, keep_body=_ANSWER_BASE_BYTES + _ANSWER_BYTES_PER_ITEM * len(items)
        )
        if answer.status == 413:
            if len(items) == 1:
                reason = f"one record of {len(body)} bytes is larger than the server accepts (413)"
                self._dead_letter(state, items[0], 413, "request_entity_too_large", reason)
                return
            half = len(items) // 2
            await self._submit(state, items[:half])
            await self._submit(state, items[half:])
            return
        if not answer.ok:
            raise self._poster.refusal(answer)
        await self._read_items(state, items, answer)

    async def _read_items(self, state: _BatchState, items: list[int], answer: HttpAnswer) -> None:
        try:
            if len(answer.body) > _PARSE_IN_THREAD_BYTES:
                result = await self.blocking(json.loads, answer.body)
            else:
                result = json.loads(answer.body)
        except (ValueError, RecursionError):
            raise RetryableSinkError(
                f"{self.name}: the bulk answer is not JSON: {self._poster.quote(answer)}"
            ) from None
        if not isinstance(result, Mapping) or not isinstance(result.get("errors"), bool):
            raise RetryableSinkError(f"{self.name}: unexpected bulk answer: {self._poster.quote(answer)}")
        if result["errors"] is False:
            for i in items:
                state.done[i] = 1
            return
        answers = result.get("items")
        if not isinstance(answers, list) or len(answers) != len(items):
            count = len(answers) if isinstance(answers, list) else "no"
            raise RetryableSinkError(f"{self.name}: the bulk answer has {count} items for {len(items)} sent")
        retry: list[tuple[int, str, str]] = []
        for i, item in zip(items, answers, strict=True):
            outcome = next(iter(item.values()), None) if isinstance(item, Mapping) and item else None
            status = outcome.get("status") if isinstance(outcome, Mapping) else None
            if not isinstance(status, int):
                retry.append((i, "unknown", f"item without a status: {quote(repr(item))}"))
                continue
            if 200 <= status < 300:
                state.done[i] = 1
                continue
            kind, reason = _error_text(outcome.get("error") if isinstance(outcome, Mapping) else None)
            if status == 429 or status >= 500:
                retry.append((i, kind, f"{status} {kind}: {reason}"))
            else:
                self._dead_letter(state, i, status, kind, reason)
        if retry:
            first = self._poster.quote(answer, retry[0][2])
            raise RetryableSinkError(
                f"{self.name}: {len(retry)} of {len(items)} items refused for now, sent again; "
                f"first: {first}",
                retry_after=answer.retry_after,
            )

    # -- dead letters -------------------------------------------------------------------------------

    def _dead_letter(self, state: _BatchState, i: int, status: int, kind: str, reason: str) -> None:
        state.done[i] = 2
        state.dead += 1
        metrics.SINK_DEAD_LETTER.labels(self.name, _reason_label(kind)).inc()
        if not state.first_dead:
            state.first_dead = f"{status} {kind}: {quote(reason)} (index {quote(state.indices[i])})"
        if self.dead_letter_file:
            entry = state.entries[i]
            document = entry[entry.index(b"\n") + 1 : -1]
            head = json.dumps(
                {
                    "time": rfc3339_ns(time.time_ns()),
                    "sink": self.name,
                    "index": state.indices[i],
                    "status": status,
                    "error": {"type": kind, "reason": reason[:2000]},
                },
                ensure_ascii=False,
            ).encode("utf-8", "replace")
            state.dead_letters.append(head[:-1] + b',"document":' + document + b"}\n")

    async def _write_dead_letters(self, state: _BatchState) -> None:
        if not state.dead_letters or not self.dead_letter_file:
            return
        lines, state.dead_letters = state.dead_letters, []
        try:
            written = await self.blocking(
                _append_bounded, self.dead_letter_file, lines, self.dead_letter_max_bytes
            )
        except OSError as exc:
            log.error(
                "cannot write the dead-letter file",
                extra={"sink": self.name, "path": self.dead_letter_file, "err": str(exc)},
            )
            return
        if written < len(lines):
            log.warning(
                "dead-letter file full; refused records only counted",
                extra={"sink": self.name, "path": self.dead_letter_file, "records": len(lines) - written},
            )


def _append_bounded(path: str, lines: list[bytes], max_bytes: int) -> int:
    """Append what fits under ``max_bytes``; returns how many lines were written."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        size = os.fstat(fd).st_size
        taken: list[bytes] = []
        for line in lines:
            if size + len(line) > max_bytes:
                break
            taken.append(line)
            size += len(line)
        data = memoryview(b"".join(taken))
        while data:
            data = data[os.write(fd, data) :]
        return len(taken)
    finally:
        os.close(fd)


class OpenSearchSink(ElasticsearchSink):
    """The same sink under the name OpenSearch users look for (OpenSearch kept the ``_bulk`` API)."""

    type: ClassVar[str] = "opensearch"
    option_schema: ClassVar[Section] = Section(
        ElasticsearchSink.option_schema.fields, subject="an opensearch sink", check=check_http_options
    )
