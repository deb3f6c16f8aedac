"""cpufreq: CPU clock limits, current frequencies and governors from <sysfs>/devices/system/cpu/cpuN/cpufreq.

sysfs reports kHz; exported in hertz. Files that are missing or unreadable (cpuinfo_cur_freq is root-only)
are left out, as node_exporter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.cpu import cpu_dirs
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


def _read_small(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read().strip()
    except OSError:  # missing, or root-only (cpuinfo_cur_freq)
        return None


def read_cpufreq(sysfs: Path, collector: str = "cpufreq") -> list[CpuFreq]:
    """cpufreq data of every CPU that has a cpufreq directory. Raises FileNotFoundError without CPUs."""
    result = []
    for number, path in cpu_dirs(sysfs):
        freq_dir = f"{path}/cpufreq"
        if not os.path.isdir(freq_dir):
            continue
        stats = CpuFreq(number)
        for filename, _, _ in FREQUENCY_FILES:
            text = _read_small(f"{freq_dir}/{filename}")
            if text is None:
                continue
            try:
                stats.frequencies_khz[filename] = int(text)
            except ValueError:
                _parse_errors.skipped(collector, filename, text)
        stats.governor = _read_small(f"{freq_dir}/scaling_governor") or ""
        available = _read_small(f"{freq_dir}/scaling_available_governors") or ""
        stats.available_governors = [g for g in available.split(" ") if g]
        result.append(stats)
    return result


@register
class CpufreqCollector(Collector):
    name = "cpufreq"

    def collect(self) -> Iterable[Metric]:
        try:
            cpus = read_cpufreq(self.paths.sysfs, self.name)
        except FileNotFoundError as exc:
            raise NoDataError(str(exc)) from None
        families = {
            filename: GaugeMetricFamily(metric, doc, labels=["cpu"])
            for filename, metric, doc in FREQUENCY_FILES
        }
        governor = GaugeMetricFamily(
            "node_cpu_scaling_governor",
            "1 for the cpufreq governor in use on each CPU, 0 for the other available ones.",
            labels=["cpu", "governor"],
        )
        for stats in cpus:
            for filename, khz in stats.frequencies_khz.items():
                families[filename].add_metric([stats.cpu], khz * 1000.0)
            if stats.governor:
                for name in stats.available_governors:
                    governor.add_metric([stats.cpu, name], 1.0 if name == stats.governor else 0.0)
        return [*families.values(), governor]
