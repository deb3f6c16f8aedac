"""Bounded pools of daemon threads for blocking host I/O, one per job.

Blocking calls (procfs and textfile reads, statvfs, a log file's read or a checkpoint's fsync) run off the
event loop. Each job gets its own :class:`BoundedPool`, so a job whose calls hang (a FIFO, a dead NFS
mount, a stuck disk) can use up its own workers but never another job's: scrapes cannot starve the log
shipper and the other way round. The pools:

- run at most ``size`` calls at once; more wait in the pool's queue;
- use daemon threads that are never joined at exit, so a thread stuck in the kernel cannot hold up
  SIGTERM (``ThreadPoolExecutor`` joins its threads at interpreter exit, for ever if one is stuck);
- let a caller :meth:`~BoundedPool.abandon` a call it gave up on: a replacement thread keeps ``size``
  healthy workers (at most ``max_abandoned`` stuck ones at a time), the stuck one exits when its call
  returns;
- say how long their oldest call has been running or waiting (:meth:`~BoundedPool.stalled_for`), which
  readiness reports.

``BoundedPool`` is a ``ThreadPoolExecutor`` so that asyncio accepts it as a loop's default executor
(``asyncio.to_thread`` then runs on it), but none of the parent's thread machinery is used.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger("nodeagent.pools")

SHUTDOWN_WAIT_SECONDS = 1.0  # how long shutdown(wait=True) waits for running calls; never for ever
# Scrapes hold the GIL most of the time: more concurrent renders would only queue there.
SCRAPE_WORKERS = 2
SCRAPE_MAX_STUCK = 32  # replacements for scrapes given up on; the stuck collector is then skipped
LOG_IO_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # what asyncio.to_thread had before: same throughput


class _Call:
    __slots__ = ("abandoned", "args", "fn", "future", "kwargs", "queued_at", "started_at")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.future: Future[Any] = Future()
        self.queued_at = time.monotonic()
        self.started_at = 0.0
        self.abandoned = False


class BoundedPool(ThreadPoolExecutor):
    """``size`` daemon worker threads named ``nodeagent-<name>``; see the module docstring."""

    def __init__(self, name: str, size: int, *, max_abandoned: int | None = None) -> None:
        super().__init__(max_workers=max(size, 1), thread_name_prefix=f"nodeagent-{name}")
        self.name = name
        self.size = max(size, 1)
        self.max_abandoned = self.size if max_abandoned is None else max_abandoned
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued: dict[int, _Call] = {}  # id -> call, waiting for a worker
        self._running: dict[int, _Call] = {}  # id -> call, on a worker
        self._workers = 0  # healthy workers (not stuck in an abandoned call)
        self._stuck = 0  # workers still inside an abandoned call
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        call = _Call(fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"pool {self.name} is shut down")
            self._queued[id(call)] = call
            if self._wants_worker_locked():
                self._spawn_locked()
        self._calls.put(call)
        return call.future

    def abandon(self, future: Future[Any]) -> bool:
        """The caller stopped waiting for ``future``'s call. A queued call is cancelled; a running one
        keeps its thread, and a replacement worker is started (False when ``max_abandoned`` stuck
        workers already exist: the pool then runs with fewer workers until one returns)."""
        if future.cancel():
            return True
        with self._lock:
            call = next((c for c in self._running.values() if c.future is future), None)
            if call is None or call.abandoned:
                return call is not None
            call.abandoned = True
            self._stuck += 1
            self._workers -= 1
            if not self._wants_worker_locked():
                return False
            self._spawn_locked()
        return True

    def stalled_for(self) -> float:
        """Seconds since the oldest call still running or waiting was handed to the pool (0 when idle)."""
        with self._lock:
            oldest = min(
                (c.queued_at for c in (*self._running.values(), *self._queued.values())), default=None
            )
        return 0.0 if oldest is None else time.monotonic() - oldest

    def running_calls(self) -> list[tuple[Callable[..., Any], float]]:
        """(function, seconds running) of each call on a worker now."""
        now = time.monotonic()
        with self._lock:
            return [(c.fn, now - c.started_at) for c in self._running.values()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting calls; with ``wait``, give running calls :data:`SHUTDOWN_WAIT_SECONDS`."""
        with self._lock:
            self._closed = True
            workers = self._workers
            if cancel_futures:
                for call in list(self._queued.values()):
                    call.future.cancel()
        for _ in range(workers):
            self._calls.put(None)
        if wait:
            deadline = time.monotonic() + SHUTDOWN_WAIT_SECONDS
            while time.monotonic() < deadline:
                with self._lock:
                    if not self._running and not self._queued:
                        return
                time.sleep(0.01)

    def _wants_worker_locked(self) -> bool:
        """Fewer healthy workers than ``size``, and room for one more thread: ``size`` healthy ones plus
        at most ``max_abandoned`` stuck ones."""
        threads = self._workers + self._stuck
        return self._workers < self.size and threads < self.size + min(self._stuck, self.max_abandoned)

    def _spawn_locked(self) -> None:
        self._workers += 1
        threading.Thread(target=self._work, name=f"nodeagent-{self.name}", daemon=True).start()

    def _work(self) -> None:
        # One call per _serve_next: its frame, and with it the call's arguments and result (a checkpoint
        # snapshot, a scan's listing), goes when the call is done, not when the next one comes.
        while self._serve_next():
            pass

    def _serve_next(self) -> bool:
        """Wait for a call and run it; False when this worker is to exit."""
        call = self._calls.get()
        if call is None:
            return False
        with self._lock:
            self._queued.pop(id(call), None)
            if not call.future.set_running_or_notify_cancel():
                return True
            call.started_at = time.monotonic()
            self._running[id(call)] = call
        try:
            result = call.fn(*call.args, **call.kwargs)
        except BaseException as exc:  # handed to the waiter, as ThreadPoolExecutor does
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)
        with self._lock:
            del self._running[id(call)]
            if call.abandoned:
                self._stuck -= 1
                if not self._wants_worker_locked():
                    return False  # a replacement took this worker's place while it was stuck
                self._workers += 1  # none did (too many stuck): serve again
        return True


def scrape_pool() -> BoundedPool:
    """The scrape job's pool: collectors and rendering."""
    return BoundedPool("scrape", SCRAPE_WORKERS, max_abandoned=SCRAPE_MAX_STUCK)


def log_io_pool() -> BoundedPool:
    """The log shipper's pool: its blocking file I/O (reads, stats, checkpoint writes, fsyncs)."""
    return BoundedPool("logs", LOG_IO_WORKERS)
