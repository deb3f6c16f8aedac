"""dmmultipath: device-mapper multipath devices from <sysfs>/block/dm-*/.

A ``dm-<N>`` block device whose ``dm/uuid`` starts with ``mpath-`` is a multipath device: its
``dm/name``, whether it is suspended (``dm/suspended``), its size and, for each underlying path
(``slaves/<dev>``), the path device's state (``<sysfs>/block/<dev>/device/state``: SCSI "running" and
NVMe "live" count as active). A device or path whose attributes cannot be read or parsed is left
out and reported. No <sysfs>/block (or no permission to list it): no data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_dir, read_attribute_or_none
from nodeagent.metrics.host.gonum import MAX_UINT64, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

SECTOR_SIZE = 512
ACTIVE_STATES = frozenset({"running", "live"})


class Multipath(NamedTuple):
    name: str
    sysfs_name: str
    uuid: str
    suspended: bool
    size_bytes: int
    paths: list[tuple[str, str]]  # (path device, state)


def read_multipath(block: str, sysfs_name: str) -> tuple[Multipath | None, list[Skip]]:
    """The multipath device ``<block>/<sysfs_name>``, or None when it is not one (or unreadable)."""
    directory = f"{block}/{sysfs_name}"
    uuid = read_attribute_or_none(f"{directory}/dm/uuid")
    if uuid is None or not uuid.startswith("mpath-"):
        return None, []
    name = read_attribute_or_none(f"{directory}/dm/name")
    suspended = read_attribute_or_none(f"{directory}/dm/suspended")
    sectors = read_attribute_or_none(f"{directory}/size")
    try:
        if name is None or suspended is None or sectors is None:
            raise ValueError("dm/name, dm/suspended or size missing")
        suspended_value, sector_count = parse_uint(suspended), parse_uint(sectors)
    except ValueError as exc:
        return None, [Skip("dm-multipath device unreadable", f"{sysfs_name}: {exc}")]
    skipped: list[Skip] = []
    paths = []
    try:
        slaves = list_dir(f"{directory}/slaves")
    except (FileNotFoundError, NotADirectoryError):
        slaves = []
    for path in slaves:
        state = read_attribute_or_none(f"{block}/{path}/device/state")
        if state is None:
            skipped.append(Skip("dm-multipath path without a device state", f"{sysfs_name}: {path}"))
            continue
        paths.append((path, state))
    size = sector_count * SECTOR_SIZE % (MAX_UINT64 + 1)
    return Multipath(name, sysfs_name, uuid, suspended_value == 1, size, paths), skipped


@register
class DmmultipathCollector(Collector):
    name = "dmmultipath"

    def collect(self) -> Iterable[Metric]:
        block = self.paths.sys("block")
        try:
            names = [name for name in list_dir(block) if name.startswith("dm-")]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            raise NoDataError("no <sysfs>/block") from None
        info = gauge("node_dmmultipath_device_info", "Multipath device attributes; always 1.")
        active = gauge(
            "node_dmmultipath_device_active", "1 if the multipath device is active, 0 if suspended."
        )
        size = gauge("node_dmmultipath_device_size_bytes", "Size of the multipath device, in bytes.")
        paths = gauge("node_dmmultipath_device_paths", "Paths of the multipath device.")
        paths_active = gauge(
            "node_dmmultipath_device_paths_active", "Paths in an active state (running, live)."
        )
        paths_failed = gauge("node_dmmultipath_device_paths_failed", "Paths not in an active state.")
        path_state = gauge("node_dmmultipath_path_state", "State of a path's device; always 1.")
        for sysfs_name in names:
            device, skipped = read_multipath(block, sysfs_name)
            self.report(skipped)
            if device is None:
                continue
            labels = {"device": device.name, "sysfs_name": sysfs_name}
            add_sample(info, {**labels, "uuid": device.uuid}, 1.0)
            add_sample(active, labels, 0.0 if device.suspended else 1.0)
            add_sample(size, labels, float(device.size_bytes))
            up = sum(state in ACTIVE_STATES for _, state in device.paths)
            for path, state in device.paths:
                add_sample(path_state, {"device": device.name, "path": path, "state": state}, 1.0)
            add_sample(paths, labels, float(len(device.paths)))
            add_sample(paths_active, labels, float(up))
            add_sample(paths_failed, labels, float(len(device.paths) - up))
        return [info, active, size, paths, paths_active, paths_failed, path_state]
