"""thermal_zone collector: zones and cooling devices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_thermal_zone_skips_incomplete_zones_and_devices(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(
        tmp_path,
        {
            "sys/class/thermal/thermal_zone0/type": "acpitz\n",
            "sys/class/thermal/thermal_zone0/policy": "step_wise\n",
            "sys/class/thermal/thermal_zone0/temp": "-1500\n",
            "sys/class/thermal/thermal_zone1/type": "nopolicy\n",
            "sys/class/thermal/thermal_zone1/temp": "1\n",
            "sys/class/thermal/thermal_zone2/type": "bad\n",
            "sys/class/thermal/thermal_zone2/policy": "x\n",
            "sys/class/thermal/thermal_zone2/temp": "hot\n",
            "sys/class/thermal/cooling_device0/type": "intel_powerclamp\n",
            "sys/class/thermal/cooling_device0/max_state": "50\n",
            "sys/class/thermal/cooling_device0/cur_state": "-1\n",
            "sys/class/thermal/cooling_device1/type": "Fan\n",
        },
    )
    result = scrape("thermal_zone")
    lines, ok = result.lines, result.ok
    assert ok and lines == [
        'node_cooling_device_cur_state{name="0",type="intel_powerclamp"} -1',
        'node_cooling_device_max_state{name="0",type="intel_powerclamp"} 50',
        'node_thermal_zone_temp{type="acpitz",zone="0"} -1.5',
    ]
