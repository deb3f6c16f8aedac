"""slabinfo: kernel slab allocator caches from <procfs>/slabinfo (version 2.1; root-only on most
kernels)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics._filters import NameFilter
from nodeagent.metrics.host.files import Paths, read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, register

# the fields prometheus/procfs parses (and so checks): 5 object figures, 3 tunables, 3 slabdata
_NUMBER_FIELDS = (1, 2, 3, 4, 5, 8, 9, 10, 13, 14, 15)
_GO_SPACE = re.compile(r"[\t\n\f\r ]+")  # Go's \s: a line is split on each run of it, as prometheus/procfs


class Slab(NamedTuple):
    name: str
    active_objects: int
    objects: int
    object_size: int
    objects_per_slab: int
    pages_per_slab: int


def parse_slabinfo(text: str) -> tuple[list[Slab], list[Skip]]:
    """The version and ``# name`` header lines aside, each line must have exactly 16 fields
    (name, 5 numbers, ``: tunables`` 3, ``: slabdata`` 3); any other line is skipped."""
    slabs: list[Slab] = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        if "slabinfo -" in line or "# name" in line:
            continue
        if line.isprintable() and line[:1] != " " and line[-1:] != " ":
            fields = line.split()  # spaces only, none at the ends: the same fields as Go's, faster
        else:
            fields = _GO_SPACE.sub(" ", line).split(" ")
        try:
            if len(fields) != 16:
                raise ValueError("not 16 fields")
            numeric = [fields[i] for i in _NUMBER_FIELDS]
            joined = "".join(numeric)
            if joined.isascii() and joined.isdigit():
                numbers = [int(text) for text in numeric]  # the usual row: plain digits
            else:
                numbers = [parse_int(text) for text in numeric]
        except ValueError:
            skipped.append(Skip("slabinfo: malformed line", line))
            continue
        slabs.append(Slab(fields[0], *numbers[:5]))
    return slabs, skipped


@register
class SlabinfoCollector(Collector):
    name = "slabinfo"
    default_enabled = False
    options = (
        CollectorOption("slabs-include", ".*", "Regexp of slabs to export.", parse_regex),
        CollectorOption("slabs-exclude", "", "Regexp of slabs to leave out.", parse_regex),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = NameFilter(self.opts["slabs-exclude"], self.opts["slabs-include"])

    def collect(self) -> Iterable[Metric]:
        slabs, skipped = parse_slabinfo(read_text(self.paths.proc("slabinfo")))
        self.report(skipped)
        active = gauge("node_slabinfo_active_objects", "Objects in use in this slab cache.")
        objects = gauge("node_slabinfo_objects", "Objects allocated (in use or not) in this slab cache.")
        size = gauge("node_slabinfo_object_size_bytes", "Size of one object of this slab cache, in bytes.")
        per_slab = gauge("node_slabinfo_objects_per_slab", "Objects stored in each slab.")
        pages = gauge("node_slabinfo_pages_per_slab", "Pages allocated for each slab.")
        for slab in slabs:
            if self.filter.ignored(slab.name):
                continue
            labels = {"slab": slab.name}
            add_sample(active, labels, slab.active_objects)
            add_sample(objects, labels, slab.objects)
            add_sample(size, labels, slab.object_size)
            add_sample(per_slab, labels, slab.objects_per_slab)
            add_sample(pages, labels, slab.pages_per_slab)
        return [active, objects, size, per_slab, pages]
