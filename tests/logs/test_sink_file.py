"""The file sink: JSON lines appended, rotation followed, fsync at commit, no partial lines."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from nodeagent.logs.sinks import file as file_sink_module
from nodeagent.logs.sinks.base import RetryableSinkError
from nodeagent.logs.sinks.file import FileSink
from tests.logs.conftest import KUBE
from tests.logs.conftest import sink_record as record

# -- file ---------------------------------------------------------------------------------------------


def read_messages(path: Path) -> list[str]:
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


async def test_file_sink_appends_json_lines_and_creates_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "out.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(record("already there").to_json() + "\n")
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("one"), record("two", kubernetes=KUBE)])
    await sink.send([record("three")])
    await sink.flush()
    await sink.close()
    assert read_messages(path) == ["already there", "one", "two", "three"]
    assert json.loads(path.read_text().splitlines()[2])["kubernetes"] == KUBE

    fresh = tmp_path / "new" / "sub" / "out.jsonl"
    sink = FileSink("f", {"path": str(fresh)})
    await sink.start()
    await sink.send([record("x")])
    await sink.close()
    assert read_messages(fresh) == ["x"]


async def test_file_sink_follows_rotation_by_rename_and_by_removal(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("before rename")])
    path.rename(tmp_path / "out.jsonl.1")  # logrotate "create" mode
    await sink.send([record("after rename")])
    path.unlink()  # someone removed it
    await sink.send([record("after removal")])
    await sink.flush()
    await sink.close()
    assert read_messages(tmp_path / "out.jsonl.1") == ["before rename"]
    assert read_messages(path) == ["after removal"]


async def test_file_sink_fsyncs_on_flush_and_before_letting_a_rotated_file_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(file_sink_module.os, "fsync", counting_fsync)
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.flush()
    assert synced == []  # nothing written, nothing to sync
    await sink.send([record("a")])
    first_inode = path.stat().st_ino
    await sink.flush()
    assert synced == [first_inode]
    await sink.flush()
    assert synced == [first_inode]  # clean: no second fsync
    await sink.send([record("b")])
    path.rename(tmp_path / "old")
    await sink.send([record("c")])  # the renamed file is fsynced before it is closed
    assert synced == [first_inode, first_inode]
    await sink.close()
    assert synced[-1] == path.stat().st_ino  # close syncs what the new file got


async def test_file_sink_failed_write_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("first")])
    real_write = os.write
    calls = {"n": 0}

    def half_then_enospc(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_sink_module.os, "write", half_then_enospc)
    with pytest.raises(RetryableSinkError, match="No space left"):
        await sink.send([record("second " * 50), record("third")])
    monkeypatch.setattr(file_sink_module.os, "write", real_write)
    assert read_messages(path) == ["first"]
    await sink.send([record("second"), record("third")])  # the retry
    await sink.close()
    assert read_messages(path) == ["first", "second", "third"]


async def test_file_sink_unusable_path_is_retryable_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    sink = FileSink("f", {"path": str(blocker / "out.jsonl")})
    await sink.start()  # logs a warning, does not raise
    with pytest.raises(RetryableSinkError):
        await sink.send([record("x")])
    await sink.close()
