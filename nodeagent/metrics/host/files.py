"""Reading the host's procfs, sysfs and root filesystem: the one family of readers collectors use.

Every path is built by :class:`Paths` (``paths.proc("net", "dev")``, ``paths.sys("class", "net")``,
``paths.root("/etc/os-release")``) and, below a directory it returned, as ``f"{directory}/{name}"``:
plain strings, because these run dozens of times per scrape and a pathlib join costs more than the
read (~8 us each on the reference VM).

Speed-ups kept here, once: files are read with os.open/os.read (a third of the cost of open() and a
buffered text object, for the dozens of tiny files of one scrape); several attributes of one directory
are read relative to one descriptor of it (:func:`read_attributes`), so the kernel resolves a
/sys/class symlink once per device instead of once per attribute.

Bounds: a procfs/sysfs text is read up to :data:`TEXT_LIMIT` (1 MiB, prometheus/procfs's own limit for
such files), a sysfs attribute with one read(2) of at most :data:`ATTRIBUTE_LIMIT`; callers pass a
larger limit where a file legitimately grows with the host (mount tables: :data:`MOUNT_TABLE_LIMIT`).

Text is decoded as Go's ``strings.ToValidUTF8`` (each run of invalid bytes becomes one U+FFFD), so a
label read from the host (an ifalias, a device name) is always valid UTF-8; names the os module returns
(directory entries, uname) go through :func:`valid_text`. Texts holding paths that must be opened again
(mount tables) are read with :func:`read_path_text` and their labels made valid when emitted.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nodeagent.metrics.host.gonum import parse_int, parse_uint
from nodeagent.safeio import read_bounded

TEXT_LIMIT = 1 << 20
ATTRIBUTE_LIMIT = 4096  # a sysfs attribute is at most one page
# A mount table line is ~100-250 bytes; a Kubernetes node carries a handful of mounts per pod (volumes,
# secrets, projected tokens) and can reach tens of thousands of lines: 16 MiB is ~80,000 mounts.
MOUNT_TABLE_LIMIT = 16 << 20
# Tables with a line per socket or neighbour (/proc/net/udp, /proc/net/arp) are streamed with
# read_lines, never held whole: ~1.7 million lines of ~150 bytes (procfs allows 4 GiB).
TABLE_LIMIT = 256 << 20

# O_NONBLOCK: a FIFO or device planted in a tree given as --path.* is read as empty instead of blocking
# the scrape forever (procfs/sysfs regular files ignore the flag).
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_CHUNK = 1 << 16
_INVALID_UTF8_RUN = re.compile("[\udc80-\udcff]+")


@dataclass(frozen=True, init=False)
class Paths:
    """Filesystem roots, as node_exporter's --path.* flags (given as str or Path, kept as str)."""

    procfs: str
    sysfs: str
    rootfs: str
    udev_data: str

    def __init__(
        self,
        procfs: str | os.PathLike[str] = "/proc",
        sysfs: str | os.PathLike[str] = "/sys",
        rootfs: str | os.PathLike[str] = "/",
        udev_data: str | os.PathLike[str] = "/run/udev/data",
    ) -> None:
        object.__setattr__(self, "procfs", os.fspath(procfs))
        object.__setattr__(self, "sysfs", os.fspath(sysfs))
        object.__setattr__(self, "rootfs", os.fspath(rootfs))
        object.__setattr__(self, "udev_data", os.fspath(udev_data))

    def proc(self, *parts: str) -> str:
        return "/".join((self.procfs, *parts))

    def sys(self, *parts: str) -> str:
        return "/".join((self.sysfs, *parts))

    def root(self, *parts: str) -> str:
        """A host path below --path.rootfs; ``parts`` may start with '/'."""
        return "/".join((self.rootfs.rstrip("/"), *(part.strip("/") for part in parts)))

    def udev(self, *parts: str) -> str:
        return "/".join((self.udev_data, *parts))


def decode(data: bytes) -> str:
    """UTF-8 with each run of invalid bytes replaced by one U+FFFD (Go's strings.ToValidUTF8)."""
    text = data.decode("utf-8", errors="surrogateescape")
    if text.isascii():
        return text
    return _INVALID_UTF8_RUN.sub("\ufffd", text)


def valid_text(text: str) -> str:
    """A string the os module decoded (a file name, a uname field: invalid bytes kept as surrogates) as
    :func:`decode` reads text: fit for a label value. Keep the original to open the file."""
    if text.isascii():
        return text
    try:
        return decode(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate the os module did not produce
        return text.encode("utf-8", "replace").decode("utf-8")


def read_bytes(path: str | Path, limit: int = TEXT_LIMIT) -> bytes:
    """At most ``limit`` bytes of a file; when it is longer, cut after its last whole line."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        data, more = read_bounded(fd, limit)
    except BlockingIOError:  # a FIFO without a writer yet: nothing to read
        data, more = b"", False
    finally:
        os.close(fd)
    if more:
        data = data[: data.rfind(b"\n") + 1]  # a cut line would parse as a malformed one
    return data


def read_text(path: str | Path, limit: int = TEXT_LIMIT) -> str:
    """A procfs/sysfs text file (see :func:`read_bytes`, :func:`decode`). Raises OSError."""
    return decode(read_bytes(path, limit))


def read_path_text(path: str | Path, limit: int = TEXT_LIMIT) -> str:
    """A text that holds host paths (a mount table): invalid UTF-8 kept as surrogates, so that a path can
    be opened as the kernel spelled it; pass a path through :func:`valid_text` before using it as a label."""
    return read_bytes(path, limit).decode("utf-8", errors="surrogateescape")


def read_lines(path: str | Path, limit: int = TABLE_LIMIT) -> Iterator[str]:
    """The lines of a file, read in 64 KiB chunks and decoded one by one, up to ``limit`` bytes (a line
    cut by the limit is left out). The file is opened on the first ``next()``; raises OSError then."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        remaining, rest = limit, b""
        while remaining > 0:
            chunk = _read_some(fd, min(_CHUNK, remaining))
            if not chunk:
                if rest:
                    yield decode(rest)
                return
            remaining -= len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield decode(line)
    finally:
        os.close(fd)


def _read_some(fd: int, size: int) -> bytes:
    try:
        return os.read(fd, size)
    except BlockingIOError:  # a FIFO without a writer yet: nothing to read
        return b""


def read_optional(path: str | Path, limit: int = TEXT_LIMIT) -> str | None:
    """Like :func:`read_text`, but None when the file does not exist (an optional kernel interface)."""
    try:
        return read_text(path, limit)
    except FileNotFoundError:
        return None


def read_attribute_bytes(path: str | Path, limit: int = ATTRIBUTE_LIMIT, dir_fd: int | None = None) -> bytes:
    """The first ``limit`` bytes of a sysfs attribute in a single read(2): the kernel produces an
    attribute whole on the first read, and some hwmon drivers answer a second read with EAGAIN forever.
    ``dir_fd``: ``path`` is relative to this open directory."""
    fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
    try:
        return _read_some(fd, limit)
    finally:
        os.close(fd)


def read_attribute(path: str | Path, dir_fd: int | None = None) -> str:
    """One sysfs attribute, surrounding whitespace removed (Go's util.SysReadFile). Raises OSError."""
    return decode(read_attribute_bytes(path, ATTRIBUTE_LIMIT, dir_fd)).strip()


# Errors reading an attribute that only say the device does not have or cannot report it right now
# (e.g. ``speed`` of a down link is EINVAL, cpuinfo_cur_freq is root-only): the attribute is left out.
_ABSENT_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EINVAL,
        errno.EOPNOTSUPP,
        errno.ENODEV,
        errno.ENODATA,
        errno.EBUSY,
        errno.EAGAIN,
    }
)


def read_attribute_or_none(path: str | Path, dir_fd: int | None = None) -> str | None:
    """Like :func:`read_attribute`; None when the attribute is absent or the device cannot report it.
    Other errors (EIO from a failing device) still raise."""
    try:
        return read_attribute(path, dir_fd)
    except OSError as exc:
        if exc.errno in _ABSENT_ERRNOS:
            return None
        raise


def read_attributes(directory: str | Path, names: Iterable[str]) -> dict[str, str]:
    """name -> stripped text of the attributes among ``names`` that ``directory`` has and can report,
    read relative to one descriptor of the directory (see the module docstring). A directory that is
    gone (the device was just removed) has no attributes."""
    try:
        dir_fd = os.open(directory, _OPEN_FLAGS | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno in _ABSENT_ERRNOS:
            return {}
        raise
    try:
        return {name: value for name in names if (value := read_attribute_or_none(name, dir_fd)) is not None}
    finally:
        os.close(dir_fd)


def read_uint(path: str | Path) -> int:
    """A file holding one unsigned decimal (procfs's util.ReadUintFromFile). Raises OSError/ValueError."""
    return parse_uint(read_attribute(path))


def read_int(path: str | Path) -> int:
    """A file holding one signed decimal (procfs's util.ReadIntFromFile). Raises OSError/ValueError."""
    return parse_int(read_attribute(path))


def list_dir(path: str | Path) -> list[str]:
    """Entry names of a directory in Go's order (os.ReadDir sorts by the names' bytes). Raises OSError."""
    return sorted(os.listdir(path), key=_go_order)


def list_files(path: str | Path) -> list[str]:
    """Names of the regular files of a directory (no subdirectories, no links), in Go's order."""
    with os.scandir(path) as entries:
        return sorted(
            (entry.name for entry in entries if entry.is_file(follow_symlinks=False)), key=_go_order
        )


def _go_order(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")
