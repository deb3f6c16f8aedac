"""vmstat: selected virtual memory counters from <procfs>/vmstat as untyped node_vmstat_<name>.

Which counters: option fields, a regexp matched against each name (node_exporter's default keeps page
faults, paging and swapping, and OOM kills).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import single, untyped
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, register

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


def parse_vmstat(
    text: str,
    fields: re.Pattern[str] | None,
    selected: dict[str, bool] | None = None,
) -> tuple[dict[str, float], list[Skip]]:
    """Counter name -> value for names matching ``fields`` (None selects nothing), and the malformed
    lines skipped.

    ``selected`` caches the pattern's verdict per name (the set of names is fixed per kernel), so a
    scrape does not run the regexp on every line.
    """
    values: dict[str, float] = {}
    skipped: list[Skip] = []
    if fields is None:
        return values, skipped
    if selected is None:
        selected = {}
    tokens = text.split()
    if len(tokens) == 2 * text.count("\n") + (0 if text.endswith("\n") or not text else 2):
        pairs: Iterable[tuple[str, str]] = zip(tokens[0::2], tokens[1::2], strict=True)
    else:  # some line is not "name value": go line by line to find and report it
        pairs = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2:
                pairs.append((parts[0], parts[1]))
            elif parts:
                skipped.append(Skip("vmstat line", line))
    for name, raw in pairs:
        wanted = selected.get(name)
        if wanted is None:
            wanted = selected[name] = fields.search(name) is not None
        if not wanted:
            continue
        try:
            values[name] = parse_float(raw)
        except ValueError:
            skipped.append(Skip("vmstat line", f"{name} {raw}"))
    return values, skipped


@register
class VmstatCollector(Collector):
    name = "vmstat"
    options = (
        CollectorOption("fields", DEFAULT_FIELDS, "Regexp of /proc/vmstat fields to export.", parse_regex),
    )

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.fields = go_regex(options.get("fields", DEFAULT_FIELDS))
        self._selected: dict[str, bool] = {}

    def collect(self) -> Iterable[Metric]:
        values, skipped = parse_vmstat(read_text(self.paths.proc("vmstat")), self.fields, self._selected)
        self.report(skipped)
        return [
            single(untyped("node_vmstat_" + name, f"{name} from /proc/vmstat."), value)
            for name, value in values.items()
        ]
