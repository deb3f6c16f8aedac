"""drbd collector: <procfs>/drbd."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.drbd import parse_drbd
from tests.metrics.conftest import Scraped, write_tree

DRBD = (
    "version: 8.4.3 (api:1/proto:86-101)\nsrcversion: 1A9F77B1CA5FF92235C2213\n\n"
    " 1: cs:Connected ro:Primary/Secondary ds:UpToDate/Outdated C r-----\n"
    "    ns:17324442 nr:10961011 dw:28263521 dr:118696670 al:1100 bm:221 lo:1 pe:2 ua:3 ap:4 ep:1 oos:5\n"
    " 2: cs:WFConnection ro:Secondary ds:Diskless/x ns:bad\n"
)


def test_parse_devices_pairs_and_bad_words() -> None:
    samples, skipped = parse_drbd(DRBD)
    assert ("network_sent_bytes_total", "drbd1", {}, 17324442 * 1024) in samples
    assert ("node_role_is_primary", "drbd1", {"node": "remote"}, 0.0) in samples
    assert ("connected", "drbd2", {}, 0.0) in samples
    assert [skip.what for skip in skipped] == [
        "drbd: state without local/remote pair",
        "drbd: unparsable counter",
    ]


def test_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/drbd": DRBD})
    result = scrape("drbd")
    assert result.ok
    assert 'node_drbd_disk_state_is_up_to_date{device="drbd1",node="local"} 1' in result.lines
    assert 'node_drbd_out_of_sync_bytes{device="drbd1"} 5120' in result.lines
    assert not scrape("drbd", root=tmp_path / "nothing").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_drbd(text)
