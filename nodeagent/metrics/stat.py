"""stat: system-wide counters from <procfs>/stat (interrupts, context switches, forks, boot time, runnable
and blocked processes), plus softirqs per vector when option softirq is on.

Per-CPU times in the same file belong to the cpu collector.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.metrics._emit import add_sample, counter, gauge, single
from nodeagent.metrics._proc_stat import parse_stat_totals
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.registry import Collector, CollectorOption, register

# /proc/stat totals exported as one unlabelled sample each: (attribute, family type, name, help).
_SCALARS = (
    ("interrupts", counter, "node_intr_total", "Interrupts serviced since boot."),
    ("context_switches", counter, "node_context_switches_total", "Context switches since boot."),
    ("forks", counter, "node_forks_total", "Tasks created since boot."),
    ("boot_time", gauge, "node_boot_time_seconds", "Boot time as a Unix timestamp."),
    ("procs_running", gauge, "node_procs_running", "Processes in runnable state."),
    ("procs_blocked", gauge, "node_procs_blocked", "Processes blocked waiting for I/O."),
)


@register
class StatCollector(Collector):
    name = "stat"
    options = (
        CollectorOption("softirq", False, "Export node_softirqs_total per softirq vector.", parse_bool),
    )

    def collect(self) -> Iterable[Metric]:
        totals, skipped = parse_stat_totals(read_text(self.paths.proc("stat")))
        self.report(skipped)
        families: list[Metric] = []
        for attribute, family_type, name, documentation in _SCALARS:
            value = getattr(totals, attribute)
            if value is not None:
                families.append(single(family_type(name, documentation), value))
        if self.opts.get("softirq") and totals.softirqs:
            softirqs = counter("node_softirqs_total", "Softirqs raised since boot, by vector.")
            for vector, count in totals.softirqs.items():
                add_sample(softirqs, {"vector": vector}, count)
            families.append(softirqs)
        return families
