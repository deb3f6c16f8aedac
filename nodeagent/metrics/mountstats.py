"""mountstats: per-mount NFS client statistics from <procfs>/self/mountstats (off by default).

For each NFS mount (a ``device ... with fstype nfs|nfs4 statvers=1.x`` block): age, byte counters,
VFS events, each RPC transport (``xprt:``) and each per-operation line. Labels: the export (the
mount's device), the transport protocol, and the server address (``addr=`` of the same mount's
super options in <procfs>/self/mountinfo, which lists mounts in the same order). Like
node_exporter, a mount whose (export, protocol, address) was already exported is left out; its
mount point still appears in ``node_mountstats_nfs_mountpoint_info``. A block that does not parse is
skipped and reported; the other mounts are still exported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.filesystem import parse_mountinfo
from nodeagent.metrics.host.files import MOUNT_TABLE_LIMIT, read_text
from nodeagent.metrics.host.gonum import MAX_INT64, parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

FLOAT64_MANTISSA = 1 << 53  # node_exporter wraps millisecond sums here before converting to float
_DEVICE_ENTRY_LEN = 8
# (stat version, protocol) -> accepted xprt value counts (after the protocol)
_TRANSPORT_LENGTHS = {("1.0", "tcp"): 10, ("1.0", "udp"): 7, ("1.1", "tcp"): 13, ("1.1", "udp"): 10}
_RDMA_MIN, _TRANSPORT_SLOTS = 20, 31
_DURATION_SECONDS = re.compile(r"[+-]?([0-9]*(\.[0-9]*)?)")

BYTES = (
    "read",
    "write",
    "direct_read",
    "direct_write",
    "total_read",
    "total_write",
    "read_pages",
    "write_pages",
)
EVENTS = (
    "inode_revalidate",
    "dnode_revalidate",
    "data_invalidate",
    "attribute_invalidate",
    "vfs_open",
    "vfs_lookup",
    "vfs_access",
    "vfs_update_page",
    "vfs_read_page",
    "vfs_read_pages",
    "vfs_write_page",
    "vfs_write_pages",
    "vfs_getdents",
    "vfs_setattr",
    "vfs_flush",
    "vfs_fsync",
    "vfs_lock",
    "vfs_file_release",
    "congestion_wait",
    "truncation",
    "write_extension",
    "silly_rename",
    "short_read",
    "short_write",
    "jukebox_delay",
    "pnfs_read",
    "pnfs_write",
)


@dataclass
class Transport:
    protocol: str
    values: list[int]  # node_exporter's layout: port, bind, connect, connect idle, idle time, sends, ...


@dataclass
class Operation:
    name: str
    values: list[int]  # requests, transmissions, major timeouts, sent, received, queue/response/request ms


@dataclass
class NfsMount:
    device: str
    mount_point: str
    age_seconds: float = 0.0
    bytes: list[int] = field(default_factory=lambda: [0] * len(BYTES))
    events: list[int] = field(default_factory=lambda: [0] * len(EVENTS))
    transports: list[Transport] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)


def _duration_seconds(text: str) -> float:
    """Go's time.ParseDuration(text + "s").Seconds() for the plain decimals the kernel writes."""
    match = _DURATION_SECONDS.fullmatch(text)
    if match is None or match.group(1) in ("", "."):
        raise ValueError(f"bad age {text[:40]!r}")
    try:
        nanoseconds = int(Decimal(text) * 1_000_000_000)
    except InvalidOperation:
        raise ValueError(f"bad age {text[:40]!r}") from None
    if abs(nanoseconds) > MAX_INT64:
        raise ValueError(f"age out of range {text[:40]!r}")
    seconds, rest = divmod(abs(nanoseconds), 1_000_000_000)
    value = seconds + rest / 1e9
    return -value if nanoseconds < 0 else value


def _transport(fields: list[str], version: str) -> Transport:
    protocol, values = fields[0], fields[1:]
    if protocol == "rdma" and version == "1.1":
        if len(values) < _RDMA_MIN:
            raise ValueError("short rdma transport line")
    elif _TRANSPORT_LENGTHS.get((version, protocol)) != len(values):
        raise ValueError(f"transport line of {len(values)} values for {protocol} statvers={version}")
    numbers = parse_uints(values)[:_TRANSPORT_SLOTS]
    numbers += [0] * (_TRANSPORT_SLOTS - len(numbers))
    if protocol == "udp":  # no connection: connect, connect idle and idle time are 0
        numbers = [*numbers[:2], 0, 0, 0, *numbers[2:]]
    elif protocol == "rdma":  # no slot or queue counters
        numbers = [*numbers[:10], 0, 0, 0, *numbers[10:]]
    return Transport(protocol, numbers)


def _nfs_block(mount: NfsMount, lines: list[str], start: int, version: str) -> int:
    """Fill ``mount`` from the lines after its device line; the index after the block. Raises ValueError."""
    i = start
    while i < len(lines):
        fields = lines[i].split()
        i += 1
        if not fields:
            return i
        key = fields[0]
        if key in ("age:", "bytes:", "events:", "opts:") and len(fields) < 2:
            raise ValueError(f"incomplete {key} line")
        if key == "age:":
            mount.age_seconds = _duration_seconds(fields[1])
        elif key == "bytes:":
            if len(fields) - 1 != len(BYTES):
                raise ValueError("bytes line of the wrong length")
            mount.bytes = parse_uints(fields[1:])
        elif key == "events:":
            if len(fields) - 1 != len(EVENTS):
                raise ValueError("events line of the wrong length")
            mount.events = parse_uints(fields[1:])
        elif key == "xprt:":
            if len(fields) < 3:
                raise ValueError("incomplete xprt line")
            mount.transports.append(_transport(fields[1:], version))
        elif key == "per-op":
            break
    while i < len(lines):
        fields = lines[i].split()
        i += 1
        if not fields:
            break
        if len(fields) < 9:
            raise ValueError("short per-op line")
        mount.operations.append(Operation(fields[0].removesuffix(":"), parse_uints(fields[1:])))
    return i


def parse_mountstats(text: str) -> tuple[list[NfsMount | None], list[Skip]]:
    """Every ``device`` entry in file order: its NFS statistics, or None (not NFS, or malformed,
    which is also skipped) so that positions match <procfs>/self/mountinfo's."""
    lines = text.splitlines()
    mounts: list[NfsMount | None] = []
    skipped: list[Skip] = []
    i = 0
    while i < len(lines):
        fields = lines[i].split()
        i += 1
        if not fields or fields[0] != "device":
            continue
        if len(fields) < _DEVICE_ENTRY_LEN or [fields[n] for n in (2, 3, 5, 6)] != [
            "mounted",
            "on",
            "with",
            "fstype",
        ]:
            skipped.append(Skip("mountstats: malformed device line", lines[i - 1]))
            mounts.append(None)
            continue
        if len(fields) == _DEVICE_ENTRY_LEN:
            mounts.append(None)  # no statistics (not NFS)
            continue
        if fields[7] not in ("nfs", "nfs4"):
            skipped.append(Skip("mountstats: statistics of an unknown filesystem type", fields[7]))
            mounts.append(None)
            continue
        mount = NfsMount(fields[1], fields[4])
        try:
            i = _nfs_block(mount, lines, i, fields[8].removeprefix("statvers="))
        except ValueError as exc:
            skipped.append(Skip("mountstats: malformed NFS statistics", f"{fields[1]} on {fields[4]}: {exc}"))
            mounts.append(None)
            while i < len(lines) and lines[i].split():  # the rest of the block
                i += 1
            continue
        mounts.append(mount)
    return mounts, skipped


def _mount_address(super_options: str) -> str:
    address = ""
    for option in super_options.split(","):
        parts = option.split("=")
        if parts[0] == "addr":
            address = parts[1] if len(parts) >= 2 else ""
    return address


_TRANSPORT_METRICS = (
    (1, "counter", "transport_bind_total", "Connections established from scratch."),
    (2, "counter", "transport_connect_total", "TCP connections made to the server."),
    (4, "gauge", "transport_idle_time_seconds", "Time since the transport last saw RPC traffic, in seconds."),
    (5, "counter", "transport_sends_total", "RPC requests sent."),
    (6, "counter", "transport_receives_total", "RPC replies received."),
    (7, "counter", "transport_bad_transaction_ids_total", "Replies with an unknown transaction ID."),
    (9, "counter", "transport_backlog_queue_total", "Items added to the backlog queue."),
    (10, "gauge", "transport_maximum_rpc_slots", "Most RPC slots ever in use at once."),
    (11, "counter", "transport_sending_queue_total", "Items added to the sending queue."),
    (12, "counter", "transport_pending_queue_total", "Items added to the pending queue."),
)
_OPERATION_METRICS = (
    (0, False, "operations_requests_total", "Requests of the operation."),
    (1, False, "operations_transmissions_total", "Transmissions of the operation's requests."),
    (2, False, "operations_major_timeouts_total", "Major timeouts of the operation's requests."),
    (3, False, "operations_sent_bytes_total", "Bytes sent for the operation, headers included."),
    (4, False, "operations_received_bytes_total", "Bytes received for the operation, headers included."),
    (
        5,
        True,
        "operations_queue_time_seconds_total",
        "Time requests spent queued before sending, in seconds.",
    ),
    (6, True, "operations_response_time_seconds_total", "Time from sending to the reply, in seconds."),
    (7, True, "operations_request_time_seconds_total", "Time from queueing to completion, in seconds."),
)


class _Families(dict[str, Metric]):
    def add(self, kind: str, suffix: str, doc: str, labels: dict[str, str], value: float) -> None:
        family = self.get(suffix)
        if family is None:
            make = counter if kind == "counter" else gauge
            family = self[suffix] = make(f"node_mountstats_nfs_{suffix}", doc)
        add_sample(family, labels, value)


@register
class MountstatsCollector(Collector):
    name = "mountstats"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        mounts, skipped = parse_mountstats(
            read_text(self.paths.proc("self", "mountstats"), MOUNT_TABLE_LIMIT)
        )
        self.report(skipped)
        table, skipped = parse_mountinfo(read_text(self.paths.proc("self", "mountinfo"), MOUNT_TABLE_LIMIT))
        self.report(skipped)
        families = _Families()
        seen_points: set[tuple[str, str, str, str]] = set()
        seen_devices: set[tuple[str, str, str]] = set()
        for index, mount in enumerate(mounts):
            if mount is None:
                continue
            address = _mount_address(table[index].super_options) if index < len(table) else ""
            for transport in mount.transports:
                point = (mount.device, transport.protocol, address, mount.mount_point)
                if point not in seen_points:
                    seen_points.add(point)
                    labels = {"export": mount.device, "protocol": transport.protocol, "mountaddr": address}
                    families.add(
                        "gauge",
                        "mountpoint_info",
                        "NFS mount point.",
                        {**labels, "mountpoint": mount.mount_point},
                        1.0,
                    )
                device = point[:3]
                if device in seen_devices:
                    break
                seen_devices.add(device)
                self._mount(families, mount, transport.protocol, address)
        return list(families.values())

    @staticmethod
    def _mount(families: _Families, mount: NfsMount, protocol: str, address: str) -> None:
        labels = {"export": mount.device, "protocol": protocol, "mountaddr": address}
        families.add(
            "counter", "age_seconds_total", "Age of the NFS mount, in seconds.", labels, mount.age_seconds
        )
        for name, value in zip(BYTES, mount.bytes, strict=True):
            suffix = f"{name}_total" if name.endswith("pages") else f"{name}_bytes_total"
            families.add("counter", suffix, f"NFS {name.replace('_', ' ')} counter.", labels, float(value))
        for number, transport in enumerate(mount.transports):
            transport_labels = {**labels, "transport": str(number)}
            for position, kind, suffix, doc in _TRANSPORT_METRICS:
                value = transport.values[position]
                if position == 4:
                    value %= FLOAT64_MANTISSA
                families.add(kind, suffix, doc, transport_labels, float(value))
        for operation in mount.operations:
            operation_labels = {**labels, "operation": operation.name}
            for position, milliseconds, suffix, doc in _OPERATION_METRICS:
                value = operation.values[position]
                scaled = float(value % FLOAT64_MANTISSA) / 1000.0 if milliseconds else float(value)
                families.add("counter", suffix, doc, operation_labels, scaled)
        for name, value in zip(EVENTS, mount.events, strict=True):
            if name != "congestion_wait":  # node_exporter does not export it
                families.add(
                    "counter",
                    f"event_{name}_total",
                    f"NFS {name.replace('_', ' ')} events.",
                    labels,
                    float(value),
                )
