"""xfs collector: per-filesystem stats files below <sysfs>/fs/xfs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.xfs import parse_xfs_stats
from tests.metrics.conftest import Scraped, write_tree

STATS = "extent_alloc 1 872 0 0\nrw 28 5\nvnodes 4 0 0 0 1 1 1\nxpc 3571712 3568056 0\n"


def test_parse_reads_categories_and_accepts_vnodes_without_free() -> None:
    values, skipped = parse_xfs_stats(STATS)
    assert not skipped
    assert values["extent_allocation_blocks_allocated_total"] == 872
    assert (values["write_calls_total"], values["read_calls_total"]) == (28, 5)
    assert values["vnode_active_total"] == 4
    assert values["inode_operation_found_total"] == 0  # absent category


def test_malformed_lines_are_skipped_and_the_rest_kept() -> None:
    values, skipped = parse_xfs_stats(
        "extent_alloc 1 2 3\n"  # too few
        "abt 1 2 x 4\n"  # not a number
        "dir 4294967296 0 0 0\n"  # beyond 32 bits
        "rw 7 8\n"
        "xpc 18446744073709551615 1 2\n"  # 64-bit: fine
        "garbage\n"
    )
    assert [skip.what for skip in skipped] == [
        "xfs stats: wrong number of counters",
        "xfs stats: non-numeric counter",
        "xfs stats: counter beyond 32 bits",
    ]
    assert values["write_calls_total"] == 7 and values["extent_allocation_extents_allocated_total"] == 0


def test_scrape_labels_each_filesystem(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "sys/fs/xfs/sda1/stats/stats": STATS,
            "sys/fs/xfs/sdb1/stats/stats": "rw 1 2\n",
            "sys/fs/xfs/stats/stats": "rw 9 9\n",  # the global file: not a filesystem
        },
    )
    result = scrape("xfs")
    assert result.ok
    assert [line for line in result.lines if line.startswith("node_xfs_read_calls")] == [
        'node_xfs_read_calls_total{device="sda1"} 5',
        'node_xfs_read_calls_total{device="sdb1"} 2',
    ]


def test_no_xfs_is_success_without_samples(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("xfs")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_xfs_stats(text)
