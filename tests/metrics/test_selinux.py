"""selinux collector: selinuxfs, the process context and /etc/selinux/config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.selinux import parse_enforce, parse_selinux_config
from tests.metrics.conftest import Scraped, write_tree


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("SELINUX=enforcing\nSELINUXTYPE=targeted\n", 1),
        ('# SELINUX=enforcing\n; x\n\n  SELINUX="permissive"  \n', 0),
        ("SELINUX=disabled\n", -1),
        ("SELINUXTYPE=targeted\n", -1),
        ("SELINUX = enforcing\n", -1),  # go-selinux does not trim around '='
    ],
)
def test_config_mode(text: str, mode: int) -> None:
    assert parse_selinux_config(text) == mode


def test_enforce_file() -> None:
    assert parse_enforce(b"1") == 1
    assert parse_enforce(b"0") == 0
    assert parse_enforce(b"1\n") == -1  # Go's Atoi of the whole file
    assert parse_enforce(b"\xff") == -1


def test_selinux_enforcing(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "sys/fs/selinux/enforce": "1",
            "proc/self/attr/current": "system_u:system_r:spc_t:s0\0",
            "etc/selinux/config": "SELINUX=permissive\n",
        },
    )
    result = scrape("selinux")
    assert result.ok
    assert result.lines == [
        "node_selinux_config_mode 0",
        "node_selinux_current_mode 1",
        "node_selinux_enabled 1",
    ]


def test_selinux_disabled(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    (tmp_path / "sys/fs/selinux").mkdir(parents=True)  # the mount point without selinuxfs on it
    result = scrape("selinux")
    assert result.ok and result.lines == ["node_selinux_enabled 0"]
    write_tree(tmp_path, {"sys/fs/selinux/enforce": "0", "proc/self/attr/current": "kernel\0"})
    assert scrape("selinux").lines == ["node_selinux_enabled 0"]


@settings(max_examples=50, deadline=None)
@given(st.text(), st.binary())
def test_selinux_parsers_survive_any_input(text: str, data: bytes) -> None:
    parse_selinux_config(text)
    parse_enforce(data)
