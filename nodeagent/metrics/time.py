"""time: the system clock (node_time_seconds), the local time zone offset and the kernel clocksources.

Clocksources come from <sysfs>/devices/system/clocksource/clocksource*/; ``device`` is the position
of the clocksource directory in name order, as node_exporter numbers it.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge, single
from nodeagent.metrics.host.files import Paths, read_attribute
from nodeagent.metrics.host.sysfs import numbered_entries
from nodeagent.metrics.registry import Collector, register


@dataclass(frozen=True)
class Clocksource:
    available: tuple[str, ...]
    current: str


def read_clocksources(paths: Paths) -> list[Clocksource]:
    """One entry per clocksource directory, in name order; unreadable ones are left out."""
    try:
        devices = numbered_entries(paths.sys("devices", "system", "clocksource"), "clocksource")
    except FileNotFoundError:
        return []
    sources = []
    for _, path in devices:
        try:
            available = tuple(read_attribute(f"{path}/available_clocksource").split())
            current = read_attribute(f"{path}/current_clocksource")
        except OSError:
            continue
        sources.append(Clocksource(available, current))
    return sources


def zone_offset(now: float) -> tuple[str, int]:
    """(zone abbreviation, offset east of UTC in seconds) of the process's local time zone at ``now``."""
    local = _time.localtime(now)
    return local.tm_zone, local.tm_gmtoff


@register
class TimeCollector(Collector):
    name = "time"

    def collect(self) -> Iterable[Metric]:
        now_ns = _time.time_ns()
        zone, offset = zone_offset(now_ns / 1e9)
        yield single(
            gauge("node_time_seconds", "Current system time in seconds since the Unix epoch."),
            float(now_ns) / 1e9,
        )
        tz = gauge("node_time_zone_offset_seconds", "Offset of the local time zone from UTC, in seconds.")
        add_sample(tz, {"time_zone": zone}, float(offset))
        yield tz
        available = gauge(
            "node_time_clocksource_available_info",
            "Clocksources the kernel offers, from /sys/devices/system/clocksource.",
        )
        current = gauge(
            "node_time_clocksource_current_info",
            "Clocksource the kernel uses, from /sys/devices/system/clocksource.",
        )
        for index, source in enumerate(read_clocksources(self.paths)):
            for name in source.available:
                add_sample(available, {"device": str(index), "clocksource": name}, 1.0)
            add_sample(current, {"device": str(index), "clocksource": source.current}, 1.0)
        yield available
        yield current
