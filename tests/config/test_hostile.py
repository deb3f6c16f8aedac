"""Hostile config files (issue 12, item 8): one line naming file (and key), exit 2, never a traceback.

Each reproduction runs the real command, ``nodeagent run --config F`` or ``nodeagent metrics --config F``,
in a subprocess. A loader + schema fuzzer checks that any text gives a value or a ConfigError.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError, Field, load_yaml, resolve_settings, settings_table
from nodeagent.config.logs import parse_logs_config

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nodeagent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang guard only: a refused config exits at once
        env=env,
        check=False,
    )


def refused(command: str, config: Path) -> str:
    """The one stderr line of a refused config (exit 2, no traceback)."""
    extra = ["--web.listen-address=127.0.0.1:0"] if command == "run" else []
    result = run_cli(command, f"--config={config}", *extra)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, lines[:20]
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"nodeagent: error: {config}")
    assert len(lines[0]) < 1000
    return lines[0]


def alias_bomb() -> str:
    lines = ["web:", "  a0: &a0 {k: x}"]
    for level in range(1, 10):
        refs = ", ".join(f"k{j}: *a{level - 1}" for j in range(10))
        lines.append(f"  a{level}: &a{level} {{{refs}}}")
    return "\n".join(lines) + "\n"


SETTINGS_CASES = {
    "control character": ("web:\n  listen-address: a\x01b\n", ":2: invalid YAML"),
    "control character quoted": ('web:\n  listen-address: "a\x07b"\n', ":2: invalid YAML"),
    "complex key": ("? [a, b]\n: 1\n", ":1: keys must be plain values"),
    "inf integer": ("web:\n  max-requests: .inf\n", ":2: web.max-requests: expected an integer"),
    "nan integer": ("web:\n  max-requests: .nan\n", ":2: web.max-requests: expected an integer"),
    "5000-digit integer": ("node-name: " + "9" * 5000 + "\n", ":1: invalid YAML value"),
    "5000-deep nesting": ("web: " + "[" * 5000 + "]" * 5000 + "\n", ":1: nested deeper than"),
    "5000-deep mappings": ("web: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", ":1: nested deeper than"),
    "alias bomb": (alias_bomb(), "once aliases are expanded"),
    "alias loop": ("web: &a [*a]\n", ":1: an alias inside its own anchor"),
    "newline in a key": ('web:\n  "a\\nb": 1\n', ":2: web.a\\nb: unknown setting"),
}


@pytest.mark.parametrize("command", ["run", "metrics"])
@pytest.mark.parametrize("case", sorted(SETTINGS_CASES))
def test_hostile_settings_are_one_line(tmp_path: Path, command: str, case: str) -> None:
    text, expected = SETTINGS_CASES[case]
    config = tmp_path / "agent.yaml"
    config.write_text(text)
    assert expected in refused(command, config)


LOGS_CASES = {
    "inf size": ("logs:\n  buffer_max_bytes: .inf\n", ":2: logs.buffer_max_bytes: expected a size"),
    "400-digit size": (
        "logs:\n  buffer_max_bytes: " + "9" * 400 + "\n",
        ":2: logs.buffer_max_bytes: size out",
    ),
    "400-digit size text": ("logs:\n  buffer_max_bytes: " + "9" * 400 + "KiB\n", ":2: logs.buffer_max_bytes"),
    "nan duration": ("logs:\n  batch_timeout: .nan\n", ":2: logs.batch_timeout: expected a duration"),
    "inf duration": ("logs:\n  batch_timeout: .inf\n", ":2: logs.batch_timeout: duration too long"),
    "nan duration text": ("logs:\n  batch_timeout: nan\n", ":2: logs.batch_timeout: expected a duration"),
    "inf integer": ("logs:\n  max_open_files: .inf\n", ":2: logs.max_open_files: expected an integer"),
    "nan multiline timeout": (
        "logs:\n  inputs:\n    - paths: [/a]\n      multiline: {start_pattern: x, timeout: .nan}\n",
        ":4: logs.inputs[0].multiline.timeout",
    ),
    "list as a sink option key": (
        "logs:\n  sinks:\n    - type: loki\n      url: http://127.0.0.1:1\n      static_labels: {[a]: b}\n",
        ":5: keys must be plain values",
    ),
}


@pytest.mark.parametrize("case", sorted(LOGS_CASES))
def test_hostile_logs_section_is_one_line(tmp_path: Path, case: str) -> None:
    text, expected = LOGS_CASES[case]
    config = tmp_path / "agent.yaml"
    config.write_text(text)
    assert expected in refused("run", config)


def test_a_huge_config_file_is_not_read_whole(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    with config.open("w") as out:
        out.write('web:\n  listen-address: "127.0.0.1:0"\n')
        out.write("# padding\n" * 300_000)  # 3 MB of comments
    assert "config file larger than" in refused("metrics", config)
    assert "config file larger than" in refused("metrics", Path("/dev/zero"))


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_bytes(b"web:\n  listen-address: \xff\n")
    assert f"{config}:2: not UTF-8 text" in refused("run", config)


# -- fuzzing the loader and the schema ----------------------------------------------------------------

KEYS = [
    "web", "listen-address", "max_requests", "telemetry-path", "log", "level", "collector", "cpu", "enabled",
    "logs", "inputs", "sinks", "paths", "type", "url", "name", "multiline", "start_pattern", "timeout",
    "batch_timeout", "buffer_max_bytes", "max_line_bytes", "labels", "headers", "static_labels", "path",
    "stdout", "file", "loki", "http", "syslog", "address", "facility", "node-name", "metrics", "state_dir",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["/a/*.log", "http://127.0.0.1:1", "1s", "1KiB", ".inf", ".nan", "stdout", "loki", "file"]
    ),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
SINK_OPTIONS = st.dictionaries(
    st.sampled_from([*KEYS, "gzip", "method", "tenant_id", "password"]), DOCUMENTS, max_size=4
)
SINKS = st.lists(
    st.builds(
        lambda kind, options: {**options, "type": kind},
        st.sampled_from(["stdout", "file", "loki", "http", "syslog"]),
        SINK_OPTIONS,
    ),
    max_size=3,
)
INPUTS = st.lists(st.dictionaries(st.sampled_from(KEYS), DOCUMENTS, max_size=5), max_size=3)
LOGS_SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "inputs": INPUTS,
        "sinks": SINKS,
        "batch_timeout": SCALARS,
        "buffer_max_bytes": SCALARS,
        "max_open_files": SCALARS,
    },
)
YAML_TEXT = st.text(alphabet=st.sampled_from(list("ab:- \n[]{},&*!?|>'\"#.%@`\t\x01\x85\ufeff")), max_size=80)


@cache
def table() -> dict[str, Field]:
    return settings_table()


def load_and_read(path: Path) -> None:
    """Everything `run` does with a config file before it starts; ConfigError is the only way out."""
    try:
        resolved = resolve_settings(table(), str(path), {})
        parse_logs_config(resolved.structured.get("logs"), source=str(path), environ={})
    except ConfigError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=DOCUMENTS)
def test_fuzz_documents_give_a_value_or_a_config_error(tmp_path: Path, document: object) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"logs": document} if isinstance(document, list) else document))
    load_and_read(path)


@settings(max_examples=200, deadline=None)
@given(section=LOGS_SECTIONS)
def test_fuzz_logs_sections_give_a_value_or_a_config_error(section: dict) -> None:
    try:
        parse_logs_config(load_yaml(yaml.safe_dump({"logs": section}), "fuzz.yaml")["logs"], environ={})
    except ConfigError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=YAML_TEXT, prefix=st.sampled_from(["", "web:\n  ", "logs:\n  sinks:\n    - ", "logs:\n  "]))
def test_fuzz_text_gives_a_value_or_a_config_error(tmp_path: Path, text: str, prefix: str) -> None:
    with contextlib.suppress(ConfigError):
        load_yaml(prefix + text, "fuzz.yaml")
    path = tmp_path / "fuzz.yaml"
    path.write_text(prefix + text, encoding="utf-8", errors="surrogatepass")
    load_and_read(path)
