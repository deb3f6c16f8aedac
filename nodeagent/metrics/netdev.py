"""netdev: per-interface traffic counters, node_network_{receive,transmit}_*_total{device}.

Like node_exporter (v1.12) the counters come from rtnetlink by default (``--collector.netdev.netlink``,
default true) and from <procfs>/net/dev with ``netlink=false``. Unless ``enable-detailed-metrics`` is
set, the kernel's detailed error counters are folded into the classic /proc/net/dev names (errs, drop,
fifo, frame, colls, carrier) exactly as upstream does, so dashboards keep working.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import Labels, add_sample, counter, gauge
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.host.files import read_attribute_or_none, read_text, valid_text
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import net_devices
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

# /proc/net/dev columns after the colon, with the key node_exporter gives each.
PROC_NET_DEV_KEYS = (
    "receive_bytes",
    "receive_packets",
    "receive_errors",
    "receive_dropped",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errors",
    "transmit_dropped",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
)

# rtnetlink counter -> node_exporter key.
NETLINK_KEYS = {
    "rx_packets": "receive_packets",
    "tx_packets": "transmit_packets",
    "rx_bytes": "receive_bytes",
    "tx_bytes": "transmit_bytes",
    "rx_errors": "receive_errors",
    "tx_errors": "transmit_errors",
    "rx_dropped": "receive_dropped",
    "tx_dropped": "transmit_dropped",
    "multicast": "multicast",
    "collisions": "collisions",
    "rx_length_errors": "receive_length_errors",
    "rx_over_errors": "receive_over_errors",
    "rx_crc_errors": "receive_crc_errors",
    "rx_frame_errors": "receive_frame_errors",
    "rx_fifo_errors": "receive_fifo_errors",
    "rx_missed_errors": "receive_missed_errors",
    "tx_aborted_errors": "transmit_aborted_errors",
    "tx_carrier_errors": "transmit_carrier_errors",
    "tx_fifo_errors": "transmit_fifo_errors",
    "tx_heartbeat_errors": "transmit_heartbeat_errors",
    "tx_window_errors": "transmit_window_errors",
    "rx_compressed": "receive_compressed",
    "tx_compressed": "transmit_compressed",
    "rx_nohandler": "receive_nohandler",
}

# Classic name <- (detailed counter, detailed counters folded into it), in upstream's order.
_LEGACY_FOLDS = (
    ("receive_errs", "receive_errors", ()),
    ("receive_drop", "receive_dropped", ("receive_missed_errors",)),
    ("receive_fifo", "receive_fifo_errors", ()),
    (
        "receive_frame",
        "receive_frame_errors",
        ("receive_length_errors", "receive_over_errors", "receive_crc_errors"),
    ),
    ("receive_multicast", "multicast", ()),
    ("transmit_errs", "transmit_errors", ()),
    ("transmit_drop", "transmit_dropped", ()),
    ("transmit_fifo", "transmit_fifo_errors", ()),
    ("transmit_colls", "collisions", ()),
    (
        "transmit_carrier",
        "transmit_carrier_errors",
        ("transmit_aborted_errors", "transmit_heartbeat_errors", "transmit_window_errors"),
    ),
)


def legacy_names(stats: dict[str, int]) -> dict[str, int]:
    """Fold detailed counters into the classic names, as node_exporter without detailed metrics."""
    out = dict(stats)
    for classic, main, extras in _LEGACY_FOLDS:
        if main in out:
            out[classic] = out.pop(main) + sum(out.pop(extra, 0) for extra in extras)
    return out


def parse_proc_net_dev(text: str) -> tuple[dict[str, dict[str, int]], list[Skip]]:
    """<procfs>/net/dev -> device -> {key: value}, and the malformed lines skipped."""
    devices: dict[str, dict[str, int]] = {}
    skipped: list[Skip] = []
    for line in text.splitlines()[2:]:
        name, colon, rest = line.rpartition(":")
        name = name.strip()
        fields = rest.split()
        if not colon or not name or len(fields) < len(PROC_NET_DEV_KEYS):
            if line.strip():
                skipped.append(Skip("net/dev line without name and 16 counters", line))
            continue
        try:
            values = parse_uints(fields[: len(PROC_NET_DEV_KEYS)])
        except ValueError:
            skipped.append(Skip("net/dev line with a non-numeric counter", line))
            continue
        devices[name] = dict(zip(PROC_NET_DEV_KEYS, values, strict=True))
    return devices, skipped


def netlink_stats(links: Iterable[tuple[str, dict[str, int] | None]]) -> dict[str, dict[str, int]]:
    """rtnetlink link dump -> device -> {key: value}; links without counters are left out."""
    devices = {}
    for name, stats in links:
        if stats is None:
            continue
        devices[name] = {key: stats.get(field, 0) for field, key in NETLINK_KEYS.items()}
    return devices


def address_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Go's classification used by node_network_address_info's scope label."""
    if address.is_loopback or _is_link_local_unicast(address) or _is_link_local_multicast(address):
        return "link-local"
    if address.version == 6 and address.packed[0] == 0xFF and address.packed[1] & 0x0F == 0x01:
        return "interface-local"
    if _is_global_unicast(address):
        return "global"
    return ""


def _is_link_local_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("169.254.0.0/16")
    return address.packed[0] == 0xFE and address.packed[1] & 0xC0 == 0x80


def _is_link_local_multicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return address.packed[0] == 0xFF and address.packed[1] & 0x0F == 0x02


def _is_global_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        return False
    if _is_link_local_unicast(address):
        return False
    return not (address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"))


def address_info(if_addrs: dict[str, list]) -> list[tuple[str, str, str, str]]:
    """(device, address, netmask length, scope) for every IP address of psutil.net_if_addrs()."""
    rows = []
    for device, addrs in if_addrs.items():
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6) or not addr.netmask:
                continue
            try:
                ip = ipaddress.ip_address(addr.address.split("%", 1)[0])
                prefix = bin(int(ipaddress.ip_address(addr.netmask))).count("1")
            except ValueError:
                continue
            rows.append((valid_text(device), str(ip), str(prefix), address_scope(ip)))
    return rows


@register
class NetdevCollector(Collector):
    name = "netdev"
    options = (
        *filter_options("device", "net devices"),
        CollectorOption(
            "address-info",
            False,
            "Also expose node_network_address_info for every IP address of every device.",
            parse_bool,
        ),
        CollectorOption(
            "enable-detailed-metrics",
            False,
            "Expose the kernel's detailed error counters "
            "under their own (incompatible) names instead of the classic ones.",
            parse_bool,
        ),
        CollectorOption(
            "netlink", True, "Read counters over rtnetlink instead of /proc/net/dev.", parse_bool
        ),
        CollectorOption(
            "label-ifalias", False, "Add an ifalias label (the interface alias from sysfs).", parse_bool
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = exclusive_filter(self.name, self.opts, "device")
        self.use_netlink = parse_bool(self.opts["netlink"])
        self.detailed = parse_bool(self.opts["enable-detailed-metrics"])
        self.address_info = parse_bool(self.opts["address-info"])
        self.label_ifalias = parse_bool(self.opts["label-ifalias"])

    def read_stats(self) -> dict[str, dict[str, int]]:
        if self.use_netlink:
            return netlink_stats(_netlink.dump_links())
        devices, skipped = parse_proc_net_dev(read_text(self.paths.proc("net", "dev")))
        self.report(skipped)
        return devices

    def collect(self) -> Iterable[Metric]:
        stats = self.read_stats()
        aliases = self._aliases() if self.label_ifalias else {}
        families: dict[str, Metric] = {}
        for device, counters in stats.items():
            if self.filter.ignored(device):
                continue
            if not self.detailed:
                counters = legacy_names(counters)
            labels: Labels = {"device": device}
            if self.label_ifalias:
                labels["ifalias"] = aliases.get(device, "")
            for key, value in counters.items():
                family = families.get(key)
                if family is None:
                    family = families[key] = counter(
                        f"node_network_{key}", f"Interface counter {key.replace('_', ' ')}."
                    )
                add_sample(family, labels, float(value))
        yield from families.values()
        if self.address_info:
            yield self._address_info()

    def _aliases(self) -> dict[str, str]:
        try:
            devices = net_devices(self.paths)
        except FileNotFoundError:
            return {}
        return {name: read_attribute_or_none(f"{path}/ifalias") or "" for name, path in devices.items()}

    def _address_info(self) -> Metric:
        import psutil  # only needed with address-info

        family = gauge("node_network_address_info", "IP addresses of each interface; always 1.")
        for device, address, netmask, scope in address_info(psutil.net_if_addrs()):
            add_sample(
                family, {"device": device, "address": address, "netmask": netmask, "scope": scope}, 1.0
            )
        return family
