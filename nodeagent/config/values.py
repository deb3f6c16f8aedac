"""Every value parser of the configuration, once.

Each takes the raw value (a string from the command line, or any YAML scalar) and returns the typed value
or raises ValueError with a short reason; the schema (:mod:`nodeagent.config.schema`) adds key, file and
line. Bounds are parameters (:func:`bounded`), not copies of a parser. Whatever a message quotes is cut to
a few hundred characters.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from nodeagent.safeio import quote

T = TypeVar("T", int, float)

MAX_INT = 2**63 - 1  # what the kernel and the Go programs the values mimic can hold
MAX_DURATION = 10 * 365 * 24 * 3600.0  # ten years: longer is a mistake (and overflows timers)
_MAX_NUMBER_CHARS = 30  # digits of a number written as text; more is not a number anyone means


def shown(raw: Any) -> str:
    """``raw`` for a message: repr-like, at most a few hundred characters."""
    if isinstance(raw, (str, bytes)):
        return quote(raw)
    text = repr(raw)
    return text if len(text) <= 200 else text[:200] + "..."


def parse_str(raw: Any) -> str:
    if isinstance(raw, (dict, list, tuple, set)):
        raise ValueError(f"expected a string, got a {type(raw).__name__}")
    return "" if raw is None else str(raw)


def parse_nonempty_str(raw: Any) -> str:
    text = parse_str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = parse_str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {shown(raw)}")


def parse_optional_bool(raw: Any) -> bool | None:
    return None if raw is None else parse_bool(raw)


def parse_int(raw: Any) -> int:
    """An integer: a YAML integer, a whole finite float, or decimal text, within 64 bits."""
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and len(raw.strip()) <= _MAX_NUMBER_CHARS:
        try:
            value = int(raw)
        except ValueError:
            value = None
    if value is None:
        raise ValueError(f"expected an integer, got {shown(raw)}")
    if abs(value) > MAX_INT:
        raise ValueError(f"out of range: {shown(raw)}")
    return value


def bounded(parse: Callable[[Any], T], minimum: T, *, exclusive: bool = False) -> Callable[[Any], T]:
    """``parse`` refusing values below ``minimum`` (or equal to it when ``exclusive``)."""

    def parse_bounded(raw: Any) -> T:
        value = parse(raw)
        if exclusive and value <= minimum:
            raise ValueError(f"must be greater than {minimum:g}, got {shown(raw)}")
        if value < minimum:
            if minimum == 0:
                raise ValueError(f"must not be negative, got {shown(raw)}")
            raise ValueError(f"must be at least {minimum:g}, got {shown(raw)}")
        return value

    return parse_bounded


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}


def parse_size(raw: Any) -> int:
    """``262144``, ``256KiB``, ``1MiB``, ``2M`` (binary), ``1MB`` (decimal) -> bytes."""
    if isinstance(raw, bool) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise ValueError(f"expected a size such as 256KiB, got {shown(raw)}")
    if isinstance(raw, (int, float)):
        value = int(raw)
    else:
        text = parse_str(raw)
        match = _SIZE.match(text) if len(text) <= _MAX_NUMBER_CHARS else None
        if not match:
            raise ValueError(f"expected a size such as 262144, 256KiB or 1MiB, got {shown(raw)}")
        unit = match[2].lower() if match[2] else None
        value = int(float(match[1]) * _SIZE_UNITS[unit])
    if value < 0:
        raise ValueError("size must not be negative")
    if value > MAX_INT:
        raise ValueError(f"size out of range: {shown(raw)}")
    return value


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(raw: Any) -> float:
    """``1.5s``, ``500ms``, ``1m30s`` or a plain number of seconds; returns seconds."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a duration such as 5s or 500ms, got {shown(raw)}")
    if isinstance(raw, (int, float)):
        value = float(raw) if math.isnan(raw) or abs(raw) <= MAX_DURATION * 2 else math.inf
    else:
        text = parse_str(raw).strip()
        if len(text) > _MAX_NUMBER_CHARS * 4:
            raise ValueError(f"expected a duration such as 5s or 500ms, got {shown(raw)}")
        if _DURATION.match(text):
            value = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a duration such as 5s or 500ms, got {shown(raw)}") from None
    if math.isnan(value):
        raise ValueError(f"expected a duration such as 5s or 500ms, got {shown(raw)}")
    if value < 0:
        raise ValueError("duration must not be negative")
    if value > MAX_DURATION:
        raise ValueError(f"duration too long (at most ten years), got {shown(raw)}")
    return value


def parse_regex(raw: Any) -> str:
    """A regular expression, kept as text; compiled here only to reject bad ones early."""
    text = parse_str(raw)
    try:
        re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"invalid regular expression {shown(text)}: {exc}") from None
    return text


def parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = parse_str(raw)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {shown(raw)}")
        return text

    return parse


_ADDRESS = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.%\w]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})$")


def split_listen_address(address: str) -> tuple[str | None, int]:
    """``:9100`` -> (None, 9100) (all interfaces); ``127.0.0.1:9100``; ``[::1]:9100`` -> ("::1", 9100)."""
    match = _ADDRESS.match(address.strip())
    if not match:
        raise ValueError(f"expected [host]:port such as :9100 or 127.0.0.1:9100, got {shown(address)}")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"port {port} is out of range in {shown(address)}")
    host = match["ipv6"] or match["host"] or None
    return host, port


def parse_listen_address(raw: Any) -> str:
    text = parse_str(raw).strip()
    split_listen_address(text)
    return text


def parse_url_path(raw: Any) -> str:
    text = parse_str(raw).strip()
    if not text.startswith("/") or any(c in text for c in "?# "):
        raise ValueError(f"expected a URL path starting with '/', got {shown(raw)}")
    return text


def parse_http_url(raw: Any) -> str:
    text = parse_str(raw).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {shown(raw)}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"bad port in {shown(raw)}: {exc}") from None
    return text


def parse_headers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of header names to values, got {type(raw).__name__}")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        name_text, value_text = parse_str(name), parse_str(value)
        if not name_text or any(c in name_text for c in " :\r\n\t"):
            raise ValueError(f"invalid header name {shown(name)}")
        if "\r" in value_text or "\n" in value_text:
            raise ValueError(f"header {shown(name_text)}: value must not contain line breaks")
        headers[name_text] = value_text
    return headers


def parse_string_list(raw: Any) -> tuple[str, ...]:
    """A list of non-empty strings; a single string is a list of one."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) and v for v in items):
        raise ValueError("expected a list of non-empty strings")
    return tuple(items)


def parse_absolute_paths(raw: Any) -> tuple[str, ...]:
    """A non-empty list of absolute paths (or glob patterns)."""
    paths = parse_string_list(raw)
    if not paths:
        raise ValueError("must not be empty")
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"paths must be absolute, got {shown(path)}")
    return paths


def parse_absolute_path(raw: Any) -> str:
    text = parse_nonempty_str(raw)
    if not os.path.isabs(text):
        raise ValueError(f"must be an absolute path, got {shown(text)}")
    return text


positive_int = bounded(parse_int, 0, exclusive=True)
non_negative_int = bounded(parse_int, 0)
positive_size = bounded(parse_size, 0, exclusive=True)
positive_duration = bounded(parse_duration, 0.0, exclusive=True)
