"""The agent process with a disk-buffered Loki sink, killed with SIGKILL while it replays its buffer:
nothing is lost and each kill repeats at most one batch.

Loki (the strict fake of test_sink_loki, in a thread of the test) is down while lines are written, so
they all go to the buffer; the agent is killed; Loki comes back slow, and the agent is killed twice more
in the middle of its replay, then left to finish."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.logs.outage import LokiThread
from tests.logs.test_crash import Agent, Writer, assert_all_in_order, setup


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def committed(state: Path, logs: Path) -> bool:
    """Every file's checkpoint is at its end (the lines are in the buffer, or delivered)."""
    try:
        files = json.loads((state / "logs-checkpoints.json").read_bytes())["files"]
    except (OSError, ValueError, KeyError):
        return False
    offsets = {entry["path"]: entry["offset"] for entry in files}
    return all(offsets.get(str(path)) == path.stat().st_size for path in logs.glob("*.log"))


def test_sigkill_during_replay_loses_nothing_and_repeats_at_most_a_batch_per_kill(tmp_path: Path) -> None:
    with LokiThread() as loki:
        loki.fake.fail_with = (503, "down for maintenance")
        sink = (
            f"{{type: loki, url: {loki.url}, line_format: message, buffer: {{type: disk, max_size: 64MiB}}}}"
        )
        logs, _out, config = setup(
            tmp_path, sink, "\n  retry_initial_backoff: 50ms\n  retry_max_backoff: 200ms"
        )
        writer = Writer(logs, total=12_000, per_second=20_000)
        agent = Agent(tmp_path, config, 0)
        kills_in_replay = 0
        try:
            agent.wait_ready()
            writer.start()
            writer.join(timeout=30)
            wait_until(lambda: committed(tmp_path / "state", logs), 30, "every line in the disk buffer")
            assert loki.lines() == []
            agent.kill()  # with everything in the buffer, nothing delivered

            loki.fake.fail_with = None
            loki.delay = 0.03
            for run in (1, 2):
                before = loki.pushes()
                agent = Agent(tmp_path, config, run)
                agent.wait_ready()
                wait_until(lambda before=before: loki.pushes() >= before + 8, 30, "the replay under way")
                agent.kill()  # mid-replay: mid-push, mid-acknowledgement
                kills_in_replay += 1
                assert b"replaying the disk buffer" in agent.stderr_path.read_bytes()
            assert len(set(loki.lines())) < len(writer.expected)  # the kills did land mid-replay

            loki.delay = 0
            agent = Agent(tmp_path, config, 3)
            agent.wait_ready()
            wait_until(lambda: set(loki.lines()) >= set(writer.expected), 60, "every line in Loki")
            assert agent.terminate() == 0
        finally:
            agent.kill()
        messages = loki.lines()
    assert_all_in_order(messages, writer.expected, kills_in_replay)
    buffer_files = sorted((tmp_path / "state" / "buffers" / "loki").glob("*.seg"))
    assert sum(p.stat().st_size for p in buffer_files) == 0 or len(buffer_files) <= 1  # drained, deleted
