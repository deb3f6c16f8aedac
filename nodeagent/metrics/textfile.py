"""textfile: metrics written by other programs into ``*.prom`` files of a directory.

As node_exporter's textfile collector: every ``*.prom`` file of ``--collector.textfile.directory``
(a directory or a glob of directories; empty = none) is parsed as text format 0.0.4. Families of
the same name from several files are merged; a family whose HELP or TYPE contradicts an earlier
file is dropped. Within a family, labels missing on some series are added with an empty value.
A file that cannot be read or parsed, or that carries client-side timestamps, is skipped as a
whole and sets ``node_textfile_scrape_error`` to 1; the other files are still exported.
``node_textfile_mtime_seconds{file}`` gives the modification time of each file read successfully.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.config import parse_str
from nodeagent.metrics._promtext import ParsedFamily, SeriesValue, TextParseError, parse_text
from nodeagent.metrics.exposition import format_value
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

log = logging.getLogger("nodeagent.metrics.textfile")

_METRIC_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "untyped": "unknown",
    "summary": "summary",
    "histogram": "histogram",
}


@dataclass
class TextfileResult:
    """Everything read from the text files in one scrape."""

    families: dict[str, list[ParsedFamily]] = field(default_factory=dict)  # name -> one per file
    files_of: dict[str, list[str]] = field(default_factory=dict)  # family name -> contributing files
    mtimes: dict[str, int] = field(default_factory=dict)  # file -> mtime (whole seconds)
    errored: bool = False


def directories(pattern: str) -> list[str]:
    """The directories named by the option: a glob's matches, else the path itself."""
    if not pattern:
        return []
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else []
    return matches or [pattern]


def read_textfiles(pattern: str) -> TextfileResult:
    """Parse every ``*.prom`` file of the directories named by ``pattern``; never raises."""
    result = TextfileResult()
    help_of: dict[str, str] = {}  # first HELP seen for a family name
    type_of: dict[str, str] = {}
    conflicting: set[str] = set()
    for directory in directories(pattern):
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            result.errored = True
            log.error("cannot read textfile directory", extra={"path": directory, "err": str(exc)})
            continue
        for name in names:
            if not name.endswith(".prom"):
                continue
            path = os.path.join(directory, name)
            try:
                families, mtime = read_textfile(path)
            except (OSError, UnicodeDecodeError, TextParseError) as exc:
                result.errored = True
                log.error("cannot collect textfile", extra={"file": path, "err": str(exc)})
                continue
            for family in families.values():
                if family.help == "":
                    family.help = None  # an empty HELP counts as none, as in node_exporter
                family_name = family.name
                if family_name in conflicting or (
                    family.help is not None and help_of.get(family_name, family.help) != family.help
                ):
                    conflicting.add(family_name)
                    result.errored = True
                    log.error("inconsistent metric help text", extra={"metric": family_name, "file": path})
                    continue
                if type_of.get(family_name, family.kind) != family.kind:
                    result.errored = True
                    log.error("inconsistent metric type", extra={"metric": family_name, "file": path})
                    continue
                type_of[family_name] = family.kind
                if family.help is not None:
                    help_of[family_name] = family.help
                result.families.setdefault(family_name, []).append(family)
                result.files_of.setdefault(family_name, []).append(path)
            result.mtimes[path] = mtime
    return result


def read_textfile(path: str) -> tuple[dict[str, ParsedFamily], int]:
    """(families, mtime in whole seconds) of one file; raises on unreadable, invalid or timestamped files."""
    with open(path, "rb") as fh:
        families = parse_text(fh.read().decode("utf-8"))
        if any(family.has_timestamps for family in families.values()):
            raise TextParseError(0, "client-side timestamps are not supported, skipping the entire file")
        mtime_ns = os.fstat(fh.fileno()).st_mtime_ns  # after parsing: a failed file must not look fresh
    return families, mtime_ns // 1_000_000_000


def _fill_labels(series: list[SeriesValue]) -> list[dict[str, str]]:
    """Each series' labels, completed with '' for label names only some series of the family have."""
    names: set[str] = set()
    for item in series:
        names.update(item.labels)
    return [{name: item.labels.get(name, "") for name in names} for item in series]


def _sort_key(labels: dict[str, str]) -> tuple[int, list[str]]:
    return len(labels), [labels[name] for name in sorted(labels)]


def to_metric(name: str, help_text: str, parsed: list[ParsedFamily]) -> Metric:
    """One prometheus_client family from the parsed families of that name (one per file)."""
    kind = parsed[0].kind
    metric = Metric(name, help_text, _METRIC_TYPES[kind])
    rows: list[tuple[dict[str, str], SeriesValue]] = []
    for family in parsed:  # missing labels are completed per file, as node_exporter does
        rows.extend(zip(_fill_labels(family.series), family.series, strict=True))
    if kind not in ("summary", "histogram"):
        for labels, series in rows:
            metric.add_sample(name, labels, series.value)
        return metric
    rows.sort(key=lambda row: _sort_key(row[0]))  # series order is ours to give for these types
    for labels, series in rows:
        if kind == "summary":
            for quantile in sorted(series.quantiles):
                quantile_labels = {**labels, "quantile": format_value(quantile)}
                metric.add_sample(name, quantile_labels, series.quantiles[quantile])
            metric.add_sample(f"{name}_sum", labels, series.sum)
            metric.add_sample(f"{name}_count", labels, float(_as_count(series.count)))
            continue
        for bound in sorted(series.buckets):
            metric.add_sample(
                f"{name}_bucket",
                {**labels, "le": format_value(bound)},
                float(_as_count(series.buckets[bound])),
            )
        if float("inf") not in series.buckets:
            metric.add_sample(f"{name}_bucket", {**labels, "le": "+Inf"}, float(_as_count(series.count)))
        metric.add_sample(f"{name}_sum", labels, series.sum)
        metric.add_sample(f"{name}_count", labels, float(_as_count(series.count)))
    return metric


def _as_count(value: float) -> int:
    """Counts are unsigned integers in node_exporter's data model (fractions are truncated)."""
    try:
        return max(int(value), 0)
    except (OverflowError, ValueError):
        return 0


@register
class TextfileCollector(Collector):
    name = "textfile"
    options = (
        CollectorOption(
            "directory",
            "",
            "Directory (or glob of directories) to read *.prom files from; "
            "empty disables the collector's file reading.",
            parse_str,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.directory = str(options.get("directory") or "")

    def collect(self) -> Iterable[Metric]:
        result = read_textfiles(self.directory)
        families: list[Metric] = []
        for name, parsed in result.families.items():
            help_text = next((family.help for family in parsed if family.help is not None), None)
            if help_text is None:
                help_text = f"Metric read from {', '.join(result.files_of[name])}"
            try:
                families.append(to_metric(name, help_text, parsed))
            except ValueError as exc:  # e.g. a name prometheus_client refuses
                log.error("cannot export textfile metric", extra={"metric": name, "err": str(exc)})
        if result.mtimes:
            mtime = GaugeMetricFamily(
                "node_textfile_mtime_seconds",
                "Modification time of each text file read, as a Unix time.",
                labels=["file"],
            )
            for path in sorted(result.mtimes):
                mtime.add_metric([path], float(result.mtimes[path]))
            families.append(mtime)
        families.append(
            GaugeMetricFamily(
                "node_textfile_scrape_error",
                "1 if a text file or directory could not be read or parsed.",
                value=1.0 if result.errored else 0.0,
            )
        )
        return families
