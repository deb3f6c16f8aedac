"""File events for the directories inputs read from: inotify, through watchfiles' public ``watch()``.

watchfiles is already a dependency; its Rust core (the ``notify`` crate) adds watches for new
subdirectories as they appear (``/var/log/pods/<pod>/<container>/``), which is most of what a
recursive inotify watcher has to get right. Its ``watch()`` generator is driven in one dedicated
thread; ``yield_on_timeout`` makes its first yield, after at most TICK_MS, say "the watches are in
place", so the shipper reports ready only when a file created afterwards is sure to produce an event.

When inotify is unavailable (no support, out of watches, no root exists), :attr:`available` is False
and the reader polls the files it holds instead (:mod:`.poll`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor

import watchfiles

from nodeagent.logs.watch import Change
from nodeagent.safeio import is_under

log = logging.getLogger("nodeagent.logs.watch")

_KINDS = {
    watchfiles.Change.added: "added",
    watchfiles.Change.modified: "modified",
    watchfiles.Change.deleted: "deleted",
}
DEBOUNCE_MS = 100  # the longest a burst of events is held back before it is delivered
STEP_MS = 50  # a burst ends after this much quiet; also how often the watch thread checks for stop
TICK_MS = 100  # an empty batch at least this often: how soon "watching" is known, and restarts happen

_Events = Generator[set[tuple[watchfiles.Change, str]], None, None]


def open_events(roots: list[str], stop: threading.Event) -> _Events:
    """Batches of changes under ``roots`` until ``stop`` is set; blocking, lazily started."""
    return watchfiles.watch(
        *roots,
        watch_filter=None,  # the default filter hides names like *.swp and *~ that a glob may want
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        rust_timeout=TICK_MS,
        yield_on_timeout=True,
        debug=False,
        raise_interrupt=False,
        force_polling=False,
        recursive=True,
        ignore_permission_denied=True,
    )


def _root_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class InotifyWatcher:
    """Delivers batches of changes under a set of root directories to ``on_changes`` (on the loop).

    Roots that do not exist yet are skipped; :meth:`refresh` (the reader calls it on every rescan)
    restarts the watch when a root appeared, vanished or was replaced. Without a watch it tries again
    every ``retry_interval`` seconds.
    """

    def __init__(
        self,
        roots: Iterable[str],
        on_changes: Callable[[list[Change]], None],
        *,
        retry_interval: float,
    ) -> None:
        self.roots = sorted(set(roots))
        self.on_changes = on_changes
        self.retry_interval = retry_interval
        self.available = False
        self.watched: dict[str, tuple[int, int]] = {}
        self.settled = asyncio.Event()  # set once the first attempt to watch has succeeded or failed
        self._restart = threading.Event()  # read by the watch thread
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nodeagent-watch")

    def covers(self, path: str) -> bool:
        """Whether changes to ``path`` produce events now."""
        return self.available and any(is_under(path, root) for root in self.watched)

    def refresh(self) -> bool:
        """Restart the watch if the set of existing roots changed (blocking stats: call in a thread).

        Returns whether it did: files in a new root were not watched until now."""
        if self._existing_roots() != self.watched:
            self._restart.set()
            return True
        return False

    def stop(self) -> None:
        self._stopping = True
        self._restart.set()

    def _existing_roots(self) -> dict[str, tuple[int, int]]:
        found = {}
        for root in self.roots:
            key = _root_key(root)
            if key is not None:
                found[root] = key
        return found

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._restart.clear()
                roots = await loop.run_in_executor(self._executor, self._existing_roots)
                events = None
                first: set[tuple[watchfiles.Change, str]] | None = None
                if roots:
                    events = open_events(list(roots), self._restart)
                    try:
                        # The first batch (empty after TICK_MS) comes once the watches are set.
                        first = await loop.run_in_executor(self._executor, next, events, None)
                    except Exception as exc:  # inotify limits, permissions, a root removed meanwhile
                        log.warning(
                            "file events unavailable; polling instead",
                            extra={"roots": ",".join(roots), "err": repr(exc)},
                        )
                        events = None
                self.watched = roots if first is not None else {}
                self.available = first is not None
                self.settled.set()
                if events is None or first is None:
                    await self._wait_restart(loop)
                    continue
                try:
                    await self._watch(loop, events, first)
                except Exception as exc:
                    log.warning("file events stopped; polling until they are back", extra={"err": repr(exc)})
                    self.available = False
                    await self._wait_restart(loop)
                finally:
                    self.available = False
                    self._restart.set()
                    # Closed by the watch thread, after the ``next`` it may still be in has returned.
                    self._executor.submit(events.close)
        finally:
            self._restart.set()
            self._executor.shutdown(wait=False)

    async def _wait_restart(self, loop: asyncio.AbstractEventLoop) -> None:
        await loop.run_in_executor(self._executor, self._restart.wait, self.retry_interval)

    async def _watch(
        self,
        loop: asyncio.AbstractEventLoop,
        events: _Events,
        batch: set[tuple[watchfiles.Change, str]] | None,
    ) -> None:
        while batch is not None and not self._restart.is_set():
            if batch:
                changes = [(_KINDS.get(kind, "modified"), path) for kind, path in batch]
                try:
                    self.on_changes(changes)
                except Exception:  # a bug in the handler must not end file events
                    log.exception("file event handler failed")
            batch = await loop.run_in_executor(self._executor, next, events, None)
