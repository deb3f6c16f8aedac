"""nvmesubsystem collector: <sysfs>/class/nvme-subsystem, on node_exporter's fixture tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree

# node_exporter's own expected output for its fixture tree (collector/nvmesubsystem_linux_test.go)
STATES = ("connecting", "dead", "deleting", "live", "new", "resetting", "unknown")
CURRENT = {"nvme0": "live", "nvme1": "live", "nvme2": "live", "nvme3": "dead"}
EXPECTED = [
    'node_nvmesubsystem_info{iopolicy="round-robin",model="Dell PowerStore",'
    'nqn="nqn.2014-08.org.nvmexpress:uuid:a34c4f3a-0d6f-5cec-dead-beefcafebabe",serial="SN12345678",'
    'subsystem="nvme-subsys0"} 1',
    'node_nvmesubsystem_namespace_info{device="nvme0n1",subsystem="nvme-subsys0"} 1',
    *(
        f'node_nvmesubsystem_path_state{{controller="{controller}",state="{state}",subsystem="nvme-subsys0",'
        f'transport="fc"}} {int(state == current)}'
        for controller, current in CURRENT.items()
        for state in STATES
    ),
    'node_nvmesubsystem_paths{subsystem="nvme-subsys0"} 4',
    'node_nvmesubsystem_paths_live{subsystem="nvme-subsys0"} 3',
]


def test_fixture_tree_gives_node_exporters_output(
    node_exporter_fixture: Path, scrape: Callable[..., Scraped]
) -> None:
    result = scrape("nvmesubsystem", root=node_exporter_fixture)
    assert result.ok
    assert result.lines == EXPECTED


def test_unknown_state_and_missing_attributes(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/class/nvme-subsystem/nvme-subsys1"
    write_tree(
        tmp_path,
        {f"{base}/model": "x\n", f"{base}/nvme4/state": "deleting (no IO)\n", f"{base}/nvme5/state": "odd\n"},
    )
    result = scrape("nvmesubsystem")
    assert result.ok
    state = (
        'node_nvmesubsystem_path_state{{controller="{}",state="{}",subsystem="nvme-subsys1",transport=""}} 1'
    )
    assert state.format("nvme4", "deleting") in result.lines
    assert state.format("nvme5", "unknown") in result.lines
    assert 'node_nvmesubsystem_paths_live{subsystem="nvme-subsys1"} 0' in result.lines


def test_no_class_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("nvmesubsystem").ok
