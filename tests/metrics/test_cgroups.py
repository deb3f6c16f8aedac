"""cgroups collector: /proc/cgroups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.cgroups import parse_cgroups
from tests.metrics.conftest import Scraped, write_tree


def test_cgroups_rows_and_malformed_rows(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    text = (
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
        "cpuset\t5\t47\t1\nmemory\t7\t234\nbad\tx\t1\t1\npids\t0\t1\t0\n"
    )
    rows, skipped = parse_cgroups(text)
    assert rows == [("cpuset", 47, 1), ("pids", 1, 0)]
    assert len(skipped) == 2
    write_tree(tmp_path, {"proc/cgroups": text})
    result = scrape("cgroups")
    assert result.ok
    assert result.lines == [
        'node_cgroups_cgroups{subsys_name="cpuset"} 47',
        'node_cgroups_cgroups{subsys_name="pids"} 1',
        'node_cgroups_enabled{subsys_name="cpuset"} 1',
        'node_cgroups_enabled{subsys_name="pids"} 0',
    ]


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_cgroups_survives_any_text(text: str) -> None:
    parse_cgroups(text)
