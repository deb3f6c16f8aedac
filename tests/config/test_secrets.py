"""Secrets in the configuration (issue 12, item 9): redaction, ``${ENV}`` expansion, refusals at startup,
and the agent's own log lines (start-up, sink retries) without credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodeagent.config import ConfigError, load_yaml, resolve_settings, settings_table
from nodeagent.config.environment import expand_environment, expand_string
from nodeagent.config.logs import parse_logs_config
from nodeagent.config.secrets import redact_text, redact_url, secret_values
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-pw"
AGENT = [sys.executable, "-m", "nodeagent"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pass@h:3100/x", "http://user:***@h:3100/x"),
        ("https://token@h/", "https://***@h/"),
        ("http://h:3100/x?a=b", "http://h:3100/x?a=b"),
        ("http://u:p@[::1]:80/", "http://u:***@[::1]:80/"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_and_headers() -> None:
    text = "POST http://u:s3cr3t@h/x failed; also ftp://tok@h and Bearer abc123 here"
    assert (
        redact_text(text, ["abc123"]) == "POST http://u:***@h/x failed; also ftp://***@h and Bearer *** here"
    )
    headers = {"Authorization": "Basic dTpw", "Cookie": "c00kie", "X-Api-Key": "k3y", "X-A": "1"}
    # Longest first; "1" is too short to mask.
    assert secret_values(headers, ["pw1"]) == ("Basic dTpw", "c00kie", "dTpw", "k3y", "pw1")


def test_config_errors_never_echo_url_credentials() -> None:
    text = f"logs:\n  sinks:\n    - type: loki\n      url: http://user:{PASSWORD}@h:99999\n"
    with pytest.raises(ConfigError) as error:
        parse_logs_config(load_yaml(text, "a.yaml")["logs"], environ={})
    assert str(error.value).startswith("a.yaml:4: logs.sinks[0].url: bad port")
    assert PASSWORD not in str(error.value) and "user:***@" in str(error.value)


# -- ${ENV} ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("${TOKEN}", "t0k"),
        ("Bearer ${TOKEN}", "Bearer t0k"),
        ("${UNSET:-fallback}", "fallback"),
        ("${UNSET:-}", ""),
        ("${TOKEN:-fallback}", "t0k"),
        ("$${TOKEN}", "${TOKEN}"),
        ("cost: $$5", "cost: $5"),
        ("^/(dev|proc)($|/)", "^/(dev|proc)($|/)"),  # a lone $ stays: regular expressions use it
        ("${INJECT}", "a\nb: c"),
    ],
)
def test_expand_string(text: str, value: str) -> None:
    assert expand_string(text, {"TOKEN": "t0k", "INJECT": "a\nb: c"}) == value


def test_expansion_errors_name_key_and_variable() -> None:
    document = load_yaml("logs:\n  sinks:\n    - type: http\n      bearer_token: ${NOPE}\n", "a.yaml")
    with pytest.raises(ConfigError) as error:
        expand_environment(document, {})
    assert str(error.value).startswith(
        "a.yaml:4: logs.sinks[0].bearer_token: environment variable NOPE is not set"
    )
    with pytest.raises(ConfigError, match="malformed"):
        expand_environment(load_yaml("a: ${1X}\n", "a.yaml"), {})


def test_expansion_is_once_even_through_aliases() -> None:
    document = load_yaml("a: &x ['$${V}']\nb: *x\n", "a.yaml")
    expanded = expand_environment(document, {"V": "v"})
    assert expanded["a"] == ["${V}"] and expanded["b"] == ["${V}"]


def test_the_config_file_is_expanded_after_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODEAGENT_TEST_NODE", "node-7: {x: 1}")  # YAML in a value stays a string
    monkeypatch.setenv("NODEAGENT_TEST_TOKEN", "tok-1")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "node-name: ${NODEAGENT_TEST_NODE}\n"
        "web: {max-requests: '${NODEAGENT_TEST_LIMIT:-7}'}\n"
        "logs:\n  sinks:\n    - {type: http, url: 'http://127.0.0.1:1/',"
        " bearer_token: '${NODEAGENT_TEST_TOKEN}'}\n"
    )
    settings = resolve_settings(settings_table(), str(config), {})
    assert settings["node-name"] == "node-7: {x: 1}"
    assert settings["web.max-requests"] == 7
    logs = parse_logs_config(settings.structured["logs"], source=str(config), environ={})
    assert logs.sinks[0].options["bearer_token"] == "tok-1"


# -- through the real command ------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("sink", "words"),
    [
        (
            f"{{type: loki, url: 'http://user:{PASSWORD}@127.0.0.1:1',"
            " headers: {Authorization: 'Bearer x'}}",
            ":4: logs.sinks[0].url: credentials in the URL and an Authorization header",
        ),
        (
            "{type: http, url: 'http://127.0.0.1:1', bearer_token: '${NODEAGENT_UNSET_TOKEN}'}",
            ":4: logs.sinks[0]",
        ),
    ],
)
def test_refused_at_startup_in_one_line(tmp_path: Path, sink: str, words: str) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"logs:\n  state_dir: {tmp_path}\n  sinks:\n    - {sink}\n")
    result = run_cli("run", f"--config={config}", "--web.listen-address=127.0.0.1:0")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert words in line and PASSWORD not in line


def test_startup_and_retry_logs_carry_no_credentials(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("hello\n")
    url = f"http://user:{PASSWORD}@127.0.0.1:{free_port()}/ingest"  # nobody listens: retried
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"logs:\n  state_dir: {tmp_path / 'state'}\n  retry_initial_backoff: 50ms\n"
        f"  inputs:\n    - {{paths: ['{tmp_path}/logs/*.log'], read_from: head}}\n"
        f"  sinks:\n    - {{type: http, url: '{url}', timeout: 1s}}\n"
    )
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [
                *AGENT,
                "run",
                f"--config={config}",
                "--no-metrics",
                f"--web.listen-address=127.0.0.1:{free_port()}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 30  # a hang guard: the first retry comes within a second
            while "retrying" not in stderr_path.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, stderr_path.read_text()
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    log = stderr_path.read_text()
    assert "retrying" in log and 'msg="nodeagent started"' in log
    assert PASSWORD not in log
    assert "http=http:http://user:***@127.0.0.1" in log  # the start-up line names the sink, redacted
    assert "http://user:***@127.0.0.1" in log.split("retrying", 1)[1]
