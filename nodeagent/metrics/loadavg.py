"""loadavg: 1, 5 and 15 minute load averages from <procfs>/loadavg."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics.registry import Collector, read_text, register


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """``0.21 0.37 0.39 1/72 4321`` -> (0.21, 0.37, 0.39)."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"unexpected loadavg content: {text!r}")
    return float(fields[0]), float(fields[1]), float(fields[2])


def read_loadavg(procfs: Path) -> tuple[float, float, float]:
    return parse_loadavg(read_text(f"{procfs}/loadavg"))


@register
class LoadavgCollector(Collector):
    name = "loadavg"

    def collect(self) -> Iterable[Metric]:
        loads = read_loadavg(self.paths.procfs)
        for minutes, value in zip((1, 5, 15), loads, strict=True):
            yield GaugeMetricFamily(f"node_load{minutes}", f"{minutes}m load average.", value=value)
