"""nfs: NFS client RPC statistics from <procfs>/net/rpc/nfs.

The file (and the server's <procfs>/net/rpc/nfsd, read by the nfsd collector with the same parser)
holds one line per category: a label, then unsigned counters. The ``procN`` lines start with the
number of counters that follow; each counter is one NFS procedure, named as node_exporter names it
(the ``method`` label). Every counter is exported, 0 where its line is absent; a line that does not
parse or has the wrong shape is skipped and reported, the rest is still exported. No file: the NFS
client module is not loaded, the collector has no data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_uints
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# Procedure names by position after the count, per protocol version.
V2_PROCEDURES = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Root",
    "Lookup",
    "ReadLink",
    "Read",
    "WrCache",
    "Write",
    "Create",
    "Remove",
    "Rename",
    "Link",
    "SymLink",
    "MkDir",
    "RmDir",
    "ReadDir",
    "FsStat",
]
V3_PROCEDURES = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
]
CLIENT_V4_PROCEDURES = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
]
# The server's NFSv4 operations (proc4ops); older kernels lack the last one.
SERVER_V4_OPERATIONS = [
    "Op0Unused",
    "Op1Unused",
    "Op2Future",
    "Access",
    "Close",
    "Commit",
    "Create",
    "DelegPurge",
    "DelegReturn",
    "GetAttr",
    "GetFH",
    "Link",
    "Lock",
    "Lockt",
    "Locku",
    "Lookup",
    "LookupRoot",
    "Nverify",
    "Open",
    "OpenAttr",
    "OpenConfirm",
    "OpenDgrd",
    "PutFH",
    "PutPubFH",
    "PutRootFH",
    "Read",
    "ReadDir",
    "ReadLink",
    "Remove",
    "Rename",
    "Renew",
    "RestoreFH",
    "SaveFH",
    "SecInfo",
    "SetAttr",
    "SetClientID",
    "SetClientIDConfirm",
    "Verify",
    "Write",
    "RelLockOwner",
]


def _counted(values: list[int], minimum: int, exact: int | None = None) -> list[int] | None:
    """The counters after a ``procN`` line's leading count, or None when the count disagrees with the
    line or is below ``minimum`` (or is not ``exact``)."""
    count = values[0]
    if count != len(values) - 1 or count < minimum or (exact is not None and count != exact):
        return None
    return values[1:]


def _named(names: Sequence[str], values: list[int]) -> dict[str, int]:
    """Counters by procedure name; names beyond the values (an older kernel) are 0."""
    return {name: values[i] if i < len(values) else 0 for i, name in enumerate(names)}


# label -> (accepted shape, names): a shape is a fixed length or a (minimum count, exact count) for
# procN lines. Client and server files share net, proc2 and proc3.
_CLIENT_LINES: dict[str, tuple[int | tuple[int, int | None], Sequence[str]]] = {
    "net": (4, ("net_count", "udp_count", "tcp_count", "tcp_connect")),
    "rpc": (3, ("rpc_count", "retransmissions", "auth_refreshes")),
    "proc2": ((18, None), V2_PROCEDURES),
    "proc3": ((22, None), V3_PROCEDURES),
    "proc4": ((0, None), CLIENT_V4_PROCEDURES),
}
_SERVER_LINES: dict[str, tuple[int | tuple[int, int | None], Sequence[str]]] = {
    "rc": (3, ("hits", "misses", "nocache")),
    "fh": (5, ("stale", "total_lookups", "anon_lookups", "dir_nocache", "nodir_nocache")),
    "io": (2, ("read", "write")),
    "th": (2, ("threads", "fullcnt")),
    "ra": (12, ("cache_size", *(f"histogram{i}" for i in range(10)), "not_found")),
    "net": _CLIENT_LINES["net"],
    "rpc": (5, ("rpc_count", "bad_count", "bad_fmt", "bad_auth", "bad_client")),
    "proc2": _CLIENT_LINES["proc2"],
    "proc3": _CLIENT_LINES["proc3"],
    "proc4": ((2, 2), ("Null", "Compound")),
    "proc4ops": ((39, None), SERVER_V4_OPERATIONS),
    "wdeleg_getattr": (0, ("value",)),  # any length: the first counter
}


def parse_rpc_stats(text: str, server: bool = False) -> tuple[dict[str, dict[str, int]], list[Skip]]:
    """label -> counter name -> value for every category of the client (or ``server``) file, each
    category present with all its counters (0 where its line is absent)."""
    lines = _SERVER_LINES if server else _CLIENT_LINES
    stats = {label: dict.fromkeys(names, 0) for label, (_, names) in lines.items()}
    skipped: list[Skip] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            skipped.append(Skip("nfs rpc stats: line without values", line))
            continue
        label = parts[0]
        known = lines.get(label)
        if known is None:
            skipped.append(Skip("nfs rpc stats: unknown line", label))
            continue
        if label == "th":  # the thread histogram after the first two counters is obsolete
            if len(parts) < 3:
                skipped.append(Skip("nfs rpc stats: malformed line", line))
                continue
            parts = parts[:3]
        try:
            values = parse_uints(parts[1:])
        except ValueError:
            skipped.append(Skip("nfs rpc stats: non-numeric counter", line))
            continue
        shape, names = known
        counters: list[int] | None
        if isinstance(shape, tuple):
            counters = _counted(values, *shape)
        elif shape == 0:
            counters = values[:1]
        else:
            counters = values if len(values) == shape else None
        if counters is None:
            skipped.append(Skip("nfs rpc stats: wrong number of counters", line))
            continue
        stats[label] = _named(names, counters)
    return stats, skipped


@register
class NfsCollector(Collector):
    name = "nfs"

    def collect(self) -> Iterable[Metric]:
        try:
            text = read_text(self.paths.proc("net", "rpc", "nfs"))
        except FileNotFoundError:
            raise NoDataError("no NFS client statistics (nfs module not loaded)") from None
        stats, skipped = parse_rpc_stats(text)
        self.report(skipped)
        net, rpc = stats["net"], stats["rpc"]
        packets = counter("node_nfs_packets_total", "NFS network packets sent and received, by transport.")
        add_sample(packets, {"protocol": "udp"}, float(net["udp_count"]))
        add_sample(packets, {"protocol": "tcp"}, float(net["tcp_count"]))
        requests = counter(
            "node_nfs_requests_total", "NFS procedures called, by protocol version and procedure."
        )
        for label, proto in (("proc2", "2"), ("proc3", "3"), ("proc4", "4")):
            for method, value in stats[label].items():
                add_sample(requests, {"proto": proto, "method": method}, float(value))
        return [
            packets,
            single(
                counter("node_nfs_connections_total", "NFS TCP connections made."), float(net["tcp_connect"])
            ),
            single(counter("node_nfs_rpcs_total", "RPCs sent by the NFS client."), float(rpc["rpc_count"])),
            single(
                counter("node_nfs_rpc_retransmissions_total", "RPC retransmissions of the NFS client."),
                float(rpc["retransmissions"]),
            ),
            single(
                counter("node_nfs_rpc_authentication_refreshes_total", "RPC credential refreshes."),
                float(rpc["auth_refreshes"]),
            ),
            requests,
        ]
