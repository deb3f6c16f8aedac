"""pcidevice: PCI devices from <sysfs>/bus/pci/devices/*: identity (info metric with vendor, device,
class IDs and the parent bridge), PCIe link speed and width, power state, SR-IOV and NUMA node.

With ``--collector.pcidevice.names`` the info metric also carries names from a pci.ids file
(``--collector.pcidevice.idsfile``, else the first of upstream's default paths that opens); an ID the
file does not know is shown as the bare hex ID, as upstream.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_str
from nodeagent.metrics._emit import Labels, add_sample, gauge
from nodeagent.metrics.host.files import Paths, list_dir, read_text
from nodeagent.metrics.host.gonum import parse_float, parse_int, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysread import sys_read_file
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, register

# Where upstream looks for pci.ids when --collector.pcidevice.idsfile is not given (inside the
# exporter's own filesystem, as upstream: not below --path.rootfs).
PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
PCI_IDS_LIMIT = 8 << 20  # the real file is ~1.4 MB
POWER_STATES = ("D0", "D1", "D2", "D3hot", "D3cold", "unknown", "error")
_IDS = ("class", "vendor", "device", "subsystem_vendor", "subsystem_device", "revision")


def parse_location(text: str) -> tuple[int, int, int, int] | None:
    """``0000:00:02.1`` -> (segment, bus, device, function); None when not such a location."""
    parts = text.split(":")
    if len(parts) != 3:
        return None
    device_function = parts[2].split(".")
    if len(device_function) != 2:
        return None
    try:
        values = [parse_int(part, 16) for part in (parts[0], parts[1], *device_function)]
    except ValueError:
        return None
    if any(not -(1 << 31) <= value < (1 << 31) for value in values):
        return None
    return values[0], values[1], values[2], values[3]


def location_labels(location: tuple[int, int, int, int]) -> list[str]:
    segment, bus, device, function = location
    return [f"{segment:04x}", f"{bus:02x}", f"{device:02x}", f"{function:x}"]


@dataclass
class PciDevice:
    location: tuple[int, int, int, int]
    parent: tuple[int, int, int, int] | None
    ids: dict[str, int] = field(default_factory=dict)  # class, vendor, ... -> value
    max_speed: float | None = None  # GT/s
    current_speed: float | None = None
    max_width: float | None = None
    current_width: float | None = None
    numa_node: int | None = None
    sriov: dict[str, int] = field(default_factory=dict)  # drivers_autoprobe, numvfs, totalvfs, vf_total_msix
    d3cold_allowed: bool | None = None
    power_state: str | None = None


def _link_speed(text: str) -> float:
    """``8.0 GT/s PCIe`` -> 8.0; another unit raises ValueError."""
    value, space, unit = text.partition(" ")
    if not space or unit != "GT/s PCIe":
        raise ValueError(f"unknown link speed {text[:60]!r}")
    return parse_float(value.strip())


def parse_pci_device(link_target: str, attributes: dict[str, str]) -> PciDevice:
    """One device from its sysfs link target (``../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0``)
    and its attributes (absent ones missing). Raises ValueError as prometheus/procfs fails a device."""
    location = parse_location(os.path.basename(link_target))
    if location is None:
        raise ValueError(f"invalid device location {link_target[-60:]!r}")
    parent_name = os.path.basename(os.path.dirname(link_target))
    parent = None
    if not parent_name.startswith("pci"):
        parent = parse_location(parent_name)
        if parent is None:
            raise ValueError(f"invalid parent location {parent_name[:60]!r}")
    device = PciDevice(location, parent)
    for name in _IDS:
        if name not in attributes:
            raise ValueError(f"no {name}")
        value = parse_int(attributes[name], 0)
        if not -(1 << 31) <= value < (1 << 31):
            raise ValueError(f"{name} out of range")
        device.ids[name] = value & 0xFFFFFFFF
    for name in ("max_link_speed", "max_link_width", "current_link_speed", "current_link_width", "numa_node"):
        text = attributes.get(name, "")
        if not text or text.startswith("Unknown"):
            continue
        if name == "max_link_speed":
            device.max_speed = _link_speed(text)
        elif name == "current_link_speed":
            device.current_speed = _link_speed(text)
        elif name == "max_link_width":
            device.max_width = float(parse_int(text))
        elif name == "current_link_width":
            device.current_width = float(parse_int(text))
        else:
            node = parse_int(text)
            if not -(1 << 31) <= node < (1 << 31):
                raise ValueError("numa_node out of range")
            device.numa_node = node
    for name in ("sriov_drivers_autoprobe", "sriov_numvfs", "sriov_totalvfs", "sriov_vf_total_msix"):
        text = attributes.get(name, "")
        if not text:
            continue
        if name == "sriov_drivers_autoprobe":
            device.sriov[name] = int(parse_int(text) != 0)
        elif name == "sriov_vf_total_msix":
            device.sriov[name] = parse_uint(text)
        else:
            value = parse_uint(text)
            if value >= 1 << 32:
                raise ValueError(f"{name} out of range")
            device.sriov[name] = value
    for name in ("sriov_offset", "sriov_stride"):  # read and checked upstream, not exported
        if attributes.get(name):
            parse_uint(attributes[name])
    if attributes.get("sriov_vf_device"):
        parse_uint(attributes["sriov_vf_device"], 16)
    if attributes.get("d3cold_allowed"):
        device.d3cold_allowed = parse_int(attributes["d3cold_allowed"]) != 0
    if attributes.get("power_state"):
        device.power_state = attributes["power_state"]
    return device


_ATTRIBUTES = (
    *_IDS,
    "max_link_speed",
    "max_link_width",
    "current_link_speed",
    "current_link_width",
    "numa_node",
    "sriov_drivers_autoprobe",
    "sriov_numvfs",
    "sriov_offset",
    "sriov_stride",
    "sriov_totalvfs",
    "sriov_vf_device",
    "sriov_vf_total_msix",
    "d3cold_allowed",
    "power_state",
)


def read_device_attributes(directory: str) -> dict[str, str]:
    """The device's attributes that exist, as prometheus/procfs reads them (128 bytes, trimmed).
    Other errors than absence raise OSError, as upstream."""
    attributes = {}
    for name in _ATTRIBUTES:
        try:
            attributes[name] = sys_read_file(f"{directory}/{name}")
        except FileNotFoundError:
            continue
    return attributes


@dataclass
class PciIds:
    """What a pci.ids file names: vendors, devices per vendor, subsystems per vendor:device, and the
    class hierarchy (class, class+subclass, class+subclass+prog-if), keys lower-case hex as in the file."""

    vendors: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)
    subsystems: dict[str, dict[str, str]] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    subclasses: dict[str, str] = field(default_factory=dict)
    prog_ifs: dict[str, str] = field(default_factory=dict)

    def vendor(self, vendor_id: str) -> str:
        key = vendor_id.removeprefix("0x").lower()
        return self.vendors.get(key, key)

    def device(self, vendor_id: str, device_id: str) -> str:
        vendor, device = vendor_id.removeprefix("0x").lower(), device_id.removeprefix("0x").lower()
        return self.devices.get(vendor, {}).get(device, device)

    def subsystem(self, vendor_id: str, device_id: str, sub_vendor_id: str, sub_device_id: str) -> str:
        key = f"{vendor_id.removeprefix('0x')}:{device_id.removeprefix('0x')}"
        sub_device = sub_device_id.removeprefix("0x")
        sub_key = f"{sub_vendor_id.removeprefix('0x')}:{sub_device}"
        return self.subsystems.get(key, {}).get(sub_key, sub_device)

    def class_name(self, class_id: str) -> str:
        key = class_id.removeprefix("0x").lower()
        for table, width in ((self.prog_ifs, 6), (self.subclasses, 4), (self.classes, 2)):
            if len(key) >= width and key[:width] in table:
                return table[key[:width]]
        return f"Unknown class ({key})"


def _split_name(line: str) -> tuple[str, str] | None:
    """``8086  Intel Corporation`` -> ("8086", "Intel Corporation"): ID and name are separated by two
    spaces."""
    head, sep, name = line.partition("  ")
    if not sep:
        return None
    return head.strip(), name.strip()


def parse_pci_ids(text: str) -> PciIds:
    """The pci.ids format as node_exporter reads it: vendors at column 0, devices after one tab,
    subsystems (``vendor device  name``) after two; ``C xx  name`` starts the class section, where
    one tab is a subclass and two a programming interface."""
    ids = PciIds()
    vendor = device = base_class = subclass = ""
    in_classes = False
    for line in text.split("\n"):
        line = line.removesuffix("\r")  # bufio.Scanner drops a CR before the newline
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            entry = _split_name(line)
            if entry:
                base_class = entry[0][1:].strip()
                ids.classes[base_class] = entry[1]
                in_classes = True
            continue
        tabs = 2 if line.startswith("\t\t") else 1 if line.startswith("\t") else 0
        if in_classes and tabs == 1:
            entry = _split_name(line[1:])
            if entry and base_class:
                subclass = base_class + entry[0]
                ids.subclasses[subclass] = entry[1]
            continue
        if in_classes and tabs == 2 and not line.startswith("\t\t\t"):
            entry = _split_name(line[2:])
            if entry and subclass:
                ids.prog_ifs[subclass + entry[0]] = entry[1]
            continue
        if tabs == 0:
            entry = _split_name(line)
            if entry:
                vendor, device, in_classes = entry[0], "", False
                ids.vendors[vendor] = entry[1]
            continue
        if tabs == 1:
            entry = _split_name(line[1:])
            if entry and vendor:
                device = entry[0]
                ids.devices.setdefault(vendor, {})[device] = entry[1]
            continue
        entry = _split_name(line[2:])
        if entry and vendor and device:
            table = ids.subsystems.setdefault(f"{vendor}:{device}", {})
            sub_ids = entry[0].split()
            if len(sub_ids) == 2:
                table[f"{sub_ids[0]}:{sub_ids[1]}"] = entry[1]
    return ids


@register
class PcideviceCollector(Collector):
    name = "pcidevice"
    default_enabled = False
    options = (
        CollectorOption("idsfile", "", "pci.ids file for --collector.pcidevice.names.", parse_str),
        CollectorOption(
            "names",
            False,
            "Add vendor, device, subsystem and class names (from pci.ids) to pcidevice_info.",
            parse_bool,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.names = parse_bool(self.opts["names"])
        self._ids: PciIds | None = None

    def pci_ids(self) -> PciIds:
        """Loaded once, on the first scrape (upstream loads it at startup); an unreadable file gives
        no names (IDs are shown), as upstream."""
        if self._ids is None:
            candidates = (self.opts["idsfile"],) if self.opts["idsfile"] else PCI_IDS_PATHS
            self._ids = PciIds()
            for path in candidates:
                try:
                    self._ids = parse_pci_ids(read_text(path, PCI_IDS_LIMIT))
                    break
                except OSError:
                    continue
        return self._ids

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.sys("bus", "pci", "devices")
        try:
            names = list_dir(directory)
        except FileNotFoundError:
            raise NoDataError("no PCI bus in sysfs") from None
        devices: dict[tuple[int, int, int, int], PciDevice] = {}
        skipped: list[Skip] = []
        for name in names:
            path = f"{directory}/{name}"
            try:
                device = parse_pci_device(os.readlink(path), read_device_attributes(path))
            except (OSError, ValueError) as exc:
                skipped.append(Skip("pcidevice: unreadable device", f"{name}: {exc}"))
                continue
            devices[device.location] = device
        self.report(skipped)
        return self._families(devices.values())

    def _families(self, devices: Iterable[PciDevice]) -> list[Metric]:
        info = gauge("node_pcidevice_info", "PCI device identity in labels; the value is always 1.")
        max_speed = gauge(
            "node_pcidevice_max_link_transfers_per_second",
            "Maximum link speed, in transfers per second (-1: unknown).",
        )
        max_width = gauge("node_pcidevice_max_link_width", "Maximum link width, in lanes (-1: unknown).")
        speed = gauge(
            "node_pcidevice_current_link_transfers_per_second",
            "Current link speed, in transfers per second (-1: unknown).",
        )
        width = gauge("node_pcidevice_current_link_width", "Current link width, in lanes (-1: unknown).")
        d3cold = gauge(
            "node_pcidevice_d3cold_allowed",
            "Whether the device may enter the D3cold power state (1) or not (0).",
        )
        autoprobe = gauge(
            "node_pcidevice_sriov_drivers_autoprobe",
            "Whether SR-IOV virtual functions are bound to drivers automatically.",
        )
        numvfs = gauge("node_pcidevice_sriov_numvfs", "SR-IOV virtual functions enabled.")
        totalvfs = gauge("node_pcidevice_sriov_totalvfs", "SR-IOV virtual functions the device supports.")
        msix = gauge(
            "node_pcidevice_sriov_vf_total_msix", "MSI-X vectors available to SR-IOV virtual functions."
        )
        power = gauge(
            "node_pcidevice_power_state",
            "Device power state: 1 for the current one of D0, D1, D2, D3hot, D3cold, unknown, error.",
        )
        numa = gauge("node_pcidevice_numa_node", "NUMA node of the device.")
        ids = self.pci_ids() if self.names else None
        for device in devices:
            where = location_labels(device.location)
            labels: Labels = dict(zip(("segment", "bus", "device", "function"), where, strict=True))
            parent = location_labels(device.parent) if device.parent else ["*", "*", "*", "*"]
            class_id = f"0x{device.ids['class']:06x}"
            vendor_id = f"0x{device.ids['vendor']:04x}"
            device_id = f"0x{device.ids['device']:04x}"
            sub_vendor_id = f"0x{device.ids['subsystem_vendor']:04x}"
            sub_device_id = f"0x{device.ids['subsystem_device']:04x}"
            info_labels = {
                **labels,
                **dict(
                    zip(
                        ("parent_segment", "parent_bus", "parent_device", "parent_function"),
                        parent,
                        strict=True,
                    )
                ),
                "class_id": class_id,
                "vendor_id": vendor_id,
                "device_id": device_id,
                "subsystem_vendor_id": sub_vendor_id,
                "subsystem_device_id": sub_device_id,
                "revision": f"0x{device.ids['revision']:02x}",
            }
            if ids is not None:
                info_labels["vendor_name"] = ids.vendor(vendor_id)
                info_labels["device_name"] = ids.device(vendor_id, device_id)
                info_labels["subsystem_vendor_name"] = ids.vendor(sub_vendor_id)
                info_labels["subsystem_device_name"] = ids.subsystem(
                    vendor_id, device_id, sub_vendor_id, sub_device_id
                )
                info_labels["class_name"] = ids.class_name(class_id)
            add_sample(info, info_labels, 1.0)
            add_sample(max_speed, labels, device.max_speed * 1e9 if device.max_speed is not None else -1.0)
            add_sample(max_width, labels, device.max_width if device.max_width is not None else -1.0)
            add_sample(
                speed, labels, device.current_speed * 1e9 if device.current_speed is not None else -1.0
            )
            add_sample(width, labels, device.current_width if device.current_width is not None else -1.0)
            add_sample(d3cold, labels, float(bool(device.d3cold_allowed)))
            add_sample(autoprobe, labels, float(device.sriov.get("sriov_drivers_autoprobe", 0)))
            add_sample(numvfs, labels, float(device.sriov.get("sriov_numvfs", 0)))
            add_sample(totalvfs, labels, float(device.sriov.get("sriov_totalvfs", 0)))
            add_sample(msix, labels, float(device.sriov.get("sriov_vf_total_msix", 0)))
            if device.power_state is not None:
                for state in POWER_STATES:
                    add_sample(power, {**labels, "state": state}, float(state == device.power_state))
            if device.numa_node is not None and device.numa_node != -1:
                add_sample(numa, labels, float(device.numa_node))
        return [
            info,
            max_speed,
            max_width,
            speed,
            width,
            d3cold,
            autoprobe,
            numvfs,
            totalvfs,
            msix,
            power,
            numa,
        ]
