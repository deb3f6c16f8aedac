"""btrfs collector: <sysfs>/fs/btrfs/<uuid>/ and the per-device ioctls."""

from __future__ import annotations

import errno
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.btrfs import BtrfsCollector, allocation_ratio, parse_commit_stats
from nodeagent.metrics.host import btrfs_ioctl
from tests.metrics.conftest import Scraped, write_tree

FS = "sys/fs/btrfs/7f07c59f-6136-449c-ab87-e1cf2328731b"


def test_allocation_ratios_follow_go_division() -> None:
    assert allocation_ratio("raid1c3", 5) == 3 and allocation_ratio("weird", 3) == 0
    assert allocation_ratio("raid5", 4) == 4 / 3 and allocation_ratio("raid6", 4) == 2
    assert allocation_ratio("raid5", 1) == math.inf
    assert math.copysign(1, allocation_ratio("raid6", 0)) == -1  # 0 / -2 is -0


def test_commit_stats_skip_malformed_lines() -> None:
    stats, skipped = parse_commit_stats("commits 5\nlast_commit_ms x\nmax_commit_ms 1 2\nfuture 9\n")
    assert stats == {"commits": 5, "last_commit_ms": 0, "max_commit_ms": 0, "total_commit_ms": 0}
    assert len(skipped) == 2


def test_scrape_with_missing_and_bad_attributes(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{FS}/label": "\n",
            f"{FS}/devices/loop1/size": "20971520\n",
            f"{FS}/devices/loop2/size": "garbage\n",  # unparsable: 0
            f"{FS}/allocation/global_rsv_size": "16777216\n",
            f"{FS}/allocation/data/bytes_reserved": "7\n",
            f"{FS}/allocation/data/raid5/used_bytes": "100\n",  # no total_bytes: 0
            f"{FS}/commit_stats": "commits 3\ntotal_commit_ms 1500\n",
            "sys/fs/btrfs/features/raid56": "0\n",  # not a filesystem (no dash)
        },
    )
    result = scrape("btrfs")
    assert result.ok
    uuid = "7f07c59f-6136-449c-ab87-e1cf2328731b"  # no metadata_uuid: the directory name
    assert f'node_btrfs_info{{label="",uuid="{uuid}"}} 1' in result.lines
    assert f'node_btrfs_device_size_bytes{{device="loop1",uuid="{uuid}"}} 1.073741824e+10' in result.lines
    assert f'node_btrfs_device_size_bytes{{device="loop2",uuid="{uuid}"}} 0' in result.lines
    assert (
        f'node_btrfs_allocation_ratio{{block_group_type="data",mode="raid5",uuid="{uuid}"}} 2' in result.lines
    )
    assert f'node_btrfs_size_bytes{{block_group_type="data",mode="raid5",uuid="{uuid}"}} 0' in result.lines
    assert f'node_btrfs_reserved_bytes{{block_group_type="system",uuid="{uuid}"}} 0' in result.lines
    assert f'node_btrfs_commit_seconds_total{{uuid="{uuid}"}} 1.5' in result.lines


def test_no_btrfs_is_success_without_samples(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("btrfs")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_commit_stats(text)


class FakeKernel(btrfs_ioctl.Kernel):
    """A btrfs filesystem with devices 1 and 3 (2 is a gap), mounted at /mnt/data."""

    FSID = bytes.fromhex("7f07c59f6136449cab87e1cf2328731b")

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open_mount_point(self, path: str) -> int:
        self.opened.append(path)
        if not path.endswith("/mnt/data"):
            raise FileNotFoundError(path)
        return os.open("/", os.O_RDONLY | os.O_DIRECTORY)

    def ioctl(self, fd: int, request: int, buffer: bytearray) -> None:
        if request == btrfs_ioctl.IOC_FS_INFO:
            struct.pack_into("=QQ16s", buffer, 0, 3, 2, self.FSID)
            return
        device_id = struct.unpack_from("=Q", buffer, 0)[0]
        if device_id not in (1, 3):
            raise OSError(errno.ENODEV, "no such device")
        if request == btrfs_ioctl.IOC_DEV_INFO:
            uuid = bytes(16) if device_id == 3 else bytes(range(16))
            struct.pack_into("=Q16sQQ", buffer, 0, device_id, uuid, 100, 1000 * device_id)
            path = f"/dev/loop{20 + device_id}".encode()
            buffer[3072 : 3072 + len(path)] = path
        elif request == btrfs_ioctl.IOC_GET_DEV_STATS:
            assert struct.unpack_from("=Q", buffer, 8)[0] == 5  # nr_items asked for
            struct.pack_into("=5Q", buffer, 24, 1, 2, 3, 4, device_id)


def test_ioctl_structs_decode() -> None:
    assert btrfs_ioctl.IOC_FS_INFO == 0x8400941F
    assert btrfs_ioctl.IOC_DEV_INFO == 0xD000941E
    assert btrfs_ioctl.IOC_GET_DEV_STATS == 0xC4089434
    assert btrfs_ioctl.format_uuid(bytes(range(16))) == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert btrfs_ioctl.format_uuid(bytes(16)) == "<zero>"


def test_scrape_with_device_ioctls(
    tmp_path: Path, scrape: Callable[..., Scraped], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = FakeKernel()
    monkeypatch.setattr(BtrfsCollector, "kernel", kernel)
    write_tree(
        tmp_path,
        {
            f"{FS}/metadata_uuid": "7f07c59f-6136-449c-ab87-e1cf2328731b\n",
            f"{FS}/devices/loop21/size": "8\n",
            "sys/fs/btrfs/0abb23a9-579b-43e6-ad30-227ef47fcb9d/devices/loop9/size": "8\n",
            "proc/1/mountinfo": (
                "30 1 0:40 / /mnt/data rw - btrfs /dev/loop21 rw\n"
                "31 1 0:40 /sub /mnt/again rw - btrfs /dev/loop21 rw\n"  # the same device: asked once
                "32 1 0:41 / /mnt/gone rw - btrfs /dev/loop9 rw\n"
            ),
        },
    )
    result = scrape("btrfs")
    assert result.ok
    assert [path.rsplit("/", 2)[-2:] for path in kernel.opened] == [["mnt", "data"], ["mnt", "gone"]]
    uuid = 'uuid="7f07c59f-6136-449c-ab87-e1cf2328731b"'
    one = 'btrfs_dev_uuid="00010203-0405-0607-0809-0a0b0c0d0e0f",device="loop21"'
    three = 'btrfs_dev_uuid="<zero>",device="loop23"'
    lines = result.lines
    assert f"node_btrfs_device_size_bytes{{{one},{uuid}}} 1000" in lines
    assert f"node_btrfs_device_unused_bytes{{{three},{uuid}}} 2900" in lines
    assert f'node_btrfs_device_errors_total{{{one},type="corruption",{uuid}}} 4' in lines
    assert f'node_btrfs_device_errors_total{{{three},type="generation",{uuid}}} 3' in lines
    # the filesystem the ioctls did not reach keeps its sysfs device sizes
    other = 'device="loop9",uuid="0abb23a9-579b-43e6-ad30-227ef47fcb9d"'
    assert f"node_btrfs_device_size_bytes{{{other}}} 4096" in lines
