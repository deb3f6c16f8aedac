"""softirqs: softirq handler runs per CPU and type from <procfs>/softirqs."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

# The types prometheus/procfs knows; another line (a future kernel's type) is not exported, as upstream.
TYPES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU")


def parse_softirqs(text: str) -> tuple[dict[str, list[int]], list[Skip]]:
    """The table (a CPU header line, then ``TYPE: count per CPU``) -> {type: [count per CPU]}."""
    rows: dict[str, list[int]] = {}
    skipped: list[Skip] = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 2:
            continue
        kind = parts[0].removesuffix(":")
        if kind not in TYPES or not parts[0].endswith(":"):
            continue
        try:
            rows[kind] = parse_uints(parts[1:])
        except ValueError:
            skipped.append(Skip("softirqs: unparsable count", line))
    return rows, skipped


@register
class SoftirqsCollector(Collector):
    name = "softirqs"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        text = read_text(self.paths.proc("softirqs"))
        if not text:
            raise ValueError("softirqs is empty")
        rows, skipped = parse_softirqs(text)
        self.report(skipped)
        family = counter("node_softirqs_functions_total", "Softirq handler runs, per CPU and type.")
        for kind, counts in rows.items():
            for cpu, count in enumerate(counts):
                add_sample(family, {"cpu": str(cpu), "type": kind}, count)
        return [family]
