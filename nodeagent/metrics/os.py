"""os: the distribution from <rootfs>/etc/os-release, else <rootfs>/usr/lib/os-release.

node_os_info carries the identification fields as labels, node_os_version the numeric
major.minor part of VERSION_ID, node_os_support_end_timestamp_seconds the SUPPORT_END date.
The parsed file is cached and re-read only when its path or mtime changes.
"""

from __future__ import annotations

import calendar
import os as _os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, Paths, register

OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")
INFO_LABELS = (
    "build_id",
    "id",
    "id_like",
    "image_id",
    "image_version",
    "name",
    "pretty_name",
    "variant",
    "variant_id",
    "version",
    "version_codename",
    "version_id",
)
_VERSION_PREFIX = re.compile(r"^[0-9]+\.?[0-9]*")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOUBLE_QUOTE_ESCAPES = {'"', "\\", "$", "`"}


def _unquote(raw: str) -> str:
    """The value part of a shell-style assignment (os-release(5) syntax)."""
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        body, out, i = raw[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _DOUBLE_QUOTE_ESCAPES:
                out.append(body[i + 1])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "".join(out)
    if raw[:1] in ("'", '"'):
        raise ValueError(f"unterminated quote in {raw!r}")
    return re.sub(r"\\(.)", r"\1", raw)


def parse_os_release(text: str) -> tuple[dict[str, str], list[Skip]]:
    """KEY=value lines; comments and blank lines are ignored, malformed lines skipped."""
    env: dict[str, str] = {}
    skipped: list[Skip] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, raw = line.partition("=")
        if not sep or not _KEY.match(key):
            skipped.append(Skip("os-release line without KEY=value", f"line {number}"))
            continue
        try:
            env[key] = _unquote(raw.strip())
        except ValueError:
            skipped.append(Skip("os-release line with an unterminated quote", f"line {number}"))
    return env, skipped


def os_version(version_id: str) -> float:
    """The leading ``major[.minor]`` of VERSION_ID as a number; 0 when there is none."""
    match = _VERSION_PREFIX.match(version_id)
    return float(match.group(0)) if match else 0.0


def support_end(value: str) -> float | None:
    """SUPPORT_END (YYYY-MM-DD) as the Unix time of that day's midnight UTC."""
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%d")))
    except ValueError:
        return None


@dataclass(frozen=True)
class OSRelease:
    fields: dict[str, str]

    def get(self, key: str) -> str:
        return self.fields.get(key, "")


def find_os_release(paths: Paths) -> tuple[str, float]:
    """(path, mtime) of the first os-release file present below --path.rootfs."""
    for name in OS_RELEASE_FILES:
        path = paths.root(name)
        try:
            return path, _os.stat(path).st_mtime
        except FileNotFoundError:
            continue
    raise NoDataError("no os-release file found")


@register
class OSCollector(Collector):
    name = "os"

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self._lock = threading.Lock()
        self._cached: tuple[str, float, OSRelease] | None = None

    def _release(self) -> OSRelease:
        """The parsed first os-release file, re-read only when that file or its mtime changed."""
        with self._lock:
            path, mtime = find_os_release(self.paths)
            if self._cached is not None and self._cached[:2] == (path, mtime):
                return self._cached[2]
            fields, skipped = parse_os_release(read_text(path))
            self.report(skipped)
            self._cached = (path, mtime, OSRelease(fields))
            return self._cached[2]

    def collect(self) -> Iterable[Metric]:
        release = self._release()
        info = gauge("node_os_info", "Operating system identification from os-release, value 1.")
        add_sample(info, {label: release.get(label.upper()) for label in INFO_LABELS}, 1.0)
        yield info
        version = os_version(release.get("VERSION_ID"))
        if version > 0:
            family = gauge("node_os_version", "Major.minor part of the OS version (VERSION_ID).")
            labels = {"id": release.get("ID"), "id_like": release.get("ID_LIKE"), "name": release.get("NAME")}
            add_sample(family, labels, version)
            yield family
        end = support_end(release.get("SUPPORT_END"))
        if end is not None:
            yield single(
                gauge(
                    "node_os_support_end_timestamp_seconds",
                    "End of support of this OS release (SUPPORT_END), as a Unix time.",
                ),
                end,
            )
