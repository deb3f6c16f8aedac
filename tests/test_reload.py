"""SIGHUP reloads the configuration of a running agent (a real process, real signals).

A good new configuration: new collectors on the next scrape, the log shipper restarted with the new inputs
and sinks from the same checkpoints (no line lost, none repeated). A bad one: one error line, the running
configuration stays, ``nodeagent_config_last_reload_successful`` says 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, free_port

TIMEOUT = 20.0


class Agent:
    def __init__(self, config: Path, port: int) -> None:
        self.port = port
        self.log: list[dict[str, object]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nodeagent", "run", "--config", str(config), "--log.format=json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.log.append(json.loads(line))
            except ValueError:
                self.log.append({"msg": line.strip()})

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def logged(self, message: str) -> list[dict[str, object]]:
        return [record for record in list(self.log) if record.get("msg") == message]

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)


def wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running(config: Path, port: int) -> Iterator[Agent]:
    agent = Agent(config, port)
    try:
        wait_for(lambda: agent.logged("log shipper started"), "the agent to start")
        yield agent
    finally:
        agent.proc.send_signal(signal.SIGTERM)
        agent.proc.wait(timeout=15)
        assert agent.proc.returncode == 0, agent.log[-5:]


def write_config(path: Path, tmp_path: Path, port: int, *, collectors: str, inputs: list[str]) -> None:
    listed = "\n".join(
        f'    - {{name: {name}, paths: ["{tmp_path}/{name}/*.log"], read_from: head}}' for name in inputs
    )
    path.write_text(
        f"""
web: {{listen-address: "127.0.0.1:{port}"}}
collector: {{disable-defaults: true, {collectors}}}
logs:
  state_dir: {tmp_path / "state"}
  batch_timeout: 50ms
  rescan_interval: 1s
  inputs:
{listed}
  sinks:
    - {{type: file, path: {tmp_path / "out.jsonl"}}}
"""
    )


def delivered(tmp_path: Path) -> list[str]:
    out = tmp_path / "out.jsonl"
    if not out.exists():
        return []
    return [json.loads(line)["message"] for line in out.read_text().splitlines() if line]


def append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.writelines(f"{line}\n" for line in lines)


def test_sighup_applies_a_new_configuration_without_losing_or_repeating_lines(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    write_config(config, tmp_path, port, collectors="loadavg: {enabled: true}", inputs=["apps"])
    append(tmp_path / "apps" / "a.log", [f"app {i}" for i in range(100)])
    append(tmp_path / "system" / "s.log", [f"sys {i}" for i in range(50)])
    with running(config, port) as agent:
        wait_for(lambda: len(delivered(tmp_path)) == 100, "the first input's lines")
        assert "node_load1 " in agent.metrics() and "node_memory_MemTotal_bytes" not in agent.metrics()

        write_config(
            config,
            tmp_path,
            port,
            collectors="loadavg: {enabled: true}, meminfo: {enabled: true}",
            inputs=["apps", "system"],
        )
        agent.reload()
        wait_for(lambda: agent.logged("configuration reloaded"), "the reload")
        append(tmp_path / "apps" / "a.log", [f"app {i}" for i in range(100, 120)])
        wait_for(lambda: len(delivered(tmp_path)) >= 170, "the new input's lines")
        assert agent.proc.poll() is None
        assert "node_memory_MemTotal_bytes" in agent.metrics()
        assert "\nnodeagent_config_last_reload_successful 1\n" in agent.metrics()
        reloaded = agent.logged("configuration reloaded")[-1]
        assert reloaded["logs"] == "restarting" and "system(head)" in str(reloaded["inputs"])
    messages = delivered(tmp_path)
    assert sorted(messages) == sorted([f"app {i}" for i in range(120)] + [f"sys {i}" for i in range(50)])


def test_sighup_with_a_bad_configuration_keeps_the_running_one(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    write_config(config, tmp_path, port, collectors="loadavg: {enabled: true}", inputs=["apps"])
    append(tmp_path / "apps" / "a.log", ["before"])
    with running(config, port) as agent:
        wait_for(lambda: delivered(tmp_path) == ["before"], "the first line")
        config.write_text(config.read_text().replace("batch_timeout: 50ms", "batch_timeout: soon"))
        agent.reload()
        wait_for(
            lambda: agent.logged("configuration reload refused; the running configuration stays"), "refusal"
        )
        refusal = agent.logged("configuration reload refused; the running configuration stays")[0]
        assert "batch_timeout" in str(refusal["err"]) and str(config) in str(refusal["err"])
        assert "\nnodeagent_config_last_reload_successful 0\n" in agent.metrics()
        append(tmp_path / "apps" / "a.log", ["after"])
        wait_for(lambda: delivered(tmp_path) == ["before", "after"], "the old configuration to keep shipping")
        assert "node_load1 " in agent.metrics()
        assert agent.proc.poll() is None


def test_sighup_says_which_settings_need_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    write_config(config, tmp_path, port, collectors="loadavg: {enabled: true}", inputs=["apps"])
    with running(config, port) as agent:
        config.write_text(config.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"))
        agent.reload()
        wait_for(lambda: agent.logged("these settings take effect only after a restart"), "the warning")
        warning = agent.logged("these settings take effect only after a restart")[0]
        assert warning["settings"] == "web.listen-address"
        assert "node_load1 " in agent.metrics()  # still on the old port
