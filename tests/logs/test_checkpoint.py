"""The checkpoint store: atomic, durable, matched by identity and fingerprint, pruned when done."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.identity import FINGERPRINT_BYTES, fingerprint


def store_at(tmp_path: Path) -> CheckpointStore:
    store = CheckpointStore(tmp_path / "state" / "logs-checkpoints.json")
    store.load()
    return store


def commit(store: CheckpointStore) -> None:
    data = store.snapshot()
    assert data is not None
    store.write(data)


def test_positions_survive_a_restart(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cursor = store.open_cursor((1, 42), b"first bytes of the file", "/var/log/a.log", 0)
    cursor.inflight = 3
    store.acknowledge(cursor, 120, 3)
    commit(store)
    assert not (tmp_path / "state" / "logs-checkpoints.json.tmp").exists()

    again = store_at(tmp_path)
    assert again.claim((1, 42), b"first bytes of the file and more written since").offset == 120
    assert again.claim((1, 42), b"first bytes of the file") is None  # claimed once


def test_same_inode_with_other_content_does_not_match(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.open_cursor((1, 42), b"old content", "/var/log/a.log", 0)
    commit(store)
    again = store_at(tmp_path)
    assert again.claim((1, 42), b"new content") is None
    assert again.claim((1, 42), b"old") is None  # shorter than the fingerprint: cannot be the same file
    assert again.claim((2, 42), b"old content") is None  # other device
    assert again.claim((1, 42), b"old content!").offset == 0


def test_fingerprint_grows_with_a_short_file(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cursor = store.open_cursor((1, 7), b"ab", "/x.log", 0)
    assert cursor.fp_len == 2
    store.refresh_fingerprint(cursor, b"ab" * 400)
    assert cursor.fp_len == len(b"ab" * 400)
    assert cursor.fp == fingerprint(b"ab" * 400) == fingerprint((b"ab" * 400)[:FINGERPRINT_BYTES])


def test_finished_files_are_dropped_once_acknowledged(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    done = store.open_cursor((1, 1), b"a", "/a.log", 0)
    live = store.open_cursor((1, 2), b"b", "/b.log", 0)
    done.inflight = 2
    store.finish(done)
    commit(store)
    assert len(json.loads(store.path.read_text())["files"]) == 2  # records still in flight
    store.acknowledge(done, 10, 2)
    commit(store)
    files = json.loads(store.path.read_text())["files"]
    assert [f["ino"] for f in files] == [2]
    assert store.live_cursors() == [live]


def test_nothing_changed_nothing_written(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cursor = store.open_cursor((1, 1), b"a", "/a.log", 5)
    commit(store)
    assert store.snapshot() is None
    store.acknowledge(cursor, 5, 0)
    assert store.snapshot() is None
    store.move(cursor, 9)
    assert store.snapshot() is not None


def test_unclaimed_entries_are_kept_until_dropped(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.open_cursor((1, 1), b"a", "/a.log", 5)
    store.open_cursor((1, 2), b"b", "/b.log", 6)
    commit(store)
    again = store_at(tmp_path)
    again.claim((1, 1), b"a")
    assert [e.path for e in again.unclaimed()] == ["/b.log"]
    again.dirty = True
    commit(again)  # a commit before the first scan finished keeps /b.log
    assert {f["path"] for f in json.loads(again.path.read_text())["files"]} == {"/b.log"}
    again.drop_unclaimed()
    commit(again)
    assert json.loads(again.path.read_text())["files"] == []


def test_a_corrupt_file_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state" / "logs-checkpoints.json"
    path.parent.mkdir()
    path.write_text('{"version": 1, "files": [{"dev": 1')
    with caplog.at_level(logging.ERROR):
        store = store_at(tmp_path)
    assert store.unclaimed() == []
    assert (tmp_path / "state" / "logs-checkpoints.json.corrupt").exists()
    assert "checkpoint file is unreadable" in caplog.text


def test_a_failed_write_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_at(tmp_path)
    cursor = store.open_cursor((1, 1), b"a", "/a.log", 0)
    store.acknowledge(cursor, 100, 0)
    commit(store)
    before = store.path.read_bytes()
    store.acknowledge(cursor, 200, 0)

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        commit(store)
    assert store.path.read_bytes() == before
    assert json.loads(before)["files"][0]["offset"] == 100


def test_a_skip_moves_the_position_past_a_cut_line_once_its_head_is_acknowledged(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cursor = store.open_cursor((1, 2), b"head", "/f", 0)
    cursor.inflight = 1  # the cut line's head, not yet acknowledged
    store.skip(cursor, 100, 5000)
    store.acknowledge(cursor, 100, 1)
    assert cursor.offset == 5000 and not cursor.skips
    cursor.inflight = 1
    store.acknowledge(cursor, 5100, 1)
    store.skip(cursor, 5100, 9000)  # head already acknowledged: the position moves at once
    assert cursor.offset == 9000
    store.skip(cursor, 9100, 12000)  # a head whose own offset was held back by the parser
    cursor.inflight = 1
    store.acknowledge(cursor, 9050, 1)
    assert cursor.skips == {9100: 12000}
    cursor.inflight = 1
    store.acknowledge(cursor, 12500, 1)  # acknowledged past a skip that never applied: forgotten
    assert cursor.offset == 12500 and not cursor.skips
