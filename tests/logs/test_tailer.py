"""One file's reading (nodeagent.logs.tailer.Tailer), step by step on real files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nodeagent.config.logs import InputConfig
from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.discovery import stat_path
from nodeagent.logs.identity import read_prefix
from nodeagent.logs.tailer import IdentityLost, InputSource, Tailer


@contextmanager
def tailer_for(tmp_path: Path, path: Path) -> Iterator[Tailer]:
    found = stat_path(str(path))
    assert found is not None
    source = InputSource(InputConfig(name="t", paths=(str(path),), format="plain"))
    fd = os.open(path, os.O_RDONLY)
    prefix = read_prefix(fd)
    store = CheckpointStore(tmp_path / "state.json")
    tailer = Tailer(source, found, store.open_cursor(found.file_id, prefix, str(path), 0), 0, "node", None)
    tailer.fd = fd
    try:
        yield tailer
    finally:
        tailer.close()


def test_a_step_reads_whole_lines_and_holds_the_unfinished_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\nthr")
    with tailer_for(tmp_path, log) as tailer:
        result = tailer.step(time.time(), 1 << 20)
        assert result.at_eof and result.bytes_read == 11 and result.lines == 2
        assert result.segment is not None and list(result.segment.records.messages) == ["one", "two"]
        assert result.segment.offsets == [4, 8]
        assert tailer.holds_data() and tailer.settled_offset() is None
        with open(log, "ab") as fh:
            fh.write(b"ee\n")
        result = tailer.step(time.time(), 1 << 20)
        assert result.segment is not None and list(result.segment.records.messages) == ["three"]


def test_a_step_notices_truncation_and_a_moved_path(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a long first line\n")
    with tailer_for(tmp_path, log) as tailer:
        tailer.step(time.time(), 1 << 20)
        os.truncate(log, 0)
        assert tailer.step(time.time(), 1 << 20).truncated
        log.write_bytes(b"a long first line\n")  # same content again, then renamed away
        tailer.restart_at_zero(tailer.cursor)
        os.rename(log, tmp_path / "app.log.1")
        assert tailer.step(time.time(), 1 << 20).moved


def test_reopening_checks_identity_and_fingerprint(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"original content\n")
    with tailer_for(tmp_path, log) as tailer:
        pass
    tailer.open_checked(str(log))  # same file: fine
    tailer.close()
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"original content\n")  # same bytes, another inode
    with pytest.raises(IdentityLost):
        tailer.open_checked(str(log))
    assert tailer.fd is None
