"""vmstat collector: the selected /proc/vmstat counters, untyped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics._filters import go_regex
from nodeagent.metrics.vmstat import DEFAULT_FIELDS, parse_vmstat
from tests.metrics.conftest import Scraped


def test_vmstat_default_and_custom_fields() -> None:
    text = "nr_free_pages 977769\npgfault 10\npgmajfault 2\noom_kill 0\npswpin 3\npgsteal 4\n"
    default = go_regex(DEFAULT_FIELDS)
    expected = {"pgfault": 10.0, "pgmajfault": 2.0, "oom_kill": 0.0, "pswpin": 3.0}
    assert parse_vmstat(text, default) == (expected, [])
    assert parse_vmstat(text, go_regex("^nr_")) == ({"nr_free_pages": 977769.0}, [])
    assert parse_vmstat(text, None) == ({}, [])


def test_vmstat_reports_malformed_lines() -> None:
    values, skipped = parse_vmstat("pgfault 10\npgpgin\npswpout x\n", go_regex(DEFAULT_FIELDS))
    assert values == {"pgfault": 10.0}
    assert [skip.detail for skip in skipped] == ["pgpgin", "pswpout x"]


def test_vmstat_collector_is_untyped(host_tree: Callable[..., Path], scrape: Callable[..., Scraped]) -> None:
    host_tree({"proc/vmstat": "pgfault 10\n"})
    assert "# TYPE node_vmstat_pgfault untyped\nnode_vmstat_pgfault 10\n" in scrape("vmstat").text
