"""swap: size, use and priority of each swap device or file, from <procfs>/swaps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


class Swap(NamedTuple):
    device: str
    kind: str
    size_kib: int
    used_kib: int
    priority: int


def parse_swaps(text: str) -> tuple[list[Swap], list[Skip]]:
    """The table after its header line: ``/dev/dm-2 partition 131068 0 -2`` -> Swap; a row with fewer
    than 5 fields or a bad number is skipped."""
    swaps: list[Swap] = []
    skipped: list[Skip] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        try:
            if len(fields) < 5:
                raise ValueError("fewer than 5 fields")
            swaps.append(
                Swap(fields[0], fields[1], parse_int(fields[2]), parse_int(fields[3]), parse_int(fields[4]))
            )
        except ValueError:
            skipped.append(Skip("swaps: malformed row", line))
    return swaps, skipped


@register
class SwapCollector(Collector):
    name = "swap"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        swaps, skipped = parse_swaps(read_text(self.paths.proc("swaps")))
        self.report(skipped)
        size = gauge("node_swap_size_bytes", "Size of the swap device, in bytes.")
        used = gauge("node_swap_used_bytes", "Swap space in use on the device, in bytes.")
        priority = gauge("node_swap_priority", "Priority of the swap device (higher is used first).")
        for swap in swaps:
            labels = {"device": swap.device, "swap_type": swap.kind}
            add_sample(size, labels, swap.size_kib * 1024)
            add_sample(used, labels, swap.used_kib * 1024)
            add_sample(priority, labels, swap.priority)
        return [size, used, priority]
