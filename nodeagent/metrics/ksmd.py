"""ksmd: kernel samepage merging state and counters from <sysfs>/kernel/mm/ksm/."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import counter, gauge, single
from nodeagent.metrics.host.files import read_uint
from nodeagent.metrics.registry import Collector, register

# file -> (family, help, scale); a file the kernel does not have (older kernels) is left out.
_FILES = (
    ("full_scans", counter, "node_ksmd_full_scans_total", "Full scans of mergeable memory areas.", 1),
    ("general_profit", gauge, "node_ksmd_general_profit_bytes", "Memory saved by KSM, net of its costs.", 1),
    (
        "merge_across_nodes",
        gauge,
        "node_ksmd_merge_across_nodes",
        "Whether pages merge across NUMA nodes.",
        1,
    ),
    ("pages_shared", gauge, "node_ksmd_pages_shared", "Shared pages in use.", 1),
    ("pages_sharing", gauge, "node_ksmd_pages_sharing", "Further sites sharing those pages.", 1),
    ("pages_to_scan", gauge, "node_ksmd_pages_to_scan", "Pages scanned before ksmd sleeps.", 1),
    ("pages_unshared", gauge, "node_ksmd_pages_unshared", "Unique pages checked repeatedly for merging.", 1),
    ("pages_volatile", gauge, "node_ksmd_pages_volatile", "Pages changing too fast to be merged.", 1),
    ("run", gauge, "node_ksmd_run", "ksmd state: 0 stopped, 1 running, 2 unmerging.", 1),
    (
        "sleep_millisecs",
        gauge,
        "node_ksmd_sleep_seconds",
        "Time ksmd sleeps between scans, in seconds.",
        1000,
    ),
)


@register
class KsmdCollector(Collector):
    name = "ksmd"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.sys("kernel", "mm", "ksm")
        families = []
        for file, kind, name, help_text, scale in _FILES:
            try:
                value = read_uint(f"{directory}/{file}")
            except FileNotFoundError:
                continue
            families.append(single(kind(name, help_text), value / scale if scale != 1 else float(value)))
        return families
