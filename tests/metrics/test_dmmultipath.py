"""dmmultipath collector: multipath dm-* devices below <sysfs>/block."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_scrape_multipath_devices(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "sys/block/dm-0/dm/uuid": "LVM-abc\n",  # not multipath
            "sys/block/dm-0/dm/name": "vg-root\n",
            "sys/block/dm-5/dm/uuid": "mpath-3600508b1001c1234\n",
            "sys/block/dm-5/dm/name": "mpathA\n",
            "sys/block/dm-5/dm/suspended": "1\n",
            "sys/block/dm-5/size": "104857600\n",
            "sys/block/dm-5/slaves/sdi": "",
            "sys/block/dm-5/slaves/sdj": "",
            "sys/block/dm-5/slaves/sdk": "",  # no device/state: left out, reported
            "sys/block/sdi/device/state": "running\n",
            "sys/block/sdj/device/state": "offline\n",
            "sys/block/dm-6/dm/uuid": "mpath-x\n",  # no size: left out, reported
            "sys/block/dm-6/dm/name": "mpathB\n",
            "sys/block/dm-6/dm/suspended": "0\n",
        },
    )
    result = scrape("dmmultipath")
    assert result.ok
    labels = 'device="mpathA",sysfs_name="dm-5"'
    assert [line for line in result.lines if "mpathB" in line or "vg-root" in line] == []
    assert f"node_dmmultipath_device_active{{{labels}}} 0" in result.lines
    assert f"node_dmmultipath_device_size_bytes{{{labels}}} 5.36870912e+10" in result.lines
    assert f"node_dmmultipath_device_paths{{{labels}}} 2" in result.lines
    assert f"node_dmmultipath_device_paths_failed{{{labels}}} 1" in result.lines
    assert 'node_dmmultipath_path_state{device="mpathA",path="sdj",state="offline"} 1' in result.lines


def test_no_block_directory_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("dmmultipath").ok
