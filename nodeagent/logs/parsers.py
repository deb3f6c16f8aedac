"""Line parsers: CRI, docker json-file, plain, and multiline grouping. Pure: bytes in, records out.

Interface (the reader relies on exactly this):

- ``make_parser(fmt, multiline, max_record_bytes) -> LineParser``, one per open file;
  ``fmt`` is ``auto | cri | docker | plain``; ``multiline`` is a :class:`MultilineConfig` or None.
- ``LineParser.feed(line, start, end, now) -> list[Parsed]``: ``line`` is one raw line without its
  trailing newline (already cut to the input's max_line_bytes by the reader); ``start``/``end`` are
  its byte offsets in the file (``end`` after the newline); ``now`` is ``time.time()``.
- ``LineParser.flush_expired(now) -> list[Parsed]``: records held longer than the multiline timeout.
- ``LineParser.flush_all() -> list[Parsed]``: everything held (file finished: rotated away, deleted).
- ``Parsed.resume_offset``: the file offset from which reading again after this record has been
  delivered loses nothing: the end of the record's last line, or, when the parser still holds an
  earlier unfinished piece (a CRI partial of the other stream, a multiline group), that piece's start.
"""
