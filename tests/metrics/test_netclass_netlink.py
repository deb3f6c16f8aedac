"""netclass's netlink mode (--collector.netclass.netlink): the node_network_* families over rtnetlink and
ethtool netlink, compared with the sysfs mode on this host's live interfaces and checked in a fresh
network namespace with a veth pair."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _netlink
from nodeagent.metrics._promtext import ParsedFamily, parse_text
from nodeagent.metrics.netclass import duplex_name, netlink_interface
from tests.metrics.conftest import scrape_tree
from tests.metrics.netns import run_in_netns

HOST = Path("/")
# Families whose value is the same property read both ways (flags differ on purpose: netlink's are the
# full ifi_flags; dormant is the link mode upstream; carrier is unreadable in sysfs on a down link).
SAME_VALUES = (
    "node_network_up",
    "node_network_mtu_bytes",
    "node_network_iface_id",
    "node_network_protocol_type",
    "node_network_transmit_queue_length",
    "node_network_net_dev_group",
    "node_network_address_assign_type",
    "node_network_name_assign_type",
    "node_network_device_id",
    "node_network_carrier_changes_total",
)


def families(text: str) -> dict[str, ParsedFamily]:
    return {name: family for name, family in parse_text(text).items() if name.startswith("node_network_")}


def by_device(family: ParsedFamily) -> dict[str, float]:
    return {series.labels["device"]: series.value for series in family.series}


def test_live_interfaces_netlink_mode_matches_sysfs_mode() -> None:
    sysfs = scrape_tree(HOST, "netclass")
    netlink = scrape_tree(HOST, "netclass", netlink=True)
    assert sysfs.ok and netlink.ok
    old, new = families(sysfs.text), families(netlink.text)
    # Every sysfs family has its netlink twin with the same type and labels (info: no adminstate).
    for name, family in old.items():
        assert name in new, name
        assert new[name].type == family.type, name
        old_labels = {frozenset(s.labels) for s in family.series}
        new_labels = {frozenset(s.labels) for s in new[name].series}
        if name == "node_network_info":
            old_labels = {labels - {"adminstate"} for labels in old_labels}
        if new_labels:
            assert new_labels == old_labels, name
    assert set(new) - set(old) <= {"node_network_altnames_info", "node_network_speed_bytes"}
    devices = set(by_device(old["node_network_up"])) & set(by_device(new["node_network_up"]))
    assert "lo" in devices
    for name in SAME_VALUES:
        if name not in old:
            continue
        before, after = by_device(old[name]), by_device(new[name])
        for device in devices & set(before) & set(after):
            if name == "node_network_carrier_changes_total" and before[device] != after[device]:
                continue  # a link flapping between the two reads
            assert before[device] == after[device], (name, device)
    info_old = {s.labels["device"]: s.labels for s in old["node_network_info"].series}
    info_new = {s.labels["device"]: s.labels for s in new["node_network_info"].series}
    for device in devices:
        for label in ("address", "broadcast", "operstate", "ifalias"):
            assert info_old[device][label] == info_new[device][label], (device, label)
    assert not any(name.startswith("node_network_receive_") for name in new)  # with-stats is off


def test_veth_in_a_fresh_namespace() -> None:
    script = """
import socket
from pathlib import Path
from tests.metrics.conftest import scrape_tree
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"x", ("127.0.0.1", 9))  # one packet through lo for the counters
print(scrape_tree(Path("/"), "netclass", netlink=True, with_stats=True, ignored_devices="^vc$").text)
"""
    setup = [
        ["ip", "link", "add", "va", "mtu", "1400", "type", "veth", "peer", "name", "vb"],
        ["ip", "link", "add", "vc", "type", "veth", "peer", "name", "vd"],
        ["ip", "link", "set", "va", "address", "02:00:00:00:00:0a", "alias", "uplink one"],
        ["ip", "link", "property", "add", "dev", "va", "altname", "va-alt"],
        ["ip", "link", "set", "va", "up"],
        ["ip", "link", "set", "vb", "up"],
    ]
    out = run_in_netns(setup, script)
    lines = out.splitlines()
    assert 'node_scrape_collector_success{collector="netclass"} 1' in lines
    assert 'node_network_up{device="va"} 1' in lines
    assert 'node_network_up{device="vd"} 0' in lines
    assert 'node_network_mtu_bytes{device="va"} 1400' in lines
    assert (
        'node_network_info{address="02:00:00:00:00:0a",broadcast="ff:ff:ff:ff:ff:ff",device="va",'
        'duplex="Full",ifalias="uplink one",operstate="up"} 1'
    ) in lines
    assert 'node_network_info{address="00:00:00:00:00:00",broadcast="00:00:00:00:00:00",device="lo",' in out
    assert 'node_network_altnames_info{altname="va-alt",device="va"} 1' in lines
    assert 'node_network_speed_bytes{device="va"} 1.25e+09' in lines  # veth reports 10000 Mb/s
    assert 'node_network_protocol_type{device="lo"} 772' in lines
    assert 'node_network_carrier{device="va"} 1' in lines
    # vb is va's peer: IFLA_LINK names it; lo has none and reports itself.
    index = {
        line.split('"')[1]: line.split()[-1] for line in lines if line.startswith("node_network_iface_id{")
    }
    assert f'node_network_iface_link{{device="va"}} {index["vb"]}' in lines
    assert f'node_network_iface_link{{device="lo"}} {index["lo"]}' in lines
    assert "# TYPE node_network_receive_packets_total gauge" in lines  # upstream's type for the stats
    sent = [
        line.split()[-1]
        for line in lines
        if line.startswith('node_network_transmit_packets_total{device="lo"}')
    ]
    assert len(sent) == 1 and float(sent[0]) >= 1  # the datagram (and the port-unreachable answer)
    assert not any('device="vc"' in line for line in lines)


def _link_message(index: int, attrs: list[tuple[int, bytes]]) -> bytes:
    header = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, index, 0x1003, 0)
    return header + b"".join(_netlink.encode_attribute(kind, payload) for kind, payload in attrs)


def test_parse_link_attributes_decodes_rtm_newlink() -> None:
    altnames = _netlink.encode_attribute(_netlink.IFLA_ALT_IFNAME, b"alt0\0")
    body = _link_message(
        7,
        [
            (_netlink.IFLA_IFNAME, b"eth7\0"),
            (_netlink.IFLA_MTU, struct.pack("=I", 9000)),
            (_netlink.IFLA_OPERSTATE, b"\x06"),
            (_netlink.IFLA_ADDRESS, bytes.fromhex("02000000aa0b")),
            (_netlink.IFLA_LINKMODE, b"\x01"),
            (_netlink.IFLA_PROP_LIST, altnames),
            (_netlink.IFLA_IFALIAS, b"\xffx\0"),
        ],
    )
    link = _netlink.parse_link_attributes(body)
    assert link is not None
    assert link["name"] == "eth7" and link["ifindex"] == 7 and link["type"] == 1 and link["flags"] == 0x1003
    assert link["mtu"] == 9000 and link["operstate"] == "up" and link["address"] == "02:00:00:00:aa:0b"
    assert link["altnames"] == ["alt0"] and link["ifalias"] == "\ufffdx"
    attrs = netlink_interface(link)
    assert attrs["dormant"] == 1 and attrs["iflink"] == 7 and attrs["duplex"] == ""
    unknown = _netlink.parse_link_attributes(
        _link_message(1, [(_netlink.IFLA_IFNAME, b"x\0"), (_netlink.IFLA_OPERSTATE, b"\x09")])
    )
    assert unknown is not None and unknown["operstate"] == "unknown"
    assert _netlink.parse_link_attributes(_link_message(1, [])) is None  # no name
    assert _netlink.parse_link_attributes(b"\x00" * 5) is None  # truncated ifinfomsg


def test_parse_link_modes_and_duplex_names() -> None:
    header = _netlink.encode_attribute(_netlink.ETHTOOL_A_HEADER_DEV_NAME, b"eth0\0")
    attrs = _netlink.encode_attribute(_netlink.ETHTOOL_A_LINKMODES_HEADER | _netlink.NLA_F_NESTED, header)
    attrs += _netlink.encode_attribute(_netlink.ETHTOOL_A_LINKMODES_SPEED, struct.pack("=I", 0xFFFFFFFF))
    assert _netlink.parse_link_modes(attrs) == ("eth0", 0xFFFFFFFF, 0)  # absent duplex reads as Half
    assert _netlink.parse_link_modes(b"") is None
    assert [duplex_name(code) for code in (0, 1, 255, 7)] == ["Half", "Full", "Unknown", "Duplex(7)"]


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=120))
def test_link_decoders_survive_any_bytes(body: bytes, modes: bytes) -> None:
    link = _netlink.parse_link_attributes(body)
    if link is not None:
        netlink_interface(link)
    _netlink.parse_link_modes(modes)
