"""hwmon: hardware sensors (temperatures, fans, voltages, power, ...) from <sysfs>/class/hwmon.

Every attribute file ``<type><n>_<property>`` of a chip directory (and of its ``device``
directory) becomes ``node_hwmon_<type>_<property>[_<unit>]{chip, sensor}``, with node_exporter's
unit conversions (milli-degrees to degrees, millivolts to volts, microwatts to watts, ...).

Chip names follow node_exporter so dashboards keep working: ``<bus>_<device>`` from the resolved
``device`` link (e.g. ``platform_coretemp_0``), else the ``name`` attribute, else ``hwmonN``. When
several chips share one device, the ``name`` attribute (or, if that is ambiguous too, the hwmonN
directory name) is appended.

Sensors are filtered with ``chip-include``/``chip-exclude`` (regexps over the chip name) and
``sensor-include``/``sensor-exclude`` (regexps over ``<chip>;<sensor>``, e.g.
``platform_coretemp_0;temp3``), as node_exporter's flags of the same names.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import Labels, add_sample, counter, gauge
from nodeagent.metrics._filters import NameFilter, filter_options
from nodeagent.metrics.host.files import Paths, decode, list_dir, read_attribute_bytes, valid_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.sysfs import class_devices
from nodeagent.metrics.registry import Collector, NoDataError, register

log = logging.getLogger("nodeagent.metrics.hwmon")

_SENSOR_FILE = re.compile(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9:_]")
SENSOR_TYPES = frozenset(
    {
        "vrm",
        "beep_enable",
        "update_interval",
        "in",
        "cpu",
        "fan",
        "pwm",
        "temp",
        "curr",
        "power",
        "energy",
        "humidity",
        "intrusion",
        "freq",
    }
)
_POWER_INTERVALS = ("average_interval", "average_interval_min", "average_interval_max")
_VALUE_LIMIT = 128  # node_exporter reads at most 128 bytes of a sensor attribute

SensorData = dict[str, dict[str, str]]  # sensor ("temp1") -> property ("input", "" for none) -> raw value


@functools.lru_cache(maxsize=4096)
def clean_name(name: str) -> str:
    """Lower case, characters outside [a-z0-9:_] replaced by '_', '_' trimmed at both ends."""
    return _INVALID_NAME_CHARS.sub("_", name.lower()).strip("_")


@functools.lru_cache(maxsize=8192)  # attribute names repeat on every scrape
def split_sensor_file(filename: str) -> tuple[str, int, str] | None:
    """``temp1_crit_alarm`` -> ("temp", 1, "crit_alarm"); ``beep_enable`` -> ("beep_enable", 0, "")."""
    match = _SENSOR_FILE.match(filename)
    if match is None:
        return None
    number = match.group("id")
    try:
        num = int(number) if number else 0
    except ValueError:
        return None
    if num >= 1 << 63:
        return None
    return match.group("type"), num, match.group("property") or ""


def read_sensor_dir(directory: str, data: SensorData) -> None:
    """Add the sensor attributes of one directory to ``data``; unreadable attributes are skipped."""
    for filename in list_dir(directory):
        parts = split_sensor_file(filename)
        if parts is None or parts[0] not in SENSOR_TYPES:
            continue
        try:
            raw = read_attribute_bytes(f"{directory}/{filename}", _VALUE_LIMIT)
        except OSError:
            continue  # write-only attributes, directories named like sensors, flaky drivers
        sensor_type, num, prop = parts
        data.setdefault(valid_text(f"{sensor_type}{num}"), {})[valid_text(prop)] = decode(raw).strip("\n")


def read_chip(directory: str) -> SensorData:
    """The sensor attributes of a chip directory and of its ``device`` directory (which wins)."""
    data: SensorData = {}
    read_sensor_dir(directory, data)
    device = f"{directory}/device"
    if os.path.exists(device):
        read_sensor_dir(device, data)
    return data


def _read_name_file(directory: str) -> str | None:
    try:
        return decode(read_attribute_bytes(f"{directory}/name"))
    except OSError:
        return None


def chip_base_name(directory: str, name_file: str | None = None) -> str:
    """node_exporter's chip name: from the device path, else the name file, else hwmonN.

    ``name_file`` is the content of the ``name`` attribute when the caller has read it already.
    """
    try:
        device_path = os.path.realpath(f"{directory}/device", strict=True)
    except OSError:
        device_path = None
    if device_path is not None:
        prefix, dev_name = os.path.split(device_path)
        dev_type = os.path.basename(prefix.rstrip("/"))
        clean_dev_name, clean_dev_type = clean_name(dev_name), clean_name(dev_type)
        if clean_dev_type and clean_dev_name:
            return f"{clean_dev_type}_{clean_dev_name}"
        if clean_dev_name:
            return clean_dev_name
    name = name_file if name_file is not None else _read_name_file(directory)
    if name and clean_name(name):
        return clean_name(name)
    cleaned = clean_name(os.path.basename(os.path.realpath(directory, strict=True)))
    if cleaned:
        return cleaned
    raise ValueError(f"cannot derive a chip name for {directory}")


@dataclass(frozen=True)
class Chip:
    directory: str
    name: str  # unique chip label value
    human_name: str | None  # cleaned ``name`` attribute: node_hwmon_chip_names' chip_name


_BaseNameCache = dict[tuple[str, str, str | None], str]


def list_chips(paths: Paths, base_names: _BaseNameCache | None = None) -> list[Chip]:
    """The chip directories below <sysfs>/class/hwmon with their unique chip names.

    ``base_names`` caches the device-path part of the name across scrapes, keyed by the class
    link's target: resolving device links costs a syscall per path component.
    """
    try:
        candidates = class_devices(paths, "hwmon")
    except FileNotFoundError:
        raise NoDataError("no /sys/class/hwmon") from None
    found: list[tuple[str, str, str | None]] = []
    for entry, directory in candidates:
        try:
            target = os.readlink(directory)
        except OSError:
            target = None  # a plain directory (or nothing): not cached
        if not os.path.isdir(directory):  # follows the class symlink
            continue
        name_file = _read_name_file(directory)
        key = (entry, target or "", name_file)
        base = base_names.get(key) if base_names is not None and target else None
        if base is None:
            try:
                base = chip_base_name(directory, name_file)
            except (OSError, ValueError) as exc:
                log.warning("skipping hwmon chip", extra={"path": directory, "err": str(exc)})
                continue
            if base_names is not None and target:
                if len(base_names) > 4096:
                    base_names.clear()
                base_names[key] = base
        found.append((directory, base, name_file))
    per_base: dict[str, int] = {}
    per_base_and_name: dict[tuple[str, str], int] = {}
    for _, base, name_file in found:
        name = (name_file or "").strip()
        per_base[base] = per_base.get(base, 0) + 1
        per_base_and_name[(base, name)] = per_base_and_name.get((base, name), 0) + 1
    chips = []
    for directory, base, name_file in found:
        name = (name_file or "").strip()
        chip = base
        if per_base[base] > 1:  # several chips on one device (e.g. a wifi card with one per radio)
            suffix = clean_name(name)
            if not suffix or per_base_and_name[(base, name)] > 1:
                suffix = clean_name(os.path.basename(directory))
            chip = f"{base}_{suffix}"
        chips.append(Chip(directory, chip, clean_name(name_file) or None if name_file else None))
    return chips


class _Families:
    """Metric families by name; the first sample of a series wins (sensors renamed by label may collide)."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        self._series: dict[str, set[tuple[str, ...]]] = {}

    def add(self, name: str, help_text: str, labels: Labels, value: float, kind: str = "gauge") -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = set()
            self.families[name] = (counter if kind == "counter" else gauge)(name, help_text)
        key = tuple(labels.values())
        if key not in series:
            series.add(key)
            add_sample(self.families[name], labels, value)


def _unit_metric(sensor_type: str, element: str, name: str, value: float) -> tuple[str, str, float, str]:
    """(metric name, help, converted value, type) of one sensor element, with node_exporter's units."""
    if sensor_type in ("in", "cpu"):
        return f"{name}_volts", f"Voltage sensor reading ({element}), in volts.", value * 0.001, "gauge"
    if sensor_type == "temp" and element != "type":
        return (
            f"{name}_celsius",
            f"Temperature sensor reading ({element or 'input'}), in degrees Celsius.",
            value * 0.001,
            "gauge",
        )
    if sensor_type == "curr":
        return f"{name}_amps", f"Current sensor reading ({element}), in amperes.", value * 0.001, "gauge"
    if sensor_type == "energy":
        return (
            f"{name}_joule_total",
            f"Energy consumed so far ({element}), in joules.",
            value / 1000000.0,
            "counter",
        )
    if sensor_type == "power" and element == "accuracy":
        return name, "Accuracy of the power meter, as a ratio.", value / 1000000.0, "gauge"
    if sensor_type == "power" and element in _POWER_INTERVALS:
        return (
            f"{name}_seconds",
            f"Power averaging interval ({element}), in seconds.",
            value * 0.001,
            "gauge",
        )
    if sensor_type == "power":
        return f"{name}_watt", f"Power sensor reading ({element}), in watts.", value / 1000000.0, "gauge"
    if sensor_type == "humidity":
        return name, f"Relative humidity ({element}), as a ratio (0-1).", value / 1000000.0, "gauge"
    if sensor_type == "fan" and element in ("input", "min", "max", "target"):
        return f"{name}_rpm", f"Fan speed ({element}), in revolutions per minute.", value, "gauge"
    return name, f"Hardware sensor attribute {sensor_type} {element}.", value, "gauge"


def chip_metrics(
    chip: str, data: SensorData, families: _Families, human_name: str | None, sensor_filter: NameFilter
) -> None:
    """Add the metrics of one chip's sensor data to ``families``."""
    if human_name:
        families.add(
            "node_hwmon_chip_names",
            "Human-readable name of each hwmon chip, value 1.",
            {"chip": chip, "chip_name": human_name},
            1.0,
        )
    for sensor in sorted(data):
        if sensor_filter.ignored(f"{chip};{sensor}"):
            continue
        properties = data[sensor]
        parts = split_sensor_file(sensor)
        if parts is None:
            continue
        sensor_type = parts[0]
        labels = {"chip": chip, "sensor": sensor}
        if "label" in properties:
            families.add(
                "node_hwmon_sensor_label",
                "Label of a hwmon sensor, value 1.",
                {"chip": chip, "sensor": sensor, "label": properties["label"]},
                1.0,
            )
        if sensor_type == "beep_enable":
            families.add(
                "node_hwmon_beep_enabled",
                "1 if the chip's alarm beep is enabled.",
                labels,
                1.0 if properties.get("") == "1" else 0.0,
            )
            continue
        if sensor_type in ("vrm", "update_interval"):
            try:
                value = parse_float(properties.get("", ""))
            except ValueError:
                continue
            if sensor_type == "vrm":
                families.add(
                    "node_hwmon_voltage_regulator_version", "Voltage regulator module version.", labels, value
                )
            else:
                families.add(
                    "node_hwmon_update_interval_seconds",
                    "Sensor update interval, in seconds.",
                    labels,
                    value * 0.001,
                )
            continue
        prefix = f"node_hwmon_{sensor_type}"
        for element in sorted(properties):
            if element == "label":
                continue
            if element == "input":
                name = f"{prefix}_input" if "" in properties else prefix  # input is the reading itself
            elif element:
                name = f"{prefix}_{clean_name(element)}"
            else:
                name = prefix
            try:
                value = parse_float(properties[element])
            except ValueError:
                continue
            if element in ("fault", "alarm"):
                families.add(name, f"Sensor {element} status ({sensor_type}).", labels, value)
                continue
            if element == "beep":
                families.add(f"{name}_enabled", "1 if the sensor's alarm beep is enabled.", labels, value)
                continue
            if sensor_type == "freq" and element == "input":
                if "label" in properties:  # the label (e.g. "sclk") replaces the sensor name
                    families.add(
                        f"{name}_freq_mhz",
                        "Frequency sensor reading (e.g. GPU clocks), in MHz.",
                        {"chip": chip, "sensor": clean_name(properties["label"])},
                        value / 1000000.0,
                    )
                continue
            metric_name, help_text, converted, kind = _unit_metric(sensor_type, element, name, value)
            families.add(metric_name, help_text, labels, converted, kind)


@register
class HwmonCollector(Collector):
    name = "hwmon"
    options = (
        *filter_options("chip", "hwmon chips"),
        *filter_options("sensor", "'<chip>;<sensor>' names"),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self._base_names: _BaseNameCache = {}
        self.chip_filter = NameFilter(options.get("chip-exclude"), options.get("chip-include"))
        self.sensor_filter = NameFilter(options.get("sensor-exclude"), options.get("sensor-include"))

    def collect(self) -> Iterable[Metric]:
        families = _Families()
        for chip in list_chips(self.paths, self._base_names):
            if self.chip_filter.ignored(chip.name):
                continue
            try:
                data = read_chip(chip.directory)
            except OSError as exc:
                log.warning("cannot read hwmon chip", extra={"chip": chip.name, "err": str(exc)})
                continue
            chip_metrics(chip.name, data, families, chip.human_name, self.sensor_filter)
        return list(families.families.values())
