"""Edge cases of the cpu, cpufreq, meminfo, stat, vmstat, diskstats and filesystem collectors.

The byte-for-byte comparison with node_exporter is in test_fixture_e2e.py; here: missing files,
malformed input, option filters and the filesystem collector's handling of hung mounts, on small trees.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nodeagent.config import ConfigError
from nodeagent.metrics import _parse_errors
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics._proc_stat import parse_cpu_times, parse_stat_totals
from nodeagent.metrics.cpu import merge_cpu_times, parse_cpu_list, parse_cpuinfo
from nodeagent.metrics.diskstats import parse_diskstats, parse_udev_properties
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.filesystem import (
    FilesystemCollector,
    Mount,
    host_relative,
    parse_mountinfo,
    parse_mounts,
    unescape_mount_path,
)
from nodeagent.metrics.meminfo import parse_meminfo
from nodeagent.metrics.registry import Paths, all_collectors, build_collectors
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.vmstat import DEFAULT_FIELDS, parse_vmstat


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def paths_for(root: Path) -> Paths:
    return Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=root, udev_data=root / "udev")


def scrape(root: Path, name: str, settings: dict[str, Any] | None = None) -> list[str]:
    """Sample lines of one collector run (HELP/TYPE aside), including its success line."""
    collectors = build_collectors([name], paths_for(root), settings or {})
    text = render_text(run_collectors(collectors))
    return [
        line
        for line in text.splitlines()
        if line and not line.startswith("#") and not line.startswith("node_scrape_collector_duration")
    ]


def parse_error_count(collector: str) -> float:
    return _parse_errors.PARSE_ERRORS.labels(collector)._value.get()


def test_group_a_collectors_are_registered_with_upstream_defaults() -> None:
    registry = all_collectors()
    for name in ("cpu", "cpufreq", "meminfo", "stat", "vmstat", "diskstats", "filesystem"):
        assert registry[name].default_enabled, name
    options = {o.name: o.default for o in registry["filesystem"].options}
    assert options["mount-timeout"] == 5.0 and options["stat-workers"] == 4
    assert {o.name for o in registry["cpu"].options} >= {"info", "info.flags-include", "info.bugs-include"}


# --- cpu -------------------------------------------------------------------------------------------


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
    errors: list[str] = []
    cpus = parse_cpu_times(STAT, lambda what, line: errors.append(line))
    assert sorted(cpus) == [0, 1]
    assert cpus[0][0] == 44.9 and cpus[0][8] == 0.02 and cpus[0][9] == 0.01
    assert cpus[1] == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # old kernels: fewer columns
    assert errors == ["cpuX 1 2 3"]


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
    assert parse_cpu_list("1,3-5,9\n") == [1, 3, 4, 5, 9]
    assert parse_cpu_list("\n") == []
    with pytest.raises(ValueError):
        parse_cpu_list("5-3")


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


def cpu_tree(root: Path) -> None:
    write(root, "proc/stat", STAT)
    write(
        root,
        "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: V\ncpu MHz\t\t: 1000.5\nflags\t\t: aes sse\nbugs\t\t: mds\n",
    )
    cpu0 = "sys/devices/system/cpu/cpu0"
    write(root, f"{cpu0}/topology/physical_package_id", "0\n")
    write(root, f"{cpu0}/topology/core_id", "0\n")
    write(root, f"{cpu0}/thermal_throttle/core_throttle_count", "5\n")
    write(root, f"{cpu0}/thermal_throttle/package_throttle_count", "7\n")
    write(root, f"{cpu0}/online", "1\n")
    write(root, "sys/devices/system/cpu/cpu1/online", "0\n")  # no topology: no throttle samples
    write(root, "sys/devices/system/cpu/isolated", "1\n")


def test_cpu_collector_on_a_small_tree(tmp_path: Path) -> None:
    cpu_tree(tmp_path)
    lines = scrape(tmp_path, "cpu")
    assert 'node_cpu_seconds_total{cpu="0",mode="user"} 44.9' in lines
    assert 'node_cpu_guest_seconds_total{cpu="0",mode="nice"} 0.01' in lines
    assert 'node_cpu_core_throttles_total{core="0",package="0"} 5' in lines
    assert 'node_cpu_package_throttles_total{package="0"} 7' in lines
    assert 'node_cpu_isolated{cpu="1"} 1' in lines
    assert 'node_cpu_online{cpu="0"} 1' in lines and 'node_cpu_online{cpu="1"} 0' in lines
    assert not any(line.startswith(("node_cpu_info", "node_cpu_flag_info")) for line in lines)
    assert 'node_scrape_collector_success{collector="cpu"} 1' in lines


def test_cpu_flags_include_turns_on_info_and_filters(tmp_path: Path) -> None:
    cpu_tree(tmp_path)
    settings = {"collector.cpu.info.flags-include": "^aes$", "collector.cpu.guest": False}
    lines = scrape(tmp_path, "cpu", settings)
    assert 'node_cpu_flag_info{flag="aes"} 1' in lines
    assert not any('flag="sse"' in line for line in lines)
    assert not any(line.startswith("node_cpu_bug_info") for line in lines)  # no bugs-include: none
    assert any(line.startswith("node_cpu_info{") for line in lines)
    assert 'node_cpu_frequency_hertz{core="",cpu="0",package=""} 1.0005e+09' in lines
    assert not any(line.startswith("node_cpu_guest_seconds_total") for line in lines)


def test_cpu_without_proc_stat_reports_failure_quietly(tmp_path: Path) -> None:
    lines = scrape(tmp_path, "cpu")
    assert lines == ['node_scrape_collector_success{collector="cpu"} 0']


# --- cpufreq ----------------------------------------------------------------------------------------


def test_cpufreq_reads_khz_skips_missing_and_bad_files(tmp_path: Path) -> None:
    freq = "sys/devices/system/cpu/cpu0/cpufreq"
    write(tmp_path, f"{freq}/scaling_cur_freq", "1699981\n")
    write(tmp_path, f"{freq}/cpuinfo_max_freq", "<unsupported>\n")
    write(tmp_path, f"{freq}/scaling_governor", "powersave\n")
    write(tmp_path, f"{freq}/scaling_available_governors", "performance powersave\n")
    (tmp_path / "sys/devices/system/cpu/cpu1").mkdir()  # no cpufreq directory at all
    before = parse_error_count("cpufreq")
    lines = scrape(tmp_path, "cpufreq")
    assert 'node_cpu_scaling_frequency_hertz{cpu="0"} 1.699981e+09' in lines
    assert 'node_cpu_scaling_governor{cpu="0",governor="performance"} 0' in lines
    assert 'node_cpu_scaling_governor{cpu="0",governor="powersave"} 1' in lines
    assert not any(line.startswith("node_cpu_frequency_max_hertz") for line in lines)
    assert parse_error_count("cpufreq") == before + 1
    assert 'node_scrape_collector_success{collector="cpufreq"} 1' in lines


def test_cpufreq_without_sysfs_cpus_is_no_data(tmp_path: Path) -> None:
    assert scrape(tmp_path, "cpufreq") == ['node_scrape_collector_success{collector="cpufreq"} 0']


# --- meminfo ----------------------------------------------------------------------------------------


def test_parse_meminfo_units_names_and_bad_lines() -> None:
    text = (
        "MemTotal:        3742148 kB\nActive(anon):    2020004 kB\nHugePages_Total:       4\n"
        "KReclaimable:      100 kB\nMemFree:       lots kB\nDirty: 1 MB\n\nBuffers: 2 kB\n"
    )
    errors: list[str] = []
    values = parse_meminfo(text, errors.append)
    assert values == {
        "MemTotal_bytes": 3742148 * 1024.0,
        "Active_anon_bytes": 2020004 * 1024.0,
        "HugePages_Total": 4.0,
        "Buffers_bytes": 2048.0,
    }
    # KReclaimable is not in node_exporter's set; the two malformed lines are reported, the rest kept
    assert errors == ["MemFree:       lots kB", "Dirty: 1 MB"]


def test_meminfo_collector_counts_parse_errors(tmp_path: Path) -> None:
    write(tmp_path, "proc/meminfo", "MemTotal: 1 kB\nMemFree: ? kB\n")
    before = parse_error_count("meminfo")
    lines = scrape(tmp_path, "meminfo")
    assert lines == [
        "node_memory_MemTotal_bytes 1024",
        'node_scrape_collector_success{collector="meminfo"} 1',
    ]
    assert parse_error_count("meminfo") == before + 1


# --- stat -------------------------------------------------------------------------------------------


def test_stat_softirq_only_when_asked(tmp_path: Path) -> None:
    write(tmp_path, "proc/stat", STAT)
    lines = scrape(tmp_path, "stat")
    assert "node_intr_total 1234" in lines and "node_forks_total 26442" in lines
    assert "node_boot_time_seconds 1.418183276e+09" in lines and "node_procs_running 2" in lines
    assert not any(line.startswith("node_softirqs_total") for line in lines)
    lines = scrape(tmp_path, "stat", {"collector.stat.softirq": True})
    assert 'node_softirqs_total{vector="block_iopoll"} 0' in lines
    assert 'node_softirqs_total{vector="rcu"} 508444' in lines


def test_stat_skips_a_malformed_counter_and_keeps_the_rest() -> None:
    errors: list[str] = []
    totals = parse_stat_totals("intr x 1 2\nctxt 5\nprocs_blocked\n", lambda what, line: errors.append(what))
    assert totals.interrupts is None and totals.context_switches == 5.0 and totals.procs_blocked is None
    assert errors == ["intr line"]


# --- vmstat -----------------------------------------------------------------------------------------


def test_vmstat_default_and_custom_fields() -> None:
    text = "nr_free_pages 977769\npgfault 10\npgmajfault 2\noom_kill 0\npswpin 3\npgsteal 4\n"
    default = go_regex(DEFAULT_FIELDS)
    assert parse_vmstat(text, default) == {"pgfault": 10.0, "pgmajfault": 2.0, "oom_kill": 0.0, "pswpin": 3.0}
    assert parse_vmstat(text, go_regex("^nr_")) == {"nr_free_pages": 977769.0}
    assert parse_vmstat(text, None) == {}


def test_vmstat_reports_malformed_lines() -> None:
    errors: list[str] = []
    values = parse_vmstat("pgfault 10\npgpgin\npswpout x\n", go_regex(DEFAULT_FIELDS), errors.append)
    assert values == {"pgfault": 10.0}
    assert errors == ["pgpgin", "pswpout x"]


def test_vmstat_collector_is_untyped(tmp_path: Path) -> None:
    write(tmp_path, "proc/vmstat", "pgfault 10\n")
    text = render_text(run_collectors(build_collectors(["vmstat"], paths_for(tmp_path), {})))
    assert "# TYPE node_vmstat_pgfault untyped\nnode_vmstat_pgfault 10\n" in text


# --- diskstats --------------------------------------------------------------------------------------


DISKSTATS = """   8       0 sda 10 1 8 1000 20 2 16 2000 0 3000 4000
   8       1 sda1 1 0 2 3 0 0 0 0 0 4 4
 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 1 2 3
 254       1 vdb 1 2 3 4 5 6 7 8 9 10 x
"""


def test_parse_diskstats_column_counts_and_bad_lines() -> None:
    errors: list[str] = []
    disks = parse_diskstats(DISKSTATS, errors.append)
    assert [(d.device, len(d.stats)) for d in disks] == [
        ("sda", 11),
        ("sda1", 11),
        ("nvme0n1", 17),
        ("loop0", 11),
    ]
    assert len(errors) == 2


def test_parse_udev_properties_keeps_only_device_properties() -> None:
    text = "S:disk/by-id/x\nE:ID_MODEL=SSD\nE:ID_FS_VERSION=LVM2 001\nE:BROKEN\nG:systemd\n"
    assert parse_udev_properties(text) == {"ID_MODEL": "SSD", "ID_FS_VERSION": "LVM2 001"}


def test_diskstats_collector_units_filters_and_udev(tmp_path: Path) -> None:
    write(tmp_path, "proc/diskstats", DISKSTATS)
    write(
        tmp_path,
        "udev/b8:0",
        "E:ID_ATA=1\nE:ID_ATA_WRITE_CACHE=1\nE:ID_ATA_ROTATION_RATE_RPM=bad\n"
        "E:ID_FS_TYPE=ext4\nE:SCSI_IDENT_SERIAL=S1\nE:ID_SERIAL_SHORT=S2\n",
    )
    write(tmp_path, "udev/b259:0", "E:ID_WWN=eui.1\nE:ID_ATA_WRITE_CACHE=1\n")  # not ATA: no ata metrics
    write(tmp_path, "sys/block/sda/queue/rotational", "1\n")
    lines = scrape(tmp_path, "diskstats")
    assert 'node_disk_read_bytes_total{device="sda"} 4096' in lines
    assert 'node_disk_read_time_seconds_total{device="sda"} 1' in lines
    assert 'node_disk_io_now{device="sda"} 0' in lines
    assert 'node_disk_flush_requests_time_seconds_total{device="nvme0n1"} 0.017' in lines
    assert 'node_disk_discarded_sectors_total{device="nvme0n1"} 14' in lines
    assert not any('device="sda1"' in line or 'device="loop0"' in line for line in lines)  # default exclude
    assert not any(line.startswith('node_disk_discards_completed_total{device="sda"') for line in lines)
    assert (
        'node_disk_info{device="sda",major="8",minor="0",model="",path="",revision="",rotational="1",'
        'serial="S1",wwn=""} 1'
    ) in lines
    assert 'node_disk_ata_write_cache{device="sda"} 1' in lines
    assert not any(line.startswith("node_disk_ata_rotation_rate_rpm") for line in lines)  # bad value
    assert not any(line.startswith('node_disk_ata_write_cache{device="nvme0n1"') for line in lines)
    assert 'node_disk_filesystem_info{device="sda",type="ext4",usage="",uuid="",version=""} 1' in lines

    only_loop = scrape(tmp_path, "diskstats", {"collector.diskstats.device-include": "^loop"})
    devices = {line.split('device="')[1].split('"')[0] for line in only_loop if 'device="' in line}
    assert devices == {"loop0"}


def test_diskstats_include_and_exclude_are_mutually_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mutually exclusive"):
        build_collectors(
            ["diskstats"],
            paths_for(tmp_path),
            {"collector.diskstats.device-include": "sd", "collector.diskstats.device-exclude": "nvme"},
        )


# --- filesystem -------------------------------------------------------------------------------------


MOUNTINFO = """22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/with\\040space ro,nosuid - tmpfs tmp\\134fs rw,size=4k
29 27 0:26 / /var/lib/docker/overlay2/x rw - xfs /dev/vdb rw
bogus line
30 27 8:1 / /data rw - ext4 /dev/sda1 ro,errors=remount-ro
"""


def test_parse_mountinfo_fields_escapes_and_bad_lines() -> None:
    errors: list[str] = []
    mounts = parse_mountinfo(MOUNTINFO, errors.append)
    assert errors == ["bogus line"]
    root = mounts[1]
    assert (root.device, root.mount_point, root.fs_type, root.major, root.minor) == (
        "/dev/vda",
        "/",
        "ext4",
        "254",
        "0",
    )
    assert mounts[2].mount_point == "/mnt/with space" and mounts[2].device == "tmp\\fs"
    assert mounts[2].read_only and mounts[4].read_only and not root.read_only  # mount or super options


def test_parse_mounts_fallback_format() -> None:
    mounts = parse_mounts("/dev/vda / ext4 rw,relatime 0 0\nshort line\n")
    assert mounts == [Mount("/dev/vda", "/", "ext4", "rw,relatime")]
    assert unescape_mount_path(r"/a\011b\134c\x") == "/a\tb\\c\\x"


def test_host_relative_for_both_views() -> None:
    container_view = [
        Mount("overlay", "/", "overlay"),
        Mount("/dev/vda", "/host", "ext4"),
        Mount("/dev/vdb", "/host/data", "xfs"),
        Mount("tmpfs", "/hostile", "tmpfs"),
    ]
    assert [m.mount_point for m in host_relative(container_view, "/host")] == ["/", "/data"]
    host_view = [Mount("/dev/vda", "/", "ext4"), Mount("/dev/vdb", "/data", "xfs")]
    assert host_relative(host_view, "/host/") == host_view
    assert host_relative(container_view, "/") == container_view


def filesystem_tree(root: Path) -> Path:
    """A rootfs whose mount table lists real directories below it (the container's view)."""
    rootfs = root / "host"
    (rootfs / "data").mkdir(parents=True)
    mountinfo = "".join(
        f"{i} 1 8:{i} / {rootfs}{mp} rw - {fs} /dev/sd{i} {sup}\n"
        for i, (mp, fs, sup) in enumerate(
            [("", "ext4", "rw"), ("/data", "xfs", "ro"), ("/proc", "proc", "rw"), ("/gone", "ext4", "rw")]
        )
    )
    write(root, "proc/1/mountinfo", "1 0 0:1 / / rw - overlay overlay rw\n" + mountinfo)
    return rootfs


def fs_collector(root: Path, **options: Any) -> FilesystemCollector:
    rootfs = filesystem_tree(root)
    settings = {f"collector.filesystem.{k.replace('_', '-')}": v for k, v in options.items()}
    paths = Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=rootfs)
    (collector,) = build_collectors(["filesystem"], paths, settings)
    assert isinstance(collector, FilesystemCollector)
    return collector


def sample_lines(collector: FilesystemCollector) -> list[str]:
    return [line for line in render_text(collector.collect()).splitlines() if not line.startswith("#")]


def test_filesystem_statvfs_and_errors(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path)
    lines = sample_lines(collector)
    statvfs = os.statvfs(tmp_path)
    size = float(statvfs.f_blocks) * float(statvfs.f_bsize)
    labels = 'device="/dev/sd0",device_error="",fstype="ext4",mountpoint="/"'
    assert any(line.startswith(f"node_filesystem_size_bytes{{{labels}}} ") for line in lines)
    assert (
        float(
            next(ln for ln in lines if ln.startswith(f"node_filesystem_size_bytes{{{labels}}}")).rsplit(
                " ", 1
            )[1]
        )
        == size
    )
    data = 'device="/dev/sd1",device_error="",fstype="xfs",mountpoint="/data"'
    assert f"node_filesystem_readonly{{{data}}} 1" in lines
    assert 'node_filesystem_mount_info{device="/dev/sd1",major="8",minor="1",mountpoint="/data"} 1' in lines
    # /gone does not exist below rootfs: statvfs fails with Go's spelling of the errno text
    gone = 'device="/dev/sd3",device_error="no such file or directory",fstype="ext4",mountpoint="/gone"'
    assert f"node_filesystem_device_error{{{gone}}} 1" in lines
    assert f"node_filesystem_readonly{{{gone}}} 0" in lines
    assert not any(line.startswith(f"node_filesystem_size_bytes{{{gone}") for line in lines)
    assert not any('mountpoint="/proc"' in line for line in lines)  # default exclusions
    assert not any('fstype="overlay"' in line for line in lines)  # outside rootfs (and excluded type)


def test_filesystem_include_options(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path, mount_points_include="^/data$")
    assert {line.split('mountpoint="')[1].split('"')[0] for line in sample_lines(collector)} == {"/data"}
    # dropping the fs type exclusions leaves the mount point ones: /proc stays out
    collector = fs_collector(tmp_path / "b", fs_types_include="^(proc|xfs)$")
    assert {line.split('mountpoint="')[1].split('"')[0] for line in sample_lines(collector)} == {"/data"}


def test_filesystem_hung_statvfs_is_reported_then_skipped_until_it_returns(tmp_path: Path) -> None:
    collector = fs_collector(tmp_path, mount_timeout=0.2, mount_points_include="^/(data)?$")
    release = threading.Event()
    calls: list[str] = []
    real = os.statvfs

    def statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path.endswith("/data"):
            release.wait(10)  # a dead NFS server
        return real(path)

    collector.statfs = statvfs
    stuck = 'device="/dev/sd1",device_error="mountpoint timeout",fstype="xfs",mountpoint="/data"'
    try:
        started = time.monotonic()
        lines = sample_lines(collector)
        assert time.monotonic() - started < 2
        assert f"node_filesystem_device_error{{{stuck}}} 1" in lines
        assert any(ln.startswith('node_filesystem_size_bytes{device="/dev/sd0"') for ln in lines)
        assert collector.stuck == {"/data"}

        # the next scrape does not call statvfs on the stuck mount at all, and does not wait
        calls.clear()
        started = time.monotonic()
        lines = sample_lines(collector)
        assert time.monotonic() - started < 0.2
        assert [p for p in calls if p.endswith("/data")] == []
        assert f"node_filesystem_device_error{{{stuck}}} 1" in lines
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while collector.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert collector.stuck == set()  # the call returned: monitoring resumes
    lines = sample_lines(collector)
    data = 'device="/dev/sd1",device_error="",fstype="xfs",mountpoint="/data"'
    assert f"node_filesystem_device_error{{{data}}} 0" in lines


def test_filesystem_falls_back_to_proc_mounts(tmp_path: Path) -> None:
    write(tmp_path, "proc/mounts", f"/dev/vda {tmp_path} ext4 ro 0 0\n")
    paths = Paths(procfs=tmp_path / "proc", sysfs=tmp_path / "sys", rootfs=tmp_path)
    (collector,) = build_collectors(["filesystem"], paths, {})
    lines = sample_lines(collector)  # type: ignore[arg-type]
    root = 'device="/dev/vda",device_error="",fstype="ext4",mountpoint="/"'
    assert f"node_filesystem_readonly{{{root}}} 1" in lines
    assert 'node_filesystem_mount_info{device="/dev/vda",major="0",minor="0",mountpoint="/"} 1' in lines


def test_filesystem_without_mount_table_fails_quietly(tmp_path: Path) -> None:
    assert scrape(tmp_path, "filesystem") == ['node_scrape_collector_success{collector="filesystem"} 0']


def test_filesystem_on_node_exporter_fixture(node_exporter_fixture: Path) -> None:
    """The fixture's mountinfo parses completely; its mount points do not exist here, so statvfs fails."""
    paths = Paths(
        procfs=node_exporter_fixture / "proc",
        sysfs=node_exporter_fixture / "sys",
        rootfs=Path("/nonexistent-rootfs"),
    )
    (collector,) = build_collectors(["filesystem"], paths, {})
    lines = sample_lines(collector)  # type: ignore[arg-type]
    assert (
        'node_filesystem_device_error{device="/dev/dm-2",device_error="no such file or directory",'
        'fstype="ext4",mountpoint="/"} 1' in lines
    )
    assert not any('mountpoint="/sys' in line or 'mountpoint="/proc' in line for line in lines)
