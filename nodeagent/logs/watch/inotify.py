"""File events for the directories inputs read from: Linux inotify, read on the event loop.

The kernel interface is three calls (``inotify_init1``, ``inotify_add_watch``, ``read``), taken from the
C library through ctypes: no dependency, no thread (the descriptor is non-blocking and the loop reads it
when it is readable). Watches are added for every directory below the roots, without ever following a
directory symlink (``IN_DONT_FOLLOW``, and links are not walked): a pod that links its log directory to
``/`` cannot make the agent watch the host's whole tree. Files behind such links (within the roots) are
found by rescans and polled.

Events are read STEP seconds after the first one of a burst, so a burst comes as one batch; while
events keep coming, every BURST_STEP seconds without waking the loop in between (files written all the
time cost one read per file per BURST_STEP, not one per write), until a read finds the queue empty.
BURST_STEP is the linger of a busy file: each wakeup carries a fixed cost (a trip to a thread, a segment
per file, a batch and a commit downstream), so a file written all the time is read four times a second
(a quarter of the default batch_timeout), not ten: about a quarter less CPU at 10,000 lines/s.
A queue overflow reports every root as "added", which makes the reader rescan. When inotify is
unavailable (no support, out of watches or instances, no root exists), :attr:`InotifyWatcher.available`
is False and the reader polls the files it holds instead (:mod:`.poll`).

Out of watches (``fs.inotify.max_user_watches``) for some directories only: those are in
:attr:`InotifyWatcher.unwatched` (warned about once, counted by the reader in a metric); the watcher lists
them every ``poll_interval`` and reports what appeared or went as events would, tries to watch them again
every ``retry_interval``, and :meth:`InotifyWatcher.covers` is False for their files, which the reader
polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import time
from collections.abc import Callable, Iterable

from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.watch import Change
from nodeagent.safeio import is_under

log = logging.getLogger("nodeagent.logs.watch")

STEP = 0.05  # seconds from the first event of a burst to the read of the event queue
BURST_STEP = 0.25  # seconds between two reads of the event queue while events keep coming
READ_BYTES = 64 * 1024

IN_MODIFY = 0x2
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000
WATCH_MASK = (
    IN_MODIFY
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, name length
OUT_OF_WATCHES = (errno.ENOSPC, errno.ENOMEM)  # inotify_add_watch beyond max_user_watches
WATCHES_SYSCTL = "fs.inotify.max_user_watches"

_libc: ctypes.CDLL | None = None


def _c_library() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


class Inotify:
    """One inotify instance: a non-blocking descriptor, watches by directory, events as they come."""

    def __init__(self) -> None:
        libc = _c_library()
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        self.fd: int = fd

    def add(self, directory: str) -> int:
        """Watch ``directory`` (not through a symlink); its watch descriptor."""
        wd = _c_library().inotify_add_watch(self.fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_add_watch: {os.strerror(errno)}", directory)
        return int(wd)

    def read(self) -> list[tuple[int, int, str]]:
        """(wd, mask, name) of every event queued now; never blocks.

        A file written again and again between two reads queues one IN_MODIFY per write (the kernel
        merges only identical events back to back): only the first of them is kept."""
        events: list[tuple[int, int, str]] = []
        modified: set[tuple[int, bytes]] = set()
        unpack, size = _EVENT.unpack_from, _EVENT.size
        while True:
            try:
                data = os.read(self.fd, READ_BYTES)
            except BlockingIOError:
                return events
            offset, end = 0, len(data)
            while offset + size <= end:
                wd, mask, _cookie, length = unpack(data, offset)
                offset += size
                raw = data[offset : offset + length]
                offset += length
                if mask == IN_MODIFY:
                    if (wd, raw) in modified:
                        continue
                    modified.add((wd, raw))
                events.append((wd, mask, os.fsdecode(raw.rstrip(b"\0"))))

    def close(self) -> None:
        os.close(self.fd)


def directories_below(root: str) -> list[str]:
    """``root`` and every directory below it, symlinks not followed; blocking."""
    found, stack = [], [root]
    while stack:
        directory = stack.pop()
        found.append(directory)
        try:
            with os.scandir(directory) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return found


def _root_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class InotifyWatcher:
    """Delivers batches of changes under a set of root directories to ``on_changes`` (on the loop).

    Roots that do not exist yet are skipped; :meth:`refresh` (the reader calls it on every rescan, from
    a worker thread) restarts the watch when a root appeared, vanished or was replaced. Without a watch
    it tries again every ``retry_interval`` seconds.
    """

    def __init__(
        self,
        roots: Iterable[str],
        on_changes: Callable[[list[Change]], None],
        *,
        retry_interval: float,
        poll_interval: float = 1.0,
        blocking: Blocking = DEFAULT,
        inotify: Callable[[], Inotify] | None = None,
    ) -> None:
        self.roots = sorted(set(roots))
        self.on_changes = on_changes
        self.retry_interval = retry_interval
        self.poll_interval = poll_interval
        self.blocking = blocking
        self.new_inotify = inotify or Inotify
        self.available = False
        self.watched: dict[str, tuple[int, int]] = {}
        self.unwatched: set[str] = set()  # directories below the roots left without a watch: listed instead
        self._listings: dict[str, set[str]] = {}  # unwatched directory -> names in it when last listed
        self._warned_unwatched = False
        self.settled = asyncio.Event()  # set once the first attempt to watch has succeeded or failed
        self._restart = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._notify: Inotify | None = None
        self._directories: dict[int, str] = {}  # wd -> directory
        self._draining: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # watching new directories

    def covers(self, path: str) -> bool:
        """Whether changes to ``path`` produce events now."""
        return (
            self.available
            and any(is_under(path, root) for root in self.watched)
            and os.path.dirname(path) not in self.unwatched
        )

    def refresh(self) -> bool:
        """Restart the watch if the set of existing roots changed (blocking stats: call in a thread).

        Returns whether it did: files in a new root were not watched until now."""
        if self._existing_roots() != self.watched:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._restart.set)
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
        self._loop = loop = asyncio.get_running_loop()
        while not self._stopping:
            self._restart.clear()
            roots = await self.blocking(self._existing_roots)
            notify = None
            unwatched: set[str] = set()
            if roots:
                try:
                    notify, directories, unwatched = await self.blocking(self._start, list(roots))
                except Exception as exc:  # inotify limits, permissions, a root removed meanwhile
                    log.warning(
                        "file events unavailable; polling instead",
                        extra={"roots": ",".join(roots), "err": repr(exc)},
                    )
            self.watched = roots if notify is not None else {}
            self.available = notify is not None
            self.settled.set()
            if notify is None:
                await self._wait_restart(self.retry_interval)
                continue
            self._notify, self._directories = notify, directories
            self.unwatched, self._listings = set(), {}
            self._left_unwatched(unwatched)
            loop.add_reader(notify.fd, self._readable)
            lister = loop.create_task(self._list_unwatched(notify))
            try:
                await self._wait_restart(None)
            finally:
                lister.cancel()
                self.unwatched, self._listings = set(), {}
                loop.remove_reader(notify.fd)
                if self._draining is not None:
                    self._draining.cancel()
                    self._draining = None
                self.available = False
                self._notify, self._directories = None, {}
                notify.close()

    async def _wait_restart(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._restart.wait(), timeout)

    def _start(self, roots: list[str]) -> tuple[Inotify, dict[int, str], set[str]]:
        """A new instance watching every directory below ``roots``, and the directories it is out of
        watches for; blocking."""
        notify = self.new_inotify()
        directories: dict[int, str] = {}
        unwatched: set[str] = set()
        try:
            for root in roots:
                for directory in directories_below(root):
                    try:
                        directories[notify.add(directory)] = directory
                    except FileNotFoundError:
                        continue  # removed since it was listed
                    except OSError as exc:
                        if exc.errno not in OUT_OF_WATCHES:
                            raise
                        unwatched.add(directory)
        except BaseException:
            notify.close()
            raise
        return notify, directories, unwatched

    # -- directories left without a watch ---------------------------------------------------------

    def _left_unwatched(self, directories: Iterable[str]) -> None:
        """Out of watches for these: list them instead (first listing: everything in them is reported)."""
        new = set(directories) - self.unwatched
        if not new:
            return
        self.unwatched |= new
        if not self._warned_unwatched:
            self._warned_unwatched = True
            log.warning(
                f"out of inotify watches; polling the directories left unwatched: raise {WATCHES_SYSCTL}",
                extra={"sysctl": WATCHES_SYSCTL, "unwatched": len(self.unwatched), "example": min(new)},
            )

    async def _list_unwatched(self, notify: Inotify) -> None:
        """Every poll_interval, report what appeared in or went from the unwatched directories; every
        retry_interval, try to watch them again (the limit may have been raised)."""
        last_retry = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_interval)
            if not self.unwatched:
                continue
            retry = time.monotonic() - last_retry >= self.retry_interval
            if retry:
                last_retry = time.monotonic()
            try:
                watched, listings = await self.blocking(_look_at, notify, sorted(self.unwatched), retry)
            except Exception:  # a bug must not end the polling
                log.exception("listing unwatched directories failed")
                continue
            if self._notify is not notify:
                return
            changes: list[Change] = []
            subdirectories: list[str] = []
            for wd, directory in watched.items():
                self._directories[wd] = directory
                self.unwatched.discard(directory)
                self._listings.pop(directory, None)
                changes.append(("added", directory))  # watched from now on: the reader looks again
            for directory, entries in listings.items():
                if directory not in self.unwatched:
                    continue
                before: set[str] = self._listings.get(directory, set())
                if entries is None:  # gone
                    self.unwatched.discard(directory)
                    self._listings.pop(directory, None)
                    continue
                self._listings[directory] = set(entries)
                for name, is_dir in entries.items():
                    if name not in before:
                        path = os.path.join(directory, name)
                        changes.append(("added", path))
                        if is_dir:
                            subdirectories.append(path)
                changes += [
                    ("deleted", os.path.join(directory, name)) for name in before if name not in entries
                ]
            if subdirectories:
                await self._watch_new(notify, subdirectories)
            if changes:
                try:
                    self.on_changes(changes)
                except Exception:
                    log.exception("file event handler failed")

    # -- on the loop ------------------------------------------------------------------------------

    def _readable(self) -> None:
        """Events are waiting: read them a moment later, so a burst comes as one batch."""
        notify = self._notify
        if notify is None or self._loop is None:
            return
        self._loop.remove_reader(notify.fd)
        self._draining = self._loop.call_later(STEP, self._drain)

    def _drain(self) -> None:
        self._draining = None
        notify, loop = self._notify, self._loop
        if notify is None or loop is None:
            return
        try:
            events = notify.read()
            changes, new_directories = self._changes(events)
        except OSError as exc:
            log.warning("file events stopped; polling until they are back", extra={"err": repr(exc)})
            self._restart.set()
            return
        if events:  # a burst goes on, most likely: look again a little later instead of on each event
            self._draining = loop.call_later(BURST_STEP, self._drain)
        else:
            loop.add_reader(notify.fd, self._readable)
        if new_directories:
            task = loop.create_task(self._watch_new(notify, new_directories))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if changes:
            try:
                self.on_changes(changes)
            except Exception:  # a bug in the handler must not end file events
                log.exception("file event handler failed")

    def _changes(self, events: list[tuple[int, int, str]]) -> tuple[list[Change], list[str]]:
        changes: list[Change] = []
        new_directories: list[str] = []
        for wd, mask, name in events:
            if mask & IN_Q_OVERFLOW:  # events were lost: "added" roots make the reader rescan
                changes += [("added", root) for root in self.watched]
                continue
            directory = self._directories.get(wd)
            if directory is None:
                continue
            if mask & IN_IGNORED:
                del self._directories[wd]
                continue
            path = os.path.join(directory, name) if name else directory
            if mask & (IN_CREATE | IN_MOVED_TO):
                changes.append(("added", path))
                if mask & IN_ISDIR:
                    new_directories.append(path)
            elif mask & (IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF):
                changes.append(("deleted", path))
            elif mask & IN_MODIFY:
                changes.append(("modified", path))
        return changes, new_directories

    async def _watch_new(self, notify: Inotify, paths: list[str]) -> None:
        """Watch directories that appeared (a new pod's) and what is below them; then report them again,
        so the reader looks for files made before the watch was in place."""
        listed = await self.blocking(lambda: [d for path in paths for d in directories_below(path)])
        if self._notify is not notify:
            return  # restarted meanwhile: the new instance watches them from the start
        out_of_watches = []
        for directory in listed:
            try:
                self._directories[notify.add(directory)] = directory
            except OSError as exc:
                if exc.errno in OUT_OF_WATCHES:
                    out_of_watches.append(directory)
                continue  # else gone again
        self._left_unwatched(out_of_watches)
        try:
            self.on_changes([("added", directory) for directory in listed])
        except Exception:
            log.exception("file event handler failed")


def _look_at(
    notify: Inotify, directories: list[str], retry: bool
) -> tuple[dict[int, str], dict[str, dict[str, bool] | None]]:
    """For unwatched directories: the watches that could be added now (``retry``), and what is in the
    others (name -> is a directory; None: gone); blocking."""
    watched: dict[int, str] = {}
    listings: dict[str, dict[str, bool] | None] = {}
    for directory in directories:
        if retry:
            try:
                watched[notify.add(directory)] = directory
                continue
            except OSError:
                pass
        try:
            with os.scandir(directory) as entries:
                listings[directory] = {e.name: _is_directory(e) for e in entries}
        except FileNotFoundError:
            listings[directory] = None
        except OSError:
            continue
    return watched, listings


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
