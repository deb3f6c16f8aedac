"""A real Debian rsyslogd for the syslog and RELP sink tests: run unprivileged on 127.0.0.1 with its own
config, work directory and pid file, stopped (or killed mid-test) by its PID and restarted on the same
port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from nodeagent.logs.record import Record
from tests.conftest import free_port, require_binary


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """The stripped content of ``path`` once rsyslogd wrote it; fails if rsyslogd exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"rsyslogd exited with {proc.returncode}: {output}")
        time.sleep(0.05)
    raise AssertionError(f"rsyslogd did not write {path} in {timeout}s")


class Rsyslogd:
    """rsyslogd with ``config`` (a template: ``{work}``, ``{port}``, ``{port_file}``, ``{output}``, plus
    ``extra``). With ``port=0`` the input must write the port it got to ``{port_file}``; otherwise
    ``{port}`` is fixed (a free one by default), so a restart listens where the sink connects."""

    def __init__(self, directory: Path, config: str, *, port: int | None = None, **extra: str) -> None:
        self.binary = require_binary("rsyslogd", "/usr/sbin/rsyslogd")
        self.directory = directory
        self.work = directory / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.port_file = directory / "port"
        self.output = directory / "out.log"
        self.port = free_port() if port is None else port
        self.conf = directory / "rsyslog.conf"
        self.conf.write_text(
            config.format(
                work=self.work, port=self.port, port_file=self.port_file, output=self.output, **extra
            )
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.port_file.unlink(missing_ok=True)
        # -n: foreground; -f/-i: our config and pid file, so no root and no system paths are needed.
        self.proc = subprocess.Popen(
            [self.binary, "-n", "-f", str(self.conf), "-i", str(self.directory / "rsyslogd.pid")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self.port == 0:
            self.port = int(wait_for_file(self.port_file, self.proc))
        else:
            self.wait_listening()

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until the input accepts connections (inputs start a moment after the process)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    output = self.proc.stdout.read() if self.proc.stdout else ""
                    raise AssertionError(f"rsyslogd exited with {self.proc.returncode}: {output}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"rsyslogd does not listen on {self.port} after {timeout}s"
                    ) from None
                time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop it by its PID (SIGKILL by default: no shutdown work at all)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def lines(self, count: int = 0, timeout: float = 10.0) -> list[str]:
        """The output lines, waiting (bounded) until there are at least ``count``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output.read_text("utf-8") if self.output.exists() else ""
            lines = text.splitlines()
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


def record(message: str, stream: str | None = "stdout", kubernetes: dict | None = None) -> Record:
    """A record as the syslog and RELP tests send it (node worker-7, a fixed time)."""
    return Record(
        time="2026-01-02T03:04:05.123456789Z",
        message=message,
        stream=stream,
        file="/var/log/pods/x/0.log",
        node="worker-7",
        kubernetes=kubernetes,
    )
