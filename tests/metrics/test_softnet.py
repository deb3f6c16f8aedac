"""softnet collector: /proc/net/softnet_stat columns by kernel version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.softnet import parse_softnet
from tests.metrics.conftest import Scraped, write_tree


def test_softnet_columns_by_kernel_version() -> None:
    text = (
        "0000000a 00000001 00000002 0 0 0 0 0 00000003\n"  # 2.6.23: 9 columns
        "0000000b 0 0 0 0 0 0 0 0 00000004 00000005\n"  # 4.18: flow_limit_count
        "zz 0 0 0 0 0 0 0 0\n"  # malformed: skipped, index still advances
        "0000000c 0 0 0 0 0 0 0 0 0 0 00000006 0000000f 00000000 00000000\n"
    )  # 6.x: backlog, cpu id
    rows, skipped = parse_softnet(text)
    assert [(row.cpu, row.processed) for row in rows] == [(0, 10), (1, 11), (15, 12)]
    assert rows[0].cpu_collision == 3 and rows[0].received_rps == 0
    assert rows[1].received_rps == 4 and rows[1].flow_limit_count == 5
    assert rows[2].backlog_len == 6
    assert len(skipped) == 1
    rows, skipped = parse_softnet("1 2 3\n")
    assert rows == [] and len(skipped) == 1


def test_softnet_collector(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/softnet_stat": "000000ff 00000001 00000002 0 0 0 0 0 0 0 0 7 00000003\n"})
    result = scrape("softnet")
    lines = result.lines
    assert 'node_softnet_processed_total{cpu="3"} 255' in lines
    assert 'node_softnet_backlog_len{cpu="3"} 7' in lines
