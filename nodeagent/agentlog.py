"""The agent's own log: one line per event on stderr, logfmt or JSON.

``logging`` calls anywhere in the agent (and in libraries) end up here. Fields passed as
``extra={"collector": "cpu", "err": "..."}`` become key/value pairs after ``msg``. Lines are written by a
background thread, so a slow stderr pipe (a busy container runtime) never stalls the event loop; when
that thread falls far behind, lines are dropped and counted instead of piling up in memory.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any, TextIO

from prometheus_client import Counter

from nodeagent.agentmetrics import AGENT_REGISTRY

LEVEL_NUMBERS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

LOG_LINES_DROPPED = Counter(
    "nodeagent_log_lines_dropped",
    "Lines of the agent's own log dropped because stderr could not keep up.",
    registry=AGENT_REGISTRY,
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_QUEUE_SIZE = 10_000


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as node_exporter's logs."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """ts, level, msg, logger, then the record's extra fields, then err/stack for exceptions."""
    fields: dict[str, Any] = {
        "ts": _timestamp(record.created),
        "level": _level_name(record.levelno),
        "msg": record.getMessage(),
        "logger": record.name,
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields.setdefault("err", repr(record.exc_info[1]))
        fields["stack"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else ("null" if value is None else str(value))
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _logfmt_key(key: str) -> str:
    cleaned = "".join(c if c.isprintable() and c not in ' ="' else "_" for c in str(key))
    return cleaned or "_"


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{_logfmt_key(k)}={_logfmt_value(v)}" for k, v in record_fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str, ensure_ascii=False)


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never blocks the caller: a full queue drops the line and counts it."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Render the message now, while its arguments are current; keep exc_info for the formatter
        # (the queue stays in this process, so nothing needs pickling).
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            LOG_LINES_DROPPED.inc()


class AgentLogging:
    """Handle on the installed logging; :meth:`close` flushes pending lines and restores the old setup."""

    def __init__(
        self,
        listener: logging.handlers.QueueListener | None,
        handler: logging.Handler,
        previous: tuple[int, list[logging.Handler]],
    ) -> None:
        self._listener = listener
        self._handler = handler
        self._previous = previous

    def close(self) -> None:
        root = logging.getLogger()
        if self._listener is not None:
            self._listener.stop()  # drains the queue
        root.removeHandler(self._handler)
        level, handlers = self._previous
        root.setLevel(level)
        for handler in handlers:
            root.addHandler(handler)

    def __enter__(self) -> AgentLogging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def setup_logging(
    level: str = "info", fmt: str = "logfmt", *, stream: TextIO | None = None, background: bool = True
) -> AgentLogging:
    """Send every log record (the agent's and libraries') to ``stream`` (stderr) in ``fmt``.

    ``background`` writes from a thread (for the long-running agent); off, lines are written at once
    (one-shot commands, tests).
    """
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else LogfmtFormatter()
    writer = logging.StreamHandler(stream if stream is not None else sys.stderr)
    writer.setFormatter(formatter)
    root = logging.getLogger()
    previous = (root.level, list(root.handlers))
    for existing in previous[1]:
        root.removeHandler(existing)
    listener = None
    handler: logging.Handler = writer
    if background:
        queued = _DroppingQueueHandler(queue.Queue(_QUEUE_SIZE))
        listener = logging.handlers.QueueListener(queued.queue, writer, respect_handler_level=False)
        handler = queued
        listener.start()
    root.addHandler(handler)
    root.setLevel(LEVEL_NUMBERS.get(level, logging.INFO))
    # Request logs from aiohttp would be one line per scrape; keep them for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    return AgentLogging(listener, handler, previous)
