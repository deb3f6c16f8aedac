"""diskstats: block device I/O statistics from <procfs>/diskstats, device details from udev data.

Sectors are the kernel's fixed 512-byte units; times are milliseconds, exported in seconds. Discard
columns (kernel 4.18+) and flush columns (5.5+) are exported when the line has them. node_disk_info,
node_disk_filesystem_info, node_disk_device_mapper_info and node_disk_ata_* come from
<udev_data>/b<major>:<minor> (udev's database) and <sysfs>/block/<device>/queue/rotational.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.host.files import Paths, read_optional, read_text, read_uint
from nodeagent.metrics.host.gonum import parse_float, parse_uint, parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

DEFAULT_DEVICE_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
SECTOR_BYTES = 512.0
SECONDS_PER_MS = 0.001  # multiply (not divide), as node_exporter does, for identical float results

# Column i (after major, minor, name) -> (metric name, type, scale, HELP).
_COUNTER, _GAUGE = "counter", "gauge"
STAT_COLUMNS: tuple[tuple[str, str, float, str], ...] = (
    ("node_disk_reads_completed_total", _COUNTER, 1.0, "Reads completed successfully."),
    ("node_disk_reads_merged_total", _COUNTER, 1.0, "Adjacent reads merged into one request."),
    ("node_disk_read_bytes_total", _COUNTER, SECTOR_BYTES, "Bytes read."),
    ("node_disk_read_time_seconds_total", _COUNTER, SECONDS_PER_MS, "Time spent by all reads, in seconds."),
    ("node_disk_writes_completed_total", _COUNTER, 1.0, "Writes completed successfully."),
    ("node_disk_writes_merged_total", _COUNTER, 1.0, "Adjacent writes merged into one request."),
    ("node_disk_written_bytes_total", _COUNTER, SECTOR_BYTES, "Bytes written."),
    ("node_disk_write_time_seconds_total", _COUNTER, SECONDS_PER_MS, "Time spent by all writes, in seconds."),
    ("node_disk_io_now", _GAUGE, 1.0, "I/O requests in flight right now."),
    (
        "node_disk_io_time_seconds_total",
        _COUNTER,
        SECONDS_PER_MS,
        "Time the device had I/O in flight, in seconds.",
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        _COUNTER,
        SECONDS_PER_MS,
        "I/O time weighted by the number of requests in flight, in seconds.",
    ),
    ("node_disk_discards_completed_total", _COUNTER, 1.0, "Discards completed successfully."),
    ("node_disk_discards_merged_total", _COUNTER, 1.0, "Adjacent discards merged into one request."),
    ("node_disk_discarded_sectors_total", _COUNTER, 1.0, "Sectors discarded."),
    (
        "node_disk_discard_time_seconds_total",
        _COUNTER,
        SECONDS_PER_MS,
        "Time spent by all discards, in seconds.",
    ),
    ("node_disk_flush_requests_total", _COUNTER, 1.0, "Flush requests completed successfully."),
    (
        "node_disk_flush_requests_time_seconds_total",
        _COUNTER,
        SECONDS_PER_MS,
        "Time spent by all flush requests, in seconds.",
    ),
)
# Lines with fewer statistics columns than this (kernels before 2.6.25) are skipped, as procfs does.
MIN_STAT_COLUMNS = 11

ATA_PROPERTIES = (
    ("ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache", "1 if the ATA disk has a write cache."),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "1 if the ATA disk's write cache is enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "Rotation rate of the ATA disk in revolutions per minute (0 for solid state).",
    ),
)


@dataclass
class DiskStats:
    major: int
    minor: int
    device: str
    stats: list[int]  # 11, 15 or 17 columns, in STAT_COLUMNS order


def parse_diskstats(text: str) -> tuple[list[DiskStats], list[Skip]]:
    """The devices of /proc/diskstats, and the malformed lines skipped."""
    disks = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3 + MIN_STAT_COLUMNS:
            skipped.append(Skip("diskstats line", line))
            continue
        try:
            disks.append(
                DiskStats(
                    parse_uint(fields[0]),
                    parse_uint(fields[1]),
                    fields[2],
                    parse_uints(fields[3 : 3 + len(STAT_COLUMNS)]),
                )
            )
        except ValueError:
            skipped.append(Skip("diskstats line", line))
    return disks, skipped


def parse_udev_properties(text: str) -> dict[str, str]:
    """The ``E:NAME=value`` device properties of a udev database file."""
    properties = {}
    for line in text.splitlines():
        if line.startswith("E:"):
            name, sep, value = line[2:].partition("=")
            if sep:
                properties[name] = value
    return properties


def read_udev_properties(paths: Paths, major: int, minor: int) -> dict[str, str]:
    """Properties for block device major:minor; empty when udev has no record of it."""
    try:
        text = read_optional(paths.udev(f"b{major}:{minor}"))
    except OSError:
        return {}
    return parse_udev_properties(text) if text is not None else {}


def read_rotational(paths: Paths, device: str) -> int:
    """<sysfs>/block/<device>/queue/rotational; 0 when absent (partitions, virtual devices)."""
    try:
        return read_uint(paths.sys("block", device, "queue", "rotational"))
    except (OSError, ValueError):
        return 0


def disk_serial(properties: dict[str, str]) -> str:
    """The serial printed on the disk label where udev knows it, else udev's short or full serial."""
    return (
        properties.get("SCSI_IDENT_SERIAL")
        or properties.get("ID_SERIAL_SHORT")
        or properties.get("ID_SERIAL")
        or ""
    )


@register
class DiskstatsCollector(Collector):
    name = "diskstats"
    options = (*filter_options("device", "devices", DEFAULT_DEVICE_EXCLUDE),)

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = exclusive_filter(self.name, options, "device", DEFAULT_DEVICE_EXCLUDE)

    def collect(self) -> Iterable[Metric]:
        disks, skipped = parse_diskstats(read_text(self.paths.proc("diskstats")))
        self.report(skipped)
        columns = [(counter if kind == _COUNTER else gauge)(name, doc) for name, kind, _, doc in STAT_COLUMNS]
        scales = [scale for _, _, scale, _ in STAT_COLUMNS]
        info = gauge("node_disk_info", "Identity of each block device (udev and sysfs); always 1.")
        filesystem = gauge(
            "node_disk_filesystem_info", "Filesystem signature udev found on the device; always 1."
        )
        device_mapper = gauge("node_disk_device_mapper_info", "Device mapper names of the device; always 1.")
        ata = {prop: gauge(name, doc) for prop, name, doc in ATA_PROPERTIES}
        for disk in disks:
            device = disk.device
            if self.filter.ignored(device):
                continue
            labels = {"device": device}
            for family, scale, value in zip(columns, scales, disk.stats, strict=False):
                add_sample(family, labels, value * scale)
            props = read_udev_properties(self.paths, disk.major, disk.minor)
            info_labels = {
                "device": device,
                "major": str(disk.major),
                "minor": str(disk.minor),
                "path": props.get("ID_PATH", ""),
                "wwn": props.get("ID_WWN", ""),
                "model": props.get("ID_MODEL", ""),
                "serial": disk_serial(props),
                "revision": props.get("ID_REVISION", ""),
                "rotational": format(read_rotational(self.paths, device), "b"),
            }
            add_sample(info, info_labels, 1.0)
            if not props:
                continue
            fs_type = props.get("ID_FS_TYPE")
            if fs_type:
                fs_labels = {
                    "device": device,
                    "type": fs_type,
                    "usage": props.get("ID_FS_USAGE", ""),
                    "uuid": props.get("ID_FS_UUID", ""),
                    "version": props.get("ID_FS_VERSION", ""),
                }
                add_sample(filesystem, fs_labels, 1.0)
            dm_name = props.get("DM_NAME")
            if dm_name:
                dm_labels = {
                    "device": device,
                    "name": dm_name,
                    "uuid": props.get("DM_UUID", ""),
                    "vg_name": props.get("DM_VG_NAME", ""),
                    "lv_name": props.get("DM_LV_NAME", ""),
                    "lv_layer": props.get("DM_LV_LAYER", ""),
                }
                add_sample(device_mapper, dm_labels, 1.0)
            if props.get("ID_ATA"):
                for prop, family in ata.items():
                    raw = props.get(prop)
                    if raw is None:
                        continue
                    try:
                        add_sample(family, labels, parse_float(raw))
                    except ValueError:
                        self.skip(prop, raw)
        return [*columns, info, filesystem, device_mapper, *ata.values()]
