"""arp: IPv4 neighbour (ARP) table entries per device from <procfs>/net/arp (node_arp_entries).

This is node_exporter's /proc/net/arp path (``--no-collector.arp.netlink``); its rtnetlink path and
the node_arp_states family that only that path exposes are not implemented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics._netcommon import report_bad_input
from nodeagent.metrics.registry import Collector, Paths, read_text, register

_HEADER_COLUMNS = 9  # "IP address", "HW type", "HW address" split into two words each
_DATA_COLUMNS = 6


def parse_arp(text: str, collector: str = "arp") -> Counter[str]:
    """Entries per device. Lines with an unexpected number of columns are reported and skipped."""
    entries: Counter[str] = Counter()
    for line in text.splitlines():
        fields = line.split()
        if not fields or len(fields) == _HEADER_COLUMNS:
            continue
        if len(fields) != _DATA_COLUMNS:
            report_bad_input(collector, f"net/arp line without {_DATA_COLUMNS} columns", line)
            continue
        entries[fields[5]] += 1
    return entries


def read_arp(procfs: Path) -> Counter[str]:
    return parse_arp(read_text(f"{procfs}/net/arp"))


@register
class ArpCollector(Collector):
    name = "arp"
    options = (*filter_options("device", "arp devices"),)

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = exclusive_filter(
            self.name,
            "device-exclude",
            self.opts["device-exclude"],
            "",
            "device-include",
            self.opts["device-include"],
        )

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("node_arp_entries", "ARP table entries per device.", labels=["device"])
        for device, count in read_arp(self.paths.procfs).items():
            if not self.filter.ignored(device):
                family.add_metric([device], float(count))
        yield family
