"""logind collector: against a real dbus-daemon with a service shaped like org.freedesktop.login1(5)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import logind
from nodeagent.metrics.logind import (
    CLASS_VALUES,
    MANAGER,
    MANAGER_PATH,
    REMOTE_VALUES,
    SERVICE,
    SESSION,
    TYPE_VALUES,
    SessionEntry,
    SessionLabels,
    parse_seats,
    parse_sessions,
    session_family,
    session_labels,
)
from tests.metrics.conftest import scrape_tree
from tests.metrics.dbus_bus import bus_service, scrape_hung_service, system_bus

SESSIONS = [  # (id, uid, user, seat, path): a(susso)
    ("1", 1000, "alice", "seat0", "/org/freedesktop/login1/session/_31"),
    ("2", 1000, "alice", "", "/org/freedesktop/login1/session/_32"),
    ("3", 1001, "bob", "", "/org/freedesktop/login1/session/_33"),
    ("4", 1002, "carol", "", "/org/freedesktop/login1/session/_34"),  # properties unreadable
    ("c1", 0, "root", "", "/org/freedesktop/login1/session/c1"),
]


def login1_tables() -> tuple[dict[Any, Any], dict[Any, Any]]:
    methods = {
        (MANAGER_PATH, MANAGER, "ListSeats"): ("a(so)", ([("seat0", "/org/freedesktop/login1/seat/seat0")],)),
        (MANAGER_PATH, MANAGER, "ListSessions"): ("a(susso)", (SESSIONS,)),
    }
    props: dict[Any, Any] = {}
    for path, remote, session_type, klass in (
        ("/org/freedesktop/login1/session/_31", False, "wayland", "user"),
        ("/org/freedesktop/login1/session/_32", True, "tty", "user"),
        ("/org/freedesktop/login1/session/_33", True, "tty", "user"),
        ("/org/freedesktop/login1/session/c1", False, "unspecified", "manager"),  # class unknown to upstream
    ):
        props[(path, SESSION, "Remote")] = ("b", remote)
        props[(path, SESSION, "Type")] = ("s", session_type)
        props[(path, SESSION, "Class")] = ("s", klass)
    return methods, props


@pytest.fixture(name="system_bus")
def system_bus_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with system_bus(tmp_path, monkeypatch) as address:
        yield address


def test_off_by_default() -> None:
    assert logind.LogindCollector.default_enabled is False


def test_sessions(system_bus: str, tmp_path: Path) -> None:
    methods, props = login1_tables()
    with bus_service(system_bus, SERVICE, methods, props):
        got = scrape_tree(tmp_path, "logind")
    assert got.ok, got.text
    lines = set(got.lines)
    assert 'node_logind_sessions{class="user",remote="false",seat="seat0",type="wayland"} 1' in lines
    assert 'node_logind_sessions{class="user",remote="true",seat="",type="tty"} 2' in lines
    assert 'node_logind_sessions{class="other",remote="false",seat="",type="unspecified"} 1' in lines
    assert 'node_logind_sessions{class="user",remote="true",seat="seat0",type="tty"} 0' in lines
    # every seat (seat0 and the empty one) x remote x type x class
    assert len(lines) == 2 * len(REMOTE_VALUES) * len(TYPE_VALUES) * len(CLASS_VALUES)
    assert sum(float(line.rsplit(" ", 1)[1]) for line in lines) == 4
    assert "# TYPE node_logind_sessions gauge" in got.text


def test_no_logind_fails_collector(system_bus: str, tmp_path: Path) -> None:
    got = scrape_tree(tmp_path, "logind")
    assert not got.ok
    assert got.lines == []


def test_hung_service_fails_within_timeout(
    system_bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logind, "DBUS_TIMEOUT_SECONDS", 0.5)
    got, took = scrape_hung_service(system_bus, SERVICE, tmp_path, "logind")
    assert not got.ok
    assert took < 5  # bounded by the collector's deadline, not the test's patience


# -- pure parts


def test_parse_seats_adds_the_empty_seat() -> None:
    assert parse_seats(([("seat0", "/a")],)) == (["seat0", ""], [])
    seats, skips = parse_seats(([("seat0",), 3],))
    assert seats == [""] and len(skips) == 2
    assert parse_seats(None)[0] == []


def test_parse_sessions() -> None:
    entries, skips = parse_sessions(([*SESSIONS[:1], ("x", 1, "y", 2, "/p"), ("x", 1, "y", "", "rel")],))
    assert entries == [SessionEntry("seat0", "/org/freedesktop/login1/session/_31")]
    assert len(skips) == 2


def test_session_labels() -> None:
    assert session_labels("", True, "x11", "greeter") == SessionLabels("", "true", "x11", "greeter")
    assert session_labels("", False, "vnc", "user-early") == SessionLabels("", "false", "other", "other")
    assert session_labels("", False, 5, "user") is None
    assert session_labels("", False, "tty", None) is None


def test_session_family_counts_only_known_seats() -> None:
    counts = Counter([SessionLabels("seat9", "true", "tty", "user")])
    family = session_family([""], counts)
    assert len(family.samples) == len(REMOTE_VALUES) * len(TYPE_VALUES) * len(CLASS_VALUES)
    assert sum(s.value for s in family.samples) == 0
    assert set(CLASS_VALUES) == {s.labels["class"] for s in family.samples}


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=6).map(tuple),
    max_leaves=30,
)


@settings(max_examples=50, deadline=None)
@given(body=values, remote=values, session_type=values, klass=values)
def test_parsers_never_raise(body: object, remote: object, session_type: object, klass: object) -> None:
    parse_seats(body)
    parse_sessions(body)
    session_labels("", remote, session_type, klass)
