"""wifi: wireless interfaces, their access point (BSS) and stations, read over nl80211 (generic netlink).

As upstream (its ``mdlayher/wifi`` reader): every nl80211 interface with a name gets its frequency; the
BSS whose entry carries a status gives ``node_wifi_station_info``; each station of the interface gives
its counters. No nl80211 family (no cfg80211 loaded, the usual server): nothing reported, no error.
``--collector.wifi.fixtures=DIR`` reads upstream's JSON fixtures instead (``interfaces.json``,
``<device>/bss.json``, ``<device>/stationinfo.json``), as its end-to-end test does.

Upstream fails the scrape on a malformed nl80211 answer; here the malformed part is left out.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_str
from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host import gojson
from nodeagent.metrics.host.files import read_optional
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

NL80211_CMD_GET_INTERFACE = 5
NL80211_CMD_GET_STATION = 17
NL80211_CMD_GET_SCAN = 32
NL80211_ATTR_IFINDEX = 3
NL80211_ATTR_IFNAME = 4
NL80211_ATTR_IFTYPE = 5
NL80211_ATTR_MAC = 6
NL80211_ATTR_STA_INFO = 21
NL80211_ATTR_WIPHY_FREQ = 38
NL80211_ATTR_BSS = 47
NL80211_BSS_BSSID = 1
NL80211_BSS_INFORMATION_ELEMENTS = 6
NL80211_BSS_STATUS = 9
STA_INACTIVE_TIME = 1
STA_RX_BYTES = 2
STA_TX_BYTES = 3
STA_SIGNAL = 7
STA_TX_BITRATE = 8
STA_RX_PACKETS = 9
STA_TX_PACKETS = 10
STA_TX_RETRIES = 11
STA_TX_FAILED = 12
STA_RX_BITRATE = 14
STA_CONNECTED_TIME = 16
STA_BEACON_LOSS = 18
STA_RX_BYTES64 = 23
STA_TX_BYTES64 = 24
RATE_INFO_BITRATE = 1
RATE_INFO_BITRATE32 = 5
IE_SSID = 0

# mdlayher/wifi's BSSStatus values
BSS_STATUS_AUTHENTICATED, BSS_STATUS_ASSOCIATED, BSS_STATUS_NOT_ASSOCIATED, BSS_STATUS_IBSS_JOINED = range(4)

NANOSECONDS = 1_000_000_000
# Answers meaning "this interface has no BSS / stations" (an interface gone, a monitor interface).
_ABSENT = frozenset({errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP})


@dataclass
class Interface:
    index: int = 0
    name: str = ""
    type: int = 0
    frequency: int = 0  # MHz
    hardware_address: bytes = b""


@dataclass
class Bss:
    bssid: bytes = b""
    ssid: str = ""
    status: int = 0


@dataclass
class Station:
    hardware_address: bytes = b""
    connected: int = 0  # nanoseconds
    inactive: int = 0  # nanoseconds
    received_bytes: int = 0
    transmitted_bytes: int = 0
    received_packets: int = 0
    transmitted_packets: int = 0
    receive_bitrate: int = 0  # bits per second
    transmit_bitrate: int = 0
    signal: int = 0  # dBm
    transmit_retries: int = 0
    transmit_failed: int = 0
    beacon_loss: int = 0


@dataclass
class Device:
    interface: Interface
    bss: Bss | None = None
    stations: list[Station] = field(default_factory=list)


def mac_text(address: bytes) -> str:
    """Go's net.HardwareAddr.String(): lower-case hex bytes joined by ':'."""
    return ":".join(f"{byte:02x}" for byte in address)


def go_seconds(nanoseconds: int) -> float:
    """Go's time.Duration.Seconds()."""
    whole, rest = divmod(abs(nanoseconds), NANOSECONDS)
    value = whole + rest / 1e9
    return -value if nanoseconds < 0 else value


def mode(status: int) -> str:
    if status in (BSS_STATUS_AUTHENTICATED, BSS_STATUS_ASSOCIATED):
        return "client"
    if status == BSS_STATUS_IBSS_JOINED:
        return "ad-hoc"
    return "unknown"


# --- nl80211 messages (pure) -------------------------------------------------------------------------


def _u32(payload: bytes) -> int:
    return struct.unpack_from("=I", payload)[0] if len(payload) >= 4 else 0


def _u16(payload: bytes) -> int:
    return struct.unpack_from("=H", payload)[0] if len(payload) >= 2 else 0


def _u64(payload: bytes) -> int:
    return struct.unpack_from("=Q", payload)[0] if len(payload) >= 8 else 0


def parse_interface(attrs: bytes) -> Interface:
    interface = Interface()
    for attr_type, payload in _netlink.attributes(attrs):
        if attr_type == NL80211_ATTR_IFINDEX:
            interface.index = _u32(payload)
        elif attr_type == NL80211_ATTR_IFNAME:
            interface.name = _netlink.c_string(payload)
        elif attr_type == NL80211_ATTR_IFTYPE:
            interface.type = _u32(payload)
        elif attr_type == NL80211_ATTR_WIPHY_FREQ:
            interface.frequency = _u32(payload)
        elif attr_type == NL80211_ATTR_MAC:
            interface.hardware_address = payload
    return interface


def _ssid(elements: bytes) -> str:
    """The SSID information element; malformed elements end the search (the SSID stays empty)."""
    offset = 0
    while offset + 2 <= len(elements):
        element_id, length = elements[offset], elements[offset + 1]
        data = elements[offset + 2 : offset + 2 + length]
        if len(data) < length:
            return ""
        if element_id == IE_SSID:
            return data.decode("utf-8", errors="replace")
        offset += 2 + length
    return ""


def parse_bss(answers: Iterable[bytes]) -> Bss | None:
    """The first BSS of a scan dump that carries a status (the one the interface is joined to)."""
    for attrs in answers:
        for attr_type, payload in _netlink.attributes(attrs):
            if attr_type != NL80211_ATTR_BSS:
                continue
            nested = _netlink.attribute_map(payload)
            if NL80211_BSS_STATUS not in nested:
                continue
            return Bss(
                bssid=nested.get(NL80211_BSS_BSSID, b""),
                ssid=_ssid(nested.get(NL80211_BSS_INFORMATION_ELEMENTS, b"")),
                status=_u32(nested[NL80211_BSS_STATUS]),
            )
    return None


def _bitrate(payload: bytes) -> int:
    """rate_info -> bits per second: BITRATE32 (100 kbit/s units), else the 16-bit BITRATE."""
    rate = 0
    for attr_type, value in _netlink.attributes(payload):
        if attr_type == RATE_INFO_BITRATE32:
            rate = _u32(value)
        elif attr_type == RATE_INFO_BITRATE and rate == 0:
            rate = _u16(value)
    return rate * 100 * 1000


def parse_station(attrs: bytes) -> Station | None:
    """One GET_STATION answer; None without station info."""
    address = b""
    for attr_type, payload in _netlink.attributes(attrs):
        if attr_type == NL80211_ATTR_MAC:
            address = payload
        elif attr_type == NL80211_ATTR_STA_INFO:
            station = Station(hardware_address=address)
            rx32 = tx32 = 0
            for info_type, value in _netlink.attributes(payload):
                if info_type == STA_CONNECTED_TIME:
                    station.connected = _u32(value) * NANOSECONDS
                elif info_type == STA_INACTIVE_TIME:
                    station.inactive = _u32(value) * 1_000_000
                elif info_type == STA_RX_BYTES64:
                    station.received_bytes = _u64(value)
                elif info_type == STA_TX_BYTES64:
                    station.transmitted_bytes = _u64(value)
                elif info_type == STA_RX_BYTES:
                    rx32 = _u32(value)
                elif info_type == STA_TX_BYTES:
                    tx32 = _u32(value)
                elif info_type == STA_SIGNAL and value:
                    station.signal = struct.unpack_from("=b", value)[0]
                elif info_type == STA_RX_PACKETS:
                    station.received_packets = _u32(value)
                elif info_type == STA_TX_PACKETS:
                    station.transmitted_packets = _u32(value)
                elif info_type == STA_TX_RETRIES:
                    station.transmit_retries = _u32(value)
                elif info_type == STA_TX_FAILED:
                    station.transmit_failed = _u32(value)
                elif info_type == STA_BEACON_LOSS:
                    station.beacon_loss = _u32(value)
                elif info_type == STA_RX_BITRATE:
                    station.receive_bitrate = _bitrate(value)
                elif info_type == STA_TX_BITRATE:
                    station.transmit_bitrate = _bitrate(value)
            # the 32-bit byte counters only where the kernel sent no 64-bit one
            station.received_bytes = station.received_bytes or rx32
            station.transmitted_bytes = station.transmitted_bytes or tx32
            return station
    return None


def _dump_if_present(
    family: tuple[int, int], command: int, selector: bytes, timeout: float
) -> list[tuple[int, bytes]]:
    """A per-interface dump; none when the kernel says the interface has no such data (as upstream,
    another error fails the scrape)."""
    try:
        return _netlink.genl_dump(family, command, selector, timeout)
    except _netlink.NetlinkError as exc:
        if exc.errno in _ABSENT:
            return []
        raise


def read_nl80211(timeout: float = 5.0) -> list[Device] | None:
    """Interfaces with their BSS and stations; None when the kernel has no nl80211."""
    family = _netlink.genl_family("nl80211", timeout)
    if family is None:
        return None
    devices = []
    for _command, attrs in _netlink.genl_dump(family, NL80211_CMD_GET_INTERFACE, timeout=timeout):
        interface = parse_interface(attrs)
        if not interface.name:
            continue
        device = Device(interface)
        selector = _netlink.encode_attribute(NL80211_ATTR_IFINDEX, struct.pack("=I", interface.index))
        scan = _dump_if_present(family, NL80211_CMD_GET_SCAN, selector, timeout)
        device.bss = parse_bss(attrs for _cmd, attrs in scan)
        stations = _dump_if_present(family, NL80211_CMD_GET_STATION, selector, timeout)
        device.stations = [s for _cmd, attrs in stations if (s := parse_station(attrs)) is not None]
        devices.append(device)
    return devices


# --- upstream's JSON fixtures (pure) --------------------------------------------------------------------


_INTERFACE_JSON = {
    "index": "index",
    "name": "name",
    "type": "type",
    "frequency": "frequency",
    "hardwareaddr": "hardware_address",
}
_BSS_JSON = {"bssid": "bssid", "ssid": "ssid", "status": "status"}
_STATION_JSON = {
    "hardwareaddr": "hardware_address",
    "connected": "connected",
    "inactive": "inactive",
    "receivedbytes": "received_bytes",
    "transmittedbytes": "transmitted_bytes",
    "receivedpackets": "received_packets",
    "transmittedpackets": "transmitted_packets",
    "receivebitrate": "receive_bitrate",
    "transmitbitrate": "transmit_bitrate",
    "signal": "signal",
    "transmitretries": "transmit_retries",
    "transmitfailed": "transmit_failed",
    "beaconloss": "beacon_loss",
}


def parse_interfaces_json(text: str) -> list[Interface]:
    return gojson.decode_list(text, Interface, _INTERFACE_JSON, "interfaces.json")


def parse_bss_json(text: str) -> Bss:
    return gojson.decode_object(text, Bss, _BSS_JSON, "bss.json")


def parse_stations_json(text: str) -> list[Station]:
    return gojson.decode_list(text, Station, _STATION_JSON, "stationinfo.json")


def read_fixtures(directory: str) -> list[Device] | None:
    """Upstream's mock: None without interfaces.json; a device without bss.json or stationinfo.json
    has none. Raises ValueError on malformed JSON (upstream fails the scrape too)."""
    text = read_optional(os.path.join(directory, "interfaces.json"))
    if text is None:
        return None
    devices = []
    for interface in parse_interfaces_json(text):
        if not interface.name:
            continue
        device = Device(interface)
        bss = read_optional(os.path.join(directory, interface.name, "bss.json"))
        if bss is not None:
            device.bss = parse_bss_json(bss)
        stations = read_optional(os.path.join(directory, interface.name, "stationinfo.json"))
        if stations is not None:
            device.stations = parse_stations_json(stations)
        devices.append(device)
    return devices


# --- the collector ------------------------------------------------------------------------------------

# (metric, Station field, is a counter, help, scale)
_STATION_METRICS = (
    ("station_connected_seconds_total", "connected", True, "Seconds the station has been connected."),
    ("station_inactive_seconds", "inactive", False, "Seconds since the station's last activity."),
    (
        "station_receive_bits_per_second",
        "receive_bitrate",
        False,
        "Current receive bitrate in bits per second.",
    ),
    (
        "station_transmit_bits_per_second",
        "transmit_bitrate",
        False,
        "Current transmit bitrate in bits per second.",
    ),
    ("station_receive_bytes_total", "received_bytes", True, "Bytes the station received."),
    ("station_transmit_bytes_total", "transmitted_bytes", True, "Bytes the station sent."),
    ("station_signal_dbm", "signal", False, "Signal strength in dBm."),
    ("station_transmit_retries_total", "transmit_retries", True, "Transmissions the station retried."),
    ("station_transmit_failed_total", "transmit_failed", True, "Transmissions that failed."),
    ("station_beacon_loss_total", "beacon_loss", True, "Beacon losses the station detected."),
    ("station_transmitted_packets_total", "transmitted_packets", True, "Packets the station sent."),
    ("station_received_packets_total", "received_packets", True, "Packets the station received."),
)
_DURATIONS = frozenset({"connected", "inactive"})


@register
class WifiCollector(Collector):
    name = "wifi"
    default_enabled = False
    options = (
        CollectorOption(
            "fixtures", "", "Directory of JSON fixtures to read instead of nl80211 (for tests).", parse_str
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.fixtures = self.opts["fixtures"]

    def collect(self) -> Iterable[Metric]:
        devices = read_fixtures(self.fixtures) if self.fixtures else read_nl80211()
        if devices is None:
            raise NoDataError("no nl80211 on this host")
        frequency = gauge(
            "node_wifi_interface_frequency_hertz", "Frequency the interface operates at, in hertz."
        )
        info = gauge(
            "node_wifi_station_info", "The access point the interface is joined to, as labels; always 1."
        )
        stations = [
            ((counter if is_counter else gauge)(f"node_wifi_{metric}", text), attribute)
            for metric, attribute, is_counter, text in _STATION_METRICS
        ]
        for device in devices:
            name = device.interface.name
            add_sample(frequency, {"device": name}, float(device.interface.frequency) * 1000 * 1000)
            if device.bss is not None:
                labels = {
                    "device": name,
                    "bssid": mac_text(device.bss.bssid),
                    "ssid": device.bss.ssid,
                    "mode": mode(device.bss.status),
                }
                add_sample(info, labels, 1.0)
            for station in device.stations:
                labels = {"device": name, "mac_address": mac_text(station.hardware_address)}
                for family, attribute in stations:
                    value = getattr(station, attribute)
                    add_sample(family, labels, go_seconds(value) if attribute in _DURATIONS else float(value))
        yield frequency
        yield info
        for family, _attribute in stations:
            yield family
