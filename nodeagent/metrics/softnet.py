"""softnet: per-CPU packet processing statistics from <procfs>/net/softnet_stat (node_softnet_*).

One row per CPU of hexadecimal columns. Which columns exist depends on the kernel: 9 since 2.6.23,
received_rps since 2.6.39, flow_limit_count since 4.18, backlog length and the CPU number since 5.14.
Older kernels do not print the CPU number, so the row index stands in for it, as upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from nodeagent.metrics._netcommon import report_bad_input
from nodeagent.metrics.registry import Collector, read_text, register

_MIN_COLUMNS = 9


@dataclass(frozen=True)
class SoftnetRow:
    cpu: int
    processed: int
    dropped: int
    time_squeezed: int
    cpu_collision: int
    received_rps: int
    flow_limit_count: int
    backlog_len: int


def parse_softnet(text: str, collector: str = "softnet") -> list[SoftnetRow]:
    """Rows of softnet_stat; malformed rows are reported and skipped (the row index still advances)."""
    rows = []
    for index, line in enumerate(text.splitlines()):
        columns = line.split()
        if not columns:
            continue
        try:
            if len(columns) < _MIN_COLUMNS:
                raise ValueError(f"{len(columns)} columns, expected at least {_MIN_COLUMNS}")
            values = [int(column, 16) for column in columns[:13]]
        except ValueError as exc:
            report_bad_input(collector, f"net/softnet_stat row {index}", exc)
            continue
        width = len(values)
        rows.append(
            SoftnetRow(
                cpu=values[12] if width >= 13 else index,
                processed=values[0],
                dropped=values[1],
                time_squeezed=values[2],
                cpu_collision=values[8],
                received_rps=values[9] if width >= 10 else 0,
                flow_limit_count=values[10] if width >= 11 else 0,
                backlog_len=values[11] if width >= 13 else 0,
            )
        )
    return rows


def read_softnet(procfs: Path) -> list[SoftnetRow]:
    return parse_softnet(read_text(f"{procfs}/net/softnet_stat"))


@register
class SoftnetCollector(Collector):
    name = "softnet"

    def collect(self) -> Iterable[Metric]:
        rows = read_softnet(self.paths.procfs)
        counters = (
            ("processed", "processed", "Packets processed by this CPU's network receive softirq."),
            ("dropped", "dropped", "Packets dropped because this CPU's input backlog was full."),
            (
                "times_squeezed",
                "time_squeezed",
                "Times the receive softirq stopped with work left because its budget or time ran out.",
            ),
            ("cpu_collision", "cpu_collision", "Times this CPU found a device's transmit lock taken."),
            (
                "received_rps",
                "received_rps",
                "Times this CPU was woken by an inter-processor interrupt to process packets (RPS).",
            ),
            ("flow_limit_count", "flow_limit_count", "Times the per-flow backlog limit was hit."),
        )
        for name, attr, help_text in counters:
            family = CounterMetricFamily(f"node_softnet_{name}", help_text, labels=["cpu"])
            for row in rows:
                family.add_metric([str(row.cpu)], float(getattr(row, attr)))
            yield family
        backlog = GaugeMetricFamily(
            "node_softnet_backlog_len", "Packets waiting in this CPU's input backlog.", labels=["cpu"]
        )
        for row in rows:
            backlog.add_metric([str(row.cpu)], float(row.backlog_len))
        yield backlog
