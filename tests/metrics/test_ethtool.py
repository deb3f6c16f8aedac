"""ethtool collector: upstream's unit test (its ethtool text fixtures through a source that reads them as
upstream's mock does), name building, malformed answers, and the real ioctl on a veth in a namespace."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.ethtool import (
    ETH_GSTRING_LEN,
    DriverInfo,
    EthtoolCollector,
    LinkInfo,
    family_name,
    parse_stats,
)
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.scrape import run_collectors
from tests.conftest import NODE_EXPORTER_FIXTURE, require_shared
from tests.metrics.conftest import tree_paths, write_tree
from tests.metrics.netns import run_in_netns

# Link mode bits of upstream's mock
_MODES = {
    "10baseT/Half": 0,
    "10baseT/Full": 1,
    "100baseT/Half": 2,
    "100baseT/Full": 3,
    "1000baseT/Half": 4,
    "1000baseT/Full": 5,
    "10000baseT/Full": 12,
}


def _modes(text: str) -> int:
    return sum(1 << _MODES[mode] for mode in set(text.split(" ")) if mode in _MODES)


class FixtureEthtool:
    """upstream's EthtoolFixture: ``ethtool -i``, ``ethtool`` and ``ethtool -S`` outputs per device;
    a missing file is EOPNOTSUPP, ``ERROR: n`` in statistics is errno n."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _lines(self, device: str, name: str) -> list[str]:
        path = self.directory / device / name
        if not path.exists():
            raise OSError(errno.EOPNOTSUPP, "not supported")
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]

    def driver_info(self, device: str) -> DriverInfo:
        info = DriverInfo()
        fields = {"driver": "driver", "version": "version", "firmware-version": "firmware_version"}
        fields |= {"bus-info": "bus_info", "expansion-rom-version": "expansion_rom_version"}
        for line in self._lines(device, "driver"):
            items = line.strip(" ").split(": ")
            if items[0] in fields:
                setattr(info, fields[items[0]], items[1])
        return info

    def stats(self, device: str) -> dict[str, int]:
        stats = {}
        for line in self._lines(device, "statistics"):
            if line.startswith("NIC statistics:"):
                continue
            name, value = line.strip(" ").split(": ")
            if name == "ERROR":
                raise OSError(int(value), "ethtool error")
            stats[name] = int(value)
        return stats

    def link_info(self, device: str) -> LinkInfo:
        link = LinkInfo()
        reading: str | None = None
        for raw in self._lines(device, "settings"):
            if raw.startswith("Settings for"):
                continue
            line = raw.strip(" \t")
            if reading and ":" in line:
                reading = None
            if reading:
                setattr(link, reading, getattr(link, reading) | _modes(line))
                continue
            items = line.split(": ")
            key, value = items[0], items[1] if len(items) > 1 else ""
            for prefix, attribute in (("Supported", "supported"), ("Advertised", "advertising")):
                if key == f"{prefix} pause frame use":
                    bit = {"Symmetric": 13, "Receive-only": 14}.get(value)
                    if bit is not None:
                        setattr(link, attribute, getattr(link, attribute) | 1 << bit)
                if key == f"{prefix} link modes":
                    setattr(link, attribute, getattr(link, attribute) | _modes(value))
                    reading = attribute
            if key == "Supported ports":
                link.supported |= sum(
                    1 << bit for port, bit in (("TP", 7), ("MII", 9)) if port in value.split()
                )
            if key == "Supports auto-negotiation" and value == "Yes":
                link.supported |= 1 << 6
            if key == "Advertised auto-negotiation" and value == "Yes":
                link.advertising |= 1 << 6
            if key == "Auto-negotiation" and value == "on":
                link.autoneg = 1
        return link


# upstream's TestEthToolCollector expectation (sample lines; HELP texts are our own)
INFO = (
    'node_ethtool_info{bus_info="0000:00:1f.6",device="eth0",driver="e1000e",expansion_rom_version="",'
    'firmware_version="0.5-4",version="5.11.0-22-generic"} 1'
)
EXPECTED = """\
node_ethtool_align_errors{device="eth0"} 0
{INFO}
node_ethtool_port_received_dropped{device="eth0"} 12028
node_ethtool_received_broadcast{device="eth0"} 5792
node_ethtool_received_errors_total{device="eth0"} 0
node_ethtool_received_missed{device="eth0"} 401
node_ethtool_received_multicast{device="eth0"} 23973
node_ethtool_received_packets_total{device="eth0"} 1.260062e+06
node_ethtool_received_unicast{device="eth0"} 1.230297e+06
node_ethtool_transmitted_aborted{device="eth0"} 0
node_ethtool_transmitted_errors_total{device="eth0"} 0
node_ethtool_transmitted_multi_collisions{device="eth0"} 0
node_ethtool_transmitted_packets_total{device="eth0"} 961500
node_ethtool_transmitted_single_collisions{device="eth0"} 0
node_ethtool_transmitted_underrun{device="eth0"} 0
node_network_advertised_speed_bytes{device="eth0",duplex="full",mode="1000baseT"} 1.25e+08
node_network_advertised_speed_bytes{device="eth0",duplex="full",mode="100baseT"} 1.25e+07
node_network_advertised_speed_bytes{device="eth0",duplex="full",mode="10baseT"} 1.25e+06
node_network_advertised_speed_bytes{device="eth0",duplex="half",mode="100baseT"} 1.25e+07
node_network_advertised_speed_bytes{device="eth0",duplex="half",mode="10baseT"} 1.25e+06
node_network_asymmetricpause_advertised{device="eth0"} 0
node_network_asymmetricpause_supported{device="eth0"} 0
node_network_autonegotiate{device="eth0"} 1
node_network_autonegotiate_advertised{device="eth0"} 1
node_network_autonegotiate_supported{device="eth0"} 1
node_network_pause_advertised{device="eth0"} 1
node_network_pause_supported{device="eth0"} 1
node_network_supported_port_info{device="eth0",type="MII"} 1
node_network_supported_port_info{device="eth0",type="TP"} 1
node_network_supported_speed_bytes{device="eth0",duplex="full",mode="10000baseT"} 1.25e+09
node_network_supported_speed_bytes{device="eth0",duplex="full",mode="1000baseT"} 1.25e+08
node_network_supported_speed_bytes{device="eth0",duplex="full",mode="100baseT"} 1.25e+07
node_network_supported_speed_bytes{device="eth0",duplex="full",mode="10baseT"} 1.25e+06
node_network_supported_speed_bytes{device="eth0",duplex="half",mode="100baseT"} 1.25e+07
node_network_supported_speed_bytes{device="eth0",duplex="half",mode="10baseT"} 1.25e+06
"""


def _scrape(root: Path, source: object, settings_: dict[str, object] | None = None) -> list[str]:
    (collector,) = build_collectors(["ethtool"], tree_paths(root), settings_ or {})
    assert isinstance(collector, EthtoolCollector)
    collector.source = source  # type: ignore[assignment]
    text = render_text(run_collectors([collector]))
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_upstream_unit_test(node_exporter_fixture: Path) -> None:
    """upstream's TestEthToolCollector: its sys tree (bond0, dmz, eth0, int) and ethtool fixtures; bond0's
    statistics answer EPERM, dmz and int support nothing. Only eth0's metrics, exactly these."""
    fixtures = require_shared(NODE_EXPORTER_FIXTURE) / "ethtool"
    lines = _scrape(node_exporter_fixture, FixtureEthtool(fixtures))
    assert 'node_scrape_collector_success{collector="ethtool"} 1' in lines
    samples = [line for line in lines if not line.startswith("node_scrape_collector_")]
    assert (
        samples == EXPECTED.replace("{INFO}", INFO).splitlines()
    )  # the colliding "duplicate metric"/"duplicate_metric" are dropped


def test_filters(node_exporter_fixture: Path) -> None:
    fixtures = require_shared(NODE_EXPORTER_FIXTURE) / "ethtool"
    lines = _scrape(
        node_exporter_fixture, FixtureEthtool(fixtures), {"collector.ethtool.metrics-include": "^rx"}
    )
    stats = [line for line in lines if line.startswith("node_ethtool_") and "_info" not in line]
    assert stats and all("received" in line for line in stats)
    lines = _scrape(
        node_exporter_fixture, FixtureEthtool(fixtures), {"collector.ethtool.device-exclude": "eth"}
    )
    assert not any('device="eth0"' in line for line in lines)


def test_family_names_like_upstream() -> None:
    cases = {
        "port.rx_errors": "node_ethtool_port_received_errors",
        "rx_errors": "node_ethtool_received_errors",
        "Queue[0] AllocFails": "node_ethtool_queue_0_allocfails",
        "Tx LPI entry count": "node_ethtool_transmitted_lpi_entry_count",
        "port.VF_admin_queue_requests": "node_ethtool_port_vf_admin_queue_requests",
        "[3]: tx_bytes": "node_ethtool_3_transmitted_bytes",
        "     err": "node_ethtool_err",
    }
    for stat, expected in cases.items():
        assert family_name(stat) == expected


def test_no_devices_fails_absent_class_is_no_data(tmp_path: Path) -> None:
    write_tree(tmp_path, {"sys/class/net/bonding_masters": "bond0\n"})
    assert 'node_scrape_collector_success{collector="ethtool"} 0' in _scrape(
        tmp_path, FixtureEthtool(tmp_path)
    )
    assert 'node_scrape_collector_success{collector="ethtool"} 0' in _scrape(
        tmp_path / "x", FixtureEthtool(tmp_path)
    )


def test_stats_buffers() -> None:
    names = b"rx_a".ljust(ETH_GSTRING_LEN, b"\0") + bytes(ETH_GSTRING_LEN) + b"x" * ETH_GSTRING_LEN
    strings = bytes(12) + names
    values = bytes(8) + (1).to_bytes(8, "little") + (2).to_bytes(8, "little") + (3).to_bytes(8, "little")
    assert parse_stats(strings, values, 3) == {"rx_a": 1, "x" * ETH_GSTRING_LEN: 3}  # empty name left out


def test_live_ioctl_on_a_veth_in_a_namespace(tmp_path: Path) -> None:
    """The real SIOCETHTOOL on a veth of a fresh namespace: driver "veth", its statistics."""
    write_tree(tmp_path, {"sys/class/net/v0/.keep": "", "sys/class/net/lo/.keep": ""})
    script = f"""
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.host.files import Paths
paths = Paths(sysfs={str(tmp_path / "sys")!r})
print(render_text(run_collectors(build_collectors(["ethtool"], paths, {{}}))))
"""
    out = run_in_netns([["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]], script)
    lines = out.splitlines()
    assert 'node_scrape_collector_success{collector="ethtool"} 1' in lines
    assert any(line.startswith("node_ethtool_info{") and 'driver="veth"' in line for line in lines)
    assert any(line.startswith('node_ethtool_peer_ifindex{device="v0"}') for line in lines)
    assert not any('device="lo"' in line for line in lines)  # lo supports no ethtool operation


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=4))
def test_stats_parser_on_short_buffers(data: bytes, count: int) -> None:
    assert len(parse_stats(data, data, count)) <= count


@pytest.mark.parametrize("stat", ["", "_", "ÄÖ", "a\udcff"])
def test_family_name_never_raises(stat: str) -> None:
    assert family_name(stat).startswith("node_ethtool_")
