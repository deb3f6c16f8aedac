"""slabinfo collector: /proc/slabinfo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.slabinfo import Slab, parse_slabinfo
from tests.metrics.conftest import Scraped, write_tree

TEXT = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit>"
    " <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
    "tw_sock_TCP   704    864    256   32    2 : tunables    0    0    0 : slabdata     27     27      0\n"
    "kmalloc-8          10    20    8   512    1 : tunables    0    0    0 : slabdata     1     1      0\n"
)


def test_slabinfo_lines_and_malformed_lines(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    bad = (
        "short 1 2 3\n"
        "badnum x 864 256 32 2 : tunables 0 0 0 : slabdata 27 27 0\n"
        "trailing 1 1 1 1 1 : tunables 0 0 0 : slabdata 1 1 0 \n"
    )
    slabs, skipped = parse_slabinfo(TEXT + bad)
    assert slabs == [Slab("tw_sock_TCP", 704, 864, 256, 32, 2), Slab("kmalloc-8", 10, 20, 8, 512, 1)]
    assert len(skipped) == 3
    write_tree(tmp_path, {"proc/slabinfo": TEXT + bad})
    result = scrape("slabinfo", slabs_exclude="^kmalloc")
    assert result.ok
    assert result.lines == [
        'node_slabinfo_active_objects{slab="tw_sock_TCP"} 704',
        'node_slabinfo_object_size_bytes{slab="tw_sock_TCP"} 256',
        'node_slabinfo_objects{slab="tw_sock_TCP"} 864',
        'node_slabinfo_objects_per_slab{slab="tw_sock_TCP"} 32',
        'node_slabinfo_pages_per_slab{slab="tw_sock_TCP"} 2',
    ]


def test_slabinfo_unreadable_fails_the_collector_only(scrape: Callable[..., Scraped]) -> None:
    assert not scrape("slabinfo").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_slabinfo_survives_any_text(text: str) -> None:
    parse_slabinfo(text)
