"""Cutting a file's bytes into lines for its parser: pure, no I/O (bytes in, records out).

A :class:`LineSplitter` is fed a file's data chunk by chunk, in order, however the chunks fall. Whole
lines go to the parser (a block of them at once: decoded and split once, see
:meth:`LineParser.feed_lines`); the unfinished last line waits for its end, or for the partial-line
timeout (:meth:`LineSplitter.expire`), or for the file to end (:meth:`LineSplitter.drain`). A line longer
than ``max_line`` is cut: its first ``max_line`` bytes go on as a record, the rest is skipped up to
the next newline. Every record carries the offset after which reading again loses nothing.

No exception from the parser stops the file: a line it fails on comes out as plain text (see
:meth:`LineParser.feed`), and a failure while flushing what it holds drops only that (counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from nodeagent.logs.parsers import LineParser, Parsed, ParsedColumns


@dataclass(slots=True)
class LineCounts:
    """What :meth:`LineSplitter.feed` saw: lines (cut ones included), lines cut, and for each cut line
    whose end came only after its head was passed on, (cut point, end of the line): a checkpoint at the
    cut point may move past the skipped rest."""

    lines: int = 0
    cut: int = 0
    skips: list[tuple[int, int]] = field(default_factory=list)


# Where a stopped agent's reading ended (``until``) and, per stream the parser held something of then,
# where that started: the lines of other streams before ``until`` were delivered (see LineSplitter.replay).
HeldPositions = tuple[int, dict[str | None, int]]


class LineSplitter:
    __slots__ = (
        "cut_at",
        "discarding",
        "line_start",
        "max_line",
        "parser",
        "pending",
        "pending_since",
        "replay",
    )

    def __init__(
        self, parser: LineParser, max_line: int, start: int = 0, replay: HeldPositions | None = None
    ) -> None:
        self.parser = parser
        self.max_line = max_line
        self.line_start = start  # file offset where the unfinished line in ``pending`` starts
        self.pending = b""
        self.pending_since: float | None = None
        self.discarding = False  # inside an over-long line whose head was emitted
        self.cut_at = 0  # where that head ended
        # Reading again from a checkpoint held back by a partial line of one stream: the lines before
        # ``until`` are fed only if they belong to what was held (their stream's position or later).
        self.replay = replay if replay is not None and replay[0] > start else None

    def feed(self, data: bytes, now: float, out: ParsedColumns, counts: LineCounts) -> None:
        """The next ``data`` of the file (it follows what was fed before)."""
        if self.discarding:
            newline = data.find(b"\n")
            if newline < 0:
                self.line_start += len(data)
                return
            self.line_start += newline + 1
            data = data[newline + 1 :]
            self.discarding = False
            counts.skips.append((self.cut_at, self.line_start))
        had_pending = bool(self.pending)
        data = self.pending + data if had_pending else data
        whole = data.rfind(b"\n") + 1
        block, tail = data[:whole], data[whole:]
        if block:
            self._feed_block(block, now, out, counts)
        max_line = self.max_line
        if len(tail) > max_line:
            # An over-long line whose end has not come: pass its head on now, skip the rest.
            pos = self.line_start
            out.add(self.parser.feed(tail[:max_line], pos, pos + max_line, now))
            counts.lines += 1
            counts.cut += 1
            self.line_start = pos + len(tail)
            self.pending, self.pending_since, self.discarding = b"", None, True
            self.cut_at = pos + max_line
            return
        if tail and (block or not had_pending):
            self.pending_since = now
        elif not tail:
            self.pending_since = None
        self.pending = tail

    def _feed_block(self, block: bytes, now: float, out: ParsedColumns, counts: LineCounts) -> None:
        """Whole lines (``block`` ends with a newline): decoded and split once, parsed together."""
        if self.replay is not None:
            block = self._replay(self.replay, block, now, out, counts)
            if not block:
                return
        text = block.decode("utf-8", "replace")
        lines = text.split("\n")
        lines.pop()  # after the last newline
        # Byte lengths: the text's own when every character is one byte (ASCII, the usual case).
        sizes = list(map(len, lines if len(text) == len(block) else block.split(b"\n")))
        if max(sizes) > self.max_line:
            self._feed_cut(block, now, out, counts)
        else:
            ends = list(accumulate(map((1).__add__, sizes[: len(lines)]), initial=self.line_start))
            self.parser.feed_lines(lines, block, ends, now, out)
            self.line_start = ends[-1]
        counts.lines += len(lines)

    def _feed_cut(self, block: bytes, now: float, out: ParsedColumns, counts: LineCounts) -> None:
        """Line by line, cutting those longer than ``max_line``."""
        feed, max_line = self.parser.feed, self.max_line
        pos = self.line_start
        for line in block.split(b"\n")[:-1]:
            end = pos + len(line) + 1
            if len(line) > max_line:
                line = line[:max_line]
                counts.cut += 1
            out.add(feed(line, pos, end, now))
            pos = end
        self.line_start = pos

    def _replay(
        self, replay: HeldPositions, block: bytes, now: float, out: ParsedColumns, counts: LineCounts
    ) -> bytes:
        """Feed the lines of ``block`` before the replay's end that were held when the agent stopped,
        skip those delivered before; return the rest of the block."""
        until, positions = replay
        parser, max_line = self.parser, self.max_line
        pos, at = self.line_start, 0
        while at < len(block) and pos < until:
            newline = block.index(b"\n", at)
            line = block[at:newline]
            end = pos + newline + 1 - at
            if pos >= positions.get(parser.line_stream(line), until):
                if len(line) > max_line:
                    line = line[:max_line]
                    counts.cut += 1
                out.add(parser.feed(line, pos, end, now))
                counts.lines += 1
            else:
                parser.skipped(end)
            pos, at = end, newline + 1
        self.line_start = pos
        if pos >= until:
            self.replay = None
        return block[at:]

    def held_positions(self) -> HeldPositions | None:
        """What :attr:`replay` needs after a stop, when the parser holds pieces of some streams (the
        checkpoint then stays at the earliest one, before lines of other streams already delivered)."""
        if self.discarding:
            return None
        starts = self.parser.held_starts()
        return (self.line_start, starts) if starts else None

    def _emit_pending(self, now: float, out: ParsedColumns) -> None:
        """The last line never got its newline: pass it on as it is (the rest, if any, comes later)."""
        line, start = self.pending, self.line_start
        end = start + len(line)
        self.pending, self.pending_since, self.line_start = b"", None, end
        out.add(self.parser.feed(line, start, end, now))

    def expire(self, now: float, timeout: float, out: ParsedColumns) -> None:
        """Pass on an unfinished line older than ``timeout``, and what the parser held too long."""
        if (
            self.pending
            and not self.discarding
            and self.pending_since is not None
            and now - self.pending_since >= timeout
        ):
            self._emit_pending(now, out)
        self._flush(self.parser.flush_expired, now, out)

    def drain(self, now: float, out: ParsedColumns) -> None:
        """Everything held back (unfinished last line, parser pieces): the file is done."""
        if self.pending and not self.discarding:
            self._emit_pending(now, out)
        self._flush(lambda _now: self.parser.flush_all(), now, out)

    def _flush(self, flush: Callable[[float], list[Parsed]], now: float, out: ParsedColumns) -> None:
        """Pass on what the parser lets go; if that fails, what it held is counted as dropped."""
        try:
            out.add(flush(now))
        except Exception:  # a failing parser must not stop the file
            self.parser.discard_held()

    def settled_offset(self) -> int | None:
        """The offset up to which everything fed became records or was skipped, if nothing is held."""
        if self.pending or self.discarding or self.parser.pending_bytes:
            return None
        return self.line_start

    def holds_data(self) -> bool:
        return bool(self.pending) or self.parser.pending_bytes > 0
