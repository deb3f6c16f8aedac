"""sockstat collector: /proc/net/sockstat and sockstat6."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.sockstat import parse_sockstat, sockstat_samples
from tests.metrics.conftest import Scraped, write_tree


def test_sockstat_parse_and_mem_bytes() -> None:
    stat, skipped = parse_sockstat(
        "sockets: used 5\nTCP: inuse 4 orphan 0 mem 3 weird 9\nUDP: inuse\n"
        "RAW: inuse x\nFRAG: inuse 0 memory 0\n"
    )
    assert stat.used == 5
    assert stat.protocols["TCP"] == {"inuse": 4, "orphan": 0, "mem": 3, "weird": 9}
    assert set(stat.protocols) == {"TCP", "FRAG"}
    assert len(skipped) == 2
    samples = {suffix: value for suffix, _, value in sockstat_samples(stat, ipv6=False, page_size=4096)}
    assert samples == {
        "sockets_used": 5,
        "TCP_inuse": 4,
        "TCP_orphan": 0,
        "TCP_mem": 3,
        "TCP_mem_bytes": 12288,
        "FRAG_inuse": 0,
        "FRAG_memory": 0,
    }


def test_sockstat_files_are_each_optional(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("sockstat").ok
    write_tree(tmp_path, {"proc/net/sockstat6": "TCP6: inuse 17\n"})
    result = scrape("sockstat")
    lines = result.lines
    assert result.ok
    assert "node_sockstat_TCP6_inuse 17" in lines
