"""bcache collector: <sysfs>/fs/bcache/<uuid>/."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.bcache import (
    dehumanize,
    dehumanize_signed,
    parse_priority_stats,
    parse_writeback_rate_debug,
)
from tests.metrics.conftest import Scraped, write_tree

SET = "sys/fs/bcache/deaddd54-c735-46d5-868e-f331c5fd7c74"
WRITEBACK = (
    "rate:\t\t1.1M/sec\ndirty:\t\t20.4G\ntarget:\t\t20.4G\nproportional:\t427.5k\nintegral:\t-790.5k\n"
)
WRITEBACK += "change:\t\t321.5k/sec\nnext io:\t17ms\n"


def test_dehumanize_follows_bch_hprint() -> None:
    assert dehumanize("512") == 512
    assert dehumanize("1.5k") == int((1 + 5 / 10.24) * 1024)
    assert dehumanize("2M") == 2 << 20
    assert dehumanize("7Q") == 0  # unknown multiplier
    assert dehumanize_signed("-790.5k") == -int((790 + 5 / 10.24) * 1024)
    for bad in ("", "x", "1.xk", "k"):
        try:
            dehumanize(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_writeback_and_priority_files() -> None:
    values, skipped = parse_writeback_rate_debug(WRITEBACK + "target: lots\nnext io: soonms\n")
    assert values["rate"] == dehumanize("1.1M") and values["change"] == dehumanize("321.5k")
    assert values["target"] == dehumanize("20.4G")  # the bad later line is skipped
    assert len(skipped) == 2
    priority, skipped = parse_priority_stats("Unused:\t\t99%\nMetadata:\t0%\nAverage:\t10473\n")
    assert priority == {"unused": 99, "metadata": 0} and not skipped
    assert parse_priority_stats("Unused: x%\n")[1]


def test_scrape_with_priority_stats_and_bad_values(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{SET}/tree_depth": "2\n",
            f"{SET}/btree_cache_size": "oops\n",  # unparsable: 0, reported
            f"{SET}/internal/btree_read_average_duration_us": "1305\n",
            f"{SET}/bdev0/dirty_data": "1.5k\n",
            f"{SET}/bdev0/writeback_rate_debug": WRITEBACK,
            f"{SET}/bdev0/stats_total/cache_hits": "546\n",
            f"{SET}/cache0/written": "5M\n",
            f"{SET}/cache0/priority_stats": "Unused: 99%\nMetadata: 3%\n",
        },
    )
    uuid = 'uuid="deaddd54-c735-46d5-868e-f331c5fd7c74"'
    plain = scrape("bcache")
    assert plain.ok
    assert f"node_bcache_tree_depth{{{uuid}}} 2" in plain.lines
    assert f"node_bcache_btree_cache_size_bytes{{{uuid}}} 0" in plain.lines
    assert f'node_bcache_cache_hits_total{{backing_device="bdev0",{uuid}}} 546' in plain.lines
    assert f'node_bcache_dirty_data_bytes{{backing_device="bdev0",{uuid}}} 1524' in plain.lines
    assert not any("readaheads" in line or "priority" in line for line in plain.lines)
    with_priority = scrape("bcache", priorityStats=True)
    assert (
        f'node_bcache_priority_stats_metadata_percent{{cache_device="cache0",{uuid}}} 3'
        in with_priority.lines
    )


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    parse_writeback_rate_debug(text)
    parse_priority_stats(text)
    with contextlib.suppress(ValueError):
        dehumanize(text)


def test_dehumanize_matches_procfs_cases() -> None:
    # prometheus/procfs bcache/get_test.go TestDehumanizeTests
    cases = {"542k": 555008, "322M": 337641472, "1.1k": 1124, "1.9k": 1924, "1.10k": 2024}
    assert {text: dehumanize(text) for text in cases} == cases
