"""One scrape: which collectors run, running them, the agent's own registry beside them, and the body.

Everything between "a request asked for these collectors in this format" and "these bytes" lives here,
without any HTTP: the server (aiohttp) and ``nodeagent metrics`` (stdout) both call :class:`Scraper`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_generate
from prometheus_client.registry import CollectorRegistry

from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.metrics._emit import add_sample
from nodeagent.metrics.exposition import encode, render_text, valid_families
from nodeagent.metrics.registry import Collector, NoDataError, catalogue
from nodeagent.safeio import quote

log = logging.getLogger("nodeagent.metrics")

# The agent's own runtime metrics that --web.disable-exporter-metrics leaves out (node_exporter: go_*,
# process_*, promhttp_*).
EXPORTER_METRIC_PREFIXES = ("process_", "python_", "promhttp_")


class FilterError(ValueError):
    """A collect[]/exclude[] query that cannot be served (HTTP 400)."""


class CallTracker:
    """Collector calls in progress, so that a collector whose call hangs (a hung mount, a device that
    never answers) is skipped by later scrapes until that call returns, as the filesystem collector
    does for mounts: one wedged source costs one thread, not every scrape."""

    def __init__(self, stuck_after: float) -> None:
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self._started: dict[str, list[float]] = {}  # collector -> start times of calls in progress
        self._reported: set[str] = set()

    def begin(self, name: str) -> float | None:
        """A token for :meth:`end`, or None: an earlier call of this collector is stuck, skip it."""
        now = time.monotonic()
        with self._lock:
            starts = self._started.setdefault(name, [])
            if starts and now - starts[0] >= self.stuck_after:
                first_report = name not in self._reported
                self._reported.add(name)
                stuck_for = now - starts[0]
            else:
                starts.append(now)
                return now
        if first_report:
            log.error(
                "collector call has not returned; skipping the collector until it does",
                extra={"collector": name, "stuck_seconds": round(stuck_for, 1)},
            )
        return None

    def end(self, name: str, token: float) -> None:
        with self._lock:
            starts = self._started[name]
            starts.remove(token)
            if not starts and name in self._reported:
                self._reported.discard(name)
                log.info("stuck collector call returned", extra={"collector": name})

    def stuck(self) -> list[tuple[str, float]]:
        """(collector, seconds) of each collector with a call running longer than ``stuck_after``."""
        now = time.monotonic()
        with self._lock:
            oldest = [(name, now - starts[0]) for name, starts in self._started.items() if starts]
        return sorted((name, age) for name, age in oldest if age >= self.stuck_after)


def run_collectors(collectors: Iterable[Collector], tracker: CallTracker | None = None) -> list[Metric]:
    """Run each collector once; add node_scrape_collector_{duration_seconds,success}.

    One failing collector never fails the scrape: its exception is its success 0 and one log line. With a
    ``tracker``, a collector whose earlier call is stuck is skipped (success 0). Runs synchronously: call
    it from a worker thread.
    """
    families: list[Metric] = []
    duration = GaugeMetricFamily(
        "node_scrape_collector_duration_seconds",
        "Time a collector took to run during this scrape.",
        labels=["collector"],
    )
    success = GaugeMetricFamily(
        "node_scrape_collector_success",
        "1 if the collector succeeded during this scrape, else 0.",
        labels=["collector"],
    )
    for collector in collectors:
        start = time.perf_counter()
        ok = 1.0
        token = tracker.begin(collector.name) if tracker is not None else 0.0
        try:
            if token is None:
                ok = 0.0
            else:
                families.extend(collector.collect())
        except (NoDataError, FileNotFoundError) as exc:
            ok = 0.0
            log.debug("collector returned no data", extra={"collector": collector.name, "err": str(exc)})
        except Exception as exc:
            ok = 0.0
            log.error("collector failed", extra={"collector": collector.name, "err": quote(repr(exc))})
        finally:
            if tracker is not None and token is not None:
                tracker.end(collector.name, token)
        labels = {"collector": collector.name}
        add_sample(duration, labels, time.perf_counter() - start)
        add_sample(success, labels, ok)
    families.append(duration)
    families.append(success)
    return families


def openmetrics_families(families: Iterable[Metric]) -> list[Metric]:
    """Families ready for prometheus_client's OpenMetrics writer.

    Families of one name are merged (OpenMetrics allows one HELP/TYPE per name); a counter whose
    samples lack the ``_total`` suffix OpenMetrics requires is exposed as ``unknown`` rather than
    producing output a parser rejects.
    """
    merged: dict[str, Metric] = {}
    for family in families:
        # ``_created`` samples are left out as in the text format, so both formats give the same series.
        samples = [s for s in family.samples if not (s.name.endswith("_created") and s.name != family.name)]
        if not samples:
            continue
        existing = merged.get(family.name)
        if existing is None:
            existing = copy.copy(family)
            existing.samples = samples
            merged[family.name] = existing
        else:
            existing.samples.extend(samples)
    for family in merged.values():
        if family.type == "counter" and any(
            not s.name.endswith(("_total", "_created")) for s in family.samples
        ):
            family.type = "unknown"
    return sorted(merged.values(), key=lambda f: f.name)


class _FamilyList:
    """Adapter giving a list of families the ``collect()`` the OpenMetrics writer asks for."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def render(families: Iterable[Metric], fmt: str = "text") -> bytes:
    """The body of one scrape: text 0.0.4 as node_exporter writes it, or OpenMetrics 1.0."""
    if fmt == "openmetrics":
        prepared = openmetrics_families(families)
        try:
            return openmetrics_generate(_FamilyList(prepared))
        except UnicodeEncodeError:  # a label value with bytes that are not UTF-8: rare, so checked late
            return openmetrics_generate(_FamilyList(valid_families(prepared)))
    return encode(render_text(families))


class Scraper:
    """Runs collectors and the agent registry and renders one response body. Thread-safe."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        *,
        exporter_metrics: bool = True,
        agent_registry: CollectorRegistry = AGENT_REGISTRY,
        stuck_after: float | None = None,
    ) -> None:
        """``stuck_after``: seconds after which a collector call still running is stuck, and the
        collector is skipped until it returns (None: never skip)."""
        self.collectors = list(collectors)
        self._by_name = {c.name: c for c in self.collectors}
        self._known = frozenset(catalogue())
        self.exporter_metrics = exporter_metrics
        self.agent_registry = agent_registry
        self.tracker = CallTracker(stuck_after) if stuck_after is not None else None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.collectors]

    def select(self, collect: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Collector]:
        """The collectors a ``collect[]``/``exclude[]`` query asks for (node_exporter semantics)."""
        if not collect and not exclude:
            return self.collectors
        if collect and exclude:
            raise FilterError("collect[] and exclude[] cannot be combined in one request")
        for name in (*collect, *exclude):
            if name not in self._known:
                raise FilterError(f"unknown collector {quote(name)}")  # bounded: a name may be 1 MB
        if collect:
            wanted = dict.fromkeys(collect)
            for name in wanted:
                if name not in self._by_name:
                    raise FilterError(f"collector {quote(name)} is not enabled")
            return [c for c in self.collectors if c.name in wanted]
        excluded = set(exclude)
        return [c for c in self.collectors if c.name not in excluded]

    def stuck(self) -> list[tuple[str, float]]:
        """(collector, seconds) of each collector call that has been running past ``stuck_after``."""
        return self.tracker.stuck() if self.tracker is not None else []

    def agent_families(self) -> list[Metric]:
        families = list(self.agent_registry.collect())
        if not self.exporter_metrics:
            families = [f for f in families if not f.name.startswith(EXPORTER_METRIC_PREFIXES)]
        return families

    def families(self, selected: Sequence[Collector] | None = None) -> list[Metric]:
        families = run_collectors(self.collectors if selected is None else selected, self.tracker)
        families.extend(self.agent_families())
        return families

    def render(self, selected: Sequence[Collector] | None = None, fmt: str = "text") -> bytes:
        """One response body. Blocking (reads procfs): call it from a worker thread."""
        return render(self.families(selected), fmt)
