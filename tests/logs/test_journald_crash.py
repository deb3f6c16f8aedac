"""The agent process with a journald input on real journal files, killed (SIGKILL) and stopped (SIGTERM)
while entries are appended: nothing lost, at most one batch repeated per kill, nothing repeated after a
SIGTERM."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import free_port
from tests.logs.test_crash import Agent, delivered, wait_for_all
from tests.logs.test_journald import entry, journalctl, write_journal

BATCH = 100


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry("before 0")])
    out = tmp_path / "out" / "records.jsonl"
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{free_port()}
logs:
  state_dir: {tmp_path / "state"}
  batch_max_records: {BATCH}
  batch_timeout: 50ms
  inputs:
    - name: journal
      type: journald
      directory: {directory}
      journalctl: {journalctl()}
      read_from: head
      restart_backoff: 100ms
  sinks:
    - {{type: file, path: {out}}}
""")
    return directory, out, config


class Writer(threading.Thread):
    """Appends entries in groups, as a busy node's journald does."""

    def __init__(self, journal: Path, groups: int, per_group: int) -> None:
        super().__init__(daemon=True)
        self.journal = journal
        self.groups, self.per_group = groups, per_group
        self.expected = ["before 0"] + [f"e {n:06d}" for n in range(groups * per_group)]

    def run(self) -> None:
        for group in range(self.groups):
            start = group * self.per_group
            write_journal(self.journal, [entry(f"e {n:06d}") for n in range(start, start + self.per_group)])


def run_through_restarts(
    tmp_path: Path, groups: int, restart: Callable[[Agent], None], times: int
) -> list[str]:
    """Append ``groups`` groups of entries while the agent is stopped by ``restart`` and started again
    ``times`` times (after each 1000 records more); what the sink has once everything arrived."""
    directory, out, config = setup(tmp_path)
    writer = Writer(directory / "system.journal", groups=groups, per_group=250)
    agent = Agent(tmp_path, config, 0)
    try:
        agent.wait_ready()
        writer.start()
        for run in range(1, times + 1):
            wait_for_some(out, 1000 * run)
            restart(agent)
            agent = Agent(tmp_path, config, run)
            agent.wait_ready()
        writer.join(timeout=120)
        messages = wait_for_all(out, writer.expected, timeout=60)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert set(messages) == set(writer.expected)
    assert list(dict.fromkeys(messages)) == writer.expected  # in journal order
    return messages


def test_sigkill_loses_no_journal_entry_and_repeats_at_most_a_batch_per_kill(tmp_path: Path) -> None:
    kills = 3
    messages = run_through_restarts(tmp_path, 24, Agent.kill, kills)
    duplicates = sum(n - 1 for n in collections.Counter(messages).values())
    assert duplicates <= kills * BATCH, f"{duplicates} duplicates after {kills} kills"


def test_sigterm_loses_and_repeats_no_journal_entry(tmp_path: Path) -> None:
    def terminate(agent: Agent) -> None:
        assert agent.terminate() == 0

    messages = run_through_restarts(tmp_path, 12, terminate, 2)
    assert len(messages) == len(set(messages))


def wait_for_some(out: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(delivered(out)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} records arrived"
        time.sleep(0.05)
