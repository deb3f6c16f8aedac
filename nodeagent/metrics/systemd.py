"""systemd (off by default, as upstream): unit states, sockets, timers and tasks from systemd's D-Bus API.

Reads ``org.freedesktop.systemd1`` on the system bus (see :mod:`nodeagent.metrics.host.dbus`) as
node_exporter does through go-systemd: the Manager's ``Version``, ``Virtualization`` and ``SystemState``
properties, ``Manager.ListUnits``, and per unit ``Properties.Get`` on the unit's object path, which
go-systemd computes from the unit name (it does not use ListUnits' path, neither do we).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_regex
from nodeagent.metrics._emit import Labels, add_sample, counter, gauge
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, register

if TYPE_CHECKING:
    from nodeagent.metrics.host.dbus import SystemBus

SERVICE = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"
# --collector.systemd.private: systemd's own socket, peer to peer (go-systemd's NewSystemdConnection); like
# the system bus, an absolute path on the host, not below --path.rootfs.
PRIVATE_SOCKET_ADDRESS = "unix:path=/run/systemd/private"

# SystemState and Timer.LastTriggerUSec exist from this version on (node_exporter's threshold).
MIN_VERSION_SYSTEM_STATE = 212
UNIT_STATES = ("active", "activating", "deactivating", "inactive", "failed")
UINT64_MAX = 2**64 - 1
# One collection's budget for D-Bus, connecting included: a hung bus fails the collector, not the scrape.
DBUS_TIMEOUT_SECONDS = 5.0

_VERSION = re.compile(r"[0-9]{3,}(\.[0-9]+)?", re.ASCII)
_ALPHANUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    load_state: str
    active_state: str


def unit_object_path(name: str) -> str:
    """go-systemd's PathBusEscape: bytes other than [A-Za-z0-9] (and a leading digit) become ``_`` + hex,
    in Go's ``%x`` (so byte 0x09 is ``_9``); the empty name is ``_``."""
    raw = name.encode("utf-8", "surrogateescape")
    if not raw:
        return UNIT_PATH_PREFIX + "_"
    parts = []
    for i, byte in enumerate(raw):
        if byte not in _ALPHANUM or (i == 0 and 0x30 <= byte <= 0x39):
            parts.append(f"_{byte:x}")
        else:
            parts.append(chr(byte))
    return UNIT_PATH_PREFIX + "".join(parts)


def parse_units(body: object) -> tuple[list[Unit], list[Skip]]:
    """ListUnits' reply body ``(a(ssssssouso),)`` -> units; an entry of another shape is skipped."""
    units: list[Unit] = []
    skips: list[Skip] = []
    if not isinstance(body, tuple) or len(body) != 1 or not isinstance(body[0], list):
        return units, [Skip("systemd: ListUnits reply is not a(ssssssouso)", body)]
    for entry in body[0]:
        if (
            isinstance(entry, tuple)
            and len(entry) == 10
            and all(isinstance(entry[i], str) for i in (0, 2, 3))
        ):
            units.append(Unit(entry[0], entry[2], entry[3]))
        else:
            skips.append(Skip("systemd: ListUnits entry is not (ssssssouso)", entry))
    return units, skips


def parse_version(value: object) -> tuple[float, str]:
    """Manager.Version -> (number, label): ``"252.22-1~deb12u1"`` -> (252.22, that string); no number of
    three or more digits -> (0, "")."""
    if not isinstance(value, str):
        return 0.0, ""
    found = _VERSION.search(value)
    if found is None:
        return 0.0, ""
    return float(found.group(0)), value


def virtualization_label(value: object) -> str:
    """Manager.Virtualization -> label: empty means bare metal (``none``)."""
    if not isinstance(value, str):
        return "unknown"
    return value or "none"


def summarize(units: Iterable[Unit]) -> dict[str, float]:
    """Units per ActiveState: the five known states always present, any other state seen counted too."""
    counts = dict.fromkeys(UNIT_STATES, 0.0)
    for unit in units:
        counts[unit.active_state] = counts.get(unit.active_state, 0.0) + 1
    return counts


def anchored(pattern: str) -> re.Pattern[str]:
    """node_exporter wraps unit patterns as ``^(?:PATTERN)$`` (Go: ``$`` is the end of the text)."""
    return re.compile(f"^(?:{pattern})\\Z", re.ASCII)


def filter_units(units: Iterable[Unit], include: re.Pattern[str], exclude: re.Pattern[str]) -> list[Unit]:
    """Loaded units whose name matches include and not exclude."""
    return [
        u for u in units if u.load_state == "loaded" and include.search(u.name) and not exclude.search(u.name)
    ]


def _typed(signature: str, value: Any, want: str) -> Any:
    if signature != want:
        raise TypeError(f"property has signature {signature!r}, not {want!r}")
    return value


def parse_unit_regex(raw: Any) -> str:
    """A unit pattern, refused at startup when it does not compile once anchored."""
    text = parse_regex(raw)
    try:
        anchored(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return text


@register
class SystemdCollector(Collector):
    name = "systemd"
    default_enabled = False
    options = (
        CollectorOption(
            "unit-include",
            ".+",
            "Regexp of systemd units to include (must match include and not exclude).",
            parse_unit_regex,
        ),
        CollectorOption(
            "unit-exclude",
            ".+\\.(automount|device|mount|scope|slice)",
            "Regexp of systemd units to leave out (must match include and not exclude).",
            parse_unit_regex,
        ),
        CollectorOption(
            "enable-task-metrics", False, "Export unit_tasks_current and unit_tasks_max.", parse_bool
        ),
        CollectorOption("enable-restarts-metrics", False, "Export service_restart_total.", parse_bool),
        CollectorOption("enable-start-time-metrics", False, "Export unit_start_time_seconds.", parse_bool),
        CollectorOption(
            "private",
            False,
            "Talk to systemd on its private socket, not the bus (needs root; upstream: for testing).",
            parse_bool,
        ),
    )

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.include = anchored(options["unit-include"])
        self.exclude = anchored(options["unit-exclude"])

    def collect(self) -> Iterator[Metric]:
        from nodeagent.metrics.host.dbus import SystemBus  # imports jeepney: only when switched on

        if self.opts["private"]:
            bus = SystemBus(DBUS_TIMEOUT_SECONDS, address=PRIVATE_SOCKET_ADDRESS, peer=True)
        else:
            bus = SystemBus(DBUS_TIMEOUT_SECONDS)
        with bus:
            yield from self._collect(bus)

    def _manager_property(self, bus: SystemBus, name: str) -> tuple[str, Any]:
        return bus.get_property(SERVICE, MANAGER_PATH, MANAGER, name)

    def _unit_property(self, bus: SystemBus, unit: str, interface: str, name: str, want: str) -> Any:
        """One property of a unit; None when systemd does not answer it with the documented type."""
        from nodeagent.metrics.host.dbus import DBusCallError

        try:
            signature, value = bus.get_property(
                SERVICE, unit_object_path(unit), f"org.freedesktop.systemd1.{interface}", name
            )
            return _typed(signature, value, want)
        except (DBusCallError, TypeError) as exc:
            self.skip(f"systemd: {interface}.{name} of a unit", f"{unit}: {exc}")
            return None

    def _collect(self, bus: SystemBus) -> Iterator[Metric]:
        from nodeagent.metrics.host.dbus import DBusCallError

        try:
            version, version_label = parse_version(_typed(*self._manager_property(bus, "Version"), "s"))
        except (DBusCallError, TypeError):
            version, version_label = 0.0, ""
        family = gauge("node_systemd_version", "systemd version found on the bus.")
        add_sample(family, {"version": version_label}, version)
        yield family

        try:
            virt = virtualization_label(_typed(*self._manager_property(bus, "Virtualization"), "s"))
        except (DBusCallError, TypeError):
            virt = "unknown"
        family = gauge("node_systemd_virtualization_info", "Virtualization systemd detected.")
        add_sample(family, {"virtualization_type": virt}, 1.0)
        yield family

        all_units, skipped = parse_units(bus.call(SERVICE, MANAGER_PATH, MANAGER, "ListUnits"))
        self.report(skipped)
        family = gauge("node_systemd_units", "systemd units per active state.")
        for state, count in summarize(all_units).items():
            add_sample(family, {"state": state}, count)
        yield family

        units = filter_units(all_units, self.include, self.exclude)
        yield from self._unit_states(bus, units)
        if self.opts["enable-start-time-metrics"]:
            yield self._start_times(bus, units)
        if self.opts["enable-task-metrics"]:
            yield from self._tasks(bus, units)
        if version >= MIN_VERSION_SYSTEM_STATE:
            yield self._timers(bus, units)
        yield from self._sockets(bus, units)
        if version >= MIN_VERSION_SYSTEM_STATE:
            state = _typed(*self._manager_property(bus, "SystemState"), "s")
            family = gauge("node_systemd_system_running", "1 when systemd's system state is running.")
            add_sample(family, {}, 1.0 if state == "running" else 0.0)
            yield family

    def _unit_states(self, bus: SystemBus, units: list[Unit]) -> Iterator[Metric]:
        states = gauge("node_systemd_unit_state", "systemd unit state (1 for the unit's active state).")
        restarts = counter("node_systemd_service_restart_total", "Restarts systemd made of a service.")
        with_restarts = self.opts["enable-restarts-metrics"]
        for unit in units:
            unit_type = None
            if unit.name.endswith(".service"):
                unit_type = self._unit_property(bus, unit.name, "Service", "Type", "s")
            elif unit.name.endswith(".mount"):
                unit_type = self._unit_property(bus, unit.name, "Mount", "Type", "s")
            for state in UNIT_STATES:
                labels: Labels = {"name": unit.name, "state": state, "type": unit_type or ""}
                add_sample(states, labels, 1.0 if state == unit.active_state else 0.0)
            if with_restarts and unit.name.endswith(".service"):
                count = self._unit_property(bus, unit.name, "Service", "NRestarts", "u")
                if count is not None:
                    add_sample(restarts, {"name": unit.name}, float(count))
        yield states
        if with_restarts:
            yield restarts

    def _start_times(self, bus: SystemBus, units: list[Unit]) -> Metric:
        family = gauge(
            "node_systemd_unit_start_time_seconds", "When the unit last became active (Unix time)."
        )
        for unit in units:
            micros = 0
            if unit.active_state == "active":
                micros = self._unit_property(bus, unit.name, "Unit", "ActiveEnterTimestamp", "t")
                if micros is None:
                    continue
            add_sample(family, {"name": unit.name}, micros / 1e6)
        return family

    def _tasks(self, bus: SystemBus, units: list[Unit]) -> Iterator[Metric]:
        current = gauge("node_systemd_unit_tasks_current", "Tasks of a service unit now.")
        maximum = gauge("node_systemd_unit_tasks_max", "Task limit of a service unit.")
        for unit in units:
            if not unit.name.endswith(".service"):
                continue
            for family, prop in ((current, "TasksCurrent"), (maximum, "TasksMax")):
                value = self._unit_property(bus, unit.name, "Service", prop, "t")
                if value is not None and value != UINT64_MAX:  # UINT64_MAX: not tracked / no limit
                    add_sample(family, {"name": unit.name}, float(value))
        yield current
        yield maximum

    def _timers(self, bus: SystemBus, units: list[Unit]) -> Metric:
        family = gauge("node_systemd_timer_last_trigger_seconds", "When the timer last fired (Unix time).")
        for unit in units:
            if unit.name.endswith(".timer"):
                micros = self._unit_property(bus, unit.name, "Timer", "LastTriggerUSec", "t")
                if micros is not None:
                    add_sample(family, {"name": unit.name}, micros / 1e6)
        return family

    def _sockets(self, bus: SystemBus, units: list[Unit]) -> Iterator[Metric]:
        accepted = counter("node_systemd_socket_accepted_connections_total", "Connections a socket accepted.")
        current = gauge("node_systemd_socket_current_connections", "Open connections of a socket.")
        # a gauge in node_exporter despite its name
        refused = gauge("node_systemd_socket_refused_connections_total", "Connections a socket refused.")
        for unit in units:
            if not unit.name.endswith(".socket"):
                continue
            labels = {"name": unit.name}
            count = self._unit_property(bus, unit.name, "Socket", "NAccepted", "u")
            if count is None:
                continue
            add_sample(accepted, labels, float(count))
            count = self._unit_property(bus, unit.name, "Socket", "NConnections", "u")
            if count is None:
                continue
            add_sample(current, labels, float(count))
            count = self._unit_property(bus, unit.name, "Socket", "NRefused", "u")  # systemd >= 239
            if count is not None:
                add_sample(refused, labels, float(count))
        yield accepted
        yield current
        yield refused
