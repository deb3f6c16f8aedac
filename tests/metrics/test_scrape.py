"""The scrape without HTTP: collector selection, running collectors, the agent registry, rendering; and
``nodeagent metrics`` printing one scrape without loading the HTTP server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from nodeagent.metrics.loadavg import LoadavgCollector
from nodeagent.metrics.registry import Collector, Paths
from nodeagent.metrics.scrape import FilterError, Scraper, openmetrics_families, render, run_collectors
from tests.conftest import NODE_EXPORTER_FIXTURE, ROOT, require_shared


@pytest.fixture
def paths() -> Paths:
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    return Paths(procfs=fixture / "proc", sysfs=fixture / "sys", rootfs=fixture, udev_data=fixture / "udev")


class _Stub(Collector):
    name = "loadavg"  # a registered name, so that selection knows it

    def collect(self):  # type: ignore[no-untyped-def]
        yield GaugeMetricFamily("node_stub", "Stub.", value=1)


def _stub(name: str) -> Collector:
    collector = _Stub(Paths(), {})
    collector.name = name  # type: ignore[misc]
    return collector


def test_scraper_families_without_exporter_metrics(paths: Paths) -> None:
    scraper = Scraper([LoadavgCollector(paths, {})], exporter_metrics=False)
    names = {family.name for family in scraper.families()}
    assert {"node_load1", "node_load5", "node_load15", "node_scrape_collector_success"} <= names
    assert not any(name.startswith(("process_", "python_")) for name in names)


def test_select_follows_node_exporter_filter_semantics() -> None:
    scraper = Scraper([_stub("loadavg"), _stub("cpu"), _stub("meminfo")])
    assert scraper.select() == scraper.collectors
    assert [c.name for c in scraper.select(collect=["meminfo", "loadavg", "meminfo"])] == [
        "loadavg",
        "meminfo",
    ]
    assert [c.name for c in scraper.select(exclude=["cpu"])] == ["loadavg", "meminfo"]
    with pytest.raises(FilterError, match="unknown collector 'nosuch'"):
        scraper.select(collect=["nosuch"])
    with pytest.raises(FilterError, match="unknown collector 'nosuch'"):
        scraper.select(exclude=["nosuch"])
    with pytest.raises(FilterError, match="collector 'netdev' is not enabled"):
        scraper.select(collect=["netdev"])
    with pytest.raises(FilterError, match="cannot be combined"):
        scraper.select(collect=["cpu"], exclude=["meminfo"])


def test_run_collectors_reports_each_collectors_success() -> None:
    class Broken(Collector):
        name = "broken"

        def collect(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("simulated bug")

    samples = {
        (s.name, s.labels.get("collector")): s.value
        for family in run_collectors([_stub("loadavg"), Broken(Paths(), {})])
        for s in family.samples
    }
    assert samples[("node_stub", None)] == 1
    assert samples[("node_scrape_collector_success", "loadavg")] == 1
    assert samples[("node_scrape_collector_success", "broken")] == 0
    assert ("node_scrape_collector_duration_seconds", "broken") in samples


def test_openmetrics_preparation_merges_families_and_keeps_parsers_happy() -> None:
    first = GaugeMetricFamily("node_x", "X.", labels=["a"])
    first.add_metric(["1"], 1)
    second = GaugeMetricFamily("node_x", "X.", labels=["a"])
    second.add_metric(["2"], 2)
    no_total = Metric("node_c", "A counter whose sample lacks _total.", "counter")
    no_total.add_sample("node_c", {}, 3)
    prepared = openmetrics_families([no_total, second, first])
    assert [(f.name, f.type) for f in prepared] == [("node_c", "unknown"), ("node_x", "gauge")]
    assert len(prepared[1].samples) == 2
    text = render([first, second, no_total], "openmetrics").decode()
    assert text.count("# TYPE node_x gauge") == 1
    assert [f.name for f in text_string_to_metric_families(text)] == ["node_c", "node_x"]
    assert render([first], "text") == b'# HELP node_x X.\n# TYPE node_x gauge\nnode_x{a="1"} 1\n'


def test_metrics_command_does_not_import_aiohttp(tmp_path: os.PathLike[str]) -> None:
    """`nodeagent metrics` prints one scrape; the HTTP server (aiohttp) stays unloaded."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['nodeagent', 'metrics', '--collector.disable-defaults', '--collector.loadavg']\n"
        "try:\n"
        "    runpy.run_module('nodeagent', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('aiohttp', 'nodeagent.server')))\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=env, timeout=60, check=False
    )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert 'node_scrape_collector_success{collector="loadavg"}' in stdout
    assert "LOADED []" in stderr
