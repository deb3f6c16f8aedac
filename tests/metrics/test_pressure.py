"""pressure collector: PSI totals from /proc/pressure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.pressure import parse_psi
from tests.metrics.conftest import Scraped, write_tree


def test_pressure_exports_cpu_some_and_irq_full_only(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    line = "avg10=0.00 avg60=0.00 avg300=0.00 total="
    write_tree(
        tmp_path,
        {
            "proc/pressure/cpu": f"some {line}14036781\nfull {line}5\n",
            "proc/pressure/io": f"some {line}2000000\nfull {line}1000000\n",
            "proc/pressure/memory": f"some {line}0\nfull {line}0\n",
            "proc/pressure/irq": f"full {line}8494\n",
        },
    )
    result = scrape("pressure")
    lines, ok = result.lines, result.ok
    assert ok
    assert lines == [
        "node_pressure_cpu_waiting_seconds_total 14.036781000000001",  # Go divides twice by 1000
        "node_pressure_io_stalled_seconds_total 1",
        "node_pressure_io_waiting_seconds_total 2",
        "node_pressure_irq_stalled_seconds_total 0.008494",
        "node_pressure_memory_stalled_seconds_total 0",
        "node_pressure_memory_waiting_seconds_total 0",
    ]


def test_pressure_without_irq_file_still_reports_the_others(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(tmp_path, {"proc/pressure/cpu": "some avg10=0 avg60=0 avg300=0 total=1000000\n"})
    result = scrape("pressure")
    lines, ok = result.lines, result.ok
    assert ok and lines == ["node_pressure_cpu_waiting_seconds_total 1"]


def test_pressure_line_without_total_is_an_error(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    totals, skipped = parse_psi("some avg10=0.00\n")
    assert totals == {} and [skip.what for skip in skipped] == ["PSI line without total"]
    write_tree(tmp_path, {"proc/pressure/cpu": "some avg10=0.00\n"})
    assert not scrape("pressure").ok
