"""buddyinfo collector: free blocks per order from /proc/buddyinfo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.buddyinfo import parse_buddyinfo
from tests.metrics.conftest import Scraped, write_tree

GOOD = "Node 0, zone      DMA      1      0      1\nNode 0, zone   Normal   4381   1093    185\n"


def test_buddyinfo_parses_node_zone_and_orders() -> None:
    rows, skipped = parse_buddyinfo(GOOD)
    assert rows == [("0", "DMA", [1.0, 0.0, 1.0]), ("0", "Normal", [4381.0, 1093.0, 185.0])]
    assert skipped == []


def test_buddyinfo_skips_short_mismatched_and_bad_lines(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    text = GOOD + "Node 0, zone\nNode 1, zone DMA32 1 2\nNode 1, zone Movable 1 x 3\n"
    rows, skipped = parse_buddyinfo(text)
    assert [zone for _, zone, _ in rows] == ["DMA", "Normal"]
    assert len(skipped) == 3
    write_tree(tmp_path, {"proc/buddyinfo": text})
    result = scrape("buddyinfo")
    assert result.ok and 'node_buddyinfo_blocks{node="0",size="2",zone="Normal"} 185' in result.lines
    assert _parse_errors.count("buddyinfo") >= 3


def test_buddyinfo_without_the_file_fails_the_collector_only(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("buddyinfo").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_buddyinfo_survives_any_text(text: str) -> None:
    parse_buddyinfo(text)
