"""perf collector: perf_event_open(2) counters, live on this machine (software events count in a VM;
hardware and cache events usually do not, and then report nothing), plus its pure parts."""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import perf
from nodeagent.metrics.registry import build_collectors
from tests.metrics.conftest import scrape_tree, tree_paths

HOST = Path("/")
SOFTWARE_FAMILIES = {f"node_perf_{suffix}" for _name, suffix, _config in perf.SOFTWARE}
HARDWARE_FAMILIES = {f"node_perf_{suffix}" for _name, suffix, _config in perf.HARDWARE}


@pytest.fixture(autouse=True)
def _perf_allowed() -> None:
    try:
        os.close(perf.perf_event_open(perf.encode_attr(perf.PERF_TYPE_SOFTWARE, 3), -1, 0))
    except PermissionError:
        paranoid = Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
        pytest.skip(f"perf_event_open refused (perf_event_paranoid {paranoid}, euid {os.geteuid()})")


def samples(lines: list[str]) -> dict[tuple[str, str], float]:
    found = {}
    for line in lines:
        name_labels, value = line.rsplit(" ", 1)
        name, labels = name_labels.split("{", 1)
        found[(name, labels.split('"')[1])] = float(value)
    return found


def hardware_countable() -> bool:
    """What `perf stat` says about the instructions event on this host, when perf is installed."""
    tool = shutil.which("perf")
    if tool is None:
        return False
    done = subprocess.run(
        [tool, "stat", "-e", "instructions", "true"], capture_output=True, text=True, check=False
    )
    return "<not supported>" not in done.stderr and done.returncode == 0


def test_software_counters_count_on_every_cpu(caplog: pytest.LogCaptureFixture) -> None:
    collector = build_collectors(["perf"], tree_paths(HOST), {})[0]
    assert isinstance(collector, perf.PerfCollector)
    cpus = [str(cpu) for cpu in range(len(os.sched_getaffinity(0)))]
    try:
        with caplog.at_level(logging.WARNING, logger="nodeagent.metrics.perf"):
            first = {(m.name, s.labels["cpu"]): s.value for m in collector.collect() for s in m.samples}
            warnings = len(caplog.records)
            for _ in range(200):
                time.sleep(0.0005)  # context switches
            block = mmap.mmap(-1, 8 << 20)  # fresh anonymous pages: writing each one is a minor fault
            for offset in range(0, len(block), mmap.PAGESIZE):
                block[offset] = 1
            block.close()
            second = {(m.name, s.labels["cpu"]): s.value for m in collector.collect() for s in m.samples}
        assert len(caplog.records) == warnings  # what cannot be counted is logged once, on the first scrape
    finally:
        collector.close()
    names = {name.removesuffix("_total") for name, _cpu in first}
    assert {f.removesuffix("_total") for f in SOFTWARE_FAMILIES} <= names
    for family in SOFTWARE_FAMILIES:
        assert {
            cpu for name, cpu in first if name.removesuffix("_total") == family.removesuffix("_total")
        } == set(cpus)
    assert all(second[key] >= value for key, value in first.items())  # counters never go back
    switches = sum(v for (n, _c), v in second.items() if n.startswith("node_perf_context_switches"))
    before = sum(v for (n, _c), v in first.items() if n.startswith("node_perf_context_switches"))
    assert switches >= before + 100
    faults = sum(v for (n, _c), v in second.items() if n.startswith("node_perf_minor_faults"))
    assert faults > sum(v for (n, _c), v in first.items() if n.startswith("node_perf_minor_faults"))
    if not hardware_countable():
        assert not names & {f.removesuffix("_total") for f in HARDWARE_FAMILIES}
        assert any("hardware events not counted" in r.getMessage() for r in caplog.records)


def test_exposition_types_and_labels() -> None:
    result = scrape_tree(HOST, "perf", software_profilers=["ContextSwitch", "NoSuchProfiler"])
    assert result.ok
    assert "# TYPE node_perf_context_switches_total counter" in result.text
    assert {name for name, _cpu in samples(result.lines)} - HARDWARE_FAMILIES - {
        f"node_perf_{s}" for _n, s, _c in perf.CACHE
    } == {"node_perf_context_switches_total"}


def test_cpu_selection_and_disabled_profilers() -> None:
    result = scrape_tree(
        HOST, "perf", cpus="0", disable_hardware_profilers=True, disable_cache_profilers=True
    )
    found = samples(result.lines)
    assert result.ok and found
    assert {cpu for _name, cpu in found} == {"0"}
    assert {name for name, _cpu in found} == SOFTWARE_FAMILIES
    nothing = scrape_tree(
        HOST, "perf", **{f"disable_{k}_profilers": True for k in ("hardware", "software", "cache")}
    )
    assert nothing.ok and nothing.lines == []


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_descriptors_bounded_and_closed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = open_fds()
    collector = build_collectors(["perf"], tree_paths(HOST), {})[0]
    assert isinstance(collector, perf.PerfCollector)
    assert open_fds() == before  # nothing opened until the first scrape
    list(collector.collect())
    cpus = len(os.sched_getaffinity(0))
    assert open_fds() - before >= len(perf.SOFTWARE) * cpus
    collector.close()
    assert open_fds() == before
    list(collector.collect())  # reopened after close
    del collector  # dropped: its finalizer closes the descriptors
    assert open_fds() == before

    monkeypatch.setattr(perf, "MAX_EVENT_FDS", 3)
    capped = build_collectors(
        ["perf"], tree_paths(HOST), {"collector.perf.disable-hardware-profilers": True}
    )[0]
    assert isinstance(capped, perf.PerfCollector)
    with caplog.at_level(logging.WARNING, logger="nodeagent.metrics.perf"):
        assert sum(len(m.samples) for m in capped.collect()) <= 3
    assert open_fds() - before <= 3
    assert any("capped at 3" in r.getMessage() for r in caplog.records)
    capped.close()


def test_missing_tracepoint_reports_nothing(tmp_path: Path) -> None:
    result = scrape_tree(tmp_path, "perf", tracepoint=["sched:sched_switch"], disable_cache_profilers=True)
    assert result.ok
    assert not any(line.startswith("node_perf_sched_sched_switch") for line in result.lines)


def test_parse_cpus_as_upstream() -> None:
    assert perf.parse_cpus("") == ()
    assert perf.parse_cpus("0,2") == (0, 2)
    assert perf.parse_cpus("0-3") == (0, 1, 2, 3)
    assert perf.parse_cpus("0-6:3,+9") == (0, 3, 6, 9)
    for bad in ("a", "1-", "-1", "0-2-4", "0-4:0", "0-4:-1", "3:2", "0-99999999", " 1"):
        with pytest.raises(ValueError):
            perf.parse_cpus(bad)


def test_parse_tracepoints_and_profiler_selection() -> None:
    assert perf.parse_tracepoints(["sched:sched_switch", "irq:irq_handler_entry"]) == (
        ("sched", "sched_switch"),
        ("irq", "irq_handler_entry"),
    )
    for bad in ("sched", "a:b:c", "../x:y"):
        with pytest.raises(ValueError):
            perf.parse_tracepoints([bad])
    events, unknown = perf.select_events(perf.SOFTWARE, ("MajorFault", "Bogus"))
    assert events == [("major_faults_total", 6)] and unknown == ["Bogus"]
    assert len(perf.select_events(perf.SOFTWARE, ("Bogus",))[0]) == len(perf.SOFTWARE)  # perf-utils: 0 = all
    assert perf.CACHE[3] == ("L1InstrReadMiss", "cache_l1_instr_read_misses_total", 1 | 0 << 8 | 1 << 16)


def test_attr_and_read_layout() -> None:
    attr = perf.encode_attr(perf.PERF_TYPE_SOFTWARE, 3)
    assert len(attr) == 64  # PERF_ATTR_SIZE_VER0
    assert perf.decode_count((7).to_bytes(8, "little") + bytes(16)) == 7
    assert perf.decode_count(b"\x01" * 23) is None


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789-:,+ ab", max_size=30), st.binary(max_size=40))
def test_parsers_survive_any_input(text: str, data: bytes) -> None:
    try:
        cpus = perf.parse_cpus(text)
        assert len(cpus) <= 2 * perf.MAX_CPUS * (text.count(",") + 1)
    except ValueError:
        pass
    with contextlib.suppress(ValueError):
        perf.parse_tracepoints([text] if text else ())
    perf.decode_count(data)
