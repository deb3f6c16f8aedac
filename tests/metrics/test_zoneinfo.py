"""zoneinfo collector: /proc/zoneinfo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.zoneinfo import parse_zoneinfo
from tests.metrics.conftest import Scraped, write_tree

TEXT = """Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 230981
      nr_dirtied   7
  pages free     3952
        min      33
        spanned  4095
        protection: (0, 2877, 7826)
Node 0, zone   Normal
  pages free     7
        min      x
        nr_free_pages 0x10
        protection: (0, bad)
"""


def test_zoneinfo_blocks() -> None:
    zones, skipped = parse_zoneinfo(TEXT)
    assert [(z.node, z.zone) for z in zones] == [("0", "DMA"), ("0", "Normal")]
    assert zones[0].values == {"nr_inactive_anon": 230981, "nr_dirtied": 7, "min": 33, "spanned": 4095}
    assert zones[0].protection == [0, 2877, 7826]
    assert zones[1].values == {"nr_free_pages": 16} and zones[1].protection == []
    assert len(skipped) == 2


def test_zoneinfo_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/zoneinfo": TEXT})
    result = scrape("zoneinfo")
    assert result.ok
    assert 'node_zoneinfo_nr_dirtied_total{node="0",zone="DMA"} 7' in result.lines
    assert 'node_zoneinfo_protection_2{node="0",zone="DMA"} 7826' in result.lines
    assert 'node_zoneinfo_nr_free_pages{node="0",zone="Normal"} 16' in result.lines
    assert "# TYPE node_zoneinfo_nr_dirtied_total counter" in result.text


def test_zoneinfo_empty_or_truncated(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/zoneinfo": TEXT[:70]})
    result = scrape("zoneinfo")
    assert result.ok and result.lines == ['node_zoneinfo_nr_inactive_anon_pages{node="0",zone="DMA"} 230981']
    assert parse_zoneinfo("")[0][0].values == {}


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_zoneinfo_survives_any_text(text: str) -> None:
    parse_zoneinfo(text)
