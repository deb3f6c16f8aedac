"""The backlog metrics tell the truth during a sink outage: the checkpoint age grows from the first
uncommitted read, and bytes_behind follows the files while reading is paused on a full buffer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines


async def test_checkpoint_age_and_bytes_behind_during_a_sink_outage(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()  # apart from the state directory, whose changes would make the reader rescan
    log = tmp_path / "logs" / "app.log"
    log.touch()
    sink = MemorySink()
    # No rescan during the test: they refresh sizes too.
    config = make_config(tmp_path, [log], buffer_max_bytes=4096, rescan_interval="60s")
    async with shipping(config, sink) as shipper:
        name = shipper.input_name
        write_lines(log, ["before the outage"])
        await eventually(lambda: len(sink.records) == 1, what="a line delivered")
        await asyncio.sleep(1.5)  # idle: the age stays 0 with everything committed
        assert sample("nodeagent_logs_checkpoint_age_seconds") < 0.5
        sink.gate.clear()  # the destination hangs from now on
        write_lines(log, [f"line {i:06d} " + "x" * 80 for i in range(2000)])
        await eventually(
            lambda: sample("nodeagent_logs_checkpoint_age_seconds") >= 2.0,
            timeout=6,
            what="the checkpoint age growing during the outage",
        )
        behind = sample("nodeagent_logs_bytes_behind", {"input": name})
        assert behind > 100_000  # reading paused: most of the file is behind
        size = log.stat().st_size
        write_lines(log, [f"more {i:06d} " + "y" * 80 for i in range(2000)])  # about 190 kB more
        grown = log.stat().st_size - size
        await eventually(
            lambda: sample("nodeagent_logs_bytes_behind", {"input": name}) >= behind + grown,
            timeout=5,
            what="bytes_behind following the file while reading is paused",
        )
        sink.gate.set()
        await eventually(lambda: len(sink.records) == 4001, timeout=20, what="everything after the outage")
        await eventually(
            lambda: (
                sample("nodeagent_logs_checkpoint_age_seconds") < 0.5
                and sample("nodeagent_logs_bytes_behind", {"input": name}) == 0
            ),
            timeout=5,
            what="the backlog gone",
        )
