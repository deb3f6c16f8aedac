"""kernel_hung collector: /proc/sys/kernel/hung_task_detect_count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_kernel_hung_count(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/sys/kernel/hung_task_detect_count": "3\n"})
    result = scrape("kernel_hung")
    assert result.ok and result.lines == ["node_kernel_hung_tasks_total 3"]


def test_kernel_hung_absent_is_no_data(scrape: Callable[..., Scraped]) -> None:
    result = scrape("kernel_hung")  # upstream's ErrNoData: success 0, nothing else, no error logged
    assert not result.ok and result.lines == []


def test_kernel_hung_unparsable_fails_the_collector_only(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(tmp_path, {"proc/sys/kernel/hung_task_detect_count": "-1\n"})
    assert not scrape("kernel_hung").ok
