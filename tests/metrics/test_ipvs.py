"""ipvs collector: /proc/net/ip_vs_stats totals and /proc/net/ip_vs backends, label subsets as upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError
from nodeagent.metrics import _parse_errors
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.ipvs import backend_labels, parse_ipvs_backends, parse_ipvs_stats
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.scrape import run_collectors
from tests.conftest import NODE_EXPORTER_FIXTURE, require_shared
from tests.metrics.conftest import Scraped, tree_paths, write_tree

STATS = """\
   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
 16AA370 E33656E5        0     51D8C8883AB3                0

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
       4    1FB3C        0          1282A8F                0
"""

BACKENDS = """\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C0A80016:0CEA wlc
  -> C0A85216:0CEA      Tunnel  100    248        2
  -> C0A85318:0CEA      Tunnel  100    248        zz
UDP  [2620:0000:0000:0000:0000:0000:0000:0001]:0035 rr
  -> [2620:0000:0000:0000:0000:0000:0000:0002]:0035      Masq  1    0        3
TCP  nothex:0CEA wlc
  -> C0A85216:0CEA      Tunnel  100    1        1
FWM  10001000 wlc
  -> C0A8321A:0CEA      Tunnel  20     64         1
  -> short
"""


def test_stats_totals() -> None:
    assert parse_ipvs_stats(STATS) == (0x16AA370, 0xE33656E5, 0, 0x51D8C8883AB3, 0)
    for bad in ("", "a\nb\n", "a\nb\n1 2 3\n", "a\nb\n1 2 3 4 zz\n"):
        with pytest.raises(ValueError):
            parse_ipvs_stats(bad)


def test_backends_with_their_service() -> None:
    backends, skipped = parse_ipvs_backends(BACKENDS.splitlines())
    rows = [
        (b.local_address, b.local_port, b.remote_address, b.proto, b.local_mark, b.active) for b in backends
    ]
    assert rows == [
        ("192.168.0.22", "3306", "192.168.82.22", "TCP", "", 248),
        ("2620::1", "53", "2620::2", "UDP", "", 0),
        ("", "0", "192.168.50.26", "FWM", "10001000", 64),
    ]
    # the bad number, the bad service and its backend (it has no valid service above it) are left out
    assert len(skipped) == 2


def test_backend_labels_option() -> None:
    assert backend_labels("") == ()
    assert backend_labels("local_port,local_address") == ("local_address", "local_port")
    with pytest.raises(ValueError, match='unknown IPVS backend labels: "bad_label, invalid_label"'):
        backend_labels("invalid_label,bad_label")
    with pytest.raises(ConfigError):
        build_collectors(["ipvs"], tree_paths(Path("/nonexistent")), {"collector.ipvs.backend-labels": "x"})


def _fixture_output(labels: str | None) -> str:
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    settings_ = {} if labels is None else {"collector.ipvs.backend-labels": labels}
    paths = tree_paths(fixture)
    text = render_text(run_collectors(build_collectors(["ipvs"], paths, settings_)))
    return "".join(
        line + "\n"
        for line in text.splitlines()
        if line.startswith("node_ipvs") or line.startswith("# TYPE node_ipvs")
    )


@pytest.mark.parametrize(
    ("labels", "expected_file"),
    [
        (None, "ip_vs_result.txt"),
        ("", "ip_vs_result_lbs_none.txt"),
        ("local_port", "ip_vs_result_lbs_local_port.txt"),
        ("local_address,local_port", "ip_vs_result_lbs_local_address_local_port.txt"),
    ],
)
def test_label_subsets_match_upstream(labels: str | None, expected_file: str) -> None:
    """Upstream's unit-test expectations for --collector.ipvs.backend-labels, sample for sample."""
    expected = (require_shared(NODE_EXPORTER_FIXTURE) / expected_file).read_text()
    wanted = "".join(line + "\n" for line in expected.splitlines() if line and not line.startswith("# HELP"))
    assert _fixture_output(labels) == wanted


def test_absent_ipvs_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    """Upstream's ErrNoData: success 0, nothing else, no error logged."""
    write_tree(tmp_path, {"proc/net/dev": ""})
    result = scrape("ipvs")
    assert not result.ok and result.lines == []


def test_malformed_backends_still_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/net/ip_vs_stats": STATS, "proc/net/ip_vs": BACKENDS})
    before = _parse_errors.count("ipvs")
    result = scrape("ipvs", backend_labels="proto")
    assert result.ok
    assert 'node_ipvs_backend_connections_active{proto="TCP"} 248' in result.lines
    assert 'node_ipvs_backend_weight{proto="FWM"} 20' in result.lines
    assert _parse_errors.count("ipvs") == before + 2


def test_truncated_stats_fail_the_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    """Upstream returns an error for a corrupt ip_vs_stats: success 0, no samples."""
    write_tree(tmp_path, {"proc/net/ip_vs_stats": "   Total\n", "proc/net/ip_vs": BACKENDS})
    result = scrape("ipvs")
    assert not result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_backend_parser_never_raises(text: str) -> None:
    backends, skipped = parse_ipvs_backends(text.splitlines())
    assert isinstance(backends, list) and isinstance(skipped, list)
