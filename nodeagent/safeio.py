"""Opening and reading files that other people control, and quoting what they wrote.

The agent runs as root on every node and reads files that pods can write or link: log files,
textfiles, anything below a host root. Three rules follow, kept here so every reader applies them the
same way:

- open only regular files, without blocking (a FIFO or a device is refused, never waited on);
- where the caller names roots, the file actually opened (resolved through the descriptor, after the
  open, so there is no check-then-open race) must lie below one of them;
- read at most a caller-given number of bytes; quote at most :data:`QUOTE_LIMIT` characters of it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

QUOTE_LIMIT = 200  # characters of untrusted text an error message may carry

_BASE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_NOATIME = getattr(os, "O_NOATIME", 0)


class RefusedFile(OSError):
    """A path the agent will not read: not a regular file, or resolving outside its roots."""


class OutsideRoots(RefusedFile):
    """A path that resolves (through symlinks) outside the allowed roots; ``target`` is where to."""

    def __init__(self, message: str, target: str) -> None:
        super().__init__(message)
        self.target = target


def is_under(path: str, root: str) -> bool:
    """``path`` is ``root`` or lies below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def fd_path(fd: int) -> str:
    """The path the kernel resolved for an open descriptor (symlinks followed)."""
    return os.readlink(f"/proc/self/fd/{fd}")


def _open_flags(follow_links: bool) -> int:
    return _BASE_FLAGS | _NOATIME | (0 if follow_links else os.O_NOFOLLOW)


def open_regular(
    path: str,
    *,
    roots: Iterable[str] | None = None,
    follow_links: bool = True,
    dir_fd: int | None = None,
) -> int:
    """A read-only descriptor of the regular file at ``path``; the caller closes it.

    ``follow_links=False`` refuses a final path component that is a symbolic link (``O_NOFOLLOW``).
    ``roots``: the opened file must resolve below one of them. ``dir_fd``: ``path`` is relative to that
    directory descriptor (``openat``). Raises :class:`RefusedFile` for a non-regular file or one outside
    the roots, and OSError for what the kernel refuses (ELOOP for a refused link).
    """
    flags = _open_flags(follow_links)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except PermissionError:
        if not _NOATIME:
            raise
        fd = os.open(path, flags & ~_NOATIME, dir_fd=dir_fd)  # O_NOATIME needs file ownership
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFile(f"not a regular file: {quote(path)}")
        if roots is not None:
            target = fd_path(fd)
            if not any(is_under(target, os.path.normpath(root)) for root in roots):
                raise OutsideRoots(f"{quote(path)} resolves outside the allowed roots", target)
        # Regular files ignore O_NONBLOCK; clear it anyway so a later reader sees ordinary semantics.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(fd: int, limit: int, chunk: int = 1 << 16) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes from ``fd``'s current offset; the flag says there was more."""
    parts: list[bytes] = []
    remaining = limit + 1  # one byte more tells a file of exactly ``limit`` bytes from a longer one
    while remaining > 0:
        data = os.read(fd, min(chunk, remaining))
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    body = b"".join(parts)
    if len(body) > limit:
        return body[:limit], True
    return body, False


def read_regular(
    path: str, limit: int, *, roots: Iterable[str] | None = None, follow_links: bool = True
) -> tuple[bytes, bool]:
    """:func:`open_regular` then :func:`read_bounded`: at most ``limit`` bytes and whether there was more."""
    fd = open_regular(path, roots=roots, follow_links=follow_links)
    try:
        return read_bounded(fd, limit)
    finally:
        os.close(fd)


def quote(data: str | bytes, limit: int = QUOTE_LIMIT) -> str:
    """``data`` for an error message: repr-quoted, at most ``limit`` characters, and how much was cut."""
    if isinstance(data, bytes):
        head = data[:limit].decode("utf-8", "replace")
        rest = len(data) - min(len(data), limit)
        unit = "bytes"
    else:
        head = data[:limit]
        rest = len(data) - len(head)
        unit = "characters"
    text = repr(head)
    return f"{text}... ({rest} more {unit})" if rest else text
