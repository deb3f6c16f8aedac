"""arp: IPv4 neighbour (ARP) table entries per device (node_arp_entries).

Two sources, as node_exporter: by default (``--collector.arp.netlink``) an rtnetlink dump of the IPv4
neighbours, counting those whose state is not NUD_NOARP (the kernel's own broadcast/multicast/loopback
entries), names resolved by interface index; with ``--no-collector.arp.netlink`` the rows of
<procfs>/net/arp (which truncates InfiniBand addresses, the reason upstream moved to netlink).
node_exporter 1.12.1 exports no per-state family (``node_arp_states`` is an unmerged upstream proposal).
"""

from __future__ import annotations

import socket
import struct
from collections import Counter
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.host.files import read_lines
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

_HEADER_COLUMNS = 9  # "IP address", "HW type", "HW address" split into two words each
_DATA_COLUMNS = 6

RTM_NEWNEIGH = 28
RTM_GETNEIGH = 30
NUD_NOARP = 0x40
_NDMSG = struct.Struct("=BBHiHBB")  # family, pad, pad, ifindex, state, flags, type


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


def count_neighbours(bodies: Iterable[bytes], names: dict[int, str]) -> tuple[Counter[str], list[Skip]]:
    """Entries per device of RTM_NEWNEIGH bodies, NUD_NOARP ones left out as upstream; a neighbour of
    an interface that vanished meanwhile (no name) is skipped."""
    entries: Counter[str] = Counter()
    skipped: list[Skip] = []
    for body in bodies:
        if len(body) < _NDMSG.size:
            skipped.append(Skip("rtnetlink neighbour message too short", len(body)))
            continue
        _family, _pad1, _pad2, ifindex, state, _flags, _type = _NDMSG.unpack_from(body)
        if state & NUD_NOARP:
            continue
        name = names.get(ifindex)
        if name is None:
            skipped.append(Skip("rtnetlink neighbour of an unknown interface", ifindex))
            continue
        entries[name] += 1
    return entries, skipped


def dump_ipv4_neighbours(timeout: float = 5.0) -> list[bytes]:
    """RTM_NEWNEIGH bodies of every IPv4 neighbour of the current network namespace."""
    request = _NDMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0)
    return _netlink.dump(_netlink.NETLINK_ROUTE, RTM_GETNEIGH, request, RTM_NEWNEIGH, timeout)


@register
class ArpCollector(Collector):
    name = "arp"
    options = (
        *filter_options("device", "arp devices"),
        CollectorOption(
            "netlink", True, "Read the neighbour table over rtnetlink instead of /proc/net/arp.", parse_bool
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = exclusive_filter(self.name, self.opts, "device")

    def collect(self) -> Iterable[Metric]:
        family = gauge("node_arp_entries", "ARP table entries per device.")
        if parse_bool(self.opts["netlink"]):
            entries, skipped = count_neighbours(dump_ipv4_neighbours(), _netlink.link_names())
        else:
            entries, skipped = parse_arp(read_lines(self.paths.proc("net", "arp")))
        self.report(skipped)
        for device, count in entries.items():
            if not self.filter.ignored(device):
                add_sample(family, {"device": device}, float(count))
        yield family
