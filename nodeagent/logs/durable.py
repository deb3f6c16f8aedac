"""Blocking helpers for the shipper's files that must survive a crash (checkpoints, disk buffers, the
file sink): a write that is whole or raises, and the fsync of a directory that makes a name durable."""

from __future__ import annotations

import os
from pathlib import Path


def write_all(fd: int, data: bytes | memoryview, offset: int | None = None) -> None:
    """Write all of ``data`` (at ``offset`` with pwrite, else at the file position), however many
    calls the kernel needs; raises OSError (what was written before stays)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if offset is not None:
            offset += written
        view = view[written:]


def fsync_directory(directory: Path) -> None:
    """Make the names created, renamed or removed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
