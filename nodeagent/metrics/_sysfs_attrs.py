"""Reading sysfs/procfs attribute files and parsing numbers the way node_exporter (Go) does.

Shared by the hardware collectors (hwmon, thermal_zone, powersupplyclass, watchdog, edac, mdadm).
Values must parse exactly as Go's strconv does, or a sensor that node_exporter reports would be
dropped here (or the reverse): Python's ``int()``/``float()`` accept underscores and surrounding
whitespace, Go does not; Go's base-0 integers read ``010`` as octal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_GO_INT_BASE0 = re.compile(r"^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$")


_INVALID_UTF8_RUN = re.compile("[\udc80-\udcff]+")


def to_valid_utf8(data: bytes) -> str:
    """Decode UTF-8, replacing each run of invalid bytes with one U+FFFD (Go's strings.ToValidUTF8)."""
    text = data.decode("utf-8", errors="surrogateescape")
    if text.isascii():
        return text
    return _INVALID_UTF8_RUN.sub("\ufffd", text)


def read_raw(path: Path | str, limit: int = 4096) -> bytes:
    """The first ``limit`` bytes of a sysfs file in a single read(2).

    One read only: some hwmon drivers return EAGAIN forever, and a sysfs attribute is produced
    whole by the first read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def read_attr(path: Path | str, limit: int = 4096) -> str:
    """One sysfs attribute as text, surrounding whitespace removed (Go's util.SysReadFile)."""
    return to_valid_utf8(read_raw(path, limit)).strip()


def read_attr_or_none(path: Path | str, limit: int = 4096) -> str | None:
    """Like :func:`read_attr`; None when the file is missing or unreadable (e.g. write-only attribute)."""
    try:
        return read_attr(path, limit)
    except OSError:
        return None


def go_parse_float(text: str) -> float:
    """strconv.ParseFloat(text, 64): no surrounding spaces, no bare underscores; inf/nan/hex accepted."""
    if not text or text != text.strip() or "_" in text:
        raise ValueError(f"invalid float {text!r}")
    body = text.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        return float.fromhex(text)
    return float(text)


def go_parse_int(text: str, base: int = 10) -> int:
    """strconv.ParseInt(text, base, 64); base 0 means Go literal syntax (0x.., 0o.., 0b.., 0 octal)."""
    if base == 0:
        if not _GO_INT_BASE0.match(text) or "__" in text or text.endswith("_"):
            raise ValueError(f"invalid integer {text!r}")
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-").replace("_", "")
        prefix = body[:2].lower()
        if prefix in ("0x", "0o", "0b"):
            value = int(body[2:], {"0x": 16, "0o": 8, "0b": 2}[prefix])
        elif len(body) > 1 and body[0] == "0":
            value = int(body[1:], 8)
        else:
            value = int(body)
        value *= sign
    else:
        if not text or text != text.strip() or "_" in text:
            raise ValueError(f"invalid integer {text!r}")
        value = int(text, base)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"integer out of range {text!r}")
    return value


def go_parse_uint(text: str) -> int:
    """strconv.ParseUint(text, 10, 64)."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"invalid unsigned integer {text!r}")
    value = int(text)
    if value >= 1 << 64:
        raise ValueError(f"unsigned integer out of range {text!r}")
    return value


def numbered_entries(directory: str | Path, prefix: str) -> list[tuple[str, str]]:
    """Entries named ``<prefix><digit>...`` in ``directory`` as (suffix, path), sorted by name.

    The same set as Go's ``filepath.Glob(dir + "/<prefix>[0-9]*")``, in the same (byte) order.
    Paths are strings: these run on every scrape and pathlib costs more than the syscalls.
    """
    directory = os.fspath(directory)
    found = []
    for name in os.listdir(directory):
        first = name[len(prefix) : len(prefix) + 1]
        if name.startswith(prefix) and first and first in "0123456789":
            found.append(name)
    found.sort(key=lambda name: name.encode("utf-8", "surrogateescape"))
    return [(name[len(prefix) :], f"{directory}/{name}") for name in found]
