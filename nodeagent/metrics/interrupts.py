"""interrupts: interrupt counts per CPU from <procfs>/interrupts.

Numbered IRQs carry their chip/type in ``info`` and the device names in ``devices``; named ones (NMI,
LOC, ...) carry their description in ``info``. Lines with fewer values than CPUs (ERR, MIS) are left out,
as upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_regex
from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics._filters import NameFilter
from nodeagent.metrics.host.files import Paths, read_text
from nodeagent.metrics.host.gonum import parse_float, parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, register


class Interrupt(NamedTuple):
    info: str
    devices: str
    values: list[str]  # one per CPU, parsed when exported (as upstream)


def parse_interrupts(text: str) -> dict[str, Interrupt]:
    """The table -> {irq name: Interrupt}; the header line gives the number of CPUs."""
    lines = text.splitlines()
    if not lines:
        return {}
    cpus = len(lines[0].split())
    interrupts: dict[str, Interrupt] = {}
    for line in lines[1:]:
        name, colon, rest = line.partition(":")
        if not colon:
            continue
        parts = rest.split()
        if len(parts) < cpus + 1:
            continue
        name = name.lstrip(" ")
        try:
            parse_int(name)
            numbered = True
        except ValueError:
            numbered = False
        if numbered:
            interrupts[name] = Interrupt(parts[cpus], " ".join(parts[cpus + 1 :]), parts[:cpus])
        else:
            interrupts[name] = Interrupt(" ".join(parts[cpus:]), "", parts[:cpus])
    return interrupts


@register
class InterruptsCollector(Collector):
    name = "interrupts"
    default_enabled = False
    options = (
        CollectorOption(
            "name-include", "", "Regexp of interrupts (NAME;INFO;DEVICES) to export.", parse_regex
        ),
        CollectorOption(
            "name-exclude", "", "Regexp of interrupts (NAME;INFO;DEVICES) to leave out.", parse_regex
        ),
        CollectorOption("include-zeros", True, "Export interrupts whose count is zero.", parse_bool),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = NameFilter(self.opts["name-exclude"], self.opts["name-include"])
        self.include_zeros = parse_bool(self.opts["include-zeros"])

    def collect(self) -> Iterable[Metric]:
        interrupts = parse_interrupts(read_text(self.paths.proc("interrupts")))
        family = counter("node_interrupts_total", "Interrupts serviced, per CPU and interrupt.")
        skipped: list[Skip] = []
        for name, irq in interrupts.items():
            if self.filter.ignored(f"{name};{irq.info};{irq.devices}"):
                continue
            for cpu, text in enumerate(irq.values):
                try:
                    value = parse_float(text)
                except ValueError:
                    skipped.append(Skip("interrupts: unparsable count", text))
                    continue
                if value == 0.0 and not self.include_zeros:
                    continue
                add_sample(
                    family, {"cpu": str(cpu), "type": name, "info": irq.info, "devices": irq.devices}, value
                )
        self.report(skipped)
        return [family]
