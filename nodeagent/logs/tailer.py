"""One file being read: a :class:`Tailer` holds its descriptor, read position, line splitter, parser and
the cursor it reports to; :class:`InputSource` is an input as its tailers see it.

A tailer reads big chunks with ``pread`` in a worker thread and hands what its
:class:`~nodeagent.logs.lines.LineSplitter` and parser make of them, as a
:class:`~nodeagent.logs.checkpoint.Segment` of :class:`~nodeagent.logs.record.Records`, back to the
reader, which decides when it runs and what happens at its end (:mod:`nodeagent.logs.reader`).
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from dataclasses import dataclass, field
from typing import Any

from nodeagent import safeio
from nodeagent.config.logs import InputConfig
from nodeagent.logs.checkpoint import Cursor, Segment
from nodeagent.logs.discovery import FoundFile, PathMatcher, Roots
from nodeagent.logs.encoding import rfc3339_ns
from nodeagent.logs.filters import FilterChain, Tally, keep_offsets
from nodeagent.logs.identity import (
    FINGERPRINT_BYTES,
    FileId,
    file_id,
    head_matches,
    path_leads_to,
    read_prefix,
)
from nodeagent.logs.lines import HeldPositions, LineCounts, LineSplitter
from nodeagent.logs.parsers import LineParser, ParsedColumns, make_parser
from nodeagent.logs.record import Records

CHUNK_BYTES = 256 * 1024


class State(enum.Enum):
    ACTIVE = "active"  # a matched path points to it
    ROTATED = "rotated"  # no matched path does (renamed away, deleted): drain, then finish
    FINISHED = "finished"


class IdentityLost(Exception):
    """The path no longer leads to the file the tailer was reading."""


class InputSource:
    """An input as the reader uses it: its config, its matcher, and how many files it follows and holds."""

    def __init__(self, config: InputConfig) -> None:
        self.config = config
        self.name = config.name
        self.matcher = PathMatcher(config.paths, config.exclude)
        self.roots = Roots(config.paths)
        self.filters = FilterChain(config.filters)
        self.watched = 0
        self.open = 0

    def new_parser(self) -> LineParser:
        cfg = self.config
        return make_parser(
            cfg.format, cfg.multiline, cfg.max_record_bytes, partial_timeout=cfg.partial_line_timeout
        )

    def new_splitter(self, start: int, replay: HeldPositions | None = None) -> LineSplitter:
        return LineSplitter(self.new_parser(), self.config.max_line_bytes, start, replay)

    def open_file(self, path: str) -> int:
        """A read-only descriptor of the regular file at ``path``, which must resolve within the
        input's roots (checked on the opened descriptor: no check-then-open race); blocking.

        Links are followed: kubelet's /var/log/containers links and, with docker, the /var/log/pods
        links into /var/lib/docker/containers are how container logs are laid out."""
        return safeio.open_regular(path, roots=self.roots.paths)


@dataclass(slots=True)
class StepResult:
    segment: Segment | None = None
    bytes_read: int = 0
    lines: int = 0
    lines_cut: int = 0
    size: int = 0
    nlink: int = 1
    at_eof: bool = False
    truncated: bool = False
    moved: bool = False  # the watched path leads elsewhere now (checked at the end of the file)
    skips: list[tuple[int, int]] = field(default_factory=list)  # see LineCounts.skips
    prefix: bytes | None = None  # the file's first bytes, when the cursor's fingerprint should grow


class Tailer:
    """One file: descriptor, read position, unfinished last line, parser, and the cursor it reports to.

    ``step`` and ``open_checked`` block and run in a worker thread; everything else runs on the event
    loop. A tailer is in at most one worker at a time (``busy``). Slotted: there is one per file
    followed, idle ones included (tens of thousands on a busy node).
    """

    __slots__ = (
        "_problems_seen",
        "busy",
        "created",
        "cursor",
        "deleted_at",
        "eof",
        "fd",
        "file_id",
        "filtered",
        "handed",
        "holding",
        "kubernetes",
        "last_data",
        "last_used",
        "lines",
        "node",
        "offset",
        "path",
        "polled",
        "predecessor",
        "queued",
        "realpath",
        "released",
        "rewake",
        "rotated_at",
        "size",
        "source",
        "state",
        "successors",
        "wake_at",
        "watch_path",
    )

    def __init__(
        self,
        source: InputSource,
        found: FoundFile,
        cursor: Cursor,
        offset: int,
        node: str,
        kubernetes: dict[str, Any] | None,
        replay: HeldPositions | None = None,
    ) -> None:
        self.source = source
        self.path = found.path  # the name records carry, kept across renames
        self.watch_path = found.path  # the name that leads to it now
        self.realpath = found.realpath
        self.file_id: FileId = found.file_id
        self.cursor = cursor
        self.offset = offset  # next byte to read
        self.lines = source.new_splitter(offset, replay)
        self._problems_seen = (0, 0)  # the parser's (failures, dropped) already reported
        self.filtered = Tally()  # what the input's filters dropped and failed on, not yet reported
        # Where the cursor stands once everything handed to the pipeline is acknowledged: records the
        # filters drop entirely in one go are skipped from there (see _segment).
        self.handed = offset
        self.node = node
        self.kubernetes = kubernetes
        self.fd: int | None = None
        self.size = found.size
        self.state = State.ACTIVE
        self.created = time.monotonic()
        self.rotated_at = 0.0
        self.deleted_at: float | None = None
        self.last_data = self.created
        self.last_used = self.created
        self.wake_at: float | None = None
        self.eof = False
        self.queued = False
        self.busy = False
        self.rewake = False
        self.released = False  # a successor at the same path may start (this one reached its end)
        self.predecessor: Tailer | None = None
        self.successors: tuple[Tailer, ...] = ()  # rare (a rotation): no list per file until then
        self.polled = True
        self.holding = False  # an unfinished line or parser pieces wait for more (or a timeout)

    def __repr__(self) -> str:
        return f"<Tailer {self.path} {self.file_id} {self.state.value} @{self.offset}>"

    # -- blocking -----------------------------------------------------------------------------------

    def open_checked(self, path: str) -> None:
        """Open ``path`` and make sure it is still this file; raises IdentityLost or OSError.

        The same inode with other first bytes at the name that led to it is this file rewritten (or a
        new file that got its inode): :meth:`step` then reads it again from 0, as after a truncation.
        Under another name it is another file."""
        fd = self.source.open_file(path)
        try:
            st = os.fstat(fd)
            if file_id(st) != self.file_id:
                raise IdentityLost(path)
            rewritten = not head_matches(fd, self.cursor.fp_len, self.cursor.fp)
            if rewritten and (path != self.watch_path or self.state is not State.ACTIVE):
                raise IdentityLost(path)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = st.st_size

    def step(self, now: float, budget: int, reopen_path: str | None = None) -> StepResult:
        """Read what is there (up to ``budget`` bytes), parse it, and look around at the end.

        ``reopen_path``: the tailer is closed; open it there first (see :meth:`open_checked`)."""
        if reopen_path is not None:
            self.open_checked(reopen_path)
        fd = self.fd
        assert fd is not None
        st = os.fstat(fd)
        result = StepResult(size=st.st_size, nlink=st.st_nlink)
        self.size = st.st_size
        if st.st_size < self.offset or not head_matches(fd, self.cursor.fp_len, self.cursor.fp):
            # Truncated (copytruncate), possibly already written past the old offset again.
            result.truncated = True
            result.prefix = read_prefix(fd)
            return result
        out = ParsedColumns(rfc3339_ns(time.time_ns()))
        counts = LineCounts()
        lines = self.lines
        while result.bytes_read < budget:
            data = os.pread(fd, min(CHUNK_BYTES, budget - result.bytes_read), self.offset)
            if not data:
                result.at_eof = True
                break
            self.offset += len(data)
            result.bytes_read += len(data)
            lines.feed(data, now, out, counts)
        lines.expire(now, self.source.config.partial_line_timeout, out)
        result.lines, result.lines_cut, result.skips = counts.lines, counts.cut, counts.skips
        if result.at_eof:
            self.size = max(self.size, self.offset)
            if self.state is State.ACTIVE:
                result.moved = not path_leads_to(self.watch_path, self.file_id)
            if self.cursor.fp_len < FINGERPRINT_BYTES and self.size > self.cursor.fp_len:
                result.prefix = read_prefix(fd)
        if out.offsets:
            result.segment = self._segment(out, result.bytes_read, result.skips)
        return result

    def _segment(self, out: ParsedColumns, nbytes: int, skips: list[tuple[int, int]]) -> Segment | None:
        """The records parsed, through the input's filters. When they drop every one, there is nothing
        to acknowledge: the bytes are skipped instead (added to ``skips``), so the position still moves
        past them once what was handed before is acknowledged."""
        # Every time is set: a record without its own carries the read time (``default_time``).
        times: list[str] = out.times  # type: ignore[assignment]
        records = Records(times, out.messages, out.streams, self.path, self.node, self.kubernetes)
        offsets = out.offsets
        if self.source.filters:
            records, kept = self.source.filters.apply_records(records, self.filtered)
            if not kept:
                skips.append((self.handed, offsets[-1]))
                self.handed = offsets[-1]
                return None
            offsets = keep_offsets(offsets, kept)
        self.handed = offsets[-1]
        return Segment(self.cursor, records, offsets, nbytes)

    # -- on the loop (CPU only) ---------------------------------------------------------------------

    def drain_held(self) -> Segment | None:
        """Everything held back (unfinished last line, parser pieces) as records: the file is done."""
        out = ParsedColumns(rfc3339_ns(time.time_ns()))
        self.lines.drain(time.time(), out)
        # The file is done: its cursor goes once acknowledged, so dropped bytes need no skip.
        return self._segment(out, 0, []) if out.offsets else None

    def restart_at_zero(self, cursor: Cursor) -> None:
        """The file was truncated: read it again from the start under a new cursor (take the parser's
        problems first: the new parser counts from 0)."""
        self.cursor = cursor
        self.offset = 0
        self.handed = 0
        self.lines = self.source.new_splitter(0)
        self._problems_seen = (0, 0)

    def take_parser_problems(self) -> tuple[int, int]:
        """Lines the parser failed on, and held records it dropped, since the last call."""
        parser = self.lines.parser
        failures, dropped = self._problems_seen
        if parser.failures != failures or parser.dropped != dropped:  # no new tuple per file when none
            self._problems_seen = (parser.failures, parser.dropped)
        return parser.failures - failures, parser.dropped - dropped

    def take_filtered(self) -> Tally:
        """What the input's filters dropped and failed on since the last call."""
        tally, self.filtered = self.filtered, Tally()
        return tally

    def settled_offset(self) -> int | None:
        """The offset up to which everything read is delivered or was dropped by the parser, if known."""
        if self.cursor.inflight:
            return None
        return self.lines.settled_offset()

    def holds_data(self) -> bool:
        return self.lines.holds_data()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
