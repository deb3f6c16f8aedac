"""nfs and nfsd collectors: <procfs>/net/rpc/nfs and nfsd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.nfs import parse_rpc_stats
from tests.metrics.conftest import Scraped, write_tree

CLIENT = (
    "net 70 70 69 45\n"
    "rpc 1218785755 374636 1218815394\n"
    "proc2 18 16 57 74 52 71 73 45 86 0 52 83 61 17 53 50 23 70 82\n"
    "proc3 22 0 1061909262 48906 4077635 117661341 5 29391916 2570425 2993289 590 0 0 7815 15 1130 0 3983 "
    "92385 13332 2 1 23729\n"
    "proc4 5 1 2 3 4 5\n"  # an old kernel: fewer NFSv4 procedures, the rest are 0
)
SERVER = (
    "rc 0 6 18622\nfh 0 0 0 0 0\nio 157286400 72864\nth 8 0 0.000 0.000\n"
    "ra 32 0 0 0 0 0 0 0 0 0 0 0\nnet 972 55 917 55\nrpc 18628 3 1 2 0\n"
    "proc3 22 2 112 0 2719 111 0 0 0 0 0 0 0 0 0 0 0 27 216 0 2 1 0\n"
    "proc4ops 40" + " 0" * 39 + " 9\n"
    "wdeleg_getattr 15\n"
)


def test_client_lines() -> None:
    stats, skipped = parse_rpc_stats(CLIENT)
    assert not skipped
    assert stats["net"]["tcp_connect"] == 45 and stats["rpc"]["retransmissions"] == 374636
    assert stats["proc2"]["WrCache"] == 86 and stats["proc3"]["Commit"] == 23729
    assert stats["proc4"]["Commit"] == 4 and stats["proc4"]["Clone"] == 0


def test_malformed_lines_are_skipped() -> None:
    stats, skipped = parse_rpc_stats(
        "net 1 2 3\n"  # too short
        "rpc 1 x 3\n"  # not a number
        "proc3 30 1 2\n"  # count disagrees
        "proc2 2 1 1\n"  # fewer procedures than NFSv2 has
        "bogus 1\n"
        "\n"
        "proc4 2 7 8\n"
    )
    assert len(skipped) == 6
    assert stats["net"]["udp_count"] == 0 and stats["proc4"]["Read"] == 8


def test_server_lines() -> None:
    stats, skipped = parse_rpc_stats(SERVER, server=True)
    assert not skipped
    assert stats["th"]["threads"] == 8 and stats["ra"]["not_found"] == 0
    assert stats["proc4ops"]["RelLockOwner"] == 9 and stats["wdeleg_getattr"]["value"] == 15
    _, skipped = parse_rpc_stats("th 8\nproc4 3 1 2 3\n", server=True)
    assert len(skipped) == 2


def test_scrapes(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/rpc/nfs": CLIENT, "proc/net/rpc/nfsd": SERVER})
    client = scrape("nfs")
    assert client.ok
    assert 'node_nfs_packets_total{protocol="tcp"} 69' in client.lines
    assert 'node_nfs_requests_total{method="Clone",proto="4"} 0' in client.lines
    server = scrape("nfsd")
    assert server.ok
    assert 'node_nfsd_requests_total{method="RelLockOwner",proto="4"} 9' in server.lines
    assert 'node_nfsd_requests_total{method="WdelegGetattr",proto="4"} 15' in server.lines
    assert 'node_nfsd_requests_total{method="GetAttr",proto="2"} 0' in server.lines
    assert "node_nfsd_server_threads 8" in server.lines
    assert not any('method="Null"' in line or "PutRootFH" in line for line in server.lines)


def test_absent_files_are_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("nfs").ok and not scrape("nfsd").ok


@settings(max_examples=50, deadline=None)
@given(st.text(), st.booleans())
def test_parser_never_raises(text: str, server: bool) -> None:
    parse_rpc_stats(text, server)
