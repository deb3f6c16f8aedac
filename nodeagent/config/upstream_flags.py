"""node_exporter 1.12's command line on Linux, as data: every flag it accepts and what nodeagent does with it.

Read from node_exporter 1.12.1's source: the kingpin flags of ``node_exporter.go``, of every
``collector/*.go`` built on Linux, of exporter-toolkit's ``web/kingpinflag`` and of promslog's flags. What
nodeagent does with a flag follows from the row and from the settings table (:mod:`nodeagent.config.core`
plus the collector registry), so a collector added later takes over its flags without touching this file:

- a flag named like one of our settings is **implemented** by that setting;
- a row with ``alias_of`` is **an alias** of that setting (``deprecated``: node_exporter itself warns that
  the name goes away in 2.0, and so do we, once);
- a row with ``ignored`` is accepted and **meaningless** here (said at debug level);
- any other flag is **accepted, not provided**: its value is checked as node_exporter checks it and one
  startup line says that nodeagent does not provide it.

``--collector.NAME`` / ``--no-collector.NAME`` of every collector in :data:`UPSTREAM_COLLECTORS` follow the
same rule. :func:`flag_dispositions` is the whole table resolved against the settings table.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """The kingpin value type of a flag, which decides its syntax."""

    BOOL = "bool"  # --flag, --no-flag (and --flag=true|false)
    STRING = "string"
    STRINGS = "strings"  # repeatable: every occurrence adds one value
    INT = "int"
    DURATION = "duration"


BOOL, STRING, STRINGS, INT, DURATION = Kind.BOOL, Kind.STRING, Kind.STRINGS, Kind.INT, Kind.DURATION


@dataclass(frozen=True)
class Flag:
    """One flag of node_exporter (its name without ``--``)."""

    name: str
    kind: Kind
    alias_of: str | None = None  # the setting this flag sets under another name
    deprecated: bool = False  # node_exporter warns that the name is deprecated
    ignored: str | None = None  # accepted and meaningless here: why (logged at debug level)


FLAGS: tuple[Flag, ...] = (
    Flag("collector.arp.device-exclude", STRING),
    Flag("collector.arp.device-include", STRING),
    Flag("collector.arp.netlink", BOOL),
    Flag("collector.bcache.priorityStats", BOOL),
    Flag("collector.cpu.guest", BOOL),
    Flag("collector.cpu.info", BOOL),
    Flag("collector.cpu.info.bugs-include", STRING),
    Flag("collector.cpu.info.flags-include", STRING),
    Flag("collector.disable-defaults", BOOL),
    Flag("collector.diskstats.device-exclude", STRING),
    Flag("collector.diskstats.device-include", STRING),
    Flag(
        "collector.diskstats.ignored-devices",
        STRING,
        alias_of="collector.diskstats.device-exclude",
        deprecated=True,
    ),
    Flag("collector.ethtool.device-exclude", STRING),
    Flag("collector.ethtool.device-include", STRING),
    Flag("collector.ethtool.metrics-include", STRING),
    Flag("collector.filesystem.fs-types-exclude", STRING),
    Flag("collector.filesystem.fs-types-include", STRING),
    Flag(
        "collector.filesystem.ignored-fs-types",
        STRING,
        alias_of="collector.filesystem.fs-types-exclude",
        deprecated=True,
    ),
    Flag(
        "collector.filesystem.ignored-mount-points",
        STRING,
        alias_of="collector.filesystem.mount-points-exclude",
        deprecated=True,
    ),
    Flag("collector.filesystem.mount-points-exclude", STRING),
    Flag("collector.filesystem.mount-points-include", STRING),
    Flag("collector.filesystem.mount-timeout", DURATION),
    Flag("collector.filesystem.stat-workers", INT),
    Flag("collector.hwmon.chip-exclude", STRING),
    Flag("collector.hwmon.chip-include", STRING),
    Flag("collector.hwmon.sensor-exclude", STRING),
    Flag("collector.hwmon.sensor-include", STRING),
    Flag("collector.infiniband.device-exclude", STRING),
    Flag("collector.infiniband.device-include", STRING),
    Flag("collector.interrupts.include-zeros", BOOL),
    Flag("collector.interrupts.name-exclude", STRING),
    Flag("collector.interrupts.name-include", STRING),
    Flag("collector.ipvs.backend-labels", STRING),
    Flag("collector.netclass.ignore-invalid-speed", BOOL),
    Flag("collector.netclass.ignored-devices", STRING),
    Flag("collector.netclass.netlink", BOOL),
    # node_exporter names this netclass option after its netlink source, not after the collector.
    Flag("collector.netclass_rtnl.with-stats", BOOL, alias_of="collector.netclass.with-stats"),
    Flag("collector.netdev.address-info", BOOL),
    Flag(
        "collector.netdev.device-blacklist",
        STRING,
        alias_of="collector.netdev.device-exclude",
        deprecated=True,
    ),
    Flag("collector.netdev.device-exclude", STRING),
    Flag("collector.netdev.device-include", STRING),
    Flag(
        "collector.netdev.device-whitelist",
        STRING,
        alias_of="collector.netdev.device-include",
        deprecated=True,
    ),
    Flag("collector.netdev.enable-detailed-metrics", BOOL),
    Flag("collector.netdev.label-ifalias", BOOL),
    Flag("collector.netdev.netlink", BOOL),
    Flag("collector.netstat.fields", STRING),
    Flag("collector.ntp.ip-ttl", INT),
    Flag("collector.ntp.local-offset-tolerance", DURATION),
    Flag("collector.ntp.max-distance", DURATION),
    Flag("collector.ntp.protocol-version", INT),
    Flag("collector.ntp.server", STRING),
    Flag("collector.ntp.server-is-local", BOOL),
    Flag("collector.ntp.server-port", INT),
    Flag("collector.pcidevice.idsfile", STRING),
    Flag("collector.pcidevice.names", BOOL),
    Flag("collector.perf.cache-profilers", STRINGS),
    Flag("collector.perf.cpus", STRING),
    Flag("collector.perf.disable-cache-profilers", BOOL),
    Flag("collector.perf.disable-hardware-profilers", BOOL),
    Flag("collector.perf.disable-software-profilers", BOOL),
    Flag("collector.perf.hardware-profilers", STRINGS),
    Flag("collector.perf.software-profilers", STRINGS),
    Flag("collector.perf.tracepoint", STRINGS),
    # node_exporter's own (not deprecated) name for the powersupplyclass collector's option.
    Flag(
        "collector.powersupply.ignored-supplies",
        STRING,
        alias_of="collector.powersupplyclass.ignored-supplies",
    ),
    Flag("collector.qdisc.device-exclude", STRING),
    Flag("collector.qdisc.device-include", STRING),
    Flag("collector.qdisc.fixtures", STRING),
    Flag(
        "collector.qdisk.device-exclude", STRING, alias_of="collector.qdisc.device-exclude", deprecated=True
    ),
    Flag(
        "collector.qdisk.device-include", STRING, alias_of="collector.qdisc.device-include", deprecated=True
    ),
    Flag("collector.rapl.enable-zone-label", BOOL),
    Flag("collector.runit.servicedir", STRING),
    Flag("collector.slabinfo.slabs-exclude", STRING),
    Flag("collector.slabinfo.slabs-include", STRING),
    Flag("collector.stat.softirq", BOOL),
    Flag("collector.supervisord.url", STRING),
    Flag("collector.sysctl.include", STRINGS),
    Flag("collector.sysctl.include-info", STRINGS),
    Flag("collector.systemd.enable-restarts-metrics", BOOL),
    Flag("collector.systemd.enable-start-time-metrics", BOOL),
    Flag("collector.systemd.enable-task-metrics", BOOL),
    Flag("collector.systemd.private", BOOL),
    Flag(
        "collector.systemd.unit-blacklist",
        STRING,
        alias_of="collector.systemd.unit-exclude",
        deprecated=True,
    ),
    Flag("collector.systemd.unit-exclude", STRING),
    Flag("collector.systemd.unit-include", STRING),
    Flag(
        "collector.systemd.unit-whitelist",
        STRING,
        alias_of="collector.systemd.unit-include",
        deprecated=True,
    ),
    Flag("collector.tapestats.ignored-devices", STRING),
    Flag("collector.textfile.directory", STRINGS),
    Flag("collector.vmstat.fields", STRING),
    Flag("collector.wifi.fixtures", STRING),
    Flag("log.format", STRING),
    Flag("log.level", STRING),
    Flag("path.procfs", STRING),
    Flag("path.rootfs", STRING),
    Flag("path.sysfs", STRING),
    Flag("path.udev.data", STRING),
    Flag("runtime.gomaxprocs", INT, ignored="a Go runtime setting; Python has no GOMAXPROCS"),
    Flag("web.config.file", STRING),
    Flag("web.disable-exporter-metrics", BOOL),
    Flag("web.listen-address", STRINGS),
    Flag("web.max-requests", INT),
    Flag("web.systemd-socket", BOOL),
    Flag("web.telemetry-path", STRING),
)

# Every collector node_exporter 1.12.1 registers on Linux, and whether it is on by default there.
UPSTREAM_COLLECTORS: dict[str, bool] = {
    "arp": True,
    "bcache": True,
    "bcachefs": True,
    "bonding": True,
    "btrfs": True,
    "buddyinfo": False,
    "cgroups": False,
    "conntrack": True,
    "cpu": True,
    "cpu_vulnerabilities": False,
    "cpufreq": True,
    "diskstats": True,
    "dmi": True,
    "dmmultipath": True,
    "drbd": False,
    "drm": False,
    "edac": True,
    "entropy": True,
    "ethtool": False,
    "fibrechannel": True,
    "filefd": True,
    "filesystem": True,
    "hwmon": True,
    "infiniband": True,
    "interrupts": False,
    "ipvs": True,
    "kernel_hung": True,
    "ksmd": False,
    "lnstat": False,
    "loadavg": True,
    "logind": False,
    "mdadm": True,
    "meminfo": True,
    "meminfo_numa": False,
    "mountstats": False,
    "netclass": True,
    "netdev": True,
    "netstat": True,
    "network_route": False,
    "nfs": True,
    "nfsd": True,
    "ntp": False,
    "nvme": True,
    "nvmesubsystem": False,
    "os": True,
    "pcidevice": False,
    "perf": False,
    "powersupplyclass": True,
    "pressure": True,
    "processes": False,
    "qdisc": False,
    "rapl": True,
    "runit": False,
    "schedstat": True,
    "selinux": True,
    "slabinfo": False,
    "sockstat": True,
    "softirqs": False,
    "softnet": True,
    "stat": True,
    "supervisord": False,
    "swap": False,
    "sysctl": False,
    "systemd": False,
    "tapestats": True,
    "tcpstat": False,
    "textfile": True,
    "thermal_zone": True,
    "time": True,
    "timex": True,
    "udp_queues": True,
    "uname": True,
    "vmstat": True,
    "watchdog": True,
    "wifi": False,
    "xfrm": False,
    "xfs": True,
    "zfs": True,
    "zoneinfo": False,
}

# Deprecated in node_exporter 1.x and left out of nodeagent on purpose: their flags are accepted, and the
# startup line says so in these words.
DEPRECATED_COLLECTORS = ("ntp", "runit", "supervisord")

# (collector, exclude setting, include setting): node_exporter refuses to start when both are given and
# the collector is on.
EXCLUSIVE_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("diskstats", "collector.diskstats.device-exclude", "collector.diskstats.device-include"),
    ("filesystem", "collector.filesystem.fs-types-exclude", "collector.filesystem.fs-types-include"),
    (
        "filesystem",
        "collector.filesystem.mount-points-exclude",
        "collector.filesystem.mount-points-include",
    ),
    ("netdev", "collector.netdev.device-exclude", "collector.netdev.device-include"),
    ("qdisc", "collector.qdisc.device-exclude", "collector.qdisc.device-include"),
)


class Disposition(Enum):
    """What nodeagent does with a node_exporter flag."""

    IMPLEMENTED = "implemented"
    ALIAS = "alias"
    IGNORED = "ignored"
    NOT_PROVIDED = "not provided"


def switch_flags() -> tuple[Flag, ...]:
    """``--collector.NAME`` of every upstream collector, as rows."""
    return tuple(Flag(f"collector.{name}", BOOL) for name in UPSTREAM_COLLECTORS)


def all_flags() -> dict[str, Flag]:
    """Every node_exporter flag by name: :data:`FLAGS` and the collector switches."""
    return {flag.name: flag for flag in (*FLAGS, *switch_flags())}


def disposition(flag: Flag, settings: Container[str]) -> Disposition:
    """What we do with ``flag`` given the keys of our settings table."""
    if flag.ignored is not None:
        return Disposition.IGNORED
    if flag.alias_of is not None and flag.alias_of in settings:
        return Disposition.ALIAS
    if flag.alias_of is None and flag.name in settings:
        return Disposition.IMPLEMENTED
    return Disposition.NOT_PROVIDED


def flag_dispositions(settings: Container[str]) -> dict[str, Disposition]:
    """The whole table resolved: node_exporter flag name -> what nodeagent does with it."""
    return {name: disposition(flag, settings) for name, flag in sorted(all_flags().items())}


def collector_of(flag: Flag) -> str | None:
    """The upstream collector a ``collector.NAME[.OPTION]`` flag (or the setting it aliases) belongs to."""
    parts = (flag.alias_of or flag.name).split(".")
    if parts[0] != "collector" or len(parts) < 2 or parts[1] not in UPSTREAM_COLLECTORS:
        return None
    return parts[1]
