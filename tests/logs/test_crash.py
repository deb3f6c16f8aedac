"""The agent process itself (``python -m nodeagent run --no-metrics``), killed and restarted while lines
are being written: SIGKILL loses nothing and repeats at most one batch per kill; SIGTERM loses and
repeats nothing."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT, free_port

BATCH = 200
FILES = 3


class Agent:
    """One run of the agent; stderr goes to a file so that a chatty agent cannot block on a pipe."""

    def __init__(self, tmp_path: Path, config: Path, run: int) -> None:
        self.stderr_path = tmp_path / f"agent-{run}.stderr"
        self.stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for key in ("NODEAGENT_POD_NAME", "NODEAGENT_POD_NAMESPACE", "NODEAGENT_POD_UID"):
            env.pop(key, None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nodeagent",
                "run",
                "--no-metrics",
                "--config",
                str(config),
                "--node-name",
                "crash-node",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env=env,
        )

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"log shipper started" in self.stderr_path.read_bytes():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"agent not ready:\n{self.stderr_path.read_text(errors='replace')}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.stderr.close()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=10)
        finally:
            self.kill()
        return code


class Writer(threading.Thread):
    """Appends "f<k> <n>" lines to FILES files, round robin, at a steady pace."""

    def __init__(self, logs: Path, total: int, per_second: int) -> None:
        super().__init__(daemon=True)
        self.logs, self.total, self.per_second = logs, total, per_second
        self.expected = [f"f{n % FILES} {n:07d}" for n in range(total)]

    def run(self) -> None:
        handles = [open(self.logs / f"app{k}.log", "a", buffering=1) for k in range(FILES)]  # noqa: SIM115
        try:
            started = time.monotonic()
            for n, line in enumerate(self.expected):
                handles[n % FILES].write(line + "\n")
                if n % 100 == 99:
                    ahead = (n + 1) / self.per_second - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            for handle in handles:
                handle.close()


def setup(tmp_path: Path, sink: str | None = None, tuning: str = "") -> tuple[Path, Path, Path]:
    """Files, the file sink's output and the agent's config (``sink``: another sink, a YAML mapping)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(FILES):
        (logs / f"app{k}.log").touch()
    out = tmp_path / "out" / "records.jsonl"
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{free_port()}
logs:
  state_dir: {tmp_path / "state"}
  batch_max_records: {BATCH}
  batch_timeout: 50ms
  rescan_interval: 1s{tuning}
  inputs:
    - name: crash
      paths: ["{logs}/*.log"]
      format: plain
  sinks:
    - {sink or f"{{type: file, path: {out}}}"}
""")
    return logs, out, config


def delivered(out: Path) -> list[str]:
    if not out.exists():
        return []
    messages = []
    # The last piece has no newline while the agent is still writing it: only whole lines count.
    for number, line in enumerate(out.read_bytes().split(b"\n")[:-1], 1):
        if line:
            try:
                messages.append(json.loads(line)["message"])
            except ValueError as exc:
                raise AssertionError(f"{out}:{number}: not a JSON line ({exc}): {line[:200]!r}") from None
    return messages


def wait_for_all(out: Path, expected: list[str], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    wanted = set(expected)
    while time.monotonic() < deadline:
        messages = delivered(out)
        if wanted <= set(messages):
            return messages
        time.sleep(0.1)
    missing = wanted - set(delivered(out))
    raise AssertionError(f"{len(missing)} lines never arrived, e.g. {sorted(missing)[:5]}")


def test_sigkill_mid_stream_loses_nothing_and_repeats_at_most_a_batch_per_kill(tmp_path: Path) -> None:
    logs, out, config = setup(tmp_path)
    writer = Writer(logs, total=45_000, per_second=20_000)
    agent = Agent(tmp_path, config, 0)
    kills = 0
    try:
        agent.wait_ready()
        writer.start()
        for run in (1, 2, 3):
            time.sleep(0.6)
            agent.kill()  # anywhere: mid-read, mid-send, mid-commit
            kills += 1
            agent = Agent(tmp_path, config, run)
            agent.wait_ready()
        writer.join(timeout=30)
        messages = wait_for_all(out, writer.expected)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert_all_in_order(messages, writer.expected, kills)


def assert_all_in_order(messages: list[str], expected: list[str], kills: int) -> None:
    """Every line, at most one batch repeated per kill, each file's lines in order apart from those."""
    counts = collections.Counter(messages)
    duplicates = sum(n - 1 for n in counts.values())
    assert set(counts) == set(expected)
    assert duplicates <= kills * BATCH, f"{duplicates} duplicates after {kills} kills"
    for k in range(FILES):
        firsts = [m for m in dict.fromkeys(messages) if m.startswith(f"f{k} ")]
        assert firsts == [m for m in expected if m.startswith(f"f{k} ")]


def test_sigterm_mid_stream_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    logs, out, config = setup(tmp_path)
    writer = Writer(logs, total=24_000, per_second=20_000)
    agent = Agent(tmp_path, config, 0)
    try:
        agent.wait_ready()
        writer.start()
        for run in (1, 2):
            time.sleep(0.4)
            assert agent.terminate() == 0
            agent = Agent(tmp_path, config, run)
            agent.wait_ready()
        writer.join(timeout=30)
        messages = wait_for_all(out, writer.expected)
        assert agent.terminate() == 0
        # One more start with nothing new: nothing is sent again.
        agent = Agent(tmp_path, config, 3)
        agent.wait_ready()
        time.sleep(0.5)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert delivered(out) == messages
    assert sorted(messages) == sorted(writer.expected)
    assert len(messages) == len(set(messages))


def test_a_line_torn_by_a_kill_is_cut_before_the_batch_is_sent_again(tmp_path: Path) -> None:
    """SIGKILL inside a large write() leaves half a line in the file sink's output; that batch was not
    committed, so it is sent again, and must not be glued onto the fragment."""
    logs, out, config = setup(tmp_path)
    out.parent.mkdir(parents=True)
    out.write_bytes(b'{"message":"committed"}\n{"message":"torn, never comm')
    (logs / "app0.log").write_text("after restart\n")
    agent = Agent(tmp_path, config, 0)
    try:
        agent.wait_ready()
        deadline = time.monotonic() + 10
        while "after restart" not in delivered(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert delivered(out) == ["committed", "after restart"]
