"""Network collectors (group B) on small hand-made trees: filters, kernel format variants, bad input."""

from __future__ import annotations

import os
import socket
import struct
from collections import namedtuple
from pathlib import Path

import pytest

from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.config import ConfigError
from nodeagent.metrics import _netlink
from nodeagent.metrics._netcommon import list_net_devices, parse_go_int, read_attribute
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.netclass import admin_state
from nodeagent.metrics.netdev import address_info, address_scope, legacy_names, parse_proc_net_dev
from nodeagent.metrics.netstat import parse_netstat, parse_snmp6
from nodeagent.metrics.registry import Paths, build_collectors
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.sockstat import parse_sockstat, sockstat_samples
from nodeagent.metrics.softnet import parse_softnet
from nodeagent.metrics.udp_queues import parse_udp_queues


def scrape(root: Path, name: str, **options: object) -> list[str]:
    """Run one collector on a tree rooted at ``root`` (proc/, sys/); return the non-comment lines."""
    paths = Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=root, udev_data=root / "udev")
    values = {f"collector.{name}.{key}": value for key, value in options.items()}
    text = render_text(run_collectors(build_collectors([name], paths, values)))
    return [
        line
        for line in text.splitlines()
        if not line.startswith("#") and not line.startswith("node_scrape_collector_duration")
    ]


def success(lines: list[str], name: str) -> int:
    return int(
        next(
            line for line in lines if line.startswith(f'node_scrape_collector_success{{collector="{name}"}}')
        ).split()[-1]
    )


def bad_input(name: str) -> float:
    value = AGENT_REGISTRY.get_sample_value("nodeagent_collector_parse_errors_total", {"collector": name})
    return value or 0.0


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- netdev ---------------------------------------------------------------------------------------

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
    before = bad_input("netdev")
    devices = parse_proc_net_dev(PROC_NET_DEV)
    assert set(devices) == {"lo", "eth0"}
    assert devices["eth0"]["receive_bytes"] == 1840462
    assert devices["eth0"]["transmit_colls"] == 10
    assert devices["eth0"]["transmit_compressed"] == 12
    assert bad_input("netdev") == before + 3


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


def test_netdev_proc_path_filters_and_names(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/dev", PROC_NET_DEV)
    lines = scrape(tmp_path, "netdev", netlink=False, **{"device-exclude": "^lo$"})
    assert success(lines, "netdev") == 1
    assert 'node_network_receive_errs_total{device="eth0"} 1' in lines
    assert 'node_network_receive_drop_total{device="eth0"} 2' in lines
    assert 'node_network_transmit_carrier_total{device="eth0"} 11' in lines
    assert not any('device="lo"' in line for line in lines)

    lines = scrape(tmp_path, "netdev", netlink=False, **{"device-include": "^lo$"})
    assert {line.split("{")[0] for line in lines if "device=" in line} >= {
        "node_network_receive_bytes_total",
        "node_network_transmit_packets_total",
    }
    assert all('device="lo"' in line for line in lines if "device=" in line)

    detailed = scrape(tmp_path, "netdev", netlink=False, **{"enable-detailed-metrics": True})
    assert 'node_network_receive_errors_total{device="eth0"} 1' in detailed
    assert not any(line.startswith("node_network_receive_errs_total") for line in detailed)


def test_netdev_include_and_exclude_together_is_a_config_error(tmp_path: Path) -> None:
    paths = Paths(procfs=tmp_path, sysfs=tmp_path)
    with pytest.raises(ConfigError):
        build_collectors(
            ["netdev"],
            paths,
            {"collector.netdev.device-include": "eth", "collector.netdev.device-exclude": "lo"},
        )


def test_netdev_label_ifalias_reads_sysfs(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/dev", PROC_NET_DEV)
    write(tmp_path / "sys/devices/virtual/net/eth0/ifalias", "uplink\n")
    (tmp_path / "sys/class/net").mkdir(parents=True)
    os.symlink("../../devices/virtual/net/eth0", tmp_path / "sys/class/net/eth0")
    lines = scrape(tmp_path, "netdev", netlink=False, **{"label-ifalias": True})
    assert 'node_network_receive_errs_total{device="eth0",ifalias="uplink"} 1' in lines
    assert 'node_network_receive_errs_total{device="lo",ifalias=""} 0' in lines


def test_netdev_missing_proc_file_reports_no_data(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "netdev", netlink=False), "netdev") == 0


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


# --- netclass -------------------------------------------------------------------------------------


def make_iface(sys_root: Path, name: str, **attrs: str) -> Path:
    device = sys_root / "devices/virtual/net" / name
    device.mkdir(parents=True)
    for key, value in attrs.items():
        (device / key).write_text(value + "\n")
    (sys_root / "class/net").mkdir(parents=True, exist_ok=True)
    os.symlink(f"../../devices/virtual/net/{name}", sys_root / "class/net" / name)
    return device


def test_netclass_attributes_filters_and_invalid_speed(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"
    make_iface(
        sys_root,
        "eth0",
        operstate="up",
        address="02:00:00:00:00:01",
        broadcast="ff:ff:ff:ff:ff:ff",
        duplex="full",
        flags="0x1003",
        mtu="9000",
        speed="1000",
        carrier_changes="4",
        ifalias="",
    )
    make_iface(sys_root, "veth1", operstate="down", flags="0x1002", speed="-1", mtu="not-a-number")
    make_iface(sys_root, "skipme0", operstate="up")
    write(sys_root / "class/net/bonding_masters", "bond0\n")
    before = bad_input("netclass")

    lines = scrape(tmp_path, "netclass", **{"ignored-devices": "^skip"})
    assert success(lines, "netclass") == 1
    assert 'node_network_up{device="eth0"} 1' in lines
    assert 'node_network_up{device="veth1"} 0' in lines
    assert (
        'node_network_info{address="02:00:00:00:00:01",adminstate="up",broadcast="ff:ff:ff:ff:ff:ff",'
        'device="eth0",duplex="full",ifalias="",operstate="up"} 1'
    ) in lines
    assert (
        'node_network_info{address="",adminstate="down",broadcast="",device="veth1",duplex="",'
        'ifalias="",operstate="down"} 1'
    ) in lines
    assert 'node_network_mtu_bytes{device="eth0"} 9000' in lines
    assert 'node_network_flags{device="eth0"} 4099' in lines
    assert 'node_network_speed_bytes{device="eth0"} 1.25e+08' in lines
    assert 'node_network_speed_bytes{device="veth1"} -125000' in lines  # upstream keeps -1 by default
    assert 'node_network_carrier_changes_total{device="eth0"} 4' in lines
    assert not any('device="skipme0"' in line or 'device="bonding_masters"' in line for line in lines)
    assert not any(line.startswith('node_network_mtu_bytes{device="veth1"}') for line in lines)
    assert not any(line.startswith("node_network_carrier{") for line in lines)  # no file, no sample
    assert bad_input("netclass") >= before + 1

    lines = scrape(tmp_path, "netclass", **{"ignore-invalid-speed": True})
    assert not any(line.startswith('node_network_speed_bytes{device="veth1"}') for line in lines)
    assert any(line.startswith('node_network_up{device="skipme0"}') for line in lines)


def test_netclass_without_class_net_reports_no_data(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "netclass"), "netclass") == 0


def test_sysfs_helpers(tmp_path: Path) -> None:
    assert [parse_go_int(text) for text in ("0", "42", "-1", "0x1003", "010", "0b11", "0o17")] == [
        0,
        42,
        -1,
        4099,
        8,
        3,
        15,
    ]
    for bad in ("", "1.5", "abc", "0x", "9223372036854775808", "1_000"):
        with pytest.raises(ValueError):
            parse_go_int(bad)
    assert admin_state(None) == "unknown" and admin_state(0x1003) == "up" and admin_state(0x1002) == "down"
    (tmp_path / "dir").mkdir()
    write(tmp_path / "value", " 5 \n")
    assert read_attribute(tmp_path / "value") == "5"
    assert read_attribute(tmp_path / "missing") is None
    assert read_attribute(tmp_path / "dir") is None
    with pytest.raises(FileNotFoundError):
        list_net_devices(tmp_path)
    (tmp_path / "class/net").mkdir(parents=True)
    os.symlink("../../nowhere", tmp_path / "class/net/gone0")
    write(tmp_path / "class/net/bonding_masters", "")
    assert list_net_devices(tmp_path) == {}


# --- netstat --------------------------------------------------------------------------------------


def test_netstat_pairs_mismatches_and_snmp6() -> None:
    before = bad_input("netstat")
    text = (
        "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\n"
        "IpExt: InOctets\nTcpExt: 5\n"  # prefix mismatch: resynchronise on the next line
        "TcpExt: A B\nTcpExt: 1\n"  # field count mismatch
        "Udp: InErrors\nUdp: 3\n"
    )
    stats = parse_netstat(text)
    assert stats == {"TcpExt": {"SyncookiesSent": "1", "ListenDrops": "2"}, "Udp": {"InErrors": "3"}}
    assert bad_input("netstat") >= before + 2
    snmp6 = "Ip6InOctets 460\nIcmp6OutMsgs\t8\nUdpLite6InErrors 0\nbogus line here\nNoSix 1\n"
    assert parse_snmp6(snmp6) == {
        "Ip6": {"InOctets": "460"},
        "Icmp6": {"OutMsgs": "8"},
        "UdpLite6": {"InErrors": "0"},
    }


def test_netstat_collector_fields_option_and_optional_snmp6(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/netstat", "TcpExt: ListenDrops TCPTimeouts Other\nTcpExt: 1 2 3\n")
    write(tmp_path / "proc/net/snmp", "Tcp: InErrs MaxConn CurrEstab\nTcp: 4 -1 x\n")
    lines = scrape(tmp_path, "netstat")
    assert success(lines, "netstat") == 1
    assert "node_netstat_TcpExt_ListenDrops 1" in lines
    assert "node_netstat_Tcp_InErrs 4" in lines
    assert not any("Other" in line or "MaxConn" in line or "CurrEstab" in line for line in lines)
    lines = scrape(tmp_path, "netstat", fields="^Tcp_MaxConn$")
    assert [line for line in lines if line.startswith("node_netstat")] == ["node_netstat_Tcp_MaxConn -1"]


def test_netstat_missing_file_fails_the_collector(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/netstat", "TcpExt: A\nTcpExt: 1\n")
    assert success(scrape(tmp_path, "netstat"), "netstat") == 0


# --- sockstat -------------------------------------------------------------------------------------


def test_sockstat_parse_and_mem_bytes() -> None:
    before = bad_input("sockstat")
    stat = parse_sockstat(
        "sockets: used 5\nTCP: inuse 4 orphan 0 mem 3 weird 9\nUDP: inuse\n"
        "RAW: inuse x\nFRAG: inuse 0 memory 0\n"
    )
    assert stat.used == 5
    assert stat.protocols["TCP"] == {"inuse": 4, "orphan": 0, "mem": 3, "weird": 9}
    assert set(stat.protocols) == {"TCP", "FRAG"}
    assert bad_input("sockstat") == before + 2
    samples = {suffix: value for suffix, _, value in sockstat_samples(stat, ipv6=False, page_size=4096)}
    assert samples == {
        "sockets_used": 5,
        "TCP_inuse": 4,
        "TCP_orphan": 0,
        "TCP_mem": 3,
        "TCP_mem_bytes": 12288,
        "FRAG_inuse": 0,
        "FRAG_memory": 0,
    }


def test_sockstat_files_are_each_optional(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "sockstat"), "sockstat") == 0
    write(tmp_path / "proc/net/sockstat6", "TCP6: inuse 17\n")
    lines = scrape(tmp_path, "sockstat")
    assert success(lines, "sockstat") == 1
    assert "node_sockstat_TCP6_inuse 17" in lines


# --- softnet --------------------------------------------------------------------------------------


def test_softnet_columns_by_kernel_version() -> None:
    before = bad_input("softnet")
    text = (
        "0000000a 00000001 00000002 0 0 0 0 0 00000003\n"  # 2.6.23: 9 columns
        "0000000b 0 0 0 0 0 0 0 0 00000004 00000005\n"  # 4.18: flow_limit_count
        "zz 0 0 0 0 0 0 0 0\n"  # malformed: skipped, index still advances
        "0000000c 0 0 0 0 0 0 0 0 0 0 00000006 0000000f 00000000 00000000\n"
    )  # 6.x: backlog, cpu id
    rows = parse_softnet(text)
    assert [(row.cpu, row.processed) for row in rows] == [(0, 10), (1, 11), (15, 12)]
    assert rows[0].cpu_collision == 3 and rows[0].received_rps == 0
    assert rows[1].received_rps == 4 and rows[1].flow_limit_count == 5
    assert rows[2].backlog_len == 6
    assert bad_input("softnet") == before + 1
    assert parse_softnet("1 2 3\n") == []


def test_softnet_collector(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/softnet_stat", "000000ff 00000001 00000002 0 0 0 0 0 0 0 0 7 00000003\n")
    lines = scrape(tmp_path, "softnet")
    assert 'node_softnet_processed_total{cpu="3"} 255' in lines
    assert 'node_softnet_backlog_len{cpu="3"} 7' in lines


# --- udp_queues -----------------------------------------------------------------------------------

UDP_HEADER = "  sl  local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode\n"


def test_udp_queues_sums_sockets_and_skips_bad_lines(tmp_path: Path) -> None:
    before = bad_input("udp_queues")
    text = (
        UDP_HEADER
        + "   0: 00000000:0016 00000000:0000 07 00000015:00000001 00:00000000 00000000 0 0 1 2 ref 0\n"
        + "   1: 00000000:0017 00000000:0000 07 00000001:00000100 00:00000000 00000000 0 0 1 2 ref 0\n"
        + "   2: short line\n"
        + "   3: 00000000:0017 00000000:0000 07 zz:00000100 00:00000000 00000000 0 0 1 2 ref 0\n"
    )
    assert parse_udp_queues(text) == (0x16, 0x101)
    assert bad_input("udp_queues") == before + 2
    write(tmp_path / "proc/net/udp6", text)
    lines = scrape(tmp_path, "udp_queues")
    assert 'node_udp_queues{ip="v6",queue="tx"} 22' in lines
    assert 'node_udp_queues{ip="v6",queue="rx"} 257' in lines
    assert not any('ip="v4"' in line for line in lines)


def test_udp_queues_without_files_reports_no_data(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "udp_queues"), "udp_queues") == 0


# --- conntrack ------------------------------------------------------------------------------------

CONNTRACK_HEADER = (
    "entries searched found new invalid ignore delete delete_list insert insert_failed drop "
    "early_drop icmp_error expect_new expect_create expect_delete search_restart\n"
)


def test_conntrack_sums_cpus_and_handles_old_kernels(tmp_path: Path) -> None:
    write(tmp_path / "proc/sys/net/netfilter/nf_conntrack_count", "12\n")
    write(tmp_path / "proc/sys/net/netfilter/nf_conntrack_max", "262144\n")
    write(
        tmp_path / "proc/net/stat/nf_conntrack",
        CONNTRACK_HEADER
        + "1 0 2 0 3 4 0 0 5 6 7 8 0 0 0 0 9\n"
        + "1 0 2 0 3 4 0 0 5 6 7 8 0 0 0 0\n"  # 16 columns: no search_restart before 2.6.35
        + "1 2 3\n",
    )
    before = bad_input("conntrack")
    lines = scrape(tmp_path, "conntrack")
    assert success(lines, "conntrack") == 1
    assert "node_nf_conntrack_entries 12" in lines
    assert "node_nf_conntrack_entries_limit 262144" in lines
    assert "node_nf_conntrack_stat_found 4" in lines
    assert "node_nf_conntrack_stat_ignore 8" in lines
    assert "node_nf_conntrack_stat_early_drop 16" in lines
    assert "node_nf_conntrack_stat_search_restart 9" in lines
    assert bad_input("conntrack") == before + 1


def test_conntrack_states(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "conntrack"), "conntrack") == 0  # module not loaded
    write(tmp_path / "proc/sys/net/netfilter/nf_conntrack_count", "1\n")
    write(tmp_path / "proc/sys/net/netfilter/nf_conntrack_max", "2\n")
    lines = scrape(tmp_path, "conntrack")  # no stat file: entries exposed, collector failed (as upstream)
    assert success(lines, "conntrack") == 0
    assert "node_nf_conntrack_entries 1" in lines


# --- arp ------------------------------------------------------------------------------------------

ARP = """\
IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         cc:aa:dd:ee:aa:bb     *        eth0
192.168.1.2      0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.1         0x1         0x2         de:ad:be:ef:00:00     *        cni0
garbage
"""


def test_arp_counts_and_filters(tmp_path: Path) -> None:
    write(tmp_path / "proc/net/arp", ARP)
    before = bad_input("arp")
    lines = scrape(tmp_path, "arp")
    assert 'node_arp_entries{device="eth0"} 2' in lines
    assert 'node_arp_entries{device="cni0"} 1' in lines
    assert bad_input("arp") == before + 1
    assert not any("cni0" in line for line in scrape(tmp_path, "arp", **{"device-exclude": "^cni"}))
    only = scrape(tmp_path, "arp", **{"device-include": "^cni"})
    assert [line for line in only if line.startswith("node_arp")] == ['node_arp_entries{device="cni0"} 1']


# --- bonding --------------------------------------------------------------------------------------


def test_bonding_counts_slaves_across_kernel_layouts(tmp_path: Path) -> None:
    net = tmp_path / "sys/class/net"
    write(net / "bonding_masters", "bond0 bond1 ghost\n")
    write(net / "bond0/bonding/slaves", "eth0 eth1 eth2\n")
    write(net / "bond0/lower_eth0/bonding_slave/mii_status", "up\n")
    write(net / "bond0/slave_eth1/bonding_slave/mii_status", "down\n")  # older kernels: slave_ prefix
    write(net / "bond1/bonding/slaves", "\n")
    before = bad_input("bonding")
    lines = scrape(tmp_path, "bonding")
    assert success(lines, "bonding") == 1
    assert 'node_bonding_slaves{master="bond0"} 3' in lines
    assert 'node_bonding_active{master="bond0"} 1' in lines
    assert 'node_bonding_slaves{master="bond1"} 0' in lines
    assert not any("ghost" in line for line in lines)
    assert bad_input("bonding") == before + 2  # eth2 without mii_status, ghost without a directory


def test_bonding_without_module_reports_no_data(tmp_path: Path) -> None:
    assert success(scrape(tmp_path, "bonding"), "bonding") == 0
