"""timex collector: adjtimex(2) values in node_exporter's units."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from nodeagent.metrics import timex
from tests.metrics.conftest import Scraped


def test_timex_conversion_follows_node_exporter_units() -> None:
    fake = SimpleNamespace(
        offset=1500,
        freq=655360,
        maxerror=16000000,
        esterror=16000000,
        status=0x2000 | 1,
        constant=2,
        tick=10000,
        ppsfreq=65536,
        jitter=3000,
        shift=4,
        stabil=65536 * 2,
        jitcnt=1,
        calcnt=2,
        errcnt=3,
        stbcnt=4,
        tai=37,
    )
    values = {name: value for name, _, _, value in timex.timex_metrics(fake, 0)}
    assert values["node_timex_offset_seconds"] == 1500 / 1e9  # STA_NANO: nanoseconds
    assert values["node_timex_pps_jitter_seconds"] == 3000 / 1e9
    assert values["node_timex_frequency_adjustment_ratio"] == 1 + 10 / 1e6
    assert values["node_timex_maxerror_seconds"] == 16.0
    assert values["node_timex_tick_seconds"] == 0.01
    assert values["node_timex_pps_frequency_hertz"] == 1 / 1e6
    assert values["node_timex_pps_stability_hertz"] == 2 / 1e6
    assert values["node_timex_status"] == float(0x2001)
    assert values["node_timex_tai_offset_seconds"] == 37
    assert values["node_timex_sync_status"] == 1
    assert {name: value for name, _, _, value in timex.timex_metrics(fake, timex.TIME_ERROR)}[
        "node_timex_sync_status"
    ] == 0
    micro = SimpleNamespace(**{**vars(fake), "status": 0})
    assert {name: value for name, _, _, value in timex.timex_metrics(micro, 0)}[
        "node_timex_offset_seconds"
    ] == 1500 / 1e6


def test_timex_reads_this_hosts_clock(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("timex")
    lines, ok = result.lines, result.ok
    assert ok, "adjtimex(2) with modes=0 needs no privilege"
    assert any(line.startswith("node_timex_tick_seconds ") for line in lines)
    assert sum(line.startswith("node_timex_") for line in lines) == 17
