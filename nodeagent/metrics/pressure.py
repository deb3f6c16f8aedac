"""pressure: pressure stall information (PSI) totals from <procfs>/pressure/{cpu,io,memory,irq}.

As node_exporter: cpu exports only its "some" line, irq only its "full" line (the kernel has no
"some" for irq), io and memory both. Totals are microseconds in the file, seconds in the metric.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from nodeagent.metrics.registry import Collector, NoDataError, read_text, register

# resource -> ((line kind, metric name, help), ...)
_EXPORTS = {
    "cpu": (
        (
            "some",
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes waited for a CPU.",
        ),
    ),
    "io": (
        (
            "some",
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that some processes were stalled waiting for IO.",
        ),
        (
            "full",
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds that all non-idle processes were stalled on IO at once.",
        ),
    ),
    "memory": (
        (
            "some",
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that some processes were stalled waiting for memory.",
        ),
        (
            "full",
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds that all non-idle processes were stalled on memory at once.",
        ),
    ),
    "irq": (
        (
            "full",
            "node_pressure_irq_stalled_seconds_total",
            "Total time in seconds that all non-idle processes were stalled by IRQ handling.",
        ),
    ),
}


def parse_psi(text: str) -> dict[str, int]:
    """``some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781`` lines -> {"some": 14036781, ...}."""
    totals: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in ("some", "full"):
            continue
        for field in fields[1:]:
            key, _, value = field.partition("=")
            if key == "total":
                totals[fields[0]] = int(value)
                break
        else:
            raise ValueError(f"no total in PSI line {line!r}")
    return totals


def read_psi(procfs: Path, resource: str) -> dict[str, int]:
    return parse_psi(read_text(f"{procfs}/pressure/{resource}"))


@register
class PressureCollector(Collector):
    name = "pressure"

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for resource, exports in _EXPORTS.items():
            try:
                totals = read_psi(self.paths.procfs, resource)
            except FileNotFoundError:
                continue  # kernel < 4.20, CONFIG_PSI off, or no IRQ accounting (irq needs 6.1)
            except OSError as exc:
                if exc.errno == errno.EOPNOTSUPP:  # PSI compiled in but disabled (psi=0)
                    raise NoDataError("pressure stall information is disabled") from None
                raise
            if any(kind not in totals for kind, _, _ in exports):
                raise NoDataError(f"incomplete pressure data for {resource}")
            for kind, metric_name, help_text in exports:
                families.append(
                    CounterMetricFamily(metric_name, help_text, value=float(totals[kind]) / 1000.0 / 1000.0)
                )
        if not families:
            raise NoDataError("no pressure stall information (needs Linux >= 4.20 with CONFIG_PSI)")
        return families
