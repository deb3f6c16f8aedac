"""edac collector: memory controller error counters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_edac_channels_labels_and_broken_controllers(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/devices/system/edac/mc"
    write_tree(
        tmp_path,
        {
            f"{base}/mc0/ce_count": "1\n",
            f"{base}/mc0/ce_noinfo_count": "0\n",
            f"{base}/mc0/ue_count": "2\n",
            f"{base}/mc0/ue_noinfo_count": "0\n",
            f"{base}/mc0/csrow0/ce_count": "3\n",
            f"{base}/mc0/csrow0/ue_count": "4\n",
            f"{base}/mc0/csrow0/ch0_ce_count": "5\n",
            f"{base}/mc0/csrow0/ch0_dimm_label": "CPU#1_csrow0_channel0\n",
            f"{base}/mc0/csrow0/ch1_ce_count": "6\n",
            f"{base}/mc0/csrow0/ch1_ue_count": "7\n",
            f"{base}/mc0/csrow0/chX_ce_count": "8\n",
            f"{base}/mc1/ce_count": "not a number\n",
        },
    )
    result = scrape("edac")
    lines, ok = result.lines, result.ok
    assert ok
    assert (
        'node_edac_channel_correctable_errors_total{channel="0",controller="0",csrow="0",'
        'dimm_label="CPU1__csrow0__channel0"} 5'
    ) in lines
    assert (
        'node_edac_channel_uncorrectable_errors_total{channel="1",controller="0",csrow="0",'
        'dimm_label="unknown"} 7'
    ) in lines
    assert sum("channel_uncorrectable" in line for line in lines) == 1  # ch0 has no ue_count
    assert not any('controller="1"' in line for line in lines)
