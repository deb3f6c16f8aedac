"""cpu: per-CPU time from <procfs>/stat; /proc/cpuinfo details (option info); throttling, isolation and
online state from <sysfs>/devices/system/cpu.

As node_exporter: counters never go backwards (a CPU whose idle time drops by 3 s or more is treated as
hot-plugged and its cache reset), CPUs that disappear from /proc/stat are dropped, guest time is exported
separately and stays included in user/nice (the kernel accounts it there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool, parse_regex
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics._filters import go_regex
from nodeagent.metrics._proc_stat import CPU_MODES, parse_cpu_times
from nodeagent.metrics.host.files import Paths, read_optional, read_text, read_uint
from nodeagent.metrics.host.gonum import parse_float, parse_int, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import numbered_entries
from nodeagent.metrics.registry import Collector, CollectorOption, register

# An idle counter dropping by this many seconds means the CPU was replaced (hotplug): reset its cache.
JUMP_BACK_SECONDS = 3.0
_IDLE = CPU_MODES.index("idle")
_EXPORTED_MODES = tuple(enumerate(CPU_MODES[:8]))
_GUEST, _GUEST_NICE = CPU_MODES.index("guest"), CPU_MODES.index("guest_nice")


@dataclass
class CPUInfo:
    """One processor entry of /proc/cpuinfo (fields node_exporter uses; absent ones stay empty)."""

    processor: int
    vendor: str = ""
    family: str = ""
    model: str = ""
    model_name: str = ""
    stepping: str = ""
    microcode: str = ""
    cache_size: str = ""
    physical_id: str = ""
    core_id: str = ""
    mhz: float = 0.0
    flags: list[str] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)


# /proc/cpuinfo key -> CPUInfo attribute ("Features"/"Processor" are the arm spellings).
_CPUINFO_KEYS = {
    "vendor_id": "vendor",
    "vendor": "vendor",
    "cpu family": "family",
    "model": "model",
    "model name": "model_name",
    "Processor": "model_name",
    "stepping": "stepping",
    "microcode": "microcode",
    "cache size": "cache_size",
    "physical id": "physical_id",
    "core id": "core_id",
}


def parse_cpuinfo(text: str) -> list[CPUInfo]:
    """Processor entries of /proc/cpuinfo in file order. Lines before the first "processor" are ignored,
    an unparsable "cpu MHz" reads as 0 (as procfs), nothing is reported."""
    cpus: list[CPUInfo] = []
    current: CPUInfo | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if key == "processor":
            try:
                current = CPUInfo(processor=parse_int(value))
            except ValueError:
                current = None  # ignore this entry's fields rather than mix them into the previous one
                continue
            cpus.append(current)
            continue
        if current is None:
            continue
        if key in ("flags", "Features"):
            current.flags = value.split()
        elif key == "bugs":
            current.bugs = value.split()
        elif key == "cpu MHz":
            try:
                current.mhz = parse_float(value)
            except ValueError:
                current.mhz = 0.0
        else:
            attr = _CPUINFO_KEYS.get(key)
            if attr is not None:
                setattr(current, attr, value)
    return cpus


MAX_CPUS = 1 << 16  # a CPU list naming more is not a real host's (and would make a huge list)


def parse_cpu_list(text: str) -> tuple[list[int] | None, list[Skip]]:
    """A kernel CPU list such as ``1,3-5,9`` -> [1, 3, 4, 5, 9]; bad input gives None and the skip."""
    cpus: list[int] = []
    text = text.strip()
    if not text:
        return cpus, []
    try:
        for part in text.split(","):
            first, dash, last = part.partition("-")
            if dash:
                start, end = parse_uint(first), parse_uint(last)
                if end < start or end - start > MAX_CPUS:
                    raise ValueError(f"bad CPU range {part!r}")
                cpus.extend(range(start, end + 1))
            else:
                cpus.append(parse_uint(first))
            if len(cpus) > MAX_CPUS:
                raise ValueError("too many CPUs")
    except ValueError:
        return None, [Skip("CPU list", text)]
    return cpus, []


def _read_uint(path: str) -> int | None:
    """A topology or throttle counter; None when absent or unparsable (left out, as upstream)."""
    try:
        return read_uint(path)
    except (OSError, ValueError):
        return None


def cpu_dirs(paths: Paths) -> list[tuple[str, str]]:
    """(number, path) of every <sysfs>/devices/system/cpu/cpuN, in the kernel's name order.

    Raises FileNotFoundError when the directory does not exist.
    """
    return numbered_entries(paths.sys("devices", "system", "cpu"), "cpu")


def read_throttles(cpus: list[tuple[str, str]]) -> tuple[dict[int, int], dict[int, dict[int, int]]]:
    """Thermal throttle counts: (package -> count, package -> core -> count), each read once."""
    packages: dict[int, int] = {}
    cores: dict[int, dict[int, int]] = {}
    for _, path in cpus:
        package = _read_uint(f"{path}/topology/physical_package_id")
        if package is None:
            continue
        core = _read_uint(f"{path}/topology/core_id")
        if core is None:
            continue
        package_cores = cores.setdefault(package, {})
        if core not in package_cores:
            count = _read_uint(f"{path}/thermal_throttle/core_throttle_count")
            if count is not None:
                package_cores[core] = count
        if package not in packages:
            count = _read_uint(f"{path}/thermal_throttle/package_throttle_count")
            if count is not None:
                packages[package] = count
    return packages, cores


def read_online(cpus: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """(cpu, 1 or 0) from cpuN/online; empty when the first CPU has no such file (no hotplug support)."""
    if not cpus or read_optional(f"{cpus[0][1]}/online") is None:
        return []
    return [(number, 1.0 if _read_uint(f"{path}/online") == 1 else 0.0) for number, path in cpus]


def merge_cpu_times(cache: dict[int, list[float]], new: dict[int, list[float]]) -> None:
    """Update ``cache`` in place so that no exported counter goes backwards (node_exporter's rules)."""
    for cpu, values in new.items():
        old = cache.get(cpu)
        if old is None or old[_IDLE] - values[_IDLE] >= JUMP_BACK_SECONDS:
            cache[cpu] = list(values)
            continue
        for i, value in enumerate(values):
            if value >= old[i]:
                old[i] = value
    if len(cache) != len(new):
        for cpu in [c for c in cache if c not in new]:
            del cache[cpu]


@register
class CpuCollector(Collector):
    name = "cpu"
    options = (
        CollectorOption("guest", True, "Export node_cpu_guest_seconds_total.", parse_bool),
        CollectorOption(
            "info",
            False,
            "Export node_cpu_info (and node_cpu_frequency_hertz) from /proc/cpuinfo.",
            parse_bool,
        ),
        CollectorOption(
            "info.flags-include",
            "",
            "Regexp of /proc/cpuinfo flags to export as node_cpu_flag_info (turns on info).",
            parse_regex,
        ),
        CollectorOption(
            "info.bugs-include",
            "",
            "Regexp of /proc/cpuinfo bugs to export as node_cpu_bug_info (turns on info).",
            parse_regex,
        ),
    )

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.flags_include = go_regex(options.get("info.flags-include"))
        self.bugs_include = go_regex(options.get("info.bugs-include"))
        # Setting either include filter implies info, as upstream.
        self.info = (
            bool(options.get("info")) or self.flags_include is not None or self.bugs_include is not None
        )
        self.guest = bool(options.get("guest", True))
        self._cache: dict[int, list[float]] = {}
        self._lock = threading.Lock()
        # Isolation is a boot parameter: read once, as node_exporter does.
        self.isolated: list[int] | None = None
        try:
            text = read_optional(paths.sys("devices", "system", "cpu", "isolated"))
        except OSError as exc:
            self.skip("isolated", exc)
        else:
            if text is not None:
                self.isolated, skipped = parse_cpu_list(text)
                self.report(skipped)

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        if self.info:
            families.extend(self._collect_info())
        families.extend(self._collect_times())
        if self.isolated:
            isolated = gauge(
                "node_cpu_isolated", "1 for each CPU isolated from the scheduler (isolcpus), from sysfs."
            )
            for cpu in self.isolated:
                add_sample(isolated, {"cpu": str(cpu)}, 1.0)
            families.append(isolated)
        try:
            cpus = cpu_dirs(self.paths)
        except FileNotFoundError:
            cpus = []
        families.extend(self._collect_throttles(cpus))
        online = read_online(cpus)
        if online:
            family = gauge("node_cpu_online", "1 if the CPU is online, 0 if it is offline.")
            for number, value in online:
                add_sample(family, {"cpu": number}, value)
            families.append(family)
        return families

    def _collect_info(self) -> list[Metric]:
        cpus = parse_cpuinfo(read_text(self.paths.proc("cpuinfo")))
        info = gauge("node_cpu_info", "Processor identity from /proc/cpuinfo; always 1.")
        frequency = gauge("node_cpu_frequency_hertz", "Current processor clock from /proc/cpuinfo, in hertz.")
        for cpu in cpus:
            where = {"package": cpu.physical_id, "core": cpu.core_id, "cpu": str(cpu.processor)}
            identity = {
                "vendor": cpu.vendor,
                "family": cpu.family,
                "model": cpu.model,
                "model_name": cpu.model_name,
                "microcode": cpu.microcode,
                "stepping": cpu.stepping,
                "cachesize": cpu.cache_size,
            }
            add_sample(info, {**where, **identity}, 1.0)
            add_sample(frequency, where, cpu.mhz * 1e6)
        families: list[Metric] = [info, frequency]
        if cpus:
            first = cpus[0]
            for name, label, values, pattern in (
                ("node_cpu_flag_info", "flag", first.flags, self.flags_include),
                ("node_cpu_bug_info", "bug", first.bugs, self.bugs_include),
            ):
                if pattern is None:
                    continue
                family = gauge(name, f"Selected {label}s of the first processor in /proc/cpuinfo; always 1.")
                for value in values:
                    if pattern.search(value):
                        add_sample(family, {label: value}, 1.0)
                families.append(family)
        return families

    def _collect_times(self) -> list[Metric]:
        times, skipped = parse_cpu_times(read_text(self.paths.proc("stat")))
        self.report(skipped)
        seconds = counter("node_cpu_seconds_total", "Time each CPU spent in each mode, in seconds.")
        guest = counter(
            "node_cpu_guest_seconds_total",
            "Time each CPU spent running guests (VMs), in seconds; also counted in user and nice.",
        )
        with self._lock:
            merge_cpu_times(self._cache, times)
            snapshot = [(str(cpu), list(values)) for cpu, values in self._cache.items()]
        for cpu, values in snapshot:
            for i, mode in _EXPORTED_MODES:
                add_sample(seconds, {"cpu": cpu, "mode": mode}, values[i])
            if self.guest:
                add_sample(guest, {"cpu": cpu, "mode": "user"}, values[_GUEST])
                add_sample(guest, {"cpu": cpu, "mode": "nice"}, values[_GUEST_NICE])
        return [seconds, guest] if self.guest else [seconds]

    def _collect_throttles(self, cpus: list[tuple[str, str]]) -> list[Metric]:
        packages, cores = read_throttles(cpus)
        families: list[Metric] = []
        if packages:
            family = counter(
                "node_cpu_package_throttles_total", "Thermal throttling events of each CPU package."
            )
            for package, count in packages.items():
                add_sample(family, {"package": str(package)}, float(count))
            families.append(family)
        core_family = counter("node_cpu_core_throttles_total", "Thermal throttling events of each CPU core.")
        for package, counts in cores.items():
            for core, count in counts.items():
                add_sample(core_family, {"package": str(package), "core": str(core)}, float(count))
        if core_family.samples:
            families.append(core_family)
        return families
