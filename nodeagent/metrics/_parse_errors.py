"""Counting and logging malformed kernel input that a collector skipped instead of failing.

A line node_exporter would skip (or one that would make it fail the whole collector) is skipped here, counted
in ``nodeagent_collector_parse_errors_total{collector}`` and logged once per distinct problem at warning
level (then at debug level, so a bad line that stays in a file does not flood the log every scrape).
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter

from nodeagent.agentmetrics import AGENT_REGISTRY

log = logging.getLogger("nodeagent.metrics")

PARSE_ERRORS = Counter(
    "nodeagent_collector_parse_errors",
    "Malformed lines or values that node collectors skipped, by collector.",
    ["collector"],
    registry=AGENT_REGISTRY,
)

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()
_SEEN_LIMIT = 1000  # bound memory if a file keeps producing new bad lines


def skipped(collector: str, what: str, detail: object) -> None:
    """Record one skipped malformed item: ``what`` names the source, ``detail`` the offending text."""
    PARSE_ERRORS.labels(collector).inc()
    key = (collector, what)
    with _seen_lock:
        first = key not in _seen
        if first and len(_seen) < _SEEN_LIMIT:
            _seen.add(key)
    level = logging.WARNING if first else logging.DEBUG
    log.log(
        level,
        "skipped malformed input",
        extra={"collector": collector, "source": what, "detail": repr(detail)[:200]},
    )
