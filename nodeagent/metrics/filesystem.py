"""filesystem: size, free space and inodes of each mounted filesystem (statvfs), from the mount table of
<procfs>/1/mountinfo (falling back to <procfs>/self/mountinfo, then <procfs>/mounts).

With --path.rootfs other than "/" (the agent in a container, the host mounted at e.g. /host):
statvfs runs on rootfs + mount point, and mount points are reported as the host sees them. When the mount
table is the agent's own view (it lists the host under /host) only the mounts below rootfs are kept, with
the prefix stripped; when it is the host's view (PID 1 of the host) it is used as is.

A statvfs that hangs (a dead NFS server) must not hang the scrape: each call runs in a small pool of daemon
threads; after mount-timeout the mount is reported with node_filesystem_device_error 1 (label device_error
"mountpoint timeout") and skipped by later scrapes until the stuck call returns, as node_exporter does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_duration, parse_int
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics._filters import exclusive_filter, filter_options
from nodeagent.metrics.host.files import MOUNT_TABLE_LIMIT, Paths, read_path_text, valid_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, register
from nodeagent.pools import BoundedPool

log = logging.getLogger("nodeagent.metrics")

DEFAULT_MOUNT_POINTS_EXCLUDE = (
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|"
    r"var/lib/containers/storage/.+)($|/)"
)
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|"
    r"hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|"
    r"selinuxfs|squashfs|erofs|sysfs|tracefs)$"
)
TIMEOUT_ERROR = "mountpoint timeout"


class Mount(NamedTuple):
    device: str
    mount_point: str
    fs_type: str
    options: str = ""
    super_options: str = ""
    major: str = "0"
    minor: str = "0"

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.split(",") or "ro" in self.super_options.split(",")


def unescape_mount_path(path: str) -> str:
    r"""The kernel writes space, tab, newline and backslash in mount paths as \040, \011, \012, \134."""
    if "\\" not in path:
        return path
    out = []
    i = 0
    while i < len(path):
        char = path[i]
        digits = path[i + 1 : i + 4]
        if char == "\\" and len(digits) == 3 and all(d in "01234567" for d in digits):
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            out.append(char)
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> tuple[list[Mount], list[Skip]]:
    """Mounts of a /proc/<pid>/mountinfo file (see proc(5)), and the malformed lines skipped."""
    mounts = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            separator = fields.index("-", 6)
            major, _, minor = fields[2].partition(":")
            major_minor = (str(parse_uint(major)), str(parse_uint(minor)))
            fs_type = fields[separator + 1]
        except (ValueError, IndexError):
            skipped.append(Skip("mount table line", line))
            continue
        source = fields[separator + 2] if len(fields) > separator + 2 else ""
        super_options = fields[separator + 3] if len(fields) > separator + 3 else ""
        mounts.append(
            Mount(
                device=unescape_mount_path(source),
                mount_point=unescape_mount_path(fields[4]),
                fs_type=fs_type,
                options=fields[5],
                super_options=super_options,
                major=major_minor[0],
                minor=major_minor[1],
            )
        )
    return mounts, skipped


def parse_mounts(text: str) -> tuple[list[Mount], list[Skip]]:
    """Mounts of a /proc/mounts file (fstab format; no device numbers, reported as 0:0)."""
    mounts = []
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 4:
            skipped.append(Skip("mount table line", line))
            continue
        mounts.append(
            Mount(
                device=unescape_mount_path(fields[0]),
                mount_point=unescape_mount_path(fields[1]),
                fs_type=fields[2],
                options=fields[3],
            )
        )
    return mounts, skipped


def read_mount_table(paths: Paths) -> tuple[str, str]:
    """("mountinfo" or "mounts", text): PID 1's table (the host's when the agent shares its PID namespace),
    else the agent's own (hidepid hides PID 1), else the legacy /proc/mounts."""
    for candidate in (paths.proc("1", "mountinfo"), paths.proc("self", "mountinfo")):
        try:
            return "mountinfo", read_path_text(candidate, MOUNT_TABLE_LIMIT)
        except (FileNotFoundError, PermissionError):
            continue
    return "mounts", read_path_text(paths.proc("mounts"), MOUNT_TABLE_LIMIT)


def parse_mount_table(kind: str, text: str) -> tuple[list[Mount], list[Skip]]:
    """A table as :func:`read_mount_table` returns it."""
    return parse_mountinfo(text) if kind == "mountinfo" else parse_mounts(text)


def host_relative(mounts: list[Mount], rootfs: str) -> list[Mount]:
    """Mount points as the host sees them, for a host root mounted at ``rootfs``."""
    root = rootfs.rstrip("/")
    if not root:
        return mounts
    prefix = root + "/"
    inside = [m for m in mounts if m.mount_point == root or m.mount_point.startswith(prefix)]
    if not inside:
        return mounts  # the host's own mount table: already host-relative
    return [
        Mount(
            m.device,
            m.mount_point[len(root) :] or "/",
            m.fs_type,
            m.options,
            m.super_options,
            m.major,
            m.minor,
        )
        for m in inside
    ]


MAX_STUCK_STATFS = 4096  # more mounts than any node has: a stuck mount is skipped until its call returns
TIMED_OUT = object()  # outcome of a statvfs call abandoned after the timeout
StatfsOutcome = os.statvfs_result | OSError | object


class StatfsBatch:
    """The statvfs calls of one scrape, run by StatfsWorkers.

    The scraping thread sleeps once for the whole batch (woken when the last call returns, or when the
    earliest running call reaches its timeout) instead of once per mount: a thread handoff per mount
    would cost more than the calls themselves.
    """

    __slots__ = ("abandoned", "cond", "fn", "items", "on_late_return", "outcomes", "remaining", "started_at")

    def __init__(
        self,
        fn: Callable[[str], os.statvfs_result],
        items: list[tuple[str, str]],
        on_late_return: Callable[[str], None],
    ) -> None:
        self.fn = fn
        self.items = items  # (path to stat, mount point)
        self.on_late_return = on_late_return
        self.cond = threading.Condition(threading.Lock())
        self.outcomes: list[StatfsOutcome | None] = [None] * len(items)
        self.started_at = [0.0] * len(items)
        self.abandoned = [False] * len(items)
        self.remaining = len(items)

    def run(self, index: int) -> bool:
        """Run call ``index`` (in a worker); True if it returned after being abandoned."""
        self.started_at[index] = time.monotonic()
        outcome: StatfsOutcome
        try:
            outcome = self.fn(self.items[index][0])
        except OSError as exc:
            outcome = exc
        except Exception as exc:  # never lose a worker thread to an unexpected error
            outcome = OSError(str(exc))
        with self.cond:
            late = self.abandoned[index]
            if not late:
                self.outcomes[index] = outcome
                self.remaining -= 1
                if not self.remaining:
                    self.cond.notify_all()
        if late:
            self.on_late_return(self.items[index][1])
        return late

    def wait(self, timeout: float) -> list[int]:
        """Wait until every call returned or was abandoned after running ``timeout`` seconds.

        Returns the indexes abandoned by this wait (their outcome is TIMED_OUT).
        """
        abandoned = []
        with self.cond:
            while self.remaining:
                now = time.monotonic()
                wake_at = now + timeout  # nothing running yet: look again after a full timeout
                for index, outcome in enumerate(self.outcomes):
                    started = self.started_at[index]
                    if outcome is not None or not started:
                        continue
                    if now - started >= timeout:
                        self.abandoned[index] = True
                        self.outcomes[index] = TIMED_OUT
                        self.remaining -= 1
                        abandoned.append(index)
                    else:
                        wake_at = min(wake_at, started + timeout)
                if self.remaining:
                    self.cond.wait(wake_at - now)
        return abandoned


class StatfsWorkers:
    """statvfs calls on a bounded pool (:mod:`nodeagent.pools`) of ``size`` healthy workers.

    A worker whose call is abandoned is replaced at once, so stuck calls never starve the others; the
    stuck worker exits when its call finally returns. Stuck mounts are skipped until then, so stuck
    workers are bounded by the number of mounts.
    """

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self.pool = BoundedPool("statfs", self.size, max_abandoned=MAX_STUCK_STATFS)

    def run(self, batch: StatfsBatch, timeout: float) -> list[int]:
        """Run every call of ``batch``; returns the indexes abandoned as stuck."""
        if not batch.items:
            return []
        futures = [self.pool.submit(batch.run, index) for index in range(len(batch.items))]
        abandoned = batch.wait(timeout)
        for index in abandoned:
            self.pool.abandon(futures[index])  # a replacement worker takes the stuck one's place
        return abandoned


@register
class FilesystemCollector(Collector):
    name = "filesystem"
    options = (
        *filter_options("mount-points", "mount points", DEFAULT_MOUNT_POINTS_EXCLUDE),
        *filter_options("fs-types", "filesystem types", DEFAULT_FS_TYPES_EXCLUDE),
        CollectorOption(
            "mount-timeout",
            5.0,
            "How long a statvfs call may take before the mount is reported as stuck and skipped "
            "until the call returns.",
            parse_duration,
        ),
        CollectorOption("stat-workers", 4, "statvfs calls run at the same time.", parse_int),
    )

    def __init__(self, paths: Any, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.mount_filter = exclusive_filter(self.name, options, "mount-points", DEFAULT_MOUNT_POINTS_EXCLUDE)
        self.type_filter = exclusive_filter(self.name, options, "fs-types", DEFAULT_FS_TYPES_EXCLUDE)
        self.timeout = float(options.get("mount-timeout", 5.0))
        self.workers = StatfsWorkers(int(options.get("stat-workers", 4)))
        self.statfs: Callable[[str], os.statvfs_result] = os.statvfs  # replaceable in tests
        self.stuck: set[str] = set()
        self._stuck_lock = threading.Lock()
        self.rootfs = paths.rootfs
        self._table: tuple[str, str] | None = None
        self._selected: list[Mount] = []

    def _recovered(self, mount_point: str) -> None:
        with self._stuck_lock:
            self.stuck.discard(mount_point)
        log.info("mount point responds again", extra={"mountpoint": mount_point})

    def selected_mounts(self) -> list[Mount]:
        """Mounts to report, host-relative and filtered; re-parsed only when the mount table changed."""
        table = read_mount_table(self.paths)
        if table == self._table:
            return self._selected
        mounts, skipped = parse_mount_table(*table)
        self.report(skipped)
        self._selected = [
            m
            for m in host_relative(mounts, self.rootfs)
            if not self.mount_filter.ignored(m.mount_point) and not self.type_filter.ignored(m.fs_type)
        ]
        self._table = table
        return self._selected

    def collect(self) -> Iterable[Metric]:
        mounts = self.selected_mounts()
        with self._stuck_lock:
            stuck = self.stuck.copy()
        to_stat = [m for m in mounts if m.mount_point not in stuck]
        items = [(self.paths.root(m.mount_point), m.mount_point) for m in to_stat]
        batch = StatfsBatch(self.statfs, items, self._recovered)
        for index in self.workers.run(batch, self.timeout):
            mount_point = to_stat[index].mount_point
            with self._stuck_lock:
                self.stuck.add(mount_point)
            log.warning(
                "statvfs timed out; skipping the mount until it responds",
                extra={"mountpoint": mount_point, "timeout": self.timeout},
            )
        outcomes = dict(zip(to_stat, batch.outcomes, strict=True))

        size = gauge("node_filesystem_size_bytes", "Total size of the filesystem, in bytes.")
        free = gauge("node_filesystem_free_bytes", "Free bytes, including those reserved for root.")
        avail = gauge("node_filesystem_avail_bytes", "Free bytes available to unprivileged users.")
        files = gauge("node_filesystem_files", "Inodes in the filesystem.")
        files_free = gauge("node_filesystem_files_free", "Free inodes.")
        readonly = gauge("node_filesystem_readonly", "1 if the filesystem is mounted read-only.")
        device_error = gauge(
            "node_filesystem_device_error",
            "1 if statvfs failed or timed out for this mount (see label device_error).",
        )
        mount_info = gauge("node_filesystem_mount_info", "Device numbers of each mount; always 1.")
        seen: set[tuple[str, ...]] = set()
        seen_info: set[tuple[str, ...]] = set()
        for mount in mounts:
            outcome = outcomes.get(mount, TIMED_OUT)  # not in the batch: stuck since an earlier scrape
            stats: os.statvfs_result | None = None
            if outcome is TIMED_OUT:
                error = TIMEOUT_ERROR
            elif isinstance(outcome, OSError):
                error = _go_error_text(outcome)
            elif isinstance(outcome, os.statvfs_result):
                error = ""
                stats = outcome
            else:  # not reached: every outcome is one of the three
                continue
            key = (mount.device, mount.mount_point, mount.fs_type, error)
            if key in seen:
                continue
            seen.add(key)
            labels = {
                "device": valid_text(mount.device),
                "mountpoint": valid_text(mount.mount_point),
                "fstype": valid_text(mount.fs_type),
                "device_error": error,
            }
            add_sample(device_error, labels, 1.0 if error else 0.0)
            add_sample(readonly, labels, 1.0 if mount.read_only else 0.0)
            if stats is None:
                continue
            block = float(stats.f_bsize)
            add_sample(size, labels, float(stats.f_blocks) * block)
            add_sample(free, labels, float(stats.f_bfree) * block)
            add_sample(avail, labels, float(stats.f_bavail) * block)
            add_sample(files, labels, float(stats.f_files))
            add_sample(files_free, labels, float(stats.f_ffree))
            info = (mount.device, mount.major, mount.minor, mount.mount_point)
            if info not in seen_info:
                seen_info.add(info)
                info_labels = {
                    "device": labels["device"],
                    "major": mount.major,
                    "minor": mount.minor,
                    "mountpoint": labels["mountpoint"],
                }
                add_sample(mount_info, info_labels, 1.0)
        return [size, free, avail, files, files_free, readonly, device_error, mount_info]


def _go_error_text(error: OSError) -> str:
    """An errno message as Go spells it ("no such file or directory"), for the device_error label."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]
