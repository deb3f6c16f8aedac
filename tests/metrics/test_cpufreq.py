"""cpufreq collector: frequencies and governors from /sys/devices/system/cpu/cpuN/cpufreq."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from tests.metrics.conftest import Scraped


def test_cpufreq_reads_khz_skips_missing_and_bad_files(
    host_tree: Callable[..., Path], scrape: Callable[..., Scraped]
) -> None:
    freq = "sys/devices/system/cpu/cpu0/cpufreq"
    root = host_tree(
        {
            f"{freq}/scaling_cur_freq": "1699981\n",
            f"{freq}/cpuinfo_max_freq": "<unsupported>\n",
            f"{freq}/scaling_governor": "powersave\n",
            f"{freq}/scaling_available_governors": "performance powersave\n",
        }
    )
    (root / "sys/devices/system/cpu/cpu1").mkdir()  # no cpufreq directory at all
    before = _parse_errors.count("cpufreq")
    result = scrape("cpufreq")
    lines = result.lines
    assert 'node_cpu_scaling_frequency_hertz{cpu="0"} 1.699981e+09' in lines
    assert 'node_cpu_scaling_governor{cpu="0",governor="performance"} 0' in lines
    assert 'node_cpu_scaling_governor{cpu="0",governor="powersave"} 1' in lines
    assert not any(line.startswith("node_cpu_frequency_max_hertz") for line in lines)
    assert _parse_errors.count("cpufreq") == before + 1
    assert result.ok


def test_cpufreq_without_sysfs_cpus_is_no_data(scrape: Callable[..., Scraped]) -> None:
    result = scrape("cpufreq")
    assert not result.ok and result.lines == []
