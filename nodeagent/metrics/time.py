"""time: the system clock (node_time_seconds), the local time zone offset and the kernel clocksources.

Clocksources come from <sysfs>/devices/system/clocksource/clocksource*/; ``device`` is the position
of the clocksource directory in name order, as node_exporter numbers it.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._sysfs_attrs import numbered_entries, read_attr
from nodeagent.metrics.registry import Collector, register

log = logging.getLogger("nodeagent.metrics.time")


@dataclass(frozen=True)
class Clocksource:
    available: tuple[str, ...]
    current: str


def read_clocksources(sysfs: str | Path) -> list[Clocksource]:
    """One entry per clocksource directory, in name order; unreadable ones are skipped."""
    try:
        devices = numbered_entries(f"{sysfs}/devices/system/clocksource", "clocksource")
    except FileNotFoundError:
        return []
    sources = []
    for _, path in devices:
        try:
            available = tuple(read_attr(f"{path}/available_clocksource").split())
            current = read_attr(f"{path}/current_clocksource")
        except OSError as exc:
            log.warning("cannot read clocksource", extra={"path": path, "err": str(exc)})
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
        yield GaugeMetricFamily(
            "node_time_seconds",
            "Current system time in seconds since the Unix epoch.",
            value=float(now_ns) / 1e9,
        )
        tz = GaugeMetricFamily(
            "node_time_zone_offset_seconds",
            "Offset of the local time zone from UTC, in seconds.",
            labels=["time_zone"],
        )
        tz.add_metric([zone], float(offset))
        yield tz
        available = GaugeMetricFamily(
            "node_time_clocksource_available_info",
            "Clocksources the kernel offers, from /sys/devices/system/clocksource.",
            labels=["device", "clocksource"],
        )
        current = GaugeMetricFamily(
            "node_time_clocksource_current_info",
            "Clocksource the kernel uses, from /sys/devices/system/clocksource.",
            labels=["device", "clocksource"],
        )
        for index, source in enumerate(read_clocksources(self.paths.sysfs)):
            for name in source.available:
                available.add_metric([str(index), name], 1.0)
            current.add_metric([str(index), source.current], 1.0)
        yield available
        yield current
