"""Line parsers: CRI, docker json-file, plain, and multiline grouping. Pure: bytes in, records out.

Interface (the reader relies on exactly this):

- ``make_parser(fmt, multiline, max_record_bytes) -> LineParser``, one per open file;
  ``fmt`` is ``auto | cri | docker | plain``; ``multiline`` is a :class:`MultilineConfig` or None.
- ``LineParser.feed(line, start, end, now) -> list[Parsed]``: ``line`` is one raw line without its
  trailing newline (already cut to the input's max_line_bytes by the reader); ``start``/``end`` are
  its byte offsets in the file (``end`` after the newline); ``now`` is ``time.time()``.
  It never raises: a line the parser fails on (a bug, bytes no format expects) is returned as plain
  text after what was held, the parser starts over, and ``LineParser.failures`` counts it
  (``LineParser.dropped``: held records lost because even flushing them failed).
- ``LineParser.flush_expired(now) -> list[Parsed]``: multiline groups held longer than the multiline
  timeout since their last line, and partial CRI/docker lines whose end did not arrive within
  ``partial_timeout`` (a writer that died mid-line must not pin the checkpoint forever).
- ``LineParser.flush_all() -> list[Parsed]``: everything held (file finished: rotated away, deleted).
- ``LineParser.pending_bytes``: message bytes held (partials and multiline groups), for buffer accounting.
- ``LineParser.feed_lines(lines, block, ends, now, out)``: ``feed`` for many whole lines at once (the
  reader's fast path), appending to a :class:`ParsedColumns`; same records, same offsets.
- ``Parsed.resume_offset``: the file offset from which reading again after this record (and the ones
  before it) has been delivered loses nothing: the end of the last line fed, or, when the parser still
  holds an earlier unfinished piece (a CRI partial of the other stream, a multiline group) or returns
  a later record of the same call that starts earlier, that piece's start. It is always a line
  boundary, never beyond the end of the last line fed, and never decreases over the parser's life;
  records of one call come out ordered by their first line. Restarting from a ``resume_offset`` may
  re-emit records (or, for interleaved partials, a tail piece of one): duplicates, never loss.

Formats:

- ``cri``: ``<RFC 3339 time> <stdout|stderr> <P|F>[:more flags] <message>``. ``P`` pieces are joined
  per stream (stdout and stderr pieces may interleave) as bytes until the ``F`` piece; the record takes
  the first piece's time. A line that does not parse as CRI is passed on as ``plain``.
- ``docker``: json-file lines ``{"log": "...", "stream": "...", "time": "..."}``; a ``log`` value
  without a trailing ``\\n`` is a piece of a longer line, joined per stream until the piece that ends
  with ``\\n``; that newline is stripped. A line that is not such JSON is passed on as ``plain``.
- ``plain``: the line (a trailing ``\\r`` stripped) is the message, intact; stream is None and the time
  is the line's own when it starts with one (:func:`plain_time`: RFC 3339 / ISO 8601, RFC 5424 and the
  classic syslog ``Mmm dd HH:MM:SS``), else None (the reader uses the read time). ``auto`` does the same
  for its plain lines.
- ``auto``: per line, ``{``-lines that parse as docker json are docker, lines that parse as CRI are
  CRI, the rest plain.

Times are normalised to UTC with nine fractional digits: ``2026-01-02T03:04:05.123456789Z``.
Invalid UTF-8 is replaced with U+FFFD (CRI partial pieces are joined before decoding, so a character
split between pieces survives). NUL bytes are kept (JSON encodes them as ``\\u0000``); lone UTF-16
surrogates from docker JSON escapes are replaced, so every message encodes as UTF-8.

Size cap: a record whose message would exceed ``max_record_bytes`` is cut (at a UTF-8 character
boundary) into several records, each flagged ``truncated=True``; nothing is dropped. A multiline group
that would exceed the cap is emitted at a line boundary and the next line starts a new group.
"""

from __future__ import annotations

import calendar
import json
import re
import time as _time
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter, sub

from nodeagent.logs.encoding import normalize_time

FORMATS = ("auto", "cri", "docker", "plain")
DEFAULT_PARTIAL_TIMEOUT = 10.0

_CRI_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}

# kubelet's usual CRI line, "2026-11-27T10:00:01.123456789Z stdout F message", in fixed columns.
_SECOND = itemgetter(slice(0, 20))  # "2026-11-27T10:00:01." (validated once per second)
_CRI_TAG = itemgetter(slice(29, 40))
_CRI_TIME = itemgetter(slice(0, 30))
_CRI_MESSAGE = itemgetter(slice(40, None))
_CRI_FULL_LINE = {"Z stdout F ": "stdout", "Z stderr F ": "stderr"}
_CRI_PIECE_LINE = {"Z stdout P ": "stdout", "Z stderr P ": "stderr"}
_MAX_SECONDS = 1024  # validated seconds remembered
# "YYYY-MM-DDTHH:MM:SS." prefixes of times already checked valid: a fact about the text, so one set for
# every parser (thousands of files write the same few seconds); set operations are atomic, and a
# clear racing an add costs at most a second checked again.
_VALID_SECONDS: set[str] = set()


@dataclass(slots=True)
class Parsed:
    """One record as parsed from a file; ``time`` None means "use the time it was read"."""

    time: str | None
    message: str
    stream: str | None
    resume_offset: int
    # The record was cut: longer than max_record_bytes (the rest follows in the next record of the
    # stream), or a partial line whose end never came (timeout, file finished).
    truncated: bool = False


@dataclass(slots=True)
class ParsedColumns:
    """Parsed records as parallel lists, in order (see :meth:`LineParser.feed_lines`); a time None
    ("use the time it was read") is stored as ``default_time``."""

    default_time: str | None = None
    times: list[str | None] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    streams: list[str | None] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    def add(self, parsed: list[Parsed]) -> None:
        for record in parsed:
            self.times.append(record.time or self.default_time)
            self.messages.append(record.message)
            self.streams.append(record.stream)
            self.offsets.append(record.resume_offset)


@dataclass(frozen=True)
class MultilineConfig:
    """A line matching ``start_pattern`` (``re.search``) starts a record; other lines continue it."""

    start_pattern: str
    timeout: float = 3.0
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.start_pattern))


_DIGITS = b"0123456789"


# ---------------------------------------------------------------------------------------------------
# Event time at the start of a plain line

# 2026-11-30T12:00:00.123Z, 2026-11-30 12:00:00,123 (Python logging), 2026-11-30T13:00:00+01:00, and
# the same in brackets; not followed by a digit.
_ISO_PREFIX = re.compile(
    rb"\[?(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9})\d*)?(Z|z|[+-]\d{2}:?\d{2})?(?![\d:])"
)
# <34>1 2026-11-30T12:00:00.003Z host app - - - message (RFC 5424; "-" is no time)
_RFC5424_PREFIX = re.compile(rb"<\d{1,3}>\d{1,2} (?:-(?= )|(?=\d))")
# <13>Nov 30 12:00:00 host app: message, Nov  3 02:00:00 ... (RFC 3164 / BSD syslog: no year, no zone)
_BSD_PREFIX = re.compile(
    rb"(?:<\d{1,3}>)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ 0-3]?\d) (\d{2}):(\d{2}):(\d{2})"
    rb"(?:\.(\d{1,9})\d*)?(?![\d:])"
)
_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
_TIME_STARTS = frozenset(b"0123456789<[JFMASOND")
_PLAIN_CACHE: dict[tuple[bytes, ...], str | None] = {}  # whole seconds, as records carry them
_PLAIN_CACHE_MAX = 4096
_FUTURE_SLACK = 86400  # a syslog time more than a day ahead is from last year


def plain_time(line: bytes, now: float) -> str | None:
    """The time a plain line starts with, as a record time (UTC, nine fractional digits), or None.

    - RFC 3339 / ISO 8601 (``T`` or a space between date and time, ``.`` or ``,`` before the fraction);
      without an offset the time is taken as UTC;
    - RFC 5424 (``<PRI>VERSION TIMESTAMP``; the NILVALUE ``-`` gives None);
    - classic syslog ``Mmm dd HH:MM:SS`` (optionally after ``<PRI>``): the year is ``now``'s, or the year
      before when that would put the time more than a day after ``now``; taken as UTC.

    Pure (``now`` is the clock), never raises; looks at the first 64 bytes only.
    """
    if not line or line[0] not in _TIME_STARTS:
        return None
    head = line[:64]
    match = _RFC5424_PREFIX.match(head)
    if match is not None:
        if head[match.end() - 1 : match.end()] == b"-":
            return None
        head = head[match.end() :]
    iso = _ISO_PREFIX.match(head)
    if iso is not None:
        date, clock, fraction, zone = iso.groups()
        key: tuple[bytes, ...] = (date, clock, zone or b"Z")
        second = _PLAIN_CACHE.get(key, "")
        if second == "":
            text = f"{date.decode()}T{clock.decode()}{(zone or b'Z').decode()}"
            second = normalize_time(text)
            _remember(key, second)
        return None if second is None else _with_fraction(second, fraction)
    bsd = _BSD_PREFIX.match(head)
    if bsd is None:
        return None
    month, day, hour, minute, sec, fraction = bsd.groups()
    today = int(now // 86400)
    key = (month, day, hour, minute, sec, b"%d" % today)
    second = _PLAIN_CACHE.get(key, "")
    if second == "":
        second = _syslog_second(_MONTHS[month.decode()], int(day), int(hour), int(minute), int(sec), now)
        _remember(key, second)
    return None if second is None else _with_fraction(second, fraction)


def _syslog_second(month: int, day: int, hour: int, minute: int, second: int, now: float) -> str | None:
    """ "YYYY-MM-DDTHH:MM:SS" for a time without a year: this year's, unless too far ahead."""
    if not (1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    year = _time.gmtime(now).tm_year
    for candidate in (year, year - 1):
        if day > calendar.monthrange(candidate, month)[1]:
            continue
        stamp = calendar.timegm((candidate, month, day, hour, minute, min(second, 59), 0, 0, 0))
        if 0 <= stamp <= now + _FUTURE_SLACK:
            return f"{candidate:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{min(second, 59):02d}"
    return None


def _remember(key: tuple[bytes, ...], second: str | None) -> None:
    if len(_PLAIN_CACHE) >= _PLAIN_CACHE_MAX:
        _PLAIN_CACHE.clear()
    _PLAIN_CACHE[key] = second[:19] if second else None


def _with_fraction(second: str, fraction: bytes | None) -> str:
    return f"{second[:19]}.{(fraction or b'').decode().ljust(9, '0')}Z"


# ---------------------------------------------------------------------------------------------------
# Text helpers

_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads already joined the valid pairs


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _scrub_surrogates(text: str) -> str:
    """Replace lone surrogates (from JSON ``\\ud800`` escapes) so the text encodes as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def _cut_utf8(data: bytes, limit: int) -> int:
    """An index <= limit that does not split a UTF-8 sequence (if the data is valid UTF-8 there)."""
    cut = limit
    while cut > 0 and cut > limit - 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 else limit


class _Held:
    """A record being assembled: CRI/docker pieces of one line, or a multiline group."""

    __slots__ = ("end", "nbytes", "parts", "split", "start", "stream", "time", "updated")

    def __init__(
        self,
        time: str | None,
        stream: str | None,
        part: bytes | str,
        nbytes: int,
        start: int,
        end: int,
        now: float,
        split: bool = False,
    ) -> None:
        self.time = time
        self.stream = stream
        self.parts: list[bytes | str] = [part]
        self.nbytes = nbytes
        self.start = start  # offset of the first line
        self.end = end  # offset after the last line
        self.updated = now
        self.split = split

    def joined(self) -> bytes | str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], bytes):
            return b"".join(parts)  # type: ignore[arg-type]
        return "".join(parts)  # type: ignore[arg-type]


def _as_text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


# An emitted record before its resume offset is known: (first line start, last line end, record).
_Out = list[tuple[int, int, Parsed]]


class LineParser:
    """Per-file parser state; see the module docstring for the contract."""

    # Slotted (one parser per file followed); "__dict__" (allocated only when used) lets a test put a
    # failing method on one parser.
    __slots__ = (
        "__dict__",
        "_cri_columns",
        "_decode",
        "_fed_end",
        "_feed_line",
        "_groups",
        "_max",
        "_multiline",
        "_partial_timeout",
        "_partials",
        "_plain_times",
        "_start_re",
        "_valid_seconds",
        "dropped",
        "failures",
        "format",
    )

    def __init__(
        self,
        fmt: str,
        multiline: MultilineConfig | None,
        max_record_bytes: int,
        partial_timeout: float = DEFAULT_PARTIAL_TIMEOUT,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r} (expected one of {', '.join(FORMATS)})")
        self.format = fmt
        self._max = max(16, int(max_record_bytes))
        self._multiline = multiline
        self._start_re = multiline.compiled if multiline else None
        self._partial_timeout = partial_timeout
        self._partials: dict[str | None, _Held] = {}  # stage 1: CRI/docker pieces, per stream
        self._groups: dict[str | None, _Held] = {}  # stage 2: multiline groups, per stream
        self._valid_seconds = _VALID_SECONDS
        self._fed_end = 0  # end offset of the last line fed
        # The class's functions, called with self: a bound method kept here would be two more objects
        # per file followed.
        self._decode = {
            "auto": LineParser._decode_auto,
            "cri": LineParser._decode_cri,
            "docker": LineParser._decode_docker,
            "plain": LineParser._decode_plain,
        }[fmt]
        self._cri_columns = fmt in ("cri", "auto") and multiline is None
        self._feed_line = LineParser._feed_cri_fast if fmt in ("cri", "auto") else LineParser._feed_any
        # Plain lines of a plain or mixed file carry their own time (in a CRI or docker file they are
        # broken lines: no time is guessed from them).
        self._plain_times = fmt in ("plain", "auto")
        self.failures = 0  # lines the parser failed on (shipped raw), over the parser's life
        self.dropped = 0  # records lost to a failure while flushing what was held

    # -- public -------------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return sum(h.nbytes for h in self._partials.values()) + sum(h.nbytes for h in self._groups.values())

    def feed(self, line: bytes, start: int, end: int, now: float) -> list[Parsed]:
        try:
            return self._feed_line(self, line, start, end, now)
        except Exception:  # hostile bytes must cost one line its parsing, never the file
            return self._failed(line, start, end)

    def _failed(self, line: bytes, start: int, end: int) -> list[Parsed]:
        """The parser failed on ``line``: what it held goes out as it is, the line as plain text, and
        the parser starts over (its state may be half-updated)."""
        self.failures += 1
        self._fed_end = start  # what was held resumes before this line, whatever the failure left
        try:
            records = self.flush_all()
        except Exception:
            records = []
            self.discard_held()
        self._fed_end = end
        cut = line[: self._max]
        text = (cut[:-1] if cut.endswith(b"\r") else cut).decode("utf-8", "replace")
        return [*records, Parsed(None, text, None, end, len(line) > self._max)]

    def _feed_any(self, line: bytes, start: int, end: int, now: float) -> list[Parsed]:
        time, stream, message, final = self._decode(self, line)
        if time is None and self._plain_times and isinstance(message, bytes):  # a plain line's own time
            time = plain_time(message, now)
        if final and self._start_re is None and not self._partials and not self._groups:
            # Hot path: a complete line, nothing held, no grouping.
            if isinstance(message, bytes):
                if len(message) <= self._max:
                    return [Parsed(time, message.decode("utf-8", "replace"), stream, end)]
            elif _utf8_len(message) <= self._max:
                return [Parsed(time, message, stream, end)]
        self._fed_end = end
        out: _Out = []
        self._piece(time, stream, message, final, start, end, now, out)
        return self._finish(out) if out else []

    def _feed_cri_fast(self, line: bytes, start: int, end: int, now: float) -> list[Parsed]:
        # The common CRI line ("<30-byte time> stdout F msg"), nothing held: a few C calls, no regex.
        if self._start_re is None and not self._partials:
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[2] == b"F":
                stream = _CRI_STREAMS.get(parts[1])
                raw = parts[0]
                message = parts[3]
                # _is_normal_time, inlined: this runs once per line.
                if (
                    stream is not None
                    and len(raw) == 30
                    and raw[29] == 90
                    and raw[:20].decode("latin-1") in self._valid_seconds
                    and raw.translate(None, _DIGITS) == b"--T::.Z"
                    and len(message) <= self._max
                ):
                    return [Parsed(raw.decode("ascii"), message.decode("utf-8", "replace"), stream, end)]
        return self._feed_any(line, start, end, now)

    def flush_expired(self, now: float) -> list[Parsed]:
        out: _Out = []
        for stream, held in list(self._partials.items()):
            if now - held.updated >= self._partial_timeout:
                del self._partials[stream]
                self._complete(
                    held.time, stream, _as_text(held.joined()), held.start, held.end, True, now, out
                )
        if self._multiline is not None:
            timeout = self._multiline.timeout
            for stream, group in list(self._groups.items()):
                if now - group.updated >= timeout:
                    del self._groups[stream]
                    self._emit_group(group, out)
        return self._finish(out) if out else []

    def flush_all(self) -> list[Parsed]:
        out: _Out = []
        for stream, held in list(self._partials.items()):
            del self._partials[stream]
            self._complete(
                held.time, stream, _as_text(held.joined()), held.start, held.end, True, held.updated, out
            )
        for stream, group in list(self._groups.items()):
            del self._groups[stream]
            self._emit_group(group, out)
        return self._finish(out) if out else []

    def held_starts(self) -> dict[str | None, int]:
        """Per stream, where what is held (a partial line, a multiline group) starts: every later line of
        that stream belongs to it, every earlier one to a record already returned."""
        starts: dict[str | None, int] = {}
        for held in (*self._partials.values(), *self._groups.values()):
            starts[held.stream] = min(held.start, starts.get(held.stream, held.start))
        return starts

    def line_stream(self, line: bytes) -> str | None:
        """The stream a raw line belongs to, as :meth:`feed` would see it (None: none, or plain text)."""
        try:
            return self._decode(self, line)[1]
        except Exception:  # feed would take it as plain text
            return None

    def skipped(self, end: int) -> None:
        """A line up to ``end`` was not fed because it was delivered before (see LineSplitter.replay):
        resume offsets may go past it."""
        self._fed_end = end

    def discard_held(self) -> None:
        """Forget what is held (after a failure left it unusable), counting it in ``dropped``."""
        self.dropped += len(self._partials) + len(self._groups)
        self._partials.clear()
        self._groups.clear()

    def feed_lines(
        self, lines: list[str], block: bytes, ends: list[int], now: float, out: ParsedColumns
    ) -> None:
        """:meth:`feed` for many whole lines at once, into ``out``.

        ``block`` is the raw bytes of the lines, each ending with a newline, ``lines`` the same decoded
        (UTF-8, errors replaced) and split on the newlines, and line ``i`` spans ``ends[i]`` to
        ``ends[i + 1]`` in the file. Lines must be no longer than the input's max_line_bytes (as for
        feed). Complete CRI lines in kubelet's usual form, while nothing is held, are cut into columns
        without a Python step per line; every other line goes through :meth:`feed`.
        """
        base, count = ends[0], len(lines)
        if not self._cri_columns or (len(block) > self._max and max(map(sub, ends[1:], ends)) > self._max):
            for i in range(count):
                out.add(self.feed(block[ends[i] - base : ends[i + 1] - 1 - base], ends[i], ends[i + 1], now))
            return
        streams = list(map(_CRI_FULL_LINE.get, map(_CRI_TAG, lines)))
        times = list(map(_CRI_TIME, lines))
        self._check_times(times, streams)
        i = 0
        while i < count:
            if self._partials:  # a piece waits for its end: line by line until it has come
                j = i
            else:
                try:
                    j = streams.index(None, i)  # the next line for feed
                except ValueError:
                    j = count
                out.times += times[i:j]
                out.messages += map(_CRI_MESSAGE, lines[i:j])
                out.streams += streams[i:j]
                out.offsets += ends[i + 1 : j + 1]
            if j < count:
                if self._joined_piece(lines, j, ends, streams, times, out):
                    j += 1  # the piece and the line that ends it are one record
                else:
                    out.add(
                        self.feed(block[ends[j] - base : ends[j + 1] - 1 - base], ends[j], ends[j + 1], now)
                    )
            i = j + 1

    def _joined_piece(
        self,
        lines: list[str],
        j: int,
        ends: list[int],
        streams: list[str | None],
        times: list[str],
        out: ParsedColumns,
    ) -> bool:
        """Line ``j`` a CRI ``P`` piece in kubelet's usual form and line ``j + 1`` the ``F`` line of the
        same stream that ends it, nothing held: add their record (what :meth:`feed` would make of the
        two) and return True; else False, nothing done."""
        if self._partials or j + 1 >= len(lines):
            return False
        line = lines[j]
        stream = _CRI_PIECE_LINE.get(line[29:40])
        if stream is None or streams[j + 1] != stream:
            return False
        head = line[40:]
        # The pieces are joined as bytes before decoding: joining the texts is the same only when the
        # first piece ends on a whole character (an incomplete one would have become U+FFFD here).
        if head.endswith("\ufffd") or ends[j + 2] - ends[j] - 82 > self._max:
            return False
        time = times[j]
        fraction = time[20:29]
        if not (
            time[29] == "Z" and fraction.isascii() and fraction.isdigit() and self._valid_second(time[:20])
        ):
            return False
        out.times.append(time)
        out.messages.append(head + lines[j + 1][40:])
        out.streams.append(stream)
        out.offsets.append(ends[j + 2])
        return True

    def _check_times(self, times: list[str], streams: list[str | None]) -> None:
        """Clear the stream of lines (those with one) whose 30-character time is not normal and valid."""
        candidates = list(compress(times, streams))
        joined = "".join(candidates)
        fractions = "".join([joined[column::30] for column in range(20, 29)])  # no object per line
        # (bytes.isdigit looks at a table; str.isdigit asks the Unicode database per character)
        if (
            fractions.isascii()
            and fractions.encode().isdigit()
            and all(map(self._valid_second, self._seconds(candidates, joined)))
        ):
            return
        for i in compress(range(len(times)), streams):  # some are not: find them
            fraction = times[i][20:29]
            if not (fraction.isascii() and fraction.isdigit() and self._valid_second(times[i][:20])):
                streams[i] = None

    @staticmethod
    def _seconds(candidates: list[str], joined: str) -> set[str]:
        """The distinct "YYYY-MM-DDTHH:MM:SS." of the times (whose fractions are digits and that end with
        Z, as checked before): usually all the first one's, found with one count instead of a slice per
        line. No occurrence of it can straddle two times (it has no Z) nor start elsewhere than at a
        time's start (its '.' would fall on a fraction digit), so one per time means all are it."""
        first = candidates[0][:20] if candidates else ""
        if first and joined.count(first) == len(candidates):
            return {first}
        return set(map(_SECOND, candidates))

    def _valid_second(self, second: str) -> bool:
        """Is "YYYY-MM-DDTHH:MM:SS." a valid date and time (remembered once checked)?"""
        if second in self._valid_seconds:
            return True
        if normalize_time(second + "000000000Z") != second + "000000000Z":
            return False
        self._remember_second(second)
        return True

    @staticmethod
    def _remember_second(second: str) -> None:
        if len(_VALID_SECONDS) >= _MAX_SECONDS:
            _VALID_SECONDS.clear()
        _VALID_SECONDS.add(second)

    # -- stage 0: one line -> (time, stream, message piece, is the line's end) ----------------------

    def _is_normal_time(self, raw: bytes) -> bool:
        """Already ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` with a date and time validated before?

        kubelet/containerd write this form, and the part up to the seconds changes once a second at
        most, so one full check per second covers the lines in between.
        """
        return (
            len(raw) == 30
            and raw[29] == 90
            and raw[:20].decode("latin-1") in self._valid_seconds
            and raw.translate(None, _DIGITS) == b"--T::.Z"
        )

    def _time(self, raw: bytes) -> str | None:
        if self._is_normal_time(raw):
            return raw.decode("ascii")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        normalized = normalize_time(text)
        if normalized is not None and normalized == text:
            self._remember_second(text[:20])
        return normalized

    def _split_cri(self, line: bytes) -> tuple[str, str, bytes, bool] | None:
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            return None
        stream = _CRI_STREAMS.get(parts[1])
        if stream is None:
            return None
        tag = parts[2]
        if tag == b"F":
            final = True
        elif tag == b"P":
            final = False
        else:
            first = tag.split(b":", 1)[0]
            if first == b"F":
                final = True
            elif first == b"P":
                final = False
            else:
                return None
        time = self._time(parts[0])
        if time is None:
            return None
        return time, stream, (parts[3] if len(parts) == 4 else b""), final

    @staticmethod
    def _split_docker(line: bytes) -> tuple[str | None, str | None, str, bool] | None:
        try:
            obj = json.loads(line)
        except UnicodeDecodeError:
            try:
                obj = json.loads(line.decode("utf-8", "replace"))
            except (ValueError, RecursionError):  # deep nesting fails here too, after the bad byte
                return None
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        log = obj.get("log")
        if not isinstance(log, str):
            return None
        if b"\\u" in line:
            log = _scrub_surrogates(log)
        stream = obj.get("stream")
        stream = _scrub_surrogates(stream) if isinstance(stream, str) else None
        raw_time = obj.get("time")
        time = normalize_time(raw_time) if isinstance(raw_time, str) else None
        if log.endswith("\n"):
            return time, stream, log[:-1], True
        return time, stream, log, False

    def _decode_plain(self, line: bytes) -> tuple[None, None, bytes, bool]:
        return None, None, (line[:-1] if line.endswith(b"\r") else line), True

    def _decode_cri(self, line: bytes) -> tuple[str | None, str | None, bytes | str, bool]:
        return self._split_cri(line) or self._decode_plain(line)

    def _decode_docker(self, line: bytes) -> tuple[str | None, str | None, bytes | str, bool]:
        return self._split_docker(line) or self._decode_plain(line)

    def _decode_auto(self, line: bytes) -> tuple[str | None, str | None, bytes | str, bool]:
        if line[:1] == b"{":
            return self._split_docker(line) or self._decode_plain(line)
        # CRI lines start with a digit (the year); skip the split for everything else.
        if line[:1].isdigit():
            return self._split_cri(line) or self._decode_plain(line)
        return self._decode_plain(line)

    # -- stage 1: join pieces of one line, per stream; cap the size ---------------------------------

    def _piece(
        self,
        time: str | None,
        stream: str | None,
        message: bytes | str,
        final: bool,
        start: int,
        end: int,
        now: float,
        out: _Out,
    ) -> None:
        nbytes = len(message) if isinstance(message, bytes) else _utf8_len(message)
        held = self._partials.get(stream)
        if held is None:
            if final and nbytes <= self._max:
                self._complete(time, stream, _as_text(message), start, end, False, now, out)
                return
            held = _Held(time, stream, message, nbytes, start, end, now)
            self._partials[stream] = held
        else:
            if type(message) is not type(held.parts[0]):
                # A CRI piece and a docker piece on one stream (auto format, mixed garbage): finish the old.
                del self._partials[stream]
                self._complete(
                    held.time, stream, _as_text(held.joined()), held.start, held.end, True, now, out
                )
                self._piece(time, stream, message, final, start, end, now, out)
                return
            held.parts.append(message)
            held.nbytes += nbytes
            held.updated = now
            held.end = end
        while held.nbytes > self._max:
            data = held.joined()
            if isinstance(data, str):
                data = data.encode("utf-8", "surrogatepass")
            cut = _cut_utf8(data, self._max)
            head, rest = data[:cut], data[cut:]
            self._complete(
                held.time, stream, head.decode("utf-8", "replace"), held.start, end, True, now, out
            )
            # The rest came from this line (the cap was not exceeded before it), so it starts here.
            held.parts = [rest if isinstance(message, bytes) else rest.decode("utf-8", "replace")]
            held.nbytes = len(rest)
            held.start = start
            held.split = True
        if final:
            del self._partials[stream]
            self._complete(held.time, stream, _as_text(held.joined()), held.start, end, held.split, now, out)

    # -- stage 2: multiline grouping, per stream ----------------------------------------------------

    def _complete(
        self,
        time: str | None,
        stream: str | None,
        text: str,
        start: int,
        end: int,
        truncated: bool,
        now: float,
        out: _Out,
    ) -> None:
        start_re = self._start_re
        if start_re is None:
            out.append((start, end, Parsed(time, text, stream, end, truncated)))
            return
        group = self._groups.get(stream)
        if truncated:
            # A cut piece of an oversize line stands alone; joining it would invent line breaks.
            if group is not None:
                del self._groups[stream]
                self._emit_group(group, out)
            out.append((start, end, Parsed(time, text, stream, end, True)))
            return
        nbytes = _utf8_len(text)
        if group is not None and start_re.search(text) is None:
            if group.nbytes + 1 + nbytes <= self._max:
                group.parts.append(text)
                group.nbytes += 1 + nbytes
                group.updated = now
                group.end = end
                return
            group.split = True  # too big: emit at this line boundary, the line starts the next part
            del self._groups[stream]
            self._emit_group(group, out)
            split = True
        else:
            if group is not None:
                del self._groups[stream]
                self._emit_group(group, out)
            split = False
        # A start line, or a continuation with no group before it (start of file, after a restart).
        new = _Held(time, stream, text, nbytes, start, end, now, split)
        self._groups[stream] = new

    @staticmethod
    def _emit_group(group: _Held, out: _Out) -> None:
        text = "\n".join(group.parts)  # type: ignore[arg-type]
        out.append((group.start, group.end, Parsed(group.time, text, group.stream, group.end, group.split)))

    # -- resume offsets -----------------------------------------------------------------------------

    def _finish(self, out: _Out) -> list[Parsed]:
        """Order by first line; each resume offset is the first byte not delivered with the records so far.

        Every line fed is in a record of ``out``, held, or delivered before; so after records[:i + 1]
        the first undelivered byte is the earliest start among later records and held pieces, else the
        end of the last line fed.
        """
        if len(out) > 1:
            out.sort(key=lambda item: item[0])
        bound = self._fed_end
        for held in self._partials.values():
            bound = min(bound, held.start)
        for held in self._groups.values():
            bound = min(bound, held.start)
        records: list[Parsed] = [item[2] for item in out]
        for index in range(len(out) - 1, -1, -1):
            start, _end, record = out[index]
            record.resume_offset = bound
            bound = min(bound, start)
        return records


def make_parser(
    fmt: str,
    multiline: MultilineConfig | None,
    max_record_bytes: int,
    *,
    partial_timeout: float = DEFAULT_PARTIAL_TIMEOUT,
) -> LineParser:
    """A parser for one open file (see the module docstring)."""
    return LineParser(fmt, multiline, max_record_bytes, partial_timeout)
