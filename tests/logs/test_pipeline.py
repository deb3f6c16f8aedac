"""Delivery: batches, retries, refusals, backpressure, acknowledgements and what a restart re-reads."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from nodeagent.logs.pipeline import Batch
from nodeagent.logs.record import Record
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from tests.logs.conftest import (
    MemorySink,
    Shipper,
    eventually,
    make_config,
    sample,
    shipping,
    unique_name,
    write_lines,
)


def numbered(count: int, start: int = 0, prefix: str = "seq") -> list[str]:
    return [f"{prefix} {i:06d}" for i in range(start, start + count)]


async def test_batches_are_cut_by_record_count_and_every_batch_is_committed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, numbered(1000))
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log], batch_max_records=100), sink):
        await eventually(lambda: len(sink.records) == 1000, what="all records")
    assert max(sink.batches) <= 100
    assert sink.messages() == numbered(1000)
    assert sink.flushes >= len(sink.batches)  # a commit (flush, then checkpoint) after every batch
    state = json.loads((tmp_path / "state" / "logs-checkpoints.json").read_text())
    assert [f["offset"] for f in state["files"]] == [log.stat().st_size]


async def test_batches_are_cut_by_bytes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, ["x" * 99] * 1000)  # 100 bytes a line
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log], batch_max_bytes=2000), sink):
        await eventually(lambda: len(sink.records) == 1000, what="all records")
    assert max(sink.batches) <= 20


async def test_retryable_errors_are_retried_until_they_succeed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    sink = MemorySink(unique_name("sink"))
    sink.fail_with = RetryableSinkError("503 Service Unavailable")
    sink.fail_times = 4
    write_lines(log, numbered(300))
    async with shipping(make_config(tmp_path, [log]), sink):
        await eventually(lambda: len(sink.records) == 300, what="records after the retries")
    assert sink.messages() == numbered(300)
    assert sample("nodeagent_logs_records_sent_total", {"sink": sink.name}) == 300
    failed = sample("nodeagent_logs_records_failed_total", {"sink": sink.name, "reason": "retryable"})
    retried = sample("nodeagent_logs_records_retried_total", {"sink": sink.name})
    assert failed == retried == 4 * 300


async def test_unexpected_errors_are_retried_too(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    sink = MemorySink(unique_name("sink"))
    sink.fail_with = ConnectionResetError("peer went away")
    sink.fail_times = 2
    write_lines(log, numbered(10))
    async with shipping(make_config(tmp_path, [log]), sink):
        await eventually(lambda: len(sink.records) == 10, what="records after the retries")
    assert sample("nodeagent_logs_records_failed_total", {"sink": sink.name, "reason": "error"}) == 20


async def test_backoff_grows_exponentially_with_jitter(tmp_path: Path) -> None:
    from nodeagent.logs.pipeline import Pipeline

    config = make_config(tmp_path, [tmp_path / "x.log"], retry_initial_backoff="1s", retry_max_backoff="8s")
    pipeline = Pipeline([], None, config)  # type: ignore[arg-type]
    for attempt, cap in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 8)]:
        delays = [pipeline._backoff(attempt) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 100  # jittered


async def test_a_refused_batch_is_dropped_counted_and_acknowledged(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    sink = MemorySink(unique_name("sink"))
    sink.fail_with = PermanentSinkError("400 Bad Request: entry too old")
    sink.fail_times = 1
    write_lines(log, numbered(50))
    config = make_config(tmp_path, [log])
    async with shipping(config, sink):
        await eventually(
            lambda: (
                sample("nodeagent_logs_records_dropped_total", {"sink": sink.name, "reason": "rejected"})
                == 50
            ),
            what="the drop",
        )
        write_lines(log, numbered(20, 50))
        await eventually(lambda: len(sink.records) == 20, what="later records")
    assert sink.messages() == numbered(20, 50)
    # The dropped batch counts as acknowledged: a restart does not send it again.
    again = MemorySink()
    async with shipping(config, again):
        await asyncio.sleep(0.3)
    assert again.records == []


async def test_backpressure_pauses_reading_and_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    lines = numbered(20000)  # 220 KB
    write_lines(log, lines)
    sink = MemorySink()
    sink.gate.clear()
    config = make_config(tmp_path, [log], buffer_max_bytes="16KiB", batch_max_records=100)
    async with shipping(config, sink) as shipper:
        await asyncio.sleep(0.5)
        read = sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name})
        buffered = sample("nodeagent_logs_buffer_bytes")
        assert 0 < read <= 2 * 16 * 1024  # the buffer and one read turn at most
        assert buffered <= 2 * 16 * 1024
        assert sample("nodeagent_logs_bytes_behind", {"input": shipper.input_name}) > 100_000
        sink.gate.set()
        await eventually(lambda: len(sink.records) == 20000, what="everything once the sink is back")
    assert sink.messages() == lines


async def test_stop_while_the_sink_is_down_commits_nothing_unacknowledged(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, numbered(100))
    config = make_config(tmp_path, [log], drain_timeout="300ms")
    down = MemorySink()
    down.fail_with = RetryableSinkError("connection refused")
    shipper = Shipper(config, [down])
    await shipper.start()
    await eventually(lambda: down.attempts >= 2, what="failing attempts")
    started = time.monotonic()
    await shipper.stop()
    assert time.monotonic() - started < 2  # retries end at the drain deadline
    assert down.records == []
    up = MemorySink()
    async with shipping(config, up):
        await eventually(lambda: len(up.records) == 100, what="everything on the next run")
    assert up.messages() == numbered(100)


async def test_stop_drains_and_commits_so_a_restart_neither_loses_nor_repeats(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    config = make_config(tmp_path, [log], batch_max_records=500, batch_timeout="200ms")
    first = MemorySink()
    async with shipping(config, first):
        write_lines(log, numbered(5000))
        await eventually(lambda: len(first.records) > 0, what="the first batch")
        # stop right away: the rest is in the buffer or still unread
    assert first.messages() == numbered(len(first.records))
    write_lines(log, numbered(1000, 5000))
    second = MemorySink()
    async with shipping(config, second):
        await eventually(lambda: len(first.records) + len(second.records) == 6000, what="the rest")
        await asyncio.sleep(0.2)
    assert first.messages() + second.messages() == numbered(6000)


async def test_every_sink_gets_everything_and_positions_wait_for_the_slowest(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, numbered(200))
    config = make_config(tmp_path, [log], drain_timeout="200ms")
    fast, slow = MemorySink("fast"), MemorySink("slow")
    slow.gate.clear()
    shipper = Shipper(config, [fast, slow])
    await shipper.start()
    await eventually(lambda: len(fast.records) > 0, what="the fast sink")
    await asyncio.sleep(0.2)
    await shipper.stop()  # the slow sink never acknowledged: nothing may be committed
    assert slow.records == []
    fast2, slow2 = MemorySink("fast"), MemorySink("slow")
    async with shipping(config, fast2, slow2):
        await eventually(lambda: len(slow2.records) == 200, what="all records to the slow sink")
        await eventually(lambda: len(fast2.records) == 200, what="all records to the fast sink again")
    assert slow2.messages() == fast2.messages() == numbered(200)


async def test_checkpoint_age_and_buffer_gauges(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, numbered(10))
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink) as shipper:
        await eventually(lambda: len(sink.records) == 10, what="records")
        await asyncio.sleep(0.1)
        assert sample("nodeagent_logs_buffer_bytes") == 0
        assert sample("nodeagent_logs_checkpoint_age_seconds") < 2
        assert sample("nodeagent_logs_bytes_behind", {"input": shipper.input_name}) == 0
        assert sample("nodeagent_logs_files_watched", {"input": shipper.input_name}) == 1
        assert sample("nodeagent_logs_files_open", {"input": shipper.input_name}) == 1


class SlowFlushSink(MemorySink):
    """Records what happens in what order; each flush takes a while (an fsync of a large batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def prepare(self, batch: Sequence[Record]) -> None:
        self.events.append(f"prepare {len(batch)}")

    async def send(self, batch: Sequence[Record]) -> None:
        self.events.append(f"send {len(batch)}")
        await super().send(batch)

    async def flush(self) -> None:
        self.events.append("flush begins")
        await asyncio.sleep(0.05)
        self.events.append("flush ends")
        await super().flush()


async def test_group_commit_prepares_the_next_batch_during_a_commit_and_sends_it_after(
    tmp_path: Path,
) -> None:
    """The next batch is cut and encoded while the previous one's commit runs, and written only once that
    commit is done: a sink never holds more than one batch past the checkpoint."""
    log = tmp_path / "a.log"
    write_lines(log, numbered(500))
    sink = SlowFlushSink()
    async with shipping(make_config(tmp_path, [log], batch_max_records=100), sink):
        await eventually(lambda: len(sink.records) == 500, what="all records")
    assert sink.messages() == numbered(500)
    events = [e for e in sink.events if e != "prepare 0"]
    sends = [i for i, e in enumerate(events) if e.startswith("send")]
    for before, after in itertools.pairwise(sends):
        between = events[before + 1 : after]
        assert "flush ends" in between, events  # the previous batch was committed before this one went out
        assert between.index("flush ends") > between.index("flush begins")
    overlapped = [
        i for i, e in enumerate(events) if e.startswith("prepare") and events[i - 1] == "flush begins"
    ]
    assert overlapped, events  # the next batch was prepared while a flush was running


async def test_the_backlogs_buffers_go_back_once_batches_no_longer_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While batches fill (a backlog), glibc keeps the freed buffers for the next batch; the first batch
    that does not fill hands them back (runtime.trim_malloc), even when the sender is never idle."""
    from nodeagent import runtime

    trims: list[int] = []
    sink = MemorySink()
    monkeypatch.setattr(runtime, "trim_malloc", lambda: trims.append(len(sink.records)))
    log = tmp_path / "a.log"
    write_lines(log, numbered(1000))
    async with shipping(make_config(tmp_path, [log], batch_max_records=100, batch_timeout=0.2), sink):
        await eventually(lambda: len(sink.records) == 1000, what="the backlog")
        # A trickle: a few lines every 25 ms, so the sender never waits a whole idle tick.
        for i in range(200):
            write_lines(log, numbered(2, start=1000 + 2 * i))
            await asyncio.sleep(0.025)
            if trims:
                break
        assert trims, "no trim while the batches stopped filling"
        assert trims[0] >= 1000  # none while full batches were going out


async def test_a_quiet_sender_keeps_no_batch_it_delivered(tmp_path: Path) -> None:
    """The sender waits for the next batch for as long as the files are quiet: the last one's records
    and acknowledgements are not kept meanwhile (per file followed, on a quiet node)."""

    def batches_alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Batch))

    log = tmp_path / "a.log"
    write_lines(log, numbered(300))
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log], batch_max_records=100), sink):
        await eventually(lambda: len(sink.records) == 300, what="all records")
        await eventually(lambda: batches_alive() == 0, what="no delivered batch kept")
