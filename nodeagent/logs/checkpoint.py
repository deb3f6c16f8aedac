"""Read positions that survive restarts, advanced only by acknowledgements.

A :class:`Cursor` is one file (one generation of it: a truncated file gets a new cursor) as the
pipeline sees it: the offset from which reading again loses nothing, given what the sinks have
acknowledged. The :class:`CheckpointStore` keeps the live cursors and the entries loaded at start that
no file has claimed yet.

On disk: a snapshot, one JSON document with every entry (``logs-checkpoints.json``, replaced
atomically: temporary file, fsync, rename, fsync of the directory), and a change log next to it
(``logs-checkpoints.json.changes``): a commit appends one line with what changed since the previous one
(entries set or gone, by a key each entry keeps until the next snapshot) and fdatasyncs it, instead of
rewriting every entry. A line is ``<crc32 hex> <json>`` with consecutive sequence numbers; loading
applies the lines after the snapshot's ``changes_seq`` up to the first one that is torn, fails its
checksum or breaks the sequence (a crash mid-append), and ignores the rest; a snapshot without
``changes_seq`` (written by an older version, which does not keep the change log up to date) or no
snapshot at all means the change log is not applied. The change log is folded
into a new snapshot (compaction) when it outgrows the snapshot, when the sender is idle, at shutdown,
after any failed commit and at the first commit after a start that found a change log or no snapshot;
the snapshot takes the next sequence number, so a crash between writing it and emptying the change log
replays nothing twice. A snapshot written by an older version (no ``changes_seq``) is
read as before. :meth:`CheckpointStore.write_commit` and :meth:`CheckpointStore.write` block: call them
in a thread.

An entry is claimed by a file with the same device and inode whose first ``fp_len`` bytes hash to
``fp``; a new file that reuses a deleted file's inode does not match and starts fresh.

A journal input's position is a :class:`JournalPosition` (journalctl's cursor string of the last entry
acknowledged), kept in the same document under ``"journals"`` and committed by the same acknowledgements:
its segments' offsets are sequence numbers the position maps back to cursor strings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeagent.logs.durable import fsync_directory, write_all
from nodeagent.logs.identity import FileId, fingerprint, prefix_matches
from nodeagent.logs.lines import HeldPositions
from nodeagent.logs.record import Records

log = logging.getLogger("nodeagent.logs.checkpoint")

FORMAT_VERSION = 1
# The change log is folded into the snapshot once it is larger than this and than the snapshot times
# CHANGES_RATIO: compaction rewrites every entry, appending one costs only what changed.
CHANGES_COMPACT_BYTES = 256 * 1024
CHANGES_RATIO = 4


def _entry_json(
    identity: FileId, fp_len: int, fp: str, offset: int, path: str, replay: HeldPositions | None = None
) -> str:
    """One file's entry in the state file."""
    entry: dict[str, Any] = {
        "dev": identity[0],
        "ino": identity[1],
        "fp_len": fp_len,
        "fp": fp,
        "offset": offset,
        "path": path,
    }
    if replay is not None:
        entry["replay"] = {"until": replay[0], "streams": sorted(replay[1].items(), key=str)}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _parse_replay(item: Any) -> HeldPositions | None:
    """An entry's held positions; anything malformed costs only them (at most some duplicates)."""
    if item is None:
        return None
    try:
        streams = {None if s is None else str(s): int(pos) for s, pos in item["streams"]}
        return int(item["until"]), streams
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(eq=False, slots=True)
class Cursor:
    """The acknowledged position in one file; ``inflight`` counts records read but not acknowledged."""

    file_id: FileId
    fp_len: int
    fp: str
    path: str
    offset: int
    finished: bool = False
    inflight: int = 0
    # Cut point -> end of an over-long line: an acknowledgement up to the cut point goes past the rest.
    skips: dict[int, int] = field(default_factory=dict)
    # Set when the agent stops while the parser holds a piece of some stream: saved with the offset once
    # everything read is acknowledged, so that lines of other streams after it are not delivered again.
    held: HeldPositions | None = None

    def to_json(self) -> str:
        replay = self.held if self.inflight <= 0 else None
        return _entry_json(self.file_id, self.fp_len, self.fp, self.offset, self.path, replay)


@dataclass(eq=False, slots=True)
class JournalPosition:
    """A journal input's acknowledged position: the cursor of the last entry acknowledged (None: none yet).

    The reader numbers the records it reads (:meth:`read`); a segment's offsets are these numbers, and
    acknowledging number n makes the cursor of record n (or of the entries skipped after it) the position.
    """

    input: str
    cursor: str | None
    inflight: int = 0
    last_number: int = 0
    pending: deque[tuple[int, str]] = field(default_factory=deque)  # read, not acknowledged

    def read(self, cursor: str) -> int:
        """A record with this cursor was read: its number, the offset to put in its segment."""
        self.last_number += 1
        self.pending.append((self.last_number, cursor))
        return self.last_number

    def passed(self, cursor: str) -> bool:
        """An entry read and not shipped (excluded, or the tail at a first start); True if the position
        moved now, False if the acknowledgement of the last record read will carry it."""
        if self.pending:
            self.pending[-1] = (self.pending[-1][0], cursor)
            return False
        self.cursor = cursor
        return True

    def acknowledge(self, number: int) -> bool:
        moved = False
        while self.pending and self.pending[0][0] <= number:
            self.cursor = self.pending.popleft()[1]
            moved = True
        return moved

    def to_json(self) -> str:
        return json.dumps(
            {"input": self.input, "cursor": self.cursor}, ensure_ascii=False, separators=(",", ":")
        )


Position = Cursor | JournalPosition


@dataclass(slots=True)
class SavedEntry:
    """A position loaded from the state file, not yet claimed by a file."""

    file_id: FileId
    fp_len: int
    fp: str
    offset: int
    path: str
    replay: HeldPositions | None = None
    key: int = -1  # its key in the change log (see CheckpointStore)

    def matches(self, prefix: bytes) -> bool:
        return prefix_matches(prefix, self.fp_len, self.fp)

    def to_json(self) -> str:
        return _entry_json(self.file_id, self.fp_len, self.fp, self.offset, self.path, self.replay)


@dataclass(slots=True)
class Segment:
    """Records read from one file (or journal) in one go, each with the offset its acknowledgement makes
    safe."""

    cursor: Position
    records: Records
    offsets: list[int]
    nbytes: int  # raw bytes read for these records, for buffer accounting


@dataclass(frozen=True, slots=True)
class PendingCommit:
    """What one commit writes: a change log line, or a whole snapshot (``compact``)."""

    data: bytes
    compact: bool


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.changes_path = path.with_name(path.name + ".changes")
        # Change log: the sequence number of the last line written (or folded into the snapshot), each
        # entry's key (live cursors by id(); saved entries carry theirs), keys gone since the last commit.
        self._seq = 0
        self._keys: dict[int, int] = {}
        self._next_key = 0
        self._gone: list[int] = []
        self._journals_changed = False
        self._changes_bytes = 0  # the change log's size: what a compaction folds in
        self._snapshot_bytes = 0
        self._compact_next = False  # the next commit writes a snapshot
        self._changes_fd: int | None = None
        self._saved: dict[FileId, list[SavedEntry]] = {}
        self._cursors: dict[int, Cursor] = {}
        # Each live cursor's JSON, re-encoded only when it changed: thousands of idle files cost a join.
        self._encoded: dict[int, str] = {}
        self._changed: set[int] = set()
        self._finished: set[int] = set()
        self._journals: dict[str, JournalPosition] = {}  # by input name, loaded or opened
        self.dirty = False
        # When the state file was last written (its mtime, ns), if there was one at start: None is a
        # first start (see FileReader: what ``read_from: tail`` skips).
        self.last_written_ns: int | None = None

    # -- loading (thread) ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read the snapshot and the change log; a missing snapshot is a first start (unless a change log
        says otherwise), a corrupt one is set aside with a warning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entries: list[SavedEntry] = []
        try:
            self.last_written_ns = self.path.stat().st_mtime_ns
            text: bytes | None = self.path.read_bytes()
        except FileNotFoundError:
            text = None
        if text is not None:
            try:
                entries, journals, self._seq = _parse_state(text)
            except ValueError as exc:
                aside = self.path.with_name(self.path.name + ".corrupt")
                log.error(
                    "checkpoint file is unreadable; starting without it",
                    extra={"path": str(self.path), "err": str(exc), "moved_to": str(aside)},
                )
                with contextlib.suppress(OSError):
                    os.replace(self.path, aside)
                text = None
            else:
                self._journals = {position.input: position for position in journals}
                self._snapshot_bytes = len(text)
        by_key = dict(enumerate(entries))
        try:
            changes = self.changes_path.read_bytes()
            mtime = self.changes_path.stat().st_mtime_ns
        except FileNotFoundError:
            changes = b""
        # Only a snapshot that names its place in the change log has one: lines left next to a snapshot an
        # older version wrote (or with no snapshot at all) belong to some earlier state.
        if changes and text is not None and self._seq:
            self.last_written_ns = max(self.last_written_ns or 0, mtime)
            self._replay(changes, by_key)
        self._changes_bytes = len(changes)
        # A change log is folded in (and a torn line dropped) before anything is appended after it, and
        # lines are appended only after a snapshot that names its place among them.
        self._compact_next = bool(changes) or not self._seq
        self._next_key = max(by_key, default=-1) + 1
        for key, entry in by_key.items():
            entry.key = key
            self._saved.setdefault(entry.file_id, []).append(entry)

    def _replay(self, changes: bytes, by_key: dict[int, SavedEntry]) -> None:
        """Apply the change log's lines after the snapshot, up to the first bad one."""
        applied = 0
        for line in changes.split(b"\n")[:-1]:  # the last piece has no newline: empty, or torn
            change = _parse_change(line)
            if change is None:
                log.warning(
                    "checkpoint change log has a damaged line; ignoring it and what follows",
                    extra={"path": str(self.changes_path), "applied": applied},
                )
                return
            seq = change["seq"]
            if seq <= self._seq:
                continue  # already in the snapshot (a crash between writing it and emptying this)
            if seq != self._seq + 1:
                log.warning(
                    "checkpoint change log skips a sequence number; ignoring the rest",
                    extra={"path": str(self.changes_path), "expected": self._seq + 1, "found": seq},
                )
                return
            try:
                updates = {int(key): _parse_entry(item) for key, item in change.get("set", [])}
                gone = [int(key) for key in change.get("del", [])]
                journals = change.get("journals")
                positions = None if journals is None else _parse_journals(journals)
            except (TypeError, ValueError):
                log.warning(
                    "checkpoint change log has a malformed line; ignoring it and what follows",
                    extra={"path": str(self.changes_path), "applied": applied},
                )
                return
            for key in gone:
                by_key.pop(key, None)
            by_key.update(updates)
            if positions is not None:
                self._journals = {position.input: position for position in positions}
            self._seq = seq
            applied += 1

    # -- matching files to saved positions ----------------------------------------------------------

    def claim(self, file_id: FileId, prefix: bytes) -> SavedEntry | None:
        """The saved entry for this file (same identity, same first bytes), removed from the unclaimed."""
        candidates = self._saved.get(file_id)
        if not candidates:
            return None
        # The longest fingerprint that matches is the most specific.
        for entry in sorted(candidates, key=lambda e: -e.fp_len):
            if entry.matches(prefix):
                candidates.remove(entry)
                if not candidates:
                    del self._saved[file_id]
                self._gone.append(entry.key)  # the file's cursor carries it on under a key of its own
                return entry
        return None

    def knows(self, file_id: FileId) -> bool:
        """Whether an unclaimed entry has this identity: the file was read before, and its content
        changed while the agent was down (truncated, rewritten) so that its fingerprint does not match."""
        return bool(self._saved.get(file_id))

    def unclaimed(self) -> list[SavedEntry]:
        return [entry for entries in self._saved.values() for entry in entries]

    def drop_unclaimed(self) -> None:
        """Forget saved entries no file claimed (the files are gone); written out at the next commit."""
        if self._saved:
            self._gone += [entry.key for entry in self.unclaimed()]
            self._saved.clear()
            self.dirty = True

    # -- journal positions --------------------------------------------------------------------------

    def journal_position(self, input: str) -> JournalPosition:
        """The position of a journal input: the saved one, or a new one without a cursor."""
        return self._journals.setdefault(input, JournalPosition(input, None))

    def keep_journals(self, inputs: set[str]) -> None:
        """Forget the saved positions of journal inputs no longer configured."""
        for name in [name for name in self._journals if name not in inputs]:
            del self._journals[name]
            self.dirty = self._journals_changed = True

    def pass_journal_entry(self, position: JournalPosition, cursor: str) -> None:
        """An entry read and not shipped: see :meth:`JournalPosition.passed`."""
        if position.passed(cursor):
            self.dirty = self._journals_changed = True

    # -- live cursors -------------------------------------------------------------------------------

    def open_cursor(self, file_id: FileId, prefix: bytes, path: str, offset: int) -> Cursor:
        cursor = Cursor(file_id, len(prefix), fingerprint(prefix), path, offset)
        self._cursors[id(cursor)] = cursor
        self._keys[id(cursor)] = self._next_key
        self._next_key += 1
        self._changed.add(id(cursor))
        self.dirty = True
        return cursor

    def refresh_fingerprint(self, cursor: Cursor, prefix: bytes) -> None:
        """A file that was shorter than FINGERPRINT_BYTES grew: fingerprint more of it."""
        if len(prefix) > cursor.fp_len:
            cursor.fp_len, cursor.fp = len(prefix), fingerprint(prefix)
            self._changed.add(id(cursor))
            self.dirty = True

    def hold(self, cursor: Cursor, held: HeldPositions) -> None:
        """The agent stops with pieces of some streams held (see Cursor.held)."""
        cursor.held = held
        self._changed.add(id(cursor))
        self.dirty = True

    def acknowledge(self, cursor: Position, offset: int, count: int) -> None:
        cursor.inflight -= count
        if isinstance(cursor, JournalPosition):
            if cursor.acknowledge(offset):
                self.dirty = self._journals_changed = True
            return
        if cursor.skips:
            offset = self._skip_from(cursor, offset)
        if cursor.held is not None:
            self._changed.add(id(cursor))  # written with its held positions once nothing is in flight
        if offset != cursor.offset:
            cursor.offset = offset
            self._changed.add(id(cursor))
            self.dirty = True
        elif cursor.finished and cursor.inflight <= 0:
            self.dirty = True

    def skip(self, cursor: Cursor, at: int, to: int) -> None:
        """Bytes ``at``..``to`` were read and skipped (the rest of a cut line): once everything up to
        ``at`` is acknowledged, the position is ``to``."""
        if cursor.inflight == 0 and cursor.offset == at:
            self.move(cursor, to)
        else:
            cursor.skips[at] = to

    @staticmethod
    def _skip_from(cursor: Cursor, offset: int) -> int:
        offset = cursor.skips.pop(offset, offset)
        while offset in cursor.skips:  # skips one after the other (runs of records the filters dropped)
            offset = cursor.skips.pop(offset)
        for at in [at for at in cursor.skips if at < offset]:
            del cursor.skips[at]  # acknowledged past it: nothing left to skip there
        return offset

    def move(self, cursor: Cursor, offset: int) -> None:
        """Set a position no record stands for (tail start, nothing but skipped bytes)."""
        if cursor.inflight == 0 and offset != cursor.offset:
            cursor.offset = offset
            self._changed.add(id(cursor))
            self.dirty = True

    def finish(self, cursor: Cursor) -> None:
        """The file is done; its entry goes once its last records are acknowledged."""
        cursor.finished = True
        self._finished.add(id(cursor))
        self.dirty = True

    def live_cursors(self) -> list[Cursor]:
        return list(self._cursors.values())

    # -- committing ---------------------------------------------------------------------------------

    def snapshot(self) -> bytes | None:
        """The whole document to write (:meth:`write`), or None when nothing changed since the last commit."""
        if not self.dirty:
            return None
        return self._compaction().data

    def prepare_commit(self, *, compact: bool = False) -> PendingCommit | None:
        """What the next commit writes (:meth:`write_commit`), or None when there is nothing to write: a
        change log line with what changed, or a snapshot when ``compact`` is asked for, after a failed
        commit or at the first commit after a start (if anything is to be written), or when the change log
        has outgrown the snapshot."""
        outgrown = self._changes_bytes > max(CHANGES_COMPACT_BYTES, CHANGES_RATIO * self._snapshot_bytes)
        if ((compact or self._compact_next) and (self.dirty or self._changes_bytes)) or outgrown:
            self._seq += 1  # the snapshot takes a number: the change log lines after it follow it
            return self._compaction()
        if not self.dirty:
            return None
        return self._change()

    def commit_failed(self) -> None:
        """A commit prepared was not written (a sink's flush or the write failed): the next one writes
        everything (a snapshot), whatever part of a change log line made it to disk."""
        self.dirty = True
        self._compact_next = True

    def _prune_finished(self) -> None:
        for key in [k for k in self._finished if self._cursors[k].inflight <= 0]:
            self._finished.discard(key)
            self._changed.discard(key)
            del self._cursors[key]
            self._encoded.pop(key, None)
            self._gone.append(self._keys.pop(key))

    def _compaction(self) -> PendingCommit:
        self.dirty = False
        self._prune_finished()
        for key in self._changed:
            self._encoded[key] = self._cursors[key].to_json()
        self._changed.clear()
        # Keys start again from the entries' order in the snapshot, which is how loading numbers them.
        self._keys = {key: number for number, key in enumerate(self._encoded)}
        unclaimed = self.unclaimed()
        for number, entry in enumerate(unclaimed, start=len(self._keys)):
            entry.key = number
        self._next_key = len(self._keys) + len(unclaimed)
        self._gone.clear()
        self._journals_changed = False
        parts = list(self._encoded.values())
        parts += [e.to_json() for e in unclaimed]
        body = ",\n".join(parts)
        journals = [p.to_json() for p in self._journals.values() if p.cursor is not None]
        if journals:  # only then: a state without journals stays what older versions wrote and read
            body += "\n]," + '"journals":[\n' + ",\n".join(journals)
        # Its place in the change log (left out when no change log is kept: as older versions wrote it).
        seq = f'"changes_seq":{self._seq},' if self._seq else ""
        return PendingCommit(f'{{"version":{FORMAT_VERSION},{seq}"files":[\n{body}\n]}}\n'.encode(), True)

    def _change(self) -> PendingCommit:
        self.dirty = False
        self._prune_finished()
        updates = []
        for key in self._changed:
            encoded = self._encoded[key] = self._cursors[key].to_json()
            updates.append(f"[{self._keys[key]},{encoded}]")
        self._changed.clear()
        self._seq += 1
        fields = [f'"seq":{self._seq}']
        if updates:
            fields.append('"set":[' + ",".join(updates) + "]")
        if self._gone:
            fields.append('"del":[' + ",".join(map(str, self._gone)) + "]")
            self._gone.clear()
        if self._journals_changed:
            self._journals_changed = False
            journals = [p.to_json() for p in self._journals.values() if p.cursor is not None]
            fields.append('"journals":[' + ",".join(journals) + "]")
        body = ("{" + ",".join(fields) + "}").encode()
        return PendingCommit(b"%08x %s\n" % (zlib.crc32(body), body), False)

    def write_commit(self, commit: PendingCommit) -> None:
        """Write a prepared commit durably; blocking."""
        if commit.compact:
            self.write(commit.data)
            return
        try:
            if self._changes_fd is None:
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                self._changes_fd = os.open(self.changes_path, flags, 0o600)
                fsync_directory(self.path.parent)  # the change log's name is durable too
            write_all(self._changes_fd, commit.data)
            os.fdatasync(self._changes_fd)
        except OSError:
            self._close_changes()
            raise
        self._changes_bytes += len(commit.data)

    def _close_changes(self) -> None:
        fd, self._changes_fd = self._changes_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Let go of the change log's descriptor."""
        self._close_changes()

    def probe(self) -> None:
        """Make sure the state file can be written (its directory made if missing): create and remove
        the temporary file :meth:`write` uses; raises OSError; blocking."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        os.unlink(tmp)

    def write(self, data: bytes) -> None:
        """Replace the snapshot atomically and durably, then empty the change log (the snapshot names the
        last line it contains, so what is left there after a crash is not applied again); blocking."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_directory(directory)
        self._snapshot_bytes = len(data)
        self._compact_next = False
        if self._changes_fd is not None:
            os.ftruncate(self._changes_fd, 0)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(self.changes_path, 0)
        self._changes_bytes = 0


def _parse_change(line: bytes) -> dict[str, Any] | None:
    """A change log line's content, or None when it is torn or damaged."""
    checksum, _, body = line.partition(b" ")
    try:
        if len(checksum) != 8 or int(checksum, 16) != zlib.crc32(body):
            return None
        change = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(change, dict) or type(change.get("seq")) is not int:
        return None
    return change


def _parse_entry(item: Any) -> SavedEntry:
    try:
        return SavedEntry(
            (int(item["dev"]), int(item["ino"])),
            int(item["fp_len"]),
            str(item["fp"]),
            int(item["offset"]),
            str(item["path"]),
            _parse_replay(item.get("replay")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad entry {item!r}: {exc}") from None


def _parse_journals(items: Any) -> list[JournalPosition]:
    if not isinstance(items, list):
        raise ValueError("'journals' must be a list")
    journals = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            raise ValueError(f"bad journal entry {item!r}")
        cursor = item.get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise ValueError(f"bad journal cursor in {item!r}")
        journals.append(JournalPosition(item["input"], cursor))
    return journals


def _parse_state(text: bytes) -> tuple[list[SavedEntry], list[JournalPosition], int]:
    """The snapshot's entries, journal positions and the last change log line it contains."""
    try:
        data: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("version") != FORMAT_VERSION
        or not isinstance(data.get("files"), list)
    ):
        raise ValueError(f"expected {{'version': {FORMAT_VERSION}, 'files': [...]}}")
    seq = data.get("changes_seq", 0)
    if type(seq) is not int or seq < 0:
        raise ValueError(f"bad changes_seq {seq!r}")
    entries = [_parse_entry(item) for item in data["files"]]
    return entries, _parse_journals(data.get("journals", [])), seq
