"""Filesystem events (inotify through watchfiles' notify binding) for the directories inputs read from.

The watcher only wakes the reader up early; it is never the only way to notice a change. When inotify is
unavailable (no support, out of watches, no root exists), :attr:`PathWatcher.available` is False and the
reader polls the files it holds instead; periodic rescans catch anything events missed (queue overflow).

watchfiles' own ``awatch`` gives no signal for "the watch is in place"; :class:`RustNotify`, which it
wraps, does (its constructor returns once inotify watches are set), so the shipper can say it is ready
only when a file created after that moment is sure to produce an event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from watchfiles import Change as WatchChange
from watchfiles._rust_notify import RustNotify

from nodeagent.logs.discovery import is_under

log = logging.getLogger("nodeagent.logs.watch")

# (kind, path) with kind "added", "modified" or "deleted".
Change = tuple[str, str]

_KINDS = {
    int(WatchChange.added): "added",
    int(WatchChange.modified): "modified",
    int(WatchChange.deleted): "deleted",
}
DEBOUNCE_MS = 100  # the longest a burst of events is held back before it is delivered
STEP_MS = 50  # a burst ends after this much quiet; also how often the idle watch thread checks for stop
TIMEOUT_MS = 5000


def _root_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class PathWatcher:
    """Delivers batches of changes under a set of root directories to ``on_changes`` (on the loop).

    Roots that do not exist yet are skipped; :meth:`refresh` (the reader calls it on every rescan)
    restarts the watch when a root appeared, vanished or was replaced.
    """

    def __init__(self, roots: Iterable[str], on_changes: Callable[[list[Change]], None]) -> None:
        self.roots = sorted(set(roots))
        self.on_changes = on_changes
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

    async def run(self, retry_interval: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._restart.clear()
                roots = await loop.run_in_executor(self._executor, self._existing_roots)
                notify = None
                if roots:
                    try:
                        notify = await loop.run_in_executor(
                            self._executor, RustNotify, list(roots), False, False, 300, True, True
                        )
                    except Exception as exc:  # inotify limits, permissions, a root removed meanwhile
                        log.warning(
                            "file events unavailable; polling instead",
                            extra={"roots": ",".join(roots), "err": repr(exc)},
                        )
                self.watched = roots if notify is not None else {}
                self.available = notify is not None
                self.settled.set()
                if notify is None:
                    await self._wait_restart(loop, retry_interval)
                    continue
                try:
                    await self._watch(loop, notify)
                except Exception as exc:
                    log.warning("file events stopped; polling until they are back", extra={"err": repr(exc)})
                    self.available = False
                    await self._wait_restart(loop, retry_interval)
                finally:
                    self.available = False
                    self._restart.set()
                    # Closed by the watch thread once its watch() call has returned.
                    self._executor.submit(notify.close)
        finally:
            self._restart.set()
            self._executor.shutdown(wait=False)

    async def _wait_restart(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        await loop.run_in_executor(self._executor, self._restart.wait, timeout)

    async def _watch(self, loop: asyncio.AbstractEventLoop, notify: RustNotify) -> None:
        while not self._restart.is_set():
            raw = await loop.run_in_executor(
                self._executor, notify.watch, DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, self._restart
            )
            if isinstance(raw, str):  # "timeout", "stop" or "signal"
                continue
            batch = [(_KINDS.get(kind, "modified"), path) for kind, path in raw]
            try:
                self.on_changes(batch)
            except Exception:  # a bug in the handler must not end file events
                log.exception("file event handler failed")
