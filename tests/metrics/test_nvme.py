"""nvme collector: <sysfs>/class/nvme/<controller>/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree

CTRL = "sys/class/nvme/nvme0"


def test_scrape_controller_and_namespaces(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{CTRL}/model": "Samsung SSD 970 PRO 512GB               \n",
            f"{CTRL}/state": "live\n",  # no firmware_rev, serial, cntlid: empty labels, reported
            f"{CTRL}/nvme0n1/size": "3906250000\n",
            f"{CTRL}/nvme0n1/nuse": "488281250\n",
            f"{CTRL}/nvme0n1/queue/logical_block_size": "4096\n",
            f"{CTRL}/nvme0n1/ana_state": "optimized\n",
            f"{CTRL}/nvme0n2/size": "many\n",  # unparsable: 0
            f"{CTRL}/nvme0n2/queue/logical_block_size": "512\n",  # no nuse: 0, reported
            f"{CTRL}/power/control": "auto\n",  # not a namespace
        },
    )
    result = scrape("nvme")
    assert result.ok
    assert (
        'node_nvme_info{cntlid="",device="nvme0",firmware_revision="",model="Samsung SSD 970 PRO 512GB",'
        'serial="",state="live"} 1'
    ) in result.lines
    assert 'node_nvme_namespace_capacity_bytes{device="nvme0",nsid="1"} 1.6e+13' in result.lines
    assert 'node_nvme_namespace_used_bytes{device="nvme0",nsid="1"} 2e+12' in result.lines
    assert 'node_nvme_namespace_info{ana_state="unknown",device="nvme0",nsid="2"} 1' in result.lines
    assert 'node_nvme_namespace_size_bytes{device="nvme0",nsid="2"} 0' in result.lines


def test_no_nvme_class_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("nvme").ok
