"""entropy: kernel entropy pool fill level and size from <procfs>/sys/kernel/random/."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics.registry import Collector, NoDataError, read_text, register


def read_entropy(procfs: Path) -> tuple[float, float]:
    """(entropy_avail, poolsize) in bits."""
    random_dir = f"{procfs}/sys/kernel/random"
    try:
        available = read_text(f"{random_dir}/entropy_avail")
        pool_size = read_text(f"{random_dir}/poolsize")
    except FileNotFoundError as exc:
        raise NoDataError(f"no entropy information: {exc}") from None
    return float(int(available)), float(int(pool_size))


@register
class EntropyCollector(Collector):
    name = "entropy"

    def collect(self) -> Iterable[Metric]:
        available, pool_size = read_entropy(self.paths.procfs)
        yield GaugeMetricFamily(
            "node_entropy_available_bits",
            "Entropy currently available in the pool, in bits.",
            value=available,
        )
        yield GaugeMetricFamily(
            "node_entropy_pool_size_bits", "Size of the kernel entropy pool, in bits.", value=pool_size
        )
