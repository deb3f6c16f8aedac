"""watchdog: hardware/software watchdog timers from <sysfs>/class/watchdog/*/.

Numeric attributes become ``node_watchdog_<attribute>{name}`` (timeouts in seconds), the text
attributes labels of ``node_watchdog_info``. Attributes a driver does not provide are left out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._sysfs_attrs import go_parse_int, read_attr
from nodeagent.metrics.registry import Collector, NoDataError, register

log = logging.getLogger("nodeagent.metrics.watchdog")

# attribute file -> (metric name, help)
NUMERIC_ATTRIBUTES = {
    "bootstatus": ("node_watchdog_bootstatus", "Watchdog bootstatus attribute (WDIOF_* flags of last boot)."),
    "fw_version": ("node_watchdog_fw_version", "Watchdog firmware version attribute."),
    "nowayout": ("node_watchdog_nowayout", "1 if the watchdog cannot be stopped once started."),
    "timeleft": ("node_watchdog_timeleft_seconds", "Seconds left before the watchdog fires."),
    "timeout": ("node_watchdog_timeout_seconds", "Watchdog timeout, in seconds."),
    "pretimeout": ("node_watchdog_pretimeout_seconds", "Watchdog pretimeout, in seconds."),
    "access_cs0": ("node_watchdog_access_cs0", "Watchdog access_cs0 attribute (alternate flash boot)."),
}
INFO_ATTRIBUTES = ("options", "identity", "state", "status", "pretimeout_governor")


def read_watchdog(path: str) -> tuple[dict[str, float], dict[str, str]]:
    """(numeric attribute -> value, text attribute -> value) of one watchdog; absent ones are omitted."""
    numbers: dict[str, float] = {}
    info: dict[str, str] = {}
    for attr in (*NUMERIC_ATTRIBUTES, *INFO_ATTRIBUTES):
        try:
            value = read_attr(f"{path}/{attr}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot read watchdog attribute", extra={"path": f"{path}/{attr}", "err": str(exc)})
            continue
        if attr in INFO_ATTRIBUTES:
            info[attr] = value
            continue
        try:
            numbers[attr] = float(go_parse_int(value, 0))
        except ValueError:
            log.warning("bad watchdog value", extra={"path": f"{path}/{attr}", "value": value})
    return numbers, info


@register
class WatchdogCollector(Collector):
    name = "watchdog"

    def collect(self) -> Iterable[Metric]:
        root = f"{self.paths.sysfs}/class/watchdog"
        try:
            with os.scandir(root) as entries:
                names = sorted(entry.name for entry in entries)
        except (FileNotFoundError, PermissionError):
            raise NoDataError("no readable /sys/class/watchdog") from None
        families = {
            attr: GaugeMetricFamily(metric, help_text, labels=["name"])
            for attr, (metric, help_text) in NUMERIC_ATTRIBUTES.items()
        }
        info_family = GaugeMetricFamily(
            "node_watchdog_info",
            "Text attributes of the watchdog as labels, value 1.",
            labels=["name", *INFO_ATTRIBUTES],
        )
        for name in names:
            try:
                numbers, info = read_watchdog(f"{root}/{name}")
            except OSError as exc:
                log.warning("cannot read watchdog", extra={"watchdog": name, "err": str(exc)})
                continue
            for attr, value in numbers.items():
                families[attr].add_metric([name], value)
            info_family.add_metric([name, *(info.get(attr, "") for attr in INFO_ATTRIBUTES)], 1.0)
        return [*families.values(), info_family]
