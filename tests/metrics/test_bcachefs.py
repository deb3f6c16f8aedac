"""bcachefs collector: <sysfs>/fs/bcachefs/<uuid>/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import bcachefs
from tests.metrics.conftest import Scraped, write_tree

FS = "sys/fs/bcachefs/deadbeef-1234-5678-9012-abcdefabcdef"
IO_ERRORS = (
    "IO errors since filesystem creation\n  read: 5\n  checksum: x\nIO errors since 30 y ago\n  read: 9\n"
)


def test_human_bytes_and_tables() -> None:
    assert bcachefs.parse_human_bytes("62.5k") == 64000
    assert bcachefs.parse_human_bytes(" 720 ") == 720
    compression, skipped = bcachefs.parse_compression_stats("header\nlz4 48.9G 71.2G 62.5k\nzstd 1x 2 3\n")
    assert list(compression) == ["lz4"] and len(skipped) == 1
    errors, skipped = bcachefs.parse_errors("a 2 1753593586\nb 11299659571772285102\nc x\n")
    assert errors == {"a": 2, "b": 11299659571772285102} and len(skipped) == 1
    writes, _ = bcachefs.parse_btree_write_stats("   nr size\ninitial: 3298401 100k\n")
    assert writes == {"initial": (3298401, 102400)}


def test_counter_and_device_files() -> None:
    assert bcachefs.parse_counter("since mount: 3\nsince filesystem creation: 1.5k\n") == 1536
    assert bcachefs.parse_counter("since mount: 3\n") == 0
    assert bcachefs.parse_counter("garbage\n") is None
    assert bcachefs.parse_counter("since mount: lots\n") is None
    errors, skipped = bcachefs.parse_io_errors(IO_ERRORS)
    assert errors == {"read": 5} and len(skipped) == 1
    done, _ = bcachefs.parse_io_done("read:\n  btree: 4096\nwrite:\n  user: 8\n  bad\n")
    assert done == {"read": {"btree": 4096}, "write": {"user": 8}}


def test_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            f"{FS}/btree_cache_size": "1.5M\n",
            f"{FS}/counters/bucket-alloc": "since mount: 1\nsince filesystem creation: 7\n",
            f"{FS}/counters/errors": "since filesystem creation: 7\n",  # would clash with errors_total
            f"{FS}/counters/broken": "nothing here\n",
            f"{FS}/dev-0/label": "ssd.ssd1\n",
            f"{FS}/dev-0/state": "rw\n",
            f"{FS}/dev-0/nbuckets": "nope\n",
            f"{FS}/dev-0/io_errors": IO_ERRORS,
        },
    )
    result = scrape("bcachefs")
    assert result.ok
    uuid = 'uuid="deadbeef-1234-5678-9012-abcdefabcdef"'
    assert f"node_bcachefs_btree_cache_size_bytes{{{uuid}}} 1.572864e+06" in result.lines
    assert f"node_bcachefs_bucket_alloc_total{{{uuid}}} 7" in result.lines
    assert f'node_bcachefs_device_info{{device="0",label="ssd.ssd1",state="rw",{uuid}}} 1' in result.lines
    assert f'node_bcachefs_device_buckets{{device="0",{uuid}}} 0' in result.lines
    assert f'node_bcachefs_device_io_errors_total{{device="0",type="read",{uuid}}} 5' in result.lines
    assert not any(line.startswith("node_bcachefs_errors_total") for line in result.lines)


def test_no_filesystem_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("bcachefs").ok
    write_tree(tmp_path, {"sys/fs/bcachefs/.keep": ""})
    assert not scrape("bcachefs").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    bcachefs.parse_compression_stats(text)
    bcachefs.parse_errors(text)
    bcachefs.parse_btree_write_stats(text)
    bcachefs.parse_counter(text)
    bcachefs.parse_io_done(text)
    bcachefs.parse_io_errors(text)


def test_human_bytes_match_procfs_cases() -> None:
    # prometheus/procfs bcachefs/get_test.go TestParseHumanReadableBytes
    cases = {"542k": 555008, "322M": 337641472, "1.5G": 1610612736, "112k": 114688, "405": 405}
    assert {text: bcachefs.parse_human_bytes(text) for text in cases} == cases
