"""btrfs: per-filesystem Btrfs statistics from <sysfs>/fs/btrfs/<uuid>/.

Read from sysfs, as node_exporter's sysfs path: label and UUID, the global reserve, per block-group
type (data, metadata, system) the reserved bytes and, per RAID profile directory, the used and total
bytes with the profile's allocation ratio; each member device's size; the commit statistics
(Linux >= 6.0). An unreadable or unparsable attribute counts as 0, as node_exporter's reader does.

Per device, as node_exporter on a real host: each btrfs filesystem mounted on the host (from the
mount table, below --path.rootfs) is asked through ioctls (:mod:`nodeagent.metrics.host.btrfs_ioctl`)
for its devices' sizes, unused bytes and error counters (``node_btrfs_device_size_bytes`` then also
carries ``btrfs_dev_uuid``). A filesystem the ioctls cannot reach (not mounted here, no permission, a
fixture tree) reports the sysfs device sizes instead, as node_exporter does.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.filesystem import host_relative, parse_mount_table, read_mount_table
from nodeagent.metrics.host import btrfs_ioctl
from nodeagent.metrics.host.files import list_dir, read_attribute_or_none, read_optional
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, Paths, register

log = logging.getLogger("nodeagent.metrics")

SECTOR_SIZE = 512  # sysfs "size" attributes count 512-byte sectors
BLOCK_GROUP_TYPES = ("data", "metadata", "system")
_COMMIT_KEYS = ("commits", "last_commit_ms", "max_commit_ms", "total_commit_ms")


@dataclass
class Layout:
    used_bytes: int
    total_bytes: int
    ratio: float


@dataclass
class BlockGroup:
    reserved_bytes: int
    layouts: dict[str, Layout]


@dataclass
class BtrfsStats:
    uuid: str
    label: str
    global_rsv_size: int
    block_groups: dict[str, BlockGroup]
    device_sizes: dict[str, int]  # device name -> bytes
    commits: dict[str, int] = field(default_factory=dict)


def allocation_ratio(profile: str, devices: int) -> float:
    """Raw bytes per logical byte of a RAID profile (raid5/6 depend on the device count; Go's float
    division: too few devices give +Inf, none gives -0)."""
    fixed = {
        "single": 1.0,
        "raid0": 1.0,
        "dup": 2.0,
        "raid1": 2.0,
        "raid10": 2.0,
        "raid1c3": 3.0,
        "raid1c4": 4.0,
    }
    if profile in fixed:
        return fixed[profile]
    parity = {"raid5": 1, "raid6": 2}.get(profile)
    if parity is None:
        return 0.0
    divisor = float(devices - parity)
    return math.inf if divisor == 0 else devices / divisor


def parse_commit_stats(text: str) -> tuple[dict[str, int], list[Skip]]:
    """``commits 258051`` lines -> {"commits": 258051, ...} (the four known keys, 0 when absent)."""
    stats = dict.fromkeys(_COMMIT_KEYS, 0)
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            skipped.append(Skip("btrfs commit_stats: not a key and a value", line))
            continue
        try:
            value = parse_uint(parts[1])
        except ValueError:
            skipped.append(Skip("btrfs commit_stats: unparsable value", line))
            continue
        if parts[0] in stats:
            stats[parts[0]] = value
    return stats, skipped


def _value(path: str) -> int:
    """An unsigned attribute; absent or unparsable is 0 (node_exporter's reader ignores both)."""
    text = read_attribute_or_none(path)
    try:
        return parse_uint(text) if text is not None else 0
    except ValueError:
        return 0


def _subdirectories(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names)


def read_filesystem(directory: str, name: str) -> tuple[BtrfsStats, list[Skip]]:
    """The statistics of one <sysfs>/fs/btrfs/<uuid> directory."""
    skipped: list[Skip] = []
    try:
        devices = list_dir(f"{directory}/devices")
    except (FileNotFoundError, NotADirectoryError):
        devices = []
        skipped.append(Skip("btrfs filesystem without a devices directory", name))
    device_sizes = {device: SECTOR_SIZE * _value(f"{directory}/devices/{device}/size") for device in devices}
    block_groups = {}
    for kind in BLOCK_GROUP_TYPES:
        group = f"{directory}/allocation/{kind}"
        layouts = {
            profile: Layout(
                _value(f"{group}/{profile}/used_bytes"),
                _value(f"{group}/{profile}/total_bytes"),
                allocation_ratio(profile, len(devices)),
            )
            for profile in _subdirectories(group)
        }
        block_groups[kind] = BlockGroup(_value(f"{group}/bytes_reserved"), layouts)
    stats = BtrfsStats(
        uuid=read_attribute_or_none(f"{directory}/metadata_uuid") or name,
        label=read_attribute_or_none(f"{directory}/label") or "",
        global_rsv_size=_value(f"{directory}/allocation/global_rsv_size"),
        block_groups=block_groups,
        device_sizes=device_sizes,
    )
    text = read_optional(f"{directory}/commit_stats")  # absent before Linux 6.0
    stats.commits, commit_skips = parse_commit_stats(text or "")
    return stats, skipped + commit_skips


ERROR_TYPES = ("write", "read", "flush", "corruption", "generation")


def read_ioctl_stats(paths: Paths, kernel: btrfs_ioctl.Kernel) -> dict[str, list[btrfs_ioctl.DeviceStats]]:
    """Filesystem ID (hex, no dashes) -> its devices, for every btrfs filesystem mounted on the host
    that answers the ioctls; what does not answer is left out (logged at debug, as node_exporter)."""
    try:
        mounts, _ = parse_mount_table(*read_mount_table(paths))
    except OSError as exc:
        log.debug("btrfs: no mount table for the device ioctls", extra={"err": str(exc)})
        return {}
    found: dict[str, list[btrfs_ioctl.DeviceStats]] = {}
    devices_done: set[str] = set()
    for mount in host_relative(mounts, paths.rootfs):
        if mount.fs_type != "btrfs" or mount.device in devices_done:
            continue
        mount_path = paths.root(mount.mount_point)
        try:
            fd = kernel.open_mount_point(mount_path)
        except OSError as exc:
            log.debug("btrfs: cannot open mount point", extra={"path": mount_path, "err": str(exc)})
            continue
        try:
            info, devices = btrfs_ioctl.filesystem_devices(fd, kernel)
        except OSError as exc:
            log.debug("btrfs: device ioctls failed", extra={"path": mount_path, "err": str(exc)})
            continue
        finally:
            os.close(fd)
        if info.fsid not in found:
            devices_done.add(mount.device)
            found[info.fsid] = devices
    return found


@register
class BtrfsCollector(Collector):
    name = "btrfs"
    kernel: ClassVar[btrfs_ioctl.Kernel] = btrfs_ioctl.Kernel()  # tests stand in for the kernel

    def collect(self) -> Iterable[Metric]:
        root = self.paths.sys("fs", "btrfs")
        try:
            names = [name for name in list_dir(root) if "-" in name]
        except (FileNotFoundError, NotADirectoryError):
            names = []  # btrfs not loaded: success without samples, as node_exporter
        info = gauge("node_btrfs_info", "Filesystem information (label).")
        rsv = gauge("node_btrfs_global_rsv_size_bytes", "Size of the global reserve, in bytes.")
        commits = counter("node_btrfs_commits_total", "Transaction commits.")
        last = gauge("node_btrfs_last_commit_seconds", "Duration of the latest commit, in seconds.")
        slowest = gauge("node_btrfs_max_commit_seconds", "Duration of the slowest commit, in seconds.")
        total = counter("node_btrfs_commit_seconds_total", "Time spent in commits, in seconds.")
        reserved = gauge("node_btrfs_reserved_bytes", "Bytes reserved for a block-group type.")
        used = gauge("node_btrfs_used_bytes", "Bytes used, per block-group type and RAID profile.")
        size = gauge("node_btrfs_size_bytes", "Bytes allocated, per block-group type and RAID profile.")
        ratio = gauge("node_btrfs_allocation_ratio", "Raw bytes per logical byte of a RAID profile.")
        device_size = gauge("node_btrfs_device_size_bytes", "Size of a member device, in bytes.")
        unused = gauge("node_btrfs_device_unused_bytes", "Bytes of a member device not allocated.")
        errors = counter("node_btrfs_device_errors_total", "Errors of a member device, by type.")
        by_fsid = read_ioctl_stats(self.paths, self.kernel) if names else {}
        for name in names:
            stats, skipped = read_filesystem(f"{root}/{name}", name)
            self.report(skipped)
            uuid = stats.uuid
            labels = {"uuid": uuid}
            add_sample(info, {"uuid": uuid, "label": stats.label}, 1.0)
            add_sample(rsv, labels, float(stats.global_rsv_size))
            add_sample(commits, labels, float(stats.commits["commits"]))
            add_sample(last, labels, stats.commits["last_commit_ms"] / 1000)
            add_sample(slowest, labels, stats.commits["max_commit_ms"] / 1000)
            add_sample(total, labels, stats.commits["total_commit_ms"] / 1000)
            for kind, group in stats.block_groups.items():
                add_sample(reserved, {"uuid": uuid, "block_group_type": kind}, float(group.reserved_bytes))
                for profile, layout in group.layouts.items():
                    layout_labels = {"uuid": uuid, "block_group_type": kind, "mode": profile}
                    add_sample(used, layout_labels, float(layout.used_bytes))
                    add_sample(size, layout_labels, float(layout.total_bytes))
                    add_sample(ratio, layout_labels, layout.ratio)
            ioctl_devices = by_fsid.get(uuid.replace("-", ""))
            if ioctl_devices is None:
                for device, device_bytes in stats.device_sizes.items():
                    add_sample(device_size, {"uuid": uuid, "device": device}, float(device_bytes))
                continue
            for device_stats in ioctl_devices:
                device_labels = {
                    "uuid": uuid,
                    "device": device_stats.path.rsplit("/", 1)[-1],
                    "btrfs_dev_uuid": device_stats.uuid,
                }
                add_sample(device_size, device_labels, float(device_stats.total_bytes))
                free = (device_stats.total_bytes - device_stats.bytes_used) % (1 << 64)  # uint64, as Go
                add_sample(unused, device_labels, float(free))
                for kind, count in zip(ERROR_TYPES, device_stats.errors, strict=True):
                    add_sample(errors, {**device_labels, "type": kind}, float(count))
        families = [info, rsv, commits, last, slowest, total, reserved, used, size, ratio, device_size]
        return [*families, unused, errors]
