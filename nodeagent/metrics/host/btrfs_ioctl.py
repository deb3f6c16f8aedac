"""Per-device btrfs statistics through the btrfs ioctls, as node_exporter reads them on real hosts.

For a mounted btrfs filesystem (an open descriptor of its mount point): BTRFS_IOC_FS_INFO gives the
filesystem ID, the device count and the highest device ID; for each device ID, BTRFS_IOC_DEV_INFO
gives its path, UUID and used/total bytes and BTRFS_IOC_GET_DEV_STATS its error counters. Device IDs
need not be contiguous: an ID the kernel answers with ENODEV is a gap.

Struct layouts are the kernel's UAPI (include/uapi/linux/btrfs.h); decoding is pure and tested with
packed bytes; the calls go through a :class:`Kernel` that tests replace.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from typing import NamedTuple

_MAGIC = 0x94
_READ, _READ_WRITE = 2, 3
FS_INFO_SIZE, DEV_INFO_SIZE, DEV_STATS_SIZE = 1024, 4096, 1032
_DEV_STAT_VALUES = 5  # write, read, flush, corruption, generation errors
_PATH_OFFSET, _PATH_SIZE = 56 + 377 * 8, 1024
MAX_DEVICE_IDS = 1 << 16  # bound on the device-ID scan, whatever max_id the kernel reports


def _ioc(direction: int, number: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (_MAGIC << 8) | number


IOC_FS_INFO = _ioc(_READ, 31, FS_INFO_SIZE)
IOC_DEV_INFO = _ioc(_READ_WRITE, 30, DEV_INFO_SIZE)
IOC_GET_DEV_STATS = _ioc(_READ_WRITE, 52, DEV_STATS_SIZE)


class Kernel:
    """The two system calls this module makes: opening a mount point and an ioctl on it."""

    def open_mount_point(self, path: str) -> int:
        """A read-only descriptor of a mount point's directory (never a regular file; non-blocking so
        a FIFO planted at the path cannot stall the scrape)."""
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)

    def ioctl(self, fd: int, request: int, buffer: bytearray) -> None:
        """The ioctl ``request`` on ``fd``, the kernel reading and writing ``buffer``. Raises OSError."""
        fcntl.ioctl(fd, request, buffer, True)


class FsInfo(NamedTuple):
    max_id: int
    num_devices: int
    fsid: str  # 32 hex digits, no dashes (as node_exporter keys filesystems)


class DeviceStats(NamedTuple):
    path: str
    uuid: str  # 8-4-4-4-12 hex, "<zero>" for an all-zero UUID (as node_exporter's library prints it)
    bytes_used: int
    total_bytes: int
    errors: tuple[int, int, int, int, int]  # write, read, flush, corruption, generation


def decode_fs_info(buffer: bytes | bytearray) -> FsInfo:
    max_id, num_devices = struct.unpack_from("=QQ", buffer, 0)
    return FsInfo(max_id, num_devices, bytes(buffer[16:32]).hex())


def format_uuid(raw: bytes) -> str:
    if not any(raw):
        return "<zero>"
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def decode_dev_info(buffer: bytes | bytearray) -> tuple[str, str, int, int]:
    """(path, uuid, bytes used, total bytes) of a BTRFS_IOC_DEV_INFO answer."""
    bytes_used, total_bytes = struct.unpack_from("=QQ", buffer, 24)
    path = bytes(buffer[_PATH_OFFSET : _PATH_OFFSET + _PATH_SIZE]).split(b"\0", 1)[0]
    return path.decode("utf-8", "replace"), format_uuid(bytes(buffer[8:24])), bytes_used, total_bytes


def decode_dev_stats(buffer: bytes | bytearray) -> tuple[int, int, int, int, int]:
    values = struct.unpack_from(f"={_DEV_STAT_VALUES}Q", buffer, 24)
    return (values[0], values[1], values[2], values[3], values[4])


def filesystem_devices(fd: int, kernel: Kernel) -> tuple[FsInfo, list[DeviceStats]]:
    """The filesystem of ``fd`` and its devices. Raises OSError (not btrfs, no permission, ...)."""
    buffer = bytearray(FS_INFO_SIZE)
    kernel.ioctl(fd, IOC_FS_INFO, buffer)
    info = decode_fs_info(buffer)
    devices: list[DeviceStats] = []
    for device_id in range(min(info.max_id, MAX_DEVICE_IDS) + 1):
        request = bytearray(DEV_INFO_SIZE)
        struct.pack_into("=Q", request, 0, device_id)
        try:
            kernel.ioctl(fd, IOC_DEV_INFO, request)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                continue  # a gap in the device IDs
            raise
        path, uuid, used, total = decode_dev_info(request)
        stats = bytearray(DEV_STATS_SIZE)
        struct.pack_into("=QQQ", stats, 0, device_id, _DEV_STAT_VALUES, 0)
        kernel.ioctl(fd, IOC_GET_DEV_STATS, stats)
        devices.append(DeviceStats(path, uuid, used, total, decode_dev_stats(stats)))
        if len(devices) == info.num_devices:
            break
    return info, devices
