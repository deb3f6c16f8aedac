"""The command line: generated flags, the commands, the agent's own log lines, signals and exit codes."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

from nodeagent import __version__, cli
from nodeagent.agentlog import setup_logging
from nodeagent.config import CORE_SETTINGS, Settings, settings_table
from nodeagent.metrics.registry import all_collectors, enabled_collectors
from tests.conftest import NODE_EXPORTER_FIXTURE, ROOT, free_port, require_shared

AGENT = [sys.executable, "-m", "nodeagent"]


def run_parser(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser("run", settings_table()).parse_args(["run", *argv])


def test_every_registered_collector_gets_its_flags() -> None:
    parser = cli.build_parser("run", settings_table())
    flags = {
        opt
        for action in parser._subparsers._group_actions[0].choices["run"]._actions
        for opt in action.option_strings
    }
    for name, cls in all_collectors().items():
        assert f"--collector.{name}" in flags
        assert f"--no-collector.{name}" in flags
        for option in cls.options:
            assert f"--collector.{name}.{option.name}" in flags
    for setting in CORE_SETTINGS:
        assert setting.flag in flags


def test_collector_switch_forms() -> None:
    table = settings_table()
    args = run_parser(["--no-collector.loadavg"])
    assert cli.resolve_from_args(args, table)["collector.loadavg"] is False
    args = run_parser(["--collector.disable-defaults", "--collector.loadavg"])
    settings = cli.resolve_from_args(args, table)
    assert enabled_collectors(settings.values, settings["collector.disable-defaults"]) == ["loadavg"]
    args = run_parser(["--collector.loadavg=false"])
    assert cli.resolve_from_args(args, table)["collector.loadavg"] is False
    args = run_parser([])
    assert cli.resolve_from_args(args, table)["collector.loadavg"] is None  # registry default applies
    assert "loadavg" in enabled_collectors(cli.resolve_from_args(args, table).values)


def test_boolean_option_forms() -> None:
    table = settings_table()
    assert (
        cli.resolve_from_args(run_parser(["--web.disable-exporter-metrics"]), table)[
            "web.disable-exporter-metrics"
        ]
        is True
    )
    assert cli.resolve_from_args(run_parser(["--no-logs"]), table)["logs"] is False
    assert cli.resolve_from_args(run_parser(["--logs"]), table)["logs"] is True
    assert cli.resolve_from_args(run_parser([]), table)["logs"] is None


def test_node_name_defaults_to_env_then_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    from nodeagent.config import node_name

    table = settings_table()
    monkeypatch.setenv("NODE_NAME", "worker-7")
    assert node_name(cli.resolve_from_args(run_parser([]), table)) == "worker-7"
    assert node_name(cli.resolve_from_args(run_parser(["--node-name=n1"]), table)) == "n1"
    monkeypatch.delenv("NODE_NAME")
    assert node_name(cli.resolve_from_args(run_parser([]), table)) == socket.gethostname()


def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith(f"nodeagent {__version__} ")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "check-placement" in out and "'nodeagent [FLAGS]' is 'nodeagent run [FLAGS]'" in " ".join(
        out.split()
    )


def test_no_command_runs_the_agent_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """node_exporter with no arguments serves :9100, and so does Debian's unit with its empty ARGS."""
    seen: list[Settings] = []

    def fake_run(settings: Settings, reread: object = None) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(cli, "cmd_run", fake_run)
    assert cli.main([]) == 0
    assert seen[0]["web.listen-address"] == ":9100"
    assert cli.main(["--web.listen-address=127.0.0.1:9101", "--no-collector.loadavg"]) == 0
    assert seen[1]["web.listen-address"] == "127.0.0.1:9101"
    assert seen[1]["collector.loadavg"] is False


def test_metrics_command_prints_one_scrape(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    code = cli.main(
        [
            "metrics",
            f"--path.procfs={fixture / 'proc'}",
            "--collector.disable-defaults",
            "--collector.loadavg",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "node_load1 0.21" in lines  # the fixture's /proc/loadavg
    assert "node_load15 0.39" in lines
    assert 'node_scrape_collector_success{collector="loadavg"} 1' in lines
    assert not [
        line for line in lines if line.startswith("node_scrape_collector_success") and "loadavg" not in line
    ]
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    assert any(line.startswith("nodeagent_build_info{") for line in lines)


def test_metrics_command_without_exporter_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    assert (
        cli.main(
            [
                "metrics",
                f"--path.procfs={fixture / 'proc'}",
                "--collector.disable-defaults",
                "--collector.loadavg",
                "--web.disable-exporter-metrics",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "node_load1 0.21" in out
    assert "\nprocess_" not in out and "\npython_" not in out
    assert "nodeagent_build_info{" in out


class _FakePlacementCli(types.ModuleType):
    """Stands in for nodeagent.placement.cli: records what the CLI hands it."""

    def __init__(self) -> None:
        super().__init__("nodeagent.placement.cli")
        self.seen: list[argparse.Namespace] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--nodes", required=True)

    def run(self, args: argparse.Namespace) -> int:
        self.seen.append(args)
        return 3


def _use_placement_module(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    import nodeagent.placement as package

    monkeypatch.setitem(sys.modules, "nodeagent.placement.cli", module)
    monkeypatch.delattr(package, "cli", raising=False)


def test_check_placement_delegates_to_placement_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakePlacementCli()
    _use_placement_module(monkeypatch, fake)
    assert cli.main(["check-placement", "--nodes", "n.json"]) == 3
    assert fake.seen[0].nodes == "n.json"


def test_broken_placement_module_breaks_only_check_placement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_placement_module(monkeypatch, None)  # None in sys.modules: importing it raises ImportError
    assert cli.main(["check-placement"]) == 1
    assert "check-placement is not available" in capsys.readouterr().err
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    assert (
        cli.main(
            [
                "metrics",
                f"--path.procfs={fixture / 'proc'}",
                "--collector.disable-defaults",
                "--collector.loadavg",
            ]
        )
        == 0
    )
    assert "node_load1 0.21" in capsys.readouterr().out


# --- the agent's own log lines ---------------------------------------------------------------------


def _log_line(fmt: str, background: bool = False) -> str:
    stream = io.StringIO()
    with setup_logging("info", fmt, stream=stream, background=background):
        logging.getLogger("nodeagent.metrics").error(
            "collector failed", extra={"collector": "cpu", "err": 'bad "x"\nline 2'}
        )
        logging.getLogger("nodeagent.test").debug("not shown at info")
    return stream.getvalue()


def test_logfmt_line_carries_extra_fields() -> None:
    out = _log_line("logfmt")
    assert out.count("\n") == 1
    assert out.startswith("ts=")
    assert ' level=error msg="collector failed" logger=nodeagent.metrics collector=cpu ' in out
    assert 'err="bad \\"x\\"\\nline 2"' in out


def test_json_line_carries_extra_fields() -> None:
    out = _log_line("json")
    record = json.loads(out)
    assert record["level"] == "error"
    assert record["msg"] == "collector failed"
    assert record["collector"] == "cpu"
    assert record["err"] == 'bad "x"\nline 2'
    assert record["ts"].endswith("Z")


def test_background_logging_flushes_on_close() -> None:
    assert "collector=cpu" in _log_line("logfmt", background=True)


def test_exceptions_stay_on_one_line() -> None:
    stream = io.StringIO()
    with setup_logging("debug", "logfmt", stream=stream, background=False):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("nodeagent.test").exception("failed")
    out = stream.getvalue()
    assert out.count("\n") == 1
    assert "err=RuntimeError('boom') stack=\"Traceback" in out


# --- the real entry point as a process -------------------------------------------------------------


def _wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"agent exited early with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail("agent did not become ready")


def _start_agent(port: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*AGENT, "run", "--no-logs", f"--web.listen-address=127.0.0.1:{port}", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_agent_with_exit_0(signum: signal.Signals) -> None:
    port = free_port()
    proc = _start_agent(port)
    try:
        _wait_ready(port, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert b"nodeagent_build_info" in response.read()
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0  # the bound for a clean stop
        err = proc.stderr.read()
        assert 'msg="shutting down"' in err and f"signal={signum.name}" in err
        assert "msg=stopped" in err
        for line in err.splitlines():
            assert line.startswith("ts="), line  # one logfmt line per event
    finally:
        _stop(proc)


def test_port_in_use_exits_2_naming_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = _start_agent(port)
        try:
            assert proc.wait(timeout=20) == 2
            err = proc.stderr.read()
            assert f"cannot listen on 127.0.0.1:{port}: address already in use" in err
        finally:
            _stop(proc)


def test_bad_config_file_exits_2_before_listening(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("web:\n  max-requests: lots\n")
    port = free_port()
    proc = _start_agent(port, f"--config={config}", "--log.format=json")
    try:
        assert proc.wait(timeout=20) == 2
        err = proc.stderr.read().strip().splitlines()
        assert err == [f"nodeagent: error: {config}:2: web.max-requests: expected an integer, got 'lots'"]
    finally:
        _stop(proc)


def test_logs_only_agent_ships_and_drains_on_sigterm(tmp_path: Path) -> None:
    """--no-metrics with the real log shipper: /metrics carries its metrics, SIGTERM drains and exits 0."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("first line\n")
    shipped = tmp_path / "shipped.jsonl"
    config = tmp_path / "agent.yaml"
    config.write_text(
        "logs:\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        f"  inputs: [{{name: app, paths: ['{logs}/*.log'], read_from: head}}]\n"
        f"  sinks: [{{type: file, path: '{shipped}'}}]\n"
    )
    port = free_port()
    env = {**os.environ, "NODE_NAME": "node-under-test"}
    proc = subprocess.Popen(
        [*AGENT, "run", "--no-metrics", f"--config={config}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_ready(port, proc)  # ready only once the shipper has started
        with (logs / "app.log").open("a") as handle:
            handle.write("second line\n")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
        assert 'nodeagent_logs_lines_read_total{input="app"}' in body
        assert "node_scrape_collector_success" not in body  # no node collectors
        deadline = time.monotonic() + 10
        while "second line" not in (shipped.read_text() if shipped.exists() else ""):
            assert time.monotonic() < deadline, "the second line was not shipped"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        records = [json.loads(line) for line in shipped.read_text().splitlines()]
        assert [r["message"] for r in records] == ["first line", "second line"]
        assert {r["node"] for r in records} == {"node-under-test"}
        assert (tmp_path / "state").is_dir()  # checkpoints committed there
    finally:
        _stop(proc)
