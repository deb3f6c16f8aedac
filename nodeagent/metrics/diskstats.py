"""diskstats: block device I/O statistics from <procfs>/diskstats, device details from udev data.

Sectors are the kernel's fixed 512-byte units; times are milliseconds, exported in seconds. Discard
columns (kernel 4.18+) and flush columns (5.5+) are exported when the line has them. node_disk_info,
node_disk_filesystem_info, node_disk_device_mapper_info and node_disk_ata_* come from
<udev_data>/b<major>:<minor> (udev's database) and <sysfs>/block/<device>/queue/rotational.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from nodeagent.metrics import _parse_errors
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.registry import Collector, read_text, register

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


def parse_diskstats(text: str, on_error: Callable[[str], None] = lambda line: None) -> list[DiskStats]:
    disks = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3 + MIN_STAT_COLUMNS:
            on_error(line)
            continue
        try:
            disks.append(
                DiskStats(
                    int(fields[0]),
                    int(fields[1]),
                    fields[2],
                    [int(v) for v in fields[3 : 3 + len(STAT_COLUMNS)]],
                )
            )
        except ValueError:
            on_error(line)
    return disks


def parse_udev_properties(text: str) -> dict[str, str]:
    """The ``E:NAME=value`` device properties of a udev database file."""
    properties = {}
    for line in text.splitlines():
        if line.startswith("E:"):
            name, sep, value = line[2:].partition("=")
            if sep:
                properties[name] = value
    return properties


def read_udev_properties(udev_data: Path | str, major: int, minor: int) -> dict[str, str]:
    """Properties for block device major:minor; empty when udev has no record of it."""
    try:
        with open(f"{udev_data}/b{major}:{minor}", encoding="utf-8", errors="surrogateescape") as fh:
            return parse_udev_properties(fh.read())
    except OSError:
        return {}


def read_rotational(sysfs: Path | str, device: str) -> int:
    """<sysfs>/block/<device>/queue/rotational; 0 when absent (partitions, virtual devices)."""
    try:
        with open(f"{sysfs}/block/{device}/queue/rotational", "rb") as fh:
            return int(fh.read().strip())
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
        self.filter = exclusive_filter(
            self.name,
            "device-exclude",
            options.get("device-exclude", DEFAULT_DEVICE_EXCLUDE),
            DEFAULT_DEVICE_EXCLUDE,
            "device-include",
            options.get("device-include"),
        )

    def collect(self) -> Iterable[Metric]:
        disks = parse_diskstats(
            read_text(self.paths.proc("diskstats")),
            lambda line: _parse_errors.skipped(self.name, "diskstats line", line),
        )
        columns = [
            (CounterMetricFamily if kind == _COUNTER else GaugeMetricFamily)(name, doc, labels=["device"])
            for name, kind, _, doc in STAT_COLUMNS
        ]
        scales = [scale for _, _, scale, _ in STAT_COLUMNS]
        info = GaugeMetricFamily(
            "node_disk_info",
            "Identity of each block device (udev and sysfs); always 1.",
            labels=["device", "major", "minor", "path", "wwn", "model", "serial", "revision", "rotational"],
        )
        filesystem = GaugeMetricFamily(
            "node_disk_filesystem_info",
            "Filesystem signature udev found on the device; always 1.",
            labels=["device", "type", "usage", "uuid", "version"],
        )
        device_mapper = GaugeMetricFamily(
            "node_disk_device_mapper_info",
            "Device mapper names of the device; always 1.",
            labels=["device", "name", "uuid", "vg_name", "lv_name", "lv_layer"],
        )
        ata = {prop: GaugeMetricFamily(name, doc, labels=["device"]) for prop, name, doc in ATA_PROPERTIES}
        udev_data = self.paths.udev_data
        sysfs = self.paths.sysfs
        for disk in disks:
            device = disk.device
            if self.filter.ignored(device):
                continue
            labels = [device]
            for family, scale, value in zip(columns, scales, disk.stats, strict=False):
                family.add_metric(labels, value * scale)
            props = read_udev_properties(udev_data, disk.major, disk.minor)
            info.add_metric(
                [
                    device,
                    str(disk.major),
                    str(disk.minor),
                    props.get("ID_PATH", ""),
                    props.get("ID_WWN", ""),
                    props.get("ID_MODEL", ""),
                    disk_serial(props),
                    props.get("ID_REVISION", ""),
                    format(read_rotational(sysfs, device), "b"),
                ],
                1.0,
            )
            if not props:
                continue
            fs_type = props.get("ID_FS_TYPE")
            if fs_type:
                filesystem.add_metric(
                    [
                        device,
                        fs_type,
                        props.get("ID_FS_USAGE", ""),
                        props.get("ID_FS_UUID", ""),
                        props.get("ID_FS_VERSION", ""),
                    ],
                    1.0,
                )
            dm_name = props.get("DM_NAME")
            if dm_name:
                device_mapper.add_metric(
                    [
                        device,
                        dm_name,
                        props.get("DM_UUID", ""),
                        props.get("DM_VG_NAME", ""),
                        props.get("DM_LV_NAME", ""),
                        props.get("DM_LV_LAYER", ""),
                    ],
                    1.0,
                )
            if props.get("ID_ATA"):
                for prop, family in ata.items():
                    raw = props.get(prop)
                    if raw is None:
                        continue
                    try:
                        family.add_metric([device], float(raw))
                    except ValueError:
                        _parse_errors.skipped(self.name, prop, raw)
        return [*columns, info, filesystem, device_mapper, *ata.values()]
