"""Every pure parser of the collectors survives any input: random text, random bytes decoded as the
host layer decodes them, and line soup made of the tokens kernel files contain. A parser returns values
and what it skipped; it never raises (the Go-number functions raise only ValueError, by contract)."""

from __future__ import annotations

import contextlib
import math
import re
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import (
    _netlink,
    _promtext,
    arp,
    conntrack,
    cpu,
    cpufreq,
    diskstats,
    filefd,
    filesystem,
    hwmon,
    loadavg,
    mdadm,
    meminfo,
    netclass,
    netdev,
    netstat,
    pressure,
    schedstat,
    sockstat,
    softnet,
    udp_queues,
    vmstat,
)
from nodeagent.metrics import os as os_collector
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics._proc_stat import parse_cpu_times, parse_stat_totals
from nodeagent.metrics.host.files import decode
from nodeagent.metrics.host.gonum import parse_float, parse_floats, parse_int, parse_uint, parse_uints
from nodeagent.metrics.host.skips import Skip

FUZZ = settings(max_examples=100, deadline=None, database=None)

_TOKENS = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "42",
        "0x1f",
        "ff",
        "1.5",
        "1e400",
        "nan",
        "-",
        ":",
        "=",
        "_",
        "total=",
        "some",
        "full",
        "cpu",
        "cpu0",
        "cpu1",
        "intr",
        "softirq",
        "kB",
        "MemTotal:",
        "Tcp:",
        "TcpExt:",
        "Ip6InOctets",
        "md0",
        "active",
        "raid1",
        "[2/1]",
        "[U_]",
        "blocks",
        "recovery",
        "(1/2)",
        "(F)",
        "(S)",
        "sda",
        "E:ID_ATA=1",
        "processor",
        "flags",
        "\t",
        "\\040",
        "\\",
        '"',
        "'",
        "#",
        "NAME=",
        "\xff",
        "\ufffd",
        "\x00",
        "lo:",
    ]
)
_LINES = st.lists(st.lists(_TOKENS, max_size=16).map(" ".join), max_size=16).map("\n".join)
TEXT = st.one_of(st.text(max_size=600), st.binary(max_size=600).map(decode), _LINES)


def _returns_values_and_skips(result: object) -> None:
    assert isinstance(result, tuple) and len(result) == 2
    skipped = result[1]
    assert isinstance(skipped, list) and all(isinstance(skip, Skip) for skip in skipped)


def attributes(names: tuple[str, ...], text: str) -> dict[str, str]:
    """Attribute values for a directory parser: one line of ``text`` each."""
    return dict(zip(names, text.split("\n"), strict=False))


TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "cpu times": parse_cpu_times,
    "stat totals": parse_stat_totals,
    "cpu list": cpu.parse_cpu_list,
    "cpufreq": lambda text: cpufreq.parse_cpufreq("0", attributes(cpufreq._ATTRIBUTES, text)),
    "meminfo": meminfo.parse_meminfo,
    "vmstat": lambda text: vmstat.parse_vmstat(text, go_regex(".")),
    "diskstats": diskstats.parse_diskstats,
    "mountinfo": filesystem.parse_mountinfo,
    "mounts": filesystem.parse_mounts,
    "net/dev": netdev.parse_proc_net_dev,
    "netclass": lambda text: netclass.parse_interface("eth0", attributes(netclass._ATTRIBUTES, text)),
    "netstat": netstat.parse_netstat,
    "sockstat": sockstat.parse_sockstat,
    "softnet": softnet.parse_softnet,
    "udp": lambda text: udp_queues.parse_udp_queues(text.split("\n")),
    "conntrack": conntrack.parse_conntrack_stat,
    "arp": lambda text: arp.parse_arp(text.split("\n")),
    "file-nr": filefd.parse_file_nr,
    "loadavg": loadavg.parse_loadavg,
    "psi": pressure.parse_psi,
    "schedstat": schedstat.parse_schedstat,
    "os-release": os_collector.parse_os_release,
    "mdstat": mdadm.parse_mdstat,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
def test_text_parsers_return_values_and_skips_for_any_input(name: str) -> None:
    parser = TEXT_PARSERS[name]

    @FUZZ
    @given(text=TEXT)
    def check(text: str) -> None:
        _returns_values_and_skips(parser(text))

    check()


@FUZZ
@given(text=TEXT)
def test_helpers_without_skips_never_raise(text: str) -> None:
    assert isinstance(cpu.parse_cpuinfo(text), list)
    assert isinstance(diskstats.parse_udev_properties(text), dict)
    assert isinstance(netstat.parse_snmp6(text), dict)
    assert isinstance(filesystem.unescape_mount_path(text), str)
    assert isinstance(os_collector.os_version(text), float)
    assert os_collector.support_end(text) is None or math.isfinite(os_collector.support_end(text) or 0.0)
    assert hwmon.split_sensor_file(text) is None or len(hwmon.split_sensor_file(text) or ()) == 3
    assert re.fullmatch(r"[a-z0-9:_]*", hwmon.clean_name(text))
    stat, _ = sockstat.parse_sockstat(text)
    assert isinstance(sockstat.sockstat_samples(stat, ipv6=False), list)


_PROPERTIES = st.sampled_from(["", "input", "label", "max", "alarm", "type"])
_SENSORS = st.sampled_from(
    ["temp1", "fan1", "in0", "power1", "energy1", "freq1", "vrm0", "beep_enable0", "x"]
)


@FUZZ
@given(properties=st.dictionaries(_PROPERTIES, TEXT, max_size=6), sensor=_SENSORS)
def test_hwmon_chip_metrics_survive_any_attribute_values(properties: dict[str, str], sensor: str) -> None:
    families = hwmon._Families()
    hwmon.chip_metrics("chip", {sensor: properties}, families, "name", hwmon.NameFilter())


@FUZZ
@given(text=TEXT)
def test_go_numbers_raise_only_value_errors(text: str) -> None:
    fields = text.split()
    for call in (
        lambda: parse_int(text),
        lambda: parse_int(text, 0),
        lambda: parse_uint(text, 16),
        lambda: parse_float(text),
        lambda: parse_uints(fields),
        lambda: parse_uints(fields, 16),
        lambda: parse_floats(fields),
        lambda: _promtext.parse_text(text),
    ):
        with contextlib.suppress(ValueError):
            call()


@FUZZ
@given(payload=st.binary(max_size=600), seq=st.integers(0, 3))
def test_netlink_parsing_survives_any_bytes(payload: bytes, seq: int) -> None:
    link = _netlink.parse_link_message(payload)
    assert link is None or isinstance(link[0], str)
    message = struct.pack("=IHHII", 16 + len(payload), _netlink.RTM_NEWLINK, 0, seq, 0) + payload
    for data in (payload, message):
        try:
            links, _done = _netlink.parse_dump([data], seq=1)
        except _netlink.NetlinkError:
            continue  # a truncated dump or a kernel error: the collector fails, the scrape goes on
        assert all(isinstance(name, str) for name, _ in links)
