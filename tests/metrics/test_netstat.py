"""netstat collector: /proc/net/netstat, snmp and snmp6."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.netstat import parse_netstat, parse_snmp6
from tests.metrics.conftest import Scraped, write_tree


def test_netstat_pairs_mismatches_and_snmp6() -> None:
    text = (
        "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\n"
        "IpExt: InOctets\nTcpExt: 5\n"  # prefix mismatch: resynchronise on the next line
        "TcpExt: A B\nTcpExt: 1\n"  # field count mismatch
        "Udp: InErrors\nUdp: 3\n"
    )
    stats, skipped = parse_netstat(text)
    assert stats == {"TcpExt": {"SyncookiesSent": "1", "ListenDrops": "2"}, "Udp": {"InErrors": "3"}}
    assert len(skipped) >= 2
    snmp6 = "Ip6InOctets 460\nIcmp6OutMsgs\t8\nUdpLite6InErrors 0\nbogus line here\nNoSix 1\n"
    assert parse_snmp6(snmp6) == {
        "Ip6": {"InOctets": "460"},
        "Icmp6": {"OutMsgs": "8"},
        "UdpLite6": {"InErrors": "0"},
    }


def test_netstat_collector_fields_option_and_optional_snmp6(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(
        tmp_path,
        {
            "proc/net/netstat": "TcpExt: ListenDrops TCPTimeouts Other\nTcpExt: 1 2 3\n",
            "proc/net/snmp": "Tcp: InErrs MaxConn CurrEstab\nTcp: 4 -1 x\n",
        },
    )
    result = scrape("netstat")
    lines = result.lines
    assert result.ok
    assert "node_netstat_TcpExt_ListenDrops 1" in lines
    assert "node_netstat_Tcp_InErrs 4" in lines
    assert not any("Other" in line or "MaxConn" in line or "CurrEstab" in line for line in lines)
    result = scrape("netstat", fields="^Tcp_MaxConn$")
    lines = result.lines
    assert [line for line in lines if line.startswith("node_netstat")] == ["node_netstat_Tcp_MaxConn -1"]


def test_netstat_missing_file_fails_the_collector(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/netstat": "TcpExt: A\nTcpExt: 1\n"})
    assert not scrape("netstat").ok
