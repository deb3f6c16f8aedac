"""Parsers: CRI, docker json-file, plain, auto, multiline, size cap, and resume offsets."""

from __future__ import annotations

import json
import re
from itertools import accumulate, pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.encoding import normalize_time
from nodeagent.logs.lines import LineCounts, LineSplitter
from nodeagent.logs.parsers import MultilineConfig, Parsed, ParsedColumns, make_parser
from tests.conftest import FIXTURES, require_shared

FLUENT_BIT = FIXTURES / "logs" / "fluent-bit"
T0 = "2026-01-02T03:04:05.123456789Z"


class Feeder:
    """Feeds lines with realistic offsets (each line plus its newline), collecting the records."""

    def __init__(
        self,
        fmt: str = "auto",
        multiline: MultilineConfig | None = None,
        max_record_bytes: int = 1 << 20,
        **kwargs: float,
    ) -> None:
        self.parser = make_parser(fmt, multiline, max_record_bytes, **kwargs)
        self.offset = 0
        self.records: list[Parsed] = []

    def feed(self, line: bytes | str, now: float = 0.0) -> list[Parsed]:
        data = line.encode() if isinstance(line, str) else line
        start, self.offset = self.offset, self.offset + len(data) + 1
        out = self.parser.feed(data, start, self.offset, now)
        self.records += out
        return out

    def flush_all(self) -> list[Parsed]:
        out = self.parser.flush_all()
        self.records += out
        return out


# -- CRI ----------------------------------------------------------------------------------------------


def test_cri_full_line() -> None:
    f = Feeder("cri")
    (record,) = f.feed(f"{T0} stdout F hello world")
    assert record == Parsed(T0, "hello world", "stdout", f.offset)


def test_cri_message_keeps_inner_spaces_and_empty_message() -> None:
    f = Feeder("cri")
    assert f.feed(f"{T0} stderr F  two  spaces ")[0].message == " two  spaces "
    assert f.feed(f"{T0} stdout F ")[0].message == ""
    assert f.feed(f"{T0} stdout F")[0].message == ""


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.123456789Z"),
        ("2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.500000000Z"),  # Go's RFC3339Nano trims zeros
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000000Z"),
        ("2026-01-02T05:04:05.123+02:00", "2026-01-02T03:04:05.123000000Z"),
        ("2026-01-01T23:30:00.000000001-04:30", "2026-01-02T04:00:00.000000001Z"),
        ("2026-01-02t03:04:05.1234567891234z", "2026-01-02T03:04:05.123456789Z"),
    ],
)
def test_cri_time_is_normalised_to_utc_nanoseconds(raw: str, normalized: str) -> None:
    assert normalize_time(raw) == normalized
    assert Feeder("cri").feed(f"{raw} stdout F x")[0].time == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "2026-13-02T03:04:05Z",
        "2026-02-30T03:04:05Z",
        "yesterday",
        "",
        "2026-01-02 03:04:05",
        "2026-01-02T03:04:05.Z",
    ],
)
def test_invalid_times_are_rejected(raw: str) -> None:
    assert normalize_time(raw) is None


def test_cri_partials_are_joined_with_first_piece_time() -> None:
    f = Feeder("cri")
    assert f.feed("2026-01-02T03:04:05.000000001Z stdout P hel") == []
    assert f.feed("2026-01-02T03:04:05.000000002Z stdout P lo ") == []
    (record,) = f.feed("2026-01-02T03:04:05.000000003Z stdout F world")
    assert (record.time, record.message, record.stream) == (
        "2026-01-02T03:04:05.000000001Z",
        "hello world",
        "stdout",
    )
    assert record.resume_offset == f.offset


def test_cri_tag_with_more_flags() -> None:
    f = Feeder("cri")
    assert f.feed(f"{T0} stdout P:x ab") == []
    assert f.feed(f"{T0} stdout F:x:y cd")[0].message == "abcd"


def test_cri_interleaved_streams_and_resume_offsets() -> None:
    f = Feeder("cri")
    assert f.feed(f"{T0} stdout P out-1 ") == []  # held from offset 0
    stdout_start = 0
    (err,) = f.feed(f"{T0} stderr F error line")
    # The stdout piece is still held: resuming after this record must re-read it.
    assert (err.message, err.stream, err.resume_offset) == ("error line", "stderr", stdout_start)
    err_p_start = f.offset
    assert f.feed(f"{T0} stderr P err-2 ") == []
    (out,) = f.feed(f"{T0} stdout F out-2")
    assert (out.message, out.stream, out.resume_offset) == ("out-1 out-2", "stdout", err_p_start)
    (err2,) = f.feed(f"{T0} stderr F done")
    assert (err2.message, err2.resume_offset) == ("err-2 done", f.offset)
    assert f.parser.pending_bytes == 0


def test_cri_multibyte_character_split_between_pieces_survives() -> None:
    data = "grüße".encode()
    f = Feeder("cri")
    f.feed(f"{T0} stdout P ".encode() + data[:3])  # cuts 'ü' in half
    (record,) = f.feed(f"{T0} stdout F ".encode() + data[3:])
    assert record.message == "grüße"


def test_cri_line_that_is_not_cri_is_plain() -> None:
    f = Feeder("cri")
    (record,) = f.feed("not a cri line at all")
    assert record == Parsed(None, "not a cri line at all", None, f.offset)
    assert f.feed(f"{T0} stdboth F x")[0].stream is None
    assert f.feed(f"{T0} stdout X x")[0].stream is None
    assert f.feed("2026-99-99T99:99:99.999999999Z stdout F x")[0].time is None


# -- docker json-file ---------------------------------------------------------------------------------


def _fixture_messages(name: str) -> list[str]:
    f = Feeder("docker")
    for line in require_shared(FLUENT_BIT / name).read_bytes().splitlines():
        f.feed(line)
    f.flush_all()
    return [r.message for r in f.records]


def test_docker_fluent_bit_splitted_line_fixture() -> None:
    expected_file = require_shared(FLUENT_BIT / "dockermode_splitted_line.expected.jsonl")
    expected = [json.loads(line)["log"] for line in expected_file.read_text().splitlines()]
    assert [e.endswith("\n") for e in expected] == [True, True]
    assert _fixture_messages("dockermode_splitted_line.log") == [e[:-1] for e in expected]


def test_docker_fluent_bit_splitted_multiple_lines_fixture() -> None:
    assert _fixture_messages("dockermode_splitted_multiple_lines.log") == [
        "2020-03-24 Multiple lines: ",
        "first bullet point",
        "second bullet point",
        "third bullet point",
        "fourth bullet point",
        "2020-03-24 Single line",
    ]


def test_docker_fields_and_time() -> None:
    f = Feeder("docker")
    (record,) = f.feed('{"log":"hi \\"there\\"\\n","stream":"stderr","time":"2026-01-02T03:04:05.1Z"}')
    assert record == Parsed("2026-01-02T03:04:05.100000000Z", 'hi "there"', "stderr", f.offset)


def test_docker_pieces_join_per_stream() -> None:
    f = Feeder("docker")
    f.feed('{"log":"out-a ","stream":"stdout","time":"2026-01-02T03:04:05Z"}')
    f.feed('{"log":"err\\n","stream":"stderr","time":"2026-01-02T03:04:06Z"}')
    f.feed('{"log":"out-b\\n","stream":"stdout","time":"2026-01-02T03:04:07Z"}')
    assert [(r.stream, r.message, r.time) for r in f.records] == [
        ("stderr", "err", "2026-01-02T03:04:06.000000000Z"),
        ("stdout", "out-a out-b", "2026-01-02T03:04:05.000000000Z"),
    ]
    assert f.records[0].resume_offset == 0  # the stdout piece at 0 was still held


def test_docker_lone_surrogates_are_replaced_and_nul_kept() -> None:
    (record,) = Feeder("docker").feed('{"log":"a\\ud800b\\u0000c\\ud83d\\ude00\\n","stream":"stdout"}')
    assert record.message == "a\ufffdb\x00c\U0001f600"
    record.message.encode("utf-8")  # encodable


@pytest.mark.parametrize("line", ['{"log": 5}', '{"no_log":"x"}', "[1,2]", '{"log":"x"', "{"])
def test_docker_line_that_is_not_docker_json_is_plain(line: str) -> None:
    f = Feeder("docker")
    assert f.feed(line) == [Parsed(None, line, None, f.offset)]


# -- plain and auto -----------------------------------------------------------------------------------


def test_plain_strips_carriage_return_and_replaces_invalid_utf8() -> None:
    f = Feeder("plain")
    assert f.feed(b"windows line\r")[0].message == "windows line"
    assert f.feed(b"bad \xff\xfe bytes\x00nul")[0].message == "bad \ufffd\ufffd bytes\x00nul"
    assert f.feed(f"{T0} stdout F x")[0].message == f"{T0} stdout F x"  # no format sniffing


def test_auto_decides_per_line() -> None:
    f = Feeder("auto")
    f.feed(f"{T0} stdout F cri line")
    f.feed('{"log":"docker line\\n","stream":"stderr"}')
    f.feed("Jan  2 03:04:05 host syslog line")
    f.feed("{not json")
    f.feed("2026 is a year, not a CRI time")
    assert [(r.message, r.stream, r.time) for r in f.records] == [
        ("cri line", "stdout", T0),
        ("docker line", "stderr", None),
        ("Jan  2 03:04:05 host syslog line", None, None),
        ("{not json", None, None),
        ("2026 is a year, not a CRI time", None, None),
    ]


# -- size cap ------------------------------------------------------------------------------------------


def test_oversize_partial_record_is_cut_not_dropped() -> None:
    f = Feeder("cri", max_record_bytes=100)
    pieces = [bytes([65 + i]) * 40 for i in range(6)]  # 240 bytes in 6 pieces
    for piece in pieces[:-1]:
        f.feed(f"{T0} stdout P ".encode() + piece)
    f.feed(f"{T0} stdout F ".encode() + pieces[-1])
    assert [len(r.message.encode()) for r in f.records] == [100, 100, 40]
    assert all(r.truncated for r in f.records)
    assert "".join(r.message for r in f.records).encode() == b"".join(pieces)
    offsets = [r.resume_offset for r in f.records]
    assert offsets == sorted(offsets) and offsets[-1] == f.offset
    # After a cut, the remainder is held from the start of the line it came from.
    assert offsets[0] < f.offset


def test_cut_respects_utf8_characters() -> None:
    f = Feeder("plain", max_record_bytes=20)
    f.feed(("é" * 25).encode())  # 50 bytes, 2 bytes per character
    assert [r.message for r in f.records] == ["é" * 10, "é" * 10, "é" * 5]


def test_record_at_exactly_the_cap_is_whole() -> None:
    f = Feeder("plain", max_record_bytes=64)
    (record,) = f.feed(b"x" * 64)
    assert not record.truncated and len(record.message) == 64


# -- multiline ----------------------------------------------------------------------------------------

JAVA_TRACE = [
    "2026-01-02 03:04:05 ERROR boom",
    "java.lang.RuntimeException: x",
    "\tat a.b(C.java:1)",
    "\tat d.e(F.java:2)",
    "2026-01-02 03:04:06 INFO next",
]


def test_multiline_groups_until_next_start() -> None:
    f = Feeder("plain", MultilineConfig(r"^\d{4}-"))
    offsets = []
    for line in JAVA_TRACE:
        f.feed(line)
        offsets.append(f.offset)
    assert [r.message for r in f.records] == ["\n".join(JAVA_TRACE[:4])]
    # The new group (the INFO line) is held, so resuming starts at its first byte.
    assert f.records[0].resume_offset == offsets[3]
    (last,) = f.flush_all()
    assert (last.message, last.resume_offset) == (JAVA_TRACE[4], f.offset)


def test_multiline_timeout_flushes_idle_group() -> None:
    f = Feeder("plain", MultilineConfig(r"^\S", timeout=2.0))
    f.feed("start", now=100.0)
    f.feed("  more", now=101.0)
    assert f.parser.flush_expired(102.5) == []  # 1.5 s since the last line
    (record,) = f.parser.flush_expired(103.0)
    assert (record.message, record.resume_offset) == ("start\n  more", f.offset)
    assert f.parser.pending_bytes == 0


def test_multiline_is_per_stream_after_cri_joining() -> None:
    f = Feeder("cri", MultilineConfig(r"^\S"))
    f.feed(f"{T0} stdout F Traceback:")
    f.feed(f"{T0} stderr F E1")
    f.feed(f"{T0} stdout P   File ")
    f.feed(f"{T0} stdout F x.py")
    f.feed(f"{T0} stderr F E2")
    f.feed(f"{T0} stdout F Next")
    f.flush_all()
    by_stream = {(r.stream, r.message) for r in f.records}
    assert by_stream == {
        ("stdout", "Traceback:\n  File x.py"),
        ("stderr", "E1"),
        ("stderr", "E2"),
        ("stdout", "Next"),
    }
    offsets = [r.resume_offset for r in f.records]
    assert offsets == sorted(offsets)


def test_multiline_group_over_cap_is_split_at_a_line() -> None:
    f = Feeder("plain", MultilineConfig(r"^S"), max_record_bytes=33)
    for line in ["S" + "a" * 15, " " + "b" * 15, " " + "c" * 15, "S2"]:
        f.feed(line)
    f.flush_all()
    assert [r.message for r in f.records] == ["S" + "a" * 15 + "\n " + "b" * 15, " " + "c" * 15, "S2"]
    assert [r.truncated for r in f.records] == [True, True, False]


def test_continuation_without_a_start_is_not_lost() -> None:
    f = Feeder("plain", MultilineConfig(r"^S"))
    f.feed("  orphan continuation")
    f.feed("S start")
    assert [r.message for r in f.records] == ["  orphan continuation"]


def test_flush_all_order_and_offsets_with_groups_on_two_streams() -> None:
    f = Feeder("cri", MultilineConfig(r"^S"))
    f.feed(f"{T0} stdout F S-out")  # group A at 0
    f.feed(f"{T0} stderr F S-err")  # group B
    f.feed(f"{T0} stdout F  more-out")  # A grows past B
    records = f.flush_all()
    assert [r.message for r in records] == ["S-out\n more-out", "S-err"]
    # A comes first (earliest start); its resume offset must not skip B's lines.
    assert records[0].resume_offset <= records[1].resume_offset == f.offset
    assert records[0].resume_offset < f.offset


# -- partial lines that never finish -------------------------------------------------------------------


def test_partial_line_times_out_and_flush_all_emits_held_pieces() -> None:
    f = Feeder("cri", partial_timeout=5.0)
    f.feed(f"{T0} stdout P never finished", now=10.0)
    assert f.parser.pending_bytes == len("never finished")
    assert f.parser.flush_expired(14.0) == []
    (record,) = f.parser.flush_expired(15.0)
    assert (record.message, record.truncated, record.resume_offset) == ("never finished", True, f.offset)
    f.feed(f"{T0} stderr P held at eof")
    (last,) = f.flush_all()
    assert last.message == "held at eof"


# -- properties ----------------------------------------------------------------------------------------

lines_strategy = st.lists(
    st.binary(max_size=120)
    | st.sampled_from(
        [
            f"{T0} stdout P piece".encode(),
            f"{T0} stderr P piece".encode(),
            f"{T0} stdout F end".encode(),
            b'{"log":"part","stream":"stdout"}',
            b'{"log":"end\\n","stream":"stdout"}',
            b"S start",
            b" cont",
        ]
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=lines_strategy,
    fmt=st.sampled_from(["auto", "cri", "docker", "plain"]),
    multiline=st.booleans(),
    cap=st.sampled_from([16, 50, 1 << 20]),
)
def test_never_raises_and_offsets_are_sane(lines: list[bytes], fmt: str, multiline: bool, cap: int) -> None:
    parser = make_parser(fmt, MultilineConfig(r"^S", 1.0) if multiline else None, cap)
    offset, last_resume, now = 0, 0, 0.0
    for line in lines:
        start, offset = offset, offset + len(line) + 1
        now += 0.5
        for record in parser.feed(line, start, offset, now) + parser.flush_expired(now):
            assert last_resume <= record.resume_offset <= offset
            last_resume = record.resume_offset
            record.message.encode("utf-8")
    for record in parser.flush_all():
        assert last_resume <= record.resume_offset <= offset
        last_resume = record.resume_offset
    assert parser.pending_bytes == 0


# Lines that carry a unique token each, so that "nothing lost" can be checked by token.
event = st.tuples(
    st.sampled_from(["cri", "docker", "plain"]),
    st.sampled_from(["stdout", "stderr"]),
    st.booleans(),
    st.booleans(),
)


def _line(kind: str, stream: str, final: bool, starts: bool, token: int) -> bytes:
    text = ("S" if starts else " ") + f"<{token}>"
    if kind == "cri":
        return f"{T0} {stream} {'F' if final else 'P'} {text}".encode()
    if kind == "docker":
        return json.dumps({"log": text + ("\n" if final else ""), "stream": stream}).encode()
    return text.encode()


def _run(lines: list[bytes], first: int, multiline: bool) -> list[Parsed]:
    parser = make_parser("auto", MultilineConfig(r"^S") if multiline else None, 1 << 20)
    offset = sum(len(line) + 1 for line in lines[:first])
    records = []
    for line in lines[first:]:
        start, offset = offset, offset + len(line) + 1
        records += parser.feed(line, start, offset, 0.0)
    return records + parser.flush_all()


@settings(max_examples=200, deadline=None)
@given(events=st.lists(event, min_size=1, max_size=25), multiline=st.booleans(), data=st.data())
def test_restart_from_any_resume_offset_loses_nothing(
    events: list[tuple[str, str, bool, bool]], multiline: bool, data: st.DataObject
) -> None:
    lines = [_line(*e, token=i) for i, e in enumerate(events)]
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    records = _run(lines, 0, multiline)
    all_tokens = {int(t) for r in records for t in re.findall(r"<(\d+)>", r.message)}
    assert all_tokens == set(range(len(lines)))  # an uninterrupted run keeps every line
    if not records:
        return
    # Deliver records[:k + 1], "crash", and restart reading at records[k].resume_offset.
    k = data.draw(st.integers(0, len(records) - 1))
    resume = records[k].resume_offset
    assert resume == offset or resume in starts  # always a line boundary
    first = starts.index(resume) if resume in starts else len(lines)
    again = _run(lines, first, multiline)
    delivered = {int(t) for r in records[: k + 1] + again for t in re.findall(r"<(\d+)>", r.message)}
    assert delivered == all_tokens


# Mostly kubelet's usual form, so runs of such lines meet the odd ones (pieces, bad times, other tags).
_SECONDS = st.sampled_from(
    ["2026-01-02T03:04:05"] * 4
    + ["2026-01-02T03:04:06", "2026-02-30T03:04:05", "2026-01-02 03:04:05", "2026-01-02T03:04:6x"]
)
_FRACTIONS = st.sampled_from([".123456789Z"] * 5 + [".123Z", ".12345678xZ", ".123456789+02:00", ".123456789"])
_TAGS = st.sampled_from(["F"] * 5 + ["P", "P", "F:x", "X", ""])
_WORDS = st.sampled_from(
    [
        b"ok",
        b'quote"d',
        b"back\\slash",
        b"tab\t",
        "\u00e9t\u00e9".encode(),
        b"\xff",
        b"\xe2\x82",
        b"\r",
        b"\x00",
        b"x" * 70,
        b"{",
        b" ",
    ]
)


@st.composite
def cri_ish_lines(draw: st.DrawFn) -> bytes:
    message = b" ".join(draw(st.lists(_WORDS, max_size=4)))
    if draw(st.booleans()):
        stream = draw(st.sampled_from(["stdout", "stdout", "stderr", "stdin"]))
        head = f"{draw(_SECONDS)}{draw(_FRACTIONS)} {stream}"
        tag = draw(_TAGS)
        return f"{head} {tag}".encode() + (b" " + message if draw(st.integers(0, 4)) or not tag else b"")
    return message


@settings(max_examples=300, deadline=None)
@given(
    st.lists(cri_ish_lines(), min_size=1, max_size=40),
    st.sampled_from(["cri", "auto", "plain"]),
    st.sampled_from([64, 1 << 20]),
)
def test_feed_lines_is_feed_line_by_line(lines: list[bytes], fmt: str, max_record_bytes: int) -> None:
    assert_feed_lines_is_feed_line_by_line(lines, fmt, max_record_bytes)


def assert_feed_lines_is_feed_line_by_line(lines: list[bytes], fmt: str, max_record_bytes: int) -> None:
    one_by_one, together = ParsedColumns("read"), ParsedColumns("read")
    parser = make_parser(fmt, None, max_record_bytes)
    ends = list(accumulate((len(line) + 1 for line in lines), initial=0))
    for line, start, end in zip(lines, ends, ends[1:], strict=False):
        one_by_one.add(parser.feed(line, start, end, 1.0))
    one_by_one.add(parser.flush_all())
    block = b"".join(line + b"\n" for line in lines)
    parser = make_parser(fmt, None, max_record_bytes)
    parser.feed_lines(block.decode("utf-8", "replace").split("\n")[:-1], block, ends, 1.0, together)
    together.add(parser.flush_all())
    assert together == one_by_one


_PIECE_WORDS = st.sampled_from(
    [b"ok"] * 4
    + ["\u00e9".encode()] * 2
    + [b"ok", "\u00e9".encode(), b"\xc3", b"\xa9", b"\xe2\x82", b"\xac", "\ufffd".encode(), b"\xff"]
)


@st.composite
def pieces_and_ends(draw: st.DrawFn) -> list[bytes]:
    """CRI ``P`` pieces, mostly followed by the ``F`` line of their stream, with characters split
    between them (the pieces are joined as bytes before decoding)."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        stream = draw(st.sampled_from(["stdout", "stderr"]))
        for tag in draw(st.sampled_from([["P", "F"]] * 4 + [["P", "P", "F"], ["P"], ["F"]])):
            second = draw(st.sampled_from(["2026-01-02T03:04:05"] * 4 + ["2026-02-30T03:04:05"]))
            message = b"".join(draw(st.lists(_PIECE_WORDS, max_size=5)))
            lines.append(f"{second}.123456789Z {stream} {tag} ".encode() + message)
    return lines


@settings(max_examples=300, deadline=None)
@given(pieces_and_ends(), st.sampled_from(["cri", "auto"]), st.sampled_from([16, 20, 1 << 20, 1 << 20]))
def test_feed_lines_joins_pieces_as_feed_does(lines: list[bytes], fmt: str, max_record_bytes: int) -> None:
    assert_feed_lines_is_feed_line_by_line(lines, fmt, max_record_bytes)


# -- hostile lines (issue 12, item 1): no parser exception may stop a file -----------------------------


def deep_json_line(depth: int, bad_byte: bool = True) -> bytes:
    """A docker-looking line with an invalid UTF-8 byte, then ``depth`` nested arrays."""
    return b'{"log":"' + (b"\xff" if bad_byte else b"x") + b'","x":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("fmt", ["auto", "docker"])
@pytest.mark.parametrize("bad_byte", [True, False])
def test_deeply_nested_json_with_an_invalid_byte_is_plain_text(fmt: str, bad_byte: bool) -> None:
    line = deep_json_line(5000, bad_byte)
    parser = make_parser(fmt, None, 1 << 20)
    [record] = parser.feed(line, 0, len(line) + 1, 1.0)
    assert record.message == line.decode("utf-8", "replace")
    assert (record.time, record.stream, record.resume_offset) == (None, None, len(line) + 1)
    assert parser.failures == 0  # handled by the parser itself, not by the guard


HOSTILE_PIECES = [b"{", b"[", b"[" * 1200, b"{" * 1200, b'{"log":', b'"', b"\xff", b"\xc3", b"\xed\xa0\x80"]
HOSTILE_PIECES += [
    b"\\u",
    b'{"log":"\\ud800',
    b'"}',
    b"",
    b"\x00",
    f"{T0} stdout P ".encode(),
    b'\\n","stream":"',
]
hostile_pieces = st.sampled_from(HOSTILE_PIECES)
hostile_lines = st.lists(hostile_pieces | st.binary(max_size=20), max_size=8).map(
    lambda parts: b"".join(parts).replace(b"\n", b" ")
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(hostile_lines, min_size=1, max_size=6),
    st.lists(st.integers(0, 1 << 16), max_size=6),
    st.sampled_from(["auto", "docker", "cri", "plain"]),
    st.booleans(),
)
def test_hostile_lines_in_any_chunks_never_raise_and_every_line_is_accounted_for(
    lines: list[bytes], cuts: list[int], fmt: str, multiline: bool
) -> None:
    data = b"".join(line + b"\n" for line in lines)
    config = MultilineConfig(r"^\S", timeout=1.0) if multiline else None
    splitter = LineSplitter(make_parser(fmt, config, 1 << 20), 1 << 16)
    out, counts = ParsedColumns("read"), LineCounts()
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in pairwise(points):
        splitter.feed(data[a:b], 1.0, out, counts)
    splitter.drain(2.0, out)
    assert counts.lines == len(lines)
    assert splitter.parser.failures == 0 and splitter.parser.dropped == 0
    assert out.offsets == sorted(out.offsets) and out.offsets[-1] == len(data)
    assert all(isinstance(message, str) for message in out.messages)


@pytest.mark.parametrize("fmt", ["auto", "docker"])
def test_a_deep_line_split_at_every_boundary_comes_out_whole(fmt: str) -> None:
    line = deep_json_line(1100)  # past the interpreter's default recursion limit of 1000
    data = b"ok\n" + line + b"\nafter\n"
    for cut in range(len(data) + 1):
        splitter = LineSplitter(make_parser(fmt, None, 1 << 20), 1 << 16)
        out = ParsedColumns("read")
        for chunk in (data[:cut], data[cut:]):
            splitter.feed(chunk, 1.0, out, LineCounts())
        assert out.messages == ["ok", line.decode("utf-8", "replace"), "after"], cut


def test_a_parser_failure_ships_the_line_raw_counts_it_and_the_file_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = make_parser("cri", MultilineConfig(r"^\S", timeout=1.0), 1 << 20)
    real_split = parser._split_cri

    def explode_on_boom(line: bytes) -> Any:
        if b"boom" in line:
            raise RuntimeError("a parser bug")
        return real_split(line)

    monkeypatch.setattr(parser, "_split_cri", explode_on_boom)
    out = ParsedColumns("read")
    lines = [f"{T0} stdout F first".encode(), f"{T0} stdout F  held continuation".encode(), b"boom \xff"]
    lines.append(f"{T0} stdout F next".encode())
    ends = list(accumulate((len(line) + 1 for line in lines), initial=0))
    for line, start, end in zip(lines, ends, ends[1:], strict=False):
        out.add(parser.feed(line, start, end, 1.0))
    out.add(parser.flush_all())
    # The held group goes out before the raw line; the parser starts over and reads on.
    assert out.messages == ["first\n held continuation", "boom \ufffd", "next"]
    assert out.offsets == [ends[2], ends[3], ends[4]]
    assert parser.failures == 1 and parser.dropped == 0
