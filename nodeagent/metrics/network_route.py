"""network_route: the unicast routes of every routing table, read over rtnetlink (RTM_GETROUTE dump).

As upstream: one ``node_network_route_info`` per route (per next hop of a multipath route, with its
weight), labelled by device, preferred source, destination ("default" for a zero-length prefix), gateway,
priority and protocol name; ``node_network_routes`` counts them per device. IPv4 and IPv6, all tables.
Two routes with identical labels (the same route in two tables) are one sample: node_exporter's registry
refuses the duplicate too.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTN_UNICAST = 1
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_MULTIPATH = 9

_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex

PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    17: "mrouted",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}


class Route(NamedTuple):
    """One route (or one next hop of a multipath route) with upstream's label values."""

    ifindex: int
    src: str
    dest: str
    gw: str
    priority: str
    proto: str
    weight: str


def ip_text(raw: bytes) -> str:
    """Go's net.IP.String() of a 4 or 16 byte address ("" when absent; an IPv4-mapped one as IPv4)."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        address = ipaddress.IPv6Address(raw)
        return str(address.ipv4_mapped) if address.ipv4_mapped else str(address)
    return "" if not raw else "?" + raw.hex()


def destination(raw: bytes, length: int) -> str:
    """``10.0.0.0/8``, or ``default`` for a zero-length prefix, as upstream."""
    if length == 0:
        return "default"
    return f"{ip_text(raw) or ('0.0.0.0' if len(raw) != 16 else '::')}/{length}"


def _next_hops(payload: bytes) -> Iterable[tuple[int, int, bytes]]:
    """(ifindex, hops, gateway) of each rtnexthop of an RTA_MULTIPATH attribute; stops at a bad one."""
    offset = 0
    while offset + _RTNEXTHOP.size <= len(payload):
        length, _flags, hops, ifindex = _RTNEXTHOP.unpack_from(payload, offset)
        if length < _RTNEXTHOP.size or offset + length > len(payload):
            return
        nested = _netlink.attribute_map(payload[offset + _RTNEXTHOP.size : offset + length])
        yield ifindex, hops, nested.get(RTA_GATEWAY, b"")
        offset += length


def parse_route_message(body: bytes) -> list[Route]:
    """The unicast route(s) of one RTM_NEWROUTE body; other route types and short messages give none."""
    if len(body) < _RTMSG.size:
        return []
    _family, dst_len, _src_len, _tos, _table, protocol, _scope, route_type, _flags = _RTMSG.unpack_from(body)
    if route_type != RTN_UNICAST:
        return []
    attrs = _netlink.attribute_map(body, _RTMSG.size)
    src = ip_text(attrs.get(RTA_PREFSRC, b""))
    dest = destination(attrs.get(RTA_DST, b""), dst_len)
    priority = str(_netlink.uint(attrs.get(RTA_PRIORITY, b"")))
    proto = PROTOCOLS.get(protocol, "unknown")
    if RTA_MULTIPATH in attrs:
        hops = list(_next_hops(attrs[RTA_MULTIPATH]))
        if hops:
            return [
                Route(ifindex, src, dest, ip_text(gw), priority, proto, str(n + 1)) for ifindex, n, gw in hops
            ]
    oif = _netlink.uint(attrs.get(RTA_OIF, b""))
    return [Route(oif, src, dest, ip_text(attrs.get(RTA_GATEWAY, b"")), priority, proto, "")]


def dump_routes(timeout: float = 5.0) -> list[bytes]:
    """RTM_NEWROUTE bodies of every route of every table, IPv4 and IPv6."""
    request = _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
    return _netlink.dump(_netlink.NETLINK_ROUTE, RTM_GETROUTE, request, RTM_NEWROUTE, timeout)


@register
class NetworkRouteCollector(Collector):
    name = "network_route"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        names = _netlink.link_names()
        info = gauge(
            "node_network_route_info", "One route (or next hop) with its properties as labels; always 1."
        )
        per_device = gauge("node_network_routes", "Routes per device.")
        counts: Counter[str] = Counter()
        seen: set[tuple[str, ...]] = set()
        duplicates: list[Skip] = []
        for body in dump_routes():
            for route in parse_route_message(body):
                device = names.get(route.ifindex, "")
                counts[device] += 1
                key = (device, *route[1:])
                if key in seen:
                    duplicates.append(Skip("network_route: a route with the labels of another", key))
                    continue
                seen.add(key)
                labels = dict(
                    zip(("device", "src", "dest", "gw", "priority", "proto", "weight"), key, strict=True)
                )
                add_sample(info, labels, 1.0)
        self.report(duplicates)
        for device, count in counts.items():
            add_sample(per_device, {"device": device}, float(count))
        yield info
        yield per_device
