"""bcachefs: filesystem statistics from <sysfs>/fs/bcachefs/<uuid>/ (one directory per filesystem).

Per filesystem: the btree cache size, compression by algorithm (``compression_stats``), error counts
by type (``errors``), every file of ``counters/`` as ``node_bcachefs_<counter>_total`` (the count since
filesystem creation), btree writes by type (``btree_write_stats``); per member device (``dev-<N>``):
label and state, bucket size and count, durability, bytes of I/O done by operation and data type
(``io_done``) and I/O errors since creation (``io_errors``). Sizes are human-readable (``48.9G``).
A value or line that does not parse is reported and left out (or 0); the rest is still exported.
No <sysfs>/fs/bcachefs or no filesystem in it: the collector has no data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.bcache import go_uint64
from nodeagent.metrics.host.files import read_attributes, read_optional
from nodeagent.metrics.host.gonum import parse_float, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
_NOT_NAME = re.compile(r"_*[^0-9A-Za-z_]+_*")  # node_exporter's metric-name sanitizer


def parse_human_bytes(text: str) -> int:
    """``62.5k``, ``10.8T``, ``720`` -> bytes (binary units, truncated). Raises ValueError."""
    text = text.strip()
    if not text:
        raise ValueError("empty size")
    multiplier = _UNITS.get(text[-1].lower())
    if multiplier is not None:
        text = text[:-1]
    return go_uint64(parse_float(text.strip()) * (multiplier or 1))


@dataclass
class Device:
    label: str = ""
    state: str = ""
    bucket_size: int = 0
    buckets: int = 0
    durability: int = 0
    io_done: dict[str, dict[str, int]] = field(default_factory=dict)
    io_errors: dict[str, int] = field(default_factory=dict)


def _table(text: str, skip_header: bool, minimum: int) -> list[list[str]]:
    lines = text.splitlines()[1:] if skip_header else text.splitlines()
    return [fields for line in lines if len(fields := line.split()) >= minimum]


def parse_compression_stats(text: str) -> tuple[dict[str, tuple[int, int]], list[Skip]]:
    """algorithm -> (compressed, uncompressed) bytes, from the table below a header line."""
    stats: dict[str, tuple[int, int]] = {}
    skipped: list[Skip] = []
    for fields in _table(text, True, 3):
        try:
            if len(fields) >= 4:
                parse_human_bytes(fields[3])
            stats[fields[0].removesuffix(":")] = (parse_human_bytes(fields[1]), parse_human_bytes(fields[2]))
        except ValueError:
            skipped.append(Skip("bcachefs compression_stats: unparsable size", " ".join(fields)))
    return stats, skipped


def parse_errors(text: str) -> tuple[dict[str, int], list[Skip]]:
    """error type -> count (``<type> <count> [<last time>]`` lines)."""
    stats: dict[str, int] = {}
    skipped: list[Skip] = []
    for fields in _table(text, False, 2):
        try:
            if len(fields) >= 3:
                parse_uint(fields[2])
            stats[fields[0]] = parse_uint(fields[1])
        except ValueError:
            skipped.append(Skip("bcachefs errors: unparsable count", " ".join(fields)))
    return stats, skipped


def parse_btree_write_stats(text: str) -> tuple[dict[str, tuple[int, int]], list[Skip]]:
    """write type -> (count, average size in bytes), from the table below a header line."""
    stats: dict[str, tuple[int, int]] = {}
    skipped: list[Skip] = []
    for fields in _table(text, True, 3):
        try:
            stats[fields[0].removesuffix(":")] = (parse_uint(fields[1]), parse_human_bytes(fields[2]))
        except ValueError:
            skipped.append(Skip("bcachefs btree_write_stats: unparsable value", " ".join(fields)))
    return stats, skipped


def parse_counter(text: str) -> int | None:
    """The ``since filesystem creation:`` value of a counter file (0 if it only has ``since mount:``);
    None when the file has neither or a value does not parse."""
    value: int | None = None
    seen = False
    try:
        for line in text.splitlines():
            if line.startswith("since mount:"):
                parse_human_bytes(line.removeprefix("since mount:"))
                seen = True
            elif line.startswith("since filesystem creation:"):
                value = parse_human_bytes(line.removeprefix("since filesystem creation:"))
                seen = True
    except ValueError:
        return None
    return (value or 0) if seen else None


def parse_io_done(text: str) -> tuple[dict[str, dict[str, int]], list[Skip]]:
    """operation (read, write) -> data type -> bytes."""
    stats: dict[str, dict[str, int]] = {}
    skipped: list[Skip] = []
    operation = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("read:", "write:"):
            operation = line[:-1]
            stats.setdefault(operation, {})
            continue
        if not operation or ":" not in line:
            continue
        data_type, _, value = line.partition(":")
        try:
            stats[operation][data_type.strip()] = parse_uint(value.strip())
        except ValueError:
            skipped.append(Skip("bcachefs io_done: unparsable value", line))
    return stats, skipped


def parse_io_errors(text: str) -> tuple[dict[str, int], list[Skip]]:
    """error type -> count in the ``IO errors since filesystem creation`` section."""
    stats: dict[str, int] = {}
    skipped: list[Skip] = []
    in_section = False
    for raw in text.splitlines():
        if raw.startswith("IO errors since filesystem creation"):
            in_section = True
            continue
        if raw.startswith("IO errors since "):
            break
        line = raw.strip()
        if not in_section or ":" not in line:
            continue
        kind, _, value = line.partition(":")
        try:
            stats[kind.strip()] = parse_uint(value.strip())
        except ValueError:
            skipped.append(Skip("bcachefs io_errors: unparsable value", line))
    return stats, skipped


def _entries(directory: str) -> list[tuple[str, bool]]:
    """(name, is a directory, not following links) of a directory's entries in Go's order."""
    with os.scandir(directory) as entries:
        found = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    return sorted(found, key=lambda item: item[0].encode("utf-8", "surrogateescape"))


def _text(path: str) -> str:
    return read_optional(path) or ""


def _read_device(directory: str, skipped: list[Skip]) -> Device:
    device = Device(label=_text(f"{directory}/label").strip(), state=_text(f"{directory}/state").strip())
    for name in ("bucket_size", "nbuckets", "durability"):
        raw = _text(f"{directory}/{name}").strip()
        if not raw:
            continue
        try:
            value = parse_human_bytes(raw) if name == "bucket_size" else parse_uint(raw)
        except ValueError:
            skipped.append(Skip(f"bcachefs device {name}: unparsable", f"{directory}: {raw}"))
            continue
        setattr(device, {"nbuckets": "buckets"}.get(name, name), value)
    device.io_done, more = parse_io_done(_text(f"{directory}/io_done"))
    skipped.extend(more)
    device.io_errors, more = parse_io_errors(_text(f"{directory}/io_errors"))
    skipped.extend(more)
    return device


_FIXED = frozenset(
    {
        "info",
        "btree_cache_size_bytes",
        "compression_compressed_bytes",
        "compression_uncompressed_bytes",
        "errors_total",
        "btree_writes_total",
        "btree_write_average_size_bytes",
        "device_info",
        "device_bucket_size_bytes",
        "device_buckets",
        "device_durability",
        "device_io_done_bytes_total",
        "device_io_errors_total",
    }
)


@register
class BcachefsCollector(Collector):
    name = "bcachefs"

    def collect(self) -> Iterable[Metric]:
        base = self.paths.sys("fs", "bcachefs")
        try:
            filesystems = [name for name, is_dir in _entries(base) if is_dir]
        except (FileNotFoundError, NotADirectoryError):
            raise NoDataError("no <sysfs>/fs/bcachefs") from None
        if not filesystems:
            raise NoDataError("no bcachefs filesystem")

        def make(kind: str, suffix: str, doc: str) -> Metric:
            return (counter if kind == "counter" else gauge)(f"node_bcachefs_{suffix}", doc)

        info = make("gauge", "info", "Filesystem information.")
        cache = make("gauge", "btree_cache_size_bytes", "Size of the btree cache, in bytes.")
        compressed = make("gauge", "compression_compressed_bytes", "Compressed size, by algorithm.")
        uncompressed = make("gauge", "compression_uncompressed_bytes", "Uncompressed size, by algorithm.")
        errors = make("counter", "errors_total", "Errors, by type.")
        writes = make("counter", "btree_writes_total", "Btree writes, by type.")
        write_size = make("gauge", "btree_write_average_size_bytes", "Average btree write size, by type.")
        device_info = make("gauge", "device_info", "Device information (label, state).")
        bucket_size = make("gauge", "device_bucket_size_bytes", "Bucket size of the device, in bytes.")
        buckets = make("gauge", "device_buckets", "Buckets on the device.")
        durability = make("gauge", "device_durability", "Durability of the device.")
        io_done = make("counter", "device_io_done_bytes_total", "I/O done on the device, in bytes.")
        io_errors = make("counter", "device_io_errors_total", "I/O errors of the device since creation.")
        families = [info, cache, compressed, uncompressed, errors, writes, write_size, device_info]
        families += [bucket_size, buckets, durability, io_done, io_errors]
        counters: dict[str, Metric] = {}
        for uuid in filesystems:
            directory = f"{base}/{uuid}"
            skipped: list[Skip] = []
            labels = {"uuid": uuid}
            add_sample(info, labels, 1.0)
            raw = _text(f"{directory}/btree_cache_size").strip()
            size = 0
            if raw:
                try:
                    size = parse_human_bytes(raw)
                except ValueError:
                    skipped.append(Skip("bcachefs btree_cache_size: unparsable", raw))
            add_sample(cache, labels, float(size))
            compression, more = parse_compression_stats(_text(f"{directory}/compression_stats"))
            skipped.extend(more)
            for algorithm, (packed, unpacked) in compression.items():
                algorithm_labels = {"uuid": uuid, "algorithm": algorithm}
                add_sample(compressed, algorithm_labels, float(packed))
                add_sample(uncompressed, algorithm_labels, float(unpacked))
            error_counts, more = parse_errors(_text(f"{directory}/errors"))
            skipped.extend(more)
            for kind, count in error_counts.items():
                add_sample(errors, {"uuid": uuid, "error_type": kind}, float(count))
            self._counters(f"{directory}/counters", labels, counters, skipped)
            write_stats, more = parse_btree_write_stats(_text(f"{directory}/btree_write_stats"))
            skipped.extend(more)
            for kind, (count, average) in write_stats.items():
                write_labels = {"uuid": uuid, "type": kind}
                add_sample(writes, write_labels, float(count))
                add_sample(write_size, write_labels, float(average))
            for name, is_dir in _entries(directory):
                if not is_dir or not name.startswith("dev-"):
                    continue
                device = _read_device(f"{directory}/{name}", skipped)
                dev = name.removeprefix("dev-")
                dev_labels = {"uuid": uuid, "device": dev}
                add_sample(device_info, {**dev_labels, "label": device.label, "state": device.state}, 1.0)
                add_sample(bucket_size, dev_labels, float(device.bucket_size))
                add_sample(buckets, dev_labels, float(device.buckets))
                add_sample(durability, dev_labels, float(device.durability))
                for operation, by_type in device.io_done.items():
                    for data_type, value in by_type.items():
                        io_labels = {**dev_labels, "operation": operation, "data_type": data_type}
                        add_sample(io_done, io_labels, float(value))
                for kind, value in device.io_errors.items():
                    add_sample(io_errors, {**dev_labels, "type": kind}, float(value))
            self.report(skipped)
        return families + list(counters.values())

    def _counters(
        self, directory: str, labels: dict[str, str], counters: dict[str, Metric], skipped: list[Skip]
    ) -> None:
        try:
            entries = _entries(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        # one directory descriptor for the ~200 counter files (see read_attributes)
        texts = read_attributes(directory, [name for name, is_dir in entries if not is_dir])
        for name, is_dir in entries:
            if is_dir:
                continue
            value = parse_counter(texts.get(name, ""))
            if value is None:
                skipped.append(Skip("bcachefs counter file not recognized", name))
                continue
            suffix = _NOT_NAME.sub("_", name) + "_total"
            if suffix in _FIXED:
                skipped.append(Skip("bcachefs counter named as another family", name))
                continue
            family = counters.get(suffix)
            if family is None:
                family = counters[suffix] = counter(
                    f"node_bcachefs_{suffix}", f"bcachefs counter {name} since creation."
                )
            add_sample(family, labels, float(value))
