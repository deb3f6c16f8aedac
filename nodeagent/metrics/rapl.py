"""rapl: energy counters of the RAPL power zones (package, core, dram, ...) from
<sysfs>/class/powercap/*/{name,energy_uj}, in joules.

A zone's metric is ``node_rapl_<name>_joules_total{index,path}``, ``name-N`` giving index N; with
``--collector.rapl.enable-zone-label`` every zone is ``node_rapl_joules_total{index,path,rapl_zone}``.
``path`` is the zone's directory as upstream prints it: --path.sysfs joined and cleaned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics._names import sanitize_metric_name
from nodeagent.metrics.host.files import Paths, list_dir, read_text, read_uint
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, register


class RaplZone(NamedTuple):
    name: str
    number: int  # the "index" label
    path: str


def zone_index_and_name(name: str, seen: dict[str, int]) -> tuple[int, str]:
    """``package-0`` -> (0, "package"); a name without a numeric suffix counts its repeats."""
    parts = name.split("-")
    if len(parts) == 2:
        try:
            return parse_int(parts[1]), parts[0]
        except ValueError:
            pass
    return seen.get(name, 0), name


def rapl_zones(directory: str) -> list[RaplZone]:
    """The zones below ``directory`` (class/powercap): entries with a readable ``name``. As upstream,
    a zone without a readable max_energy_range_uj fails the whole listing (OSError/ValueError)."""
    zones = []
    seen: dict[str, int] = {}
    for entry in list_dir(directory):
        path = os.path.normpath(f"{directory}/{entry}")
        try:
            raw_name = read_text(f"{path}/name").strip()
        except OSError:
            continue
        index, name = zone_index_and_name(raw_name, seen)
        read_uint(f"{path}/max_energy_range_uj")
        zones.append(RaplZone(name, index, path))
        seen[name] = index + 1
    return zones


@register
class RaplCollector(Collector):
    name = "rapl"
    options = (
        CollectorOption(
            "enable-zone-label",
            False,
            "One family node_rapl_joules_total with the zone in a rapl_zone label, "
            "instead of one family per zone name.",
            parse_bool,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.zone_label = parse_bool(self.opts["enable-zone-label"])

    def collect(self) -> Iterable[Metric]:
        try:
            zones = rapl_zones(self.paths.sys("class", "powercap"))
        except (FileNotFoundError, PermissionError):
            raise NoDataError("no readable powercap zones") from None
        families: dict[str, Metric] = {}
        for zone in zones:
            try:
                microjoules = read_uint(f"{zone.path}/energy_uj")
            except PermissionError:  # root-only since Linux 5.10 (CVE-2020-8694)
                raise NoDataError("energy_uj is not readable") from None
            labels = {"index": str(zone.number), "path": zone.path}
            if self.zone_label:
                name = "node_rapl_joules_total"
                labels["rapl_zone"] = zone.name
            else:
                name = f"node_rapl_{sanitize_metric_name(zone.name)}_joules_total"
            family = families.get(name)
            if family is None:
                family = families[name] = counter(name, "Energy used by this RAPL zone, in joules.")
            add_sample(family, labels, microjoules / 1000000.0)
        return list(families.values())
