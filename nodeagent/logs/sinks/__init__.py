"""Sinks: one module per destination, all behind :class:`nodeagent.logs.sinks.base.Sink`.

``SINK_TYPES`` maps a config ``type`` to its class; :func:`make_sink` builds one from a config mapping.
A sink's constructor validates its options and opens nothing; ``start()`` does. Adding a destination is
one module here plus one line in ``_SINK_CLASSES`` (a module is imported only when its type is used).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict
from nodeagent.config.values import shown
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink, SinkError

# type -> (module, class). A sink's module is imported when its type is first looked up: a run pays only
# for the sinks it configures (the others and their protocol code: ~0.5 MB of RSS on every node).
_SINK_CLASSES: dict[str, tuple[str, str]] = {
    "stdout": ("stdout", "StdoutSink"),
    "file": ("file", "FileSink"),
    "loki": ("loki", "LokiSink"),
    "http": ("http", "HttpSink"),
    "syslog": ("syslog", "SyslogSink"),
    "elasticsearch": ("elasticsearch", "ElasticsearchSink"),
    "opensearch": ("elasticsearch", "OpenSearchSink"),
    "otlp": ("otlp", "OtlpSink"),
    "forward": ("forward", "ForwardSink"),
    "relp": ("relp", "RelpSink"),
}


def _sink_class(module: str, name: str) -> type[Sink]:
    cls: type[Sink] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return cls


class _SinkTypes(Mapping[str, type[Sink]]):
    """The sink classes by type, each module imported on first look-up."""

    def __getitem__(self, type_name: str) -> type[Sink]:
        return _sink_class(*_SINK_CLASSES[type_name])

    def __iter__(self) -> Iterator[str]:
        return iter(_SINK_CLASSES)

    def __len__(self) -> int:
        return len(_SINK_CLASSES)


SINK_TYPES: Mapping[str, type[Sink]] = _SinkTypes()


def __getattr__(name: str) -> Any:
    """``from nodeagent.logs.sinks import LokiSink`` still works: imported then."""
    for module, class_name in _SINK_CLASSES.values():
        if class_name == name:
            return _sink_class(module, class_name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
