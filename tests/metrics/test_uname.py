"""uname collector: node_uname_info."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_uname_labels(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/sys/kernel/domainname": "example.org\n"})
    result = scrape("uname")
    lines, ok = result.lines, result.ok
    info = os.uname()
    assert ok and lines == [
        f'node_uname_info{{domainname="example.org",machine="{info.machine}",nodename="{info.nodename}",'
        f'release="{info.release}",sysname="{info.sysname}",version="{info.version}"}} 1'
    ]
    (tmp_path / "proc/sys/kernel/domainname").unlink()
    assert 'domainname="(none)"' in scrape("uname").lines[0]
