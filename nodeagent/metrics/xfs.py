"""xfs: per-filesystem XFS runtime statistics from <sysfs>/fs/xfs/<device>/stats/stats (Linux >= 4.4).

Each line of the stats file is a category name followed by counters; the categories exported and the
positions within them are node_exporter's. Counters of these categories are 32-bit in the kernel: a
value that does not fit, a wrong number of values or a non-number makes that line skipped (its
counters stay 0); the other lines and filesystems are still reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics.host.files import list_dir, read_text
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

_MAX_UINT32 = (1 << 32) - 1

# category -> (accepted value counts, ((position, metric suffix, help), ...))
_CATEGORIES: dict[str, tuple[tuple[int, ...], tuple[tuple[int, str, str], ...]]] = {
    "extent_alloc": (
        (4,),
        (
            (0, "extent_allocation_extents_allocated_total", "Extents allocated."),
            (1, "extent_allocation_blocks_allocated_total", "Blocks allocated."),
            (2, "extent_allocation_extents_freed_total", "Extents freed."),
            (3, "extent_allocation_blocks_freed_total", "Blocks freed."),
        ),
    ),
    "abt": (
        (4,),
        (
            (0, "allocation_btree_lookups_total", "Lookups in the free-space allocation B-tree."),
            (1, "allocation_btree_compares_total", "Compares in the free-space allocation B-tree."),
            (2, "allocation_btree_records_inserted_total", "Records inserted in the allocation B-tree."),
            (3, "allocation_btree_records_deleted_total", "Records deleted from the allocation B-tree."),
        ),
    ),
    "blk_map": (
        (7,),
        (
            (0, "block_mapping_reads_total", "Block map calls for reads."),
            (1, "block_mapping_writes_total", "Block map calls for writes."),
            (2, "block_mapping_unmaps_total", "Block unmaps (deletes)."),
            (3, "block_mapping_extent_list_insertions_total", "Extent list insertions."),
            (4, "block_mapping_extent_list_deletions_total", "Extent list deletions."),
            (5, "block_mapping_extent_list_lookups_total", "Extent list lookups."),
            (6, "block_mapping_extent_list_compares_total", "Extent list compares."),
        ),
    ),
    "bmbt": (
        (4,),
        (
            (0, "block_map_btree_lookups_total", "Lookups in the block map B-tree."),
            (1, "block_map_btree_compares_total", "Compares in the block map B-tree."),
            (2, "block_map_btree_records_inserted_total", "Records inserted in the block map B-tree."),
            (3, "block_map_btree_records_deleted_total", "Records deleted from the block map B-tree."),
        ),
    ),
    "dir": (
        (4,),
        (
            (0, "directory_operation_lookup_total", "Directory lookups that missed the dentry cache."),
            (1, "directory_operation_create_total", "Directory entries created."),
            (2, "directory_operation_remove_total", "Directory entries removed."),
            (3, "directory_operation_getdents_total", "getdents operations on directories."),
        ),
    ),
    "ig": (
        (7,),
        (
            (0, "inode_operation_attempts_total", "Lookups of an inode in the XFS inode cache."),
            (1, "inode_operation_found_total", "Inode cache lookups that found the inode."),
            (2, "inode_operation_recycled_total", "Inodes found in the cache while being recycled."),
            (3, "inode_operation_missed_total", "Inode cache lookups that missed."),
            (
                4,
                "inode_operation_duplicates_total",
                "Inodes added to the cache that another thread had added.",
            ),
            (5, "inode_operation_reclaims_total", "Inodes reclaimed from the cache."),
            (6, "inode_operation_attribute_changes_total", "Explicit inode attribute changes."),
        ),
    ),
    "rw": (
        (2,),
        (
            (0, "write_calls_total", "write(2) calls on files of the filesystem."),
            (1, "read_calls_total", "read(2) calls on files of the filesystem."),
        ),
    ),
    "vnodes": (
        (7, 8),  # older kernels have no trailing "free" count
        (
            (0, "vnode_active_total", "Vnodes not on free lists."),
            (1, "vnode_allocate_total", "vn_alloc calls."),
            (2, "vnode_get_total", "vn_get calls."),
            (3, "vnode_hold_total", "vn_hold calls."),
            (4, "vnode_release_total", "vn_rele calls."),
            (5, "vnode_reclaim_total", "vn_reclaim calls."),
            (6, "vnode_remove_total", "vn_remove calls."),
        ),
    ),
}
# Categories node_exporter's parser validates as 32-bit counters without exporting them: a bad value
# there makes the file malformed for it too. (xpc, defer_relog and "gc xpc" are 64-bit.)
_WIDE = frozenset({"xpc", "defer_relog", "gc"})

METRICS = tuple(
    (category, position, suffix, doc)
    for category, (_, rows) in _CATEGORIES.items()
    for position, suffix, doc in rows
)


def parse_xfs_stats(text: str) -> tuple[dict[str, int], list[Skip]]:
    """metric suffix -> value for every exported counter (0 where its line is absent or malformed)."""
    values = dict.fromkeys((suffix for _, _, suffix, _ in METRICS), 0)
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        label = fields[0]
        try:
            numbers = parse_uints(fields[1:] if label != "gc" or fields[1] != "xpc" else fields[2:])
        except ValueError:
            skipped.append(Skip("xfs stats: non-numeric counter", line))
            continue
        if label in _WIDE:
            continue
        if numbers and max(numbers) > _MAX_UINT32:
            skipped.append(Skip("xfs stats: counter beyond 32 bits", line))
            continue
        category = _CATEGORIES.get(label)
        if category is None:
            continue
        counts, rows = category
        if len(numbers) not in counts:
            skipped.append(Skip("xfs stats: wrong number of counters", line))
            continue
        for position, suffix, _ in rows:
            values[suffix] = numbers[position]
    return values, skipped


@register
class XfsCollector(Collector):
    name = "xfs"

    def collect(self) -> Iterable[Metric]:
        root = self.paths.sys("fs", "xfs")
        try:
            names = list_dir(root)
        except (FileNotFoundError, NotADirectoryError):
            names = []  # XFS not loaded: node_exporter reports success with no samples
        families = {suffix: counter(f"node_xfs_{suffix}", doc) for _, _, suffix, doc in METRICS}
        for device in names:
            try:
                text = read_text(f"{root}/{device}/stats/stats")
            except (FileNotFoundError, NotADirectoryError):
                continue  # not a filesystem directory (e.g. <sysfs>/fs/xfs/stats itself)
            values, skipped = parse_xfs_stats(text)
            self.report(skipped)
            labels = {"device": device}
            for suffix, family in families.items():
                add_sample(family, labels, float(values[suffix]))
        return list(families.values())
