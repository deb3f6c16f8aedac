"""kernel_hung: how many hung tasks the kernel's detector has seen since boot, from
<procfs>/sys/kernel/hung_task_detect_count (Linux >= 6.14)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import counter, single
from nodeagent.metrics.host.files import read_uint
from nodeagent.metrics.registry import Collector, NoDataError, register


@register
class KernelHungCollector(Collector):
    name = "kernel_hung"

    def collect(self) -> Iterable[Metric]:
        try:
            count = read_uint(self.paths.proc("sys", "kernel", "hung_task_detect_count"))
        except FileNotFoundError:
            raise NoDataError("no hung_task_detect_count (kernel < 6.14 or no hung task detector)") from None
        return [single(counter("node_kernel_hung_tasks_total", "Hung tasks detected since boot."), count)]
