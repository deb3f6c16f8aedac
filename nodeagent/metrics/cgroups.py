"""cgroups: per controller (v1 hierarchy view), how many cgroups use it and whether it is enabled,
from <procfs>/cgroups."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


def parse_cgroups(text: str) -> tuple[list[tuple[str, int, int]], list[Skip]]:
    """``#subsys_name hierarchy num_cgroups enabled`` table -> [(name, num_cgroups, enabled), ...];
    the header (any line starting with '#') is not data; a short or unparsable row is skipped."""
    rows: list[tuple[str, int, int]] = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = line.split()
        try:
            if len(fields) < 4:
                raise ValueError("fewer than 4 fields")
            parse_int(fields[1])  # the hierarchy ID: not exported, but a row without one is malformed
            rows.append((fields[0], parse_int(fields[2]), parse_int(fields[3])))
        except ValueError:
            skipped.append(Skip("cgroups: malformed row", line))
    return rows, skipped


@register
class CgroupsCollector(Collector):
    name = "cgroups"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        rows, skipped = parse_cgroups(read_text(self.paths.proc("cgroups")))
        self.report(skipped)
        count = gauge("node_cgroups_cgroups", "Number of cgroups using this controller.")
        enabled = gauge("node_cgroups_enabled", "Whether this controller is enabled (1) or not (0).")
        for name, cgroups, on in rows:
            labels = {"subsys_name": name}
            add_sample(count, labels, cgroups)
            add_sample(enabled, labels, on)
        return [count, enabled]
