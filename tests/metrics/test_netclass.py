"""netclass collector: interface attributes from /sys/class/net."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.netclass import admin_state
from tests.metrics.conftest import Scraped, write_tree


def make_iface(sys_root: Path, name: str, **attrs: str) -> Path:
    device = sys_root / "devices/virtual/net" / name
    device.mkdir(parents=True)
    for key, value in attrs.items():
        (device / key).write_text(value + "\n")
    (sys_root / "class/net").mkdir(parents=True, exist_ok=True)
    os.symlink(f"../../devices/virtual/net/{name}", sys_root / "class/net" / name)
    return device


def test_netclass_attributes_filters_and_invalid_speed(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
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
    write_tree(sys_root, {"class/net/bonding_masters": "bond0\n"})
    before = _parse_errors.count("netclass")

    result = scrape("netclass", ignored_devices="^skip")
    lines = result.lines
    assert result.ok
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
    assert _parse_errors.count("netclass") >= before + 1

    result = scrape("netclass", ignore_invalid_speed=True)
    lines = result.lines
    assert not any(line.startswith('node_network_speed_bytes{device="veth1"}') for line in lines)
    assert any(line.startswith('node_network_up{device="skipme0"}') for line in lines)


def test_netclass_without_class_net_reports_no_data(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("netclass").ok


def test_admin_state_from_flags() -> None:
    assert admin_state(None) == "unknown" and admin_state(0x1003) == "up" and admin_state(0x1002) == "down"


def test_invalid_utf8_in_names_and_attributes_becomes_u_fffd(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    """A hostile ifalias or device name must not break the exposition (node_exporter >= 1.10 replaces
    invalid bytes); the device's other attributes are still read through its real path."""
    make_iface(tmp_path / "sys", "eth0", operstate="up", mtu="1500")
    (tmp_path / "sys/devices/virtual/net/eth0/ifalias").write_bytes(b"up\xfflink\n")
    raw = os.fsencode(tmp_path) + b"/sys/devices/virtual/net/we\xfeird"
    os.makedirs(raw)
    with open(raw + b"/mtu", "w") as fh:
        fh.write("9000\n")
    os.symlink(b"../../devices/virtual/net/we\xfeird", os.fsencode(tmp_path) + b"/sys/class/net/we\xfeird")
    result = scrape("netclass")
    assert result.ok
    assert any('ifalias="up\ufffdlink"' in line for line in result.lines)
    assert 'node_network_mtu_bytes{device="we\ufffdird"} 9000' in result.lines
    result.text.encode("utf-8")  # the rendered page is valid UTF-8
