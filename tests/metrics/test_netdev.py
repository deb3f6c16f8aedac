"""netdev collector: /proc/net/dev and rtnetlink counters, classic names, filters, ifalias."""

from __future__ import annotations

import os
import socket
import struct
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.config import ConfigError
from nodeagent.metrics import _netlink, _parse_errors
from nodeagent.metrics.netdev import address_info, address_scope, legacy_names, parse_proc_net_dev
from nodeagent.metrics.registry import build_collectors
from tests.metrics.conftest import Scraped, tree_paths, write_tree

PROC_NET_DEV = """\
Inter-| Receive | Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier cmp
    lo: 3293 31 0 0 0 0 0 0 3293 31 0 0 0 0 0 0
  eth0: 1840462 5355 1 2 3 4 5 6 362881 4433 7 8 9 10 11 12
broken line without colon
  eth1: 1 2 3
  eth2: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x
"""


def test_proc_net_dev_parses_counters_and_skips_malformed_lines() -> None:
    devices, skipped = parse_proc_net_dev(PROC_NET_DEV)
    assert set(devices) == {"lo", "eth0"}
    assert devices["eth0"]["receive_bytes"] == 1840462
    assert devices["eth0"]["transmit_colls"] == 10
    assert devices["eth0"]["transmit_compressed"] == 12
    assert len(skipped) == 3


def test_legacy_names_fold_detailed_error_counters_like_upstream() -> None:
    stats = {
        "receive_errors": 1,
        "receive_dropped": 2,
        "receive_missed_errors": 3,
        "receive_frame_errors": 4,
        "receive_length_errors": 5,
        "receive_over_errors": 6,
        "receive_crc_errors": 7,
        "receive_fifo_errors": 8,
        "multicast": 9,
        "collisions": 10,
        "transmit_carrier_errors": 11,
        "transmit_aborted_errors": 12,
        "transmit_heartbeat_errors": 13,
        "transmit_window_errors": 14,
        "receive_nohandler": 15,
    }
    folded = legacy_names(stats)
    assert folded == {
        "receive_errs": 1,
        "receive_drop": 5,
        "receive_frame": 22,
        "receive_fifo": 8,
        "receive_multicast": 9,
        "transmit_colls": 10,
        "transmit_carrier": 50,
        "receive_nohandler": 15,
    }


def test_netdev_proc_path_filters_and_names(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/dev": PROC_NET_DEV})
    before = _parse_errors.count("netdev")
    result = scrape("netdev", netlink=False, device_exclude="^lo$")
    lines = result.lines
    assert result.ok
    assert _parse_errors.count("netdev") == before + 3  # the collector reports what its parser skipped
    assert 'node_network_receive_errs_total{device="eth0"} 1' in lines
    assert 'node_network_receive_drop_total{device="eth0"} 2' in lines
    assert 'node_network_transmit_carrier_total{device="eth0"} 11' in lines
    assert not any('device="lo"' in line for line in lines)

    result = scrape("netdev", netlink=False, device_include="^lo$")
    lines = result.lines
    assert {line.split("{")[0] for line in lines if "device=" in line} >= {
        "node_network_receive_bytes_total",
        "node_network_transmit_packets_total",
    }
    assert all('device="lo"' in line for line in lines if "device=" in line)

    detailed = scrape("netdev", netlink=False, enable_detailed_metrics=True).lines
    assert 'node_network_receive_errors_total{device="eth0"} 1' in detailed
    assert not any(line.startswith("node_network_receive_errs_total") for line in detailed)


def test_netdev_include_and_exclude_together_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        build_collectors(
            ["netdev"],
            tree_paths(tmp_path),
            {"collector.netdev.device-include": "eth", "collector.netdev.device-exclude": "lo"},
        )


def test_netdev_label_ifalias_reads_sysfs(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/dev": PROC_NET_DEV, "sys/devices/virtual/net/eth0/ifalias": "uplink\n"})
    (tmp_path / "sys/class/net").mkdir(parents=True)
    os.symlink("../../devices/virtual/net/eth0", tmp_path / "sys/class/net/eth0")
    result = scrape("netdev", netlink=False, label_ifalias=True)
    lines = result.lines
    assert 'node_network_receive_errs_total{device="eth0",ifalias="uplink"} 1' in lines
    assert 'node_network_receive_errs_total{device="lo",ifalias=""} 0' in lines


def test_netdev_missing_proc_file_reports_no_data(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("netdev", netlink=False).ok


def test_netdev_netlink_sees_loopback() -> None:
    """The default path asks the kernel; every network namespace has lo."""
    links = dict(_netlink.dump_links())
    assert "lo" in links
    assert links["lo"] is not None and links["lo"]["rx_packets"] >= 0


def _attr(attr_type: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, attr_type) + payload + b"\0" * ((-length) % 4)


def _message(msg_type: int, body: bytes, seq: int = 1) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), msg_type, 2, seq, 0) + body


def test_netlink_dump_parsing_handles_stats64_stats32_and_errors() -> None:
    ifinfo = struct.pack("=BxHiII", 0, 1, 7, 0, 0)
    stats64 = struct.pack("=24Q", *range(1, 25))  # rx_packets=1 ... rx_nohandler=24
    stats32 = struct.pack("=23I", *range(101, 124))  # an old kernel: no rx_nohandler
    first = _message(
        _netlink.RTM_NEWLINK,
        ifinfo + _attr(_netlink.IFLA_IFNAME, b"eth0\0") + _attr(_netlink.IFLA_STATS64, stats64),
    )
    second = _message(
        _netlink.RTM_NEWLINK,
        ifinfo + _attr(_netlink.IFLA_IFNAME, b"old0\0") + _attr(_netlink.IFLA_STATS, stats32),
    )
    nameless = _message(_netlink.RTM_NEWLINK, ifinfo)
    other_seq = _message(_netlink.RTM_NEWLINK, ifinfo + _attr(_netlink.IFLA_IFNAME, b"x\0"), seq=9)
    links, done = _netlink.parse_dump(
        [first + second + nameless + other_seq, _message(_netlink.NLMSG_DONE, b"\0" * 4)], seq=1
    )
    assert done
    by_name = dict(links)
    assert set(by_name) == {"eth0", "old0"}
    assert by_name["eth0"]["rx_packets"] == 1 and by_name["eth0"]["rx_nohandler"] == 24
    assert by_name["old0"]["tx_compressed"] == 123 and by_name["old0"]["rx_nohandler"] == 0

    link = _netlink.parse_link_message(ifinfo + _attr(_netlink.IFLA_IFNAME, b"e\xfft\xfe0\0"))
    assert link == ("e\ufffdt\ufffd0", None)  # invalid UTF-8 in a name: U+FFFD, as node_exporter >= 1.10

    error = _message(_netlink.NLMSG_ERROR, struct.pack("=i", -13) + b"\0" * 16)
    with pytest.raises(_netlink.NetlinkError):
        _netlink.parse_dump([error], seq=1)
    with pytest.raises(_netlink.NetlinkError):
        _netlink.parse_dump([struct.pack("=IHHII", 400, 16, 0, 1, 0)], seq=1)


Addr = namedtuple("Addr", "family address netmask broadcast ptp")


def test_address_info_scopes_as_go() -> None:
    import ipaddress

    cases = {
        "127.0.0.1": "link-local",
        "10.1.2.3": "global",
        "169.254.1.1": "link-local",
        "224.0.0.5": "link-local",
        "239.1.1.1": "",
        "fe80::1": "link-local",
        "ff01::1": "interface-local",
        "ff02::1": "link-local",
        "2001:db8::1": "global",
        "::1": "link-local",
        "0.0.0.0": "",
    }
    for text, scope in cases.items():
        assert address_scope(ipaddress.ip_address(text)) == scope, text
    rows = address_info(
        {
            "eth0": [
                Addr(socket.AF_INET, "10.0.0.5", "255.255.255.0", None, None),
                Addr(socket.AF_INET6, "fe80::1%eth0", "ffff:ffff:ffff:ffff::", None, None),
                Addr(socket.AF_PACKET, "02:00:00:00:00:01", None, None, None),
            ]
        }
    )
    assert rows == [("eth0", "10.0.0.5", "24", "global"), ("eth0", "fe80::1", "64", "link-local")]
