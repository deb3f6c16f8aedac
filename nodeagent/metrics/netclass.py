"""netclass: interface properties from <sysfs>/class/net/<iface>/ (node_network_up, info, mtu, speed...).

Two sources, as node_exporter 1.12: sysfs (the default), or with --collector.netclass.netlink an
rtnetlink link dump plus ethtool's netlink link modes (speed, duplex), and sysfs only for the three
attributes netlink lacks (addr_assign_type, dev_id, name_assign_type). Both fill one attribute dict per
device, keyed by sysfs attribute name, and share the emission below. Upstream's netlink mode differs on
purpose: node_network_info has no ``adminstate`` label, ``dormant`` repeats the link mode, flags are the
full ifi_flags (with IFF_LOWER_UP...), speed is ethtool's unsigned value (unknown speed is 2^32-1 Mb/s),
duplex is mdlayher/ethtool's ("Full", "Half", "Unknown"), node_network_altnames_info lists alternative
names, and --collector.netclass_rtnl.with-stats adds the interface counters (as gauges, as upstream).
An attribute the device does not expose, or cannot report right now (reading ``speed`` of a down link
fails with EINVAL), is left out, as upstream does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_regex
from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_attributes
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import net_devices
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, log, register

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
# The attributes netlink does not carry: node_exporter reads these three from sysfs in netlink mode
# (they take a per-device lock, not the RTNL lock).
_SYSFS_ONLY = ("addr_assign_type", "dev_id", "name_assign_type")
# mdlayher/ethtool's names of the ETHTOOL_A_LINKMODES_DUPLEX codes (Go's stringer for other values).
_DUPLEX = {0: "Half", 1: "Full", 255: "Unknown"}
# (metric, rtnl_link_stats64 field) of --collector.netclass_rtnl.with-stats, in upstream's order.
_STATS_METRICS = (
    ("receive_packets_total", "rx_packets"),
    ("transmit_packets_total", "tx_packets"),
    ("receive_bytes_total", "rx_bytes"),
    ("transmit_bytes_total", "tx_bytes"),
    ("receive_errors_total", "rx_errors"),
    ("transmit_errors_total", "tx_errors"),
    ("receive_dropped_total", "rx_dropped"),
    ("transmit_dropped_total", "tx_dropped"),
    ("multicast_total", "multicast"),
    ("collisions_total", "collisions"),
    ("receive_length_errors_total", "rx_length_errors"),
    ("receive_over_errors_total", "rx_over_errors"),
    ("receive_crc_errors_total", "rx_crc_errors"),
    ("receive_frame_errors_total", "rx_frame_errors"),
    ("receive_fifo_errors_total", "rx_fifo_errors"),
    ("receive_missed_errors_total", "rx_missed_errors"),
    ("transmit_aborted_errors_total", "tx_aborted_errors"),
    ("transmit_carrier_errors_total", "tx_carrier_errors"),
    ("transmit_fifo_errors_total", "tx_fifo_errors"),
    ("transmit_heartbeat_errors_total", "tx_heartbeat_errors"),
    ("transmit_window_errors_total", "tx_window_errors"),
    ("receive_compressed_total", "rx_compressed"),
    ("transmit_compressed_total", "tx_compressed"),
    ("receive_nohandler_total", "rx_nohandler"),
)


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


def netlink_interface(link: dict[str, Any]) -> dict[str, Any]:
    """One link of :func:`_netlink.dump_link_attributes` as node_exporter's netlink mode reports it:
    ``dormant`` is the link mode, ``iflink`` the device itself when IFLA_LINK is absent or 0, duplex
    empty until ethtool says otherwise."""
    attrs = dict(link)
    attrs.setdefault("ifalias", "")
    attrs["duplex"] = ""
    if "link_mode" in attrs:
        attrs["dormant"] = attrs["link_mode"]
    if not attrs.get("iflink"):
        attrs["iflink"] = attrs["ifindex"]
    return attrs


def duplex_name(code: int) -> str:
    return _DUPLEX.get(code, f"Duplex({code})")


def read_net_class_netlink(
    paths: Paths, ignored: re.Pattern[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, int], list[Skip]]:
    """(device -> attributes, device -> speed in bytes/s, skips) over rtnetlink and ethtool netlink."""
    modes = _netlink.ethtool_link_modes()
    speeds: dict[str, int] = {}
    duplexes: dict[str, str] = {}
    if modes is None:
        log.info("ETHTOOL netlink interface unavailable, duplex and linkspeed are not scraped.")
    else:
        for device, mbit, duplex in modes:
            if not ignored.search(device):
                speeds[device] = mbit * 1000 * 1000 // 8  # Go: int(uint32) Mb/s, never negative
                duplexes[device] = duplex_name(duplex)
    interfaces: dict[str, dict[str, Any]] = {}
    skipped: list[Skip] = []
    directories = net_devices(paths)
    for link in _netlink.dump_link_attributes():
        device = str(link["name"])
        if ignored.search(device):
            continue
        attrs = netlink_interface(link)
        if device in duplexes:
            attrs["duplex"] = duplexes[device]
        if device in directories:
            raw = read_attributes(directories[device], _SYSFS_ONLY)
            from_sysfs, bad = parse_interface(device, raw)
            attrs.update(from_sysfs)
            skipped += bad
        interfaces[device] = attrs
    return interfaces, speeds, skipped


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
        CollectorOption(
            "netlink",
            False,
            "Read interfaces over rtnetlink and ethtool netlink instead of sysfs.",
            parse_bool,
        ),
        CollectorOption(
            "with-stats",
            False,
            "With --collector.netclass.netlink: also expose each interface's counters.",
            parse_bool,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.ignored = re.compile(self.opts["ignored-devices"], re.ASCII)  # Go regexp classes are ASCII
        self.ignore_invalid_speed = parse_bool(self.opts["ignore-invalid-speed"])
        self.netlink = parse_bool(self.opts.get("netlink", False))
        self.with_stats = parse_bool(self.opts.get("with-stats", False))

    def collect(self) -> Iterable[Metric]:
        if self.netlink:
            interfaces, speeds, skipped = read_net_class_netlink(self.paths, self.ignored)
            self.report(skipped)
            return self._emit(interfaces, speeds)
        try:
            interfaces, skipped = read_net_class(self.paths, self.ignored)
        except (FileNotFoundError, PermissionError) as exc:
            raise NoDataError(str(exc)) from exc
        self.report(skipped)
        speeds = {}
        for device, attrs in interfaces.items():
            mbit = attrs.get("speed")
            # Some drivers report -1 for an unknown speed.
            if mbit is not None and (mbit >= 0 or not self.ignore_invalid_speed):
                speeds[device] = _go_div(mbit * 1000 * 1000, 8)
        return self._emit(interfaces, speeds)

    def _emit(self, interfaces: dict[str, dict[str, Any]], speeds: dict[str, int]) -> list[Metric]:
        """The families of both modes: the netlink mode drops ``adminstate`` from node_network_info and
        adds altnames and, with ``with-stats``, the counters."""
        netlink = self.netlink
        up = gauge("node_network_up", "1 if the interface's operational state is up, else 0.")
        info = gauge("node_network_info", "Interface properties as labels; always 1.")
        numeric = {
            suffix: (counter if is_counter else gauge)(f"node_network_{suffix}", help_text)
            for suffix, _attr, is_counter, help_text in (*_NUMERIC_METRICS, *_TAIL_METRICS)
        }
        speed = gauge("node_network_speed_bytes", "Link speed in bytes per second.")
        altnames = gauge(
            "node_network_altnames_info", "Alternative names of an interface as labels; always 1."
        )
        stats = {
            suffix: gauge(f"node_network_{suffix}", f"Interface counter {field} (rtnetlink).")
            for suffix, field in _STATS_METRICS
        }
        for device, value in speeds.items():
            add_sample(speed, {"device": device}, float(value))
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
                "ifalias": attrs.get("ifalias", ""),
            }
            if not netlink:
                info_labels["adminstate"] = admin_state(attrs.get("flags"))
            add_sample(info, info_labels, 1.0)
            for altname in attrs.get("altnames", ()):
                if altname:
                    add_sample(altnames, {"altname": altname, "device": device}, 1.0)
            for suffix, attr, _counter, _help in (*_NUMERIC_METRICS, *_TAIL_METRICS):
                if attr in attrs:
                    add_sample(numeric[suffix], labels, float(attrs[attr]))
            counters = attrs.get("stats")
            if self.with_stats and counters is not None:
                for suffix, field in _STATS_METRICS:
                    add_sample(stats[suffix], labels, float(counters[field]))
        families = [up, info, *numeric.values(), speed]
        if netlink:
            families.append(altnames)
            families += stats.values()
        return families


def _go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go (Python's // floors)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b > 0) else -quotient
