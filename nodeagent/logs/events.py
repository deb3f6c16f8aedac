"""What the reader tells the rest of the shipper about files, as method calls on an object it is given.

The reader never touches metrics itself: the shipper passes it a :class:`ReaderEvents` (in production
:class:`nodeagent.logs.metrics.ShipperMetrics`), so the reader can be run and tested with any recorder.
``input`` is always the input's name.
"""

from __future__ import annotations

from typing import Protocol


class ReaderEvents(Protocol):
    def lines_read(self, input: str, lines: int, nbytes: int) -> None:
        """``lines`` lines and ``nbytes`` raw bytes were read."""

    def lines_cut(self, input: str, count: int) -> None:
        """Lines longer than max_line_bytes were cut (their head shipped, the rest skipped)."""

    def file_rotated(self, input: str) -> None:
        """A file no matched path leads to any more (renamed, deleted, replaced)."""

    def file_truncated(self, input: str) -> None:
        """A file shorter than the read offset (copytruncate): read again from 0."""

    def parse_failed(self, input: str, lines: int) -> None:
        """The parser failed on these lines (hostile or broken input); they were shipped as plain text."""

    def records_dropped(self, input: str, records: int) -> None:
        """Held records (partial lines, multiline groups) lost because the parser failed on them."""

    def records_filtered(self, input: str, dropped: int, failures: int) -> None:
        """The input's filters dropped ``dropped`` records on purpose and failed ``failures`` times (a
        message that is not JSON, a time that does not parse: the record went on unchanged)."""

    def file_refused(self, input: str) -> None:
        """A matched path resolves outside the input's roots (a symlink out): it is not read."""

    def read_error(self, input: str, reason: str) -> None:
        """A file could not be opened (``open``) or read (``read``)."""

    def gave_up(self, input: str, reason: str, unread_bytes: int) -> None:
        """A file was closed before its end: ``unread_bytes`` will never be read."""

    def file_counts(self, input: str, watched: int, open: int) -> None:
        """Files the input follows now, and how many of them are open."""

    def bytes_behind(self, input: str, nbytes: int) -> None:
        """File sizes minus committed offsets, over the input's files."""
