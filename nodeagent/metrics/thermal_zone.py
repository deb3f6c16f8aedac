"""thermal_zone: thermal zone temperatures and cooling device states from <sysfs>/class/thermal.

node_thermal_zone_temp{zone, type} from thermal_zone*/ (millidegrees -> degrees Celsius) and
node_cooling_device_{cur,max}_state{name, type} from cooling_device*/. A zone or device whose
attributes cannot be read (drivers return ENODATA/EAGAIN/EINVAL for sensors that are off) is
skipped, as node_exporter does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._sysfs_attrs import go_parse_int, numbered_entries, read_attr
from nodeagent.metrics.registry import Collector, NoDataError, register

log = logging.getLogger("nodeagent.metrics.thermal_zone")


@dataclass(frozen=True)
class ThermalZone:
    zone: str
    type: str
    temp_millicelsius: int


@dataclass(frozen=True)
class CoolingDevice:
    name: str
    type: str
    max_state: int
    cur_state: int


def read_thermal_zones(sysfs: str | Path) -> list[ThermalZone]:
    zones = []
    for zone, path in numbered_entries(f"{sysfs}/class/thermal", "thermal_zone"):
        try:
            zone_type = read_attr(f"{path}/type")
            read_attr(f"{path}/policy")  # required by node_exporter: a zone without a governor is skipped
            temp = go_parse_int(read_attr(f"{path}/temp"))
        except (OSError, ValueError) as exc:
            log.debug("skipping thermal zone", extra={"zone": zone, "err": str(exc)})
            continue
        zones.append(ThermalZone(zone, zone_type, temp))
    return zones


def read_cooling_devices(sysfs: str | Path) -> list[CoolingDevice]:
    devices = []
    for name, path in numbered_entries(f"{sysfs}/class/thermal", "cooling_device"):
        try:
            max_state = go_parse_int(read_attr(f"{path}/max_state"))
            cur_state = go_parse_int(read_attr(f"{path}/cur_state"))  # -1 is valid (intel_powerclamp)
            device = CoolingDevice(name, read_attr(f"{path}/type"), max_state, cur_state)
        except (OSError, ValueError) as exc:
            log.debug("skipping cooling device", extra={"device": name, "err": str(exc)})
            continue
        devices.append(device)
    return devices


@register
class ThermalZoneCollector(Collector):
    name = "thermal_zone"

    def collect(self) -> Iterable[Metric]:
        if not os.path.isdir(self.paths.sys("class", "thermal")):
            raise NoDataError("no /sys/class/thermal")
        temp = GaugeMetricFamily(
            "node_thermal_zone_temp", "Thermal zone temperature, in degrees Celsius.", labels=["zone", "type"]
        )
        for zone in read_thermal_zones(self.paths.sysfs):
            temp.add_metric([zone.zone, zone.type], zone.temp_millicelsius / 1000.0)
        cur = GaugeMetricFamily(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device.",
            labels=["name", "type"],
        )
        top = GaugeMetricFamily(
            "node_cooling_device_max_state",
            "Highest throttle state of the cooling device.",
            labels=["name", "type"],
        )
        for device in read_cooling_devices(self.paths.sysfs):
            cur.add_metric([device.name, device.type], float(device.cur_state))
            top.add_metric([device.name, device.type], float(device.max_state))
        return [temp, cur, top]
