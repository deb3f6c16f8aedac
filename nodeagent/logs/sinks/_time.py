"""Record times (RFC 3339, normally ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``) as the numbers sinks need."""

from __future__ import annotations

import calendar
import time as _time

from nodeagent.logs.parsers import normalize_time

_SECONDS_CACHE: dict[str, int] = {}
_SECONDS_CACHE_MAX = 4096


def unix_nanos(text: str | None) -> int | None:
    """Nanoseconds since the epoch, or None when the text is not an RFC 3339 time."""
    if not text:
        return None
    if not (len(text) == 30 and text[19] == "." and text[29] == "Z" and text[20:29].isdigit()):
        normalized = normalize_time(text)
        if normalized is None:
            return None
        text = normalized
    prefix = text[:19]
    seconds = _SECONDS_CACHE.get(prefix)
    if seconds is None:
        try:
            moment = _time.strptime(prefix, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
        seconds = calendar.timegm(moment)
        if len(_SECONDS_CACHE) >= _SECONDS_CACHE_MAX:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[prefix] = seconds
    return seconds * 1_000_000_000 + int(text[20:29])


def syslog_timestamp(text: str | None) -> str:
    """RFC 5424 TIMESTAMP (at most six fractional digits), or the NILVALUE ``-``."""
    if not text or unix_nanos(text) is None:
        return "-"
    if not (len(text) == 30 and text[19] == "." and text[29] == "Z"):
        text = normalize_time(text) or ""
    return text[:26] + "Z"
