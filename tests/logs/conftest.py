"""Shared helpers for the log shipper's tests: the real shipper (``run_logs``) run in-process against
files in tmp_path, with a sink that records what it gets and can be made slow, down or refusing; small
timers; metric samples; and the record the sink tests send."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.config.logs import LogsConfig, parse_logs_config
from nodeagent.logs.record import Record
from nodeagent.logs.shipper import run_logs
from nodeagent.logs.sinks.base import Sink

KUBE = {"namespace": "default", "pod": "web-0", "pod_uid": "u-1", "container": "nginx", "restart_count": 1}


def sink_record(
    message: str,
    *,
    stream: str | None = "stdout",
    kubernetes: dict | None = None,
    time: str = "2026-01-02T03:04:05.123456789Z",
) -> Record:
    """A record as the sink tests send it."""
    return Record(
        time=time, message=message, stream=stream, file="/var/log/x.log", node="node-1", kubernetes=kubernetes
    )


# Small timers so that every behaviour shows within a fraction of a second.
FAST = {
    "batch_timeout": "20ms",
    "rescan_interval": "500ms",
    "poll_interval": "100ms",
    "rotate_wait": "200ms",
    "retry_initial_backoff": "20ms",
    "retry_max_backoff": "100ms",
    "drain_timeout": "2s",
    "deleted_file_timeout": "500ms",
}


class MemorySink(Sink):
    """Keeps every record it acknowledges. ``gate`` cleared: sends wait (a stalled destination);
    ``fail_with`` set: sends raise it (a destination that is down or refuses)."""

    type = "memory"

    def __init__(self, name: str = "memory") -> None:
        super().__init__(name, {})
        self.records: list[Record] = []
        self.batches: list[int] = []
        self.fail_with: BaseException | None = None
        self.fail_times: int | None = None  # fail only this many more sends, then work
        self.gate = asyncio.Event()
        self.gate.set()
        self.attempts = 0
        self.flushes = 0
        self.closed = False

    async def send(self, batch: Sequence[Record]) -> None:
        self.attempts += 1
        await self.gate.wait()
        if self.fail_with is not None and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            raise self.fail_with
        self.records.extend(batch)
        self.batches.append(len(batch))

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closed = True

    def messages(self) -> list[str]:
        return [r.message for r in self.records]


def unique_name(prefix: str = "t") -> str:
    """An input/sink name of its own, so metric children of one test do not mix with another's."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_config(
    tmp_path: Path,
    paths: Sequence[str | Path],
    *,
    input_options: dict | None = None,
    inputs: list[dict] | None = None,
    **tuning: Any,
) -> LogsConfig:
    section: dict[str, Any] = {"state_dir": str(tmp_path / "state"), **FAST, **tuning}
    if inputs is None:
        inputs = [{"name": unique_name("in"), "paths": [str(p) for p in paths], **(input_options or {})}]
    section["inputs"] = inputs
    section.setdefault("sinks", [{"type": "stdout"}])  # replaced by the test's sink
    return parse_logs_config(section, source="test", environ={})


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return AGENT_REGISTRY.get_sample_value(name, labels or {}) or 0.0


class Shipper:
    def __init__(self, config: LogsConfig, sinks: Sequence[Sink], node_name: str = "node-1") -> None:
        self.config = config
        self.sinks = list(sinks)
        self.node_name = node_name
        self.stop_event = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None

    @property
    def input_name(self) -> str:
        return self.config.inputs[0].name

    async def start(self) -> None:
        self.task = asyncio.create_task(
            run_logs(
                self.config,
                node_name=self.node_name,
                stop=self.stop_event,
                ready=self.ready,
                sinks=self.sinks,
            )
        )
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait({ready, self.task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        assert self.ready.is_set(), "the shipper did not get ready"

    async def stop(self, timeout: float = 10) -> None:
        self.stop_event.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout)


@asynccontextmanager
async def shipping(config: LogsConfig, *sinks: Sink) -> AsyncIterator[Shipper]:
    shipper = Shipper(config, sinks or [MemorySink()])
    await shipper.start()
    try:
        yield shipper
    finally:
        if shipper.task is not None and not shipper.task.done():
            await shipper.stop()


async def deliver(sink: Sink, *batches: Sequence[Record]) -> None:
    """Start ``sink``, send each batch in turn, close it (also when a send fails)."""
    await sink.start()
    try:
        for batch in batches:
            await sink.send(batch)
    finally:
        await sink.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds (generous: a loaded
    machine is slow, and a passing test never waits for it)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def write_lines(path: Path, lines: Sequence[str], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
