"""Noticing changes to the files inputs read, through one interface with two backends.

- :class:`~nodeagent.logs.watch.inotify.InotifyWatcher`: file events (inotify) for the directories the
  inputs' globs start from; changes arrive within about DEBOUNCE_MS.
- :class:`~nodeagent.logs.watch.poll.StatPoller`: ``fstat`` of open files every ``poll_interval``; the
  fallback for files events do not cover (outside the roots, behind a symlink), for every file while
  inotify is unavailable, and for rotated files still being drained.

Neither is ever the only way the reader notices something: its periodic rescans catch what both
missed (event queue overflow, a file closed for the open-file budget).
"""

from __future__ import annotations

from typing import Protocol

# (kind, path) with kind "added", "modified" or "deleted".
Change = tuple[str, str]


class Watcher(Protocol):
    """What the reader needs from a backend. Changes go to the callback the backend was built with."""

    @property
    def available(self) -> bool:
        """Whether changes are being noticed right now."""

    def covers(self, path: str) -> bool:
        """Whether a change to ``path`` is noticed without the reader asking."""

    async def run(self) -> None:
        """Notice changes until :meth:`stop`."""

    def stop(self) -> None: ...


__all__ = ["Change", "Watcher"]
