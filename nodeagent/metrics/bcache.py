"""bcache: block-layer cache statistics from <sysfs>/fs/bcache/<uuid>/ (one directory per cache set).

Per cache set: btree and journal state and the cache-read races; per backing device (``bdev<N>``):
dirty data, the writeback controller's state (``writeback_rate_debug``) and the lifetime hit/miss
counters (``stats_total``); per cache device (``cache<N>``): errors and bytes written and, with
``--collector.bcache.priorityStats`` (costly in the kernel: it walks every bucket), the unused and
metadata shares of ``priority_stats``.

Values are printed by the kernel's bch_hprint ("1.5M" style, see :func:`dehumanize`). A value or file
that cannot be read or parsed is reported and counts as 0; the rest is still exported.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.metrics._emit import Labels, add_sample, counter, gauge
from nodeagent.metrics.host.files import list_dir, read_bytes, read_optional
from nodeagent.metrics.host.gonum import MAX_UINT64, parse_float, parse_int, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import numbered_entries
from nodeagent.metrics.registry import Collector, CollectorOption, register

_MULTIPLIERS = {"k": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_MULTIPLIERS.update({"Z": 1 << 70, "Y": 1 << 80})


def go_uint64(value: float) -> int:
    """Go's uint64(float64) on amd64: truncation, negatives wrap around as int64 would."""
    if value != value or value >= 2**64 or value <= -(2**63):
        return 1 << 63
    return int(value) % (MAX_UINT64 + 1)


def _pseudo_float(text: str) -> float:
    """bch_hprint's "<int>.<tenths>" where the fraction is a count of 1/1024 steps printed as /100."""
    parts = text.split(".")
    whole = parse_float(parts[0])
    if len(parts) == 1:
        return whole
    return whole + parse_float(parts[1]) / 10.24


def dehumanize(text: str) -> int:
    """A bch_hprint value (``512``, ``1.5k``, ``3.2G``) in units. Raises ValueError."""
    if not text:
        raise ValueError("empty value")
    if text[-1] > "9":
        return go_uint64(_pseudo_float(text[:-1]) * _MULTIPLIERS.get(text[-1], 0))
    return go_uint64(parse_float(text))


def dehumanize_signed(text: str) -> int:
    value = dehumanize(text.removeprefix("-"))
    signed = value - (1 << 64) if value > (1 << 63) - 1 else value
    return -signed if text.startswith("-") else signed


# writeback_rate_debug line prefix -> (key, suffix removed, signed)
_WRITEBACK_LINES = {
    "rate:": ("rate", "/sec", False),
    "dirty:": ("dirty", "", False),
    "target:": ("target", "", False),
    "proportional:": ("proportional", "", True),
    "integral:": ("integral", "", True),
    "change:": ("change", "/sec", True),
}


def parse_writeback_rate_debug(text: str) -> tuple[dict[str, int], list[Skip]]:
    """``rate: 1.1M/sec``, ``target: 2.3G``, ``proportional: -4.1k``, ... -> {"rate": ..., ...}."""
    values = dict.fromkeys((key for key, _, _ in _WRITEBACK_LINES.values()), 0)
    skipped: list[Skip] = []
    for line in text.splitlines():
        for prefix, (key, suffix, signed) in _WRITEBACK_LINES.items():
            if line.startswith(prefix):
                raw = line.split()[-1].removesuffix(suffix)
                try:
                    values[key] = dehumanize_signed(raw) if signed else dehumanize(raw)
                except ValueError:
                    skipped.append(Skip("bcache writeback_rate_debug: unparsable value", line))
                break
        else:
            if line.startswith("next io:"):
                try:
                    parse_int(line.split()[-1].removesuffix("ms"))
                except ValueError:
                    skipped.append(Skip("bcache writeback_rate_debug: unparsable value", line))
    return values, skipped


def parse_priority_stats(text: str) -> tuple[dict[str, int], list[Skip]]:
    """``Unused: 99%`` and ``Metadata: 0%`` -> {"unused": 99, "metadata": 0}."""
    values = {"unused": 0, "metadata": 0}
    skipped: list[Skip] = []
    for line in text.splitlines():
        for prefix, key in (("Unused:", "unused"), ("Metadata:", "metadata")):
            if line.startswith(prefix):
                try:
                    values[key] = parse_uint(line.split()[-1].removesuffix("%"))
                except ValueError:
                    skipped.append(Skip("bcache priority_stats: unparsable value", line))
    return values, skipped


_SET_GAUGES = (
    ("", "average_key_size", "average_key_size_sectors", "Average data per btree key, in sectors."),
    ("", "btree_cache_size", "btree_cache_size_bytes", "Memory used by the btree cache, in bytes."),
    ("", "cache_available_percent", "cache_available_percent", "Share of the cache without dirty data."),
    ("", "congested", "congested", "Congestion."),
    ("", "root_usage_percent", "root_usage_percent", "Share of the btree root node in use."),
    ("", "tree_depth", "tree_depth", "Depth of the btree."),
    (
        "internal/",
        "active_journal_entries",
        "active_journal_entries",
        "Journal entries newer than the index.",
    ),
    ("internal/", "btree_nodes", "btree_nodes", "Nodes in the btree."),
)
_PERIOD_COUNTERS = (
    ("bypassed", "bypassed_bytes_total", "I/O that bypassed the cache, in bytes."),
    ("cache_hits", "cache_hits_total", "Cache hits, per I/O."),
    ("cache_misses", "cache_misses_total", "Cache misses, per I/O."),
    ("cache_bypass_hits", "cache_bypass_hits_total", "Hits of I/O meant to bypass the cache."),
    ("cache_bypass_misses", "cache_bypass_misses_total", "Misses of I/O meant to bypass the cache."),
    ("cache_miss_collisions", "cache_miss_collisions_total", "Cache-miss inserts that raced with a write."),
)


class _Reader:
    """Reads bch_hprint attributes below one cache set, collecting what it could not read or parse."""

    def __init__(self) -> None:
        self.skipped: list[Skip] = []

    def value(self, path: str) -> int:
        try:
            data = read_bytes(path)
        except FileNotFoundError:
            return 0  # an attribute this kernel does not have
        except OSError as exc:
            self.skipped.append(Skip("bcache attribute unreadable", f"{path}: {exc}"))
            return 0
        try:
            # the kernel ends every attribute with a newline: the last byte is dropped unseen
            return dehumanize(data[:-1].decode("utf-8", "replace"))
        except ValueError:
            self.skipped.append(Skip("bcache attribute unparsable", f"{path}: {data[:64]!r}"))
            return 0

    def text(self, path: str) -> str:
        text = read_optional(path)
        if text is None:
            self.skipped.append(Skip("bcache file missing", path))
        return text or ""


@register
class BcacheCollector(Collector):
    name = "bcache"
    options = (
        CollectorOption(
            "priorityStats", False, "Expose the costly priority_stats of cache devices.", parse_bool
        ),
    )

    def collect(self) -> Iterable[Metric]:
        root = self.paths.sys("fs", "bcache")
        try:
            sets = [name for name in list_dir(root) if "-" in name]
        except (FileNotFoundError, NotADirectoryError):
            sets = []  # bcache not loaded: success without samples, as node_exporter
        families: dict[str, Metric] = {}

        def add(kind: str, suffix: str, doc: str, labels: Labels, value: float) -> None:
            family = families.get(suffix)
            if family is None:
                make = counter if kind == "counter" else gauge
                family = families[suffix] = make(f"node_bcache_{suffix}", doc)
            add_sample(family, labels, value)

        for uuid in sets:
            directory = f"{root}/{uuid}"
            reader = _Reader()
            labels = {"uuid": uuid}
            for subdir, attribute, suffix, doc in _SET_GAUGES:
                add("gauge", suffix, doc, labels, float(reader.value(f"{directory}/{subdir}{attribute}")))
            # the kernel's attribute is in microseconds; node_exporter scales it as nanoseconds
            duration = reader.value(f"{directory}/internal/btree_read_average_duration_us")
            add(
                "gauge",
                "btree_read_average_duration_seconds",
                "Average btree read duration.",
                labels,
                duration * 1e-9,
            )
            races = float(reader.value(f"{directory}/internal/cache_read_races"))
            add(
                "counter",
                "cache_read_races_total",
                "Cache reads whose bucket was reused meanwhile.",
                labels,
                races,
            )
            for name, bdev in numbered_entries(directory, "bdev"):
                bdev_labels = {"uuid": uuid, "backing_device": f"bdev{name}"}
                dirty = float(reader.value(f"{bdev}/dirty_data"))
                add(
                    "gauge",
                    "dirty_data_bytes",
                    "Dirty data of the backing device in the cache.",
                    bdev_labels,
                    dirty,
                )
                writeback, skipped = parse_writeback_rate_debug(reader.text(f"{bdev}/writeback_rate_debug"))
                reader.skipped.extend(skipped)
                for key, suffix, doc in (
                    ("target", "dirty_target_bytes", "Dirty data target of the backing device, in bytes."),
                    ("rate", "writeback_rate", "Writeback rate of the backing device, in bytes per second."),
                    ("proportional", "writeback_rate_proportional_term", "Proportional term of the rate."),
                    ("integral", "writeback_rate_integral_term", "Integral term of the writeback rate."),
                    ("change", "writeback_change", "Latest writeback rate change."),
                ):
                    add("gauge", suffix, doc, bdev_labels, float(writeback[key]))
                for attribute, suffix, doc in _PERIOD_COUNTERS:
                    value = float(reader.value(f"{bdev}/stats_total/{attribute}"))
                    add("counter", suffix, doc, bdev_labels, value)
                readaheads = reader.value(f"{bdev}/stats_total/cache_readaheads")
                if readaheads:  # node_exporter leaves a zero readahead count out
                    add("counter", "cache_readaheads_total", "Readaheads.", bdev_labels, float(readaheads))
            for name, cache in numbered_entries(directory, "cache"):
                cache_labels = {"uuid": uuid, "cache_device": f"cache{name}"}
                errors = float(reader.value(f"{cache}/io_errors"))
                add("gauge", "io_errors", "I/O errors, decayed by io_error_halflife.", cache_labels, errors)
                metadata = float(reader.value(f"{cache}/metadata_written"))
                add(
                    "counter",
                    "metadata_written_bytes_total",
                    "Metadata written, in bytes.",
                    cache_labels,
                    metadata,
                )
                written = float(reader.value(f"{cache}/written"))
                add(
                    "counter",
                    "written_bytes_total",
                    "Data written to the cache, in bytes.",
                    cache_labels,
                    written,
                )
                if self.opts["priorityStats"]:
                    priority, skipped = parse_priority_stats(reader.text(f"{cache}/priority_stats"))
                    reader.skipped.extend(skipped)
                    unused, meta = float(priority["unused"]), float(priority["metadata"])
                    add(
                        "gauge",
                        "priority_stats_unused_percent",
                        "Share of the cache holding no data.",
                        cache_labels,
                        unused,
                    )
                    add(
                        "gauge",
                        "priority_stats_metadata_percent",
                        "Share of the cache holding metadata.",
                        cache_labels,
                        meta,
                    )
            self.report(reader.skipped)
        return list(families.values())
