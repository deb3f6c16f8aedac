"""powersupplyclass: batteries, AC adapters and USB supplies from <sysfs>/class/power_supply/*/.

Each numeric attribute becomes ``node_power_supply_<name>{power_supply}`` with node_exporter's
names and units (µA, µV, µW, µWh, µAh -> A, V, W, Wh, Ah; tenths of °C -> °C), the text attributes
become labels of ``node_power_supply_info``. Supplies whose name matches ``ignored-supplies`` are
skipped (node_exporter's ``--collector.powersupply.ignored-supplies``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_files, read_attribute
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import class_devices
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

# Numeric attributes by unit divisor; exported under their own name unless renamed below.
_PLAIN = (
    "authentic",
    "calibrate",
    "capacity",
    "capacity_alert_max",
    "capacity_alert_min",
    "cycle_count",
    "online",
    "present",
    "time_to_empty_now",
    "time_to_full_now",
)
_MICRO = (
    "current_boot",
    "current_max",
    "current_now",
    "energy_empty",
    "energy_empty_design",
    "energy_full",
    "energy_full_design",
    "energy_now",
    "voltage_boot",
    "voltage_max",
    "voltage_max_design",
    "voltage_min",
    "voltage_min_design",
    "voltage_now",
    "voltage_ocv",
    "charge_control_limit",
    "charge_control_limit_max",
    "charge_counter",
    "charge_empty",
    "charge_empty_design",
    "charge_full",
    "charge_full_design",
    "charge_now",
    "charge_term_current",
    "constant_charge_current",
    "constant_charge_current_max",
    "constant_charge_voltage",
    "constant_charge_voltage_max",
    "precharge_current",
    "input_current_limit",
    "power_now",
)
_DECI = (
    "temp",
    "temp_alert_max",
    "temp_alert_min",
    "temp_ambient",
    "temp_ambient_max",
    "temp_ambient_min",
    "temp_max",
    "temp_min",
)
_RENAMED = {
    "cycle_count": "cyclecount",
    "time_to_empty_now": "time_to_empty_seconds",
    "time_to_full_now": "time_to_full_seconds",
    "current_now": "current_ampere",
    "energy_now": "energy_watthour",
    "voltage_now": "voltage_volt",
    "charge_now": "charge_ampere",
    "power_now": "power_watt",
}
# attribute file -> (metric name suffix, divisor)
NUMERIC_ATTRIBUTES: dict[str, tuple[str, float]] = {
    **{attr: (_RENAMED.get(attr, attr), 1.0) for attr in _PLAIN},
    **{attr: (_RENAMED.get(attr, attr), 1e6) for attr in _MICRO},
    **{attr: (_RENAMED.get(attr, f"{attr}_celsius"), 10.0) for attr in _DECI},
}
INFO_ATTRIBUTES = (
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
)


def read_power_supply(path: str) -> tuple[dict[str, float], dict[str, str], list[Skip]]:
    """(numeric attributes as metric suffix -> converted value, info label -> text, values skipped) of
    one supply. An attribute that cannot be read (e.g. ENODATA from a battery that is not present) is
    left out; one that cannot be parsed is skipped (node_exporter would fail the whole collector).
    """
    numbers: dict[str, float] = {}
    info: dict[str, str] = {}
    skipped: list[Skip] = []
    for attr in list_files(path):
        is_info = attr in INFO_ATTRIBUTES
        if not is_info and attr not in NUMERIC_ATTRIBUTES:
            continue
        try:
            value = read_attribute(f"{path}/{attr}")
        except OSError:
            continue
        if is_info:
            info[attr] = value
            continue
        name, divisor = NUMERIC_ATTRIBUTES[attr]
        try:
            number = parse_int(value, 0)
        except ValueError:
            skipped.append(Skip(f"power supply {attr}", value))
            continue
        numbers[name] = float(number) if divisor == 1.0 else float(number) / divisor
    return numbers, info, skipped


@register
class PowerSupplyClassCollector(Collector):
    name = "powersupplyclass"
    options = (
        CollectorOption(
            "ignored-supplies",
            "^$",
            "Regexp of power supplies to ignore (node_exporter: --collector.powersupply.ignored-supplies).",
            parse_regex,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.ignored = re.compile(options.get("ignored-supplies", "^$"), re.ASCII)  # Go regexp classes

    def collect(self) -> Iterable[Metric]:
        try:
            supplies = class_devices(self.paths, "power_supply")
        except FileNotFoundError:
            raise NoDataError("no /sys/class/power_supply") from None
        families: dict[str, Metric] = {}
        info_family = gauge(
            "node_power_supply_info", "Text attributes of the power supply as labels, value 1."
        )
        for supply, path in supplies:
            if self.ignored.search(supply):
                continue
            try:
                numbers, info, skipped = read_power_supply(path)
            except OSError as exc:
                self.skip("unreadable power supply", f"{supply}: {exc}")
                continue
            self.report(skipped)
            labels = {"power_supply": supply}
            for name, value in numbers.items():
                family = families.get(name)
                if family is None:
                    family = families[name] = gauge(
                        f"node_power_supply_{name}", f"Power supply attribute {name}."
                    )
                add_sample(family, labels, value)
            info_labels = dict(labels)
            info_labels.update((key, value) for key, value in info.items() if value)
            add_sample(info_family, info_labels, 1.0)
        return [*families.values(), info_family]
