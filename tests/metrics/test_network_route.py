"""network_route collector: unicast routes over rtnetlink, multipath next hops, upstream's labels."""

from __future__ import annotations

import socket
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _netlink
from nodeagent.metrics import network_route as nr
from tests.metrics.netns import run_in_netns

attr = _netlink.encode_attribute


def _rtmsg(
    dst_len: int, protocol: int, route_type: int = nr.RTN_UNICAST, family: int = socket.AF_INET
) -> bytes:
    return struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, 254, protocol, 0, route_type, 0)


def _hop(ifindex: int, hops: int, gateway: bytes) -> bytes:
    nested = attr(nr.RTA_GATEWAY, gateway)
    return struct.pack("=HBBi", 8 + len(nested), 0, hops, ifindex) + nested


def test_route_messages() -> None:
    default = (
        _rtmsg(0, 3) + attr(nr.RTA_GATEWAY, bytes([10, 0, 0, 1])) + attr(nr.RTA_OIF, struct.pack("=I", 2))
    )
    assert nr.parse_route_message(default) == [nr.Route(2, "", "default", "10.0.0.1", "0", "boot", "")]
    prefix = (
        _rtmsg(24, 2)
        + attr(nr.RTA_DST, bytes([10, 0, 0, 0]))
        + attr(nr.RTA_PREFSRC, bytes([10, 0, 0, 5]))
        + attr(nr.RTA_PRIORITY, struct.pack("=I", 100))
        + attr(nr.RTA_OIF, struct.pack("=I", 2))
    )
    assert nr.parse_route_message(prefix) == [nr.Route(2, "10.0.0.5", "10.0.0.0/24", "", "100", "kernel", "")]
    v6 = _rtmsg(64, 186, family=socket.AF_INET6) + attr(nr.RTA_DST, bytes.fromhex("fd00" + "00" * 14))
    assert nr.parse_route_message(v6)[0][2:6] == ("fd00::/64", "", "0", "bgp")
    multipath = _rtmsg(16, 99) + attr(nr.RTA_DST, bytes([10, 1, 0, 0]))
    multipath += attr(nr.RTA_MULTIPATH, _hop(3, 0, bytes([10, 0, 0, 2])) + _hop(4, 4, bytes([10, 0, 0, 3])))
    assert [(r.ifindex, r.gw, r.proto, r.weight) for r in nr.parse_route_message(multipath)] == [
        (3, "10.0.0.2", "unknown", "1"),
        (4, "10.0.0.3", "unknown", "5"),
    ]
    assert nr.parse_route_message(_rtmsg(8, 2, route_type=2)) == []  # local: not unicast
    assert nr.parse_route_message(default[:6]) == []
    assert nr.ip_text(bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])) == "1.2.3.4"  # IPv4-mapped, as Go


def test_live_routes_in_a_namespace() -> None:
    """Routes of a fresh namespace: connected, static via a gateway, multipath with weights."""
    script = """
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.host.files import Paths
print(render_text(run_collectors(build_collectors(["network_route"], Paths(), {}))))
"""
    setup = [
        ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        ["ip", "link", "set", "v0", "up"],
        ["ip", "link", "set", "v1", "up"],
        ["ip", "addr", "add", "10.9.0.1/24", "dev", "v0"],
        ["ip", "addr", "add", "10.8.0.1/24", "dev", "v1"],
        ["ip", "route", "add", "10.7.0.0/16", "via", "10.9.0.254", "metric", "50", "proto", "static"],
        ["ip", "route", "add", "10.6.0.0/16", "nexthop", "via", "10.9.0.254", "weight", "1",
         "nexthop", "via", "10.8.0.254", "weight", "3"],
    ]  # fmt: skip
    lines = run_in_netns(setup, script).splitlines()
    info = "node_network_route_info{"
    for labels in (
        'dest="10.9.0.0/24",device="v0",gw="",priority="0",proto="kernel",src="10.9.0.1",weight=""',
        'dest="10.7.0.0/16",device="v0",gw="10.9.0.254",priority="50",proto="static",src="",weight=""',
        'dest="10.6.0.0/16",device="v0",gw="10.9.0.254",priority="0",proto="boot",src="",weight="1"',
        'dest="10.6.0.0/16",device="v1",gw="10.8.0.254",priority="0",proto="boot",src="",weight="3"',
    ):
        assert info + labels + "} 1" in lines
    for device in ("v0", "v1"):  # connected, static, next hops, and fe80::/64 where IPv6 is on
        routes = [line for line in lines if line.startswith(info) and f'device="{device}"' in line]
        assert f'node_network_routes{{device="{device}"}} {len(routes)}' in lines
    assert 'node_scrape_collector_success{collector="network_route"} 1' in lines


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_raises(data: bytes) -> None:
    for route in nr.parse_route_message(data):
        assert route.dest
