"""ksmd collector: /sys/kernel/mm/ksm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_ksmd_exports_present_files(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/kernel/mm/ksm"
    write_tree(
        tmp_path, {f"{base}/run": "1\n", f"{base}/sleep_millisecs": "20\n", f"{base}/full_scans": "7\n"}
    )
    result = scrape("ksmd")
    assert result.ok
    assert result.lines == ["node_ksmd_full_scans_total 7", "node_ksmd_run 1", "node_ksmd_sleep_seconds 0.02"]


def test_ksmd_unparsable_value_fails_the_collector_only(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(tmp_path, {"sys/kernel/mm/ksm/run": "on\n"})
    assert not scrape("ksmd").ok
