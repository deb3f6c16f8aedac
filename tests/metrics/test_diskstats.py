"""diskstats collector: /proc/diskstats columns by kernel version, udev properties, device filters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.config import ConfigError
from nodeagent.metrics.diskstats import parse_diskstats, parse_udev_properties
from nodeagent.metrics.registry import build_collectors
from tests.metrics.conftest import Scraped, tree_paths

DISKSTATS = """   8       0 sda 10 1 8 1000 20 2 16 2000 0 3000 4000
   8       1 sda1 1 0 2 3 0 0 0 0 0 4 4
 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 1 2 3
 254       1 vdb 1 2 3 4 5 6 7 8 9 10 x
"""


def test_parse_diskstats_column_counts_and_bad_lines() -> None:
    disks, skipped = parse_diskstats(DISKSTATS)
    assert [(d.device, len(d.stats)) for d in disks] == [
        ("sda", 11),
        ("sda1", 11),
        ("nvme0n1", 17),
        ("loop0", 11),
    ]
    assert len(skipped) == 2


def test_parse_udev_properties_keeps_only_device_properties() -> None:
    text = "S:disk/by-id/x\nE:ID_MODEL=SSD\nE:ID_FS_VERSION=LVM2 001\nE:BROKEN\nG:systemd\n"
    assert parse_udev_properties(text) == {"ID_MODEL": "SSD", "ID_FS_VERSION": "LVM2 001"}


def test_diskstats_collector_units_filters_and_udev(
    host_tree: Callable[..., Path], scrape: Callable[..., Scraped]
) -> None:
    host_tree(
        {
            "proc/diskstats": DISKSTATS,
            "udev/b8:0": "E:ID_ATA=1\nE:ID_ATA_WRITE_CACHE=1\nE:ID_ATA_ROTATION_RATE_RPM=bad\n"
            "E:ID_FS_TYPE=ext4\nE:SCSI_IDENT_SERIAL=S1\nE:ID_SERIAL_SHORT=S2\n",
            "udev/b259:0": "E:ID_WWN=eui.1\nE:ID_ATA_WRITE_CACHE=1\n",  # not ATA: no ata metrics
            "sys/block/sda/queue/rotational": "1\n",
        }
    )
    lines = scrape("diskstats").lines
    assert 'node_disk_read_bytes_total{device="sda"} 4096' in lines
    assert 'node_disk_read_time_seconds_total{device="sda"} 1' in lines
    assert 'node_disk_io_now{device="sda"} 0' in lines
    assert 'node_disk_flush_requests_time_seconds_total{device="nvme0n1"} 0.017' in lines
    assert 'node_disk_discarded_sectors_total{device="nvme0n1"} 14' in lines
    assert not any('device="sda1"' in line or 'device="loop0"' in line for line in lines)  # default exclude
    assert not any(line.startswith('node_disk_discards_completed_total{device="sda"') for line in lines)
    assert (
        'node_disk_info{device="sda",major="8",minor="0",model="",path="",revision="",rotational="1",'
        'serial="S1",wwn=""} 1'
    ) in lines
    assert 'node_disk_ata_write_cache{device="sda"} 1' in lines
    assert not any(line.startswith("node_disk_ata_rotation_rate_rpm") for line in lines)  # bad value
    assert not any(line.startswith('node_disk_ata_write_cache{device="nvme0n1"') for line in lines)
    assert 'node_disk_filesystem_info{device="sda",type="ext4",usage="",uuid="",version=""} 1' in lines

    only_loop = scrape("diskstats", device_include="^loop").lines
    devices = {line.split('device="')[1].split('"')[0] for line in only_loop if 'device="' in line}
    assert devices == {"loop0"}


def test_diskstats_include_and_exclude_are_mutually_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mutually exclusive"):
        build_collectors(
            ["diskstats"],
            tree_paths(tmp_path),
            {"collector.diskstats.device-include": "sd", "collector.diskstats.device-exclude": "nvme"},
        )
