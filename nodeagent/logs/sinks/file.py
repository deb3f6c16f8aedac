"""A local file: one JSON object per line (:meth:`Record.to_json`), appended.

Options:
  path   the file (required); parent directories are created
``prepare`` encodes (while the previous batch's fsync runs); ``send`` writes (no fsync); ``flush``
fsyncs, so a checkpoint commit follows durable output. When someone else renames or removes the file
(logrotate), the next batch goes to a new file at ``path``; the old one is fsynced before it is let go.
All file I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_nonempty_str
from nodeagent.logs.durable import write_all
from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.record import Record
from nodeagent.logs.sinks.base import RetryableSinkError, Sink

log = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC  # read: to repair a torn tail


def _drop_torn_tail(fd: int) -> None:
    """A process killed mid-write leaves a line without its end; that batch was never committed and
    is sent again, so cut the fragment instead of gluing the next record onto it."""
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - 65536)
        newline = os.pread(fd, position - start, start).rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        position = start
    os.ftruncate(fd, 0)


class FileSink(Sink):
    type: ClassVar[str] = "file"
    option_schema: ClassVar[Section] = Section(
        (Field("path", REQUIRED, "The file; parent directories are created.", parse_nonempty_str),),
        subject="a file sink",
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.path = Path(self.read_options()["path"])
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._dirty = False  # written since the last fsync
        self._lock = asyncio.Lock()
        self._prepared: tuple[Sequence[Record], bytes] | None = None  # (batch, its encoding) from prepare

    # -- blocking helpers, run in a thread ----------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        _drop_torn_tail(fd)
        stat = os.fstat(fd)
        self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)

    def _release(self) -> None:
        """fsync and close the current file (it may have been renamed away: its data still counts)."""
        fd, self._fd, self._identity = self._fd, None, None
        if fd is None:
            return
        try:
            if self._dirty:
                os.fsync(fd)
                self._dirty = False
        finally:
            os.close(fd)

    def _rotated_away(self) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def _write(self, data: bytes) -> None:
        if self._fd is not None and self._rotated_away():
            self._release()
        if self._fd is None:
            self._open()
        fd = self._fd
        assert fd is not None
        size_before = os.fstat(fd).st_size
        try:
            write_all(fd, data)
        except OSError:
            # Disk full and the like: take back the partial line so the retry leaves no broken JSON.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size_before)
            raise
        self._dirty = True

    def _fsync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    # -- Sink ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._lock:
            try:
                await self.blocking(self._open)
            except OSError as exc:
                # Not fatal: every send tries again (and fails retryably) until the path is usable.
                log.warning("%s: cannot open %s yet: %s", self.name, self.path, exc)

    def prepare(self, batch: Sequence[Record]) -> None:
        self._prepared = (batch, encode_json_lines(batch))

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        prepared, self._prepared = self._prepared, None
        data = prepared[1] if prepared is not None and prepared[0] is batch else encode_json_lines(batch)
        async with self._lock:
            try:
                await self.blocking(self._write, data)
            except OSError as exc:
                # The retry repeats the whole batch; start it with a fresh descriptor.
                await self.blocking(self._close_quietly)
                raise RetryableSinkError(f"{self.name}: writing {self.path} failed: {exc}") from exc

    async def flush(self) -> None:
        async with self._lock:
            try:
                await self.blocking(self._fsync)
            except OSError as exc:
                await self.blocking(self._close_quietly)
                raise RetryableSinkError(f"{self.name}: fsync of {self.path} failed: {exc}") from exc

    async def close(self) -> None:
        async with self._lock:
            try:
                await self.blocking(self._release)
            except OSError:
                await self.blocking(self._close_quietly)

    def _close_quietly(self) -> None:
        fd, self._fd, self._identity = self._fd, None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
