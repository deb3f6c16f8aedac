"""Hostile input against the real agent (``python -m nodeagent run`` on 127.0.0.1): a FIFO and links in
the textfile directory, a huge textfile, a collector wedged in the kernel, descriptor exhaustion by idle
connections, bytes that are not UTF-8 in labels. Scrapes keep answering, logs keep flowing, RSS stays
low, /readyz tells the truth and SIGTERM still exits in time (issue 12, items 3-6)."""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port

# The agent with tests/wedge_collector.py registered. Imported only in the agent's process: importing it
# here would register the collector in the test process too.
RUN_AGENT = "import tests.wedge_collector; from nodeagent.cli import main; raise SystemExit(main())"

SHUTDOWN_LIMIT = 5.0  # seconds from SIGTERM to exit (the pod's grace period)


class Agent:
    """One agent process; stderr to a file so that a chatty agent never blocks on a pipe."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        config: str = "",
        preexec: Callable[[], None] | None = None,
        wedge: bool = False,
    ) -> None:
        self.port = free_port()
        self.stderr_path = tmp_path / f"agent-{self.port}.stderr"
        config_path = tmp_path / f"agent-{self.port}.yaml"
        config_path.write_text(f"web:\n  listen-address: 127.0.0.1:{self.port}\n{config}")
        command = [sys.executable, "-c", RUN_AGENT] if wedge else [sys.executable, "-m", "nodeagent"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [*command, "run", "--config", str(config_path), "--node-name", "hostile", *args],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                cwd=ROOT,
                preexec_fn=preexec,
            )
        self.wait_for(lambda: self.try_get("/healthz")[0] == 200, "the agent did not start")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], message: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{message}:\n{self.stderr()[-3000:]}")

    def get(self, path: str, timeout: float = 10, **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def try_get(self, path: str, timeout: float = 2) -> tuple[int, bytes]:
        try:
            status, _, body = self.get(path, timeout=timeout)
            return status, body
        except OSError:
            return 0, b""

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def terminate(self) -> tuple[int, float]:
        """(exit code, seconds from SIGTERM to exit)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -9
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


Start = Callable[..., Agent]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """start(*collectors, textfiles=DIR, args=(...), **Agent options): an agent running only those
    collectors (and the textfile collector on DIR when given)."""
    started: list[Agent] = []

    def start_agent(
        *collectors: str, textfiles: Path | None = None, args: tuple[str, ...] = (), **options: Any
    ) -> Agent:
        flags = ["--collector.disable-defaults", *(f"--collector.{name}" for name in collectors)]
        if textfiles is not None:
            flags += ["--collector.textfile", f"--collector.textfile.directory={textfiles}"]
        agent = Agent(tmp_path, *flags, *args, **options)
        started.append(agent)
        return agent

    yield start_agent
    for agent in started:
        agent.kill()


def logs_config(tmp_path: Path) -> tuple[str, Path, Path]:
    """A logs section tailing tmp_path/logs/*.log into a file sink: (yaml, log file, sink output)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log_file = logs / "app.log"
    log_file.touch()
    out = tmp_path / "out.jsonl"
    section = f"""logs:
  state_dir: {tmp_path / "state"}
  batch_timeout: 50ms
  rescan_interval: 1s
  inputs:
    - name: hostile
      paths: ["{logs}/*.log"]
      format: plain
  sinks:
    - {{type: file, path: {out}}}
"""
    return section, log_file, out


def shipped(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [json.loads(line)["message"] for line in out.read_bytes().splitlines() if line.strip()]


def lines_of(body: bytes) -> list[str]:
    return body.decode().splitlines()


def concurrently(count: int, fn: Callable[[], object]) -> list[object]:
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = fn()
        except Exception as exc:  # a timeout is a result here
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# --- item 3: a FIFO in the textfile directory -----------------------------------------------------


def test_a_fifo_in_the_textfile_directory_wedges_nothing(tmp_path: Path, start: Start) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "good.prom").write_text("good_metric 1\n")
    os.mkfifo(textfiles / "wedge.prom")
    section, log_file, out = logs_config(tmp_path)
    agent = start("loadavg", textfiles=textfiles, config=section)
    agent.wait_for(lambda: agent.try_get("/readyz")[0] == 200, "never ready")
    # More scrapes at once than the old shared thread pool had threads (min(32, cpus + 4)).
    results = concurrently(8, lambda: agent.get("/metrics", timeout=10))
    for result in results:
        assert isinstance(result, tuple), result
        status, _, body = result
        assert status == 200
        assert "good_metric 1" in lines_of(body)
        assert "node_textfile_scrape_error 1" in lines_of(body)
    with open(log_file, "a") as fh:
        fh.write("line after the scrapes\n")
    agent.wait_for(lambda: "line after the scrapes" in shipped(out), "logs stopped flowing")
    assert agent.try_get("/readyz")[0] == 200
    code, seconds = agent.terminate()
    assert code == 0 and seconds < SHUTDOWN_LIMIT, (code, seconds, agent.stderr()[-2000:])


def test_a_wedged_collector_costs_one_thread_and_readiness_says_so(tmp_path: Path, start: Start) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    section, log_file, out = logs_config(tmp_path)
    agent = start(
        "loadavg",
        "wedge",
        args=(f"--collector.wedge.fifo={fifo}", "--web.scrape-timeout=1s", "--web.stall-timeout=2s"),
        config=section,
        wedge=True,
    )
    try:
        agent.wait_for(lambda: agent.try_get("/readyz")[0] == 200, "never ready")
        status, _, body = agent.get("/metrics")  # waits for the wedged collector, then gives up
        assert status == 503 and b"timed out" in body
        for _ in range(10):  # more than the scrape pool's threads: the wedge is skipped, not waited on
            status, _, body = agent.get("/metrics", timeout=5)
            assert status == 200
            assert 'node_scrape_collector_success{collector="wedge"} 0' in lines_of(body)
            assert 'node_scrape_collector_success{collector="loadavg"} 1' in lines_of(body)
        with open(log_file, "a") as fh:
            fh.write("shipped while a collector is wedged\n")
        agent.wait_for(lambda: "shipped while a collector is wedged" in shipped(out), "logs stopped flowing")
        agent.wait_for(lambda: agent.try_get("/readyz")[0] == 503, "/readyz stayed 200 with a wedged scrape")
        status, body = agent.try_get("/readyz")
        assert body.count(b"\n") == 1 and b"wedge" in body, body
        assert agent.try_get("/healthz")[0] == 200
        code, seconds = agent.terminate()  # the collector's thread is still stuck in open()
        assert code == 0 and seconds < SHUTDOWN_LIMIT, (code, seconds, agent.stderr()[-2000:])
    finally:
        release = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if agent.process.poll() is None else None
        if release is not None:
            os.close(release)


# --- item 4 and the symlink half of item 2 for textfiles ------------------------------------------


def test_textfile_links_devices_and_huge_files_keep_memory_low(tmp_path: Path, start: Start) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    (textfiles / "good.prom").write_text("good_metric 1\n")
    secret = tmp_path / "shadow"
    secret.write_text("leaked_secret 1\n# root:$6$SECRETHASH:19000:0:99999:7:::\n")
    (textfiles / "x.prom").symlink_to(secret)
    (textfiles / "zero.prom").symlink_to("/dev/zero")
    with open(textfiles / "huge.prom", "wb") as fh:  # one 64 MB line
        fh.write(b'huge_metric{label="')
        block = b"a" * (1 << 20)
        for _ in range(64):
            fh.write(block)
        fh.write(b'"} 1\n')
    agent = start(textfiles=textfiles)
    for _ in range(3):
        status, _, body = agent.get("/metrics", timeout=20)
        assert status == 200
        lines = lines_of(body)
        assert "good_metric 1" in lines and "node_textfile_scrape_error 1" in lines
        assert not any(line.startswith(("leaked_secret", "huge_metric")) for line in lines)
    assert agent.peak_rss_bytes() < 128 << 20
    code, _ = agent.terminate()
    assert code == 0
    log_text = agent.stderr()
    assert "SECRETHASH" not in log_text and "leaked_secret" not in log_text
    assert "a" * 300 not in log_text
    assert len(log_text) < 64 << 10


# --- item 5: descriptor exhaustion ----------------------------------------------------------------


def _limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_idle_connections(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        # A full accept queue drops SYNs and the client retries them: allow for a loaded machine.
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sockets.append(sock)
    return sockets


@pytest.mark.parametrize(("soft", "hard"), [(256, 4096), (256, 256)])
def test_idle_connections_cannot_exhaust_descriptors(start: Start, soft: int, hard: int) -> None:
    agent = start("loadavg", preexec=_limit_open_files(soft, hard))
    idle = _open_idle_connections(agent.port, 400)  # above the soft limit the agent was started with
    try:
        time.sleep(0.5)
        for _ in range(5):
            status, _, body = agent.get("/metrics", timeout=5)
            assert status == 200 and b"node_load1 " in body
        assert agent.try_get("/healthz")[0] == 200
        assert agent.peak_rss_bytes() < 128 << 20
    finally:
        for sock in idle:
            sock.close()
    code, _ = agent.terminate()
    assert code == 0
    log_text = agent.stderr()
    if hard > soft:
        assert "raised the open-file limit" in log_text and "to=4096" in log_text
    else:
        assert "connection limit reached" in log_text
    assert "Traceback" not in log_text and len(log_text) < 64 << 10


def test_a_slow_or_silent_connection_is_closed(tmp_path: Path, start: Start) -> None:
    from nodeagent.server import IDLE_TIMEOUT_SECONDS

    agent = start("loadavg")
    silent = socket.create_connection(("127.0.0.1", agent.port), timeout=IDLE_TIMEOUT_SECONDS + 10)
    slow = socket.create_connection(("127.0.0.1", agent.port), timeout=IDLE_TIMEOUT_SECONDS + 10)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    started = time.monotonic()
    assert silent.recv(1) == b"" and slow.recv(1) == b""  # closed by the agent
    assert time.monotonic() - started < IDLE_TIMEOUT_SECONDS + 5
    silent.close()
    slow.close()


# --- item 6: bytes that are not UTF-8 in labels ---------------------------------------------------


def test_a_label_that_is_not_utf8_does_not_fail_the_scrape(tmp_path: Path, start: Start) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    with open(os.path.join(os.fsencode(textfiles), b"caf\xe9.prom"), "wb") as fh:
        fh.write(b'alias_info{ifalias="uplink \xff\xfe"} 1\n')
    agent = start(textfiles=textfiles)
    for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
        status, _, body = agent.get("/metrics", Accept=accept)
        assert status == 200
        text = body.decode("utf-8")
        assert 'alias_info{ifalias="uplink \ufffd"} 1' in text
        assert "caf\ufffd.prom" in text
    agent.terminate()
