"""meminfo: memory statistics from <procfs>/meminfo as node_memory_<Field>_bytes gauges.

node_exporter (since it reads meminfo through procfs) exports a fixed set of fields; the same set is kept
here so that a newer kernel's extra fields do not appear as series node_exporter would not have. Values in
kB are multiplied by 1024 and get a ``_bytes`` suffix; unit-less fields (HugePages_*) keep their name.
``Active(anon)`` becomes ``Active_anon``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.registry import Collector, read_text, register

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


def parse_meminfo(text: str, on_error: Callable[[str], None] = lambda line: None) -> dict[str, float]:
    """Metric name suffix -> value for every exported field; malformed lines go to ``on_error``."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue  # some kernels print empty lines
        suffixes = _SUFFIXES.get(parts[0])
        if suffixes is None:
            continue
        try:
            value = int(parts[1])
        except (IndexError, ValueError):
            on_error(line)
            continue
        if len(parts) == 2:
            values[suffixes[1]] = float(value)
        elif len(parts) == 3 and parts[2] == "kB":
            values[suffixes[0]] = float(value * 1024)
        else:
            on_error(line)
    return values


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
        values = parse_meminfo(
            read_text(self.paths.proc("meminfo")),
            lambda line: _parse_errors.skipped(self.name, "meminfo line", line),
        )
        families = []
        for suffix, value in values.items():
            # Metric + Sample directly: a third cheaper than GaugeMetricFamily, and there are ~50 per scrape.
            name = "node_memory_" + suffix
            family = Metric(name, _HELP[suffix], "gauge")
            family.samples.append(Sample(name, {}, value))
            families.append(family)
        return families
