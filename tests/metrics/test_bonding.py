"""bonding collector: configured and active slaves per master."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from tests.metrics.conftest import Scraped, write_tree


def test_bonding_counts_slaves_across_kernel_layouts(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    net = "sys/class/net"
    files = {
        f"{net}/bonding_masters": "bond0 bond1 ghost\n",
        f"{net}/bond0/bonding/slaves": "eth0 eth1 eth2\n",
        f"{net}/bond0/lower_eth0/bonding_slave/mii_status": "up\n",
        f"{net}/bond0/slave_eth1/bonding_slave/mii_status": "down\n",  # older kernels: slave_ prefix
        f"{net}/bond1/bonding/slaves": "\n",
    }
    write_tree(tmp_path, files)
    before = _parse_errors.count("bonding")
    result = scrape("bonding")
    lines = result.lines
    assert result.ok
    assert 'node_bonding_slaves{master="bond0"} 3' in lines
    assert 'node_bonding_active{master="bond0"} 1' in lines
    assert 'node_bonding_slaves{master="bond1"} 0' in lines
    assert not any("ghost" in line for line in lines)
    assert _parse_errors.count("bonding") == before + 2  # eth2 without mii_status, ghost without a directory


def test_bonding_without_module_reports_no_data(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("bonding").ok
