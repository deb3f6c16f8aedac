"""meminfo: memory statistics from <procfs>/meminfo as node_memory_<Field>_bytes gauges.

node_exporter (since it reads meminfo through procfs) exports a fixed set of fields; the same set is kept
here so that a newer kernel's extra fields do not appear as series node_exporter would not have. Values in
kB are multiplied by 1024 and get a ``_bytes`` suffix; unit-less fields (HugePages_*) keep their name.
``Active(anon)`` becomes ``Active_anon``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

# The /proc/meminfo fields node_exporter exports (prometheus/procfs Meminfo fields it maps).
EXPORTED_FIELDS = frozenset(
    (
        "Active",
        "Active(anon)",
        "Active(file)",
        "AnonHugePages",
        "AnonPages",
        "Bounce",
        "Buffers",
        "Cached",
        "CmaFree",
        "CmaTotal",
        "CommitLimit",
        "Committed_AS",
        "DirectMap1G",
        "DirectMap2M",
        "DirectMap4k",
        "Dirty",
        "HardwareCorrupted",
        "Hugepagesize",
        "Inactive",
        "Inactive(anon)",
        "Inactive(file)",
        "KernelStack",
        "Mapped",
        "MemAvailable",
        "MemFree",
        "MemTotal",
        "Mlocked",
        "NFS_Unstable",
        "PageTables",
        "Percpu",
        "SReclaimable",
        "SUnreclaim",
        "Shmem",
        "ShmemHugePages",
        "ShmemPmdMapped",
        "Slab",
        "SwapCached",
        "SwapFree",
        "SwapTotal",
        "Unevictable",
        "VmallocChunk",
        "VmallocTotal",
        "VmallocUsed",
        "Writeback",
        "WritebackTmp",
        "Zswap",
        "Zswapped",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
        "HugePages_Total",
    )
)


def metric_suffix(field: str, has_unit: bool) -> str:
    """``Active(anon)``, kB -> ``Active_anon_bytes``; ``HugePages_Total``, no unit -> ``HugePages_Total``."""
    if "(" in field:
        field = field.replace("(", "_").replace(")", "")
    return f"{field}_bytes" if has_unit else field


# "Field:" as it starts a line -> (suffix with a kB unit, suffix without), computed once.
_SUFFIXES = {
    f"{field}:": (metric_suffix(field, True), metric_suffix(field, False)) for field in EXPORTED_FIELDS
}


def parse_meminfo(text: str) -> tuple[dict[str, float], list[Skip]]:
    """Metric name suffix -> value for every exported field, and the malformed lines skipped."""
    values: dict[str, float] = {}
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue  # some kernels print empty lines
        suffixes = _SUFFIXES.get(parts[0])
        if suffixes is None:
            continue
        try:
            value = parse_uint(parts[1])
        except (IndexError, ValueError):
            skipped.append(Skip("meminfo line", line))
            continue
        if len(parts) == 2:
            values[suffixes[1]] = float(value)
        elif len(parts) == 3 and parts[2] == "kB":
            values[suffixes[0]] = float(value * 1024)
        else:
            skipped.append(Skip("meminfo line", line))
    return values, skipped


_HELP = {
    suffix: (
        f"{suffix.removesuffix('_bytes')} from /proc/meminfo, in bytes."
        if suffix.endswith("_bytes")
        else f"{suffix} from /proc/meminfo."
    )
    for pair in _SUFFIXES.values()
    for suffix in pair
}


@register
class MeminfoCollector(Collector):
    name = "meminfo"

    def collect(self) -> Iterable[Metric]:
        values, skipped = parse_meminfo(read_text(self.paths.proc("meminfo")))
        self.report(skipped)
        return [
            single(gauge("node_memory_" + suffix, _HELP[suffix]), value) for suffix, value in values.items()
        ]
