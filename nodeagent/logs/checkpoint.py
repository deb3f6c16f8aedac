"""Read positions that survive restarts, advanced only by acknowledgements.

A :class:`Cursor` is one file (one generation of it: a truncated file gets a new cursor) as the
pipeline sees it: the offset from which reading again loses nothing, given what the sinks have
acknowledged. The :class:`CheckpointStore` keeps the live cursors and the entries loaded at start that
no file has claimed yet, and writes them all as one JSON document, atomically (temporary file, fsync,
rename, fsync of the directory). :meth:`CheckpointStore.write` blocks: call it in a thread.

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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeagent.logs.identity import FileId, fingerprint, prefix_matches
from nodeagent.logs.record import Records

log = logging.getLogger("nodeagent.logs.checkpoint")

FORMAT_VERSION = 1


def _entry_json(identity: FileId, fp_len: int, fp: str, offset: int, path: str) -> str:
    """One file's entry in the state file."""
    entry = {
        "dev": identity[0],
        "ino": identity[1],
        "fp_len": fp_len,
        "fp": fp,
        "offset": offset,
        "path": path,
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


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

    def to_json(self) -> str:
        return _entry_json(self.file_id, self.fp_len, self.fp, self.offset, self.path)


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

    def matches(self, prefix: bytes) -> bool:
        return prefix_matches(prefix, self.fp_len, self.fp)

    def to_json(self) -> str:
        return _entry_json(self.file_id, self.fp_len, self.fp, self.offset, self.path)


@dataclass(slots=True)
class Segment:
    """Records read from one file (or journal) in one go, each with the offset its acknowledgement makes
    safe."""

    cursor: Position
    records: Records
    offsets: list[int]
    nbytes: int  # raw bytes read for these records, for buffer accounting


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path
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
        """Read the state file; a missing file is a first start, a corrupt one is set aside with a warning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.last_written_ns = self.path.stat().st_mtime_ns
            text = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            entries, journals = _parse_state(text)
        except ValueError as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.error(
                "checkpoint file is unreadable; starting without it",
                extra={"path": str(self.path), "err": str(exc), "moved_to": str(aside)},
            )
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            return
        for entry in entries:
            self._saved.setdefault(entry.file_id, []).append(entry)
        self._journals = {position.input: position for position in journals}

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
            self.dirty = True

    def pass_journal_entry(self, position: JournalPosition, cursor: str) -> None:
        """An entry read and not shipped: see :meth:`JournalPosition.passed`."""
        if position.passed(cursor):
            self.dirty = True

    # -- live cursors -------------------------------------------------------------------------------

    def open_cursor(self, file_id: FileId, prefix: bytes, path: str, offset: int) -> Cursor:
        cursor = Cursor(file_id, len(prefix), fingerprint(prefix), path, offset)
        self._cursors[id(cursor)] = cursor
        self._changed.add(id(cursor))
        self.dirty = True
        return cursor

    def refresh_fingerprint(self, cursor: Cursor, prefix: bytes) -> None:
        """A file that was shorter than FINGERPRINT_BYTES grew: fingerprint more of it."""
        if len(prefix) > cursor.fp_len:
            cursor.fp_len, cursor.fp = len(prefix), fingerprint(prefix)
            self._changed.add(id(cursor))
            self.dirty = True

    def acknowledge(self, cursor: Position, offset: int, count: int) -> None:
        cursor.inflight -= count
        if isinstance(cursor, JournalPosition):
            if cursor.acknowledge(offset):
                self.dirty = True
            return
        if cursor.skips:
            offset = self._skip_from(cursor, offset)
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
        """The document to write, or None when nothing changed since the last snapshot."""
        if not self.dirty:
            return None
        self.dirty = False
        for key in [k for k in self._finished if self._cursors[k].inflight <= 0]:
            self._finished.discard(key)
            self._changed.discard(key)
            del self._cursors[key]
            self._encoded.pop(key, None)
        for key in self._changed:
            self._encoded[key] = self._cursors[key].to_json()
        self._changed.clear()
        parts = list(self._encoded.values())
        parts += [e.to_json() for e in self.unclaimed()]
        body = ",\n".join(parts)
        journals = [p.to_json() for p in self._journals.values() if p.cursor is not None]
        if journals:  # only then: a state without journals stays what older versions wrote and read
            body += "\n]," + '"journals":[\n' + ",\n".join(journals)
        return f'{{"version":{FORMAT_VERSION},"files":[\n{body}\n]}}\n'.encode()

    def write(self, data: bytes) -> None:
        """Replace the state file atomically and durably; blocking."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _parse_state(text: bytes) -> tuple[list[SavedEntry], list[JournalPosition]]:
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
    entries = []
    for item in data["files"]:
        try:
            entries.append(
                SavedEntry(
                    (int(item["dev"]), int(item["ino"])),
                    int(item["fp_len"]),
                    str(item["fp"]),
                    int(item["offset"]),
                    str(item["path"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad entry {item!r}: {exc}") from None
    journals = []
    if not isinstance(data.get("journals", []), list):
        raise ValueError("'journals' must be a list")
    for item in data.get("journals", []):
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            raise ValueError(f"bad journal entry {item!r}")
        cursor = item.get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise ValueError(f"bad journal cursor in {item!r}")
        journals.append(JournalPosition(item["input"], cursor))
    return entries, journals
