"""What happens to files while the agent is down: ``read_from: tail`` skips history, never lines written
while the agent was stopped (copytruncate, files created meanwhile)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from tests.logs.conftest import MemorySink, eventually, make_config, shipping, write_lines


def numbered(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix} {i:05d}" for i in range(start, start + count)]


def tail_config(tmp_path: Path, *paths: Path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, list(paths), input_options={"read_from": "tail"})


async def test_copytruncate_while_the_agent_is_down_reads_the_new_lines_from_the_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    log.touch()
    config = tail_config(tmp_path, log)
    first = MemorySink()
    async with shipping(config, first):
        write_lines(log, numbered("before", 100))
        await eventually(lambda: len(first.records) == 100, what="the first 100 lines")
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    write_lines(log, numbered("after", 20))
    second = MemorySink()
    async with shipping(config, second):
        await eventually(lambda: len(second.records) == 20, what="the 20 lines written after the truncation")
        await asyncio.sleep(0.2)
    assert second.messages() == numbered("after", 20)


async def test_same_first_bytes_shorter_than_the_offset_after_a_restart_is_read_from_zero(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    log.touch()
    config = tail_config(tmp_path, log)
    first = MemorySink()
    async with shipping(config, first):
        write_lines(log, numbered("line", 100))
        await eventually(lambda: len(first.records) == 100, what="the first 100 lines")
    os.truncate(log, 0)
    write_lines(log, numbered("line", 20))  # the same first bytes: the fingerprint matches
    second = MemorySink()
    async with shipping(config, second):
        await eventually(lambda: len(second.records) == 20, what="the 20 lines after the truncation")
        await asyncio.sleep(0.2)
    assert second.messages() == numbered("line", 20)


async def test_tail_means_history_before_the_first_start_only(tmp_path: Path) -> None:
    old = tmp_path / "old.log"
    write_lines(old, numbered("history", 50))
    config = tail_config(tmp_path, tmp_path / "*.log")
    first = MemorySink()
    async with shipping(config, first):
        write_lines(old, numbered("live", 5))
        await eventually(lambda: len(first.records) == 5, what="lines written while running")
    # While the agent is down: a new file appears (a pod started), and the known one grows.
    write_lines(tmp_path / "new.log", numbered("born-while-down", 30))
    write_lines(old, numbered("while-down", 10))
    second = MemorySink()
    async with shipping(config, second):
        await eventually(lambda: len(second.records) == 40, what="everything written while down")
        await asyncio.sleep(0.3)
    assert sorted(second.messages()) == sorted(numbered("born-while-down", 30) + numbered("while-down", 10))
    assert first.messages() == numbered("live", 5)


async def test_an_untouched_file_first_matched_after_a_restart_is_still_read_from_its_end(
    tmp_path: Path,
) -> None:
    """A glob added to an existing install does not ship the history of files older than the checkpoint."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_lines(tmp_path / "b" / "old.log", numbered("history", 50))
    known = tmp_path / "a" / "app.log"
    known.touch()
    first = MemorySink()
    async with shipping(tail_config(tmp_path, known), first):
        write_lines(known, numbered("live", 5))
        await eventually(lambda: len(first.records) == 5, what="lines written while running")
    second = MemorySink()
    config = tail_config(tmp_path, known, tmp_path / "b" / "*.log")
    async with shipping(config, second):
        write_lines(tmp_path / "b" / "old.log", numbered("new", 3))
        await eventually(lambda: len(second.records) == 3, what="the new lines")
        await asyncio.sleep(0.2)
    assert second.messages() == numbered("new", 3)
