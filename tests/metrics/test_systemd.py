"""systemd collector: against a real dbus-daemon with a service shaped like org.freedesktop.systemd1(5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import systemd
from nodeagent.metrics.systemd import (
    MANAGER,
    MANAGER_PATH,
    SERVICE,
    Unit,
    anchored,
    filter_units,
    parse_units,
    parse_version,
    summarize,
    unit_object_path,
    virtualization_label,
)
from tests.metrics.conftest import scrape_tree
from tests.metrics.dbus_bus import bus_service, peer_service, scrape_hung_service, system_bus


def list_units_entry(name: str, load: str, active: str) -> tuple[Any, ...]:
    return (name, "", load, active, "running", "", unit_object_path(name), 0, "", "/")


UNITS = [
    list_units_entry("ssh.service", "loaded", "active"),
    list_units_entry("cron.service", "loaded", "failed"),
    list_units_entry("gone.service", "not-found", "inactive"),
    list_units_entry("home.mount", "loaded", "active"),
    list_units_entry("tmp.mount", "loaded", "active"),
    list_units_entry("docker.socket", "loaded", "active"),
    list_units_entry("logrotate.timer", "loaded", "active"),
    list_units_entry("user.slice", "loaded", "active"),
    list_units_entry("weird.target", "loaded", "reloading"),
]


def systemd_tables(version: str = "252.22-1~deb12u1") -> tuple[dict[Any, Any], dict[Any, Any]]:
    methods = {(MANAGER_PATH, MANAGER, "ListUnits"): ("a(ssssssouso)", (UNITS,))}

    def unit(name: str, interface: str, prop: str) -> tuple[str, str, str]:
        return (unit_object_path(name), f"org.freedesktop.systemd1.{interface}", prop)

    props = {
        (MANAGER_PATH, MANAGER, "Version"): ("s", version),
        (MANAGER_PATH, MANAGER, "Virtualization"): ("s", ""),
        (MANAGER_PATH, MANAGER, "SystemState"): ("s", "running"),
        unit("ssh.service", "Service", "Type"): ("s", "notify"),
        unit("ssh.service", "Service", "NRestarts"): ("u", 3),
        unit("ssh.service", "Service", "TasksCurrent"): ("t", 2),
        unit("ssh.service", "Service", "TasksMax"): ("t", 2**64 - 1),
        unit("ssh.service", "Unit", "ActiveEnterTimestamp"): ("t", 1_700_000_000_500_000),
        unit("cron.service", "Service", "Type"): ("s", "simple"),
        unit("cron.service", "Service", "NRestarts"): ("u", 0),
        unit("cron.service", "Service", "TasksCurrent"): ("t", 1),
        unit("cron.service", "Service", "TasksMax"): ("t", 4915),
        unit("home.mount", "Mount", "Type"): ("s", "ext4"),
        unit("docker.socket", "Unit", "ActiveEnterTimestamp"): ("t", 1_600_000_000_000_000),
        unit("docker.socket", "Socket", "NAccepted"): ("u", 7),
        unit("docker.socket", "Socket", "NConnections"): ("u", 1),
        unit("docker.socket", "Socket", "NRefused"): ("u", 2),
        unit("logrotate.timer", "Unit", "ActiveEnterTimestamp"): ("s", "not a t"),
        unit("logrotate.timer", "Timer", "LastTriggerUSec"): ("t", 1_700_000_100_000_000),
    }
    return methods, props


@pytest.fixture(name="system_bus")
def system_bus_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with system_bus(tmp_path, monkeypatch) as address:
        yield address


def test_off_by_default() -> None:
    assert systemd.SystemdCollector.default_enabled is False


def test_units_states_and_types(system_bus: str, tmp_path: Path) -> None:
    methods, props = systemd_tables()
    with bus_service(system_bus, SERVICE, methods, props):
        got = scrape_tree(tmp_path, "systemd")
    assert got.ok, got.text
    lines = set(got.lines)
    assert 'node_systemd_version{version="252.22-1~deb12u1"} 252.22' in lines
    assert 'node_systemd_virtualization_info{virtualization_type="none"} 1' in lines
    assert "node_systemd_system_running 1" in lines
    # summary over every unit, filtered or not, any state seen counted
    for state, count in (("active", 6), ("failed", 1), ("inactive", 1), ("reloading", 1), ("activating", 0)):
        assert f'node_systemd_units{{state="{state}"}} {count}' in lines
    assert 'node_systemd_unit_state{name="ssh.service",state="active",type="notify"} 1' in lines
    assert 'node_systemd_unit_state{name="cron.service",state="failed",type="simple"} 1' in lines
    assert 'node_systemd_unit_state{name="cron.service",state="active",type="simple"} 0' in lines
    assert 'node_systemd_unit_state{name="weird.target",state="active",type=""} 0' in lines
    # excluded by default: mounts, slices; not loaded: never
    assert not any("home.mount" in line or "user.slice" in line or "gone.service" in line for line in lines)
    assert 'node_systemd_socket_accepted_connections_total{name="docker.socket"} 7' in lines
    assert 'node_systemd_socket_current_connections{name="docker.socket"} 1' in lines
    assert 'node_systemd_socket_refused_connections_total{name="docker.socket"} 2' in lines
    assert "# TYPE node_systemd_socket_refused_connections_total gauge" in got.text
    assert 'node_systemd_timer_last_trigger_seconds{name="logrotate.timer"} 1.7000001e+09' in lines
    # off unless asked
    assert not any(
        line.startswith(("node_systemd_service_restart", "node_systemd_unit_tasks")) for line in lines
    )
    assert not any(line.startswith("node_systemd_unit_start_time") for line in lines)


def test_optional_families_and_filters(system_bus: str, tmp_path: Path) -> None:
    methods, props = systemd_tables()
    with bus_service(system_bus, SERVICE, methods, props):
        got = scrape_tree(
            tmp_path,
            "systemd",
            enable_task_metrics=True,
            enable_restarts_metrics=True,
            enable_start_time_metrics=True,
            unit_include=".*\\.(service|mount|timer)",
            unit_exclude="tmp\\.mount",
        )
    assert got.ok, got.text
    lines = set(got.lines)
    assert 'node_systemd_unit_state{name="home.mount",state="active",type="ext4"} 1' in lines
    assert not any("tmp.mount" in line or "docker.socket" in line for line in lines)
    assert 'node_systemd_service_restart_total{name="ssh.service"} 3' in lines
    assert 'node_systemd_service_restart_total{name="cron.service"} 0' in lines
    assert "# TYPE node_systemd_service_restart_total counter" in got.text
    assert 'node_systemd_unit_tasks_current{name="ssh.service"} 2' in lines
    assert not any(line.startswith('node_systemd_unit_tasks_max{name="ssh.service"}') for line in lines)
    assert 'node_systemd_unit_tasks_max{name="cron.service"} 4915' in lines
    assert 'node_systemd_unit_start_time_seconds{name="ssh.service"} 1.7000000005e+09' in lines
    assert 'node_systemd_unit_start_time_seconds{name="cron.service"} 0' in lines  # not active
    # a property of the wrong type is skipped, the scrape goes on
    assert not any(line.startswith('node_systemd_unit_start_time_seconds{name="logrotate') for line in lines)
    # home.mount has no ActiveEnterTimestamp on our service: skipped
    assert not any(line.startswith('node_systemd_unit_start_time_seconds{name="home') for line in lines)


def test_old_systemd_has_no_timers_or_system_state(system_bus: str, tmp_path: Path) -> None:
    methods, props = systemd_tables(version="208")
    with bus_service(system_bus, SERVICE, methods, props):
        got = scrape_tree(tmp_path, "systemd")
    assert got.ok, got.text
    assert 'node_systemd_version{version="208"} 208' in got.lines
    assert not any(
        line.startswith(("node_systemd_timer", "node_systemd_system_running")) for line in got.lines
    )


def test_private_socket_without_a_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--collector.systemd.private: systemd's own socket, peer to peer (no bus daemon, no Hello)."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    methods, props = systemd_tables()
    with peer_service(tmp_path / "private", methods, props) as address:
        monkeypatch.setattr(systemd, "PRIVATE_SOCKET_ADDRESS", address)
        got = scrape_tree(tmp_path, "systemd", private=True)
    assert got.ok, got.text
    assert 'node_systemd_unit_state{name="ssh.service",state="active",type="notify"} 1' in got.lines
    assert not scrape_tree(tmp_path, "systemd").ok  # the bus, absent here


def test_no_systemd_on_the_bus_fails_collector(system_bus: str, tmp_path: Path) -> None:
    got = scrape_tree(tmp_path, "systemd")
    assert not got.ok
    assert 'node_scrape_collector_success{collector="systemd"} 0' in got.text


def test_no_bus_fails_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'absent'}")
    assert not scrape_tree(tmp_path, "systemd").ok


def test_hung_service_fails_within_timeout(
    system_bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(systemd, "DBUS_TIMEOUT_SECONDS", 0.5)
    got, took = scrape_hung_service(system_bus, SERVICE, tmp_path, "systemd")
    assert not got.ok
    assert took < 5  # bounded by the collector's deadline, not the test's patience


# -- pure parts


def test_unit_object_path_is_go_systemds_escape() -> None:
    assert unit_object_path("ssh.service") == "/org/freedesktop/systemd1/unit/ssh_2eservice"
    assert unit_object_path("1x.service") == "/org/freedesktop/systemd1/unit/_31x_2eservice"
    assert unit_object_path("a-b@c\t") == "/org/freedesktop/systemd1/unit/a_2db_40c_9"
    assert unit_object_path("") == "/org/freedesktop/systemd1/unit/_"


def test_parse_version() -> None:
    assert parse_version("252.22-1~deb12u1") == (252.22, "252.22-1~deb12u1")
    assert parse_version("v245") == (245.0, "v245")
    assert parse_version("99") == (0.0, "")
    assert parse_version(252) == (0.0, "")


def test_virtualization_label() -> None:
    assert virtualization_label("") == "none"
    assert virtualization_label("kvm") == "kvm"
    assert virtualization_label(None) == "unknown"


def test_parse_units_skips_malformed() -> None:
    units, skips = parse_units(([list_units_entry("a.service", "loaded", "active"), ("short",), 5],))
    assert units == [Unit("a.service", "loaded", "active")]
    assert len(skips) == 2
    assert parse_units("nonsense")[0] == []


def test_filter_and_summary() -> None:
    units = [Unit("a.service", "loaded", "active"), Unit("b.slice", "loaded", "failed")]
    include, exclude = anchored(".+"), anchored(".+\\.(automount|device|mount|scope|slice)")
    assert filter_units(units, include, exclude) == units[:1]
    # anchored like Go's ^(?:...)$: no partial match, no match before a trailing newline
    assert filter_units([Unit("a.service\n", "loaded", "active")], anchored("a.service"), anchored("x")) == []
    assert summarize(units) == {"active": 1, "activating": 0, "deactivating": 0, "inactive": 0, "failed": 1}


def test_bad_unit_regex_refused() -> None:
    with pytest.raises(ValueError):
        systemd.parse_unit_regex("(")


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.lists(inner, max_size=10).map(tuple)
    ),
    max_leaves=30,
)


@settings(max_examples=50, deadline=None)
@given(body=values, name=st.text(max_size=30))
def test_parsers_never_raise(body: object, name: str) -> None:
    parse_units(body)
    parse_version(body)
    virtualization_label(body)
    assert unit_object_path(name).startswith("/org/freedesktop/systemd1/unit/")
