"""textfile: metrics written by other programs into ``*.prom`` files of a directory.

As node_exporter's textfile collector: every ``*.prom`` file of ``--collector.textfile.directory``
(a directory or a glob of directories; empty = none) is parsed as text format 0.0.4. Families of
the same name from several files are merged; a family whose HELP or TYPE contradicts an earlier
file is dropped. Within a family, labels missing on some series are added with an empty value.
A file that cannot be read or parsed, or that carries client-side timestamps, is skipped as a
whole and sets ``node_textfile_scrape_error`` to 1; the other files are still exported.
``node_textfile_mtime_seconds{file}`` gives the modification time of each file read successfully.

Anyone who can write into the directory is untrusted (a pod with a hostPath mount, a careless script):
only regular files are read, without blocking (a FIFO or a device is refused, never waited on), and
only if they resolve inside their directory (``x.prom -> /etc/shadow`` is refused, unread). At most
``max-file-bytes`` are read per file and ``max-scrape-bytes`` per scrape; a larger file is an error,
not a partial read. Error messages quote at most a few hundred bytes of a file. A series exported by two
files (same name and labels) is kept from the first file only and is a scrape error, as node_exporter
reports duplicates at gather time.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.config import parse_str, parse_string_list, positive_size
from nodeagent.metrics._promtext import ParsedFamily, SeriesValue, TextParseError, parse_text
from nodeagent.metrics.exposition import format_value
from nodeagent.metrics.host.files import decode, list_dir
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register
from nodeagent.safeio import fd_path, open_regular, quote, read_bounded

log = logging.getLogger("nodeagent.metrics.textfile")

# Textfiles are small (smartmon, apt, backup scripts write a few KB to a few hundred KB). Parsed, a byte
# of text costs ~10-20 bytes of Python objects; 4 MiB per file and 16 MiB per scrape keep the worst
# case well inside the agent's 256 MiB memory limit while leaving two orders of magnitude of headroom.
MAX_FILE_BYTES = 4 << 20
MAX_SCRAPE_BYTES = 16 << 20

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


class TextfileTooLarge(ValueError):
    """A file above the per-file limit, or beyond what is left of the per-scrape budget."""


@dataclass
class _Budget:
    per_file: int
    remaining: int


def read_textfiles(
    pattern: str | Sequence[str],
    max_file_bytes: int = MAX_FILE_BYTES,
    max_scrape_bytes: int = MAX_SCRAPE_BYTES,
) -> TextfileResult:
    """Parse every ``*.prom`` file of the directories named by ``pattern`` (one, or several: the flag
    repeats, as node_exporter's); never raises."""
    result = TextfileResult()
    help_of: dict[str, str] = {}  # first HELP seen for a family name
    type_of: dict[str, str] = {}
    conflicting: set[str] = set()
    budget = _Budget(max_file_bytes, max_scrape_bytes)
    patterns = [pattern] if isinstance(pattern, str) else pattern
    for directory in [found for each in patterns for found in directories(each)]:
        try:
            names = list_dir(directory)
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            result.errored = True
            log.error("cannot read textfile directory", extra={"path": directory, "err": str(exc)})
            continue
        try:
            root = fd_path(dir_fd)  # the directory itself, links resolved
            for name in names:
                if not name.endswith(".prom"):
                    continue
                path = os.path.join(directory, name)
                try:
                    families, mtime = read_textfile(name, dir_fd=dir_fd, root=root, budget=budget)
                except (OSError, TextParseError, TextfileTooLarge) as exc:
                    result.errored = True
                    # Bounded, whatever the file held: a parse error may quote a whole line.
                    log.error("cannot collect textfile", extra={"file": path, "err": quote(str(exc))})
                    continue
                _merge_file(result, path, families, help_of, type_of, conflicting)
                result.mtimes[path] = mtime
        except OSError as exc:
            result.errored = True
            log.error("cannot read textfile directory", extra={"path": directory, "err": str(exc)})
        finally:
            os.close(dir_fd)
    return result


def _merge_file(
    result: TextfileResult,
    path: str,
    families: dict[str, ParsedFamily],
    help_of: dict[str, str],
    type_of: dict[str, str],
    conflicting: set[str],
) -> None:
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


def read_textfile(
    name: str, *, dir_fd: int | None = None, root: str | None = None, budget: _Budget | None = None
) -> tuple[dict[str, ParsedFamily], int]:
    """(families, mtime in whole seconds) of one file; raises on unreadable, invalid or timestamped files.

    ``name`` is relative to ``dir_fd`` when given; the opened file must resolve below ``root``.
    """
    budget = budget or _Budget(MAX_FILE_BYTES, MAX_SCRAPE_BYTES)
    fd = open_regular(name, dir_fd=dir_fd, roots=None if root is None else [root])
    try:
        limit = min(budget.per_file, budget.remaining)
        data, more = read_bounded(fd, limit)
        budget.remaining -= len(data)
        if more:
            if limit < budget.per_file:
                raise TextfileTooLarge(f"the scrape's textfile budget is used up ({limit} bytes were left)")
            raise TextfileTooLarge(f"larger than {budget.per_file} bytes, skipping the entire file")
        families = parse_text(decode(data))  # bytes that are not UTF-8 become U+FFFD, as node_exporter's
        if any(family.has_timestamps for family in families.values()):
            raise TextParseError(0, "client-side timestamps are not supported, skipping the entire file")
        mtime_ns = os.fstat(fd).st_mtime_ns  # after parsing: a failed file must not look fresh
    finally:
        os.close(fd)
    return families, mtime_ns // 1_000_000_000


def _fill_labels(series: list[SeriesValue]) -> list[dict[str, str]]:
    """Each series' labels, completed with '' for label names only some series of the family have."""
    names: set[str] = set()
    for item in series:
        names.update(item.labels)
    return [{name: item.labels.get(name, "") for name in names} for item in series]


def _sort_key(labels: dict[str, str]) -> tuple[int, list[str]]:
    return len(labels), [labels[name] for name in sorted(labels)]


def to_metric(name: str, help_text: str, parsed: list[ParsedFamily]) -> tuple[Metric, int]:
    """One prometheus_client family from the parsed families of that name (one per file), and how many
    series were dropped as duplicates of an earlier one (same labels)."""
    kind = parsed[0].kind
    metric = Metric(name, help_text, _METRIC_TYPES[kind])
    rows: list[tuple[dict[str, str], SeriesValue]] = []
    seen: set[frozenset[tuple[str, str]]] = set()
    duplicates = 0
    for family in parsed:  # missing labels are completed per file, as node_exporter does
        for labels, series in zip(_fill_labels(family.series), family.series, strict=True):
            key = frozenset(labels.items())
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            rows.append((labels, series))
    if kind not in ("summary", "histogram"):
        for labels, series in rows:
            metric.add_sample(name, labels, series.value)
        return metric, duplicates
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
    return metric, duplicates


def _as_count(value: float) -> int:
    """Counts are unsigned integers in node_exporter's data model (fractions are truncated)."""
    try:
        return max(int(value), 0)
    except (OverflowError, ValueError):
        return 0


def parse_directories(raw: Any) -> str | tuple[str, ...]:
    """One directory (or glob), or several (the flag repeats, as node_exporter's)."""
    return parse_str(raw) if raw is None or isinstance(raw, str) else parse_string_list(raw)


@register
class TextfileCollector(Collector):
    name = "textfile"
    options = (
        CollectorOption(
            "directory",
            "",
            "Directory (or glob of directories) to read *.prom files from, repeatable; "
            "empty disables the collector's file reading.",
            parse_directories,
        ),
        CollectorOption(
            "max-file-bytes",
            MAX_FILE_BYTES,
            "Largest textfile read (bytes, or 4MiB, ...); a larger file is skipped as an error.",
            positive_size,
        ),
        CollectorOption(
            "max-scrape-bytes",
            MAX_SCRAPE_BYTES,
            "Bytes read from all textfiles per scrape (or 16MiB, ...); files beyond are skipped as errors.",
            positive_size,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.directory: str | tuple[str, ...] = options.get("directory") or ""
        self.max_file_bytes = int(options.get("max-file-bytes", MAX_FILE_BYTES))
        self.max_scrape_bytes = int(options.get("max-scrape-bytes", MAX_SCRAPE_BYTES))

    def collect(self) -> Iterable[Metric]:
        result = read_textfiles(self.directory, self.max_file_bytes, self.max_scrape_bytes)
        families: list[Metric] = []
        for name, parsed in result.families.items():
            help_text = next((family.help for family in parsed if family.help is not None), None)
            if help_text is None:
                help_text = f"Metric read from {', '.join(result.files_of[name])}"
            try:
                metric, duplicates = to_metric(name, help_text, parsed)
            except ValueError as exc:  # e.g. a name prometheus_client refuses
                log.error("cannot export textfile metric", extra={"metric": name, "err": quote(str(exc))})
                continue
            families.append(metric)
            if duplicates:
                result.errored = True
                log.error(
                    "textfiles export the same series more than once; kept the first",
                    extra={
                        "metric": name,
                        "duplicates": duplicates,
                        "files": ",".join(result.files_of[name]),
                    },
                )
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
