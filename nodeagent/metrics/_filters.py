"""Name filters shared by collectors: node_exporter's include/exclude regex pairs.

node_exporter matches with Go's ``regexp.MatchString``: an unanchored search, where ``\\d``, ``\\w`` and
``\\s`` are ASCII only. :func:`go_regex` compiles the same way (``re.ASCII``, used with ``search``) so
that a pattern copied from a node_exporter command line selects the same names here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nodeagent.config import ConfigError, parse_regex
from nodeagent.metrics.registry import CollectorOption


def go_regex(pattern: str | None) -> re.Pattern[str] | None:
    """Compile a node_exporter-style pattern; an empty pattern means "no filter" (None)."""
    if not pattern:
        return None
    return re.compile(pattern, re.ASCII)


class NameFilter:
    """An exclude pattern or an include pattern; ``ignored(name)`` says whether to skip a name."""

    __slots__ = ("exclude", "include")

    def __init__(self, exclude: str | None = None, include: str | None = None) -> None:
        self.exclude = go_regex(exclude)
        self.include = go_regex(include)

    def ignored(self, name: str) -> bool:
        if self.exclude is not None and self.exclude.search(name):
            return True
        return self.include is not None and not self.include.search(name)


def exclusive_filter(
    collector: str, options: Mapping[str, Any], prefix: str, default_exclude: str = ""
) -> NameFilter:
    """node_exporter's rule for the ``<prefix>-exclude``/``<prefix>-include`` pair in ``options``.

    Setting only the include pattern drops the default exclude pattern; setting both (the exclude one to
    something other than its default) is a configuration error, as upstream.
    """
    exclude_option, include_option = f"{prefix}-exclude", f"{prefix}-include"
    exclude = options.get(exclude_option, default_exclude)
    include = options.get(include_option)
    if include and exclude == default_exclude:
        exclude = ""
    if include and exclude:
        raise ConfigError(
            f"--collector.{collector}.{exclude_option} and --collector.{collector}.{include_option} "
            "are mutually exclusive",
            key=f"collector.{collector}.{include_option}",
        )
    return NameFilter(exclude, include)


def filter_options(prefix: str, what: str, default_exclude: str = "") -> tuple[CollectorOption, ...]:
    """The ``<prefix>-exclude`` / ``<prefix>-include`` option pair of a node_exporter filter."""
    return (
        CollectorOption(
            f"{prefix}-exclude",
            default_exclude,
            f"Regexp of {what} to leave out (mutually exclusive with {prefix}-include).",
            parse_regex,
        ),
        CollectorOption(
            f"{prefix}-include",
            "",
            f"Regexp of {what} to export, all others left out (mutually exclusive with {prefix}-exclude).",
            parse_regex,
        ),
    )
