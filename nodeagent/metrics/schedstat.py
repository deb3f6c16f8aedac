"""schedstat: per-CPU scheduler run time, wait time and timeslices from <procfs>/schedstat."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics.host.files import Paths, read_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register


@dataclass(frozen=True)
class CPUSchedstat:
    cpu: str
    running_ns: int
    waiting_ns: int
    timeslices: int


def parse_schedstat(text: str) -> tuple[list[CPUSchedstat], list[Skip]]:
    """The ``cpuN`` lines: fields 7, 8 and 9 are run time (ns), wait time (ns) and timeslices. Lines of
    another format are skipped silently, as procfs does; a cpu line with a bad number is reported."""
    stats = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        fields = line.split()
        cpu = fields[0][3:]
        if len(fields) < 10 or not (cpu.isascii() and cpu.isdigit()):
            continue  # not a per-CPU line of the version-15 format
        try:
            stats.append(
                CPUSchedstat(cpu, parse_uint(fields[7]), parse_uint(fields[8]), parse_uint(fields[9]))
            )
        except ValueError:
            skipped.append(Skip("schedstat cpu line", line))
    return stats, skipped


def read_schedstat(paths: Paths) -> tuple[list[CPUSchedstat], list[Skip]]:
    try:
        return parse_schedstat(read_text(paths.proc("schedstat")))
    except FileNotFoundError:
        raise NoDataError("no schedstat (kernel without CONFIG_SCHEDSTATS)") from None


@register
class SchedstatCollector(Collector):
    name = "schedstat"

    def collect(self) -> Iterable[Metric]:
        running = counter("node_schedstat_running_seconds_total", "Seconds this CPU spent running tasks.")
        waiting = counter(
            "node_schedstat_waiting_seconds_total", "Seconds tasks spent waiting to run on this CPU."
        )
        timeslices = counter("node_schedstat_timeslices_total", "Timeslices run on this CPU.")
        stats, skipped = read_schedstat(self.paths)
        self.report(skipped)
        for cpu in stats:
            labels = {"cpu": cpu.cpu}
            add_sample(running, labels, float(cpu.running_ns) / 1e9)
            add_sample(waiting, labels, float(cpu.waiting_ns) / 1e9)
            add_sample(timeslices, labels, float(cpu.timeslices))
        return [running, waiting, timeslices]
