"""wifi collector: nl80211 answers parsed as upstream's reader does, and upstream's JSON fixture mode."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _netlink
from nodeagent.metrics import wifi as w
from tests.metrics.conftest import Scraped, write_tree

attr = _netlink.encode_attribute


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def test_interface_bss_and_station_messages() -> None:
    interface = w.parse_interface(
        attr(w.NL80211_ATTR_IFINDEX, _u32(3))
        + attr(w.NL80211_ATTR_IFNAME, b"wlp2s0\0")
        + attr(w.NL80211_ATTR_IFTYPE, _u32(2))
        + attr(w.NL80211_ATTR_WIPHY_FREQ, _u32(5180))
    )
    assert (interface.index, interface.name, interface.frequency) == (3, "wlp2s0", 5180)

    elements = bytes([221, 2, 1, 2]) + bytes([0, 4]) + b"home"
    unjoined = attr(w.NL80211_ATTR_BSS, attr(w.NL80211_BSS_BSSID, b"\x01" * 6))
    joined = attr(
        w.NL80211_ATTR_BSS,
        attr(w.NL80211_BSS_BSSID, bytes(range(6)))
        + attr(w.NL80211_BSS_INFORMATION_ELEMENTS, elements)
        + attr(w.NL80211_BSS_STATUS, _u32(w.BSS_STATUS_ASSOCIATED)),
    )
    bss = w.parse_bss([unjoined, joined])
    assert bss is not None
    assert (w.mac_text(bss.bssid), bss.ssid, w.mode(bss.status)) == ("00:01:02:03:04:05", "home", "client")
    assert w.parse_bss([unjoined]) is None
    truncated_ie = attr(
        w.NL80211_ATTR_BSS,
        attr(w.NL80211_BSS_INFORMATION_ELEMENTS, bytes([0, 9]) + b"ab") + attr(w.NL80211_BSS_STATUS, _u32(3)),
    )
    bss = w.parse_bss([truncated_ie])
    assert bss is not None and bss.ssid == "" and w.mode(bss.status) == "ad-hoc"

    info = (
        attr(w.STA_CONNECTED_TIME, _u32(30))
        + attr(w.STA_INACTIVE_TIME, _u32(400))
        + attr(w.STA_RX_BYTES, _u32(7))
        + attr(w.STA_TX_BYTES, _u32(8))
        + attr(w.STA_TX_BYTES64, struct.pack("=Q", 1 << 40))
        + attr(w.STA_SIGNAL, b"\xcc")
        + attr(w.STA_RX_BITRATE, attr(w.RATE_INFO_BITRATE, struct.pack("=H", 65)))
        + attr(w.STA_TX_BITRATE, attr(w.RATE_INFO_BITRATE32, _u32(8667)) + attr(w.RATE_INFO_BITRATE, b"\1\0"))
        + attr(w.STA_BEACON_LOSS, _u32(2))
    )
    station = w.parse_station(
        attr(w.NL80211_ATTR_MAC, b"\xaa\xbb\xcc\xdd\xee\xff") + attr(w.NL80211_ATTR_STA_INFO, info)
    )
    assert station is not None
    assert w.mac_text(station.hardware_address) == "aa:bb:cc:dd:ee:ff"
    assert (w.go_seconds(station.connected), w.go_seconds(station.inactive)) == (30.0, 0.4)
    assert (station.received_bytes, station.transmitted_bytes) == (7, 1 << 40)  # 64-bit wins, 32-bit fallback
    assert (station.signal, station.receive_bitrate, station.transmit_bitrate) == (
        -52,
        6_500_000,
        866_700_000,
    )
    assert w.parse_station(attr(w.NL80211_ATTR_MAC, b"\1" * 6)) is None


def test_fixture_mode_like_upstream(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "f/interfaces.json": '[{"name": "wlan0", "frequency": 2412},'
            ' {"Name": "wlan1", "Frequency": 5180}, {"type": 10}]',
            "f/wlan0/bss.json": '{"ssid": "Example", "bssid": "ABEiM0RV", "status": 3}',
            "f/wlan0/stationinfo.json": '[{"hardwareaddr": "qrvM3e7/", "connected": 1500000000,'
            ' "signal": -40}]',
        },
    )
    result = scrape("wifi", fixtures=str(tmp_path / "f"))
    assert result.ok
    assert 'node_wifi_interface_frequency_hertz{device="wlan1"} 5.18e+09' in result.lines
    assert (
        'node_wifi_station_info{bssid="00:11:22:33:44:55",device="wlan0",mode="ad-hoc",ssid="Example"} 1'
        in (result.lines)
    )
    assert (
        'node_wifi_station_connected_seconds_total{device="wlan0",mac_address="aa:bb:cc:dd:ee:ff"} 1.5'
        in (result.lines)
    )
    assert (
        len([line for line in result.lines if "frequency" in line]) == 2
    )  # the nameless interface is skipped


def test_malformed_fixtures_fail_missing_ones_are_no_data(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    assert not scrape("wifi", fixtures=str(tmp_path / "none")).ok
    for text in ("[", "{}", '[{"signal": "x"}]', '[{"hardwareaddr": "!!"}]'):
        write_tree(tmp_path, {"f/interfaces.json": '[{"name": "wlan0"}]', "f/wlan0/stationinfo.json": text})
        assert not scrape("wifi", fixtures=str(tmp_path / "f")).ok


def test_live_nl80211_absent_or_readable() -> None:
    """This host: without cfg80211 there is no nl80211 family (None, no error); with it, a list."""
    devices = w.read_nl80211()
    assert devices is None or all(device.interface.name for device in devices)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_message_parsers_never_raise(data: bytes) -> None:
    w.parse_interface(data)
    w.parse_bss([data])
    w.parse_station(data)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_json_parsers_raise_only_value_error(text: str) -> None:
    for parse in (w.parse_interfaces_json, w.parse_bss_json, w.parse_stations_json):
        with contextlib.suppress(ValueError):
            parse(text)
