"""Reading files: one :class:`Tailer` per file, and the :class:`FileReader` that finds, schedules and
retires them.

A tailer reads big chunks with ``pread`` in a worker thread, decodes and splits each chunk's whole lines
at once, has its parser cut them into columns (:meth:`LineParser.feed_lines`) and hands the records, as
a :class:`~nodeagent.logs.checkpoint.Segment` of :class:`~nodeagent.logs.record.Records`, to the
pipeline. The reader owns the lifecycle:

- discovery: a scan (glob) at start, then file events (see :mod:`nodeagent.logs.watch`) for new files
  within a second, and a rescan every ``rescan_interval`` as a safety net (at least every
  RESCAN_WITHOUT_EVENTS seconds while inotify is unavailable);
- rotation by rename: the old file is read to its end, then for ``rotate_wait`` more in case its writer
  is still at it; the new file at the same path starts only once the old one has reached its end;
- copytruncate (size below the read offset): reading restarts at 0 under a new cursor;
- deletion: the file is drained and closed; if it cannot be drained within ``deleted_file_timeout``
  (sinks down, backpressure) it is closed anyway and the unread bytes are counted as given up;
- a bounded number of open files: idle files are closed (least recently used first) and reopened by
  path, checked against their identity and fingerprint.

What the scan finds is the authority on "which files exist": a file no glob reaches any more is rotated
(finished after its drain), a file found under another matching name just continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from itertools import accumulate

from nodeagent.config.logs import InputConfig, LogsConfig
from nodeagent.logs import metrics
from nodeagent.logs.checkpoint import CheckpointStore, Cursor, Segment
from nodeagent.logs.discovery import (
    FINGERPRINT_BYTES,
    FileId,
    FoundFile,
    PathMatcher,
    find_inode,
    fingerprint,
    read_prefix,
    scan,
    stat_path,
    watch_roots,
)
from nodeagent.logs.kubernetes import metadata_from_path
from nodeagent.logs.parsers import LineParser, ParsedColumns, make_parser
from nodeagent.logs.record import Records
from nodeagent.logs.watch import Change, PathWatcher

log = logging.getLogger("nodeagent.logs.reader")

CHUNK_BYTES = 256 * 1024
STEP_BYTES = 1024 * 1024  # read per turn, so one busy file cannot starve the others
WORKERS = 4
MIN_SCAN_GAP = 0.5  # seconds between two on-demand scans
RESCAN_WITHOUT_EVENTS = 10.0  # without inotify, scans are how new files are found
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0)


def rfc3339_ns(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _open_readonly(path: str) -> int:
    try:
        return os.open(path, _OPEN_FLAGS)
    except PermissionError:
        if not _OPEN_FLAGS & getattr(os, "O_NOATIME", 0):
            raise
        return os.open(path, _OPEN_FLAGS & ~os.O_NOATIME)  # O_NOATIME needs file ownership


class State(enum.Enum):
    ACTIVE = "active"  # a matched path points to it
    ROTATED = "rotated"  # no matched path does (renamed away, deleted): drain, then finish
    FINISHED = "finished"


class IdentityLost(Exception):
    """The path no longer leads to the file the tailer was reading."""


class PipelineInput:
    """What the reader needs from the pipeline (see :class:`nodeagent.logs.pipeline.Pipeline`)."""

    async def wait_for_space(self) -> None:
        raise NotImplementedError

    def put(self, segment: Segment) -> None:
        raise NotImplementedError


class InputSource:
    """An input as the reader uses it: its config, matcher and metric children."""

    def __init__(self, config: InputConfig) -> None:
        self.config = config
        self.name = config.name
        self.matcher = PathMatcher(config.paths, config.exclude)
        self.lines_read = metrics.LINES_READ.labels(self.name)
        self.bytes_read = metrics.BYTES_READ.labels(self.name)
        self.lines_truncated = metrics.LINES_TRUNCATED.labels(self.name)
        self.files_watched = metrics.FILES_WATCHED.labels(self.name)
        self.files_open = metrics.FILES_OPEN.labels(self.name)
        self.files_rotated = metrics.FILES_ROTATED.labels(self.name)
        self.files_truncated = metrics.FILES_TRUNCATED.labels(self.name)
        self.bytes_behind = metrics.BYTES_BEHIND.labels(self.name)
        self.watched = 0
        self.open = 0

    def new_parser(self) -> LineParser:
        cfg = self.config
        return make_parser(
            cfg.format, cfg.multiline, cfg.max_record_bytes, partial_timeout=cfg.partial_line_timeout
        )


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
    prefix: bytes | None = None  # the file's first bytes, when the cursor's fingerprint should grow


class Tailer:
    """One file: descriptor, read position, unfinished last line, parser, and the cursor it reports to.

    ``step``, ``open_checked`` and ``prefix`` block and run in a worker thread; everything else runs on
    the event loop. A tailer is in at most one worker at a time (``busy``).
    """

    def __init__(
        self,
        source: InputSource,
        found: FoundFile,
        cursor: Cursor,
        offset: int,
        node: str,
        kubernetes: dict | None,
    ) -> None:
        self.source = source
        self.path = found.path  # the name records carry, kept across renames
        self.watch_path = found.path  # the name that leads to it now
        self.realpath = found.realpath
        self.file_id: FileId = found.file_id
        self.cursor = cursor
        self.offset = offset  # next byte to read
        self.line_start = offset  # where the unfinished line in ``pending`` starts
        self.pending = b""
        self.pending_since: float | None = None
        self.discarding = False  # inside an over-long line whose head was emitted
        self.node = node
        self.kubernetes = kubernetes
        self.parser = source.new_parser()
        self.fd: int | None = None
        self.size = found.size
        self.state = State.ACTIVE
        self.created = time.monotonic()
        self.rotated_at = 0.0
        self.deleted_at: float | None = None
        self.last_data = self.created
        self.last_used = self.created
        self.last_poll = 0.0
        self.wake_at: float | None = None
        self.eof = False
        self.queued = False
        self.busy = False
        self.rewake = False
        self.released = False  # a successor at the same path may start (this one reached its end)
        self.predecessor: Tailer | None = None
        self.successors: list[Tailer] = []
        self.polled = True
        self.holding = False  # an unfinished line or parser pieces wait for more (or a timeout)

    def __repr__(self) -> str:
        return f"<Tailer {self.path} {self.file_id} {self.state.value} @{self.offset}>"

    # -- blocking -----------------------------------------------------------------------------------

    def open_checked(self, path: str) -> None:
        """Open ``path`` and make sure it is still this file; raises IdentityLost or OSError."""
        fd = _open_readonly(path)
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.file_id:
                raise IdentityLost(path)
            prefix = os.pread(fd, self.cursor.fp_len, 0) if self.cursor.fp_len else b""
            if len(prefix) < self.cursor.fp_len or fingerprint(prefix) != self.cursor.fp:
                raise IdentityLost(path)  # same inode, other content: the old file is gone
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
        if st.st_size < self.offset or self._head_changed(fd):
            # Truncated (copytruncate), possibly already written past the old offset again.
            result.truncated = True
            result.prefix = read_prefix(fd)
            return result
        out = ParsedColumns(rfc3339_ns(time.time_ns()))
        while result.bytes_read < budget:
            data = os.pread(fd, min(CHUNK_BYTES, budget - result.bytes_read), self.offset)
            if not data:
                result.at_eof = True
                break
            self.offset += len(data)
            result.bytes_read += len(data)
            self._consume(data, now, out, result)
        if (
            self.pending
            and not self.discarding
            and self.pending_since is not None
            and now - self.pending_since >= self.source.config.partial_line_timeout
        ):
            self._emit_pending(now, out)
        out.add(self.parser.flush_expired(now))
        if result.at_eof:
            self.size = max(self.size, self.offset)
            if self.state is State.ACTIVE:
                result.moved = self._path_moved()
            if self.cursor.fp_len < FINGERPRINT_BYTES and self.size > self.cursor.fp_len:
                result.prefix = read_prefix(fd)
        if out.offsets:
            result.segment = self._segment(out, result.bytes_read)
        return result

    def _segment(self, out: ParsedColumns, nbytes: int) -> Segment:
        records = Records(
            out.times,
            out.messages,
            out.streams,
            self.path,  # type: ignore[arg-type]
            self.node,
            self.kubernetes,
        )
        return Segment(self.cursor, records, out.offsets, nbytes)

    def _head_changed(self, fd: int) -> bool:
        fp_len = self.cursor.fp_len
        if not fp_len:
            return False
        return fingerprint(os.pread(fd, fp_len, 0)) != self.cursor.fp

    def _path_moved(self) -> bool:
        try:
            st = os.stat(self.watch_path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self.file_id

    def _consume(self, data: bytes, now: float, out: ParsedColumns, result: StepResult) -> None:
        if self.discarding:
            newline = data.find(b"\n")
            if newline < 0:
                self.line_start += len(data)
                return
            self.line_start += newline + 1
            data = data[newline + 1 :]
            self.discarding = False
        had_pending = bool(self.pending)
        data = self.pending + data if had_pending else data
        whole = data.rfind(b"\n") + 1
        block, tail = data[:whole], data[whole:]
        if block:
            self._feed_block(block, now, out, result)
        max_line = self.source.config.max_line_bytes
        if len(tail) > max_line:
            # An over-long line whose end has not come: pass its head on now, skip the rest.
            pos = self.line_start
            out.add(self.parser.feed(tail[:max_line], pos, pos + max_line, now))
            result.lines += 1
            result.lines_cut += 1
            self.line_start = pos + len(tail)
            self.pending, self.pending_since, self.discarding = b"", None, True
            return
        if tail and (block or not had_pending):
            self.pending_since = now
        elif not tail:
            self.pending_since = None
        self.pending = tail

    def _feed_block(self, block: bytes, now: float, out: ParsedColumns, result: StepResult) -> None:
        """Whole lines (``block`` ends with a newline): decoded and split once, parsed together."""
        text = block.decode("utf-8", "replace")
        lines = text.split("\n")
        lines.pop()  # after the last newline
        # Byte lengths: the text's own when every character is one byte (ASCII, the usual case).
        sizes = list(map(len, lines if len(text) == len(block) else block.split(b"\n")))
        max_line = self.source.config.max_line_bytes
        if max(sizes) > max_line:
            self._feed_cut(block, max_line, now, out, result)
        else:
            ends = list(accumulate(map((1).__add__, sizes[: len(lines)]), initial=self.line_start))
            self.parser.feed_lines(lines, block, ends, now, out)
            self.line_start = ends[-1]
        result.lines += len(lines)

    def _feed_cut(
        self, block: bytes, max_line: int, now: float, out: ParsedColumns, result: StepResult
    ) -> None:
        """Line by line, cutting those longer than ``max_line``."""
        feed = self.parser.feed
        pos = self.line_start
        for line in block.split(b"\n")[:-1]:
            end = pos + len(line) + 1
            if len(line) > max_line:
                line = line[:max_line]
                result.lines_cut += 1
            out.add(feed(line, pos, end, now))
            pos = end
        self.line_start = pos

    def _emit_pending(self, now: float, out: ParsedColumns) -> None:
        """The last line never got its newline: pass it on as it is (the rest, if any, comes later)."""
        line, start = self.pending, self.line_start
        end = start + len(line)
        self.pending, self.pending_since, self.line_start = b"", None, end
        out.add(self.parser.feed(line, start, end, now))

    # -- on the loop (CPU only) ---------------------------------------------------------------------

    def drain_held(self) -> Segment | None:
        """Everything held back (unfinished last line, parser pieces) as records: the file is done."""
        now = time.time()
        out = ParsedColumns(rfc3339_ns(time.time_ns()))
        if self.pending and not self.discarding:
            self._emit_pending(now, out)
        out.add(self.parser.flush_all())
        return self._segment(out, 0) if out.offsets else None

    def settled_offset(self) -> int | None:
        """The offset up to which everything read is delivered or was dropped by the parser, if known."""
        if self.pending or self.discarding or self.parser.pending_bytes or self.cursor.inflight:
            return None
        return self.line_start

    def holds_data(self) -> bool:
        return bool(self.pending) or self.parser.pending_bytes > 0

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(slots=True)
class _Opened:
    """A newly found file, opened and fingerprinted in a thread."""

    found: FoundFile
    fd: int | None = None
    size: int = 0
    prefix: bytes = b""
    error: str | None = None


def _open_new(found: list[FoundFile], keep_open: int) -> list[_Opened]:
    """Open and fingerprint new files; beyond the first ``keep_open`` the descriptors are closed again."""
    opened = []
    for item in found:
        result = _Opened(item)
        try:
            fd = _open_readonly(item.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.error = exc.strerror or type(exc).__name__
            opened.append(result)
            continue
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != item.file_id:
                # Replaced since the scan: describe what is there now.
                result.found = FoundFile(item.path, item.realpath, (st.st_dev, st.st_ino), st.st_size)
            result.size, result.prefix = st.st_size, read_prefix(fd)
        except OSError as exc:
            result.error = exc.strerror or type(exc).__name__
        if result.error is None and keep_open > 0:
            result.fd = fd
            keep_open -= 1
        else:
            os.close(fd)
        opened.append(result)
    return opened


@dataclass(slots=True)
class _PollResult:
    tailer: Tailer
    size: int = -1
    nlink: int = 1
    moved: bool = False


def _poll(tailers: list[Tailer]) -> list[_PollResult]:
    results = []
    for tailer in tailers:
        result = _PollResult(tailer)
        fd = tailer.fd
        if fd is not None:
            try:
                st = os.fstat(fd)
                result.size, result.nlink = st.st_size, st.st_nlink
            except OSError:
                pass
        if tailer.state is State.ACTIVE:
            result.moved = tailer._path_moved()
        results.append(result)
    return results


def _stat_paths(paths: set[str]) -> list[tuple[str, FoundFile | None]]:
    return [(path, stat_path(path)) for path in paths]


class FileReader:
    """Every input's files: discovery, scheduling of reads, the open-file budget, rotation and the end."""

    def __init__(
        self, config: LogsConfig, store: CheckpointStore, pipeline: PipelineInput, node_name: str
    ) -> None:
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.node_name = node_name
        self.sources = [InputSource(item) for item in config.inputs]
        self.tailers: dict[FileId, Tailer] = {}
        self.by_path: dict[str, Tailer] = {}
        self.watcher = PathWatcher(
            watch_roots(p for s in self.sources for p in s.config.paths), self._on_changes
        )
        self._queue: asyncio.Queue[Tailer | None] = asyncio.Queue()
        self._idle_open: OrderedDict[int, Tailer] = OrderedDict()  # open, at the end, LRU first
        self._fd_waiters: deque[Tailer] = deque()
        self._open_count = 0
        self._candidates: set[str] = set()
        self._candidates_ready = asyncio.Event()
        self._scan_requested = asyncio.Event()
        self._last_scan_start = 0.0
        self._last_scan_end = 0.0
        self._warned: set[str] = set()
        self._stopping = False
        self._turning: set[asyncio.Task] = set()  # workers in the middle of a read
        self._attention: set[Tailer] = set()  # tailers the housekeeper has to look at
        self._last_gauges = 0.0
        self._last_root_check = time.monotonic()
        # One turn reads no more than the buffer holds, so backpressure stays close to its bound.
        self._step_bytes = max(4096, min(STEP_BYTES, config.buffer_max_bytes))

    # -- running ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Read until ``stop`` is set; then finish the reads under way and return (files stay open
        until :meth:`close`)."""
        helpers: list[asyncio.Task] = []
        workers: list[asyncio.Task] = []
        try:
            helpers.append(asyncio.create_task(self.watcher.run(RESCAN_WITHOUT_EVENTS), name="logs-watch"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.watcher.settled.wait(), 5.0)
            await self._scan_all(startup=True)
            await self._recover_orphans()
            self.store.drop_unclaimed()
            helpers += [
                asyncio.create_task(self._scanner(), name="logs-scan"),
                asyncio.create_task(self._candidate_loop(), name="logs-new-files"),
                asyncio.create_task(self._housekeeper(), name="logs-housekeeping"),
            ]
            workers = [asyncio.create_task(self._worker(), name=f"logs-read-{i}") for i in range(WORKERS)]
            if ready is not None:
                ready.set()
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait([waiter, *helpers, *workers], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            for task in [*helpers, *workers]:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self._stopping = True
            self.watcher.stop()
            for task in helpers:
                task.cancel()
            for task in workers:
                if task not in self._turning:
                    task.cancel()  # waiting for work or for buffer space
                self._queue.put_nowait(None)  # a worker in a read finishes it, then leaves
            await asyncio.gather(*helpers, *workers, return_exceptions=True)

    def close(self) -> None:
        for tailer in list(self.tailers.values()):
            tailer.close()
        self._open_count = 0

    # -- scheduling ---------------------------------------------------------------------------------

    def _wake(self, tailer: Tailer) -> None:
        if tailer.state is State.FINISHED:
            return
        if tailer.busy or tailer.queued:
            tailer.rewake = True
            return
        tailer.queued = True
        self._idle_open.pop(id(tailer), None)
        self._queue.put_nowait(tailer)

    async def _worker(self) -> None:
        while True:
            tailer = await self._queue.get()
            if tailer is None or self._stopping:
                return
            tailer.queued = False
            await self.pipeline.wait_for_space()  # backpressure: read only what the sinks can take
            if self._stopping:
                return
            if tailer.state is State.FINISHED or tailer.busy:
                continue
            if tailer.predecessor is not None and not tailer.predecessor.released:
                continue  # woken again when the old file at this path has been read to its end
            task = asyncio.current_task()
            assert task is not None
            self._turning.add(task)
            try:
                await self._turn(tailer)
            except Exception:  # a bug must cost one file, not the shipper
                log.exception("reading a file failed unexpectedly; closing it", extra={"path": tailer.path})
                tailer.busy = False
                self._give_up(tailer, "error")
            finally:
                self._turning.discard(task)

    async def _turn(self, tailer: Tailer) -> None:
        reopen = tailer.fd is None
        if reopen and not self._reserve_fd():
            self._fd_waiters.append(tailer)  # woken when a descriptor frees up
            return
        tailer.busy = True
        tailer.rewake = False
        try:
            result = await asyncio.to_thread(
                tailer.step, time.time(), self._step_bytes, tailer.watch_path if reopen else None
            )
        except (IdentityLost, FileNotFoundError):  # reopening: the name leads elsewhere now
            tailer.busy = False
            self._open_count -= 1
            if await self._find_moved(tailer):
                self._wake(tailer)
            return
        except OSError as exc:
            tailer.busy = False
            if reopen and tailer.fd is None:
                self._open_count -= 1
            elif reopen:
                tailer.source.open += 1
            self._read_failed(tailer, exc)
            return
        tailer.busy = False
        if reopen:
            tailer.source.open += 1
        if tailer.state is State.FINISHED:  # given up on meanwhile
            return
        try:
            self._after_turn(tailer, result)
        finally:
            tailer.holding = tailer.holds_data()
            self._attend(tailer)

    def _after_turn(self, tailer: Tailer, result: StepResult) -> None:
        tailer.last_used = time.monotonic()
        source = tailer.source
        if result.bytes_read:
            source.bytes_read.inc(result.bytes_read)
            source.lines_read.inc(result.lines)
            tailer.last_data = tailer.last_used
        if result.lines_cut:
            source.lines_truncated.inc(result.lines_cut)
        if result.segment is not None:
            self.pipeline.put(result.segment)
        if result.nlink == 0 and tailer.deleted_at is None:
            tailer.deleted_at = tailer.last_used
        if result.truncated:
            self._restart_truncated(tailer, result.prefix or b"")
            self._wake(tailer)
            return
        if result.prefix is not None:
            self.store.refresh_fingerprint(tailer.cursor, result.prefix)
        if not result.at_eof:
            self._wake(tailer)  # more to read: back of the queue, so other files get their turn
            return
        self._at_end(tailer, result)

    def _at_end(self, tailer: Tailer, result: StepResult) -> None:
        now = time.monotonic()
        tailer.eof = True
        settled = tailer.settled_offset()
        if settled is not None:
            self.store.move(tailer.cursor, settled)
        if result.nlink == 0:
            self._finish(tailer, "deleted")
            return
        if result.moved and tailer.state is State.ACTIVE:
            self._mark_rotated(tailer)
        if tailer.state is State.ROTATED:
            self._release(tailer)
            due = max(tailer.rotated_at, tailer.last_data) + self.config.rotate_wait
            if now >= due and tailer.rotated_at < self._last_scan_start:
                self._finish(tailer, "rotated")
                return
            tailer.wake_at = max(due, now + 0.05)
            if tailer.rotated_at >= self._last_scan_start:
                self._request_scan()
        if tailer.rewake:
            tailer.rewake = False
            self._wake(tailer)
        elif tailer.fd is not None and tailer.state is State.ACTIVE:
            self._idle_open[id(tailer)] = tailer
            self._idle_open.move_to_end(id(tailer))
            self._wake_fd_waiter()

    def _wake_fd_waiter(self) -> None:
        """A descriptor is free, or an idle one can be taken: let a file waiting for one go on."""
        while self._fd_waiters:
            waiter = self._fd_waiters.popleft()
            if waiter.state is not State.FINISHED and waiter.fd is None:
                self._wake(waiter)
                return

    def _release(self, tailer: Tailer) -> None:
        if not tailer.released:
            tailer.released = True
            for successor in tailer.successors:
                self._wake(successor)

    # -- file lifecycle -----------------------------------------------------------------------------

    def _mark_rotated(self, tailer: Tailer) -> None:
        if tailer.state is not State.ACTIVE:
            return
        tailer.state = State.ROTATED
        tailer.rotated_at = time.monotonic()
        tailer.source.files_rotated.inc()
        self._idle_open.pop(id(tailer), None)
        if self.by_path.get(tailer.watch_path) is tailer:
            del self.by_path[tailer.watch_path]
        self._request_scan()
        self._wake(tailer)
        self._attend(tailer)

    def _restart_truncated(self, tailer: Tailer, prefix: bytes) -> None:
        """copytruncate: the file is shorter than what was read; read it again from 0."""
        tailer.source.files_truncated.inc()
        log.info(
            "file truncated; reading it again from the start",
            extra={"path": tailer.path, "input": tailer.source.name, "offset": tailer.offset},
        )
        held = tailer.drain_held()
        if held is not None:
            self.pipeline.put(held)
        self.store.finish(tailer.cursor)
        tailer.cursor = self.store.open_cursor(tailer.file_id, prefix, tailer.path, 0)
        tailer.offset = tailer.line_start = 0
        tailer.pending, tailer.pending_since, tailer.discarding = b"", None, False
        tailer.parser = tailer.source.new_parser()

    def _finish(self, tailer: Tailer, reason: str) -> None:
        """The file is done: pass on what the parser holds, close it, let its successor start."""
        if tailer.state is State.FINISHED:
            return
        held = tailer.drain_held()
        if held is not None:
            self.pipeline.put(held)
        tailer.state = State.FINISHED
        self._attention.discard(tailer)
        self._close_fd(tailer)
        self.store.finish(tailer.cursor)
        if self.tailers.get(tailer.file_id) is tailer:
            del self.tailers[tailer.file_id]
        for path in (tailer.watch_path, tailer.realpath, tailer.path):
            if self.by_path.get(path) is tailer:
                del self.by_path[path]
        tailer.source.watched -= 1
        tailer.source.files_watched.set(tailer.source.watched)
        self._release(tailer)
        log.debug("file finished", extra={"path": tailer.path, "reason": reason, "offset": tailer.offset})

    def _give_up(self, tailer: Tailer, reason: str) -> None:
        lost = max(0, tailer.size - tailer.offset)
        if lost:
            metrics.BYTES_GIVEN_UP.labels(tailer.source.name, reason).inc(lost)
        log.warning(
            "closing a file before it was read to its end",
            extra={"path": tailer.path, "input": tailer.source.name, "reason": reason, "unread_bytes": lost},
        )
        self._finish(tailer, reason)

    def _read_failed(self, tailer: Tailer, exc: OSError) -> None:
        metrics.READ_ERRORS.labels(tailer.source.name, "read").inc()
        log.warning(
            "reading a file failed; closing it",
            extra={"path": tailer.path, "input": tailer.source.name, "err": str(exc)},
        )
        self._give_up(tailer, "read_error")

    # -- open-file budget ---------------------------------------------------------------------------

    def _reserve_fd(self) -> bool:
        if self._open_count < self.config.max_open_files:
            self._open_count += 1
            return True
        while self._idle_open:
            _, idle = self._idle_open.popitem(last=False)
            if idle.fd is not None and not idle.busy and not idle.queued and idle.state is State.ACTIVE:
                idle.close()
                idle.source.open -= 1
                return True  # its slot is ours
        return False

    def _close_fd(self, tailer: Tailer) -> None:
        self._idle_open.pop(id(tailer), None)
        if tailer.fd is None:
            return
        tailer.close()
        tailer.source.open -= 1
        self._open_count -= 1
        self._wake_fd_waiter()

    def _adopt_fd(self, tailer: Tailer, fd: int) -> None:
        """Keep an already open descriptor if the budget allows, else close it (reopened later)."""
        if self._reserve_fd():
            tailer.fd = fd
            tailer.source.open += 1
            self._attend(tailer)
        else:
            os.close(fd)

    async def _find_moved(self, tailer: Tailer) -> bool:
        """A closed file is no longer at its path: find it next to it (rotated) or give it up."""
        directory = os.path.dirname(tailer.watch_path)
        found = await asyncio.to_thread(find_inode, directory, tailer.file_id)
        if found is not None and self._reserve_fd():
            tailer.busy = True
            try:
                await asyncio.to_thread(tailer.open_checked, found)
            except OSError:
                self._open_count -= 1
            except IdentityLost:
                self._open_count -= 1
            else:
                tailer.busy = False
                tailer.source.open += 1
                tailer.watch_path = found
                self._mark_rotated(tailer)
                return tailer.state is not State.FINISHED
            finally:
                tailer.busy = False
        self._give_up(tailer, "gone")
        return False

    # -- discovery ----------------------------------------------------------------------------------

    def _request_scan(self) -> None:
        self._scan_requested.set()

    async def _scanner(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_requested.wait(), self._rescan_interval())
            gap = self._last_scan_end + MIN_SCAN_GAP - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            self._scan_requested.clear()
            try:
                await self._scan_all(startup=False)
            except Exception:
                log.exception("scanning for log files failed")

    def _rescan_interval(self) -> float:
        if self.watcher.available:
            return self.config.rescan_interval
        return min(self.config.rescan_interval, RESCAN_WITHOUT_EVENTS)

    def _scan_blocking(self) -> list:
        results = [scan(source.matcher) for source in self.sources]
        self.watcher.refresh()
        return results

    async def _scan_all(self, *, startup: bool) -> None:
        started = time.monotonic()
        results = await asyncio.to_thread(self._scan_blocking)
        seen: set[int] = set()
        for source, result in zip(self.sources, results, strict=True):
            for path, reason in result.errors:
                self._warn_unreadable(source, path, reason)
            new: list[FoundFile] = []
            for path, found in result.files.items():
                tailer = self.tailers.get(found.file_id)
                if tailer is None:
                    new.append(found)
                    continue
                seen.add(id(tailer))
                self._seen_at(tailer, path, started)
                if not tailer.busy:
                    tailer.size = found.size
                if found.size != tailer.offset and not tailer.busy:
                    self._wake(tailer)  # an event went missing (or the file has no watch)
            await self._add_files(source, new, startup=startup)
        for tailer in list(self.tailers.values()):
            if tailer.state is State.ACTIVE and id(tailer) not in seen and tailer.created < started:
                self._mark_rotated(tailer)
        self._last_scan_start = started
        self._last_scan_end = time.monotonic()

    def _seen_at(self, tailer: Tailer, path: str, scan_started: float) -> None:
        """A scan (or a stat) found this tailer's file at ``path``."""
        if tailer.state is State.ROTATED and tailer.rotated_at < scan_started and tailer.deleted_at is None:
            tailer.state = State.ACTIVE  # renamed to another name the globs match: it just goes on
            tailer.watch_path = path
        if tailer.state is State.ACTIVE:
            current = self.by_path.get(tailer.watch_path)
            if current is not tailer:
                tailer.watch_path = path
            self.by_path[path] = tailer

    def _warn_unreadable(self, source: InputSource, path: str, reason: str) -> None:
        if path in self._warned:
            return
        self._warned.add(path)
        metrics.READ_ERRORS.labels(source.name, "open").inc()
        log.warning(
            "cannot read a log file; skipping it", extra={"path": path, "input": source.name, "err": reason}
        )

    def _metadata(self, path: str, realpath: str) -> dict | None:
        meta = metadata_from_path(path)
        if meta is None and realpath != path:
            meta = metadata_from_path(realpath)
        return meta

    async def _add_files(self, source: InputSource, found: list[FoundFile], *, startup: bool) -> None:
        if not found:
            return
        opened = await asyncio.to_thread(_open_new, found, self.config.max_open_files - self._open_count)
        read_from_tail = startup and source.config.read_from == "tail"
        for item in opened:
            info = item.found
            if item.error is not None:
                self._warn_unreadable(source, info.path, item.error)
                continue
            existing = self.tailers.get(info.file_id)
            if existing is not None:  # found twice (symlink and target), or meanwhile by an event
                if item.fd is not None:
                    os.close(item.fd)
                self._seen_at(existing, info.path, time.monotonic())
                continue
            self._warned.discard(info.path)
            entry = self.store.claim(info.file_id, item.prefix)
            if entry is not None:
                offset = entry.offset
                if offset > item.size:
                    source.files_truncated.inc()
                    offset = 0
            elif read_from_tail:
                offset = item.size
            else:
                offset = 0
            cursor = self.store.open_cursor(info.file_id, item.prefix, info.path, offset)
            tailer = Tailer(
                source,
                FoundFile(info.path, info.realpath, info.file_id, item.size),
                cursor,
                offset,
                self.node_name,
                self._metadata(info.path, info.realpath),
            )
            tailer.polled = not self.watcher.covers(info.realpath)
            self._register(tailer)
            if item.fd is not None:
                self._adopt_fd(tailer, item.fd)
            if offset < item.size or not startup:
                self._wake(tailer)
            else:
                tailer.eof = True
                if tailer.fd is not None:
                    self._idle_open[id(tailer)] = tailer

    def _register(self, tailer: Tailer) -> None:
        old = self.by_path.get(tailer.watch_path)
        if old is not None and old is not tailer and old.state is not State.FINISHED:
            # Same name, another file: the old one was rotated or deleted; it goes first.
            tailer.predecessor = old
            old.successors.append(tailer)
            self._mark_rotated(old)
        self.tailers[tailer.file_id] = tailer
        self.by_path[tailer.watch_path] = tailer
        if tailer.realpath != tailer.watch_path:
            self.by_path[tailer.realpath] = tailer
        tailer.source.watched += 1
        tailer.source.files_watched.set(tailer.source.watched)

    async def _recover_orphans(self) -> None:
        """Saved positions of files no glob reaches (rotated while the agent was down): find them next
        to where they were by inode, and drain them before their successors."""
        entries = self.store.unclaimed()
        if not entries:
            return

        def locate() -> list[tuple]:
            out = []
            for entry in entries:
                path = find_inode(os.path.dirname(entry.path), entry.file_id)
                if path is None:
                    continue
                try:
                    fd = _open_readonly(path)
                except OSError:
                    continue
                try:
                    st = os.fstat(fd)
                    prefix = read_prefix(fd)
                except OSError:
                    os.close(fd)
                    continue
                if (st.st_dev, st.st_ino) != entry.file_id or not entry.matches(prefix):
                    os.close(fd)
                    continue
                out.append((entry, path, fd, st.st_size, prefix))
            return out

        for entry, path, fd, size, prefix in await asyncio.to_thread(locate):
            source = next((s for s in self.sources if s.matcher.included(entry.path)), None)
            if source is None or entry.file_id in self.tailers:
                os.close(fd)
                continue
            self.store.claim(entry.file_id, prefix)
            offset = entry.offset if entry.offset <= size else 0
            cursor = self.store.open_cursor(entry.file_id, prefix, entry.path, offset)
            tailer = Tailer(
                source,
                FoundFile(entry.path, path, entry.file_id, size),
                cursor,
                offset,
                self.node_name,
                self._metadata(entry.path, path),
            )
            tailer.watch_path = path
            tailer.state = State.ROTATED
            tailer.rotated_at = -1.0
            successor = self.by_path.get(entry.path)
            if successor is not None:
                successor.predecessor = tailer
                tailer.successors.append(successor)
            self.tailers[tailer.file_id] = tailer
            source.watched += 1
            source.files_watched.set(source.watched)
            self._adopt_fd(tailer, fd)
            log.info(
                "reading the rest of a file rotated while stopped",
                extra={"path": entry.path, "now_at": path, "offset": offset},
            )
            self._wake(tailer)

    # -- events -------------------------------------------------------------------------------------

    def _on_changes(self, changes: list[Change]) -> None:
        for kind, path in changes:
            tailer = self.by_path.get(path)
            if tailer is not None and tailer.state is not State.FINISHED:
                self._wake(tailer)
                if kind == "modified":
                    continue
                self._candidates.add(path)  # deleted, or re-created: the name may lead elsewhere now
            elif any(source.matcher.included(path) for source in self.sources):
                self._candidates.add(path)
            elif kind == "added":
                self._request_scan()  # a new directory perhaps: the globs may reach into it
        if self._candidates:
            self._candidates_ready.set()

    async def _candidate_loop(self) -> None:
        while True:
            await self._candidates_ready.wait()
            self._candidates_ready.clear()
            paths, self._candidates = self._candidates, set()
            stats = await asyncio.to_thread(_stat_paths, paths)
            now = time.monotonic()
            by_source: dict[int, list[FoundFile]] = {}
            for path, found in stats:
                if found is None:
                    tailer = self.by_path.get(path)
                    if tailer is not None and tailer.watch_path == path:
                        self._mark_rotated(tailer)  # renamed or deleted: drain it (a scan may find it again)
                    continue
                tailer = self.tailers.get(found.file_id)
                if tailer is not None:
                    self._seen_at(tailer, path, now)
                    continue
                for index, source in enumerate(self.sources):
                    if source.matcher.matches(path, found.realpath):
                        by_source.setdefault(index, []).append(found)
                        break
            for index, found_list in by_source.items():
                try:
                    await self._add_files(self.sources[index], found_list, startup=False)
                except Exception:
                    log.exception("adding new log files failed")

    # -- timers -------------------------------------------------------------------------------------

    async def _housekeeper(self) -> None:
        cfg = self.config
        timeouts = [cfg.poll_interval, 1.0] + [s.config.partial_line_timeout / 2 for s in self.sources]
        timeouts += [s.config.multiline.timeout / 2 for s in self.sources if s.config.multiline]
        tick = max(0.05, min(timeouts))
        while True:
            await asyncio.sleep(tick)
            try:
                await self._housekeeping()
            except Exception:
                log.exception("log file housekeeping failed")

    def _attend(self, tailer: Tailer) -> None:
        """Put a tailer on the housekeeper's list if it has a timer, held data, or needs polling."""
        if tailer.state is not State.FINISHED and (
            tailer.wake_at is not None
            or tailer.holding
            or tailer.deleted_at is not None
            or tailer.state is State.ROTATED
            or (tailer.polled and tailer.fd is not None)
        ):
            self._attention.add(tailer)

    async def _housekeeping(self) -> None:
        """Timers, held data, polling and idle files; touches only the tailers that need it."""
        cfg = self.config
        now = time.monotonic()
        to_poll: list[Tailer] = []
        poll_everything = not self.watcher.available
        candidates = list(self.tailers.values()) if poll_everything else list(self._attention)
        for tailer in candidates:
            if tailer.state is State.FINISHED:
                self._attention.discard(tailer)
                continue
            if tailer.busy:
                continue
            if tailer.wake_at is not None and now >= tailer.wake_at:
                tailer.wake_at = None
                self._wake(tailer)
            elif tailer.holding and tailer.eof:
                self._wake(tailer)  # give the parser and the unfinished line their timeouts
            if tailer.deleted_at is not None and now - tailer.deleted_at >= cfg.deleted_file_timeout:
                self._give_up(tailer, "deleted")
                continue
            polled = tailer.fd is not None and (
                tailer.polled or poll_everything or tailer.state is State.ROTATED
            )
            if polled and now - tailer.last_poll >= cfg.poll_interval:
                tailer.last_poll = now
                to_poll.append(tailer)
            if not (
                polled
                or tailer.holding
                or tailer.wake_at is not None
                or tailer.deleted_at is not None
                or tailer.state is State.ROTATED
            ):
                self._attention.discard(tailer)
        if to_poll:
            for result in await asyncio.to_thread(_poll, to_poll):
                tailer = result.tailer
                if tailer.state is State.FINISHED:
                    continue
                if result.nlink == 0 and tailer.deleted_at is None:
                    tailer.deleted_at = now
                if (result.size >= 0 and result.size != tailer.offset) or result.moved or result.nlink == 0:
                    self._wake(tailer)
        # Idle files, least recently used first: close those idle for close_inactive.
        expired = []
        for tailer in self._idle_open.values():
            if now - tailer.last_used < cfg.close_inactive:
                break
            expired.append(tailer)
        for tailer in expired:
            if not tailer.busy and not tailer.queued and not tailer.holding:
                self._close_fd(tailer)
            else:
                self._idle_open.pop(id(tailer), None)
        if now - self._last_gauges >= 1.0:
            self._last_gauges = now
            self._update_gauges()
        if now - self._last_root_check >= RESCAN_WITHOUT_EVENTS:
            # A directory the globs start from may appear later (/var/log/pods on a fresh node):
            # watch it, and scan it now rather than at the next rescan.
            self._last_root_check = now
            if await asyncio.to_thread(self.watcher.refresh):
                self._request_scan()

    def _update_gauges(self) -> None:
        behind: dict[str, int] = {s.name: 0 for s in self.sources}
        for tailer in self.tailers.values():
            lag = tailer.size - tailer.cursor.offset
            if lag > 0:
                behind[tailer.source.name] += lag
        for source in self.sources:
            source.bytes_behind.set(behind[source.name])
            source.files_open.set(source.open)
