"""A collector that hangs in a blocking host call (as a read on a dead NFS mount would), for running
the real agent with ``python -c "import tests.wedge_collector; ..."``. It opens the FIFO named by
``--collector.wedge.fifo`` without O_NONBLOCK, which blocks until someone opens it for writing."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.config import parse_str
from nodeagent.metrics.registry import Collector, CollectorOption, register


@register
class WedgeCollector(Collector):
    name = "wedge"
    default_enabled = False
    options = (CollectorOption("fifo", "", "FIFO to block on.", parse_str),)

    def collect(self) -> Iterable[Metric]:
        fd = os.open(self.opts["fifo"], os.O_RDONLY)  # blocks: the point of this collector
        os.close(fd)
        yield GaugeMetricFamily("node_wedge_released", "The wedge was released.", value=1)
