"""schedstat collector: /proc/schedstat per-CPU lines."""

from __future__ import annotations

from nodeagent.metrics.schedstat import parse_schedstat


def test_schedstat_skips_malformed_lines_and_converts_nanoseconds() -> None:
    text = (
        "version 15\ntimestamp 1\ncpu0 1 2 3 4 5 6 2045936778163039 343796328169361 4767485306\n"
        "domain0 3 1 2\ncpu1 1 2 x\ncpux 1 2 3 4 5 6 7 8 9\n"
    )
    stats, skipped = parse_schedstat(text)
    assert [(s.cpu, s.running_ns, s.waiting_ns, s.timeslices) for s in stats] == [
        ("0", 2045936778163039, 343796328169361, 4767485306)
    ]
    assert skipped == []  # lines of another shape are not per-CPU lines of this format: ignored
