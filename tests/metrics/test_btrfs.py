"""btrfs collector: <sysfs>/fs/btrfs/<uuid>/ (the sysfs part of node_exporter's collector)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.btrfs import allocation_ratio, parse_commit_stats
from tests.metrics.conftest import Scraped, write_tree

FS = "sys/fs/btrfs/7f07c59f-6136-449c-ab87-e1cf2328731b"


def test_allocation_ratios_follow_go_division() -> None:
    assert allocation_ratio("raid1c3", 5) == 3 and allocation_ratio("weird", 3) == 0
    assert allocation_ratio("raid5", 4) == 4 / 3 and allocation_ratio("raid6", 4) == 2
    assert allocation_ratio("raid5", 1) == math.inf
    assert math.copysign(1, allocation_ratio("raid6", 0)) == -1  # 0 / -2 is -0


def test_commit_stats_skip_malformed_lines() -> None:
    stats, skipped = parse_commit_stats("commits 5\nlast_commit_ms x\nmax_commit_ms 1 2\nfuture 9\n")
    assert stats == {"commits": 5, "last_commit_ms": 0, "max_commit_ms": 0, "total_commit_ms": 0}
    assert len(skipped) == 2


def test_scrape_with_missing_and_bad_attributes(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{FS}/label": "\n",
            f"{FS}/devices/loop1/size": "20971520\n",
            f"{FS}/devices/loop2/size": "garbage\n",  # unparsable: 0
            f"{FS}/allocation/global_rsv_size": "16777216\n",
            f"{FS}/allocation/data/bytes_reserved": "7\n",
            f"{FS}/allocation/data/raid5/used_bytes": "100\n",  # no total_bytes: 0
            f"{FS}/commit_stats": "commits 3\ntotal_commit_ms 1500\n",
            "sys/fs/btrfs/features/raid56": "0\n",  # not a filesystem (no dash)
        },
    )
    result = scrape("btrfs")
    assert result.ok
    uuid = "7f07c59f-6136-449c-ab87-e1cf2328731b"  # no metadata_uuid: the directory name
    assert f'node_btrfs_info{{label="",uuid="{uuid}"}} 1' in result.lines
    assert f'node_btrfs_device_size_bytes{{device="loop1",uuid="{uuid}"}} 1.073741824e+10' in result.lines
    assert f'node_btrfs_device_size_bytes{{device="loop2",uuid="{uuid}"}} 0' in result.lines
    assert (
        f'node_btrfs_allocation_ratio{{block_group_type="data",mode="raid5",uuid="{uuid}"}} 2' in result.lines
    )
    assert f'node_btrfs_size_bytes{{block_group_type="data",mode="raid5",uuid="{uuid}"}} 0' in result.lines
    assert f'node_btrfs_reserved_bytes{{block_group_type="system",uuid="{uuid}"}} 0' in result.lines
    assert f'node_btrfs_commit_seconds_total{{uuid="{uuid}"}} 1.5' in result.lines


def test_no_btrfs_is_success_without_samples(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("btrfs")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_commit_stats(text)
