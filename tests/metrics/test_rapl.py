"""rapl collector: /sys/class/powercap zones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.host.files import Paths
from nodeagent.metrics.rapl import zone_index_and_name
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.scrape import run_collectors
from tests.metrics.conftest import Scraped, write_tree
from tests.metrics.test_fixture_e2e import families_by_name


def test_rapl_matches_node_exporter_with_its_relative_sysfs_path(
    node_exporter_fixture_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node_exporter's e2e run used --path.sysfs=collector/fixtures/sys, and the path label shows it:
    run from a directory where that relative path is the fixture tree."""
    (tmp_path / "collector").mkdir()
    (tmp_path / "collector" / "fixtures").symlink_to(node_exporter_fixture_tree)
    monkeypatch.chdir(tmp_path)
    paths = Paths(sysfs="collector/fixtures/sys")
    ours = families_by_name(render_text(run_collectors(build_collectors(["rapl"], paths, {}))))
    expected = families_by_name((node_exporter_fixture_tree / "e2e-output.txt").read_text())
    names = {name for name in expected if name and name.startswith("node_rapl_")}
    assert names == {"node_rapl_core_joules_total", "node_rapl_package_joules_total"}
    for name in names:
        assert ours[name] == expected[name]


def test_zone_names() -> None:
    seen = {"dram": 1}
    assert zone_index_and_name("package-1", seen) == (1, "package")
    assert zone_index_and_name("dram", seen) == (1, "dram")
    assert zone_index_and_name("psys", seen) == (0, "psys")
    assert zone_index_and_name("a-b", seen) == (0, "a-b")


def zone(name: str, energy: str, max_range: str = "262143328850") -> dict[str, str | bytes]:
    base = f"sys/class/powercap/intel-rapl:{name}"
    return {
        f"{base}/name": "package-0\n",
        f"{base}/energy_uj": energy,
        f"{base}/max_energy_range_uj": max_range,
    }


def test_rapl_zone_label_and_errors(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, zone("0", "1500000\n"))
    plain = scrape("rapl")
    assert plain.ok and plain.lines == [
        f'node_rapl_package_joules_total{{index="0",path="{tmp_path}/sys/class/powercap/intel-rapl:0"}} 1.5'
    ]
    labelled = scrape("rapl", enable_zone_label=True)
    path = f"{tmp_path}/sys/class/powercap/intel-rapl:0"
    assert labelled.lines == [f'node_rapl_joules_total{{index="0",path="{path}",rapl_zone="package"}} 1.5']
    write_tree(tmp_path, zone("0", "garbage\n"))
    assert not scrape("rapl").ok


def test_rapl_without_powercap_is_no_data(scrape: Callable[..., Scraped]) -> None:
    result = scrape("rapl")
    assert not result.ok and result.lines == []
