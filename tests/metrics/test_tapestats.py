"""tapestats collector: <sysfs>/class/scsi_tape/st<N>/stats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.metrics.conftest import Scraped, write_tree


def test_scrape_drives_and_ignored_devices(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "sys/class/scsi_tape/st0/stats/io_ns": "9247011087720\n",
            "sys/class/scsi_tape/st0/stats/read_cnt": "0x10\n",
            "sys/class/scsi_tape/st0/stats/write_cnt": "many\n",  # unparsable: 0, reported
            "sys/class/scsi_tape/nst0/stats/read_cnt": "5\n",  # another view of st0
            "sys/class/scsi_tape/st1/stats/read_cnt": "7\n",
        },
    )
    result = scrape("tapestats")
    assert result.ok
    assert 'node_tape_io_time_seconds_total{device="st0"} 9247.01108772' in result.lines
    assert 'node_tape_reads_completed_total{device="st0"} 16' in result.lines
    assert 'node_tape_writes_completed_total{device="st0"} 0' in result.lines
    assert 'node_tape_reads_completed_total{device="st1"} 7' in result.lines
    assert not any("nst0" in line for line in result.lines)
    ignored = scrape("tapestats", ignored_devices="^st1$")
    assert not any('"st1"' in line for line in ignored.lines)


def test_no_scsi_tape_class_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert not scrape("tapestats").ok
