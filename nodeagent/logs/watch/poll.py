"""Stat polling: every ``interval`` seconds, ``fstat`` the open files the reader names and report what
changed size, lost its last link, or is no longer at its path.

The reader decides which files need it (see :mod:`nodeagent.logs.watch`) through ``targets``; the
poller only looks, in a worker thread, and hands the statuses to ``on_status`` on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.identity import FileId, path_leads_to

log = logging.getLogger("nodeagent.logs.watch")

_K = TypeVar("_K")


@dataclass(slots=True)
class PollTarget(Generic[_K]):
    """An open file to look at; ``path``: check that it still leads there (None: do not check)."""

    key: _K
    fd: int
    path: str | None
    file_id: FileId


@dataclass(slots=True)
class FileStatus(Generic[_K]):
    key: _K
    size: int = -1  # -1: fstat failed
    nlink: int = 1
    moved: bool = False


def poll_files(targets: Sequence[PollTarget[_K]]) -> list[FileStatus[_K]]:
    """``fstat`` each target (and stat its path); blocking."""
    results = []
    for target in targets:
        status = FileStatus(target.key)
        try:
            st = os.fstat(target.fd)
            status.size, status.nlink = st.st_size, st.st_nlink
        except OSError:
            pass
        if target.path is not None:
            status.moved = not path_leads_to(target.path, target.file_id)
        results.append(status)
    return results


class StatPoller(Generic[_K]):
    """Polls ``targets()`` every ``interval`` seconds and passes the statuses to ``on_status``."""

    available = True

    def __init__(
        self,
        interval: float,
        targets: Callable[[], list[PollTarget[_K]]],
        on_status: Callable[[list[FileStatus[_K]]], None],
        blocking: Blocking = DEFAULT,
    ) -> None:
        self.blocking = blocking
        self.interval = interval
        self.targets = targets
        self.on_status = on_status
        self._stopping = False

    def covers(self, path: str) -> bool:
        return True  # any open file the reader names

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            targets = self.targets()
            if not targets:
                continue
            try:
                statuses = await self.blocking(poll_files, targets)
                self.on_status(statuses)
            except Exception:  # a bug must not end polling
                log.exception("polling log files failed")
