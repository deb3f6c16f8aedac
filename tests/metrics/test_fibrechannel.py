"""fibrechannel collector: <sysfs>/class/fc_host/<host>/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree

HOST = "sys/class/fc_host/host0"


def test_scrape_counters_info_and_unimplemented(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{HOST}/port_state": "Online\n",
            f"{HOST}/port_id": "0x000002\n",
            f"{HOST}/speed": "16 Gbit\n",
            f"{HOST}/statistics/rx_frames": "0x10\n",
            f"{HOST}/statistics/tx_frames": "0xffffffffffffffff\n",  # not implemented: left out
            f"{HOST}/statistics/nos_count": "garbage\n",  # unparsable: left out
            f"{HOST}/statistics/reset_statistics": "",
            "sys/class/fc_host/host1/port_state": "Unknown\n",
        },
    )
    result = scrape("fibrechannel")
    assert result.ok
    assert 'node_fibrechannel_rx_frames_total{fc_host="host0"} 16' in result.lines
    assert not any(
        'tx_frames_total{fc_host="host0"}' in line or 'nos_total{fc_host="host0"}' in line
        for line in result.lines
    )
    assert 'node_fibrechannel_nos_total{fc_host="host1"} 0' in result.lines  # Unknown port: every counter 0
    info = next(
        line for line in result.lines if line.startswith("node_fibrechannel_info") and "host0" in line
    )
    assert 'port_id="000002"' in info and 'speed="16 Gbit"' in info and 'fabric_name=""' in info


def test_no_fc_host_class_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("fibrechannel").ok
