"""cpu collector: /proc/stat times, /proc/cpuinfo, throttles, isolation and online state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics._proc_stat import parse_cpu_times
from nodeagent.metrics.cpu import merge_cpu_times, parse_cpu_list, parse_cpuinfo
from tests.metrics.conftest import Scraped

STAT = """cpu  10 0 10 100 0 0 0 0 0 0
cpu0 4490 19 2104 1087069 220 1 3410 0 2 1
cpu1 100 200 300 400
cpuX 1 2 3
intr 1234 1 2 3
ctxt 99
btime 1418183276
processes 26442
procs_running 2
procs_blocked 0
softirq 5057579 250191 1481983 1647 211099 186066 0 1783454 622196 12499 508444
"""


def test_parse_cpu_times_converts_ticks_and_pads_missing_columns() -> None:
    cpus, skipped = parse_cpu_times(STAT)
    assert sorted(cpus) == [0, 1]
    assert cpus[0][0] == 44.9 and cpus[0][8] == 0.02 and cpus[0][9] == 0.01
    assert cpus[1] == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # old kernels: fewer columns
    assert [skip.detail for skip in skipped] == ["cpuX 1 2 3"]


def test_merge_cpu_times_never_goes_backwards_and_resets_on_hotplug() -> None:
    cache: dict[int, list[float]] = {}
    merge_cpu_times(cache, {0: [10.0] * 10, 1: [5.0] * 10})
    merge_cpu_times(cache, {0: [9.0] + [11.0] * 9, 1: [5.0] * 10})
    assert cache[0][0] == 10.0  # user dropped by 1 s: the old value is kept
    assert cache[0][3] == 11.0
    # idle fell by >= 3 s: a different CPU now, take the new values as they are
    merge_cpu_times(cache, {0: [1.0] * 10})
    assert cache == {0: [1.0] * 10}  # cpu1 went offline and is dropped


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("1,3-5,9\n") == ([1, 3, 4, 5, 9], [])
    assert parse_cpu_list("\n") == ([], [])
    cpus, skipped = parse_cpu_list("5-3")
    assert cpus is None and len(skipped) == 1


def test_parse_cpuinfo_x86_and_arm() -> None:
    x86 = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 799.998\nphysical id\t: 0\n"
        "core id\t\t: 1\nflags\t\t: fpu aes avx\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\ncpu MHz : x\n"
    )
    cpus = parse_cpuinfo(x86)
    assert [c.processor for c in cpus] == [0, 1]
    assert cpus[0].vendor == "GenuineIntel" and cpus[0].core_id == "1" and cpus[0].mhz == 799.998
    assert cpus[0].flags == ["fpu", "aes", "avx"] and cpus[0].bugs == ["spectre_v1"]
    assert cpus[1].mhz == 0.0
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd aes\nCPU implementer\t: 0x41\n"
    assert parse_cpuinfo(arm)[0].flags == ["fp", "asimd", "aes"]


def cpu_tree(host_tree: Callable[..., Path]) -> None:
    cpu0 = "sys/devices/system/cpu/cpu0"
    host_tree(
        {
            "proc/stat": STAT,
            "proc/cpuinfo": (
                "processor\t: 0\nvendor_id\t: V\ncpu MHz\t\t: 1000.5\nflags\t\t: aes sse\nbugs\t\t: mds\n"
            ),
            f"{cpu0}/topology/physical_package_id": "0\n",
            f"{cpu0}/topology/core_id": "0\n",
            f"{cpu0}/thermal_throttle/core_throttle_count": "5\n",
            f"{cpu0}/thermal_throttle/package_throttle_count": "7\n",
            f"{cpu0}/online": "1\n",
            "sys/devices/system/cpu/cpu1/online": "0\n",  # no topology: no throttle samples
            "sys/devices/system/cpu/isolated": "1\n",
        }
    )


def test_cpu_collector_on_a_small_tree(
    host_tree: Callable[..., Path], scrape: Callable[..., Scraped]
) -> None:
    cpu_tree(host_tree)
    result = scrape("cpu")
    lines = result.lines
    assert 'node_cpu_seconds_total{cpu="0",mode="user"} 44.9' in lines
    assert 'node_cpu_guest_seconds_total{cpu="0",mode="nice"} 0.01' in lines
    assert 'node_cpu_core_throttles_total{core="0",package="0"} 5' in lines
    assert 'node_cpu_package_throttles_total{package="0"} 7' in lines
    assert 'node_cpu_isolated{cpu="1"} 1' in lines
    assert 'node_cpu_online{cpu="0"} 1' in lines and 'node_cpu_online{cpu="1"} 0' in lines
    assert not any(line.startswith(("node_cpu_info", "node_cpu_flag_info")) for line in lines)
    assert result.ok


def test_cpu_flags_include_turns_on_info_and_filters(
    host_tree: Callable[..., Path], scrape: Callable[..., Scraped]
) -> None:
    cpu_tree(host_tree)
    lines = scrape("cpu", guest=False, **{"info.flags-include": "^aes$"}).lines
    assert 'node_cpu_flag_info{flag="aes"} 1' in lines
    assert not any('flag="sse"' in line for line in lines)
    assert not any(line.startswith("node_cpu_bug_info") for line in lines)  # no bugs-include: none
    assert any(line.startswith("node_cpu_info{") for line in lines)
    assert 'node_cpu_frequency_hertz{core="",cpu="0",package=""} 1.0005e+09' in lines
    assert not any(line.startswith("node_cpu_guest_seconds_total") for line in lines)


def test_cpu_without_proc_stat_reports_failure_quietly(scrape: Callable[..., Scraped]) -> None:
    result = scrape("cpu")
    assert not result.ok and result.lines == []
