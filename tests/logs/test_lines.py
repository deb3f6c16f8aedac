"""The line splitter (nodeagent.logs.lines): pure, so its promises are checked on arbitrary bytes cut
into arbitrary chunks."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.lines import LineCounts, LineSplitter
from nodeagent.logs.parsers import ParsedColumns, make_parser

MAX_LINE = 32
NOW = 1_000.0

# Short lines, some longer than MAX_LINE, with invalid UTF-8 and \r now and then.
line_bytes = st.binary(max_size=3 * MAX_LINE).map(lambda b: b.replace(b"\n", b"x"))
files = st.lists(line_bytes, max_size=12).map(lambda lines: b"".join(line + b"\n" for line in lines))


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def feed_all(chunks: list[bytes], fmt: str = "plain") -> tuple[ParsedColumns, LineCounts, LineSplitter]:
    splitter = LineSplitter(make_parser(fmt, None, 1 << 20), MAX_LINE)
    out = ParsedColumns("read-time")
    counts = LineCounts()
    for chunk in chunks:
        splitter.feed(chunk, NOW, out, counts)
    return out, counts, splitter


@settings(max_examples=300, deadline=None)
@given(files, st.lists(st.integers(0, 10_000), max_size=8), st.sampled_from(["plain", "auto", "cri"]))
def test_records_do_not_depend_on_how_the_data_is_chunked(data: bytes, cuts: list[int], fmt: str) -> None:
    whole, whole_counts, _ = feed_all([data], fmt)
    chunked, chunked_counts, splitter = feed_all(split_at(data, cuts), fmt)
    assert chunked.messages == whole.messages
    assert chunked.streams == whole.streams
    assert (chunked_counts.lines, chunked_counts.cut) == (whole_counts.lines, whole_counts.cut)
    assert splitter.settled_offset() == len(data)  # every line ended: nothing held


@settings(max_examples=300, deadline=None)
@given(files, st.lists(st.integers(0, 10_000), max_size=8))
def test_each_line_becomes_one_record_cut_to_max_line(data: bytes, cuts: list[int]) -> None:
    out, counts, _ = feed_all(split_at(data, cuts))
    lines = data.split(b"\n")[:-1]
    expected = [line[:MAX_LINE].removesuffix(b"\r").decode("utf-8", "replace") for line in lines]
    assert out.messages == expected
    assert counts.lines == len(lines)
    assert counts.cut == sum(len(line) > MAX_LINE for line in lines)
    assert out.offsets == sorted(out.offsets) and all(0 < o <= len(data) for o in out.offsets)


def test_an_unfinished_line_waits_for_its_end_or_the_timeout() -> None:
    splitter = LineSplitter(make_parser("plain", None, 1 << 20), MAX_LINE, start=100)
    out, counts = ParsedColumns("t"), LineCounts()
    splitter.feed(b"one\ntw", NOW, out, counts)
    assert out.messages == ["one"] and out.offsets == [104]
    assert splitter.holds_data() and splitter.settled_offset() is None
    splitter.expire(NOW + 1, 5.0, out)  # not yet
    assert out.messages == ["one"]
    splitter.feed(b"o", NOW + 2, out, counts)
    splitter.expire(NOW + 5, 5.0, out)  # 5 s after the line began
    assert out.messages == ["one", "two"] and out.offsets == [104, 107]
    assert splitter.settled_offset() == 107


def test_drain_passes_on_what_is_held() -> None:
    splitter = LineSplitter(make_parser("plain", None, 1 << 20), MAX_LINE)
    out = ParsedColumns("t")
    splitter.feed(b"a\nunfinished", NOW, out, LineCounts())
    splitter.drain(NOW, out)
    assert out.messages == ["a", "unfinished"]
    assert not splitter.holds_data()


def test_a_line_cut_before_its_end_came_reports_what_was_skipped() -> None:
    splitter = LineSplitter(make_parser("plain", None, 1 << 20), MAX_LINE, start=10)
    out, counts = ParsedColumns("t"), LineCounts()
    splitter.feed(b"y" * 40, NOW, out, counts)  # no newline yet, already too long: the head goes
    assert out.messages == ["y" * MAX_LINE] and out.offsets == [10 + MAX_LINE] and counts.skips == []
    splitter.feed(b"y" * 100, NOW, out, counts)
    splitter.feed(b"yy\nnext\n", NOW, out, counts)
    assert counts.skips == [(10 + MAX_LINE, 10 + 143)]  # from the cut point to the end of the line
    assert out.messages == ["y" * MAX_LINE, "next"] and splitter.settled_offset() == 10 + 148


# CRI lines of two streams, partial (P) and full (F), short enough never to be cut.
cri_lines = st.lists(
    st.tuples(st.sampled_from(["stdout", "stderr"]), st.sampled_from("PF"), st.text("abc", max_size=5)),
    max_size=14,
).map(lambda lines: [f"2026-11-30T10:00:00.000000000Z {s} {t} {m}".encode() for s, t, m in lines])


@settings(max_examples=400, deadline=None)
@given(cri_lines, st.integers(0, 14), st.lists(st.integers(0, 10_000), max_size=6))
def test_a_stop_and_restart_with_held_positions_neither_loses_nor_repeats_a_record(
    lines: list[bytes], stop_after: int, cuts: list[int]
) -> None:
    """Stop after any line (everything emitted acknowledged), restart from the last resume offset with
    the held positions: the records of both runs are those of one uninterrupted run."""
    data = b"".join(line + b"\n" for line in lines)
    stop_at = sum(len(line) + 1 for line in lines[:stop_after])

    def splitter(start: int = 0, replay: object = None) -> LineSplitter:
        return LineSplitter(make_parser("cri", None, 1 << 20), 1 << 20, start, replay)  # type: ignore[arg-type]

    def records(out: ParsedColumns) -> list[tuple[str | None, str]]:
        return list(zip(out.streams, out.messages, strict=True))

    whole = ParsedColumns("t")
    one = splitter()
    one.feed(data, NOW, whole, LineCounts())
    one.drain(NOW, whole)

    first = ParsedColumns("t")
    before = splitter()
    before.feed(data[:stop_at], NOW, first, LineCounts())
    resume = first.offsets[-1] if first.offsets else 0
    held = before.held_positions()
    if held is None:  # nothing held: the resume offset is where reading stopped
        assert before.settled_offset() == stop_at
        resume = stop_at
    second = ParsedColumns("t")
    after = splitter(resume, held)
    for chunk in split_at(data[resume:], cuts):
        after.feed(chunk, NOW, second, LineCounts())
    after.drain(NOW, second)
    assert sorted(records(first) + records(second), key=str) == sorted(records(whole), key=str)
