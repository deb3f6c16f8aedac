"""logind (off by default, as upstream): sessions per seat, remote flag, type and class, from D-Bus.

Reads ``org.freedesktop.login1`` on the system bus (see :mod:`nodeagent.metrics.host.dbus`):
``Manager.ListSeats``, ``Manager.ListSessions`` and each session's ``Remote``, ``Type`` and ``Class``.
Every combination of seat (plus the empty seat of remote sessions), remote, type and class is exported,
zeros included, as node_exporter does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

if TYPE_CHECKING:
    from nodeagent.metrics.host.dbus import SystemBus

SERVICE = "org.freedesktop.login1"
MANAGER_PATH = "/org/freedesktop/login1"
MANAGER = "org.freedesktop.login1.Manager"
SESSION = "org.freedesktop.login1.Session"
# One collection's budget for D-Bus, connecting included: a hung bus fails the collector, not the scrape.
DBUS_TIMEOUT_SECONDS = 5.0

# node_exporter's label values (logind's as of systemd 229); "other" stands for any value not listed.
REMOTE_VALUES = ("true", "false")
TYPE_VALUES = ("other", "unspecified", "tty", "x11", "wayland", "mir", "web")
CLASS_VALUES = ("other", "user", "greeter", "lock-screen", "background")


class SessionEntry(NamedTuple):
    seat: str
    path: str


class SessionLabels(NamedTuple):
    seat: str
    remote: str
    type: str
    klass: str


def parse_seats(body: object) -> tuple[list[str], list[Skip]]:
    """ListSeats' body ``(a(so),)`` -> seat ids, then the empty seat (remote sessions); None if malformed."""
    if not isinstance(body, tuple) or len(body) != 1 or not isinstance(body[0], list):
        return [], [Skip("logind: ListSeats reply is not a(so)", body)]
    seats: list[str] = []
    skips: list[Skip] = []
    for entry in body[0]:
        if isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(f, str) for f in entry):
            seats.append(entry[0])
        else:
            skips.append(Skip("logind: ListSeats entry is not (so)", entry))
    seats.append("")
    return seats, skips


def parse_sessions(body: object) -> tuple[list[SessionEntry], list[Skip]]:
    """ListSessions' body ``(a(susso),)`` -> (seat, object path) per session."""
    if not isinstance(body, tuple) or len(body) != 1 or not isinstance(body[0], list):
        return [], [Skip("logind: ListSessions reply is not a(susso)", body)]
    sessions: list[SessionEntry] = []
    skips: list[Skip] = []
    for entry in body[0]:
        if (
            isinstance(entry, tuple)
            and len(entry) == 5
            and isinstance(entry[3], str)
            and isinstance(entry[4], str)
            and entry[4].startswith("/")
        ):
            sessions.append(SessionEntry(entry[3], entry[4]))
        else:
            skips.append(Skip("logind: ListSessions entry is not (susso)", entry))
    return sessions, skips


def known_or_other(value: str, known: tuple[str, ...]) -> str:
    return value if value in known else "other"


def session_labels(seat: str, remote: object, session_type: object, klass: object) -> SessionLabels | None:
    """One session's labels from its properties; None (not counted) when Type or Class is not a string."""
    if not isinstance(session_type, str) or not isinstance(klass, str):
        return None
    remote_text = ("true" if remote else "false") if isinstance(remote, bool) else str(remote)
    return SessionLabels(
        seat, remote_text, known_or_other(session_type, TYPE_VALUES), known_or_other(klass, CLASS_VALUES)
    )


def session_family(seats: list[str], sessions: Counter[SessionLabels]) -> Metric:
    """Every seat x remote x type x class combination, with its session count (0 included)."""
    family = gauge("node_logind_sessions", "Sessions logind has, per seat, remote flag, type and class.")
    for remote in REMOTE_VALUES:
        for session_type in TYPE_VALUES:
            for klass in CLASS_VALUES:
                for seat in seats:
                    count = sessions[SessionLabels(seat, remote, session_type, klass)]
                    labels = {"seat": seat, "remote": remote, "type": session_type, "class": klass}
                    add_sample(family, labels, float(count))
    return family


@register
class LogindCollector(Collector):
    name = "logind"
    default_enabled = False

    def collect(self) -> Iterator[Metric]:
        from nodeagent.metrics.host.dbus import SystemBus  # imports jeepney: only when switched on

        with SystemBus(DBUS_TIMEOUT_SECONDS) as bus:
            yield self._collect(bus)

    def _collect(self, bus: SystemBus) -> Metric:
        seats, skipped = parse_seats(bus.call(SERVICE, MANAGER_PATH, MANAGER, "ListSeats"))
        self.report(skipped)
        entries, skipped = parse_sessions(bus.call(SERVICE, MANAGER_PATH, MANAGER, "ListSessions"))
        self.report(skipped)
        counts: Counter[SessionLabels] = Counter()
        for entry in entries:
            labels = self._session(bus, entry)
            if labels is not None:
                counts[labels] += 1
        return session_family(seats, counts)

    def _session(self, bus: SystemBus, entry: SessionEntry) -> SessionLabels | None:
        """A session whose properties cannot be read is left out, as upstream does."""
        from nodeagent.metrics.host.dbus import DBusCallError

        try:
            values = [
                bus.get_property(SERVICE, entry.path, SESSION, p)[1] for p in ("Remote", "Type", "Class")
            ]
        except DBusCallError as exc:
            self.skip("logind: session properties", f"{entry.path}: {exc}")
            return None
        return session_labels(entry.seat, *values)
