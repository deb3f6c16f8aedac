"""xfrm collector: /proc/net/xfrm_stat counters, all 28 always present."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.xfrm import XFRM_COUNTERS, metric_name, parse_xfrm_stat
from tests.metrics.conftest import Scraped, write_tree


def test_metric_names() -> None:
    assert metric_name("XfrmInStateProtoError") == "node_xfrm_in_state_proto_error_packets_total"
    assert metric_name("XfrmFwdHdrError") == "node_xfrm_fwd_hdr_error_packets_total"
    assert metric_name("XfrmInNoPols") == "node_xfrm_in_no_pols_packets_total"


def test_malformed_lines_skipped_missing_counters_zero(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(
        tmp_path,
        {
            "proc/net/xfrm_stat": (
                "XfrmInError 3\nXfrmInHdrError\nXfrmOutError x\nXfrmFuture 9\nXfrmAcquireError 5\n"
            )
        },
    )
    before = _parse_errors.count("xfrm")
    result = scrape("xfrm")
    assert result.ok
    assert len(result.lines) == len(XFRM_COUNTERS) == 28
    assert "node_xfrm_in_error_packets_total 3" in result.lines
    assert "node_xfrm_acquire_error_packets_total 5" in result.lines
    assert "node_xfrm_out_error_packets_total 0" in result.lines
    assert _parse_errors.count("xfrm") == before + 2


def test_absent_file_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/dev": ""})
    result = scrape("xfrm")
    assert not result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    values, _skipped = parse_xfrm_stat(text)
    assert set(values) <= {name for name, _ in XFRM_COUNTERS}
