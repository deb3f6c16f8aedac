"""udp_queues collector: queued bytes summed from /proc/net/udp and udp6."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.udp_queues import parse_udp_queues
from tests.metrics.conftest import Scraped, write_tree

UDP_HEADER = "  sl  local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode\n"


def test_udp_queues_sums_sockets_and_skips_bad_lines(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    before = _parse_errors.count("udp_queues")
    text = (
        UDP_HEADER
        + "   0: 00000000:0016 00000000:0000 07 00000015:00000001 00:00000000 00000000 0 0 1 2 ref 0\n"
        + "   1: 00000000:0017 00000000:0000 07 00000001:00000100 00:00000000 00000000 0 0 1 2 ref 0\n"
        + "   2: short line\n"
        + "   3: 00000000:0017 00000000:0000 07 zz:00000100 00:00000000 00000000 0 0 1 2 ref 0\n"
    )
    totals, skipped = parse_udp_queues(text.split("\n"))
    assert totals == (0x16, 0x101) and len(skipped) == 2
    write_tree(tmp_path, {"proc/net/udp6": text})
    result = scrape("udp_queues")
    assert _parse_errors.count("udp_queues") == before + 2
    lines = result.lines
    assert 'node_udp_queues{ip="v6",queue="tx"} 22' in lines
    assert 'node_udp_queues{ip="v6",queue="rx"} 257' in lines
    assert not any('ip="v4"' in line for line in lines)


def test_udp_queues_without_files_reports_no_data(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("udp_queues").ok
