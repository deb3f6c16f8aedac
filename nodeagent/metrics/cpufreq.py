"""cpufreq: CPU clock limits, current frequencies and governors from <sysfs>/devices/system/cpu/cpuN/cpufreq.

sysfs reports kHz; exported in hertz. Files that are missing or unreadable (cpuinfo_cur_freq is root-only)
are left out, as node_exporter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.cpu import cpu_dirs
from nodeagent.metrics.host.files import Paths, read_attributes
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# sysfs file -> (metric name, HELP)
FREQUENCY_FILES = (
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current CPU thread frequency reported by the hardware, in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Lowest frequency the CPU thread supports, in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Highest frequency the CPU thread supports, in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current CPU thread frequency as seen by the cpufreq driver, in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Lower frequency limit set for the cpufreq governor, in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Upper frequency limit set for the cpufreq governor, in hertz.",
    ),
)


class CpuFreq:
    """The cpufreq files of one CPU that the collector exports."""

    __slots__ = ("available_governors", "cpu", "frequencies_khz", "governor")

    def __init__(self, cpu: str) -> None:
        self.cpu = cpu
        self.frequencies_khz: dict[str, int] = {}
        self.governor = ""
        self.available_governors: list[str] = []


_ATTRIBUTES = (
    *(filename for filename, _, _ in FREQUENCY_FILES),
    "scaling_governor",
    "scaling_available_governors",
)


def parse_cpufreq(cpu: str, attributes: dict[str, str]) -> tuple[CpuFreq, list[Skip]]:
    """One CPU's cpufreq attributes (name -> text, absent ones missing) and the values skipped."""
    stats = CpuFreq(cpu)
    skipped: list[Skip] = []
    for filename, _, _ in FREQUENCY_FILES:
        text = attributes.get(filename)
        if text is None:
            continue
        try:
            stats.frequencies_khz[filename] = parse_uint(text)
        except ValueError:
            skipped.append(Skip(filename, text))
    stats.governor = attributes.get("scaling_governor", "")
    available = attributes.get("scaling_available_governors", "")
    stats.available_governors = [g for g in available.split(" ") if g]
    return stats, skipped


def read_cpufreq(paths: Paths) -> tuple[list[CpuFreq], list[Skip]]:
    """cpufreq data of every CPU that has a cpufreq directory (files missing or root-only, such as
    cpuinfo_cur_freq, are left out). Raises FileNotFoundError without CPUs."""
    result = []
    skipped: list[Skip] = []
    for number, path in cpu_dirs(paths):
        freq_dir = f"{path}/cpufreq"
        if not os.path.isdir(freq_dir):
            continue
        stats, bad = parse_cpufreq(number, read_attributes(freq_dir, _ATTRIBUTES))
        result.append(stats)
        skipped += bad
    return result, skipped


@register
class CpufreqCollector(Collector):
    name = "cpufreq"

    def collect(self) -> Iterable[Metric]:
        try:
            cpus, skipped = read_cpufreq(self.paths)
        except FileNotFoundError as exc:
            raise NoDataError(str(exc)) from None
        self.report(skipped)
        families = {filename: gauge(metric, doc) for filename, metric, doc in FREQUENCY_FILES}
        governor = gauge(
            "node_cpu_scaling_governor",
            "1 for the cpufreq governor in use on each CPU, 0 for the other available ones.",
        )
        for stats in cpus:
            labels = {"cpu": stats.cpu}
            for filename, khz in stats.frequencies_khz.items():
                add_sample(families[filename], labels, khz * 1000.0)
            if stats.governor:
                for name in stats.available_governors:
                    add_sample(
                        governor, {"cpu": stats.cpu, "governor": name}, 1.0 if name == stats.governor else 0.0
                    )
        return [*families.values(), governor]
