"""The agent process with a disk-buffered Loki sink, killed with SIGKILL while it replays its buffer:
nothing is lost and each kill repeats at most one batch.

Loki (the strict fake of test_sink_loki, in a thread of the test) is down while lines are written, so
they all go to the buffer; the agent is killed; Loki comes back slow, and the agent is killed twice more
in the middle of its replay, then left to finish."""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import free_port
from tests.logs.test_crash import FILES, Agent, Writer
from tests.logs.test_sink_loki import FakeLoki

BATCH = 200


class LokiThread:
    """The fake Loki on 127.0.0.1 in its own thread and event loop; ``delay`` slows every push."""

    def __init__(self) -> None:
        self.fake = FakeLoki()
        self.delay = 0.0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/loki/api/v1/push", self._push)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    async def _push(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self.fake.push(request)

    def __enter__(self) -> LokiThread:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def lines(self) -> list[str]:
        return [line for _labels, _ts, line in list(self.fake.entries())]

    def pushes(self) -> int:
        return len(self.fake.pushes)


def setup(tmp_path: Path, url: str) -> tuple[Path, Path]:
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(FILES):
        (logs / f"app{k}.log").touch()
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{free_port()}
logs:
  state_dir: {tmp_path / "state"}
  batch_max_records: {BATCH}
  batch_timeout: 50ms
  rescan_interval: 1s
  retry_initial_backoff: 50ms
  retry_max_backoff: 200ms
  inputs:
    - name: crash
      paths: ["{logs}/*.log"]
      format: plain
  sinks:
    - type: loki
      url: {url}
      line_format: message
      buffer: {{type: disk, max_size: 64MiB}}
""")
    return logs, config


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
        logs, config = setup(tmp_path, loki.url)
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
    counts = collections.Counter(messages)
    duplicates = sum(n - 1 for n in counts.values())
    assert set(counts) == set(writer.expected)
    assert duplicates <= kills_in_replay * BATCH, f"{duplicates} duplicates after {kills_in_replay} kills"
    for k in range(FILES):  # each file's lines in order, apart from the re-sent stretches
        firsts = [m for m in dict.fromkeys(messages) if m.startswith(f"f{k} ")]
        assert firsts == [m for m in writer.expected if m.startswith(f"f{k} ")]
    buffer_files = sorted((tmp_path / "state" / "buffers" / "loki").glob("*.seg"))
    assert sum(p.stat().st_size for p in buffer_files) == 0 or len(buffer_files) <= 1  # drained, deleted
