"""zoneinfo: per NUMA node and memory zone page counts from <procfs>/zoneinfo.

The file is cut into blocks at each line starting with "Node"; a block's node and zone come from its
``Node N, zone NAME`` line, its values from ``key value`` lines; as prometheus/procfs, a block's
per-node statistics count for its first zone, and a key seen twice keeps its last value. Where
prometheus/procfs turns an unparsable value into 0, it is left out here (and reported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

# zoneinfo key -> (metric, is a counter, help)
FIELDS = {
    "nr_free_pages": ("nr_free_pages", False, "Free pages in the zone."),
    "min": ("min_pages", False, "Zone watermark pages_min."),
    "low": ("low_pages", False, "Zone watermark pages_low."),
    "high": ("high_pages", False, "Zone watermark pages_high."),
    "scanned": ("scanned_pages", False, "Pages scanned since the last reclaim."),
    "spanned": ("spanned_pages", False, "Pages the zone spans, holes included."),
    "present": ("present_pages", False, "Physical pages in the zone."),
    "managed": ("managed_pages", False, "Present pages managed by the buddy allocator."),
    "nr_active_anon": ("nr_active_anon_pages", False, "Anonymous pages on the active list."),
    "nr_inactive_anon": ("nr_inactive_anon_pages", False, "Anonymous pages on the inactive list."),
    "nr_isolated_anon": ("nr_isolated_anon_pages", False, "Anonymous pages isolated from the LRU."),
    "nr_anon_pages": ("nr_anon_pages", False, "Anonymous pages in use."),
    "nr_anon_transparent_hugepages": (
        "nr_anon_transparent_hugepages",
        False,
        "Anonymous transparent huge pages in use.",
    ),
    "nr_active_file": ("nr_active_file_pages", False, "File-backed pages on the active list."),
    "nr_inactive_file": ("nr_inactive_file_pages", False, "File-backed pages on the inactive list."),
    "nr_isolated_file": ("nr_isolated_file_pages", False, "File-backed pages isolated from the LRU."),
    "nr_file_pages": ("nr_file_pages", False, "File pages."),
    "nr_slab_reclaimable": ("nr_slab_reclaimable_pages", False, "Reclaimable slab pages."),
    "nr_slab_unreclaimable": ("nr_slab_unreclaimable_pages", False, "Unreclaimable slab pages."),
    "nr_mlock_stack": ("nr_mlock_stack_pages", False, "mlock()ed pages moved off the LRU."),
    "nr_kernel_stack": ("nr_kernel_stacks", False, "Kernel stacks."),
    "nr_mapped": ("nr_mapped_pages", False, "Mapped pages."),
    "nr_dirty": ("nr_dirty_pages", False, "Dirty pages."),
    "nr_writeback": ("nr_writeback_pages", False, "Pages under writeback."),
    "nr_unevictable": ("nr_unevictable_pages", False, "Unevictable pages."),
    "nr_shmem": ("nr_shmem_pages", False, "Shared memory pages (tmpfs, GEM included)."),
    "nr_dirtied": ("nr_dirtied_total", True, "Pages dirtied since boot."),
    "nr_written": ("nr_written_total", True, "Pages written since boot."),
    "numa_hit": ("numa_hit_total", True, "Allocations on the intended node."),
    "numa_miss": ("numa_miss_total", True, "Allocations here intended for another node."),
    "numa_foreign": ("numa_foreign_total", True, "Allocations intended here, made on another node."),
    "numa_interleave": ("numa_interleave_total", True, "Interleaved allocations that chose this zone."),
    "numa_local": ("numa_local_total", True, "Allocations from the local node."),
    "numa_other": ("numa_other_total", True, "Allocations from another node."),
}

_NODE_ZONE = re.compile(r"(\d+), zone\s+(\w+)", re.ASCII)


class Zone:
    __slots__ = ("node", "protection", "values", "zone")

    def __init__(self) -> None:
        self.node = ""
        self.zone = ""
        self.values: dict[str, int] = {}
        self.protection: list[int] = []


def parse_zoneinfo(text: str) -> tuple[list[Zone], list[Skip]]:
    """Blocks of <procfs>/zoneinfo -> zones (see the module docstring)."""
    zones: list[Zone] = []
    skipped: list[Skip] = []
    for block in text.split("\nNode"):
        zone = Zone()
        for line in block.split("\n"):
            found = _NODE_ZONE.search(line)
            if found:
                zone.node, zone.zone = found.group(1), found.group(2)
                continue
            parts = line.split()
            if len(parts) < 2:
                continue
            key = parts[0]
            if key == "protection:":
                values = line.split(":")[1].replace("(", "", 1).replace(")", "", 1).strip().split(", ")
                try:
                    zone.protection = [parse_int(value) for value in values]
                except ValueError:
                    skipped.append(Skip("zoneinfo: unparsable protection", line))
            elif key in FIELDS:
                try:
                    zone.values[key] = parse_int(parts[1], 0)
                except ValueError:
                    skipped.append(Skip("zoneinfo: unparsable value", line))
        zones.append(zone)
    return zones, skipped


@register
class ZoneinfoCollector(Collector):
    name = "zoneinfo"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        zones, skipped = parse_zoneinfo(read_text(self.paths.proc("zoneinfo")))
        self.report(skipped)
        families: dict[str, Metric] = {}
        for zone in zones:
            labels = {"node": zone.node, "zone": zone.zone}
            for key, value in zone.values.items():
                metric, is_counter, help_text = FIELDS[key]
                family = families.get(metric)
                if family is None:
                    make = counter if is_counter else gauge
                    family = families[metric] = make(f"node_zoneinfo_{metric}", help_text)
                add_sample(family, labels, value)
            for index, value in enumerate(zone.protection):
                metric = f"protection_{index}"
                family = families.get(metric)
                if family is None:
                    family = families[metric] = gauge(
                        f"node_zoneinfo_{metric}",
                        f"Pages of this zone kept back from allocations for zone {index}.",
                    )
                add_sample(family, labels, value)
        return list(families.values())
