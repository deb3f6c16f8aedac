"""Issue 11's done-when scenario, shortened: Loki down while a CRI file is written at 2 MB/s and rotated
kubelet-style at 10 MiB keeping 5 files (see tests/logs/outage.py; ``benchmarks/logs-outage`` runs the
five minutes).

With the disk buffer every line arrives once Loki is back. Without it, the agent stops reading once its
memory buffer is full, holds the rotated files open, and has to let go of those deleted for longer than
``deleted_file_timeout`` (shortened here to 5 s so that 40 s of outage show it): the loss is exactly
what those files still held unread, counted in ``nodeagent_logs_bytes_given_up_total``."""

from __future__ import annotations

from pathlib import Path

from tests.logs.outage import run_outage, total

SECONDS = 40  # 80 MB written: well beyond the 50 MiB the rotation keeps and the 8 MiB memory buffer


def test_with_the_disk_buffer_every_line_arrives(tmp_path: Path) -> None:
    result = run_outage(tmp_path, seconds=SECONDS, disk_buffer=True, deleted_file_timeout="5s")
    assert result.deleted_lines > 0, "the rotation deleted nothing: the scenario proves nothing"
    assert not result.missing, f"{len(result.missing)} lines lost, e.g. {sorted(result.missing)[:3]}"
    assert result.delivered_unique == result.written_lines
    assert result.duplicates == 0
    assert total(result.metrics, "nodeagent_logs_bytes_given_up_total") == 0
    assert total(result.metrics, "nodeagent_logs_records_dropped_total") == 0
    assert total(result.metrics, "nodeagent_logs_disk_buffer_records") == 0
    assert total(result.metrics, "nodeagent_logs_bytes_read_total") == result.written_bytes


def test_without_it_the_loss_is_what_rotation_deleted_and_is_counted(tmp_path: Path) -> None:
    result = run_outage(tmp_path, seconds=SECONDS, disk_buffer=False, deleted_file_timeout="5s")
    given_up = total(result.metrics, "nodeagent_logs_bytes_given_up_total")
    read = total(result.metrics, "nodeagent_logs_bytes_read_total")
    assert result.missing, "nothing lost without the disk buffer: the scenario proves nothing"
    deleted = {n for lo, hi in result.deleted for n in range(lo, hi)}
    assert result.missing <= deleted  # only deleted files lose lines
    assert read + given_up == result.written_bytes  # every byte was read or counted as given up
    # A line the give-up cut in two arrives truncated (and counts as missing here): at most one per file.
    line_bytes = result.written_bytes // result.written_lines
    assert 0 <= result.missing_bytes - given_up < line_bytes * max(1, result.rotations)
    assert result.duplicates == 0
