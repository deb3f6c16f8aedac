"""filefd: allocated and maximum file handles from <procfs>/sys/fs/file-nr."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register


def parse_file_nr(text: str) -> tuple[tuple[float, float] | None, list[Skip]]:
    """``1024\\t0\\t1631329`` -> (allocated, maximum); the middle field (always 0 since 2.6) is unused.
    Content of another shape gives None and the skip."""
    fields = text.split()
    try:
        if len(fields) < 3:
            raise ValueError("fewer than 3 fields")
        return (parse_float(fields[0]), parse_float(fields[2])), []
    except ValueError:
        return None, [Skip("sys/fs/file-nr: not 3 numbers", text)]


@register
class FilefdCollector(Collector):
    name = "filefd"

    def collect(self) -> Iterable[Metric]:
        values, skipped = parse_file_nr(read_text(self.paths.proc("sys", "fs", "file-nr")))
        self.report(skipped)
        if values is None:
            raise ValueError("unparsable sys/fs/file-nr")
        allocated, maximum = values
        yield single(
            gauge("node_filefd_allocated", "Number of file handles the kernel has allocated."), allocated
        )
        yield single(gauge("node_filefd_maximum", "Maximum number of file handles (fs.file-max)."), maximum)
