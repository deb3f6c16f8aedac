"""tcpstat collector: TCP sockets per state over INET_DIAG, as upstream counts them."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.tcpstat import RX_QUEUED, TX_QUEUED, count_states
from tests.metrics.netns import run_in_netns


def _diag(state: int, rqueue: int, wqueue: int) -> bytes:
    return struct.pack("=BBBB48xIIIII", 2, state, 0, 0, 0, rqueue, wqueue, 0, 0)


def test_counts_like_upstream() -> None:
    """upstream's unit test: an established socket with 11/21 queued, a listener with 0/0."""
    counts, skipped = count_states([_diag(1, 11, 21), _diag(10, 0, 0), b"short"])
    assert dict(counts) == {1: 1, 10: 1, RX_QUEUED: 11, TX_QUEUED: 21}
    assert len(skipped) == 1
    counts, _ = count_states([])
    assert not counts  # no socket: no sample at all, as upstream


def test_live_sockets_in_a_namespace() -> None:
    """In a fresh namespace: one listener (backlog 5), two accepted connections, 100 unread bytes."""
    script = """
import socket
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.host.files import Paths
server = socket.create_server(("127.0.0.1", 0), backlog=5)
clients = [socket.create_connection(server.getsockname()) for _ in range(2)]
accepted = [server.accept()[0] for _ in clients]
clients[0].sendall(b"x" * 100)
import time
time.sleep(0.2)
print(render_text(run_collectors(build_collectors(["tcpstat"], Paths(procfs="/nonexistent"), {}))))
"""
    lines = run_in_netns([], script).splitlines()
    assert 'node_tcp_connection_states{state="listen"} 1' in lines
    assert 'node_tcp_connection_states{state="established"} 4' in lines
    assert 'node_tcp_connection_states{state="rx_queued_bytes"} 100' in lines
    assert 'node_tcp_connection_states{state="tx_queued_bytes"} 5' in lines  # a listener's backlog


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=5))
def test_counter_never_raises(bodies: list[bytes]) -> None:
    _counts, skipped = count_states(bodies)
    assert len(skipped) <= len(bodies)
