"""sysctl: chosen kernel parameters from <procfs>/sys/<name with dots as slashes>.

``--collector.sysctl.include=NAME`` exports a numeric sysctl as ``node_sysctl_<NAME>`` (untyped; one
value, or ``{index=...}`` per value); ``NAME:key0,key1,...`` names the values instead
(``node_sysctl_<NAME>_<key>``). ``--collector.sysctl.include-info=NAME`` exports a string sysctl as
``node_sysctl_info{name,value,index}``. Both flags repeat. As upstream, the first sysctl that cannot be
read or does not match its keys ends the scrape of this collector (what came before it is kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_string_list
from nodeagent.metrics._emit import add_sample, gauge, untyped
from nodeagent.metrics._names import sanitize_metric_name
from nodeagent.metrics.host.files import Paths
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.sysread import sys_read_file
from nodeagent.metrics.registry import Collector, CollectorOption, register


class Sysctl(NamedTuple):
    name: str
    keys: tuple[str, ...]  # names of the values, in order; empty: one value or indexed values
    numeric: bool


def parse_sysctl_spec(spec: str, numeric: bool) -> Sysctl:
    """``fs.file-nr`` or ``fs.file-nr:total,current,max`` -> Sysctl; a name that would leave
    <procfs>/sys (``..``, an empty component, ``/``) is refused (ValueError)."""
    name, colon, keys = spec.partition(":")
    parts = name.split(".")
    if not name or "/" in name or any(part in ("", "..") for part in parts):
        raise ValueError(f"not a sysctl name: {spec[:100]!r}")
    return Sysctl(name, tuple(keys.split(",")) if colon else (), numeric)


def parse_sysctl_names(raw: Any) -> tuple[str, ...]:
    """The option parser of include / include-info: a list of names (one string is a list of one),
    each a valid :func:`parse_sysctl_spec`. The config package has no repeatable-flag type yet: a
    list comes from the config file, the command line gives one name per flag."""
    specs = parse_string_list(raw)
    for spec in specs:
        parse_sysctl_spec(spec, True)
    return specs


def sysctl_families(sysctl: Sysctl, text: str) -> list[Metric]:
    """The families of one sysctl's whitespace-separated values (see the module docstring); numeric
    values are read with Go's base-0 ParseInt (``0x10`` is 16). ValueError when a value is not an
    integer or the values do not match the keys."""
    values = text.split()
    metric = f"node_sysctl_{sanitize_metric_name(sysctl.name)}"
    if not values:
        raise ValueError(f"sysctl {sysctl.name} has no values")
    if sysctl.keys and len(values) == 1:
        raise ValueError(f"sysctl {sysctl.name} has one value, {len(sysctl.keys)} keys were given")
    if sysctl.keys and len(values) != len(sysctl.keys):
        raise ValueError(f"sysctl {sysctl.name} has {len(values)} values, {len(sysctl.keys)} keys were given")
    if not sysctl.numeric:
        if sysctl.keys:
            raise ValueError(f"sysctl {sysctl.name}: keys are for numeric sysctls only")
        info = gauge("node_sysctl_info", "String sysctl values; the value is always 1.")
        for index, value in enumerate(values):
            add_sample(info, {"name": sysctl.name, "value": value, "index": str(index)}, 1.0)
        return [info]
    numbers = [parse_int(value, 0) for value in values]
    if sysctl.keys:
        families = []
        for index, (key, number) in enumerate(zip(sysctl.keys, numbers, strict=True)):
            family = untyped(
                f"{metric}_{sanitize_metric_name(key)}", f"sysctl {sysctl.name}, value {index} ({key})."
            )
            add_sample(family, {}, float(number))
            families.append(family)
        return families
    family = untyped(metric, f"sysctl {sysctl.name}.")
    if len(numbers) == 1:
        add_sample(family, {}, float(numbers[0]))
    else:
        for index, number in enumerate(numbers):
            add_sample(family, {"index": str(index)}, float(number))
    return [family]


@register
class SysctlCollector(Collector):
    name = "sysctl"
    default_enabled = False
    options = (
        CollectorOption(
            "include",
            (),
            "Numeric sysctl to export, NAME or NAME:key0,key1,... to name its values (repeatable).",
            parse_sysctl_names,
        ),
        CollectorOption(
            "include-info",
            (),
            "String sysctl to export as node_sysctl_info (repeatable).",
            parse_sysctl_names,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.sysctls = [parse_sysctl_spec(spec, True) for spec in parse_string_list(self.opts["include"])]
        self.sysctls += [
            parse_sysctl_spec(spec, False) for spec in parse_string_list(self.opts["include-info"])
        ]

    def collect(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        for sysctl in self.sysctls:
            path = self.paths.proc("sys", *sysctl.name.split("."))
            text = sys_read_file(path)
            yield from sysctl_families(sysctl, text)
