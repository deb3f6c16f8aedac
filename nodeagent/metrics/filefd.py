"""filefd: allocated and maximum file handles from <procfs>/sys/fs/file-nr."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics.registry import Collector, read_text, register


def parse_file_nr(text: str) -> tuple[float, float]:
    """``1024\\t0\\t1631329`` -> (allocated, maximum); the middle field (always 0 since 2.6) is unused."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"unexpected file-nr content: {text!r}")
    return float(fields[0]), float(fields[2])


def read_file_nr(procfs: Path) -> tuple[float, float]:
    return parse_file_nr(read_text(f"{procfs}/sys/fs/file-nr"))


@register
class FilefdCollector(Collector):
    name = "filefd"

    def collect(self) -> Iterable[Metric]:
        allocated, maximum = read_file_nr(self.paths.procfs)
        yield GaugeMetricFamily(
            "node_filefd_allocated", "Number of file handles the kernel has allocated.", value=allocated
        )
        yield GaugeMetricFamily(
            "node_filefd_maximum", "Maximum number of file handles (fs.file-max).", value=maximum
        )
