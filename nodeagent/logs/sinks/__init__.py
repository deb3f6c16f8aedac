"""Sinks: one module per destination, all behind :class:`nodeagent.logs.sinks.base.Sink`.

``SINK_TYPES`` maps a config ``type`` to its class; :func:`make_sink` builds one from a config mapping.
A sink's constructor validates its options and opens nothing; ``start()`` does. Adding a destination is
one module here plus one line in ``SINK_TYPES``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict
from nodeagent.config.values import shown
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink, SinkError
from nodeagent.logs.sinks.elasticsearch import ElasticsearchSink, OpenSearchSink
from nodeagent.logs.sinks.file import FileSink
from nodeagent.logs.sinks.forward import ForwardSink
from nodeagent.logs.sinks.http import HttpSink
from nodeagent.logs.sinks.loki import LokiSink
from nodeagent.logs.sinks.otlp import OtlpSink
from nodeagent.logs.sinks.relp import RelpSink
from nodeagent.logs.sinks.stdout import StdoutSink
from nodeagent.logs.sinks.syslog import SyslogSink

SINK_TYPES: dict[str, type[Sink]] = {
    cls.type: cls
    for cls in (
        StdoutSink,
        FileSink,
        LokiSink,
        HttpSink,
        SyslogSink,
        ElasticsearchSink,
        OpenSearchSink,
        OtlpSink,
        ForwardSink,
        RelpSink,
    )
}


def parse_sink_type(raw: Any) -> str:
    if not isinstance(raw, str) or raw not in SINK_TYPES:
        raise ValueError(f"unknown sink type {shown(raw)} (expected one of {', '.join(sorted(SINK_TYPES))})")
    return raw


def make_sink(spec: Mapping[str, Any], *, name: str, ignore: Collection[str] = ()) -> Sink:
    """A sink from ``{type: ..., <options>}``.

    ``name`` (and ``type``) are not options; keys in ``ignore`` belong to the caller. Raises ConfigError
    (a ValueError, shown as ``key: message``) for an unknown type, a missing or bad option, or an unknown
    option.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a sink is a mapping with a 'type', got {type(spec).__name__}", key="type")
    try:
        cls = SINK_TYPES[parse_sink_type(spec.get("type"))]
    except ValueError as exc:
        raise ConfigError(str(exc), key="type") from None
    keys = [key for key in spec if key not in {"type", "name", *ignore}]
    options = spec.subset(keys) if isinstance(spec, LineDict) else {key: spec[key] for key in keys}
    return cls(name, options)


__all__ = [
    "SINK_TYPES",
    "ElasticsearchSink",
    "FileSink",
    "ForwardSink",
    "HttpSink",
    "LokiSink",
    "OpenSearchSink",
    "OtlpSink",
    "PermanentSinkError",
    "RelpSink",
    "RetryableSinkError",
    "Sink",
    "SinkError",
    "StdoutSink",
    "SyslogSink",
    "make_sink",
    "parse_sink_type",
]
