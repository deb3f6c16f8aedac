"""tcpstat: TCP sockets per connection state, and their queued bytes, read over NETLINK_SOCK_DIAG
(INET_DIAG dumps of IPv4 and, when <procfs>/net/tcp6 exists, IPv6 sockets), as upstream.

``node_tcp_connection_states{state=...}`` has a sample per state seen, plus ``rx_queued_bytes`` and
``tx_queued_bytes`` (sums of the receive and send queues) as soon as there is a socket; like upstream
the state numbers 12 and 13 would count under those two names (the kernel does not dump them).
"""

from __future__ import annotations

import os
import socket
import struct
from collections import Counter
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

SOCK_DIAG_BY_FAMILY = 20
TCPF_ALL = 0xFFF
RX_QUEUED, TX_QUEUED = 12, 13
STATE_NAMES = {
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
    RX_QUEUED: "rx_queued_bytes",
    TX_QUEUED: "tx_queued_bytes",
}

_REQUEST = struct.Struct("=BBBBI48x")  # inet_diag_req_v2: family, protocol, ext, pad, states, sockid
# inet_diag_msg: family, state, timer, retrans, sockid (48 bytes), expires, rqueue, wqueue, uid, inode
_MESSAGE = struct.Struct("=BBBB48xIIIII")


def count_states(bodies: Iterable[bytes]) -> tuple[Counter[int], list[Skip]]:
    """State number -> sockets, with RX_QUEUED / TX_QUEUED holding the summed queue bytes."""
    counts: Counter[int] = Counter()
    skipped: list[Skip] = []
    for body in bodies:
        if len(body) < _MESSAGE.size:
            skipped.append(Skip("inet_diag message too short", len(body)))
            continue
        _family, state, _timer, _retrans, _expires, rqueue, wqueue, _uid, _inode = _MESSAGE.unpack_from(body)
        counts[TX_QUEUED] += wqueue
        counts[RX_QUEUED] += rqueue
        counts[state] += 1
    return counts, skipped


def dump_tcp_sockets(family: int, timeout: float = 5.0) -> list[bytes]:
    """inet_diag_msg bodies of every TCP socket of ``family`` in the current network namespace."""
    request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, TCPF_ALL)
    return _netlink.dump(
        _netlink.NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, request, SOCK_DIAG_BY_FAMILY, timeout
    )


@register
class TcpstatCollector(Collector):
    name = "tcpstat"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        bodies = dump_tcp_sockets(socket.AF_INET)
        if os.path.exists(self.paths.proc("net", "tcp6")):
            bodies += dump_tcp_sockets(socket.AF_INET6)
        counts, skipped = count_states(bodies)
        self.report(skipped)
        family = gauge("node_tcp_connection_states", "TCP sockets per state; queued bytes summed.")
        for state, value in counts.items():
            add_sample(family, {"state": STATE_NAMES.get(state, "unknown")}, float(value))
        yield family
