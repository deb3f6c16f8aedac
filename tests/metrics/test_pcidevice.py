"""pcidevice collector: /sys/bus/pci/devices, and pci.ids names."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.host.files import Paths
from nodeagent.metrics.pcidevice import PciDevice, parse_location, parse_pci_device, parse_pci_ids
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.scrape import run_collectors
from tests.metrics.conftest import Scraped, write_tree
from tests.metrics.test_fixture_e2e import families_by_name

IDS = {
    "class": "0x060400",
    "vendor": "0x1022",
    "device": "0x1634",
    "subsystem_vendor": "0x17aa",
    "subsystem_device": "0x5095",
    "revision": "0x00",
}


def test_names_match_node_exporter_unit_test(node_exporter_fixture_tree: Path) -> None:
    """upstream's TestPCICollectorWithNameResolution: its pci.ids and expected output."""
    fixture = node_exporter_fixture_tree
    settings = {"collector.pcidevice.names": True, "collector.pcidevice.idsfile": str(fixture / "pci.ids")}
    collectors = build_collectors(["pcidevice"], Paths(sysfs=fixture / "sys"), settings)
    ours = families_by_name(render_text(run_collectors(collectors)))
    text = (fixture / "pcidevice-names-output.txt").read_text()
    expected = families_by_name("\n".join(line for line in text.splitlines() if not line.startswith("# E")))
    expected.pop(None, None)  # type: ignore[call-overload]  # the file's leading comment lines
    assert set(expected) <= set(ours)
    for name, lines in expected.items():
        assert ours[name] == lines, name


def test_location() -> None:
    assert parse_location("0000:01:00.0") == (0, 1, 0, 0)
    assert parse_location("0001:ff:1f.7") == (1, 255, 31, 7)
    for bad in ("pci0000:00", "0000:01:00", "0000:01:00.0.1", "zzzz:01:00.0", "1:2:3:4.5"):
        assert parse_location(bad) is None


def test_device_attributes() -> None:
    device = parse_pci_device(
        "../../../devices/pci0000:00/0000:00:02.1",
        {
            **IDS,
            "max_link_speed": "8.0 GT/s PCIe",
            "current_link_width": "4",
            "numa_node": "-1",
            "power_state": "D0",
        },
    )
    assert device == PciDevice(
        (0, 0, 2, 1),
        None,
        {
            "class": 0x060400,
            "vendor": 0x1022,
            "device": 0x1634,
            "subsystem_vendor": 0x17AA,
            "subsystem_device": 0x5095,
            "revision": 0,
        },
        max_speed=8.0,
        current_width=4.0,
        numa_node=-1,
        power_state="D0",
    )
    unknown = parse_pci_device(
        "../0000:00:02.0/0000:01:00.0", {**IDS, "max_link_speed": "Unknown", "current_link_speed": ""}
    )
    assert unknown.parent == (0, 0, 2, 0) and unknown.max_speed is None


@pytest.mark.parametrize(
    ("target", "extra"),
    [
        ("../pci0000:00/garbage", {}),
        ("../junk/0000:01:00.0", {}),
        ("../pci0000:00/0000:01:00.0", {"max_link_speed": "2.5 GT/s"}),  # no "PCIe": upstream fails it
        ("../pci0000:00/0000:01:00.0", {"max_link_width": "x4"}),
        ("../pci0000:00/0000:01:00.0", {"class": "0xffffffff"}),
        ("../pci0000:00/0000:01:00.0", {"sriov_numvfs": "-1"}),
    ],
)
def test_device_errors(target: str, extra: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        parse_pci_device(target, {**IDS, **extra})


def test_device_without_ids_is_skipped_and_others_kept(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    real = tmp_path / "sys/devices/pci0000:00"
    write_tree(tmp_path, {f"sys/devices/pci0000:00/0000:00:02.1/{k}": v + "\n" for k, v in IDS.items()})
    write_tree(tmp_path, {"sys/devices/pci0000:00/0000:00:03.0/vendor": "0x8086\n"})
    links = tmp_path / "sys/bus/pci/devices"
    links.mkdir(parents=True)
    (links / "0000:00:02.1").symlink_to(real / "0000:00:02.1")
    (links / "0000:00:03.0").symlink_to(real / "0000:00:03.0")
    (links / "0000:00:04.0").write_text("not a link")
    result = scrape("pcidevice")
    assert result.ok
    assert [line.split("{")[0] for line in result.lines].count("node_pcidevice_info") == 1
    assert (
        'node_pcidevice_max_link_width{bus="00",device="02",function="1",segment="0000"} -1' in result.lines
    )


def test_pci_ids_lookup_falls_back_to_ids() -> None:
    ids = parse_pci_ids(
        "# comment\n8086  Intel Corporation\n\t1521  I350\n\t\t8086 00a3  OCP NIC\n"
        "C 02  Network controller\n\t00  Ethernet controller\n\t\t01  Fancy\n"
    )
    assert ids.vendor("0x8086") == "Intel Corporation" and ids.vendor("0x1234") == "1234"
    assert ids.device("0x8086", "0x1521") == "I350" and ids.device("0x8086", "0xffff") == "ffff"
    assert ids.subsystem("0x8086", "0x1521", "0x8086", "0x00a3") == "OCP NIC"
    assert ids.subsystem("0x8086", "0x1521", "0x8086", "0x00a4") == "00a4"
    assert ids.class_name("0x020001") == "Fancy"
    assert ids.class_name("0x020000") == "Ethernet controller"
    assert ids.class_name("0x02ff00") == "Network controller"
    assert ids.class_name("0x0c0300") == "Unknown class (0c0300)"


def test_no_pci_bus_is_no_data(scrape: Callable[..., Scraped]) -> None:
    result = scrape("pcidevice")
    assert not result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_pci_parsers_survive_any_text(text: str) -> None:
    parse_pci_ids(text)
    parse_location(text)
    with contextlib.suppress(ValueError):
        parse_pci_device(text, {**IDS, "max_link_speed": text, "power_state": text})
