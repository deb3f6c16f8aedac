"""Parsers for <procfs>/stat, shared by the cpu and stat collectors.

Both are pure: they take the file's text and return plain values and the malformed lines they skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nodeagent.metrics.host.gonum import parse_floats, parse_uint
from nodeagent.metrics.host.skips import Skip

# Kernel ticks per second for /proc/stat times (USER_HZ); 100 on every mainstream architecture.
try:
    USER_HZ = float(os.sysconf("SC_CLK_TCK"))
except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
    USER_HZ = 100.0

# Column order of a "cpuN" line after the name.
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")

# Column order of the "softirq" line after its total, as node_exporter labels them.
SOFTIRQ_VECTORS = (
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
)


def parse_cpu_times(text: str) -> tuple[dict[int, list[float]], list[Skip]]:
    """Per-CPU times in seconds: cpu number -> 10 values in CPU_MODES order (missing columns are 0).

    The aggregate "cpu" line is left out, as node_exporter does.
    """
    cpus: dict[int, list[float]] = {}
    skipped: list[Skip] = []
    for line in text.splitlines():
        if not line.startswith("cpu"):
            if cpus:
                break  # the cpu lines come first; stop before the long intr line
            continue
        fields = line.split()
        name = fields[0]
        if name == "cpu":
            continue
        try:
            number = parse_uint(name[3:])
            values = [value / USER_HZ for value in parse_floats(fields[1:11])]
        except ValueError:
            skipped.append(Skip("cpu line", line))
            continue
        if not values:
            skipped.append(Skip("cpu line", line))
            continue
        values.extend([0.0] * (10 - len(values)))
        cpus[number] = values
    return cpus, skipped


@dataclass
class StatTotals:
    """The system-wide counters of /proc/stat that node_exporter's stat collector exports."""

    interrupts: float | None = None
    context_switches: float | None = None
    boot_time: float | None = None
    forks: float | None = None
    procs_running: float | None = None
    procs_blocked: float | None = None
    softirqs: dict[str, float] = field(default_factory=dict)


_TOTAL_KEYS = {
    "intr": "interrupts",
    "ctxt": "context_switches",
    "btime": "boot_time",
    "processes": "forks",
    "procs_running": "procs_running",
    "procs_blocked": "procs_blocked",
}


def parse_stat_totals(text: str) -> tuple[StatTotals, list[Skip]]:
    totals = StatTotals()
    skipped: list[Skip] = []
    for line in text.splitlines():
        if line.startswith("cpu"):
            continue
        # maxsplit keeps the intr line (thousands of per-IRQ columns) cheap: only its total is used.
        fields = line.split(None, 2)
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "softirq":
            values = line.split()[2:]
            for vector, raw in zip(SOFTIRQ_VECTORS, values, strict=False):
                try:
                    totals.softirqs[vector] = float(parse_uint(raw))
                except ValueError:
                    skipped.append(Skip("softirq line", line))
                    break
            continue
        attr = _TOTAL_KEYS.get(key)
        if attr is None:
            continue
        try:
            setattr(totals, attr, float(parse_uint(fields[1])))
        except ValueError:
            skipped.append(Skip(f"{key} line", line))
    return totals, skipped
