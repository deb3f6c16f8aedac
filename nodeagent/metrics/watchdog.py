"""watchdog: hardware/software watchdog timers from <sysfs>/class/watchdog/*/.

Numeric attributes become ``node_watchdog_<attribute>{name}`` (timeouts in seconds), the text
attributes labels of ``node_watchdog_info``. Attributes a driver does not provide are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import read_attribute
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import class_devices
from nodeagent.metrics.registry import Collector, NoDataError, register

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


def read_watchdog(path: str) -> tuple[dict[str, float], dict[str, str], list[Skip]]:
    """(numeric attribute -> value, text attribute -> value, what was skipped) of one watchdog; absent
    attributes are omitted."""
    numbers: dict[str, float] = {}
    info: dict[str, str] = {}
    skipped: list[Skip] = []
    for attr in (*NUMERIC_ATTRIBUTES, *INFO_ATTRIBUTES):
        try:
            value = read_attribute(f"{path}/{attr}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            skipped.append(Skip(f"unreadable watchdog {attr}", exc))
            continue
        if attr in INFO_ATTRIBUTES:
            info[attr] = value
            continue
        try:
            numbers[attr] = float(parse_int(value, 0))
        except ValueError:
            skipped.append(Skip(f"watchdog {attr}", value))
    return numbers, info, skipped


@register
class WatchdogCollector(Collector):
    name = "watchdog"

    def collect(self) -> Iterable[Metric]:
        try:
            watchdogs = class_devices(self.paths, "watchdog")
        except (FileNotFoundError, PermissionError):
            raise NoDataError("no readable /sys/class/watchdog") from None
        families = {
            attr: gauge(metric, help_text) for attr, (metric, help_text) in NUMERIC_ATTRIBUTES.items()
        }
        info_family = gauge("node_watchdog_info", "Text attributes of the watchdog as labels, value 1.")
        for name, path in watchdogs:
            numbers, info, skipped = read_watchdog(path)
            self.report(skipped)
            labels = {"name": name}
            for attr, value in numbers.items():
                add_sample(families[attr], labels, value)
            add_sample(
                info_family, {"name": name, **{attr: info.get(attr, "") for attr in INFO_ATTRIBUTES}}, 1.0
            )
        return [*families.values(), info_family]
