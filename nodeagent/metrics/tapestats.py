"""tapestats: SCSI tape drive statistics from <sysfs>/class/scsi_tape/st<N>/stats/.

Per drive (``st<N>`` only: the nst/a/l/m entries are other views of the same drive): I/Os in flight,
read/write/other command counts, bytes, time spent (nanoseconds in sysfs, seconds in the metrics) and
residual counts. Drives matching ``--collector.tapestats.ignored-devices`` are left out. A counter
that does not parse is reported and counts as 0. No scsi_tape class: no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config.values import parse_regex
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import list_dir, read_attribute_or_none
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

_DRIVE = re.compile(r"st[0-9]+")
# stats file -> (metric suffix, scale, counter?, help)
STATS = {
    "in_flight": ("io_now", 1.0, False, "I/Os outstanding to the drive."),
    "io_ns": (
        "io_time_seconds_total",
        1e-9,
        True,
        "Time spent on all I/O, tape movement included, in seconds.",
    ),
    "other_cnt": ("io_others_total", 1.0, True, "Commands other than reads and writes."),
    "read_byte_cnt": ("read_bytes_total", 1.0, True, "Bytes read from the drive."),
    "read_cnt": ("reads_completed_total", 1.0, True, "Read requests."),
    "read_ns": ("read_time_seconds_total", 1e-9, True, "Time spent on reads, in seconds."),
    "resid_cnt": ("residual_total", 1.0, True, "Reads or writes that ended with a non-zero residual."),
    "write_byte_cnt": ("written_bytes_total", 1.0, True, "Bytes written to the drive."),
    "write_cnt": ("writes_completed_total", 1.0, True, "Write requests."),
    "write_ns": ("write_time_seconds_total", 1e-9, True, "Time spent on writes, in seconds."),
}


def read_tape_stats(directory: str) -> tuple[dict[str, int], list[Skip]]:
    """stats file -> value for every known file (0 when absent or unparsable, the latter reported)."""
    values = dict.fromkeys(STATS, 0)
    skipped: list[Skip] = []
    for name in STATS:
        text = read_attribute_or_none(f"{directory}/stats/{name}")
        if text is None:
            continue
        try:
            values[name] = parse_uint(text, 0)
        except ValueError:
            skipped.append(Skip("scsi_tape stats: unparsable counter", f"{directory}/stats/{name}: {text}"))
    return values, skipped


@register
class TapestatsCollector(Collector):
    name = "tapestats"
    options = (CollectorOption("ignored-devices", "^$", "Regexp of tape devices to ignore.", parse_regex),)

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.ignored = re.compile(self.opts["ignored-devices"], re.ASCII)  # Go regexp classes are ASCII

    def collect(self) -> Iterable[Metric]:
        base = self.paths.sys("class", "scsi_tape")
        try:
            drives = [name for name in list_dir(base) if _DRIVE.fullmatch(name)]
        except (FileNotFoundError, NotADirectoryError):
            raise NoDataError("no scsi_tape class") from None
        families = {
            name: (counter if is_counter else gauge)(f"node_tape_{suffix}", doc)
            for name, (suffix, _, is_counter, doc) in STATS.items()
        }
        for drive in drives:
            if self.ignored.search(drive):
                continue
            try:
                list_dir(f"{base}/{drive}/stats")
            except (FileNotFoundError, NotADirectoryError):
                self.skip("scsi_tape drive without stats", drive)
                continue
            values, skipped = read_tape_stats(f"{base}/{drive}")
            self.report(skipped)
            labels = {"device": drive}
            for name, (_, scale, _, _) in STATS.items():
                add_sample(
                    families[name],
                    labels,
                    float(values[name]) * scale if scale != 1.0 else float(values[name]),
                )
        return list(families.values())
