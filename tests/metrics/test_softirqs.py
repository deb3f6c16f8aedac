"""softirqs collector: /proc/softirqs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.softirqs import parse_softirqs
from tests.metrics.conftest import Scraped, write_tree

TEXT = "          CPU0       CPU1\n          HI:          7          1\n       TIMER:     424191     108342\n"


def test_softirqs_table_and_bad_rows(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    rows, skipped = parse_softirqs(TEXT + "  NET_TX: 1 x\n  NEWTYPE: 1 2\n   RCU:\n")
    assert rows == {"HI": [7, 1], "TIMER": [424191, 108342]}
    assert len(skipped) == 1
    write_tree(tmp_path, {"proc/softirqs": TEXT})
    result = scrape("softirqs")
    assert result.ok
    assert result.lines == [
        'node_softirqs_functions_total{cpu="0",type="HI"} 7',
        'node_softirqs_functions_total{cpu="0",type="TIMER"} 424191',
        'node_softirqs_functions_total{cpu="1",type="HI"} 1',
        'node_softirqs_functions_total{cpu="1",type="TIMER"} 108342',
    ]


def test_softirqs_empty_file_fails_the_collector_only(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/softirqs": ""})
    assert not scrape("softirqs").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_softirqs_survives_any_text(text: str) -> None:
    parse_softirqs(text)
