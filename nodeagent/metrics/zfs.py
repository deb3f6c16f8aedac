"""zfs: OpenZFS kstats from <procfs>/spl/kstat/zfs/ (the spl module's /proc interface).

- Module-wide kstat files (arcstats, dmu_tx, zil, ...): every ``name type data`` row of kstat type 3
  (int64) or 4 (uint64) becomes ``node_zfs_<subsystem>_<name>`` (untyped; "-" in names becomes "_").
- Per pool (``<pool>/io``): the columns of the row under the ``nread ...`` header, as
  ``node_zfs_zpool_<column>{zpool}``.
- Per dataset (``<pool>/objset-*``): the uint64 rows, as ``node_zfs_zpool_dataset_<name>{zpool,dataset}``.
- Per pool (``<pool>/state``): ``node_zfs_zpool_state{zpool,state}``, 1 for the pool's state.

A row that does not parse is skipped (reported); other rows, files and pools are still exported.
No <procfs>/spl/kstat/zfs: ZFS is not loaded, the collector has no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import Labels, add_sample, gauge, untyped
from nodeagent.metrics.host.files import list_dir, read_text
from nodeagent.metrics.host.gonum import parse_int, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# metric subsystem -> kstat file below spl/kstat/zfs
SUBSYSTEM_FILES = {
    "zfs_abd": "abdstats",
    "zfs_arc": "arcstats",
    "zfs_dbuf": "dbufstats",
    "zfs_dmu_tx": "dmu_tx",
    "zfs_dnode": "dnodestats",
    "zfs_fm": "fm",
    "zfs_vdev_cache": "vdev_cache_stats",
    "zfs_vdev_mirror": "vdev_mirror_stats",
    "zfs_xuio": "xuio_stats",
    "zfs_zfetch": "zfetchstats",
    "zfs_zil": "zil",
}
POOL_STATES = ("online", "degraded", "faulted", "offline", "removed", "unavail", "suspended")
_INT64, _UINT64 = "3", "4"
# kstat names come from the module: one that cannot name a metric is skipped, not a failed scrape
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _metric_name(kstat: str) -> str:
    return kstat.rsplit(".", 1)[-1].replace("-", "_")


def parse_kstat(
    text: str, kinds: tuple[str, ...] = (_INT64, _UINT64)
) -> tuple[list[tuple[str, int]], bool, list[Skip]]:
    """(name, value) of the rows below the ``name type data`` header whose type is in ``kinds``;
    whether the header was found; the rows skipped."""
    rows: list[tuple[str, int]] = []
    skipped: list[Skip] = []
    started = False
    for line in text.splitlines():
        parts = line.split()
        if not started:
            started = parts == ["name", "type", "data"]
            continue
        if len(parts) < 3 or parts[1] not in kinds:
            continue
        try:
            rows.append((parts[0], parse_uint(parts[2]) if parts[1] == _UINT64 else parse_int(parts[2])))
        except ValueError:
            skipped.append(Skip("zfs kstat: unparsable value", line))
    return rows, started, skipped


def parse_pool_io(text: str) -> tuple[list[list[tuple[str, int]]], list[Skip]]:
    """Rows of (column, value) below the ``nread nwritten ...`` header of a pool's io kstat."""
    header: list[str] | None = None
    rows: list[list[tuple[str, int]]] = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if header is None:
            if len(parts) >= 12 and parts[0] == "nread":
                header = parts
            continue
        if len(parts) < len(header):
            skipped.append(Skip("zfs pool io: short row", line))
            continue
        try:
            rows.append([(column, parse_uint(value)) for column, value in zip(header, parts, strict=False)])
        except ValueError:
            skipped.append(Skip("zfs pool io: unparsable value", line))
    return rows, skipped


def parse_objset(text: str) -> tuple[list[tuple[str, str, int]], bool, list[Skip]]:
    """(dataset name, kstat name, value) of an objset kstat's uint64 rows (the dataset name is the
    ``dataset_name`` row's data, spaces kept, and applies to the rows after it); whether the header
    was found; the rows skipped."""
    rows: list[tuple[str, str, int]] = []
    skipped: list[Skip] = []
    started = False
    dataset = ""
    for line in text.splitlines():
        parts = line.split()
        if not started:
            started = parts == ["name", "type", "data"]
            continue
        if len(parts) < 3:
            continue
        if parts[0] == "dataset_name":
            dataset = line[line.index(parts[2]) :]
            continue
        if parts[1] == _UINT64:
            try:
                rows.append((dataset, parts[0], parse_uint(parts[2])))
            except ValueError:
                skipped.append(Skip("zfs objset: unparsable value", line))
    return rows, started, skipped


def _pool_entries(base: str, entries: list[str]) -> dict[str, list[str]]:
    """pool -> its kstat file names, for the directories among ``entries`` of ``base`` (listed once
    per scrape for the io, objset and state globs)."""
    pools = {}
    for pool in entries:
        try:
            pools[pool] = list_dir(f"{base}/{pool}")
        except (NotADirectoryError, FileNotFoundError):
            continue
    return pools


def _pool_files(base: str, pools: dict[str, list[str]], prefix: str, exact: bool) -> list[tuple[str, str]]:
    """(pool, path) of ``<base>/*/<name>`` files, as Go's Glob orders them (by pool, then file)."""
    return [
        (pool, f"{base}/{pool}/{name}")
        for pool, names in pools.items()
        for name in names
        if (name == prefix if exact else name.startswith(prefix))
    ]


@register
class ZfsCollector(Collector):
    name = "zfs"

    def collect(self) -> Iterable[Metric]:
        base = self.paths.proc("spl", "kstat", "zfs")
        try:
            entries = list_dir(base)
        except (FileNotFoundError, NotADirectoryError):
            raise NoDataError("ZFS statistics are not available") from None
        families: dict[str, Metric] = {}

        def family(name: str) -> Metric | None:
            found = families.get(name)
            if found is None:
                if not _METRIC_NAME.fullmatch(name):
                    self.skip("zfs kstat name not usable in a metric name", name)
                    return None
                found = families[name] = untyped(name, "ZFS kernel statistic.")
            return found

        for subsystem, file_name in SUBSYSTEM_FILES.items():
            try:
                text = read_text(f"{base}/{file_name}")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue  # a kstat of a feature this ZFS version does not have
            rows, started, skipped = parse_kstat(text)
            self.report(skipped)
            if not started:
                self.skip("zfs kstat without a name/type/data header", file_name)
            for kstat, value in rows:
                _add(family(f"node_{subsystem}_{_metric_name(kstat)}"), {}, value)
        pools = _pool_entries(base, [name for name in entries if name not in SUBSYSTEM_FILES.values()])
        for pool, path in _pool_files(base, pools, "io", exact=True):
            pool_text = _read_pool_file(path)
            if pool_text is None:
                continue
            io_rows, skipped = parse_pool_io(pool_text)
            self.report(skipped)
            labels: Labels = {"zpool": pool}
            for row in io_rows:
                for column, value in row:
                    _add(family(f"node_zfs_zpool_{_metric_name(column)}"), labels, value)
        for pool, path in _pool_files(base, pools, "objset-", exact=False):
            pool_text = _read_pool_file(path)
            if pool_text is None:
                continue
            objset_rows, started, skipped = parse_objset(pool_text)
            self.report(skipped)
            if not started:
                self.skip("zfs objset without a name/type/data header", path)
            for dataset, kstat, value in objset_rows:
                name = f"node_zfs_zpool_dataset_{_metric_name(kstat)}"
                _add(family(name), {"zpool": pool, "dataset": dataset}, value)
        state = gauge("node_zfs_zpool_state", "1 for the pool's current state, 0 for the others.")
        for pool, path in _pool_files(base, pools, "state", exact=True):
            pool_text = _read_pool_file(path)
            if pool_text is None:
                continue
            current = pool_text.split("\n", 1)[0].removesuffix("\r").lower()
            for name in POOL_STATES:
                add_sample(state, {"zpool": pool, "state": name}, 1.0 if current == name else 0.0)
        return [*families.values(), state]


def _add(family: Metric | None, labels: Labels, value: int) -> None:
    if family is not None:
        add_sample(family, labels, float(value))


def _read_pool_file(path: str) -> str | None:
    """A pool's kstat file; None when the pool was exported meanwhile (its files vanish)."""
    try:
        return read_text(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
