"""``filters:`` on inputs and sinks: every filter type read from YAML, regexes compiled once, and
one-line errors naming file, line and key."""

from __future__ import annotations

import re

import pytest

from nodeagent.config import ConfigError, load_yaml
from nodeagent.config.logs import LogsConfig, parse_logs_config
from nodeagent.logs.filters import (
    Add,
    Copy,
    Grep,
    ParseJson,
    ParseLogfmt,
    Redact,
    Remove,
    SetTime,
)

EXAMPLE = r"""
logs:
  inputs:
    - paths: ["/var/log/pods/*/*/*.log"]
      filters:
        - type: parse_json
          max_depth: 16
        - type: parse_logfmt
          source: message
          target: fields.kv
          max_bytes: 64KiB
          max_keys: 50
        - {type: time, field: fields.ts, format: unix_ms}
        - {type: time, field: fields.when, format: "%d/%b/%Y:%H:%M:%S %z"}
        - {type: keep, field: fields.level, regex: "^(warn|error)$"}
        - {type: drop, field: kubernetes.namespace, regex: "^kube-"}
        - {type: redact, field: message, regex: 'token=\S+', replacement: "token=***"}
        - {type: add, field: fields.env, value: prod}
        - {type: set, field: fields.replicas, value: 3}
        - {type: remove, fields: [fields.secret, fields.debug]}
        - {type: rename, from: fields.msg, to: message, overwrite: true}
        - {type: copy, from: kubernetes.pod, to: fields.pod}
  sinks:
    - type: stdout
      name: errors
      filters:
        - {type: keep, field: stream, regex: stderr}
    - type: stdout
      name: all
"""


def parse(text: str) -> LogsConfig:
    document = load_yaml(text, "agent.yaml")
    return parse_logs_config(document["logs"], source="agent.yaml", environ={})


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_every_filter_type() -> None:
    config = parse(EXAMPLE)
    assert config.inputs[0].filters == (
        ParseJson(("message",), ("fields",), 256 * 1024, 16),
        ParseLogfmt(("message",), ("fields", "kv"), 64 * 1024, 50),
        SetTime(("fields", "ts"), "unix_ms"),
        SetTime(("fields", "when"), "%d/%b/%Y:%H:%M:%S %z"),
        Grep(("fields", "level"), re.compile("^(warn|error)$"), keep=True),
        Grep(("kubernetes", "namespace"), re.compile("^kube-"), keep=False),
        Redact(("message",), re.compile(r"token=\S+"), "token=***"),
        Add(("fields", "env"), "prod", overwrite=False),
        Add(("fields", "replicas"), 3, overwrite=True),
        Remove((("fields", "secret"), ("fields", "debug"))),
        Copy(("fields", "msg"), ("message",), overwrite=True, move=True),
        Copy(("kubernetes", "pod"), ("fields", "pod"), overwrite=False, move=False),
    )
    assert [(s.name, s.filters) for s in config.sinks] == [
        ("errors", (Grep(("stream",), re.compile("stderr"), keep=True),)),
        ("all", ()),
    ]
    assert "filters" not in config.sinks[0].options  # not an option handed to the sink
    assert isinstance(config.inputs[0].filters[4].regex, re.Pattern)  # compiled once, here


def test_no_filters_by_default() -> None:
    config = parse("logs:\n  inputs:\n    - paths: [/var/log/*.log]\n")
    assert config.inputs[0].filters == () and config.sinks[0].filters == ()


FILTERS_AT_LINE_4 = "logs:\n  inputs:\n    - paths: [/var/log/*.log]\n      filters:\n"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            "        - {type: keep, field: message, regex: '('}\n",
            "agent.yaml:5: logs.inputs[0].filters[0].regex: invalid regular expression '('",
        ),
        (
            "        - type: parse_json\n        - type: grep\n",
            "agent.yaml:6: logs.inputs[0].filters[1].type: expected one of parse_json, parse_logfmt",
        ),
        ("        - {field: message}\n", "agent.yaml:5: logs.inputs[0].filters[0]: 'type' is required"),
        ("        - parse_json\n", "agent.yaml:5: logs.inputs[0].filters[0]: expected a mapping with a type"),
        (
            "        - type: keep\n          field: labels.app\n          regex: x\n",
            "agent.yaml:6: logs.inputs[0].filters[0].field: expected a path starting with one of",
        ),
        (
            "        - {type: add, field: kubernetes.team, value: x}\n",
            "logs.inputs[0].filters[0].field: only message and fields.<name> can be written",
        ),
        (
            "        - {type: rename, from: message, to: fields.m}\n",
            "logs.inputs[0].filters[0].from: expected fields.<name>",
        ),
        ("        - {type: keep, field: message}\n", "logs.inputs[0].filters[0]: 'regex' is required"),
        (
            "        - {type: keep, field: message, regex: x, regexp: y}\n",
            "logs.inputs[0].filters[0].regexp: unknown key",
        ),
        (
            "        - {type: time, field: fields.ts, format: iso}\n",
            "logs.inputs[0].filters[0].format: expected one of rfc3339, unix",
        ),
        (
            "        - {type: set, field: fields.x, value: [1, 2]}\n",
            "logs.inputs[0].filters[0].value: expected a string, number or boolean",
        ),
        (
            "        - {type: set, field: fields.x, value: .inf}\n",
            "logs.inputs[0].filters[0].value: expected a finite number",
        ),
        (
            "        - {type: remove, fields: []}\n",
            "logs.inputs[0].filters[0].fields: expected a list of fields.<name> paths",
        ),
        (
            "        - {type: parse_json, max_depth: 0}\n",
            "logs.inputs[0].filters[0].max_depth: must be greater than 0",
        ),
        (
            "        - {type: parse_json, target: message}\n",
            "logs.inputs[0].filters[0].target: expected fields or fields.<name>",
        ),
        (
            "        - {type: keep, field: fields..a, regex: x}\n",
            "logs.inputs[0].filters[0].field: empty part",
        ),
    ],
)
def test_errors_name_file_line_and_key(filters: str, expected: str) -> None:
    assert expected in error_of(FILTERS_AT_LINE_4 + filters)


def test_sink_filter_errors_name_the_sink() -> None:
    text = "logs:\n  sinks:\n    - type: stdout\n      filters:\n        - {type: drop, field: x, regex: y}\n"
    assert error_of(text).startswith("agent.yaml:5: logs.sinks[0].filters[0].field: expected a path")
    text = "logs:\n  sinks:\n    - type: stdout\n      filters: {type: drop}\n"
    assert error_of(text).startswith("agent.yaml:4: logs.sinks[0].filters: expected a list")
