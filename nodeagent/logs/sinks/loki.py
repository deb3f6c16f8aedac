"""Grafana Loki: the JSON push API (``POST /loki/api/v1/push``), one stream per distinct label set.

Options:
  url          base URL, e.g. ``http://loki:3100`` (required); ``/loki/api/v1/push`` is appended unless the
               URL already ends with it
  labels       record fields that become stream labels (default: node, namespace, pod, container,
               stream); a list of field names, or a mapping ``{label_name: field}``. Fields: node, stream,
               file, and the kubernetes fields namespace, pod, pod_uid, container, container_id,
               restart_count (also written ``kubernetes.<field>``)
  static_labels  mapping of fixed labels added to every stream (default none)
  line_format  ``json`` (the whole record as JSON, default), ``message`` (the message only) or ``raw``
               (Promtail's defaults: the message as the line, labels ``filename`` (the file path) and
               ``job`` (``job`` option) unless ``labels`` / ``static_labels`` are given)
  job          the ``job`` label of ``line_format: raw`` (default ``nodeagent``)
  max_line_size  lines longer than this many bytes (Loki's ``max_line_size``, 256,000 by default) are
               cut and end with ``…[truncated]`` (a JSON line stays valid JSON: its message is cut);
               counted in ``nodeagent_logs_sink_lines_truncated_total``; 0: never cut
  tenant_id    sent as ``X-Scope-OrgID`` (default none)
  headers      extra request headers (default none)
  gzip         gzip the body, ``Content-Encoding: gzip`` (default true)
  timeout      per request (default 10s)
  bearer_token | bearer_token_file, basic_auth {username, password | password_file} (also flat:
  username, password | password_file)   credentials; see :mod:`nodeagent.logs.sinks._http`

Answers: 429 waits for the answer's ``Retry-After`` (at least :data:`THROTTLED_WAIT` without one: Loki's
rate limits are per second, and the pipeline's first retries come sooner). A 400 that names the entries
it refused (``total ignored: N out of M`` from the ingester, ``N errors like: ...`` from the
distributor) means Loki kept the rest of the push: only those N count as refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_choice, parse_http_url, parse_nonempty_str, parse_size, parse_str
from nodeagent.logs import metrics
from nodeagent.logs.encoding import record_json, unix_nanos
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import HttpPoster, PostingSink, check_http_options, endpoint, http_fields
from nodeagent.logs.sinks.base import RetryableSinkError

PUSH_PATH = "/loki/api/v1/push"
RECORD_FIELDS = ("node", "stream", "file")
KUBERNETES_FIELDS = ("namespace", "pod", "pod_uid", "container", "container_id", "restart_count")
DEFAULT_LABELS = ("node", "namespace", "pod", "container", "stream")
FALLBACK_LABELS = {"job": "nodeagent"}  # Loki refuses a stream without labels
PROMTAIL_LABELS = (("filename", "file"),)  # and ``job``: Promtail's labels for a tailed file
MAX_LINE_SIZE = 256_000  # Loki's limits_config.max_line_size default (256KB)
TRUNCATION_MARKER = "…[truncated]"
THROTTLED_WAIT = 1.0  # seconds to wait after a 429 without Retry-After
ERROR_ANSWER_BYTES = 64 * 1024  # enough of a 400 to count the refused entries it lists
# How Loki says which entries of a push it refused while keeping the others.
_IGNORED_TOTAL = re.compile(r"total ignored: (\d+) out of \d+")  # ingester, per stream
_ERRORS_LIKE = re.compile(r"(?m)^\s*(\d+) errors like: ")  # distributor validation, per reason
# One entry each, in answers that carry no count (older Loki versions).
_ONE_ENTRY = re.compile(
    r"entry with timestamp .{0,80}? ignored|has timestamp too (?:old|new)|Max entry size '\d+' bytes exceeded"
)

_encode_string = json.encoder.encode_basestring  # a JSON string with quotes, as record_json writes it
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """A valid Prometheus/Loki label name: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    cleaned = _INVALID_LABEL_CHARS.sub("_", name)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def _field_name(raw: str) -> str:
    field = raw.removeprefix("kubernetes.")
    if field not in RECORD_FIELDS and field not in KUBERNETES_FIELDS:
        known = ", ".join(RECORD_FIELDS + KUBERNETES_FIELDS)
        raise ValueError(f"unknown record field {raw!r} (known: {known})")
    return field


def parse_labels(raw: Any) -> list[tuple[str, str]]:
    """``[field, ...]`` or ``{label: field}`` -> [(label name, field)]."""
    if isinstance(raw, Mapping):
        pairs = [
            (sanitize_label_name(parse_str(label)), _field_name(parse_str(field)))
            for label, field in raw.items()
        ]
    elif isinstance(raw, (list, tuple)):
        pairs = [
            (sanitize_label_name(_field_name(parse_str(field))), _field_name(parse_str(field)))
            for field in raw
        ]
    else:
        raise ValueError(f"expected a list of record fields or a mapping of label to field, got {raw!r}")
    names = [label for label, _ in pairs]
    duplicates = sorted({label for label in names if names.count(label) > 1})
    if duplicates:
        raise ValueError(f"label {duplicates[0]!r} given twice")
    return pairs


def parse_static_labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of label to value, got {raw!r}")
    return {sanitize_label_name(parse_str(k)): parse_str(v) for k, v in raw.items() if parse_str(v) != ""}


def _label_value(record: Record, field: str) -> str | None:
    if field in KUBERNETES_FIELDS:
        value = record.kubernetes.get(field) if record.kubernetes else None
    else:
        value = getattr(record, field)
    if value is None or value == "":
        return None
    return str(value)


def refused_entries(answer: str) -> int | None:
    """How many entries a 400 from Loki says it refused, None when it does not say (all of them)."""
    counted = sum(int(n) for n in _IGNORED_TOTAL.findall(answer))
    counted += sum(int(n) for n in _ERRORS_LIKE.findall(answer))
    if not counted:
        counted = len(_ONE_ENTRY.findall(answer))
    return counted or None


def _cut_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8", "replace")[:max_bytes].decode("utf-8", "ignore")


def cap_line(line: str, record: Record, line_format: str, max_bytes: int) -> str | None:
    """``line`` cut to ``max_bytes`` of UTF-8 with the truncation marker; None when it fits."""
    if not max_bytes or len(line) * 4 <= max_bytes:  # a character is at most four bytes
        return None
    size = len(line.encode("utf-8", "replace"))
    if size <= max_bytes:
        return None
    marker_bytes = len(TRUNCATION_MARKER.encode())
    if line_format != "json":
        return _cut_utf8(line, max(0, max_bytes - marker_bytes)) + TRUNCATION_MARKER
    # Cut the message, not the JSON, so that the line stays valid JSON: the longest prefix of the message
    # whose escaped form fits beside the rest of the record (escaping makes bytes and characters differ).
    message = record.message

    def escaped_size(text: str) -> int:
        return len(_encode_string(text).encode("utf-8", "replace"))

    budget = max_bytes - (size - escaped_size(message)) - marker_bytes
    if budget < 2:  # the rest of the record alone is too large: the line as text, cut
        return _cut_utf8(line, max(0, max_bytes - marker_bytes)) + TRUNCATION_MARKER
    low, high = 0, len(message)
    while low < high:
        middle = (low + high + 1) // 2
        if escaped_size(message[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return record_json(_with_message(record, message[:low] + TRUNCATION_MARKER))


def _with_message(record: Record, message: str) -> Record:
    return Record(record.time, message, record.stream, record.file, record.node, record.kubernetes)


def build_push_request(
    batch: Sequence[Record],
    labels: Sequence[tuple[str, str]],
    static_labels: Mapping[str, str],
    line_format: str,
    now_ns: int | None = None,
    max_line_size: int = 0,
    truncated: list[int] | None = None,
) -> dict[str, Any]:
    """The push body: streams by label set, entries sorted by time within a stream (stable).

    Lines longer than ``max_line_size`` bytes are cut (see :func:`cap_line`); their count is added to
    ``truncated[0]``.
    """
    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    fallback_ns = now_ns if now_ns is not None else time.time_ns()
    cut = 0
    for record in batch:
        stream_labels = dict(static_labels)
        for label, field in labels:
            value = _label_value(record, field)
            if value is not None:
                stream_labels[label] = value
        if not stream_labels:
            stream_labels = dict(FALLBACK_LABELS)
        key = tuple(sorted(stream_labels.items()))
        nanos = unix_nanos(record.time)
        line = record_json(record) if line_format == "json" else record.message
        capped = cap_line(line, record, line_format, max_line_size)
        if capped is not None:
            line, cut = capped, cut + 1
        streams.setdefault(key, []).append((fallback_ns if nanos is None else nanos, line))
    if truncated is not None:
        truncated[0] += cut
    return {
        "streams": [
            {
                "stream": dict(key),
                "values": [[str(ts), line] for ts, line in sorted(entries, key=lambda e: e[0])],
            }
            for key, entries in streams.items()
        ]
    }


class LokiSink(PostingSink):
    type: ClassVar[str] = "loki"
    option_schema: ClassVar[Section] = Section(
        (
            Field("url", REQUIRED, f"Base URL; {PUSH_PATH} is appended.", parse_http_url),
            Field(
                "labels",
                parse_labels(list(DEFAULT_LABELS)),
                "Record fields that become labels.",
                parse_labels,
            ),
            Field("static_labels", {}, "Fixed labels of every stream.", parse_static_labels),
            Field(
                "line_format",
                "json",
                "json, message or raw (Promtail).",
                parse_choice("json", "message", "raw"),
            ),
            Field("job", "nodeagent", "The job label of line_format raw.", parse_nonempty_str),
            Field("max_line_size", MAX_LINE_SIZE, "Cut longer lines (bytes; 0: never).", parse_size),
            Field("tenant_id", None, "Sent as X-Scope-OrgID.", parse_str),
            *http_fields(gzip_default=True),
        ),
        subject="a loki sink",
        check=check_http_options,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        settings = self.read_options()
        self.push_url = endpoint(settings["url"], PUSH_PATH)
        self.labels = settings["labels"]
        self.static_labels = settings["static_labels"]
        self.line_format = settings["line_format"]
        if self.line_format == "raw":  # Promtail's labels, unless the config names its own
            if "labels" not in options:
                self.labels = list(PROMTAIL_LABELS)
            if "static_labels" not in options:
                self.static_labels = {"job": settings["job"]}
        self.max_line_size = settings["max_line_size"]
        self.tenant_id = settings["tenant_id"] or None
        self._poster = HttpPoster(name, "POST", self.push_url, settings)

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        truncated = [0]
        request = build_push_request(
            batch,
            self.labels,
            self.static_labels,
            self.line_format,
            max_line_size=self.max_line_size,
            truncated=truncated,
        )
        body = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        extra = {"X-Scope-OrgID": self.tenant_id} if self.tenant_id else None
        answer = await self._poster.exchange(body, "application/json", extra, keep_body=ERROR_ANSWER_BYTES)
        if answer.ok:
            if truncated[0]:  # counted once delivered, not at each retry
                metrics.SINK_LINES_TRUNCATED.labels(self.name).inc(truncated[0])
            return
        refused = None
        if answer.status == 400:
            refused = refused_entries(answer.body.decode("utf-8", "replace"))
        error = self._poster.refusal(answer, refused=refused)
        if answer.status == 429 and isinstance(error, RetryableSinkError) and error.retry_after is None:
            error.retry_after = THROTTLED_WAIT
        raise error
