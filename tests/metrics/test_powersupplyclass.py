"""powersupplyclass collector: power supply attributes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_powersupply_values_info_and_ignored_supplies(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            **{
                f"sys/class/power_supply/BAT0/{name}": value
                for name, value in {
                    "type": "Battery\n",
                    "voltage_now": "11660000\n",
                    "temp": "315\n",
                    "capacity": "010\n",
                    "cycle_count": "lots\n",
                    "health": "\n",
                    "model_name": b"LNV\xff\xfe\n",
                    "alarm": "0\n",
                }.items()
            },
            "sys/class/power_supply/AC/type": "Mains\n",
            "sys/class/power_supply/AC/online": "1\n",
        },
    )
    result = scrape("powersupplyclass")
    lines, ok = result.lines, result.ok
    assert ok
    assert 'node_power_supply_voltage_volt{power_supply="BAT0"} 11.66' in lines
    assert 'node_power_supply_temp_celsius{power_supply="BAT0"} 31.5' in lines
    assert 'node_power_supply_capacity{power_supply="BAT0"} 8' in lines  # Go base-0 parsing: octal
    assert not any("cyclecount" in line or "alarm" in line for line in lines)
    assert 'node_power_supply_info{model_name="LNV\ufffd",power_supply="BAT0",type="Battery"} 1' in lines
    lines = scrape("powersupplyclass", ignored_supplies="^BAT").lines
    assert lines == [
        'node_power_supply_info{power_supply="AC",type="Mains"} 1',
        'node_power_supply_online{power_supply="AC"} 1',
    ]
