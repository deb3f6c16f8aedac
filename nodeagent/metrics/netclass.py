"""netclass: interface properties from <sysfs>/class/net/<iface>/ (node_network_up, info, mtu, speed...).

The sysfs path of node_exporter (its default; the rtnetlink variant behind --collector.netclass.netlink
is not implemented). An attribute the device does not expose, or cannot report right now (reading
``speed`` of a down link fails with EINVAL), is left out, as upstream does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_regex
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_attributes
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import net_devices
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

_TEXT_ATTRIBUTES = ("address", "broadcast", "duplex", "ifalias", "operstate")
_INT_ATTRIBUTES = (
    "addr_assign_type",
    "carrier",
    "carrier_changes",
    "carrier_up_count",
    "carrier_down_count",
    "dev_id",
    "dormant",
    "flags",
    "ifindex",
    "iflink",
    "link_mode",
    "mtu",
    "name_assign_type",
    "netdev_group",
    "speed",
    "tx_queue_len",
    "type",
)
_ATTRIBUTES = _TEXT_ATTRIBUTES + _INT_ATTRIBUTES

# (metric suffix, sysfs attribute, is a counter, help)
_NUMERIC_METRICS = (
    ("address_assign_type", "addr_assign_type", False, "How the hardware address was assigned (sysfs code)."),
    ("carrier", "carrier", False, "1 if the physical link has carrier, else 0."),
    ("carrier_changes_total", "carrier_changes", True, "Times the link carrier changed state."),
    ("carrier_up_changes_total", "carrier_up_count", True, "Times the link carrier came up."),
    ("carrier_down_changes_total", "carrier_down_count", True, "Times the link carrier went down."),
    ("device_id", "dev_id", False, "Device id distinguishing ports that share one hardware address."),
    ("dormant", "dormant", False, "1 if the interface is dormant (RFC 2863), else 0."),
    ("flags", "flags", False, "Interface flags bit mask (IFF_*), as a number."),
    ("iface_id", "ifindex", False, "Interface index."),
    ("iface_link", "iflink", False, "Index of the interface this one is linked to."),
    ("iface_link_mode", "link_mode", False, "Link mode (0 default, 1 dormant)."),
    ("mtu_bytes", "mtu", False, "Maximum transmission unit in bytes."),
    ("name_assign_type", "name_assign_type", False, "How the interface name was assigned (sysfs code)."),
    ("net_dev_group", "netdev_group", False, "Network device group number."),
)
_TAIL_METRICS = (
    ("transmit_queue_length", "tx_queue_len", False, "Transmit queue length in packets."),
    ("protocol_type", "type", False, "Link-layer protocol type (ARPHRD_* code)."),
)

IFF_UP = 0x1


def parse_interface(device: str, raw: dict[str, str]) -> tuple[dict[str, Any], list[Skip]]:
    """The attributes of one interface (name -> text): text ones as str, numeric ones as int (Go's
    ParseInt base 0, as procfs). An unparsable number is left out and returned as skipped."""
    attributes: dict[str, Any] = {name: raw[name] for name in _TEXT_ATTRIBUTES if name in raw}
    skipped: list[Skip] = []
    for name in _INT_ATTRIBUTES:
        value = raw.get(name)
        if value is None:
            continue
        try:
            attributes[name] = parse_int(value, 0)
        except ValueError:
            skipped.append(Skip(f"{device}/{name}: not an integer", value))
    return attributes, skipped


def read_interface(directory: str) -> tuple[dict[str, Any], list[Skip]]:
    """The attributes of one interface directory (absent ones missing), see :func:`parse_interface`."""
    return parse_interface(os.path.basename(directory), read_attributes(directory, _ATTRIBUTES))


def read_net_class(paths: Paths, ignored: re.Pattern[str]) -> tuple[dict[str, dict[str, Any]], list[Skip]]:
    """device -> attributes for every interface below <sysfs>/class/net not matching ``ignored``."""
    interfaces: dict[str, dict[str, Any]] = {}
    skipped: list[Skip] = []
    for name, directory in net_devices(paths).items():
        if not ignored.search(name):
            interfaces[name], bad = read_interface(directory)
            skipped += bad
    return interfaces, skipped


def admin_state(flags: int | None) -> str:
    if flags is None:
        return "unknown"
    return "up" if flags & IFF_UP else "down"


@register
class NetclassCollector(Collector):
    name = "netclass"
    options = (
        CollectorOption(
            "ignored-devices", "^$", "Regexp of net devices to ignore for netclass collector.", parse_regex
        ),
        CollectorOption(
            "ignore-invalid-speed",
            False,
            "Leave out node_network_speed_bytes for devices reporting an invalid (negative) speed.",
            parse_bool,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.ignored = re.compile(self.opts["ignored-devices"], re.ASCII)  # Go regexp classes are ASCII
        self.ignore_invalid_speed = parse_bool(self.opts["ignore-invalid-speed"])

    def collect(self) -> Iterable[Metric]:
        try:
            interfaces, skipped = read_net_class(self.paths, self.ignored)
        except (FileNotFoundError, PermissionError) as exc:
            raise NoDataError(str(exc)) from exc
        self.report(skipped)
        up = gauge("node_network_up", "1 if the interface's operational state is up, else 0.")
        info = gauge("node_network_info", "Interface properties as labels; always 1.")
        numeric = {
            suffix: (counter if is_counter else gauge)(f"node_network_{suffix}", help_text)
            for suffix, _attr, is_counter, help_text in (*_NUMERIC_METRICS, *_TAIL_METRICS)
        }
        speed = gauge("node_network_speed_bytes", "Link speed in bytes per second.")
        for device, attrs in interfaces.items():
            labels = {"device": device}
            operstate = attrs.get("operstate", "")
            add_sample(up, labels, 1.0 if operstate == "up" else 0.0)
            info_labels = {
                "device": device,
                "address": attrs.get("address", ""),
                "broadcast": attrs.get("broadcast", ""),
                "duplex": attrs.get("duplex", ""),
                "operstate": operstate,
                "adminstate": admin_state(attrs.get("flags")),
                "ifalias": attrs.get("ifalias", ""),
            }
            add_sample(info, info_labels, 1.0)
            for suffix, attr, _counter, _help in (*_NUMERIC_METRICS, *_TAIL_METRICS):
                if attr in attrs:
                    add_sample(numeric[suffix], labels, float(attrs[attr]))
            mbit = attrs.get("speed")
            # Some drivers report -1 for an unknown speed.
            if mbit is not None and (mbit >= 0 or not self.ignore_invalid_speed):
                add_sample(speed, labels, float(_go_div(mbit * 1000 * 1000, 8)))
        yield up
        yield info
        yield from numeric.values()
        yield speed


def _go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go (Python's // floors)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b > 0) else -quotient
