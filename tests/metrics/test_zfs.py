"""zfs collector: kstats below <procfs>/spl/kstat/zfs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.zfs import parse_kstat, parse_objset, parse_pool_io
from tests.metrics.conftest import Scraped, write_tree

HEADER = "13 1 0x01 86 4128 4056151489 5519398399069\nname                            type data\n"
ARCSTATS = HEADER + "hits 4 8772612\nc_min 4 33554432\nsigned 3 -5\nchar 0 x\nbad 4 12x\narc-meta 4 7\n"
IO = (
    "12 3 0x00 1 80 2225326830828 32953476980628\n"
    "nread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n"
    "1884160 3206144 22 132 7155162 104112268 79210489694949 24168078 104112268 79210489694949 0 0\n"
)
OBJSET = HEADER + "dataset_name 7 pool3/dataset with  space\nwrites 4 4\nnread 4 28\n"


def test_kstat_rows_of_integer_types_and_skips() -> None:
    rows, started, skipped = parse_kstat(ARCSTATS)
    assert started
    assert rows == [("hits", 8772612), ("c_min", 33554432), ("signed", -5), ("arc-meta", 7)]
    assert [skip.detail for skip in skipped] == ["bad 4 12x"]
    assert parse_kstat("hits 4 1\n") == ([], False, [])  # no header: nothing


def test_pool_io_and_objset() -> None:
    rows, skipped = parse_pool_io(IO)
    assert not skipped and rows[0][:2] == [("nread", 1884160), ("nwritten", 3206144)]
    rows, skipped = parse_pool_io(IO.rsplit(" 0 0", 1)[0] + "\n")  # truncated row
    assert rows == [] and len(skipped) == 1
    objset, started, skipped = parse_objset(OBJSET)
    assert started and not skipped
    assert objset == [("pool3/dataset with  space", "writes", 4), ("pool3/dataset with  space", "nread", 28)]


def test_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "proc/spl/kstat/zfs"
    write_tree(
        tmp_path,
        {
            f"{base}/arcstats": ARCSTATS + "bad{name 4 1\n",
            f"{base}/pool1/io": IO,
            f"{base}/pool1/objset-1": OBJSET,
            f"{base}/pool1/state": "ONLINE\n",
            f"{base}/pool2/state": "",
        },
    )
    result = scrape("zfs")
    assert result.ok
    lines = result.lines
    assert "node_zfs_arc_hits 8.772612e+06" in lines
    assert "node_zfs_arc_arc_meta 7" in lines
    assert "node_zfs_arc_signed -5" in lines
    assert 'node_zfs_zpool_nread{zpool="pool1"} 1.88416e+06' in lines
    assert 'node_zfs_zpool_dataset_nread{dataset="pool3/dataset with  space",zpool="pool1"} 28' in lines
    assert 'node_zfs_zpool_state{state="online",zpool="pool1"} 1' in lines
    assert 'node_zfs_zpool_state{state="online",zpool="pool2"} 0' in lines
    assert "# TYPE node_zfs_arc_hits untyped" in result.text


def test_no_zfs_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("zfs")
    assert not result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    parse_kstat(HEADER + text)
    parse_pool_io(IO.split("\n")[1] + "\n" + text)
    parse_objset(HEADER + text)
