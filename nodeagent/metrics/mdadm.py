"""mdadm: Linux software RAID (md) state from <procfs>/mdstat and <sysfs>/block/md*/md/.

From /proc/mdstat, per array: activity state, disks (active/failed/spare, required) and blocks
(total, synced while a resync/recovery/check runs). From sysfs: the configured number of RAID
disks and, for redundant levels, the number of degraded (missing) disks. A malformed array entry
is skipped with a warning; the other arrays are still reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import Paths, list_dir, read_attribute, read_text, read_uint
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

_STATUS_LINE = re.compile(r"(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]")
_RECOVERY_BLOCKS = re.compile(r"\((\d+)/\d+\)")
# node_md_state label -> activity state as parsed from mdstat
STATES = {
    "active": "active",
    "inactive": "inactive",
    "recovering": "recovering",
    "resync": "resyncing",
    "check": "checking",
}
REDUNDANT_LEVELS = frozenset({"raid1", "raid4", "raid5", "raid6", "raid10"})


@dataclass(frozen=True)
class MDStat:
    name: str
    activity_state: str
    disks_active: int
    disks_total: int
    disks_failed: int
    disks_spare: int
    blocks_total: int
    blocks_synced: int


@dataclass(frozen=True)
class MDRaid:
    device: str
    level: str
    raid_disks: int | None
    degraded: int | None


def _status(device_line: str, status_line: str) -> tuple[int, int, int]:
    """(active disks, required disks, size in blocks) from an array's first two lines."""
    fields = status_line.split()
    if not fields:
        raise ValueError(f"empty status line for {device_line!r}")
    size = parse_uint(fields[0])
    if "raid0" in device_line or "linear" in device_line:
        total = device_line.count("[")  # only member disks carry a [n] here
        return total, total, size
    if "inactive" in device_line:
        return 0, 0, size
    match = _STATUS_LINE.search(status_line)
    if match is None:
        raise ValueError(f"unexpected status line {status_line!r}")
    return parse_uint(match.group(3)), parse_uint(match.group(2)), size


def _parse_array(lines: list[str], i: int) -> MDStat:
    line = lines[i]
    fields = line.split()
    if len(fields) < 3:
        raise ValueError(f"not enough fields in {line!r}")
    name, state = fields[0], fields[2]
    if len(lines) <= i + 3:
        raise ValueError(f"too few lines for {name}")
    active, total, size = _status(line, lines[i + 1])
    sync_line = lines[i + 3] if "bitmap" in lines[i + 2] else lines[i + 2]
    synced = size
    recovering, reshaping = "recovery" in sync_line, "reshape" in sync_line
    resyncing, checking = "resync" in sync_line, "check" in sync_line
    if recovering or reshaping or resyncing or checking:
        if recovering:
            state = "recovering"
        elif reshaping:
            state = "reshaping"
        elif checking:
            state = "checking"
        else:
            state = "resyncing"
        if "PENDING" in sync_line or "DELAYED" in sync_line:
            synced = 0
        else:
            match = _RECOVERY_BLOCKS.search(sync_line)
            if match is None:
                raise ValueError(f"unexpected sync line {sync_line!r}")
            synced = parse_uint(match.group(1))
    # (F) marks failed members, (S) spares
    return MDStat(name, state, active, total, line.count("(F)"), line.count("(S)"), size, synced)


def parse_mdstat(text: str) -> tuple[list[MDStat], list[Skip]]:
    """The arrays of /proc/mdstat, in file order, and the malformed array entries skipped."""
    lines = text.split("\n")
    arrays = []
    skipped: list[Skip] = []
    for i, line in enumerate(lines):
        if not line.strip() or line[0] == " " or line.startswith(("Personalities", "unused")):
            continue
        try:
            arrays.append(_parse_array(lines, i))
        except ValueError as exc:
            skipped.append(Skip("malformed md array in mdstat", f"line {i + 1}: {exc}"))
    return arrays, skipped


def read_mdraids(paths: Paths) -> tuple[list[MDRaid], list[Skip]]:
    """Arrays of <sysfs>/block/md*/md/ with their raid_disks and degraded counts (None if unreadable),
    and the attributes that could not be read."""
    block = paths.sys("block")
    try:
        names = [name for name in list_dir(block) if name.startswith("md")]
    except FileNotFoundError:
        return [], []
    raids = []
    skipped: list[Skip] = []
    for name in names:
        md = f"{block}/{name}/md"
        try:
            level = read_attribute(f"{md}/level")
        except (FileNotFoundError, NotADirectoryError):
            continue  # not an md array (e.g. a partition named md...)
        except OSError as exc:
            skipped.append(Skip("md level", f"{name}: {exc}"))
            continue
        raid_disks = degraded = None
        try:
            raid_disks = read_uint(f"{md}/raid_disks")
        except (OSError, ValueError) as exc:
            skipped.append(Skip("md raid_disks", f"{name}: {exc}"))
        if level in REDUNDANT_LEVELS:
            try:
                degraded = read_uint(f"{md}/degraded")
            except (OSError, ValueError) as exc:
                skipped.append(Skip("md degraded", f"{name}: {exc}"))
        else:
            degraded = 0  # no redundancy, nothing can be degraded
        raids.append(MDRaid(name, level, raid_disks, degraded))
    return raids, skipped


@register
class MdadmCollector(Collector):
    name = "mdadm"

    def collect(self) -> Iterable[Metric]:
        try:
            arrays, skipped = parse_mdstat(read_text(self.paths.proc("mdstat")))
        except FileNotFoundError:
            raise NoDataError("no /proc/mdstat (md driver not loaded)") from None
        self.report(skipped)
        required = gauge("node_md_disks_required", "Number of member disks the array is made of.")
        disks = gauge("node_md_disks", "Member disks of the array by state.")
        state = gauge("node_md_state", "1 for the current state of the array, 0 for the others.")
        blocks = gauge("node_md_blocks", "Size of the array, in blocks.")
        synced = gauge("node_md_blocks_synced", "Blocks of the array that are in sync.")
        for md in arrays:
            labels = {"device": md.name}
            add_sample(required, labels, float(md.disks_total))
            add_sample(disks, {"device": md.name, "state": "active"}, float(md.disks_active))
            add_sample(disks, {"device": md.name, "state": "failed"}, float(md.disks_failed))
            add_sample(disks, {"device": md.name, "state": "spare"}, float(md.disks_spare))
            for label, activity in STATES.items():
                add_sample(
                    state, {"device": md.name, "state": label}, 1.0 if md.activity_state == activity else 0.0
                )
            add_sample(blocks, labels, float(md.blocks_total))
            add_sample(synced, labels, float(md.blocks_synced))
        raid_disks = gauge("node_md_raid_disks", "Number of RAID disks configured for the array.")
        degraded = gauge("node_md_degraded", "Number of missing (degraded) disks of the array.")
        raids, skipped = read_mdraids(self.paths)
        self.report(skipped)
        for raid in raids:
            labels = {"device": raid.device}
            if raid.raid_disks is not None:
                add_sample(raid_disks, labels, float(raid.raid_disks))
            if raid.degraded is not None:
                add_sample(degraded, labels, float(raid.degraded))
        return [required, disks, state, blocks, synced, raid_disks, degraded]
