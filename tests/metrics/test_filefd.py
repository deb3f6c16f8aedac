"""filefd collector: /proc/sys/fs/file-nr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.filefd import parse_file_nr
from tests.metrics.conftest import Scraped, write_tree


def test_filefd_parses_and_reports_bad_content(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert parse_file_nr("1024\t0\t1631329\n") == ((1024.0, 1631329.0), [])
    values, skipped = parse_file_nr("1024 0")
    assert values is None and len(skipped) == 1
    write_tree(tmp_path, {"proc/sys/fs/file-nr": "garbage\n"})
    result = scrape("filefd")
    lines, ok = result.lines, result.ok
    assert not ok and lines == []
