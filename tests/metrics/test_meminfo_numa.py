"""meminfo_numa collector: /sys/devices/system/node/node*/{meminfo,numastat}."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.meminfo_numa import parse_node_meminfo, parse_numastat
from tests.metrics.conftest import Scraped, write_tree

MEMINFO = "Node 0 MemTotal:  4 kB\nNode 0 Active(anon):  2 kB\nNode 0 HugePages_Total:     3\n"


def test_node_meminfo_fields_in_bytes() -> None:
    rows, skipped = parse_node_meminfo(MEMINFO + "Node 0 Odd: 1 MB\nNode 0\nNode 0 Bad: x kB\n")
    assert rows == [("0", "MemTotal", 4096.0), ("0", "Active_anon", 2048.0), ("0", "HugePages_Total", 3.0)]
    assert len(skipped) == 3


def test_numastat_counters() -> None:
    assert parse_numastat("numa_hit 10\n\nnuma_miss 2\n") == ([("numa_hit", 10.0), ("numa_miss", 2.0)], [])
    assert len(parse_numastat("numa_hit\nother 1 2\nx y\n")[1]) == 3


def test_meminfo_numa_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/devices/system/node"
    write_tree(
        tmp_path,
        {
            f"{base}/node0/meminfo": MEMINFO,
            f"{base}/node0/numastat": "numa_hit 10\n",
            f"{base}/possible": "0\n",
        },
    )
    result = scrape("meminfo_numa")
    assert result.ok
    assert result.lines == [
        'node_memory_numa_Active_anon{node="0"} 2048',
        'node_memory_numa_HugePages_Total{node="0"} 3',
        'node_memory_numa_MemTotal{node="0"} 4096',
        'node_memory_numa_numa_hit_total{node="0"} 10',
    ]


def test_meminfo_numa_without_nodes_is_empty(scrape: Callable[..., Scraped]) -> None:
    result = scrape("meminfo_numa")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_numa_parsers_survive_any_text(text: str) -> None:
    parse_node_meminfo(text)
    parse_numastat(text)
