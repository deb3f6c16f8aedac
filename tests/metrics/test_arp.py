"""arp collector: entries per device from /proc/net/arp and over rtnetlink."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.arp import NUD_NOARP, count_neighbours
from tests.metrics.conftest import Scraped, write_tree
from tests.metrics.netns import run_in_netns

ARP = """\
IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         cc:aa:dd:ee:aa:bb     *        eth0
192.168.1.2      0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.1         0x1         0x2         de:ad:be:ef:00:00     *        cni0
garbage
"""


def test_arp_counts_and_filters(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/arp": ARP})
    before = _parse_errors.count("arp")
    result = scrape("arp", netlink=False)
    lines = result.lines
    assert 'node_arp_entries{device="eth0"} 2' in lines
    assert 'node_arp_entries{device="cni0"} 1' in lines
    assert _parse_errors.count("arp") == before + 1
    assert not any("cni0" in line for line in scrape("arp", netlink=False, device_exclude="^cni").lines)
    only = scrape("arp", netlink=False, device_include="^cni").lines
    assert [line for line in only if line.startswith("node_arp")] == ['node_arp_entries{device="cni0"} 1']


NUD_REACHABLE, NUD_PERMANENT = 0x02, 0x80


def _ndmsg(ifindex: int, state: int) -> bytes:
    return struct.pack("=BBHiHBB", socket.AF_INET, 0, 0, ifindex, state, 0, 1)


def test_netlink_neighbours_counted_without_noarp() -> None:
    bodies = [
        _ndmsg(2, NUD_REACHABLE),
        _ndmsg(2, NUD_PERMANENT),
        _ndmsg(1, NUD_NOARP),
        _ndmsg(9, NUD_REACHABLE),
        b"x",
    ]
    entries, skipped = count_neighbours(bodies, {1: "lo", 2: "eth0"})
    assert dict(entries) == {"eth0": 2}
    assert len(skipped) == 2  # the unknown interface and the short message


def test_netlink_mode_live_in_a_namespace() -> None:
    """A veth inside a fresh namespace with one permanent and one NOARP neighbour: one entry."""
    script = """
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.host.files import Paths
print(render_text(run_collectors(build_collectors(["arp"], Paths(), {}))))
"""
    setup = [
        ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        ["ip", "addr", "add", "10.9.0.1/24", "dev", "v0"],
        ["ip", "link", "set", "v0", "up"],
        ["ip", "neigh", "add", "10.9.0.2", "lladdr", "02:00:00:00:00:02", "dev", "v0", "nud", "permanent"],
        ["ip", "neigh", "add", "10.9.0.3", "lladdr", "00:00:00:00:00:00", "dev", "v0", "nud", "noarp"],
    ]
    out = run_in_netns(setup, script)
    assert 'node_arp_entries{device="v0"} 1' in out.splitlines()
    assert 'node_scrape_collector_success{collector="arp"} 1' in out.splitlines()
