"""lnstat: per-CPU network cache statistics (ARP/NDISC neighbour tables, conntrack) from
<procfs>/net/stat/*, one counter family per column: node_lnstat_<column>_total{subsystem,cpu}."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics._names import is_metric_name_part
from nodeagent.metrics.host.files import list_dir, read_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


def parse_lnstat(text: str) -> tuple[dict[str, list[int]], list[Skip]]:
    """A header line of column names, then one row of hex counters per CPU -> {column: [per CPU]}.

    A table with a bad row (a non-hex value, more values than columns) is skipped whole: leaving out
    one row would shift every later CPU's number."""
    lines = text.splitlines()
    if not lines:
        return {}, []
    headers = lines[0].split()
    stats: dict[str, list[int]] = {}
    for line in lines[1:]:
        values = line.split()
        if len(values) > len(headers):
            return {}, [Skip("lnstat: row with more values than columns", line)]
        try:
            numbers = [parse_uint(value, 16) for value in values]
        except ValueError:
            return {}, [Skip("lnstat: value not hexadecimal", line)]
        for header, number in zip(headers, numbers, strict=False):
            stats.setdefault(header, []).append(number)
    return stats, []


@register
class LnstatCollector(Collector):
    name = "lnstat"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.proc("net", "stat")
        families: dict[str, Metric] = {}
        for subsystem in list_dir(directory):
            stats, skipped = parse_lnstat(read_text(f"{directory}/{subsystem}"))
            self.report(skipped)
            for header, values in stats.items():
                if not is_metric_name_part(header):
                    self.skip("lnstat: column name not usable in a metric name", header)
                    continue
                name = f"node_lnstat_{header}_total"
                family = families.get(name)
                if family is None:
                    family = families[name] = counter(name, f"Network cache statistic {header}, per CPU.")
                for cpu, value in enumerate(values):
                    add_sample(family, {"subsystem": subsystem, "cpu": str(cpu)}, value)
        return list(families.values())
