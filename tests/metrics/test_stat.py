"""stat collector: the system-wide totals of /proc/stat and softirqs per vector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics._proc_stat import parse_stat_totals
from tests.metrics.conftest import Scraped
from tests.metrics.test_cpu import STAT


def test_stat_softirq_only_when_asked(host_tree: Callable[..., Path], scrape: Callable[..., Scraped]) -> None:
    host_tree({"proc/stat": STAT})
    lines = scrape("stat").lines
    assert "node_intr_total 1234" in lines and "node_forks_total 26442" in lines
    assert "node_boot_time_seconds 1.418183276e+09" in lines and "node_procs_running 2" in lines
    assert not any(line.startswith("node_softirqs_total") for line in lines)
    lines = scrape("stat", softirq=True).lines
    assert 'node_softirqs_total{vector="block_iopoll"} 0' in lines
    assert 'node_softirqs_total{vector="rcu"} 508444' in lines


def test_stat_skips_a_malformed_counter_and_keeps_the_rest() -> None:
    totals, skipped = parse_stat_totals("intr x 1 2\nctxt 5\nprocs_blocked\n")
    assert totals.interrupts is None and totals.context_switches == 5.0 and totals.procs_blocked is None
    assert [skip.what for skip in skipped] == ["intr line"]
