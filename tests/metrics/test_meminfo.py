"""meminfo collector: /proc/meminfo fields node_exporter exports, units and malformed lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.meminfo import parse_meminfo
from tests.metrics.conftest import Scraped


def test_parse_meminfo_units_names_and_bad_lines() -> None:
    text = (
        "MemTotal:        3742148 kB\nActive(anon):    2020004 kB\nHugePages_Total:       4\n"
        "KReclaimable:      100 kB\nMemFree:       lots kB\nDirty: 1 MB\n\nBuffers: 2 kB\n"
    )
    values, skipped = parse_meminfo(text)
    assert values == {
        "MemTotal_bytes": 3742148 * 1024.0,
        "Active_anon_bytes": 2020004 * 1024.0,
        "HugePages_Total": 4.0,
        "Buffers_bytes": 2048.0,
    }
    # KReclaimable is not in node_exporter's set; the two malformed lines are reported, the rest kept
    assert [skip.detail for skip in skipped] == ["MemFree:       lots kB", "Dirty: 1 MB"]


def test_meminfo_collector_counts_parse_errors(
    host_tree: Callable[..., Path], scrape: Callable[..., Scraped]
) -> None:
    host_tree({"proc/meminfo": "MemTotal: 1 kB\nMemFree: ? kB\n"})
    before = _parse_errors.count("meminfo")
    result = scrape("meminfo")
    assert result.ok and result.lines == ["node_memory_MemTotal_bytes 1024"]
    assert _parse_errors.count("meminfo") == before + 1
