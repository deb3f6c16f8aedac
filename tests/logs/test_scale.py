"""Many files: 10,000 of them, a few active; open descriptors stay within max_open_files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines

FILES = 10_000
DIRS = 100
MAX_OPEN = 200


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_ten_thousand_files_with_a_few_active_and_bounded_descriptors(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    paths = []
    for d in range(DIRS):
        directory = root / f"ns_pod{d}_uid{d}" / "c"
        directory.mkdir(parents=True)
        for f in range(FILES // DIRS):
            path = directory / f"{f}.log"
            path.write_bytes(f"{d}/{f} first\n".encode())
            paths.append(path)
    sink = MemorySink()
    config = make_config(
        tmp_path, [root / "*/*/*.log"], max_open_files=MAX_OPEN, batch_max_records=2000, rescan_interval="30s"
    )
    baseline = open_fd_count()
    peak = 0

    async def watch_fds() -> None:
        nonlocal peak
        while True:
            peak = max(peak, open_fd_count())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_fds())
    try:
        async with shipping(config, sink) as shipper:
            await eventually(lambda: len(sink.records) == FILES, timeout=60, what="every file's first line")
            active = paths[::2500]
            for round_ in range(3):
                for path in active:
                    write_lines(path, [f"{path.parent.parent.name} more {round_}"])
                want = FILES + len(active) * (round_ + 1)
                await eventually(lambda want=want: len(sink.records) == want, what="active files")
            assert sample("nodeagent_logs_files_watched", {"input": shipper.input_name}) == FILES
            assert sample("nodeagent_logs_files_open", {"input": shipper.input_name}) <= MAX_OPEN
    finally:
        watcher.cancel()
    assert len({r.message for r in sink.records}) == len(sink.records)
    # The budget, plus the watcher, the checkpoint writer, the event loop's own descriptors.
    assert peak - baseline <= MAX_OPEN + 20, f"{peak - baseline} descriptors at the peak"
    assert sink.records[0].kubernetes is not None
