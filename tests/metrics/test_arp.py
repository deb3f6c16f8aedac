"""arp collector: /proc/net/arp entries per device."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from tests.metrics.conftest import Scraped, write_tree

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
    result = scrape("arp")
    lines = result.lines
    assert 'node_arp_entries{device="eth0"} 2' in lines
    assert 'node_arp_entries{device="cni0"} 1' in lines
    assert _parse_errors.count("arp") == before + 1
    assert not any("cni0" in line for line in scrape("arp", device_exclude="^cni").lines)
    only = scrape("arp", device_include="^cni").lines
    assert [line for line in only if line.startswith("node_arp")] == ['node_arp_entries{device="cni0"} 1']
