"""lnstat collector: /proc/net/stat/*."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.lnstat import parse_lnstat
from tests.metrics.conftest import Scraped, write_tree

TABLE = "entries  allocs\n00000014  0000000d\n00000014  000000ff\n"


def test_lnstat_columns_per_cpu() -> None:
    assert parse_lnstat(TABLE) == ({"entries": [20, 20], "allocs": [13, 255]}, [])
    assert parse_lnstat("") == ({}, [])


def test_lnstat_bad_table_is_skipped_whole(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    stats, skipped = parse_lnstat(TABLE + "zz 1\n")
    assert stats == {} and len(skipped) == 1
    stats, skipped = parse_lnstat(TABLE + "1 2 3\n")
    assert stats == {} and len(skipped) == 1
    write_tree(tmp_path, {"proc/net/stat/arp_cache": TABLE, "proc/net/stat/broken": "a\nxyz\n"})
    result = scrape("lnstat")
    assert result.ok
    assert result.lines == [
        'node_lnstat_allocs_total{cpu="0",subsystem="arp_cache"} 13',
        'node_lnstat_allocs_total{cpu="1",subsystem="arp_cache"} 255',
        'node_lnstat_entries_total{cpu="0",subsystem="arp_cache"} 20',
        'node_lnstat_entries_total{cpu="1",subsystem="arp_cache"} 20',
    ]


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_lnstat_survives_any_text(text: str) -> None:
    parse_lnstat(text)
