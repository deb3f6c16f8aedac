"""End to end on node_exporter's fake host: our families must equal node_exporter's e2e-output.txt.

For every collector we implement, each family it emits on the fixture tree must equal the lines
node_exporter printed for that family (TYPE line and every sample, byte for byte; HELP text aside),
and every family node_exporter's collector of that name printed must be present.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.registry import Paths, all_collectors, build_collectors
from nodeagent.metrics.scrape import run_collectors

# node_exporter's e2e test drops these before comparing (see the fixture README).
DROPPED = re.compile(
    r"^(go_|node_exporter_build_info|node_scrape_collector_duration_seconds|process_|"
    r"node_textfile_mtime_seconds|node_time_(zone|seconds)|node_network_(receive|transmit)_(bytes|packets)_total)"
)

# Collectors that read the live host rather than the fixture tree: netdev's default rtnetlink path dumps
# this machine's interfaces (the e2e run includes only lo). Their values are this host's, not node_exporter's
# CI host's, so their families are compared by name, type and labels only, as node_exporter's own e2e
# test drops such lines.
LIVE_COLLECTORS = frozenset({"netdev"})


def without_values(lines: list[str]) -> list[str]:
    """TYPE lines as they are, sample lines without their value."""
    return [line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in lines]


# Which e2e families belong to which of our collectors (for the completeness check).
FAMILIES_OF = {
    "arp": r"node_arp_",
    "bcache": r"node_bcache_",
    "bcachefs": r"node_bcachefs_",
    "bonding": r"node_bonding_",
    "buddyinfo": r"node_buddyinfo_",
    "cgroups": r"node_cgroups_",
    "btrfs": r"node_btrfs_",
    "conntrack": r"node_nf_conntrack_",
    # node_cpu_frequency_hertz{package,core,cpu} comes from node_exporter's cpu collector (/proc/cpuinfo)
    "cpu": r"node_cpu_(seconds|guest_seconds|info|flag_info|bug_info|core_throttles|package_throttles|"
    r"isolated|frequency_hertz)",
    "cpu_vulnerabilities": r"node_cpu_vulnerabilities_",
    "cpufreq": r"node_cpu_(frequency_(min|max)_hertz|scaling_)",
    "diskstats": r"node_disk_(?!ata_|device_mapper)",
    "dmi": r"node_dmi_",
    "dmmultipath": r"node_dmmultipath_",
    "drbd": r"node_drbd_",
    "edac": r"node_edac_",
    "entropy": r"node_entropy_",
    "fibrechannel": r"node_fibrechannel_",
    "filefd": r"node_filefd_",
    "hwmon": r"node_hwmon_",
    "infiniband": r"node_infiniband_",
    "interrupts": r"node_interrupts_",
    "ipvs": r"node_ipvs_",
    "kernel_hung": r"node_kernel_hung_",
    "ksmd": r"node_ksmd_",
    "loadavg": r"node_load",
    "lnstat": r"node_lnstat_",
    "mdadm": r"node_md_",
    "meminfo": r"node_memory_(?!numa_)",
    "meminfo_numa": r"node_memory_numa_",
    "mountstats": r"node_mountstats_",
    "netclass": r"node_network_(?!(receive|transmit)_)(?!.*_total$)|node_network_carrier_.*changes_total"
    r"|node_network_transmit_queue_length",
    "netdev": r"node_network_(receive|transmit)_(?!queue)",
    "netstat": r"node_netstat_",
    "nfs": r"node_nfs_",
    "nfsd": r"node_nfsd_",
    "nvme": r"node_nvme_",
    "os": r"node_os_",
    "pcidevice": r"node_pcidevice_",
    "powersupplyclass": r"node_power_supply_",
    "pressure": r"node_pressure_",
    "processes": r"node_processes_",
    "qdisc": r"node_qdisc_",
    "schedstat": r"node_schedstat_",
    "slabinfo": r"node_slabinfo_",
    "sockstat": r"node_sockstat_",
    "softirqs": r"node_softirqs_functions_",
    "softnet": r"node_softnet_",
    "stat": r"node_(boot_time_seconds|context_switches_total|forks_total|intr_total|procs_|softirqs_total)",
    "sysctl": r"node_sysctl_",
    "tapestats": r"node_tape_",
    "textfile": r"node_textfile_|testmetric",
    "thermal_zone": r"node_(thermal_zone_|cooling_device_)",
    "time": r"node_time_",
    "udp_queues": r"node_udp_queues",
    "vmstat": r"node_vmstat_",
    "watchdog": r"node_watchdog_",
    "wifi": r"node_wifi_",
    "xfrm": r"node_xfrm_",
    "zoneinfo": r"node_zoneinfo_",
    "xfs": r"node_xfs_",
    "zfs": r"node_zfs_",
}


# The flags node_exporter's e2e run used, as our setting keys.
def e2e_settings(fixture: Path) -> dict[str, object]:
    return {
        "collector.cpu.info": True,
        "collector.cpu.info.bugs-include": r"^(cpu_meltdown|spectre_.*|mds)$",
        "collector.cpu.info.flags-include": r"^(aes|avx.?|constant_tsc)$",
        "collector.arp.device-exclude": "nope",
        "collector.arp.netlink": False,
        "collector.bcache.priorityStats": True,
        "collector.netdev.device-include": "lo",
        "collector.netclass.ignored-devices": "(dmz|int)",
        "collector.netclass.ignore-invalid-speed": True,
        "collector.qdisc.device-include": "(wlan0|eth0)",
        "collector.qdisc.fixtures": str(fixture / "qdisc") + "/",
        "collector.stat.softirq": True,
        "collector.textfile.directory": str(fixture / "textfile" / "two_metric_files"),
        "collector.hwmon.chip-include": "(applesmc|asus_nb_wmi|coretemp|hwmon4|ieee80211|nct6779)",
        "collector.sysctl.include": ["fs.file-nr", "fs.file-nr:total,current,max", "kernel.threads-max"],
        "collector.sysctl.include-info": ["kernel.seccomp.actions_avail"],
        "collector.wifi.fixtures": str(fixture / "wifi"),
    }


def families_by_name(text: str) -> dict[str, list[str]]:
    """TYPE and sample lines of each family (HELP lines aside), in output order."""
    families: dict[str, list[str]] = defaultdict(list)
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP"):
            continue
        if line.startswith("# TYPE "):
            current = line.split()[2]
        if not line or DROPPED.match(line if not line.startswith("#") else line.split()[2]):
            continue
        families[current].append(line)
    return families


def run_fixture(fixture: Path, names: list[str]) -> str:
    paths = Paths(
        procfs=fixture / "proc", sysfs=fixture / "sys", rootfs=fixture, udev_data=fixture / "udev" / "data"
    )
    return render_text(run_collectors(build_collectors(names, paths, e2e_settings(fixture))))


@pytest.fixture(scope="module")
def expected(node_exporter_fixture_path: Path) -> dict[str, list[str]]:
    return families_by_name((node_exporter_fixture_path / "e2e-output.txt").read_text())


@pytest.fixture(scope="module")
def node_exporter_fixture_path(node_exporter_fixture_tree: Path) -> Path:
    # a copy with the symlinks restored (see tests/conftest.py); e2e-output.txt is copied along
    return node_exporter_fixture_tree


COMPARED = sorted(set(all_collectors()) & set(FAMILIES_OF))


@pytest.mark.parametrize("collector", COMPARED)
def test_collector_matches_node_exporter(
    collector: str, expected: dict[str, list[str]], node_exporter_fixture_path: Path
) -> None:
    ours = families_by_name(run_fixture(node_exporter_fixture_path, [collector]))
    success = f'node_scrape_collector_success{{collector="{collector}"}} 1'
    assert success in ours["node_scrape_collector_success"], f"{collector} failed on the fixture"
    emitted = {name for name in ours if not name.startswith("node_scrape_collector_")}
    for name in sorted(emitted):
        if DROPPED.match(name):
            continue
        assert name in expected, f"{collector} emits {name}, which node_exporter does not"
        if collector in LIVE_COLLECTORS:
            assert without_values(ours[name]) == without_values(expected[name]), f"family {name} differs"
        else:
            assert ours[name] == expected[name], f"family {name} differs"
    pattern = re.compile(FAMILIES_OF[collector])
    wanted = {name for name in expected if name and pattern.match(name)}
    missing = wanted - set(ours)
    assert not missing, f"{collector} does not emit {sorted(missing)}"


def test_every_collector_on_the_fixture_reports_success(node_exporter_fixture_path: Path) -> None:
    names = sorted(set(all_collectors()) & set(FAMILIES_OF))
    text = run_fixture(node_exporter_fixture_path, names)
    failed = [
        line
        for line in text.splitlines()
        if line.startswith("node_scrape_collector_success") and line.endswith(" 0")
    ]
    assert not failed
