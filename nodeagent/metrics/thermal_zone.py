"""thermal_zone: thermal zone temperatures and cooling device states from <sysfs>/class/thermal.

node_thermal_zone_temp{zone, type} from thermal_zone*/ (millidegrees -> degrees Celsius) and
node_cooling_device_{cur,max}_state{name, type} from cooling_device*/. A zone or device whose
attributes cannot be read (drivers return ENODATA/EAGAIN/EINVAL for sensors that are off) is
skipped, as node_exporter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import Paths, read_attribute, read_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import numbered_entries
from nodeagent.metrics.registry import Collector, NoDataError, register


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


def read_thermal_zones(paths: Paths) -> tuple[list[ThermalZone], list[Skip]]:
    """Zones whose attributes can be read (drivers of sensors that are off fail the read: left out),
    and the zones with an unparsable temperature."""
    zones = []
    skipped: list[Skip] = []
    for zone, path in numbered_entries(paths.sys("class", "thermal"), "thermal_zone"):
        try:
            zone_type = read_attribute(f"{path}/type")
            read_attribute(
                f"{path}/policy"
            )  # required by node_exporter: a zone without a governor is skipped
            temp = read_int(f"{path}/temp")
        except OSError:
            continue
        except ValueError as exc:
            skipped.append(Skip("thermal zone temperature", f"{zone}: {exc}"))
            continue
        zones.append(ThermalZone(zone, zone_type, temp))
    return zones, skipped


def read_cooling_devices(paths: Paths) -> tuple[list[CoolingDevice], list[Skip]]:
    """Cooling devices whose attributes can be read, and those with unparsable states."""
    devices = []
    skipped: list[Skip] = []
    for name, path in numbered_entries(paths.sys("class", "thermal"), "cooling_device"):
        try:
            max_state = read_int(f"{path}/max_state")
            cur_state = read_int(f"{path}/cur_state")  # -1 is valid (intel_powerclamp)
            device = CoolingDevice(name, read_attribute(f"{path}/type"), max_state, cur_state)
        except OSError:
            continue
        except ValueError as exc:
            skipped.append(Skip("cooling device state", f"{name}: {exc}"))
            continue
        devices.append(device)
    return devices, skipped


@register
class ThermalZoneCollector(Collector):
    name = "thermal_zone"

    def collect(self) -> Iterable[Metric]:
        if not os.path.isdir(self.paths.sys("class", "thermal")):
            raise NoDataError("no /sys/class/thermal")
        temp = gauge("node_thermal_zone_temp", "Thermal zone temperature, in degrees Celsius.")
        zones, skipped = read_thermal_zones(self.paths)
        self.report(skipped)
        for zone in zones:
            add_sample(temp, {"zone": zone.zone, "type": zone.type}, zone.temp_millicelsius / 1000.0)
        cur = gauge("node_cooling_device_cur_state", "Current throttle state of the cooling device.")
        top = gauge("node_cooling_device_max_state", "Highest throttle state of the cooling device.")
        devices, skipped = read_cooling_devices(self.paths)
        self.report(skipped)
        for device in devices:
            labels = {"name": device.name, "type": device.type}
            add_sample(cur, labels, float(device.cur_state))
            add_sample(top, labels, float(device.max_state))
        return [temp, cur, top]
