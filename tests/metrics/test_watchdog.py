"""watchdog collector: watchdog attributes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_watchdog_attributes_absent_and_malformed(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            **{
                f"sys/class/watchdog/watchdog0/{name}": value
                for name, value in {
                    "timeout": "60\n",
                    "bootstatus": "0x20\n",
                    "nowayout": "maybe\n",
                    "identity": "iTCO_wdt\n",
                }.items()
            },
        },
    )
    (tmp_path / "sys/class/watchdog/watchdog1").mkdir()
    result = scrape("watchdog")
    lines, ok = result.lines, result.ok
    assert ok and lines == [
        'node_watchdog_bootstatus{name="watchdog0"} 32',
        'node_watchdog_info{identity="",name="watchdog1",options="",pretimeout_governor="",state="",'
        'status=""} 1',
        'node_watchdog_info{identity="iTCO_wdt",name="watchdog0",options="",pretimeout_governor="",state="",'
        'status=""} 1',
        'node_watchdog_timeout_seconds{name="watchdog0"} 60',
    ]
