"""time collector: clock, time zone and clocksources."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_time_reports_clocksources_in_glob_order(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet\n",
            "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
            "sys/devices/system/clocksource/clocksource1/current_clocksource": "x\n",  # unreadable: skipped
        },
    )
    before = time.time()
    result = scrape("time")
    lines, ok = result.lines, result.ok
    assert ok
    assert 'node_time_clocksource_available_info{clocksource="hpet",device="0"} 1' in lines
    assert 'node_time_clocksource_current_info{clocksource="tsc",device="0"} 1' in lines
    assert not any('device="1"' in line for line in lines)
    now = float(next(line for line in lines if line.startswith("node_time_seconds ")).split()[1])
    assert before - 1 <= now <= time.time() + 1
    offset = next(line for line in lines if line.startswith("node_time_zone_offset_seconds"))
    assert f'time_zone="{time.localtime().tm_zone}"' in offset
