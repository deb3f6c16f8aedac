"""hwmon collector: sensor files, units, chip names and filters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.metrics import hwmon
from tests.metrics.conftest import Scraped, write_tree


def test_hwmon_file_names_split_as_node_exporter() -> None:
    assert hwmon.split_sensor_file("temp1_crit_alarm") == ("temp", 1, "crit_alarm")
    assert hwmon.split_sensor_file("beep_enable") == ("beep_enable", 0, "")
    assert hwmon.split_sensor_file("in0_input") == ("in", 0, "input")
    assert hwmon.split_sensor_file("1temp") is None
    assert hwmon.clean_name("Core 0 (Package)") == "core_0__package"


def hwmon_tree(root: Path) -> Path:
    sensors = {
        "name": "coretemp\n",
        "temp1_input": "45000\n",
        "temp1_label": "Core 0\n",
        "temp1_max": "x\n",
        "temp2_input": "47000\n",
        "fan1_input": "1200\n",
        "in0_input": "800\n",
        "power1_average": "5000000\n",
        "energy1_input": "2000000\n",
        "curr1_input": "1500\n",
        "humidity1_input": "450000\n",
        "update_interval": "1000\n",
        "beep_enable": "1\n",
        "pwm1": "128\n",
        "name_unused": "x\n",
    }
    chip_dir = "sys/devices/platform/coretemp.0/hwmon/hwmon0"
    files: dict[str, str | bytes] = {f"{chip_dir}/{k}": v for k, v in sensors.items()}
    files["sys/devices/platform/coretemp.0/hwmon/hwmon0/temp3_label"] = b"Bad \xff label\n"
    files["sys/devices/platform/coretemp.0/hwmon/hwmon0/temp3_input"] = "1000\n"
    for n, chip in ((1, "radio0"), (2, "radio1")):  # two chips on one device
        files[f"sys/devices/wifi/phy0/hwmon/hwmon{n}/name"] = f"{chip}\n"
        files[f"sys/devices/wifi/phy0/hwmon/hwmon{n}/temp1_input"] = f"{50000 + n}\n"
    write_tree(root, files)
    (root / "sys/class/hwmon").mkdir(parents=True)
    (root / "sys/class/hwmon/hwmon0").symlink_to("../../devices/platform/coretemp.0/hwmon/hwmon0")
    (root / "sys/devices/platform/coretemp.0/hwmon/hwmon0/device").symlink_to("../..")
    for n in (1, 2):
        (root / f"sys/class/hwmon/hwmon{n}").symlink_to(f"../../devices/wifi/phy0/hwmon/hwmon{n}")
        (root / f"sys/devices/wifi/phy0/hwmon/hwmon{n}/device").symlink_to("../..")
    (root / "sys/class/hwmon/hwmon9").symlink_to("../../devices/gone")  # dangling: skipped
    return root


def test_hwmon_units_names_and_labels(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("hwmon", root=hwmon_tree(tmp_path))
    lines, ok = result.lines, result.ok
    assert ok
    chip = 'chip="platform_coretemp_0"'
    for expected in [
        'node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1',
        f'node_hwmon_temp_celsius{{{chip},sensor="temp1"}} 45',
        f'node_hwmon_sensor_label{{{chip},label="Core 0",sensor="temp1"}} 1',
        f'node_hwmon_sensor_label{{{chip},label="Bad \ufffd label",sensor="temp3"}} 1',
        f'node_hwmon_fan_rpm{{{chip},sensor="fan1"}} 1200',
        f'node_hwmon_in_volts{{{chip},sensor="in0"}} 0.8',
        f'node_hwmon_power_average_watt{{{chip},sensor="power1"}} 5',
        f'node_hwmon_energy_joule_total{{{chip},sensor="energy1"}} 2',
        f'node_hwmon_curr_amps{{{chip},sensor="curr1"}} 1.5',
        f'node_hwmon_humidity{{{chip},sensor="humidity1"}} 0.45',
        f'node_hwmon_update_interval_seconds{{{chip},sensor="update_interval0"}} 1',
        f'node_hwmon_beep_enabled{{{chip},sensor="beep_enable0"}} 1',
        f'node_hwmon_pwm{{{chip},sensor="pwm1"}} 128',
        'node_hwmon_temp_celsius{chip="wifi_phy0_radio0",sensor="temp1"} 50.001',
        'node_hwmon_temp_celsius{chip="wifi_phy0_radio1",sensor="temp1"} 50.002',
    ]:
        assert expected in lines
    assert not any("temp_max" in line for line in lines)  # unparsable value: skipped


def test_hwmon_chip_and_sensor_filters(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    root = hwmon_tree(tmp_path)
    lines = scrape("hwmon", root=root, chip_include="coretemp").lines
    assert lines and all("platform_coretemp_0" in line for line in lines)
    lines = scrape("hwmon", root=root, chip_exclude="coretemp").lines
    assert lines and not any("coretemp" in line.split("chip_name")[0] for line in lines)
    lines = scrape("hwmon", root=root, sensor_exclude="^platform_coretemp_0;temp[12]$").lines
    assert not any('sensor="temp1"' in line and "coretemp" in line for line in lines)
    assert any('sensor="temp3"' in line for line in lines)
    lines = scrape("hwmon", root=root, sensor_include="fan").lines
    assert [line for line in lines if "sensor=" in line] == [
        'node_hwmon_fan_rpm{chip="platform_coretemp_0",sensor="fan1"} 1200'
    ]


def test_hwmon_options_reject_bad_regexps() -> None:
    option = next(o for o in hwmon.HwmonCollector.options if o.name == "chip-include")
    with pytest.raises(ValueError):
        option.parse("(")
