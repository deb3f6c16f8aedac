"""os collector: os-release parsing, fallback and re-reading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import os as os_collector
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.registry import Paths, build_collectors
from tests.metrics.conftest import Scraped, write_tree


def test_os_release_parsing() -> None:
    text = (
        '# comment\nNAME="Foo \\"Linux\\""\nID=foo\nID_LIKE=\'bar baz\'\nVERSION_ID="1.2.3"\n'
        'BROKEN LINE\nPRETTY_NAME="unterminated\nexport VARIANT=server\nEMPTY=\n'
    )
    env, skipped = os_collector.parse_os_release(text)
    assert len(skipped) == 2  # BROKEN LINE, the unterminated quote
    assert env == {
        "NAME": 'Foo "Linux"',
        "ID": "foo",
        "ID_LIKE": "bar baz",
        "VERSION_ID": "1.2.3",
        "VARIANT": "server",
        "EMPTY": "",
    }
    assert os_collector.os_version("1.2.3") == 1.2
    assert os_collector.os_version("rolling") == 0.0
    assert os_collector.support_end("2028-03-15") == 1836691200.0  # midnight UTC
    assert os_collector.support_end("soon") is None


def test_os_falls_back_to_usr_lib_and_rereads_on_change(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(
        tmp_path,
        {"usr/lib/os-release": 'NAME="Rolling"\nID=rolling\nVERSION_ID=rolling\nSUPPORT_END=2028-03-15\n'},
    )
    paths = Paths(rootfs=tmp_path)
    collector = build_collectors(["os"], paths, {})[0]
    text = render_text(collector.collect())
    assert 'name="Rolling"' in text
    assert "node_os_version" not in text  # no numeric version: no series rather than 0
    assert "node_os_support_end_timestamp_seconds 1.8366912e+09" in text
    write_tree(tmp_path, {"etc/os-release": 'NAME="Other"\nID=other\nVERSION_ID="7"\n'})
    text = render_text(collector.collect())
    assert 'name="Other"' in text and 'node_os_version{id="other",id_like="",name="Other"} 7' in text
