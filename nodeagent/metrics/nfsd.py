"""nfsd: NFS server statistics from <procfs>/net/rpc/nfsd (parsed as the nfs collector's file, see
:func:`nodeagent.metrics.nfs.parse_rpc_stats`). No file: nfsd is not loaded, the collector has no data.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.nfs import SERVER_V4_OPERATIONS, V2_PROCEDURES, V3_PROCEDURES, parse_rpc_stats
from nodeagent.metrics.registry import Collector, NoDataError, register

# node_exporter leaves out the null procedures and the unused/rare NFSv4 operations.
_UNEXPORTED_V4 = frozenset({"Op0Unused", "Op1Unused", "Op2Future", "PutPubFH", "PutRootFH"})
_REQUESTS = (
    ("proc2", "2", [name for name in V2_PROCEDURES if name != "Null"]),
    ("proc3", "3", [name for name in V3_PROCEDURES if name != "Null"]),
    ("proc4ops", "4", [name for name in SERVER_V4_OPERATIONS if name not in _UNEXPORTED_V4]),
)


@register
class NfsdCollector(Collector):
    name = "nfsd"

    def collect(self) -> Iterable[Metric]:
        try:
            text = read_text(self.paths.proc("net", "rpc", "nfsd"))
        except FileNotFoundError:
            raise NoDataError("no NFS server statistics (nfsd not loaded)") from None
        stats, skipped = parse_rpc_stats(text, server=True)
        self.report(skipped)
        rc, io, net, rpc = stats["rc"], stats["io"], stats["net"], stats["rpc"]
        packets = counter("node_nfsd_packets_total", "NFS server network packets, by transport.")
        add_sample(packets, {"proto": "udp"}, float(net["udp_count"]))
        add_sample(packets, {"proto": "tcp"}, float(net["tcp_count"]))
        errors = counter("node_nfsd_rpc_errors_total", "NFS server RPCs rejected, by reason.")
        for reason, key in (("fmt", "bad_fmt"), ("auth", "bad_auth"), ("cInt", "bad_client")):
            add_sample(errors, {"error": reason}, float(rpc[key]))
        requests = counter(
            "node_nfsd_requests_total", "NFS server requests, by protocol version and procedure."
        )
        for label, proto, methods in _REQUESTS:
            for method in methods:
                add_sample(requests, {"proto": proto, "method": method}, float(stats[label][method]))
        add_sample(
            requests, {"proto": "4", "method": "WdelegGetattr"}, float(stats["wdeleg_getattr"]["value"])
        )

        def one(name: str, doc: str, value: int) -> Metric:
            return single(counter(name, doc), float(value))

        return [
            one("node_nfsd_reply_cache_hits_total", "Reply cache hits (a client retransmitted).", rc["hits"]),
            one(
                "node_nfsd_reply_cache_misses_total",
                "Reply cache misses of cacheable requests.",
                rc["misses"],
            ),
            one(
                "node_nfsd_reply_cache_nocache_total", "Requests that bypass the reply cache.", rc["nocache"]
            ),
            one("node_nfsd_file_handles_stale_total", "Stale file handles.", stats["fh"]["stale"]),
            one("node_nfsd_disk_bytes_read_total", "Bytes read from disk by the NFS server.", io["read"]),
            one(
                "node_nfsd_disk_bytes_written_total", "Bytes written to disk by the NFS server.", io["write"]
            ),
            single(
                gauge("node_nfsd_server_threads", "nfsd kernel threads running."),
                float(stats["th"]["threads"]),
            ),
            single(
                gauge("node_nfsd_read_ahead_cache_size_blocks", "Size of the read-ahead cache, in blocks."),
                float(stats["ra"]["cache_size"]),
            ),
            one(
                "node_nfsd_read_ahead_cache_not_found_total",
                "Read-ahead cache misses.",
                stats["ra"]["not_found"],
            ),
            packets,
            one(
                "node_nfsd_connections_total",
                "TCP connections accepted by the NFS server.",
                net["tcp_connect"],
            ),
            errors,
            one("node_nfsd_server_rpcs_total", "RPCs received by the NFS server.", rpc["rpc_count"]),
            requests,
        ]
