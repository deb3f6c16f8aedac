"""Grafana Loki: the JSON push API (``POST /loki/api/v1/push``), one stream per distinct label set.

Options:
  url          base URL, e.g. ``http://loki:3100`` (required); ``/loki/api/v1/push`` is appended unless the
               URL already ends with it
  labels       record fields that become stream labels (default: node, namespace, pod, container,
               stream); a list of field names, or a mapping ``{label_name: field}``. Fields: node, stream,
               file, and the kubernetes fields namespace, pod, pod_uid, container, container_id,
               restart_count (also written ``kubernetes.<field>``)
  static_labels  mapping of fixed labels added to every stream (default none)
  line_format  ``json`` (the whole record as JSON, default) or ``message`` (the message only)
  tenant_id    sent as ``X-Scope-OrgID`` (default none)
  headers      extra request headers (default none)
  gzip         gzip the body, ``Content-Encoding: gzip`` (default true)
  timeout      per request (default 10s)
  bearer_token | bearer_token_file, basic_auth {username, password | password_file} (also flat:
  username, password | password_file)   credentials; see :mod:`nodeagent.logs.sinks._http`
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_choice, parse_http_url, parse_str
from nodeagent.logs.encoding import record_json, unix_nanos
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import HttpPoster, check_http_options, http_fields
from nodeagent.logs.sinks.base import Sink

PUSH_PATH = "/loki/api/v1/push"
RECORD_FIELDS = ("node", "stream", "file")
KUBERNETES_FIELDS = ("namespace", "pod", "pod_uid", "container", "container_id", "restart_count")
DEFAULT_LABELS = ("node", "namespace", "pod", "container", "stream")
FALLBACK_LABELS = {"job": "nodeagent"}  # Loki refuses a stream without labels

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


def build_push_request(
    batch: Sequence[Record],
    labels: Sequence[tuple[str, str]],
    static_labels: Mapping[str, str],
    line_format: str,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """The push body: streams by label set, entries sorted by time within a stream (stable)."""
    streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
    fallback_ns = now_ns if now_ns is not None else time.time_ns()
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
        streams.setdefault(key, []).append((fallback_ns if nanos is None else nanos, line))
    return {
        "streams": [
            {
                "stream": dict(key),
                "values": [[str(ts), line] for ts, line in sorted(entries, key=lambda e: e[0])],
            }
            for key, entries in streams.items()
        ]
    }


class LokiSink(Sink):
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
            Field("line_format", "json", "json or message.", parse_choice("json", "message")),
            Field("tenant_id", None, "Sent as X-Scope-OrgID.", parse_str),
            *http_fields(gzip_default=True),
        ),
        subject="a loki sink",
        check=check_http_options,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        settings = self.read_options()
        url = settings["url"].rstrip("/")
        self.push_url = url if url.endswith(PUSH_PATH) else url + PUSH_PATH
        self.labels = settings["labels"]
        self.static_labels = settings["static_labels"]
        self.line_format = settings["line_format"]
        self.tenant_id = settings["tenant_id"] or None
        self._poster = HttpPoster(name, "POST", self.push_url, settings)

    async def start(self) -> None:
        self._poster.blocking = self.blocking
        await self._poster.start()

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        request = build_push_request(batch, self.labels, self.static_labels, self.line_format)
        body = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        extra = {"X-Scope-OrgID": self.tenant_id} if self.tenant_id else None
        await self._poster.post(body, "application/json", extra)

    async def close(self) -> None:
        await self._poster.close()
