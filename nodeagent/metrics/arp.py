"""arp: IPv4 neighbour (ARP) table entries per device from <procfs>/net/arp (node_arp_entries).

This is node_exporter's /proc/net/arp path (``--no-collector.arp.netlink``); its rtnetlink path and
the node_arp_states family that only that path exposes are not implemented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.host.files import read_lines
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, Paths, register

_HEADER_COLUMNS = 9  # "IP address", "HW type", "HW address" split into two words each
_DATA_COLUMNS = 6


def parse_arp(lines: Iterable[str]) -> tuple[Counter[str], list[Skip]]:
    """Entries per device, and the lines with an unexpected number of columns skipped. ``lines``: the
    file's lines, read as they come (one per neighbour)."""
    entries: Counter[str] = Counter()
    skipped: list[Skip] = []
    for line in lines:
        fields = line.split()
        if not fields or len(fields) == _HEADER_COLUMNS:
            continue
        if len(fields) != _DATA_COLUMNS:
            skipped.append(Skip(f"net/arp line without {_DATA_COLUMNS} columns", line))
            continue
        entries[fields[5]] += 1
    return entries, skipped


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
        family = gauge("node_arp_entries", "ARP table entries per device.")
        entries, skipped = parse_arp(read_lines(self.paths.proc("net", "arp")))
        self.report(skipped)
        for device, count in entries.items():
            if not self.filter.ignored(device):
                add_sample(family, {"device": device}, float(count))
        yield family
