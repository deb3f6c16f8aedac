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


@register
class StatCollector(Collector):
    name = "stat"
    options = (CollectorOption("softirq", False, "Export node_softirqs_total per softirq vector.",
                               parse_bool),)

    def collect(self) -> Iterable[Metric]:
        totals = parse_stat_totals(read_text(self.paths.proc("stat")),
                                   lambda what, line: _parse_errors.skipped(self.name, what, line))
        families: list[Metric] = []
        if totals.interrupts is not None:
            families.append(CounterMetricFamily("node_intr_total", "Interrupts serviced since boot.",
                                                value=totals.interrupts))
        if totals.context_switches is not None:
            families.append(CounterMetricFamily("node_context_switches_total", "Context switches since boot.",
                                                value=totals.context_switches))
        if totals.forks is not None:
            families.append(CounterMetricFamily("node_forks_total", "Tasks created since boot.",
                                                value=totals.forks))
        if totals.boot_time is not None:
            families.append(GaugeMetricFamily("node_boot_time_seconds", "Boot time as a Unix timestamp.",
                                              value=totals.boot_time))
        if totals.procs_running is not None:
            families.append(GaugeMetricFamily("node_procs_running", "Processes in runnable state.",
                                              value=totals.procs_running))
        if totals.procs_blocked is not None:
            families.append(GaugeMetricFamily("node_procs_blocked", "Processes blocked waiting for I/O.",
                                              value=totals.procs_blocked))
        if self.opts.get("softirq") and totals.softirqs:
            softirqs = CounterMetricFamily("node_softirqs_total", "Softirqs raised since boot, by vector.",
                                           labels=["vector"])
            for vector, count in totals.softirqs.items():
                softirqs.add_metric([vector], count)
            families.append(softirqs)
        return families
