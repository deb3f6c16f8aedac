"""softnet: per-CPU packet processing statistics from <procfs>/net/softnet_stat (node_softnet_*).

One row per CPU of hexadecimal columns. Which columns exist depends on the kernel: 9 since 2.6.23,
received_rps since 2.6.39, flow_limit_count since 4.18, backlog length and the CPU number since 5.14.
Older kernels do not print the CPU number, so the row index stands in for it, as upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

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


def parse_softnet(text: str) -> tuple[list[SoftnetRow], list[Skip]]:
    """Rows of softnet_stat, and the malformed rows skipped (the row index still advances)."""
    rows = []
    skipped: list[Skip] = []
    for index, line in enumerate(text.splitlines()):
        columns = line.split()
        if not columns:
            continue
        try:
            if len(columns) < _MIN_COLUMNS:
                raise ValueError(f"{len(columns)} columns, expected at least {_MIN_COLUMNS}")
            values = parse_uints(columns[:13], 16)
        except ValueError as exc:
            skipped.append(Skip(f"net/softnet_stat row {index}", exc))
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
    return rows, skipped


@register
class SoftnetCollector(Collector):
    name = "softnet"

    def collect(self) -> Iterable[Metric]:
        rows, skipped = parse_softnet(read_text(self.paths.proc("net", "softnet_stat")))
        self.report(skipped)
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
        labels = [{"cpu": str(row.cpu)} for row in rows]
        for name, attr, help_text in counters:
            family = counter(f"node_softnet_{name}", help_text)
            for row, row_labels in zip(rows, labels, strict=True):
                add_sample(family, row_labels, float(getattr(row, attr)))
            yield family
        backlog = gauge("node_softnet_backlog_len", "Packets waiting in this CPU's input backlog.")
        for row, row_labels in zip(rows, labels, strict=True):
            add_sample(backlog, row_labels, float(row.backlog_len))
        yield backlog
