"""The checkpoint's change log: a commit appends what changed; loading trusts no torn or damaged line;
compaction folds it into the snapshot, and a crash at any point of it loses nothing and repeats nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodeagent.logs import checkpoint
from nodeagent.logs.checkpoint import CheckpointStore, PendingCommit


def store_at(tmp_path: Path) -> CheckpointStore:
    store = CheckpointStore(tmp_path / "state" / "logs-checkpoints.json")
    store.load()
    return store


def commit(store: CheckpointStore, *, compact: bool = False) -> PendingCommit:
    pending = store.prepare_commit(compact=compact)
    assert pending is not None
    store.write_commit(pending)
    return pending


def offsets(store: CheckpointStore) -> dict[str, int]:
    return {entry.path: entry.offset for entry in store.unclaimed()}


def test_commits_append_what_changed_and_a_restart_sees_the_latest_positions(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    store.open_cursor((1, 2), b"b", "/b.log", 0)
    assert commit(store).compact  # the first commit after a start without a snapshot writes one
    snapshot = store.path.read_bytes()
    for offset in (100, 200, 300):
        store.acknowledge(a, offset, 0)
        pending = commit(store)
        assert not pending.compact
        assert b"/b.log" not in pending.data  # only what changed
    assert store.path.read_bytes() == snapshot  # not rewritten
    lines = store.changes_path.read_bytes().splitlines()
    assert len(lines) == 3
    assert offsets(store_at(tmp_path)) == {"/a.log": 300, "/b.log": 0}


def test_a_torn_last_line_is_ignored_and_the_next_commit_compacts(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    store.acknowledge(a, 100, 0)
    commit(store)
    store.acknowledge(a, 200, 0)
    last = commit(store).data
    with open(store.changes_path, "r+b") as handle:  # the last append was cut short by a crash
        handle.truncate(store.changes_path.stat().st_size - len(last) // 2)
    again = store_at(tmp_path)
    assert offsets(again) == {"/a.log": 100}
    claimed = again.claim((1, 1), b"a")
    assert claimed is not None
    cursor = again.open_cursor((1, 1), b"a", "/a.log", claimed.offset)
    again.acknowledge(cursor, 150, 0)
    assert commit(again).compact  # nothing is appended after a torn line
    assert again.changes_path.read_bytes() == b""
    assert offsets(store_at(tmp_path)) == {"/a.log": 150}


def test_every_prefix_of_the_change_log_loads_to_a_committed_state(tmp_path: Path) -> None:
    """A crash can leave the change log cut at any byte: each cut loads as the last whole line left."""
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    ends = []
    for offset in (10, 20, 30):
        store.acknowledge(a, offset, 0)
        commit(store)
        ends.append(store.changes_path.stat().st_size)
    whole = store.changes_path.read_bytes()
    for cut in range(len(whole) + 1):
        store.changes_path.write_bytes(whole[:cut])
        complete = sum(1 for end in ends if end <= cut)
        assert offsets(store_at(tmp_path)) == {"/a.log": [0, 10, 20, 30][complete]}, cut


def test_a_damaged_line_stops_the_replay_there(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    for offset in (10, 20, 30):
        store.acknowledge(a, offset, 0)
        commit(store)
    lines = store.changes_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"offset":20', b'"offset":29')  # the checksum no longer matches
    store.changes_path.write_bytes(b"".join(lines))
    assert offsets(store_at(tmp_path)) == {"/a.log": 10}
    assert "damaged line" in caplog.text
    del lines[1]  # a gap in the sequence
    store.changes_path.write_bytes(b"".join(lines))
    assert offsets(store_at(tmp_path)) == {"/a.log": 10}


def test_a_crash_between_the_new_snapshot_and_emptying_the_change_log_replays_nothing_twice(
    tmp_path: Path,
) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    gone = store.open_cursor((1, 2), b"b", "/b.log", 0)
    commit(store)
    store.acknowledge(a, 100, 0)
    store.finish(gone)
    commit(store)
    left_over = store.changes_path.read_bytes()
    store.acknowledge(a, 200, 0)
    commit(store, compact=True)
    assert store.changes_path.read_bytes() == b""
    store.changes_path.write_bytes(left_over)  # as if the crash came before the change log was emptied
    again = store_at(tmp_path)
    assert offsets(again) == {"/a.log": 200}
    snapshot = json.loads(store.path.read_text())
    assert snapshot["changes_seq"] > max(
        json.loads(line.split(b" ", 1)[1])["seq"] for line in left_over.splitlines()
    )


def test_a_change_log_next_to_a_snapshot_that_does_not_name_it_is_not_applied(tmp_path: Path) -> None:
    """An older version (downgrade, then upgrade again) rewrote the snapshot and left the change log as
    it was: its lines belong to an earlier state."""
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    store.acknowledge(a, 100, 0)
    commit(store)
    stale = store.changes_path.read_bytes()
    snapshot = json.loads(store.path.read_text())
    del snapshot["changes_seq"]
    snapshot["files"][0]["offset"] = 500  # what the older version committed since
    store.path.write_text(json.dumps(snapshot))
    store.changes_path.write_bytes(stale)
    assert offsets(store_at(tmp_path)) == {"/a.log": 500}
    store.path.unlink()  # no snapshot at all: a first start, whatever the change log says
    again = store_at(tmp_path)
    assert offsets(again) == {} and again.last_written_ns is None


def test_removed_entries_and_new_keys_survive_compactions_and_restarts(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    cursors = [store.open_cursor((1, n), b"x%d" % n, f"/{n}.log", 0) for n in range(4)]
    commit(store)
    store.finish(cursors[1])
    store.acknowledge(cursors[2], 7, 0)
    commit(store)
    commit(store, compact=True)  # keys are numbered again in the snapshot's order
    new = store.open_cursor((1, 9), b"x9", "/9.log", 3)
    store.acknowledge(cursors[3], 5, 0)
    commit(store)
    again = store_at(tmp_path)
    assert offsets(again) == {"/0.log": 0, "/2.log": 7, "/3.log": 5, "/9.log": 3}
    # A restart: one file claimed (its cursor carries on), the others dropped as gone.
    claimed = again.claim((1, 2), b"x2")
    assert claimed is not None
    cursor = again.open_cursor((1, 2), b"x2", "/2.log", claimed.offset)
    commit(again)  # the first commit after a start that found a change log is a snapshot
    again.acknowledge(cursor, 8, 0)
    commit(again)
    assert offsets(store_at(tmp_path)) == {"/0.log": 0, "/2.log": 8, "/3.log": 5, "/9.log": 3}
    again.drop_unclaimed()
    assert not commit(again).compact
    assert offsets(store_at(tmp_path)) == {"/2.log": 8}
    assert new.offset == 3


def test_the_change_log_is_compacted_when_it_outgrows_the_snapshot(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    compactions = 0
    for offset in range(1, 5000):
        store.acknowledge(a, offset, 0)
        compactions += commit(store).compact
        assert store.changes_path.stat().st_size <= checkpoint.CHANGES_COMPACT_BYTES + 200
    assert compactions >= 1
    assert offsets(store_at(tmp_path)) == {"/a.log": 4999}


def test_a_failed_append_is_followed_by_a_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_at(tmp_path)
    a = store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    store.acknowledge(a, 100, 0)
    commit(store)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", full)
    store.acknowledge(a, 200, 0)
    with pytest.raises(OSError):
        commit(store)
    store.commit_failed()  # what the pipeline does
    monkeypatch.undo()
    store.acknowledge(a, 300, 0)
    assert commit(store).compact
    assert offsets(store_at(tmp_path)) == {"/a.log": 300}


def test_journal_positions_go_through_the_change_log(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.open_cursor((1, 1), b"a", "/a.log", 0)
    commit(store)
    position = store.journal_position("system")
    store.pass_journal_entry(position, "s=1")
    assert not commit(store).compact
    again = store_at(tmp_path)
    assert again.journal_position("system").cursor == "s=1"
    again.keep_journals(set())
    commit(again)
    assert store_at(tmp_path).journal_position("system").cursor is None


def test_a_snapshot_of_an_older_version_is_read_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state" / "logs-checkpoints.json"
    path.parent.mkdir()
    entry = {"dev": 1, "ino": 1, "fp_len": 1, "fp": checkpoint.fingerprint(b"a"), "offset": 42, "path": "/a"}
    path.write_text(json.dumps({"version": 1, "files": [entry]}))
    store = store_at(tmp_path)
    claimed = store.claim((1, 1), b"a")
    assert claimed is not None and claimed.offset == 42
    cursor = store.open_cursor((1, 1), b"a", "/a", 42)
    store.acknowledge(cursor, 50, 0)
    commit(store)
    store.acknowledge(cursor, 60, 0)
    commit(store)
    assert offsets(store_at(tmp_path)) == {"/a": 60}


COMMITTER = """
import sys
from pathlib import Path
from nodeagent.logs import checkpoint
checkpoint.CHANGES_COMPACT_BYTES = 2048  # compactions often, so kills land in them too
store = checkpoint.CheckpointStore(Path(sys.argv[1]))
store.load()
start = int(sys.argv[2])
cursor = store.open_cursor((1, 1), b"a", "/a.log", start)
store.claim((1, 1), b"a")
for offset in range(start + 1, start + 10**9):
    store.acknowledge(cursor, offset, 0)
    store.write_commit(store.prepare_commit())
    print(offset, flush=True)
"""


def test_sigkill_while_committing_loses_no_commit(tmp_path: Path) -> None:
    """A real SIGKILL at random points of appends and compactions: the position loaded afterwards is
    the last one reported committed, or the one being written when the kill came."""
    path = tmp_path / "state" / "logs-checkpoints.json"
    position = 0
    for kill in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", COMMITTER, str(path), str(position)],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        committed = position
        deadline = time.monotonic() + 0.2 + 0.05 * kill
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the committer stopped"
            committed = int(line)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        if rest.strip():
            committed = int(rest.split()[-1])
        store = store_at(tmp_path)
        loaded = offsets(store)["/a.log"]
        assert committed <= loaded <= committed + 1, (kill, committed, loaded)
        assert committed > position  # it got to commit something
        position = loaded
