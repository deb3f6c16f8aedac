"""The ``logs:`` section: the embedded default, the documented keys, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeagent.config import ConfigError, load_yaml
from nodeagent.config.logs import (
    InputConfig,
    LogsConfig,
    default_state_dir,
    own_output_excludes,
    parse_logs_config,
)
from nodeagent.logs.discovery import PathMatcher
from nodeagent.logs.parsers import MultilineConfig

ISSUE_EXAMPLE = r"""
logs:
  state_dir: /var/lib/nodeagent      # checkpoints live here
  inputs:
    - name: pods
      paths: ["/var/log/pods/*/*/*.log"]
      exclude: ["*.gz", "*.tmp"]
      format: auto                   # auto | cri | docker | plain
      read_from: head                # head | tail
      multiline: {start_pattern: '^\S', timeout: 3s}   # optional
      max_line_bytes: 262144
  sinks:
    - {type: file, path: /var/log/nodeagent/out.jsonl}
"""


def parse(text: str, environ: dict | None = None) -> LogsConfig:
    document = load_yaml(text, "agent.yaml")
    return parse_logs_config(document["logs"], source="agent.yaml", environ=environ or {})


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def test_embedded_default() -> None:
    config = parse_logs_config(None, environ={"HOME": "/home/u"})
    assert config.enabled
    paths = [p for i in config.inputs for p in i.paths]
    assert paths == [
        "/var/log/*.log",
        "/var/log/syslog",
        "/var/log/messages",
        "/var/log/pods/*/*/*.log",
        "/var/lib/docker/containers/*/*-json.log",
    ]
    assert {i.read_from for i in config.inputs} == {"tail"}
    assert [(s.type, s.name) for s in config.sinks] == [("stdout", "stdout")]


def test_state_dir_default_per_user() -> None:
    assert default_state_dir({}, is_root=True) == Path("/var/lib/nodeagent")
    assert default_state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, is_root=False) == Path(
        "/x/state/nodeagent"
    )
    assert default_state_dir({"HOME": "/home/u"}, is_root=False) == Path("/home/u/.local/state/nodeagent")
    assert default_state_dir({"XDG_STATE_HOME": "relative", "HOME": "/h"}, is_root=False) == Path(
        "/h/.local/state/nodeagent"
    )


def test_the_issue_example() -> None:
    config = parse(ISSUE_EXAMPLE)
    assert config.state_dir == Path("/var/lib/nodeagent")
    assert config.checkpoint_path == Path("/var/lib/nodeagent/logs-checkpoints.json")
    (pods,) = config.inputs
    assert pods.name == "pods" and pods.paths == ("/var/log/pods/*/*/*.log",)
    assert pods.exclude[:2] == ("*.gz", "*.tmp")
    assert pods.format == "auto" and pods.read_from == "head" and pods.max_line_bytes == 262144
    assert pods.multiline == MultilineConfig(start_pattern=r"^\S", timeout=3.0)
    (sink,) = config.sinks
    assert (sink.type, sink.name) == ("file", "file")
    assert dict(sink.options) == {"path": "/var/log/nodeagent/out.jsonl"}
    assert sink.as_spec() == {"type": "file", "path": "/var/log/nodeagent/out.jsonl"}


def test_tuning_keys_with_dashes_or_underscores() -> None:
    config = parse("""
logs:
  batch-max-records: 10
  batch_max_bytes: 1MiB
  batch_timeout: 250ms
  buffer_max_bytes: 64KiB
  checkpoint_interval: 5s
  rescan_interval: 2m
  poll-interval: 2s
  max_open_files: 50
  close_inactive: 10m
  rotate_wait: 1s
  deleted_file_timeout: 30s
  retry_initial_backoff: 100ms
  retry_max_backoff: 1m
  drain_timeout: 2s
""")
    assert (config.batch_max_records, config.batch_max_bytes, config.batch_timeout) == (10, 1 << 20, 0.25)
    assert (config.buffer_max_bytes, config.checkpoint_interval) == (65536, 5.0)
    assert config.rescan_interval == 120.0
    assert (config.poll_interval, config.max_open_files, config.close_inactive) == (2.0, 50, 600.0)
    assert (config.rotate_wait, config.deleted_file_timeout, config.drain_timeout) == (1.0, 30.0, 2.0)
    assert (config.retry_initial_backoff, config.retry_max_backoff) == (0.1, 60.0)
    # Left-out inputs and sinks come from the default.
    assert [i.name for i in config.inputs] == ["host", "containers"]
    assert [s.type for s in config.sinks] == ["stdout"]


def test_enabled_false() -> None:
    assert parse("logs: {enabled: false}").enabled is False


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ("logs:\n  inputz: []\n", "logs.inputz", 2, "unknown key"),
        (
            "logs:\n  inputs:\n    - paths: [/a/*.log]\n      format: json\n",
            "logs.inputs[0].format",
            4,
            "expected one of",
        ),
        ("logs:\n  inputs:\n    - paths: [relative/*.log]\n", "logs.inputs[0].paths", 3, "absolute"),
        ("logs:\n  inputs:\n    - name: a\n", "logs.inputs[0]", 3, "'paths' is required"),
        (
            "logs:\n  inputs:\n    - {paths: [/a], multiline: {start_pattern: '('}}\n",
            "logs.inputs[0].multiline.start_pattern",
            3,
            "invalid regular expression",
        ),
        ("logs:\n  batch_timeout: soon\n", "logs.batch_timeout", 2, "duration"),
        ("logs:\n  buffer_max_bytes: lots\n", "logs.buffer_max_bytes", 2, "size"),
        ("logs:\n  max_open_files: 0\n", "logs.max_open_files", 2, "greater than 0"),
        ("logs:\n  state_dir: var/lib\n", "logs.state_dir", 2, "absolute"),
        ("logs:\n  sinks:\n    - {type: kafka}\n", "logs.sinks[0].type", 3, "unknown sink type"),
        ("logs:\n  sinks:\n    - {type: file}\n", "logs.sinks[0].path", 3, "required"),
        ("logs:\n  sinks: []\n", "logs.sinks", 2, "at least one sink"),
        (
            "logs:\n  inputs:\n    - {name: a, paths: [/a]}\n    - {name: a, paths: [/b]}\n",
            "logs.inputs[1].name",
            4,
            "duplicate input name",
        ),
        (
            "logs:\n  retry_initial_backoff: 10s\n  retry_max_backoff: 1s\n",
            "logs.retry_max_backoff",
            3,
            "smaller",
        ),
    ],
)
def test_errors_name_key_file_and_line(text: str, key: str, line: int, words: str) -> None:
    error = error_of(text)
    assert error.key == key
    assert error.file == "agent.yaml"
    assert error.line == line
    assert words in error.message
    assert str(error).startswith(f"agent.yaml:{line}: {key}: ")


def test_the_file_sink_output_is_excluded_from_every_input(tmp_path: Path) -> None:
    config = parse("""
logs:
  inputs:
    - {name: all, paths: ["/var/log/**/*", "/var/log/nodeagent/*.jsonl"]}
  sinks:
    - {type: file, path: /var/log/nodeagent/out.jsonl}
""")
    matcher = PathMatcher(config.inputs[0].paths, config.inputs[0].exclude)
    assert not matcher.matches("/var/log/nodeagent/out.jsonl")
    assert not matcher.matches("/var/log/nodeagent/out.jsonl.1")
    assert matcher.matches("/var/log/nodeagent/other.jsonl")
    assert matcher.matches("/var/log/syslog")
    # Reached through a symlink: the target decides.
    assert not matcher.matches("/var/log/link.log", "/var/log/nodeagent/out.jsonl")


def test_the_agents_own_pod_logs_are_excluded_when_the_pod_is_known() -> None:
    environ = {
        "NODEAGENT_POD_NAME": "nodeagent-x7k2p",
        "NODEAGENT_POD_NAMESPACE": "monitoring",
        "NODEAGENT_POD_UID": "5c3e-11",
    }
    config = parse("logs:\n  sinks: [{type: stdout}]\n", environ)
    containers = next(i for i in config.inputs if i.name == "containers")
    matcher = PathMatcher(containers.paths, containers.exclude)
    assert not matcher.matches("/var/log/pods/monitoring_nodeagent-x7k2p_5c3e-11/agent/0.log")
    assert matcher.matches("/var/log/pods/monitoring_other_5c3e-12/agent/0.log")
    links = PathMatcher(["/var/log/containers/*.log"], own_output_excludes((), environ))
    assert not links.matches("/var/log/containers/nodeagent-x7k2p_monitoring_agent-" + "a" * 64 + ".log")
    assert links.matches("/var/log/containers/web_monitoring_agent-" + "a" * 64 + ".log")
    without = parse("logs:\n  sinks: [{type: stdout}]\n", {})
    assert all(not i.exclude for i in without.inputs)


def test_input_defaults() -> None:
    config = parse("logs:\n  inputs:\n    - paths: [/a/*.log]\n")
    assert config.inputs[0] == InputConfig(name="input0", paths=("/a/*.log",))
