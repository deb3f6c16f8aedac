"""swap collector: /proc/swaps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.swap import Swap, parse_swaps
from tests.metrics.conftest import Scraped, write_tree

TEXT = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-2   partition\t131068\t\t176\t\t-2\n"


def test_swaps_rows_and_malformed_rows(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    swaps, skipped = parse_swaps(TEXT + "/swapfile file 10\n/swapfile2 file x 0 1\n")
    assert swaps == [Swap("/dev/dm-2", "partition", 131068, 176, -2)]
    assert len(skipped) == 2
    write_tree(tmp_path, {"proc/swaps": TEXT})
    result = scrape("swap")
    assert result.ok
    assert result.lines == [
        'node_swap_priority{device="/dev/dm-2",swap_type="partition"} -2',
        'node_swap_size_bytes{device="/dev/dm-2",swap_type="partition"} 1.34213632e+08',
        'node_swap_used_bytes{device="/dev/dm-2",swap_type="partition"} 180224',
    ]


def test_no_swap_configured(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/swaps": TEXT.splitlines()[0] + "\n"})
    result = scrape("swap")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_swaps_survives_any_text(text: str) -> None:
    parse_swaps(text)
