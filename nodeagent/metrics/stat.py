"""stat: system-wide counters from <procfs>/stat (interrupts, context switches, forks, boot time, runnable
and blocked processes), plus softirqs per vector when option softirq is on.

Per-CPU times in the same file belong to the cpu collector.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from nodeagent.config import parse_bool
from nodeagent.metrics import _parse_errors
from nodeagent.metrics._proc_stat import parse_stat_totals
from nodeagent.metrics.registry import Collector, CollectorOption, read_text, register

# /proc/stat totals exported as one unlabelled sample each: (attribute, family type, name, help).
_SCALARS = (
    ("interrupts", CounterMetricFamily, "node_intr_total", "Interrupts serviced since boot."),
    ("context_switches", CounterMetricFamily, "node_context_switches_total", "Context switches since boot."),
    ("forks", CounterMetricFamily, "node_forks_total", "Tasks created since boot."),
    ("boot_time", GaugeMetricFamily, "node_boot_time_seconds", "Boot time as a Unix timestamp."),
    ("procs_running", GaugeMetricFamily, "node_procs_running", "Processes in runnable state."),
    ("procs_blocked", GaugeMetricFamily, "node_procs_blocked", "Processes blocked waiting for I/O."),
)


@register
class StatCollector(Collector):
    name = "stat"
    options = (
        CollectorOption("softirq", False, "Export node_softirqs_total per softirq vector.", parse_bool),
    )

    def collect(self) -> Iterable[Metric]:
        totals = parse_stat_totals(
            read_text(self.paths.proc("stat")),
            lambda what, line: _parse_errors.skipped(self.name, what, line),
        )
        families: list[Metric] = []
        for attribute, family_type, name, documentation in _SCALARS:
            value = getattr(totals, attribute)
            if value is not None:
                families.append(family_type(name, documentation, value=value))
        if self.opts.get("softirq") and totals.softirqs:
            softirqs = CounterMetricFamily(
                "node_softirqs_total", "Softirqs raised since boot, by vector.", labels=["vector"]
            )
            for vector, count in totals.softirqs.items():
                softirqs.add_metric([vector], count)
            families.append(softirqs)
        return families
