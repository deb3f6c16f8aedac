"""Counting and logging malformed kernel input that a collector skipped instead of failing.

A line node_exporter would skip (or one that would make it fail the whole collector) is skipped here,
counted in ``nodeagent_collector_parse_errors_total{collector}`` and logged once per distinct problem at
warning level (then at debug level, so a bad line that stays in a file does not flood the log every
scrape). Collectors reach this through ``Collector.report`` / ``Collector.skip`` only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from prometheus_client import Counter

from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.metrics.host.skips import Skip
from nodeagent.safeio import quote

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


def record(collector: str, skips: Iterable[Skip]) -> None:
    """Count and log each skipped item of ``collector``."""
    for what, detail in skips:
        PARSE_ERRORS.labels(collector).inc()
        key = (collector, what)
        with _seen_lock:
            first = key not in _seen
            if first and len(_seen) < _SEEN_LIMIT:
                _seen.add(key)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "skipped malformed input",
            extra={
                "collector": collector,
                "source": what,
                "detail": quote(detail if isinstance(detail, (str, bytes)) else repr(detail)),
            },
        )


def count(collector: str) -> float:
    """Items skipped by ``collector`` since start (for tests and diagnostics)."""
    value = AGENT_REGISTRY.get_sample_value(
        "nodeagent_collector_parse_errors_total", {"collector": collector}
    )
    return value or 0.0
