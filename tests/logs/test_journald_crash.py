"""The agent process with a journald input on real journal files, killed (SIGKILL) and stopped (SIGTERM)
while entries are appended: nothing lost, at most one batch repeated per kill, nothing repeated after a
SIGTERM."""

from __future__ import annotations

import collections
import threading
import time
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


def test_sigkill_loses_no_journal_entry_and_repeats_at_most_a_batch_per_kill(tmp_path: Path) -> None:
    directory, out, config = setup(tmp_path)
    writer = Writer(directory / "system.journal", groups=24, per_group=250)
    agent = Agent(tmp_path, config, 0)
    kills = 0
    try:
        agent.wait_ready()
        writer.start()
        for run in (1, 2, 3):
            wait_for_some(out, 1000 * run)
            agent.kill()
            kills += 1
            agent = Agent(tmp_path, config, run)
            agent.wait_ready()
        writer.join(timeout=120)
        messages = wait_for_all(out, writer.expected, timeout=60)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    counts = collections.Counter(messages)
    duplicates = sum(n - 1 for n in counts.values())
    assert set(counts) == set(writer.expected)
    assert duplicates <= kills * BATCH, f"{duplicates} duplicates after {kills} kills"
    assert list(dict.fromkeys(messages)) == writer.expected  # in journal order


def test_sigterm_loses_and_repeats_no_journal_entry(tmp_path: Path) -> None:
    directory, out, config = setup(tmp_path)
    writer = Writer(directory / "system.journal", groups=12, per_group=250)
    agent = Agent(tmp_path, config, 0)
    try:
        agent.wait_ready()
        writer.start()
        for run in (1, 2):
            wait_for_some(out, 1000 * run)
            assert agent.terminate() == 0
            agent = Agent(tmp_path, config, run)
            agent.wait_ready()
        writer.join(timeout=120)
        messages = wait_for_all(out, writer.expected, timeout=60)
        assert agent.terminate() == 0
    finally:
        agent.kill()
    assert messages == writer.expected


def wait_for_some(out: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(delivered(out)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} records arrived"
        time.sleep(0.05)
