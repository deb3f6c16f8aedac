"""Event time of plain lines (nodeagent.logs.parsers.plain_time): RFC 3339 / ISO 8601, RFC 5424 and
classic syslog prefixes become the record time; the message stays as it was."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.parsers import make_parser, plain_time

NOW = calendar.timegm((2026, 11, 30, 12, 0, 0, 0, 0, 0))  # 2026-11-30T12:00:00Z


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"2026-11-30T11:59:58.123456Z app started", "2026-11-30T11:59:58.123456000Z"),
        (b"2026-11-30T12:59:58+01:00 host prog[1]: x", "2026-11-30T11:59:58.000000000Z"),
        (b"2026-11-30T06:29:58.5-0530 x", "2026-11-30T11:59:58.500000000Z"),
        (b"2026-11-30 11:59:58,042 INFO root: python logging", "2026-11-30T11:59:58.042000000Z"),
        (b"[2026-11-30T11:59:58Z] bracketed", "2026-11-30T11:59:58.000000000Z"),
        (b"2026-11-30T11:59:58.1234567891234Z more digits", "2026-11-30T11:59:58.123456789Z"),
        (b"<165>1 2026-11-30T11:59:58.003Z host app 1 ID47 - message", "2026-11-30T11:59:58.003000000Z"),
        (b"Nov 30 11:59:58 host sshd[42]: accepted", "2026-11-30T11:59:58.000000000Z"),
        (b"<13>Nov  3 01:02:03 host kernel: x", "2026-11-03T01:02:03.000000000Z"),
        (b"Jan  2 03:04:05.250 host x", "2026-01-02T03:04:05.250000000Z"),
        (b"Dec  1 12:00:01 host x", "2025-12-01T12:00:01.000000000Z"),  # ahead by more than a day
        (b"Dec  1 11:00:00 host x", "2026-12-01T11:00:00.000000000Z"),  # ahead, within a day (clock skew)
        (b"Feb 29 00:00:00 host x", None),  # neither 2026 nor 2025 has one
        (b"<165>1 - host app - - - no time", None),
        (b"2026-11-30T25:00:00Z bad hour", None),
        (b"2026-02-30 00:00:00 bad day", None),
        (b"2026-11-30T11:59:58123 glued digits", None),
        (b"12:00:00 time only", None),
        (b"Nov 30 host no time", None),
        (b"Noc 30 11:59:58 not a month", None),
        (b"Nov 32 11:59:58 not a day", None),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_prefixes(line: bytes, expected: str | None) -> None:
    assert plain_time(line, NOW) == expected


def test_a_leap_day_in_a_leap_year() -> None:
    now = calendar.timegm((2028, 3, 1, 0, 0, 0, 0, 0, 0))
    assert plain_time(b"Feb 29 10:00:00 h", now) == "2028-02-29T10:00:00.000000000Z"


def test_new_year_rollover() -> None:
    now = calendar.timegm((2027, 1, 1, 0, 0, 5, 0, 0, 0))
    assert plain_time(b"Dec 31 23:59:59 h", now) == "2026-12-31T23:59:59.000000000Z"
    assert plain_time(b"Jan  1 00:00:04 h", now) == "2027-01-01T00:00:04.000000000Z"


def test_the_plain_parser_takes_the_time_and_keeps_the_message() -> None:
    parser = make_parser("plain", None, 1 << 20)
    line = b"Nov 30 11:59:58 host sshd[42]: accepted\r"
    (record,) = parser.feed(line, 0, len(line) + 1, NOW)
    assert record.time == "2026-11-30T11:59:58.000000000Z"
    assert record.message == "Nov 30 11:59:58 host sshd[42]: accepted"
    (untimed,) = parser.feed(b"no time here", 0, 13, NOW)
    assert untimed.time is None  # the reader stamps the read time


def test_cri_files_guess_no_time_from_broken_lines() -> None:
    parser = make_parser("cri", None, 1 << 20)
    (record,) = parser.feed(b"2026-11-30T11:59:58Z not a cri line", 0, 36, NOW)
    assert record.time is None


moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(moments, st.integers(0, 999_999), st.integers(-14 * 60, 14 * 60), st.sampled_from(["T", " "]))
def test_iso_times_round_trip(moment: datetime, micros: int, offset_minutes: int, sep: str) -> None:
    moment = moment.replace(microsecond=micros)
    zone = timedelta(minutes=offset_minutes)
    local = (moment + zone).replace(tzinfo=None)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{local.strftime('%Y-%m-%d')}{sep}{local.strftime('%H:%M:%S')}.{micros:06d}"
    text += f"{sign}{hours:02d}:{minutes:02d}"
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}000Z"
    assert plain_time(f"{text} message".encode(), NOW) == expected


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2030, 12, 31)), st.floats(0, 2e9))
def test_syslog_times_are_never_more_than_a_day_ahead_and_within_a_year(moment: datetime, now: float) -> None:
    line = f"{moment.strftime('%b')} {moment.day:2d} {moment.strftime('%H:%M:%S')} host x".encode()
    result = plain_time(line, now)
    if result is None:
        return
    stamp = calendar.timegm(datetime.strptime(result[:19], "%Y-%m-%dT%H:%M:%S").timetuple())
    assert 0 <= stamp <= now + 86400
    assert stamp > now - 2 * 366 * 86400
    assert result[5:19] == moment.strftime("%m-%dT%H:%M:%S")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80) | st.text(max_size=80).map(str.encode), st.floats(-1e12, 1e12))
def test_any_bytes(line: bytes, now: float) -> None:
    result = plain_time(line, now)
    assert result is None or (len(result) == 30 and result[19] == "." and result.endswith("Z"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_the_message_is_always_the_line(line: bytes) -> None:
    line = line.replace(b"\n", b" ").rstrip(b"\r")
    for fmt in ("plain", "auto"):
        records = make_parser(fmt, None, 1 << 20).feed(line, 0, len(line) + 1, NOW)
        if fmt == "plain":
            assert [r.message for r in records] == [line.decode("utf-8", "replace")]
