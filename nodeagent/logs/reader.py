"""The :class:`FileReader`: which files are read, when, how many are open, and how each one ends.

It keeps the scheduling and lifecycle of every input's :class:`~nodeagent.logs.tailer.Tailer` (one per
file; the per-file reading is there) and hands their segments to the pipeline (:class:`PipelineInput`).
Finding files is :mod:`.discovery`, noticing changes :mod:`.watch`, what happened is reported through
the :class:`~nodeagent.logs.events.ReaderEvents` it is given. What it decides:

- scheduling: a few workers take woken tailers from one queue, up to TURN_FILES of them at once (one
  trip to a thread for the files a wakeup found written), and read at most STEP_BYTES per turn
  (one busy file cannot starve the others) and only while the pipeline has space (backpressure);
- discovery timing: a scan (glob) at start, then file events for new files within a second, and a
  rescan every ``rescan_interval`` as a safety net (at least every RESCAN_WITHOUT_EVENTS seconds while
  inotify is unavailable; it lists again only the directories changed since the scan before, and looks at
  every file it finds: sizes and identities tell about writes, truncations and renames no event reported);
  saved positions of files rotated while the agent was down are recovered;
- rotation by rename: the old file is read to its end, then for ``rotate_wait`` more in case its writer
  is still at it; the new file at the same path starts only once the old one has reached its end;
- copytruncate (size below the read offset): reading restarts at 0 under a new cursor;
- deletion: the file is drained like a renamed one (read on while its writer goes on, closed
  ``rotate_wait`` after its last growth); if it cannot be drained within ``deleted_file_timeout`` of the
  deletion or its last read data (sinks down, backpressure) it is closed anyway and the unread bytes are
  counted as given up;
- a bounded number of open files: idle files are closed (least recently used first) and reopened by
  path, checked against their identity and fingerprint.

What the scan finds is the authority on "which files exist": a file no glob reaches any more is rotated
(finished after its drain), a file found under another matching name just continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from nodeagent import safeio
from nodeagent.config.logs import LogsConfig
from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.discovery import (
    FoundFile,
    Listings,
    ScanResult,
    locate_orphans,
    open_new,
    own_output_files,
    scan,
    stat_path,
    watch_roots,
)
from nodeagent.logs.events import ReaderEvents
from nodeagent.logs.identity import FileId, file_id, find_inode
from nodeagent.logs.kubernetes import metadata_from_path
from nodeagent.logs.lines import HeldPositions
from nodeagent.logs.pipeline import PipelineInput
from nodeagent.logs.tailer import IdentityLost, InputSource, State, StepResult, Tailer
from nodeagent.logs.watch import Change
from nodeagent.logs.watch.inotify import InotifyWatcher
from nodeagent.logs.watch.poll import FileStatus, PollTarget, StatPoller

log = logging.getLogger("nodeagent.logs.reader")

STEP_BYTES = 1024 * 1024  # read per turn, so one busy file cannot starve the others
MIN_STEP_BYTES = 64 * 1024  # what each file of a turn may read at least
TURN_FILES = 16  # files read in one turn (one call to a worker thread)
WORKERS = 4
STOP_GRACE = 1.0  # seconds the reading tasks get to finish at stop before they are cancelled
MIN_SCAN_GAP = 0.5  # seconds between two on-demand scans
RESCAN_WITHOUT_EVENTS = 10.0  # without inotify, scans are how new files are found


def _stat_paths(paths: set[str], dangling: list[str] | None = None) -> list[tuple[str, FoundFile | None]]:
    return [(path, stat_path(path, None, dangling)) for path in paths]


def _sizes(files: list[tuple[int, FileId]]) -> list[int]:
    """The size of each open file, -1 where the descriptor no longer is that file."""
    out = []
    for fd, identity in files:
        try:
            st = os.fstat(fd)
        except OSError:
            out.append(-1)
            continue
        out.append(st.st_size if file_id(st) == identity else -1)
    return out


def _step_all(
    steps: list[tuple[Tailer, str | None]], now: float, budget: int
) -> list[StepResult | Exception]:
    """:meth:`Tailer.step` for each (tailer, reopen path); an error ends only its own file's read."""
    outcomes: list[StepResult | Exception] = []
    for tailer, reopen_path in steps:
        try:
            outcomes.append(tailer.step(now, budget, reopen_path))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _settled(tailer: Tailer) -> bool:
    """At its end, everything read acknowledged, nothing held, no timer: only a write changes that (and
    wakes it)."""
    return (
        tailer.state is State.ACTIVE
        and tailer.eof
        and not (tailer.queued or tailer.busy or tailer.rewake or tailer.holding)
        and tailer.wake_at is None
        and tailer.deleted_at is None
        and tailer.cursor.inflight <= 0
        and tailer.size <= tailer.offset
    )


def _replay_within(replay: HeldPositions | None, size: int) -> HeldPositions | None:
    """Saved held positions, if the file still reaches where they end."""
    return replay if replay is not None and replay[0] <= size else None


class FileReader:
    """Every input's files: discovery, scheduling of reads, the open-file budget, rotation and the end."""

    def __init__(
        self,
        config: LogsConfig,
        store: CheckpointStore,
        pipeline: PipelineInput,
        node_name: str,
        events: ReaderEvents,
        blocking: Blocking = DEFAULT,
    ) -> None:
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.node_name = node_name
        self.events = events
        self.blocking = blocking
        self.sources = [InputSource(item) for item in config.inputs]
        # Each input's directory listings as its last scan saw them: a rescan lists only those changed.
        self._listings = [Listings() for _ in self.sources]
        self.tailers: dict[FileId, Tailer] = {}
        self.by_path: dict[str, Tailer] = {}
        self.watcher = InotifyWatcher(
            watch_roots(p for s in self.sources for p in s.config.paths),
            self._on_changes,
            retry_interval=RESCAN_WITHOUT_EVENTS,
            poll_interval=config.poll_interval,
            blocking=blocking,
        )
        self.poller = StatPoller(config.poll_interval, self._poll_targets, self._on_polled, blocking)
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
        self._refused: set[str] = set()  # paths refused (logged once each)
        self._unlistable: set[str] = set()  # directories that could not be listed (logged once each)
        # Matched symlinks leading nowhere (a target deleted, or not created yet): looked at again every
        # poll_interval, since nothing may watch where they lead (a /var/log/containers-only input).
        self._dangling: set[str] = set()
        self._last_dangling_check = 0.0
        self._own: dict[FileId, str] = {}  # where the agent's stdout and stderr go: never read
        self._own_noted: set[FileId] = set()
        self._stopping = False
        self._turning: set[asyncio.Task] = set()  # workers in the middle of a read
        self._attention: set[Tailer] = set()  # tailers the housekeeper has to look at
        # Tailers that may be behind their file: new, woken, being read, or with read records not yet
        # acknowledged. The others are at their end with everything acknowledged (a write wakes them):
        # the per-second size refresh and bytes_behind look at these only, so idle files cost nothing.
        self._unsettled: set[Tailer] = set()
        self._polled: set[Tailer] = set()  # files events do not cover, and rotated ones: always polled
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
            helpers.append(asyncio.create_task(self.watcher.run(), name="logs-watch"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.watcher.settled.wait(), 5.0)
            await self._scan_all(startup=True)
            await self._recover_orphans()
            self.store.drop_unclaimed()
            helpers += [
                asyncio.create_task(self._scanner(), name="logs-scan"),
                asyncio.create_task(self._candidate_loop(), name="logs-new-files"),
                asyncio.create_task(self._housekeeper(), name="logs-housekeeping"),
                asyncio.create_task(self.poller.run(), name="logs-poll"),
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
            self.poller.stop()
            for task in helpers:
                task.cancel()
            for task in workers:
                if task not in self._turning:
                    task.cancel()  # waiting for work or for buffer space
                self._queue.put_nowait(None)  # a worker in a read finishes it, then leaves
            await self._stopped(helpers, workers)
            self._keep_held_positions()

    async def _stopped(self, helpers: list[asyncio.Task], workers: list[asyncio.Task]) -> None:
        """Wait for the tasks to end; one that has not ended after STOP_GRACE seconds is cancelled (and
        named in a warning): stopping must not hang on it. Whatever it was reading is not acknowledged,
        so it is read again at the next start."""
        tasks = [*helpers, *workers]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
        if pending:
            log.warning(
                "reading tasks did not stop in time; cancelled",
                extra={"tasks": ",".join(sorted(t.get_name() for t in pending))},
            )
            for task in pending:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _keep_held_positions(self) -> None:
        """Reading has stopped: where a parser holds a piece of one stream (a CRI partial line), the
        checkpoint stays before it, and lines of other streams read after it were delivered: save where
        each stream is, so that a restart does not deliver them again (the checkpoint keeps them only if
        everything read is acknowledged before the last commit)."""
        for tailer in self.tailers.values():
            if tailer.state is State.FINISHED or tailer.busy:
                continue
            held = tailer.lines.held_positions()
            if held is not None:
                self.store.hold(tailer.cursor, held)

    def close(self) -> None:
        for tailer in list(self.tailers.values()):
            tailer.close()
        self._open_count = 0

    # -- scheduling ---------------------------------------------------------------------------------

    def _wake(self, tailer: Tailer) -> None:
        if tailer.state is State.FINISHED:
            return
        self._unsettled.add(tailer)
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
            # Whatever else is waiting goes along: one trip to a thread reads many files (the usual
            # wakeup finds several files written since the last one).
            batch = [tailer]
            while len(batch) < TURN_FILES and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:  # stopping: leave the marker for this worker's next get
                    self._queue.put_nowait(None)
                    break
                batch.append(more)
            for tailer in batch:
                tailer.queued = False
            await self.pipeline.wait_for_space()  # backpressure: read only what the sinks can take
            if self._stopping:
                return
            ready = [
                t
                for t in batch
                if t.state is not State.FINISHED
                and not t.busy
                # else woken again when the old file at this path has been read to its end
                and (t.predecessor is None or t.predecessor.released)
            ]
            if not ready:
                continue
            task = asyncio.current_task()
            assert task is not None
            self._turning.add(task)
            try:
                await self._turn(ready)
            finally:
                self._turning.discard(task)

    async def _turn(self, tailers: list[Tailer]) -> None:
        """One read of each of ``tailers`` in one call to a worker thread, then what each read means."""
        jobs: list[tuple[Tailer, bool]] = []
        for tailer in tailers:
            reopen = tailer.fd is None
            if reopen and not self._reserve_fd():
                self._fd_waiters.append(tailer)  # woken when a descriptor frees up
                continue
            tailer.busy = True
            tailer.rewake = False
            jobs.append((tailer, reopen))
        if not jobs:
            return
        # The files share one turn's bytes, so the turn stays close to the buffer's bound.
        budget = max(min(MIN_STEP_BYTES, self._step_bytes), self._step_bytes // len(jobs))
        steps = [(tailer, tailer.watch_path if reopen else None) for tailer, reopen in jobs]
        outcomes: list[StepResult | Exception]
        try:
            outcomes = await self.blocking(_step_all, steps, time.time(), budget)
        except Exception as exc:  # the pool failed (cancelled: the tailers stay busy, their reads unused)
            outcomes = [exc] * len(jobs)
        for (tailer, reopen), outcome in zip(jobs, outcomes, strict=True):
            try:
                await self._stepped(tailer, reopen, outcome)
            except Exception:  # a bug must cost one file, not the shipper
                log.exception("reading a file failed unexpectedly; closing it", extra={"path": tailer.path})
                tailer.busy = False
                try:
                    self._give_up(tailer, "error")
                except Exception:
                    log.exception("closing a failed file failed", extra={"path": tailer.path})

    async def _stepped(self, tailer: Tailer, reopen: bool, outcome: StepResult | Exception) -> None:
        """What one read of a file found (or the error it ended with)."""
        if isinstance(outcome, (IdentityLost, FileNotFoundError)):  # reopening: the name leads elsewhere
            tailer.busy = False
            self._open_count -= 1
            if await self._find_moved(tailer):
                self._wake(tailer)
            else:  # whatever is at the name now (a new file that got the inode) is looked at right away
                self._candidates.add(tailer.watch_path)
                self._candidates_ready.set()
            return
        if isinstance(outcome, OSError):
            tailer.busy = False
            if reopen and tailer.fd is None:
                self._open_count -= 1
            elif reopen:
                tailer.source.open += 1
            self._read_failed(tailer, outcome)
            return
        if isinstance(outcome, Exception):
            raise outcome
        tailer.busy = False
        if reopen:
            tailer.source.open += 1
        if tailer.state is State.FINISHED:  # given up on meanwhile
            return
        try:
            self._after_turn(tailer, outcome)
        finally:
            tailer.holding = tailer.holds_data()
            self._attend(tailer)

    def _after_turn(self, tailer: Tailer, result: StepResult) -> None:
        tailer.last_used = time.monotonic()
        name = tailer.source.name
        if result.bytes_read:
            self.events.lines_read(name, result.lines, result.bytes_read)
            tailer.last_data = tailer.last_used
        if result.lines_cut:
            self.events.lines_cut(name, result.lines_cut)
        self._report_parser_problems(tailer)
        if result.segment is not None:
            self.pipeline.put(result.segment)
        for at, to in result.skips:
            self.store.skip(tailer.cursor, at, to)
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
        deleted = result.nlink == 0
        if (result.moved or deleted) and tailer.state is State.ACTIVE:
            # Deleted files get the grace renamed ones get: their writer may still be at it.
            self._mark_rotated(tailer)
        if tailer.state is State.ROTATED:
            self._release(tailer)
            due = max(tailer.rotated_at, tailer.last_data) + self.config.rotate_wait
            # A renamed file may have been renamed to a name the globs match: a scan since tells.
            if now >= due and (deleted or tailer.rotated_at < self._last_scan_start):
                self._finish(tailer, "deleted" if deleted else "rotated")
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
        self._polled.add(tailer)
        self.events.file_rotated(tailer.source.name)
        log.debug(
            "file rotated or deleted; reading it to its end",
            extra={"path": tailer.path, "input": tailer.source.name, "offset": tailer.offset},
        )
        self._idle_open.pop(id(tailer), None)
        if self.by_path.get(tailer.watch_path) is tailer:
            del self.by_path[tailer.watch_path]
        self._request_scan()
        self._wake(tailer)
        self._attend(tailer)

    def _restart_truncated(self, tailer: Tailer, prefix: bytes) -> None:
        """copytruncate: the file is shorter than what was read; read it again from 0."""
        self.events.file_truncated(tailer.source.name)
        log.info(
            "file truncated; reading it again from the start",
            extra={"path": tailer.path, "input": tailer.source.name, "offset": tailer.offset},
        )
        held = tailer.drain_held()
        if held is not None:
            self.pipeline.put(held)
        self._report_parser_problems(tailer)
        self.store.finish(tailer.cursor)
        tailer.restart_at_zero(self.store.open_cursor(tailer.file_id, prefix, tailer.path, 0))

    def _finish(self, tailer: Tailer, reason: str) -> None:
        """The file is done: pass on what the parser holds, close it, let its successor start."""
        if tailer.state is State.FINISHED:
            return
        held = tailer.drain_held()
        if held is not None:
            self.pipeline.put(held)
        self._report_parser_problems(tailer)
        tailer.state = State.FINISHED
        self._attention.discard(tailer)
        self._unsettled.discard(tailer)
        self._polled.discard(tailer)
        self._close_fd(tailer)
        self.store.finish(tailer.cursor)
        if self.tailers.get(tailer.file_id) is tailer:
            del self.tailers[tailer.file_id]
        for path in (tailer.watch_path, tailer.realpath, tailer.path):
            if self.by_path.get(path) is tailer:
                del self.by_path[path]
        if tailer.realpath != tailer.watch_path:
            self._dangling.add(tailer.watch_path)  # a link whose target went: it may come back
        tailer.source.watched -= 1
        self._report_counts(tailer.source)
        self._release(tailer)
        log.debug("file finished", extra={"path": tailer.path, "reason": reason, "offset": tailer.offset})

    def _report_parser_problems(self, tailer: Tailer) -> None:
        failures, dropped = tailer.take_parser_problems()
        if failures:
            self.events.parse_failed(tailer.source.name, failures)
        if dropped:
            self.events.records_dropped(tailer.source.name, dropped)
        filtered = tailer.take_filtered()
        if filtered.dropped or filtered.failures:
            self.events.records_filtered(tailer.source.name, filtered.dropped, filtered.failures)

    def _give_up(self, tailer: Tailer, reason: str) -> None:
        lost = max(0, tailer.size - tailer.offset)
        self.events.gave_up(tailer.source.name, reason, lost)
        log.warning(
            "closing a file before it was read to its end",
            extra={"path": tailer.path, "input": tailer.source.name, "reason": reason, "unread_bytes": lost},
        )
        self._finish(tailer, reason)

    def _read_failed(self, tailer: Tailer, exc: OSError) -> None:
        self.events.read_error(tailer.source.name, "read")
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
        found = await self.blocking(find_inode, directory, tailer.file_id)
        if found is not None and self._reserve_fd():
            tailer.busy = True
            try:
                await self.blocking(tailer.open_checked, found)
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

    def _scan_blocking(self) -> list[ScanResult]:
        results = [
            scan(source.matcher, source.roots, listings)
            for source, listings in zip(self.sources, self._listings, strict=True)
        ]
        self.watcher.refresh()
        self._own = own_output_files()
        return results

    def _is_own_output(self, identity: FileId) -> bool:
        """The agent's own stdout or stderr (logged once): reading it would nest records in themselves."""
        path = self._own.get(identity)
        if path is None:
            return False
        if identity not in self._own_noted:
            self._own_noted.add(identity)
            log.info("not reading the agent's own output", extra={"path": path})
        return True

    async def _scan_all(self, *, startup: bool) -> None:
        started = time.monotonic()
        results = await self.blocking(self._scan_blocking)
        seen: set[int] = set()
        self._dangling = {path for result in results for path in result.dangling}
        # A directory listable again is warned about again should it fail later.
        self._unlistable &= {directory for result in results for directory, _ in result.unlistable}
        for source, result in zip(self.sources, results, strict=True):
            for path, reason in result.errors:
                self._warn_unreadable(source, path, reason)
            for directory, reason in result.unlistable:
                self._warn_unlistable(source, directory, reason)
            for path, target in result.refused:
                self._refuse(source, path, target)
            new: list[FoundFile] = []
            for path, found in result.files.items():
                if self._is_own_output(found.file_id):
                    continue
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

    def _refuse(self, source: InputSource, path: str, target: str) -> None:
        """A path leading outside the input's roots: counted each time it is refused, logged once."""
        self.events.file_refused(source.name)
        if path in self._refused:
            return
        self._refused.add(path)
        log.warning(
            "refusing a log file that resolves outside the input's roots",
            extra={"path": safeio.quote(path), "target": safeio.quote(target), "input": source.name},
        )

    def _warn_unlistable(self, source: InputSource, directory: str, reason: str) -> None:
        """A directory the patterns lead into that cannot be listed: its files are not read. Said and
        counted once (every rescan meets it again), until a scan finds it listable."""
        if directory in self._unlistable:
            return
        self._unlistable.add(directory)
        self.events.read_error(source.name, "list")
        log.warning(
            "cannot list a log directory; the files in it are not read",
            extra={"path": safeio.quote(directory), "input": source.name, "err": reason},
        )

    def _warn_unreadable(self, source: InputSource, path: str, reason: str) -> None:
        if path in self._warned:
            return
        self._warned.add(path)
        self.events.read_error(source.name, "open")
        log.warning(
            "cannot read a log file; skipping it", extra={"path": path, "input": source.name, "err": reason}
        )

    def _metadata(self, path: str, realpath: str) -> dict[str, Any] | None:
        meta = metadata_from_path(path)
        if meta is None and realpath != path:
            meta = metadata_from_path(realpath)
        return meta

    async def _add_files(self, source: InputSource, found: list[FoundFile], *, startup: bool) -> None:
        if not found:
            return
        keep_open = self.config.max_open_files - self._open_count
        opened = await self.blocking(open_new, found, keep_open, source.open_file)
        read_from_tail = startup and source.config.read_from == "tail"
        for item in opened:
            info = item.found
            if item.refused is not None:
                self._refuse(source, info.path, item.refused)
                continue
            if item.error is not None:
                self._warn_unreadable(source, info.path, item.error)
                continue
            existing = self.tailers.get(info.file_id)
            if self._is_own_output(info.file_id):
                if item.fd is not None:
                    os.close(item.fd)
                continue
            if existing is not None:  # found twice (symlink and target), or meanwhile by an event
                if item.fd is not None:
                    os.close(item.fd)
                self._seen_at(existing, info.path, time.monotonic())
                continue
            self._warned.discard(info.path)
            entry = self.store.claim(info.file_id, item.prefix)
            replay = None
            if entry is not None:
                offset = entry.offset
                if offset > item.size:
                    self.events.file_truncated(source.name)
                    offset = 0
                else:
                    replay = _replay_within(entry.replay, item.size)
            elif read_from_tail and not self._appeared_while_down(info.file_id, item.changed_ns):
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
                replay,
            )
            tailer.polled = not self.watcher.covers(info.realpath)
            if tailer.polled:
                self._polled.add(tailer)
            log.debug(
                "file started",
                extra={
                    "path": info.path,
                    "input": source.name,
                    "offset": offset,
                    "size": item.size,
                    "resumed": entry is not None,
                    "polled": tailer.polled,
                },
            )
            self._register(tailer)
            if item.fd is not None:
                self._adopt_fd(tailer, item.fd)
            if offset < item.size or not startup:
                self._wake(tailer)
            else:
                tailer.eof = True
                if tailer.fd is not None:
                    self._idle_open[id(tailer)] = tailer

    def _appeared_while_down(self, identity: FileId, changed_ns: int) -> bool:
        """``read_from: tail`` skips the history of files that were there before the agent first ran, never
        lines written while it was down: a file the checkpoint knows by its identity (truncated or
        rewritten meanwhile, so its fingerprint no longer matches) and a file changed after the last
        checkpoint write (created while the agent was down) are read from their start."""
        if self.store.knows(identity):
            return True
        last_written = self.store.last_written_ns
        return last_written is not None and changed_ns >= last_written

    def _register(self, tailer: Tailer) -> None:
        old = self.by_path.get(tailer.watch_path)
        if old is not None and old is not tailer and old.state is not State.FINISHED:
            # Same name, another file: the old one was rotated or deleted; it goes first.
            tailer.predecessor = old
            old.successors += (tailer,)
            self._mark_rotated(old)
        self.tailers[tailer.file_id] = tailer
        self._unsettled.add(tailer)
        self.by_path[tailer.watch_path] = tailer
        if tailer.realpath != tailer.watch_path:
            self.by_path[tailer.realpath] = tailer
        tailer.source.watched += 1
        self._report_counts(tailer.source)

    async def _recover_orphans(self) -> None:
        """Saved positions of files no glob reaches (rotated while the agent was down): find them next
        to where they were by inode, and drain them before their successors."""
        entries = self.store.unclaimed()
        if not entries:
            return

        roots = sorted({root for source in self.sources for root in source.roots.paths})
        orphans = await self.blocking(
            locate_orphans, entries, functools.partial(safeio.open_regular, roots=roots)
        )
        for orphan in orphans:
            entry, path, fd, size, prefix = orphan.entry, orphan.path, orphan.fd, orphan.size, orphan.prefix
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
                _replay_within(entry.replay, size) if offset else None,
            )
            tailer.watch_path = path
            tailer.state = State.ROTATED
            tailer.rotated_at = -1.0
            self._polled.add(tailer)
            successor = self.by_path.get(entry.path)
            if successor is not None:
                successor.predecessor = tailer
                tailer.successors += (successor,)
            self.tailers[tailer.file_id] = tailer
            self._unsettled.add(tailer)
            source.watched += 1
            self._report_counts(source)
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
            dangling: list[str] = []
            stats = await self.blocking(_stat_paths, paths, dangling)
            self._dangling.update(dangling)
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
        ):
            self._attention.add(tailer)

    async def _housekeeping(self) -> None:
        """Timers, held data, polling and idle files; touches only the tailers that need it."""
        cfg = self.config
        now = time.monotonic()
        for tailer in list(self._attention):
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
            # A deleted file still written to is read on; one that cannot be drained (sinks down,
            # backpressure) is let go deleted_file_timeout after the deletion or its last read data.
            if (
                tailer.deleted_at is not None
                and now - max(tailer.deleted_at, tailer.last_data) >= cfg.deleted_file_timeout
            ):
                await self._refresh_size(tailer)  # what is lost is counted against the file's real end
                if not tailer.busy and tailer in self._attention:  # not finished meanwhile
                    self._give_up(tailer, "deleted")
                continue
            if not (
                tailer.holding
                or tailer.wake_at is not None
                or tailer.deleted_at is not None
                or tailer.state is State.ROTATED
            ):
                self._attention.discard(tailer)
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
        if self._dangling and now - self._last_dangling_check >= cfg.poll_interval:
            self._last_dangling_check = now
            await self._check_dangling()
        if now - self._last_gauges >= 1.0:
            self._last_gauges = now
            await self._refresh_sizes()
            self._update_gauges()
        if now - self._last_root_check >= RESCAN_WITHOUT_EVENTS:
            # A directory the globs start from may appear later (/var/log/pods on a fresh node):
            # watch it, and scan it now rather than at the next rescan.
            self._last_root_check = now
            if await self.blocking(self.watcher.refresh):
                self._request_scan()

    async def _refresh_size(self, tailer: Tailer) -> None:
        """The open file's size now (the one known is from the last read: stale while reading waits)."""
        fd = tailer.fd
        if fd is None:
            return
        with contextlib.suppress(OSError):
            size = (await self.blocking(os.fstat, fd)).st_size
            if tailer.fd == fd:
                tailer.size = max(tailer.size, size)

    async def _check_dangling(self) -> None:
        """Links that led nowhere: those that lead to a file now are handled as new names."""
        still: list[str] = []
        stats = await self.blocking(_stat_paths, set(self._dangling), still)
        self._dangling = set(still)
        for path, found in stats:
            if found is not None and found.file_id not in self.tailers:
                self._candidates.add(path)
        if self._candidates:
            self._candidates_ready.set()

    async def _refresh_sizes(self) -> None:
        """The sizes of the open files, for bytes_behind: reads refresh them, but reading pauses while the
        buffer is full (a sink outage), which is when the backlog matters. One fstat per open file that
        may be behind (a settled one grows only with a write, which wakes it)."""
        targets = [(t, t.fd) for t in self._unsettled if t.fd is not None and not t.busy]
        if not targets:
            return
        sizes = await self.blocking(_sizes, [(fd, t.file_id) for t, fd in targets])
        for (tailer, fd), size in zip(targets, sizes, strict=True):
            if size >= 0 and tailer.fd == fd and not tailer.busy:
                tailer.size = size

    def _update_gauges(self) -> None:
        behind: dict[str, int] = {s.name: 0 for s in self.sources}
        settled = []
        for tailer in self._unsettled:
            lag = tailer.size - tailer.cursor.offset
            if lag > 0:
                behind[tailer.source.name] += lag
            elif _settled(tailer):
                settled.append(tailer)
        self._unsettled.difference_update(settled)
        for source in self.sources:
            self.events.bytes_behind(source.name, behind[source.name])
            self._report_counts(source)
        self.events.unwatched_directories(len(self.watcher.unwatched))

    def _report_counts(self, source: InputSource) -> None:
        self.events.file_counts(source.name, source.watched, source.open)

    # -- polling ------------------------------------------------------------------------------------

    def _poll_targets(self) -> list[PollTarget[Tailer]]:
        """Open files events do not cover (all of them while events are unavailable), and rotated
        files being drained: the stat poller looks at these."""
        watcher = self.watcher
        candidates: Iterable[Tailer]
        if not watcher.available:
            candidates = self.tailers.values()
        elif watcher.unwatched:  # out of watches for some directories: their files too
            candidates = [
                t for t in self.tailers.values() if t in self._polled or not watcher.covers(t.realpath)
            ]
        else:
            candidates = self._polled
        return [
            PollTarget(
                tailer, tailer.fd, tailer.watch_path if tailer.state is State.ACTIVE else None, tailer.file_id
            )
            for tailer in candidates
            if tailer.fd is not None and not tailer.busy
        ]

    def _on_polled(self, statuses: list[FileStatus[Tailer]]) -> None:
        now = time.monotonic()
        for status in statuses:
            tailer = status.key
            if tailer.state is State.FINISHED:
                continue
            if status.nlink == 0 and tailer.deleted_at is None:
                tailer.deleted_at = now
                self._attend(tailer)
            if (status.size >= 0 and status.size != tailer.offset) or status.moved or status.nlink == 0:
                self._wake(tailer)
