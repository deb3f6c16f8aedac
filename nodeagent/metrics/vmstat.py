"""vmstat: selected virtual memory counters from <procfs>/vmstat as untyped node_vmstat_<name>.

Which counters: option fields, a regexp matched against each name (node_exporter's default keeps page
faults, paging and swapping, and OOM kills).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from nodeagent.config import parse_regex
from nodeagent.metrics import _parse_errors
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics.registry import Collector, CollectorOption, read_text, register

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


def parse_vmstat(
    text: str,
    fields: re.Pattern[str] | None,
    on_error: Callable[[str], None] = lambda line: None,
    selected: dict[str, bool] | None = None,
) -> dict[str, float]:
    """Counter name -> value for names matching ``fields`` (None selects nothing).

    ``selected`` caches the pattern's verdict per name (the set of names is fixed per kernel), so a
    scrape does not run the regexp on every line.
    """
    values: dict[str, float] = {}
    if fields is None:
        return values
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
                on_error(line)
    for name, raw in pairs:
        wanted = selected.get(name)
        if wanted is None:
            wanted = selected[name] = fields.search(name) is not None
        if not wanted:
            continue
        try:
            values[name] = float(raw)
        except ValueError:
            on_error(f"{name} {raw}")
    return values


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
        values = parse_vmstat(
            read_text(self.paths.proc("vmstat")),
            self.fields,
            lambda line: _parse_errors.skipped(self.name, "vmstat line", line),
            self._selected,
        )
        families = []
        for name, value in values.items():
            metric = "node_vmstat_" + name
            family = Metric(metric, f"{name} from /proc/vmstat.", "unknown")
            family.samples.append(Sample(metric, {}, value))
            families.append(family)
        return families
