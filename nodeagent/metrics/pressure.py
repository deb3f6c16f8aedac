"""pressure: pressure stall information (PSI) totals from <procfs>/pressure/{cpu,io,memory,irq}.

As node_exporter: cpu exports only its "some" line, irq only its "full" line (the kernel has no
"some" for irq), io and memory both. Totals are microseconds in the file, seconds in the metric.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import counter, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

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


def parse_psi(text: str) -> tuple[dict[str, int], list[Skip]]:
    """``some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781`` lines -> {"some": 14036781, ...};
    a line without a readable total is skipped."""
    totals: dict[str, int] = {}
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in ("some", "full"):
            continue
        for field in fields[1:]:
            key, _, value = field.partition("=")
            if key == "total":
                try:
                    totals[fields[0]] = parse_uint(value)
                except ValueError:
                    skipped.append(Skip("PSI line with a bad total", line))
                break
        else:
            skipped.append(Skip("PSI line without total", line))
    return totals, skipped


@register
class PressureCollector(Collector):
    name = "pressure"

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for resource, exports in _EXPORTS.items():
            try:
                totals, skipped = parse_psi(read_text(self.paths.proc("pressure", resource)))
            except FileNotFoundError:
                continue  # kernel < 4.20, CONFIG_PSI off, or no IRQ accounting (irq needs 6.1)
            except OSError as exc:
                if exc.errno == errno.EOPNOTSUPP:  # PSI compiled in but disabled (psi=0)
                    raise NoDataError("pressure stall information is disabled") from None
                raise
            self.report(skipped)
            if any(kind not in totals for kind, _, _ in exports):
                raise NoDataError(f"incomplete pressure data for {resource}")
            for kind, metric_name, help_text in exports:
                families.append(
                    single(counter(metric_name, help_text), float(totals[kind]) / 1000.0 / 1000.0)
                )
        if not families:
            raise NoDataError("no pressure stall information (needs Linux >= 4.20 with CONFIG_PSI)")
        return families
