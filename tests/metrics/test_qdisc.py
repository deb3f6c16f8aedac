"""qdisc collector: root qdisc statistics over rtnetlink, and upstream's JSON fixture mode."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError
from nodeagent.metrics.qdisc import (
    TCA_KIND,
    TCA_STATS,
    TCA_STATS2,
    parse_qdisc_fixture,
    parse_qdisc_message,
)
from nodeagent.metrics.registry import build_collectors
from tests.conftest import require_binary
from tests.metrics.conftest import Scraped, tree_paths, write_tree
from tests.metrics.netns import run_in_netns


def _attr(attr_type: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, attr_type) + payload + b"\0" * ((4 - length % 4) % 4)


def _tcmsg(ifindex: int, parent: int) -> bytes:
    return struct.pack("=BBHIIII", 0, 0, 0, ifindex, 0x10000, parent, 1)


def test_message_stats2_then_legacy_stats() -> None:
    stats2 = _attr(1, struct.pack("=QI", 1000, 10) + b"\0" * 4) + _attr(
        3, struct.pack("=IIIII", 1, 2, 3, 4, 5)
    )
    legacy = struct.pack("=QIIIIIII", 2000, 20, 30, 40, 0, 0, 6, 7)
    body = _tcmsg(2, 0xFFFFFFFF) + _attr(TCA_KIND, b"fq_codel\0") + _attr(TCA_STATS2, stats2)
    qdisc = parse_qdisc_message(body, {2: "eth0"})
    assert qdisc is not None
    assert (qdisc.iface_name, qdisc.parent, qdisc.kind) == ("eth0", 0, "fq_codel")
    assert (qdisc.bytes, qdisc.packets, qdisc.qlen, qdisc.backlog, qdisc.drops, qdisc.requeues) == (
        1000,
        10,
        1,
        2,
        3,
        4,
    )
    # the legacy TCA_STATS after it overrides the fields it carries, requeues stay (as upstream)
    qdisc = parse_qdisc_message(body + _attr(TCA_STATS, legacy), {})
    assert qdisc is not None
    assert (qdisc.iface_name, qdisc.bytes, qdisc.drops, qdisc.overlimits, qdisc.requeues) == (
        "",
        2000,
        30,
        40,
        4,
    )
    # truncated: no message, or attributes cut short
    assert parse_qdisc_message(body[:10], {}) is None
    cut = parse_qdisc_message(body[:-3], {2: "eth0"})
    assert cut is not None and cut.bytes == 0


def test_fixture_mode_filters_and_non_root(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "q/results.json": '[{"IfaceName": "eth0", "Kind": "fq", "bytes": 5},'
            ' {"IfaceName": "eth0", "Parent": 65537, "Kind": "fq"}, {"IfaceName": "wlan0", "Kind": "pfifo"}]'
        },
    )
    result = scrape("qdisc", fixtures=str(tmp_path / "q"))
    assert result.ok
    assert 'node_qdisc_bytes_total{device="eth0",kind="fq"} 5' in result.lines
    assert len([line for line in result.lines if "bytes_total" in line]) == 2  # the child qdisc is left out
    only = scrape("qdisc", fixtures=str(tmp_path / "q"), device_exclude="wlan")
    assert not any("wlan0" in line for line in only.lines)
    with pytest.raises(ConfigError):
        build_collectors(
            ["qdisc"],
            tree_paths(tmp_path),
            {"collector.qdisc.device-include": "a", "collector.qdisc.device-exclude": "b"},
        )


def test_malformed_fixture_fails_the_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    for text in ("{", '{"a": 1}', "[1]", '[{"Bytes": "x"}]'):
        write_tree(tmp_path, {"q/results.json": text})
        assert not scrape("qdisc", fixtures=str(tmp_path / "q")).ok


def test_live_netlink_sees_traffic_on_loopback_in_a_namespace() -> None:
    """A pfifo root qdisc on lo of a fresh namespace counts the datagrams sent to 127.0.0.1 there."""
    require_binary("tc")
    script = """
import socket
from nodeagent.metrics.qdisc import dump_qdiscs
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for _ in range(5):
        s.sendto(b"x" * 100, ("127.0.0.1", 9))
for q in dump_qdiscs():
    print(q.iface_name, q.kind, q.parent, q.packets, q.bytes)
"""
    out = run_in_netns([["tc", "qdisc", "add", "dev", "lo", "root", "pfifo"]], script)
    name, kind, parent, packets, sent = out.split()
    assert (name, kind, parent) == ("lo", "pfifo", "0")
    assert int(packets) >= 5 and int(sent) >= 5 * 100


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_message_parser_never_raises(data: bytes) -> None:
    qdisc = parse_qdisc_message(data, {})
    assert qdisc is None or qdisc.packets >= 0


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_fixture_parser_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_qdisc_fixture(text)
