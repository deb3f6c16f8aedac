"""Helpers shared by the network collectors (netdev, netclass, netstat, sockstat, softnet, udp_queues,
conntrack, arp, bonding): Go-compatible integer parsing, sysfs attribute reads, device listing and
reporting of skipped malformed input.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from nodeagent.metrics._parse_errors import skipped


def report_bad_input(collector: str, what: str, detail: object) -> None:
    """Count and log one skipped malformed line or value (``what``: a stable description of the source,
    ``detail``: the offending text). Shared with the other collector groups' counter."""
    skipped(collector, what, detail)


def parse_go_int(text: str) -> int:
    """``strconv.ParseInt(s, 0, 64)``: base from the prefix (0x, 0o, 0b, leading 0 = octal).

    Raises ValueError on anything else, as Go returns an error.
    """
    if text.isdigit() and len(text) < 19 and (text[0] != "0" or len(text) == 1):  # plain decimal, fast
        return int(text)
    body = text.strip()
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body or "_" in body:  # Go allows underscores only with a prefix; sysfs never writes them
        raise ValueError(f"invalid integer {text!r}")
    lower = body.lower()
    if lower.startswith("0x"):
        value = int(body[2:], 16)
    elif lower.startswith("0b"):
        value = int(body[2:], 2)
    elif lower.startswith("0o"):
        value = int(body[2:], 8)
    elif len(body) > 1 and body[0] == "0":
        value = int(body[1:], 8)
    else:
        value = int(body, 10)
    value *= sign
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"integer out of range {text!r}")
    return value


# Errors a sysfs attribute read may return when the device does not support the attribute (e.g. speed
# of a down link): the attribute is skipped, as upstream does.
_IGNORED_ERRNOS = {
    errno.ENOENT,
    errno.EACCES,
    errno.EPERM,
    errno.EINVAL,
    errno.EOPNOTSUPP,
    errno.ENODEV,
    errno.EBUSY,
}


_ATTRIBUTE_MAX = 4096  # sysfs attributes are at most one page


def read_attribute(path: str | Path, dir_fd: int | None = None) -> str | None:
    """A sysfs attribute as stripped text, or None when it is absent or unreadable for this device.

    ``dir_fd``: ``path`` is relative to this open directory (see :func:`read_attributes`).
    """
    # os.open/os.read: a fraction of the cost of open() for the ~20 tiny files per interface.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _IGNORED_ERRNOS or isinstance(exc, (IsADirectoryError, NotADirectoryError)):
            return None
        raise
    try:
        data = os.read(fd, _ATTRIBUTE_MAX)
    except OSError as exc:
        if exc.errno in _IGNORED_ERRNOS or exc.errno == errno.EISDIR:
            return None
        raise
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="surrogateescape").strip()


def read_attributes(directory: str | Path, names: Iterable[str]) -> dict[str, str]:
    """name -> stripped text of the attributes among ``names`` that ``directory`` has and can report.

    The files are opened relative to one descriptor of the directory: the kernel resolves the device
    path (a symlink below /sys/class) once instead of once per attribute, a third of the cost.
    A directory that is gone (the device was just removed) has no attributes.
    """
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in _IGNORED_ERRNOS or isinstance(exc, NotADirectoryError):
            return {}
        raise
    try:
        return {name: value for name in names if (value := read_attribute(name, dir_fd)) is not None}
    finally:
        os.close(dir_fd)


def list_net_devices(sysfs: str | Path) -> dict[str, str]:
    """Device name -> device directory for every interface in <sysfs>/class/net, sorted by name.

    Each device is a symlink to its directory; regular files such as ``bonding_masters`` are not
    devices, nor are dangling links. Raises FileNotFoundError when the directory itself does not exist.
    Strings, not Paths: this runs on every scrape.
    """
    with os.scandir(f"{sysfs}/class/net") as entries:
        devices = {entry.name: entry.path for entry in entries if entry.is_dir()}
    return dict(sorted(devices.items()))
