"""schedstat: per-CPU scheduler run time, wait time and timeslices from <procfs>/schedstat."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from nodeagent.metrics.registry import Collector, NoDataError, read_text, register


@dataclass(frozen=True)
class CPUSchedstat:
    cpu: str
    running_ns: int
    waiting_ns: int
    timeslices: int


def parse_schedstat(text: str) -> list[CPUSchedstat]:
    """The ``cpuN`` lines: fields 7, 8 and 9 are run time (ns), wait time (ns) and timeslices."""
    stats = []
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        fields = line.split()
        cpu = fields[0][3:]
        if len(fields) < 10 or not cpu.isdigit():
            continue  # not a per-CPU line of the version-15 format
        try:
            stats.append(CPUSchedstat(cpu, int(fields[7]), int(fields[8]), int(fields[9])))
        except ValueError:
            continue
    return stats


def read_schedstat(procfs: Path) -> list[CPUSchedstat]:
    try:
        return parse_schedstat(read_text(f"{procfs}/schedstat"))
    except FileNotFoundError:
        raise NoDataError("no schedstat (kernel without CONFIG_SCHEDSTATS)") from None


@register
class SchedstatCollector(Collector):
    name = "schedstat"

    def collect(self) -> Iterable[Metric]:
        running = CounterMetricFamily(
            "node_schedstat_running_seconds_total", "Seconds this CPU spent running tasks.", labels=["cpu"]
        )
        waiting = CounterMetricFamily(
            "node_schedstat_waiting_seconds_total",
            "Seconds tasks spent waiting to run on this CPU.",
            labels=["cpu"],
        )
        timeslices = CounterMetricFamily(
            "node_schedstat_timeslices_total", "Timeslices run on this CPU.", labels=["cpu"]
        )
        for cpu in read_schedstat(self.paths.procfs):
            running.add_metric([cpu.cpu], float(cpu.running_ns) / 1e9)
            waiting.add_metric([cpu.cpu], float(cpu.waiting_ns) / 1e9)
            timeslices.add_metric([cpu.cpu], float(cpu.timeslices))
        return [running, waiting, timeslices]
