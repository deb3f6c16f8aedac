"""loadavg: 1, 5 and 15 minute load averages from <procfs>/loadavg."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


def parse_loadavg(text: str) -> tuple[tuple[float, float, float] | None, list[Skip]]:
    """``0.21 0.37 0.39 1/72 4321`` -> (0.21, 0.37, 0.39); another shape gives None and the skip."""
    fields = text.split()
    try:
        if len(fields) < 3:
            raise ValueError("fewer than 3 fields")
        return (parse_float(fields[0]), parse_float(fields[1]), parse_float(fields[2])), []
    except ValueError:
        return None, [Skip("loadavg: not 3 numbers", text)]


@register
class LoadavgCollector(Collector):
    name = "loadavg"

    def collect(self) -> Iterable[Metric]:
        loads, skipped = parse_loadavg(read_text(self.paths.proc("loadavg")))
        self.report(skipped)
        if loads is None:
            raise ValueError("unparsable loadavg")
        for minutes, value in zip((1, 5, 15), loads, strict=True):
            yield single(gauge(f"node_load{minutes}", f"{minutes}m load average."), value)
