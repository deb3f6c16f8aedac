"""perf: per-CPU hardware, software and cache event counters and tracepoints over perf_event_open(2).

node_exporter 1.12.1's perf collector (off by default; upstream uses hodgesds/perf-utils): one counting
event per CPU and event, opened for every process on that CPU (pid -1), with the attributes perf-utils
sets (disabled until enabled, exclude_hv, inherit, read_format TOTAL_TIME_ENABLED|RUNNING), read as the
raw (unscaled) count into node_perf_* counters labelled ``cpu``. Only the events upstream exports are
opened (perf-utils also opens bus-cycles, cpu-clock, task-clock... that node_exporter never reports).

An event the host cannot count (hardware and cache events in most VMs: ENOENT / EOPNOTSUPP) is left
out and logged once; a profiler kind of which nothing opens reports nothing. The descriptors are opened
on the first scrape, counted against a budget (:data:`MAX_EVENT_FDS`, and a quarter of RLIMIT_NOFILE),
and closed by :meth:`PerfCollector.close`, when the collector is dropped, or at interpreter exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import platform
import re
import resource
import struct
import weakref
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_bool
from nodeagent.config.values import parse_str, parse_string_list
from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics.host.files import read_optional
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

log = logging.getLogger("nodeagent.metrics.perf")

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_TYPE_HW_CACHE = 3
PERF_FORMAT_TOTAL_TIME_ENABLED = 1 << 0
PERF_FORMAT_TOTAL_TIME_RUNNING = 1 << 1
PERF_SAMPLE_IDENTIFIER = 1 << 16
_ATTR_DISABLED = 1 << 0
_ATTR_INHERIT = 1 << 1
_ATTR_EXCLUDE_HV = 1 << 6
PERF_EVENT_IOC_ENABLE = 0x2400
# struct perf_event_attr up to config1 (PERF_ATTR_SIZE_VER0): type, size, config, sample_period,
# sample_type, read_format, flag bits, wakeup_events, bp_type, config1.
_ATTR = struct.Struct("=IIQQQQQIIQ")
_READ = struct.Struct("=QQQ")  # value, time_enabled, time_running
_SYSCALL_NUMBERS = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331, "riscv64": 241}
# Upper bound of perf descriptors whatever the CPU count (a 256-CPU node with every event: 7,680).
MAX_EVENT_FDS = 4096
MAX_CPUS = 8192  # a --collector.perf.cpus range larger than any machine is refused, not expanded

# (flag name, metric suffix, event config), in upstream's order.
HARDWARE = (
    ("CpuCycles", "cpucycles_total", 0),
    ("CpuInstr", "instructions_total", 1),
    ("CacheRef", "cache_refs_total", 2),
    ("CacheMisses", "cache_misses_total", 3),
    ("BranchInstr", "branch_instructions_total", 4),
    ("BranchMisses", "branch_misses_total", 5),
    ("StalledCyclesFrontend", "stalled_cycles_frontend_total", 7),
    ("StalledCyclesBackend", "stalled_cycles_backend_total", 8),
    ("RefCpuCycles", "ref_cpucycles_total", 9),
)
SOFTWARE = (
    ("PageFault", "page_faults_total", 2),
    ("ContextSwitch", "context_switches_total", 3),
    ("CpuMigration", "cpu_migrations_total", 4),
    ("MinorFault", "minor_faults_total", 5),
    ("MajorFault", "major_faults_total", 6),
)


def _cache(cache_id: int, op: int, result: int) -> int:
    return cache_id | op << 8 | result << 16


_L1D, _L1I, _LL, _DTLB, _ITLB, _BPU = 0, 1, 2, 3, 4, 5
_READ_OP, _WRITE_OP = 0, 1
_ACCESS, _MISS = 0, 1
CACHE = (
    ("L1DataReadHit", "cache_l1d_read_hits_total", _cache(_L1D, _READ_OP, _ACCESS)),
    ("L1DataReadMiss", "cache_l1d_read_misses_total", _cache(_L1D, _READ_OP, _MISS)),
    ("L1DataWriteHit", "cache_l1d_write_hits_total", _cache(_L1D, _WRITE_OP, _ACCESS)),
    ("L1InstrReadMiss", "cache_l1_instr_read_misses_total", _cache(_L1I, _READ_OP, _MISS)),
    ("InstrTLBReadHit", "cache_tlb_instr_read_hits_total", _cache(_ITLB, _READ_OP, _ACCESS)),
    ("InstrTLBReadMiss", "cache_tlb_instr_read_misses_total", _cache(_ITLB, _READ_OP, _MISS)),
    ("DataTLBReadHit", "cache_tlb_data_read_hits_total", _cache(_DTLB, _READ_OP, _ACCESS)),
    ("DataTLBReadMiss", "cache_tlb_data_read_misses_total", _cache(_DTLB, _READ_OP, _MISS)),
    ("DataTLBWriteHit", "cache_tlb_data_write_hits_total", _cache(_DTLB, _WRITE_OP, _ACCESS)),
    ("DataTLBWriteMiss", "cache_tlb_data_write_misses_total", _cache(_DTLB, _WRITE_OP, _MISS)),
    ("LLReadHit", "cache_ll_read_hits_total", _cache(_LL, _READ_OP, _ACCESS)),
    ("LLReadMiss", "cache_ll_read_misses_total", _cache(_LL, _READ_OP, _MISS)),
    ("LLWriteHit", "cache_ll_write_hits_total", _cache(_LL, _WRITE_OP, _ACCESS)),
    ("LLWriteMiss", "cache_ll_write_misses_total", _cache(_LL, _WRITE_OP, _MISS)),
    ("BPUReadHit", "cache_bpu_read_hits_total", _cache(_BPU, _READ_OP, _ACCESS)),
    ("BPUReadMiss", "cache_bpu_read_misses_total", _cache(_BPU, _READ_OP, _MISS)),
)
_KINDS = {"hardware": (PERF_TYPE_HARDWARE, HARDWARE), "software": (PERF_TYPE_SOFTWARE, SOFTWARE)}
_KINDS["cache"] = (PERF_TYPE_HW_CACHE, CACHE)
_TRACE_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


def _go_atoi(text: str) -> int:
    """Go's strconv.Atoi: optional sign, decimal digits only."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"invalid CPU number {text[:40]!r}")
    return int(text)


def parse_cpus(raw: Any) -> tuple[int, ...]:
    """--collector.perf.cpus as upstream reads it: ``N``, ``A-B`` and ``A-B:STRIDE`` joined by commas;
    empty means every CPU (the empty tuple). A zero or negative stride (an endless loop upstream) and a
    range over :data:`MAX_CPUS` are refused. Raises ValueError."""
    text = parse_str(raw)
    if text == "":
        return ()
    cpus: list[int] = []
    for subset in text.split(","):
        if "-" not in subset:
            cpus.append(_go_atoi(subset))
            continue
        stride_parts = subset.split(":")
        stride = _go_atoi(stride_parts[1]) if len(stride_parts) == 2 else 1
        bounds = stride_parts[0].split("-")
        if len(bounds) != 2:
            raise ValueError(f"invalid flag value {text[:80]!r}")
        start, end = _go_atoi(bounds[0]), _go_atoi(bounds[1])
        if stride <= 0:
            raise ValueError(f"invalid CPU range stride in {subset[:40]!r}")
        if end - start > MAX_CPUS or len(cpus) > MAX_CPUS:
            raise ValueError(f"CPU range {subset[:40]!r} larger than {MAX_CPUS}")
        cpus.extend(range(start, end + 1, stride))
    return tuple(cpus)


def parse_tracepoints(raw: Any) -> tuple[tuple[str, str], ...]:
    """--collector.perf.tracepoint (repeatable) -> (subsystem, event) pairs. Raises ValueError on an
    entry that is not ``subsystem:event``; names that are not a tracefs directory name are refused too
    (they would name a path)."""
    if raw is None or raw == "" or raw == ():
        return ()
    found = []
    for item in parse_string_list(raw):
        parts = item.split(":")
        if len(parts) != 2:
            raise ValueError(f"invalid tracepoint config {item[:80]}")
        if not all(_TRACE_NAME.match(part) for part in parts):
            raise ValueError(f"invalid tracepoint name {item[:80]!r}")
        found.append((parts[0], parts[1]))
    return tuple(found)


def parse_profiler_names(raw: Any) -> tuple[str, ...]:
    return () if raw is None or raw == "" or raw == () else parse_string_list(raw)


def select_events(
    table: tuple[tuple[str, str, int], ...], names: tuple[str, ...]
) -> tuple[list[tuple[str, int]], list[str]]:
    """(metric suffix, config) of the named profilers, and the unknown names. No names, or only unknown
    ones, selects every profiler: perf-utils reads an empty selection as "all", as upstream then does."""
    known = {name: (suffix, config) for name, suffix, config in table}
    unknown = [name for name in names if name not in known]
    chosen = {name for name in names if name in known}
    if not chosen:
        return [(suffix, config) for _name, suffix, config in table], unknown
    return [(suffix, config) for name, suffix, config in table if name in chosen], unknown


def encode_attr(event_type: int, config: int) -> bytes:
    """The perf_event_attr perf-utils passes for one counting event."""
    flags = _ATTR_DISABLED | _ATTR_EXCLUDE_HV | _ATTR_INHERIT
    read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING
    return _ATTR.pack(event_type, _ATTR.size, config, 0, PERF_SAMPLE_IDENTIFIER, read_format, flags, 0, 0, 0)


def decode_count(data: bytes) -> int | None:
    """The raw count of one read(2) of a counting event (value, time_enabled, time_running); None when
    short."""
    return _READ.unpack_from(data)[0] if len(data) >= _READ.size else None


_libc: Any = None


def perf_event_open(attr: bytes, pid: int, cpu: int) -> int:
    """perf_event_open(2) (there is no libc wrapper) with PERF_FLAG_FD_CLOEXEC. Raises OSError."""
    global _libc
    number = _SYSCALL_NUMBERS.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"perf_event_open: unknown syscall number on {platform.machine()}")
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    fd = _libc.syscall(number, buffer, pid, cpu, -1, 8)  # 8: PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


def fd_budget() -> int:
    """Perf descriptors this agent may hold: :data:`MAX_EVENT_FDS`, and at most a quarter of the
    open-file limit (the rest is for sockets, logs, procfs reads)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return MAX_EVENT_FDS if soft == resource.RLIM_INFINITY else min(MAX_EVENT_FDS, soft // 4)


@register
class PerfCollector(Collector):
    name = "perf"
    default_enabled = False
    options = (
        CollectorOption(
            "cpus", "", "CPUs to count on (N, A-B, A-B:STRIDE, comma-separated); all if empty.", parse_cpus
        ),
        CollectorOption(
            "tracepoint", (), "Tracepoint to count, subsystem:event (repeatable).", parse_tracepoints
        ),
        CollectorOption("disable-hardware-profilers", False, "Do not count hardware events.", parse_bool),
        CollectorOption(
            "hardware-profilers",
            (),
            "Hardware events to count (repeatable; all if none).",
            parse_profiler_names,
        ),
        CollectorOption("disable-software-profilers", False, "Do not count software events.", parse_bool),
        CollectorOption(
            "software-profilers",
            (),
            "Software events to count (repeatable; all if none).",
            parse_profiler_names,
        ),
        CollectorOption("disable-cache-profilers", False, "Do not count cache events.", parse_bool),
        CollectorOption(
            "cache-profilers", (), "Cache events to count (repeatable; all if none).", parse_profiler_names
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        cpus = parse_cpus(self.opts["cpus"])
        self.cpus = cpus or tuple(range(len(os.sched_getaffinity(0))))  # Go's runtime.NumCPU
        self.tracepoints = parse_tracepoints(self.opts["tracepoint"])
        self.kinds: list[tuple[str, int, list[tuple[str, int]]]] = []
        for kind, (event_type, table) in _KINDS.items():
            if parse_bool(self.opts[f"disable-{kind}-profilers"]):
                continue
            events, unknown = select_events(table, parse_profiler_names(self.opts[f"{kind}-profilers"]))
            for name in unknown:
                log.error("Unknown %s profiler: %s", kind, name[:80])
            self.kinds.append((kind, event_type, events))
        self._fds: list[int] = []
        self._finalizer = weakref.finalize(self, _close_all, self._fds)  # also runs at exit
        # (metric name, cpu, fd) of every open event, in emission order; None until the first scrape.
        self._events: list[tuple[str, int, int]] | None = None

    def _open(self) -> list[tuple[str, int, int]]:
        budget = fd_budget()
        events: list[tuple[str, int, int]] = []
        wanted = [
            (f"node_perf_{suffix}", event_type, config, kind)
            for kind, event_type, table in self.kinds
            for suffix, config in table
        ]
        for subsystem, event in self.tracepoints:
            config = self._tracepoint_id(subsystem, event)
            if config is not None:
                wanted.append((f"node_perf_{subsystem}_{event}", PERF_TYPE_TRACEPOINT, config, "tracepoint"))
        failed: dict[str, set[str]] = {}
        over_budget = False
        for metric, event_type, config, kind in wanted:
            attr = encode_attr(event_type, config)
            for cpu in self.cpus:
                if len(self._fds) >= budget:
                    over_budget = True
                    break
                try:
                    fd = perf_event_open(attr, -1, cpu)
                except OSError as exc:
                    failed.setdefault(kind, set()).add(f"{metric.removeprefix('node_perf_')}: {exc.strerror}")
                    continue
                self._fds.append(fd)
                try:
                    fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
                except OSError as exc:
                    failed.setdefault(kind, set()).add(f"{metric.removeprefix('node_perf_')}: {exc.strerror}")
                    continue
                events.append((metric, cpu, fd))
        for kind, reasons in failed.items():  # once per collector: the events are opened once
            log.warning("perf %s events not counted on this host: %s", kind, "; ".join(sorted(reasons))[:400])
        if over_budget:
            log.warning("perf: event descriptors capped at %d; some CPUs x events not counted", budget)
        return events

    def _tracepoint_id(self, subsystem: str, event: str) -> int | None:
        for base in ("kernel/tracing", "kernel/debug/tracing"):
            try:
                text = read_optional(self.paths.sys(base, "events", subsystem, event, "id"))
            except OSError:
                continue
            if text is not None and text.strip().isdigit():
                return int(text.strip())
        log.warning("perf tracepoint %s:%s not found in tracefs", subsystem, event)
        return None

    def collect(self) -> Iterable[Metric]:
        if self._events is None:
            self._events = self._open()
        families: dict[str, Metric] = {}
        for metric, cpu, fd in self._events:
            try:
                value = decode_count(os.read(fd, _READ.size))
            except OSError as exc:
                self.skip(f"{metric} cpu {cpu}: read failed", exc.strerror)
                continue
            if value is None:
                continue
            family = families.get(metric)
            if family is None:
                family = families[metric] = counter(metric, f"perf_event_open count of {metric[10:]}.")
            add_sample(family, {"cpu": str(cpu)}, float(value))
        return list(families.values())

    def close(self) -> None:
        """Close every perf descriptor (the collector is being dropped); the next scrape reopens them."""
        self._finalizer()
        self._fds = []
        self._finalizer = weakref.finalize(self, _close_all, self._fds)
        self._events = None
