"""What a parser skipped: pure parsers return these next to their values; only collectors report them
(``Collector.report``, which counts and logs them through :mod:`nodeagent.metrics._parse_errors`)."""

from __future__ import annotations

from typing import NamedTuple


class Skip(NamedTuple):
    """One malformed line or value left out: ``what`` names the source stably (it keys the
    once-per-problem log), ``detail`` is the offending text (quoted, bounded, when logged)."""

    what: str
    detail: object


Skips = list[Skip]
