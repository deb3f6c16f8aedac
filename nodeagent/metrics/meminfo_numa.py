"""meminfo_numa: per NUMA node memory figures from <sysfs>/devices/system/node/nodeN/meminfo
(node_memory_numa_<field>, bytes) and allocation counters from .../numastat (..._total)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics._names import is_metric_name_part
from nodeagent.metrics.host.files import list_dir, read_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

_DIGITS = frozenset("0123456789")
_NODE_DIR = re.compile(r"node([0-9]*)")
_PARENTHESIS = re.compile(r"\((.*)\)")


def parse_node_meminfo(text: str) -> tuple[list[tuple[str, str, float]], list[Skip]]:
    """``Node 0 MemTotal:  16 kB`` lines -> [(node, field, bytes)]; ``Active(anon)`` becomes
    ``Active_anon``; a value with a unit other than kB, or none parsable, is skipped."""
    rows: list[tuple[str, str, float]] = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 4:
                raise ValueError("fewer than 4 fields")
            value = parse_float(parts[3])
            if len(parts) == 5 and parts[4] == "kB":
                value *= 1024
            elif len(parts) != 4:
                raise ValueError("unknown unit")
        except ValueError:
            skipped.append(Skip("meminfo_numa: malformed meminfo line", line))
            continue
        rows.append((parts[1], _PARENTHESIS.sub(r"_\1", parts[2].rstrip(":")), value))
    return rows, skipped


def parse_numastat(text: str) -> tuple[list[tuple[str, float]], list[Skip]]:
    """``numa_hit 193460335`` lines -> [(counter, value)]."""
    rows: list[tuple[str, float]] = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 2:
                raise ValueError("not 2 fields")
            rows.append((parts[0], parse_float(parts[1])))
        except ValueError:
            skipped.append(Skip("meminfo_numa: malformed numastat line", line))
    return rows, skipped


@register
class MeminfoNumaCollector(Collector):
    name = "meminfo_numa"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.sys("devices", "system", "node")
        try:
            nodes = [name for name in list_dir(directory) if name.startswith("node") and name[4:5] in _DIGITS]
        except FileNotFoundError:
            nodes = []  # no NUMA support in sysfs: nothing to report, as upstream's empty glob
        families: dict[str, Metric] = {}

        def family(name: str, kind: str) -> Metric:
            found = families.get(name)
            if found is None:
                make = counter if kind == "counter" else gauge
                found = families[name] = make(
                    name, f"NUMA node memory field {name.removeprefix('node_memory_numa_')}."
                )
            return found

        for node in nodes:
            rows, skipped = parse_node_meminfo(read_text(f"{directory}/{node}/meminfo"))
            self.report(skipped)
            for node_label, field, value in rows:
                if is_metric_name_part(field):
                    add_sample(family(f"node_memory_numa_{field}", "gauge"), {"node": node_label}, value)
                else:
                    self.skip("meminfo_numa: field not usable in a metric name", field)
            stats, skipped = parse_numastat(read_text(f"{directory}/{node}/numastat"))
            self.report(skipped)
            number = _NODE_DIR.match(node)
            labels = {"node": number.group(1) if number else ""}
            for name, value in stats:
                if is_metric_name_part(name):
                    add_sample(family(f"node_memory_numa_{name}_total", "counter"), labels, value)
                else:
                    self.skip("meminfo_numa: counter not usable in a metric name", name)
        return list(families.values())
