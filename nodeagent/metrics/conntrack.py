"""conntrack: netfilter connection tracking table usage and statistics (node_nf_conntrack_*).

Entries and limit come from <procfs>/sys/net/netfilter/nf_conntrack_{count,max} (absent when the
nf_conntrack module is not loaded: no data). The node_nf_conntrack_stat_* values are summed over the
per-CPU rows of <procfs>/net/stat/nf_conntrack. Upstream exposes them as gauges although they are
counters; we keep its types.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_text, read_uint
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# Column of net/stat/nf_conntrack -> our metric suffix and help. search_restart (column 16) exists
# since Linux 2.6.35; older rows have 16 columns and report it as 0.
STAT_COLUMNS = (
    (2, "found", "Conntrack table lookups that found an entry."),
    (4, "invalid", "Packets that could not be tracked."),
    (5, "ignore", "Packets that already had a conntrack entry attached."),
    (8, "insert", "Entries inserted into the conntrack table."),
    (9, "insert_failed", "Entry insertions that failed (e.g. the entry already existed)."),
    (10, "drop", "Packets dropped because tracking failed."),
    (11, "early_drop", "Entries evicted early to make room while the table was full."),
    (16, "search_restart", "Table lookups restarted because the hash table was resized."),
)


def parse_conntrack_stat(text: str) -> tuple[dict[str, int], list[Skip]]:
    """Sum of each statistic over the per-CPU rows (hexadecimal; the first line is a header), and the
    malformed rows skipped."""
    totals = dict.fromkeys((name for _, name, _ in STAT_COLUMNS), 0)
    skipped: list[Skip] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            if not 16 <= len(fields) <= 17:
                raise ValueError(f"{len(fields)} columns, expected 16 or 17")
            values = parse_uints(fields, 16)
        except ValueError:
            skipped.append(Skip("net/stat/nf_conntrack line without 16 or 17 hexadecimal columns", line))
            continue
        for column, name, _ in STAT_COLUMNS:
            if column < len(values):
                totals[name] += values[column]
    return totals, skipped


@register
class ConntrackCollector(Collector):
    name = "conntrack"

    def collect(self) -> Iterable[Metric]:
        netfilter = self.paths.proc("sys", "net", "netfilter")
        try:
            count = read_uint(f"{netfilter}/nf_conntrack_count")
            limit = read_uint(f"{netfilter}/nf_conntrack_max")
        except FileNotFoundError as exc:
            raise NoDataError(f"conntrack probably not loaded: {exc}") from exc
        except ValueError as exc:
            self.skip("nf_conntrack_count/max value", exc)
            raise
        yield single(
            gauge("node_nf_conntrack_entries", "Flow entries currently in the connection tracking table."),
            float(count),
        )
        yield single(
            gauge("node_nf_conntrack_entries_limit", "Size limit of the connection tracking table."),
            float(limit),
        )
        # A missing stat file fails the collector after entries/limit were yielded, as upstream.
        totals, skipped = parse_conntrack_stat(read_text(self.paths.proc("net", "stat", "nf_conntrack")))
        self.report(skipped)
        for _, name, help_text in STAT_COLUMNS:
            yield single(gauge(f"node_nf_conntrack_stat_{name}", help_text), float(totals[name]))
