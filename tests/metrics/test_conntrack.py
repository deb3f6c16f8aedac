"""conntrack collector: table usage and per-CPU statistics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import _parse_errors
from tests.metrics.conftest import Scraped, write_tree

CONNTRACK_HEADER = (
    "entries searched found new invalid ignore delete delete_list insert insert_failed drop "
    "early_drop icmp_error expect_new expect_create expect_delete search_restart\n"
)


def test_conntrack_sums_cpus_and_handles_old_kernels(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    stat = (
        CONNTRACK_HEADER
        + "1 0 2 0 3 4 0 0 5 6 7 8 0 0 0 0 9\n"
        + "1 0 2 0 3 4 0 0 5 6 7 8 0 0 0 0\n"  # 16 columns: no search_restart before 2.6.35
        + "1 2 3\n"
    )
    write_tree(
        tmp_path,
        {
            "proc/sys/net/netfilter/nf_conntrack_count": "12\n",
            "proc/sys/net/netfilter/nf_conntrack_max": "262144\n",
            "proc/net/stat/nf_conntrack": stat,
        },
    )
    before = _parse_errors.count("conntrack")
    result = scrape("conntrack")
    lines = result.lines
    assert result.ok
    assert "node_nf_conntrack_entries 12" in lines
    assert "node_nf_conntrack_entries_limit 262144" in lines
    assert "node_nf_conntrack_stat_found 4" in lines
    assert "node_nf_conntrack_stat_ignore 8" in lines
    assert "node_nf_conntrack_stat_early_drop 16" in lines
    assert "node_nf_conntrack_stat_search_restart 9" in lines
    assert _parse_errors.count("conntrack") == before + 1


def test_conntrack_states(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("conntrack").ok  # module not loaded
    netfilter = "proc/sys/net/netfilter"
    write_tree(tmp_path, {f"{netfilter}/nf_conntrack_count": "1\n", f"{netfilter}/nf_conntrack_max": "2\n"})
    result = scrape("conntrack")  # no stat file: entries exposed, collector failed (as upstream)
    assert not result.ok
    assert "node_nf_conntrack_entries 1" in result.lines


def test_conntrack_unparsable_count_is_reported_and_fails_the_collector(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    netfilter = "proc/sys/net/netfilter"
    write_tree(
        tmp_path, {f"{netfilter}/nf_conntrack_count": "lots\n", f"{netfilter}/nf_conntrack_max": "2\n"}
    )
    before = _parse_errors.count("conntrack")
    assert not scrape("conntrack").ok
    assert _parse_errors.count("conntrack") == before + 1
