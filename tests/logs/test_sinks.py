"""The sink registry (nodeagent.logs.sinks): types, and option checks with the key in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeagent.logs.sinks import SINK_TYPES, make_sink
from nodeagent.logs.sinks.file import FileSink

# -- registry and options ------------------------------------------------------------------------------


def test_registry_lists_every_sink_type() -> None:
    assert sorted(SINK_TYPES) == [
        "elasticsearch",
        "file",
        "forward",
        "http",
        "loki",
        "opensearch",
        "otlp",
        "relp",
        "stdout",
        "syslog",
    ]
    for type_name, cls in SINK_TYPES.items():
        assert cls.type == type_name


def test_make_sink_builds_and_ignores_name_and_caller_keys(tmp_path: Path) -> None:
    sink = make_sink(
        {"type": "file", "name": "out", "path": str(tmp_path / "o.jsonl"), "batch": 5},
        name="out",
        ignore=("batch",),
    )
    assert isinstance(sink, FileSink) and sink.name == "out" and sink.path == tmp_path / "o.jsonl"
    # '-' and '_' are interchangeable in option names, as everywhere in the config.
    loki = make_sink({"type": "loki", "url": "http://127.0.0.1:3100", "tenant-id": "t"}, name="l")
    assert loki.tenant_id == "t"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "kafka"},
            "type: unknown sink type 'kafka' (expected one of elasticsearch, file, forward, http, loki, "
            "opensearch, otlp, relp, stdout, syslog)",
        ),
        ({}, "type: unknown sink type None"),
        ({"type": "file"}, "path: required for a file sink"),
        ({"type": "file", "path": ""}, "path: must not be empty"),
        ({"type": "file", "path": "/x", "pth": 1}, "pth: unknown option for a file sink (known: path)"),
        ({"type": "stdout", "path": "/x"}, "path: unknown option for a stdout sink"),
        ({"type": "loki"}, "url: required"),
        ({"type": "loki", "url": "127.0.0.1:3100"}, "url: expected an http:// or https:// URL"),
        (
            {"type": "loki", "url": "http://h", "labels": ["pod", "podd"]},
            "labels: unknown record field 'podd'",
        ),
        ({"type": "loki", "url": "http://h", "labels": "pod"}, "labels: expected a list"),
        (
            {"type": "loki", "url": "http://h", "line_format": "xml"},
            "line_format: expected one of json, message",
        ),
        ({"type": "loki", "url": "http://h", "gzip": "maybe"}, "gzip: expected true or false"),
        ({"type": "loki", "url": "http://h", "timeout": "soon"}, "timeout: expected a duration"),
        ({"type": "loki", "url": "http://h", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers: header 'X-A'"),
        ({"type": "loki", "url": "http://h", "password": "p"}, "username: required when a password is set"),
        ({"type": "http", "url": "http://h", "method": "GET"}, "method: expected one of POST, PUT, PATCH"),
        ({"type": "syslog"}, "address: required"),
        ({"type": "syslog", "address": "h:99999"}, "address: port out of range"),
        ({"type": "syslog", "address": "h:x"}, "address: bad port"),
        ({"type": "syslog", "address": "h:514", "facility": "local9"}, "facility: unknown facility 'local9'"),
        ({"type": "syslog", "address": "h:514", "facility": 24}, "facility: facility number must be 0-23"),
    ],
)
def test_bad_options_are_refused_with_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        make_sink(spec, name="s")
    assert str(caught.value).startswith(message)
