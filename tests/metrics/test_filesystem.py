"""filesystem collector: mount tables, host-relative mount points, statvfs errors and hung mounts."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.filesystem import (
    FilesystemCollector,
    Mount,
    host_relative,
    parse_mountinfo,
    parse_mounts,
    unescape_mount_path,
)
from nodeagent.metrics.registry import Paths, build_collectors
from tests.metrics.conftest import Scraped, write_tree

MOUNTINFO = """22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/with\\040space ro,nosuid - tmpfs tmp\\134fs rw,size=4k
29 27 0:26 / /var/lib/docker/overlay2/x rw - xfs /dev/vdb rw
bogus line
30 27 8:1 / /data rw - ext4 /dev/sda1 ro,errors=remount-ro
"""


def test_parse_mountinfo_fields_escapes_and_bad_lines() -> None:
    mounts, skipped = parse_mountinfo(MOUNTINFO)
    assert [skip.detail for skip in skipped] == ["bogus line"]
    root = mounts[1]
    assert (root.device, root.mount_point, root.fs_type, root.major, root.minor) == (
        "/dev/vda",
        "/",
        "ext4",
        "254",
        "0",
    )
    assert mounts[2].mount_point == "/mnt/with space" and mounts[2].device == "tmp\\fs"
    assert mounts[2].read_only and mounts[4].read_only and not root.read_only  # mount or super options


def test_parse_mounts_fallback_format() -> None:
    mounts, skipped = parse_mounts("/dev/vda / ext4 rw,relatime 0 0\nshort line\n")
    assert mounts == [Mount("/dev/vda", "/", "ext4", "rw,relatime")]
    assert [skip.detail for skip in skipped] == ["short line"]
    assert unescape_mount_path(r"/a\011b\134c\x") == "/a\tb\\c\\x"


def test_host_relative_for_both_views() -> None:
    container_view = [
        Mount("overlay", "/", "overlay"),
        Mount("/dev/vda", "/host", "ext4"),
        Mount("/dev/vdb", "/host/data", "xfs"),
        Mount("tmpfs", "/hostile", "tmpfs"),
    ]
    assert [m.mount_point for m in host_relative(container_view, "/host")] == ["/", "/data"]
    host_view = [Mount("/dev/vda", "/", "ext4"), Mount("/dev/vdb", "/data", "xfs")]
    assert host_relative(host_view, "/host/") == host_view
    assert host_relative(container_view, "/") == container_view


def filesystem_tree(root: Path) -> Path:
    """A rootfs whose mount table lists real directories below it (the container's view)."""
    rootfs = root / "host"
    (rootfs / "data").mkdir(parents=True)
    mountinfo = "".join(
        f"{i} 1 8:{i} / {rootfs}{mp} rw - {fs} /dev/sd{i} {sup}\n"
        for i, (mp, fs, sup) in enumerate(
            [("", "ext4", "rw"), ("/data", "xfs", "ro"), ("/proc", "proc", "rw"), ("/gone", "ext4", "rw")]
        )
    )
    write_tree(root, {"proc/1/mountinfo": "1 0 0:1 / / rw - overlay overlay rw\n" + mountinfo})
    return rootfs


def fs_collector(root: Path, **options: Any) -> FilesystemCollector:
    rootfs = filesystem_tree(root)
    settings = {f"collector.filesystem.{k.replace('_', '-')}": v for k, v in options.items()}
    paths = Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=rootfs)
    (collector,) = build_collectors(["filesystem"], paths, settings)
    assert isinstance(collector, FilesystemCollector)
    return collector


def sample_lines(collector: FilesystemCollector) -> list[str]:
    return [line for line in render_text(collector.collect()).splitlines() if not line.startswith("#")]


def test_filesystem_statvfs_and_errors(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path)
    lines = sample_lines(collector)
    statvfs = os.statvfs(tmp_path)
    size = float(statvfs.f_blocks) * float(statvfs.f_bsize)
    labels = 'device="/dev/sd0",device_error="",fstype="ext4",mountpoint="/"'
    assert any(line.startswith(f"node_filesystem_size_bytes{{{labels}}} ") for line in lines)
    assert (
        float(
            next(ln for ln in lines if ln.startswith(f"node_filesystem_size_bytes{{{labels}}}")).rsplit(
                " ", 1
            )[1]
        )
        == size
    )
    data = 'device="/dev/sd1",device_error="",fstype="xfs",mountpoint="/data"'
    assert f"node_filesystem_readonly{{{data}}} 1" in lines
    assert 'node_filesystem_mount_info{device="/dev/sd1",major="8",minor="1",mountpoint="/data"} 1' in lines
    # /gone does not exist below rootfs: statvfs fails with Go's spelling of the errno text
    gone = 'device="/dev/sd3",device_error="no such file or directory",fstype="ext4",mountpoint="/gone"'
    assert f"node_filesystem_device_error{{{gone}}} 1" in lines
    assert f"node_filesystem_readonly{{{gone}}} 0" in lines
    assert not any(line.startswith(f"node_filesystem_size_bytes{{{gone}") for line in lines)
    assert not any('mountpoint="/proc"' in line for line in lines)  # default exclusions
    assert not any('fstype="overlay"' in line for line in lines)  # outside rootfs (and excluded type)


def test_filesystem_include_options(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path, mount_points_include="^/data$")
    assert {line.split('mountpoint="')[1].split('"')[0] for line in sample_lines(collector)} == {"/data"}
    # dropping the fs type exclusions leaves the mount point ones: /proc stays out
    collector = fs_collector(tmp_path / "b", fs_types_include="^(proc|xfs)$")
    assert {line.split('mountpoint="')[1].split('"')[0] for line in sample_lines(collector)} == {"/data"}


def test_filesystem_hung_statvfs_is_reported_then_skipped_until_it_returns(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path, mount_timeout=0.2, mount_points_include="^/(data)?$")
    release = threading.Event()
    calls: list[str] = []
    real = os.statvfs

    def statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path.endswith("/data"):
            release.wait(10)  # a dead NFS server
        return real(path)

    collector.statfs = statvfs
    stuck = 'device="/dev/sd1",device_error="mountpoint timeout",fstype="xfs",mountpoint="/data"'
    try:
        started = time.monotonic()
        lines = sample_lines(collector)
        assert time.monotonic() - started < 2
        assert f"node_filesystem_device_error{{{stuck}}} 1" in lines
        assert any(ln.startswith('node_filesystem_size_bytes{device="/dev/sd0"') for ln in lines)
        assert collector.stuck == {"/data"}

        # the next scrape does not call statvfs on the stuck mount at all, and does not wait
        calls.clear()
        started = time.monotonic()
        lines = sample_lines(collector)
        assert time.monotonic() - started < 0.2
        assert [p for p in calls if p.endswith("/data")] == []
        assert f"node_filesystem_device_error{{{stuck}}} 1" in lines
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while collector.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert collector.stuck == set()  # the call returned: monitoring resumes
    lines = sample_lines(collector)
    data = 'device="/dev/sd1",device_error="",fstype="xfs",mountpoint="/data"'
    assert f"node_filesystem_device_error{{{data}}} 0" in lines


def test_filesystem_falls_back_to_proc_mounts(tmp_path: Path) -> None:
    write_tree(tmp_path, {"proc/mounts": f"/dev/vda {tmp_path} ext4 ro 0 0\n"})
    paths = Paths(procfs=tmp_path / "proc", sysfs=tmp_path / "sys", rootfs=tmp_path)
    (collector,) = build_collectors(["filesystem"], paths, {})
    lines = sample_lines(collector)  # type: ignore[arg-type]
    root = 'device="/dev/vda",device_error="",fstype="ext4",mountpoint="/"'
    assert f"node_filesystem_readonly{{{root}}} 1" in lines
    assert 'node_filesystem_mount_info{device="/dev/vda",major="0",minor="0",mountpoint="/"} 1' in lines


def test_filesystem_without_mount_table_fails_quietly(scrape: Callable[..., Scraped]) -> None:
    result = scrape("filesystem")
    assert not result.ok and result.lines == []


def test_filesystem_on_node_exporter_fixture(node_exporter_fixture: Path) -> None:
    """The fixture's mountinfo parses completely; its mount points do not exist here, so statvfs fails."""
    paths = Paths(
        procfs=node_exporter_fixture / "proc",
        sysfs=node_exporter_fixture / "sys",
        rootfs=Path("/nonexistent-rootfs"),
    )
    (collector,) = build_collectors(["filesystem"], paths, {})
    lines = sample_lines(collector)  # type: ignore[arg-type]
    assert (
        'node_filesystem_device_error{device="/dev/dm-2",device_error="no such file or directory",'
        'fstype="ext4",mountpoint="/"} 1' in lines
    )
    assert not any('mountpoint="/sys' in line or 'mountpoint="/proc' in line for line in lines)


def test_mount_point_with_invalid_utf8_is_statted_by_its_bytes_and_labelled_with_u_fffd(
    tmp_path: Path,
) -> None:
    rootfs = tmp_path / "host"
    os.makedirs(os.fsencode(rootfs) + b"/d\xffata")
    mountinfo = b"1 0 8:1 / " + os.fsencode(rootfs) + b"/d\xffata rw - xfs /dev/sd\xfe1 rw\n"
    write_tree(tmp_path, {"proc/1/mountinfo": mountinfo})
    (collector,) = build_collectors(["filesystem"], Paths(procfs=tmp_path / "proc", rootfs=rootfs), {})
    lines = sample_lines(collector)  # type: ignore[arg-type]
    labels = 'device="/dev/sd\ufffd1",device_error="",fstype="xfs",mountpoint="/d\ufffdata"'
    assert f"node_filesystem_readonly{{{labels}}} 0" in lines
    assert any(line.startswith(f"node_filesystem_size_bytes{{{labels}}} ") for line in lines)
