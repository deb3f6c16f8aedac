"""Reading a sink's options: typed values, defaults, and ``key: message`` errors for anything wrong."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from nodeagent.config import parse_bool, parse_choice, parse_duration, parse_int, parse_str

_REQUIRED = object()


class OptionReader:
    """Takes options one by one; ``finish()`` rejects the ones nobody took (typos)."""

    def __init__(self, sink_type: str, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, Mapping):
            raise ValueError(f"options: expected a mapping, got {type(raw).__name__}")
        self.sink_type = sink_type
        # YAML keys may use '-' or '_' interchangeably, like the rest of the config.
        self._raw: dict[str, tuple[str, Any]] = {}
        for key, value in raw.items():
            self._raw[str(key).replace("-", "_")] = (str(key), value)
        self._known: list[str] = []

    def take(self, key: str, parse: Callable[[Any], Any] = parse_str, default: Any = _REQUIRED) -> Any:
        self._known.append(key)
        if key not in self._raw or self._raw[key][1] is None:
            if default is _REQUIRED:
                raise ValueError(f"{key}: required for a {self.sink_type} sink")
            self._raw.pop(key, None)
            return default
        original, value = self._raw.pop(key)
        try:
            return parse(value)
        except ValueError as exc:
            raise ValueError(f"{original}: {exc}") from None

    def finish(self) -> None:
        if self._raw:
            original = next(iter(self._raw.values()))[0]
            known = ", ".join(sorted(self._known)) or "none"
            raise ValueError(f"{original}: unknown option for a {self.sink_type} sink (known: {known})")


def parse_timeout(raw: Any) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def parse_positive_int(raw: Any) -> int:
    value = parse_int(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def parse_http_url(raw: Any) -> str:
    text = parse_str(raw).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {raw!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"bad port in {raw!r}: {exc}") from None
    return text


def parse_headers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of header names to values, got {type(raw).__name__}")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        name_text, value_text = parse_str(name), parse_str(value)
        if not name_text or any(c in name_text for c in " :\r\n\t"):
            raise ValueError(f"invalid header name {name!r}")
        if "\r" in value_text or "\n" in value_text:
            raise ValueError(f"header {name_text!r}: value must not contain line breaks")
        headers[name_text] = value_text
    return headers


def parse_string_list(raw: Any) -> list[str]:
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise ValueError(f"expected a list of strings, got {type(raw).__name__}")
    return [parse_str(item) for item in raw]


__all__ = [
    "OptionReader",
    "parse_bool",
    "parse_choice",
    "parse_duration",
    "parse_headers",
    "parse_http_url",
    "parse_int",
    "parse_positive_int",
    "parse_str",
    "parse_string_list",
    "parse_timeout",
]
