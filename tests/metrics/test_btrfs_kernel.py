"""The btrfs collector on a real btrfs: a filesystem made with mkfs.btrfs on a loop device and mounted by
the test, read through the kernel's /sys/fs/btrfs and the BTRFS_IOC_FS_INFO / DEV_INFO / GET_DEV_STATS
ioctls, compared sample by sample with the real node_exporter scraping the same host at the same time.

node_exporter 1.5.0 (Debian's) predates the commit statistics (node_btrfs_*commit*), which are left out
of the comparison; every other btrfs sample of the test's filesystem must be equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, require_binary
from tests.metrics.test_peers import http_get, stop, wait_http

NEWER_THAN_DEBIAN = ("node_btrfs_commit", "node_btrfs_last_commit", "node_btrfs_max_commit")


@pytest.fixture
def mounted_btrfs(tmp_path: Path) -> Iterator[str]:
    """The UUID of a fresh btrfs mounted at tmp_path/mnt (unmounted, loop device freed, afterwards)."""
    mkfs = require_binary("mkfs.btrfs")
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    image, mountpoint = tmp_path / "btrfs.img", tmp_path / "mnt"
    with image.open("wb") as f:
        f.truncate(160 * 2**20)
    subprocess.run([mkfs, "-q", str(image)], check=True, capture_output=True, timeout=60)
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True, text=True, timeout=60
    )
    if mounted.returncode != 0:  # a sandbox without loop devices or mount rights: not a missing binary
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()[:200]}")
    try:
        (mountpoint / "data").write_bytes(os.urandom(2**20))
        os.sync()
        uuid = subprocess.run(
            ["findmnt", "-no", "UUID", str(mountpoint)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        yield uuid
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60)  # frees the loop device


def btrfs_samples(text: bytes, uuid: str) -> dict[str, str]:
    samples = {}
    for line in text.decode().splitlines():
        if line.startswith("node_btrfs_") and f'uuid="{uuid}"' in line:
            series, _, value = line.rpartition(" ")
            samples[series] = value
    return samples


def test_real_btrfs_equals_node_exporter(mounted_btrfs: str, tmp_path: Path) -> None:
    binary = require_binary("prometheus-node-exporter", "node_exporter")
    theirs_port = free_port()
    theirs = subprocess.Popen(
        [
            binary,
            "--collector.disable-defaults",
            "--collector.btrfs",
            f"--web.listen-address=127.0.0.1:{theirs_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{theirs_port}/metrics", theirs, "node_exporter")
        their_text = http_get(f"http://127.0.0.1:{theirs_port}/metrics")
    finally:
        stop(theirs)
    ours = subprocess.run(
        [sys.executable, "-m", "nodeagent", "metrics", "--collector.disable-defaults", "--collector.btrfs"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    ).stdout
    their_samples = btrfs_samples(their_text, mounted_btrfs)
    our_samples = btrfs_samples(ours, mounted_btrfs)
    # The ioctl families, present only when the device ioctls worked.
    assert any(s.startswith("node_btrfs_device_errors_total{") for s in our_samples), sorted(our_samples)
    assert any(s.startswith("node_btrfs_device_size_bytes{") for s in our_samples)
    compared = {s: v for s, v in our_samples.items() if not s.startswith(NEWER_THAN_DEBIAN)}
    assert compared == their_samples
