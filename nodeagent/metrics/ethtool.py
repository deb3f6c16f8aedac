"""ethtool: driver information, link modes and driver statistics of each network device, read with the
SIOCETHTOOL ioctl (ETHTOOL_GDRVINFO, ETHTOOL_GSET, ETHTOOL_GSTRINGS + ETHTOOL_GSTATS), as upstream.

Devices are the entries of <sysfs>/class/net (regular files such as ``bonding_masters`` aside). Per device:
``node_ethtool_info``; from the legacy ETHTOOL_GSET 32-bit link mode masks, the supported/advertised
speeds, port types, autonegotiation and pause capabilities (``node_network_*``); and each driver statistic
as an untyped ``node_ethtool_<name>`` (name sanitised, ``rx``/``tx`` spelled ``received``/``transmitted``,
seven well-known ones with a ``_total`` suffix), filtered by ``--collector.ethtool.metrics-include``.
Statistic names that collide after sanitising are all left out, as upstream does. A device that does not
support an ethtool operation simply lacks those metrics.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import re
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import add_sample, gauge, untyped
from nodeagent.metrics._filters import NameFilter, go_regex
from nodeagent.metrics.host.files import decode, valid_text
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

SIOCETHTOOL = 0x8946
ETHTOOL_GSET = 0x01
ETHTOOL_GDRVINFO = 0x03
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32
MAX_STATS = 32768  # upstream's library refuses more
IFNAMSIZ = 16

_DRVINFO = struct.Struct("=I32s32s32s32s32s12sIIIII")
_CMD = struct.Struct("=IIIHBBBBBBIIHBBI8x")  # struct ethtool_cmd (legacy ETHTOOL_GSET)

# Link mode bits (include/uapi/linux/ethtool.h) that fit the legacy 32-bit masks, which is all upstream
# reads: bit -> (speed in Mb/s, duplex, PHY).
_SPEEDS = {
    0: (10, "half", "T"),
    1: (10, "full", "T"),
    2: (100, "half", "T"),
    3: (100, "full", "T"),
    4: (1000, "half", "T"),
    5: (1000, "full", "T"),
    12: (10000, "full", "T"),
    17: (1000, "full", "KX"),
    18: (10000, "full", "KX4"),
    19: (10000, "full", "KR"),
    20: (10000, "full", "R_FEC"),
    21: (20000, "full", "MLD2"),
    22: (20000, "full", "KR2"),
    23: (40000, "full", "KR4"),
    24: (40000, "full", "CR4"),
    25: (40000, "full", "SR4"),
    26: (40000, "full", "LR4"),
    27: (56000, "full", "KR4"),
    28: (56000, "full", "CR4"),
    29: (56000, "full", "SR4"),
    30: (56000, "full", "LR4"),
    31: (25000, "full", "CR"),
}
_PORTS = {7: "TP", 8: "AUI", 9: "MII", 10: "FIBRE", 11: "BNC", 16: "Backplane"}
AUTONEG_BIT, PAUSE_BIT, ASYM_PAUSE_BIT = 6, 13, 14

# Statistics with a fixed family name (the others are derived from their name).
_KNOWN_STATS = {
    "rx_bytes": "node_ethtool_received_bytes_total",
    "rx_dropped": "node_ethtool_received_dropped_total",
    "rx_errors": "node_ethtool_received_errors_total",
    "rx_packets": "node_ethtool_received_packets_total",
    "tx_bytes": "node_ethtool_transmitted_bytes_total",
    "tx_errors": "node_ethtool_transmitted_errors_total",
    "tx_packets": "node_ethtool_transmitted_packets_total",
}
_NOT_NAME = re.compile(r"_*[^0-9A-Za-z_]+_*")
_RX = re.compile(r"(^|_)rx(_|$)")
_TX = re.compile(r"(^|_)tx(_|$)")


@dataclass
class DriverInfo:
    driver: str = ""
    version: str = ""
    firmware_version: str = ""
    bus_info: str = ""
    expansion_rom_version: str = ""
    n_stats: int = 0


@dataclass
class LinkInfo:
    supported: int = 0  # link mode bit mask
    advertising: int = 0
    autoneg: int = 0


class EthtoolSource(Protocol):
    """Where the collector gets ethtool data (the ioctl; tests substitute upstream's text fixtures).
    Each method raises OSError (errno EOPNOTSUPP: the device does not support it)."""

    def driver_info(self, device: str) -> DriverInfo: ...
    def link_info(self, device: str) -> LinkInfo: ...
    def stats(self, device: str) -> dict[str, int]: ...


@functools.lru_cache(maxsize=4096)  # statistic names are the same every scrape; bounded for odd drivers
def sanitize(name: str) -> str:
    """node_exporter's SanitizeMetricName: each run of characters outside [0-9A-Za-z_] (with the
    underscores around it) becomes one '_'."""
    return _NOT_NAME.sub("_", name)


@functools.lru_cache(maxsize=4096)
def family_name(stat: str) -> str:
    """A (sanitised) statistic name -> its family: ``port.rx_errors`` -> node_ethtool_port_received_errors."""
    name = sanitize(stat).lower().lstrip("_")
    name = _TX.sub(r"\1transmitted\2", _RX.sub(r"\1received\2", name))
    return f"node_ethtool_{name}"


def _c_string(raw: bytes) -> str:
    return decode(raw.split(b"\0", 1)[0])


def parse_drvinfo(buffer: bytes) -> DriverInfo:
    fields = _DRVINFO.unpack_from(buffer)
    return DriverInfo(
        driver=_c_string(fields[1]),
        version=_c_string(fields[2]),
        firmware_version=_c_string(fields[3]),
        bus_info=_c_string(fields[4]),
        expansion_rom_version=_c_string(fields[5]),
        n_stats=fields[8],
    )


def parse_link_settings(buffer: bytes) -> LinkInfo:
    fields = _CMD.unpack_from(buffer)
    return LinkInfo(supported=fields[1], advertising=fields[2], autoneg=fields[8])


def parse_stats(strings: bytes, values: bytes, count: int) -> dict[str, int]:
    """ETHTOOL_GSTRINGS names and ETHTOOL_GSTATS values -> name -> value (empty names left out; a
    repeated name keeps its last value, as upstream's library)."""
    count = max(0, min(count, (len(values) - 8) // 8))  # never past the buffer
    numbers = struct.unpack_from(f"={count}Q", values, 8) if count else ()
    stats: dict[str, int] = {}
    for index, value in enumerate(numbers):
        name = _c_string(strings[12 + index * ETH_GSTRING_LEN : 12 + (index + 1) * ETH_GSTRING_LEN])
        if name:
            stats[name] = value
    return stats


class IoctlEthtool:
    """The SIOCETHTOOL ioctl on an AF_INET datagram socket (the one upstream's library opens)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def close(self) -> None:
        self._socket.close()

    def _call(self, device: str, request: bytes, size: int) -> bytes:
        name = device.encode("utf-8", errors="surrogateescape")
        if len(name) >= IFNAMSIZ:
            raise OSError(errno.ENODEV, "interface name too long")
        import ctypes  # here, not at startup (~4.5 ms): only this off-by-default collector needs it

        # ifreq carries a pointer to the command buffer, which the kernel fills in place
        buffer = ctypes.create_string_buffer(request, max(size, len(request)))
        ifreq = bytearray(struct.pack(f"{IFNAMSIZ}sP24x", name, ctypes.addressof(buffer)))
        fcntl.ioctl(self._socket.fileno(), SIOCETHTOOL, ifreq)
        return buffer.raw

    def driver_info(self, device: str) -> DriverInfo:
        return parse_drvinfo(self._call(device, struct.pack("=I", ETHTOOL_GDRVINFO), _DRVINFO.size))

    def link_info(self, device: str) -> LinkInfo:
        return parse_link_settings(self._call(device, struct.pack("=I", ETHTOOL_GSET), _CMD.size))

    def stats(self, device: str) -> dict[str, int]:
        count = self.driver_info(device).n_stats
        if count > MAX_STATS:
            raise OSError(errno.E2BIG, f"{count} ethtool statistics, more than {MAX_STATS}")
        strings = self._call(
            device, struct.pack("=III", ETHTOOL_GSTRINGS, ETH_SS_STATS, count), 12 + count * ETH_GSTRING_LEN
        )
        values = self._call(device, struct.pack("=II", ETHTOOL_GSTATS, count), 8 + count * 8)
        return parse_stats(strings, values, count)


def list_devices(paths: Paths) -> list[str]:
    """Names in <sysfs>/class/net that are not regular files, in Go's order."""
    with os.scandir(paths.sys("class", "net")) as entries:
        names = [entry.name for entry in entries if not entry.is_file(follow_symlinks=False)]
    return sorted(names, key=lambda name: name.encode("utf-8", "surrogateescape"))


@register
class EthtoolCollector(Collector):
    name = "ethtool"
    default_enabled = False
    options = (
        CollectorOption("device-include", "", "Regexp of ethtool devices to export.", parse_regex),
        CollectorOption("device-exclude", "", "Regexp of ethtool devices to leave out.", parse_regex),
        CollectorOption("metrics-include", ".*", "Regexp of ethtool statistics to export.", parse_regex),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = NameFilter(self.opts["device-exclude"], self.opts["device-include"])
        self.metrics_include = go_regex(self.opts["metrics-include"])
        self.source: EthtoolSource | None = None  # the ioctl unless a test sets another

    def collect(self) -> Iterable[Metric]:
        try:
            devices = list_devices(self.paths)
        except (FileNotFoundError, PermissionError) as exc:
            raise NoDataError(str(exc)) from exc
        if not devices:
            raise ValueError("no network devices found")
        source = self.source
        own = source is None
        if source is None:
            source = IoctlEthtool()
        try:
            yield from self._families(source, devices)
        finally:
            if own and isinstance(source, IoctlEthtool):
                source.close()

    def _attempt(self, what: str, device: str, call: Any) -> Any:
        """``call(device)``; None when it fails: EOPNOTSUPP silently, other errors reported, as upstream
        logs them (the scrape goes on)."""
        try:
            return call(device)
        except OSError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                self.skip(f"ethtool {what} error", f"{device}: {exc}")
            return None

    def _families(self, source: EthtoolSource, devices: list[str]) -> Iterable[Metric]:
        families: dict[str, Metric] = {}

        def family(name: str, make: Any = gauge) -> Metric:
            found = families.get(name)
            if found is None:
                found = families[name] = make(name, _HELP.get(name, f"Network interface statistic {name}."))
            return found

        for device in devices:
            if self.filter.ignored(device):
                continue
            label = valid_text(device)  # the name as the kernel spelled it opens; the label must be UTF-8
            labels = {"device": label}
            link = self._attempt("link info", device, source.link_info)
            if link is not None:
                self._link_modes(family, label, "supported", link.supported)
                for bit, port in _PORTS.items():
                    if link.supported & (1 << bit):
                        add_sample(
                            family("node_network_supported_port_info"), {"device": label, "type": port}, 1.0
                        )
                self._capabilities(family, labels, "supported", link.supported)
                self._link_modes(family, label, "advertised", link.advertising)
                self._capabilities(family, labels, "advertised", link.advertising)
                add_sample(family("node_network_autonegotiate"), labels, float(link.autoneg))
            info = self._attempt("driver info", device, source.driver_info)
            if info is not None:
                info_labels = {
                    "bus_info": info.bus_info,
                    "device": label,
                    "driver": info.driver,
                    "expansion_rom_version": info.expansion_rom_version,
                    "firmware_version": info.firmware_version,
                    "version": info.version,
                }
                add_sample(family("node_ethtool_info"), info_labels, 1.0)
            stats = self._attempt("stats", device, source.stats)
            for name, value in self.select_stats(stats or {}).items():
                add_sample(family(name, untyped), labels, float(value))
        yield from families.values()

    def select_stats(self, stats: dict[str, int]) -> dict[str, int]:
        """family name -> value of the statistics ``metrics-include`` keeps; names that collide are all
        left out."""
        chosen: dict[str, tuple[str, int] | None] = {}
        for stat, value in stats.items():
            name = sanitize(stat)
            if self.metrics_include is not None and not self.metrics_include.search(name):
                continue
            fq_name = family_name(name)
            if fq_name in chosen:
                chosen[fq_name] = None  # a collision: upstream drops every one of them
            else:
                chosen[fq_name] = (name, value)
        return {
            _KNOWN_STATS.get(entry[0], fq_name): entry[1]
            for fq_name, entry in chosen.items()
            if entry is not None
        }

    @staticmethod
    def _link_modes(family: Any, device: str, prefix: str, modes: int) -> None:
        for bit, (speed, duplex, phy) in _SPEEDS.items():
            if modes & (1 << bit):
                labels = {"device": device, "duplex": duplex, "mode": f"{speed}base{phy}"}
                add_sample(family(f"node_network_{prefix}_speed_bytes"), labels, speed * 125000.0)

    @staticmethod
    def _capabilities(family: Any, labels: dict[str, str], prefix: str, modes: int) -> None:
        for what, bit in (
            ("autonegotiate", AUTONEG_BIT),
            ("pause", PAUSE_BIT),
            ("asymmetricpause", ASYM_PAUSE_BIT),
        ):
            add_sample(family(f"node_network_{what}_{prefix}"), labels, 1.0 if modes & (1 << bit) else 0.0)


_HELP = {
    "node_ethtool_info": "Driver, firmware and bus of the device as labels; always 1.",
    "node_network_supported_port_info": "Port or PHY types the device supports; always 1.",
    "node_network_supported_speed_bytes": "Speeds (bytes per second) and duplex modes the device supports.",
    "node_network_advertised_speed_bytes": "Speeds (bytes/s) and duplex modes the device advertises.",
    "node_network_autonegotiate_supported": "1 if the device supports autonegotiation.",
    "node_network_autonegotiate_advertised": "1 if the device advertises autonegotiation.",
    "node_network_pause_supported": "1 if the device supports pause frames.",
    "node_network_pause_advertised": "1 if the device advertises pause frames.",
    "node_network_asymmetricpause_supported": "1 if the device supports asymmetric pause frames.",
    "node_network_asymmetricpause_advertised": "1 if the device advertises asymmetric pause frames.",
    "node_network_autonegotiate": "1 if the device is using autonegotiation.",
}
