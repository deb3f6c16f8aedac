"""entropy: kernel entropy pool fill level and size from <procfs>/sys/kernel/random/."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import Paths, read_uint
from nodeagent.metrics.registry import Collector, NoDataError, register


def read_entropy(paths: Paths) -> tuple[float, float]:
    """(entropy_avail, poolsize) in bits."""
    try:
        available = read_uint(paths.proc("sys", "kernel", "random", "entropy_avail"))
        pool_size = read_uint(paths.proc("sys", "kernel", "random", "poolsize"))
    except FileNotFoundError as exc:
        raise NoDataError(f"no entropy information: {exc}") from None
    return float(available), float(pool_size)


@register
class EntropyCollector(Collector):
    name = "entropy"

    def collect(self) -> Iterable[Metric]:
        try:
            available, pool_size = read_entropy(self.paths)
        except ValueError as exc:
            self.skip("entropy value", exc)
            raise
        yield single(
            gauge("node_entropy_available_bits", "Entropy currently available in the pool, in bits."),
            available,
        )
        yield single(
            gauge("node_entropy_pool_size_bits", "Size of the kernel entropy pool, in bits."), pool_size
        )
