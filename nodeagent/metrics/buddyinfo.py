"""buddyinfo: free blocks per allocation order, per NUMA node and zone, from <procfs>/buddyinfo."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_floats
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


def parse_buddyinfo(text: str) -> tuple[list[tuple[str, str, list[float]]], list[Skip]]:
    """``Node 0, zone   DMA   1 0 1 ...`` lines -> [(node, zone, [count per order]), ...].

    As prometheus/procfs, every line must have as many orders as the first one; a line that does not,
    or that has fewer than 4 fields or a bad count, is skipped."""
    rows: list[tuple[str, str, list[float]]] = []
    skipped: list[Skip] = []
    orders = -1
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            skipped.append(Skip("buddyinfo: line with fewer than 4 fields", line))
            continue
        if orders == -1:
            orders = len(fields) - 4
        elif len(fields) - 4 != orders:
            skipped.append(Skip("buddyinfo: line with another number of orders", line))
            continue
        try:
            counts = parse_floats(fields[4:])
        except ValueError:
            skipped.append(Skip("buddyinfo: unparsable count", line))
            continue
        rows.append((fields[1].removesuffix(","), fields[3].removesuffix(","), counts))
    return rows, skipped


@register
class BuddyinfoCollector(Collector):
    name = "buddyinfo"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        rows, skipped = parse_buddyinfo(read_text(self.paths.proc("buddyinfo")))
        self.report(skipped)
        blocks = gauge("node_buddyinfo_blocks", "Free memory blocks of each size (order), per node and zone.")
        for node, zone, counts in rows:
            for order, count in enumerate(counts):
                add_sample(blocks, {"node": node, "zone": zone, "size": str(order)}, count)
        return [blocks]
