"""vmstat: selected virtual memory counters from <procfs>/vmstat as untyped node_vmstat_<name>.

Which counters: option fields, a regexp matched against each name (node_exporter's default keeps page
faults, paging and swapping, and OOM kills).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics_core import Metric, UnknownMetricFamily

from nodeagent.config import parse_regex
from nodeagent.metrics import _parse_errors
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics.registry import Collector, CollectorOption, read_text, register

DEFAULT_FIELDS = r"^(oom_kill|pgpg|pswp|pg.*fault).*"


def parse_vmstat(text: str, fields: re.Pattern[str] | None,
                 on_error: Callable[[str], None] = lambda line: None) -> dict[str, float]:
    """Counter name -> value for names matching ``fields`` (None selects nothing)."""
    values: dict[str, float] = {}
    if fields is None:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name or not fields.search(name):
            continue
        try:
            values[name] = float(rest)
        except ValueError:
            on_error(line)
    return values


@register
class VmstatCollector(Collector):
    name = "vmstat"
    options = (CollectorOption("fields", DEFAULT_FIELDS, "Regexp of /proc/vmstat fields to export.",
                               parse_regex),)

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.fields = go_regex(options.get("fields", DEFAULT_FIELDS))

    def collect(self) -> Iterable[Metric]:
        values = parse_vmstat(read_text(self.paths.proc("vmstat")), self.fields,
                              lambda line: _parse_errors.skipped(self.name, "vmstat line", line))
        for name, value in values.items():
            yield UnknownMetricFamily(f"node_vmstat_{name}", f"Kernel counter {name} from /proc/vmstat.",
                                      value=value)
