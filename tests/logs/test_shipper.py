"""The composition root (nodeagent.logs.shipper.run_logs): what it builds and where its blocking calls run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nodeagent.logs.shipper import run_logs
from tests.logs.conftest import eventually, make_config, write_lines


class CountingPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(2, thread_name_prefix="test-logs-pool")
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


class RefusingPool(ThreadPoolExecutor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise AssertionError(f"the loop's default executor was used for {fn!r}")


async def test_every_blocking_call_runs_on_the_executor_it_is_handed(tmp_path: Path) -> None:
    """Issue 12, item 3: the shipper's blocking I/O has its own pool, so hung scrapes cannot starve it."""
    asyncio.get_running_loop().set_default_executor(RefusingPool(1))
    log, out = tmp_path / "app.log", tmp_path / "out" / "records.jsonl"
    write_lines(log, ["one", "two"])
    config = make_config(tmp_path, [log], sinks=[{"type": "file", "path": str(out)}])
    pool, stop, ready = CountingPool(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_logs(config, node_name="node-1", stop=stop, ready=ready, executor=pool))
    try:
        await asyncio.wait_for(ready.wait(), 10)

        def shipped() -> list[str]:
            return (
                [json.loads(line)["message"] for line in out.read_text().splitlines()] if out.exists() else []
            )

        await eventually(lambda: shipped() == ["one", "two"], what="both lines in the file sink")
        write_lines(log, ["three"])
        await eventually(lambda: shipped() == ["one", "two", "three"], what="the appended line")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        pool.shutdown()
    assert pool.calls > 0
