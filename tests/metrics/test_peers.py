"""nodeagent beside the real peers on this host: Debian's prometheus-node-exporter, prometheus and promtool.

* Of the metrics the node-mixin's alerts and recording rules and the Grafana "Node Exporter Full"
  dashboard query, both expose the same ones on this host, nodeagent with at least node_exporter's labels.
* Values that cannot drift between two scrapes a moment apart are equal.
* A Prometheus server scrapes nodeagent (it asks for OpenMetrics) and evaluates node-mixin recording rules.
* promtool accepts what /metrics and `nodeagent metrics` print.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, require_binary

pytestmark = pytest.mark.peer

# Metric names the node-mixin (docs/node-mixin: alerts, recording rules, USE dashboards) and the
# "Node Exporter Full" Grafana dashboard (rfmoz/grafana-dashboards) query, for Linux.
MIXIN_AND_DASHBOARD_METRICS = (
    # CPU, load, scheduler
    "node_cpu_seconds_total",
    "node_cpu_guest_seconds_total",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_schedstat_running_seconds_total",
    "node_schedstat_waiting_seconds_total",
    "node_cpu_scaling_frequency_hertz",
    "node_pressure_cpu_waiting_seconds_total",
    "node_pressure_memory_waiting_seconds_total",
    "node_pressure_memory_stalled_seconds_total",
    "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total",
    # memory
    "node_memory_MemTotal_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_Buffers_bytes",
    "node_memory_Cached_bytes",
    "node_memory_Slab_bytes",
    "node_memory_SReclaimable_bytes",
    "node_memory_SUnreclaim_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_memory_SwapCached_bytes",
    "node_memory_Active_bytes",
    "node_memory_Inactive_bytes",
    "node_memory_Dirty_bytes",
    "node_memory_Writeback_bytes",
    "node_memory_Mapped_bytes",
    "node_memory_Shmem_bytes",
    "node_memory_PageTables_bytes",
    "node_memory_Committed_AS_bytes",
    "node_memory_CommitLimit_bytes",
    "node_memory_HugePages_Total",
    "node_memory_Hugepagesize_bytes",
    "node_memory_VmallocUsed_bytes",
    "node_memory_KernelStack_bytes",
    "node_vmstat_pgpgin",
    "node_vmstat_pgpgout",
    "node_vmstat_pswpin",
    "node_vmstat_pswpout",
    "node_vmstat_pgfault",
    "node_vmstat_pgmajfault",
    "node_vmstat_oom_kill",
    # disks and filesystems
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_reads_completed_total",
    "node_disk_writes_completed_total",
    "node_disk_io_time_seconds_total",
    "node_disk_io_time_weighted_seconds_total",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total",
    "node_disk_io_now",
    "node_disk_reads_merged_total",
    "node_disk_writes_merged_total",
    "node_filesystem_size_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_md_disks",
    "node_md_disks_required",
    # network
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_network_up",
    "node_network_info",
    "node_network_mtu_bytes",
    "node_network_speed_bytes",
    "node_network_carrier",
    "node_network_transmit_queue_length",
    "node_arp_entries",
    "node_netstat_Tcp_CurrEstab",
    "node_netstat_Tcp_ActiveOpens",
    "node_netstat_Tcp_PassiveOpens",
    "node_netstat_Tcp_RetransSegs",
    "node_netstat_TcpExt_ListenOverflows",
    "node_netstat_TcpExt_ListenDrops",
    "node_netstat_Udp_InDatagrams",
    "node_netstat_Udp_OutDatagrams",
    "node_netstat_Udp_InErrors",
    "node_sockstat_sockets_used",
    "node_sockstat_TCP_inuse",
    "node_sockstat_TCP_tw",
    "node_sockstat_UDP_inuse",
    "node_softnet_processed_total",
    "node_softnet_dropped_total",
    "node_nf_conntrack_entries",
    "node_nf_conntrack_entries_limit",
    # system
    "node_boot_time_seconds",
    "node_time_seconds",
    "node_context_switches_total",
    "node_intr_total",
    "node_forks_total",
    "node_procs_running",
    "node_procs_blocked",
    "node_filefd_allocated",
    "node_filefd_maximum",
    "node_entropy_available_bits",
    "node_uname_info",
    "node_os_info",
    "node_timex_offset_seconds",
    "node_timex_sync_status",
    "node_timex_maxerror_seconds",
    "node_textfile_scrape_error",
    "node_hwmon_temp_celsius",
    "node_thermal_zone_temp",
    # per-collector bookkeeping every dashboard shows
    "node_scrape_collector_success",
    "node_scrape_collector_duration_seconds",
)

# node-mixin recording rules (docs/node-mixin/rules), with 1m rates for a short-lived test server.
RECORDING_RULES = """
groups:
  - name: node-exporter.rules
    interval: 1s
    rules:
      - record: instance:node_num_cpu:sum
        expr: count without (cpu, mode) (node_cpu_seconds_total{job="nodeagent",mode="idle"})
      - record: instance:node_cpu_utilisation:rate1m
        expr: |
          1 - avg without (cpu) (
            sum without (mode) (rate(node_cpu_seconds_total{job="nodeagent", mode=~"idle|iowait|steal"}[1m]))
          )
      - record: instance:node_load1_per_cpu:ratio
        expr: node_load1{job="nodeagent"} / instance:node_num_cpu:sum{job="nodeagent"}
      - record: instance:node_memory_utilisation:ratio
        expr: |
          1 - (node_memory_MemAvailable_bytes{job="nodeagent"} / node_memory_MemTotal_bytes{job="nodeagent"})
"""

PEER_TIMEOUT = 30.0


@dataclass
class Exposition:
    """One scrape, parsed: family -> label names seen, and (family, labels) -> value."""

    label_names: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    @classmethod
    def parse(cls, text: str) -> Exposition:
        exposition = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                exposition.label_names[sample.name].update(sample.labels)
                exposition.values[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
        return exposition


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def wait_http(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + PEER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}")
        try:
            http_get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{name} did not answer {url} within {PEER_TIMEOUT}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def nodeagent_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("nodeagent") / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodeagent", "run", "--no-logs", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, "nodeagent")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def node_exporter_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-node-exporter", "node_exporter")
    port = free_port()
    log = (tmp_path_factory.mktemp("node_exporter") / "stderr.log").open("wb")
    # Debian turns the systemd collector on; it talks to D-Bus, which this comparison does not need.
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--no-collector.systemd"], stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", proc, "node_exporter")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def raw_scrapes(nodeagent_url: str, node_exporter_url: str) -> tuple[bytes, bytes]:
    """(node_exporter, nodeagent) text format, scraped back to back."""
    return http_get(f"{node_exporter_url}/metrics"), http_get(f"{nodeagent_url}/metrics")


@pytest.fixture(scope="module")
def scrapes(raw_scrapes: tuple[bytes, bytes]) -> tuple[Exposition, Exposition]:
    return Exposition.parse(raw_scrapes[0].decode()), Exposition.parse(raw_scrapes[1].decode())


@pytest.mark.parametrize("name", MIXIN_AND_DASHBOARD_METRICS)
def test_dashboard_metric_is_exposed_like_node_exporter(
    name: str, scrapes: tuple[Exposition, Exposition]
) -> None:
    theirs, ours = scrapes
    if name not in theirs.values:  # e.g. no md arrays or hwmon sensors on this host: nor do we
        assert name not in ours.values, f"nodeagent exposes {name}, node_exporter does not on this host"
        return
    assert name in ours.values, f"node_exporter exposes {name} here, nodeagent does not"
    missing = theirs.label_names[name] - ours.label_names[name]
    assert not missing, f"{name}: nodeagent lacks node_exporter's labels {sorted(missing)}"


def single(exposition: Exposition, name: str) -> float:
    (value,) = exposition.values[name].values()
    return value


@pytest.mark.parametrize(
    "name",
    [
        "node_memory_MemTotal_bytes",
        "node_memory_SwapTotal_bytes",
        "node_boot_time_seconds",
        "node_filefd_maximum",
    ],
)
def test_values_that_cannot_drift_are_equal(name: str, scrapes: tuple[Exposition, Exposition]) -> None:
    theirs, ours = scrapes
    if name not in theirs.values:
        pytest.skip(f"node_exporter does not expose {name} on this host")
    assert single(ours, name) == single(theirs, name)


def test_cpu_count_is_equal(scrapes: tuple[Exposition, Exposition]) -> None:
    theirs, ours = scrapes

    def cpus(exposition: Exposition) -> set[str]:
        return {dict(labels)["cpu"] for labels in exposition.values["node_cpu_seconds_total"]}

    assert cpus(theirs)
    assert cpus(ours) == cpus(theirs)


@pytest.mark.parametrize(
    "name", ["node_filesystem_size_bytes", "node_filesystem_files", "node_filesystem_readonly"]
)
def test_filesystems_of_the_same_mounts_are_equal(name: str, scrapes: tuple[Exposition, Exposition]) -> None:
    theirs, ours = scrapes
    if not theirs.values[name]:
        pytest.skip("node_exporter reports no filesystems on this host")

    def by_mount(exposition: Exposition) -> dict[tuple[str, str, str], float]:
        out = {}
        for labels, value in exposition.values[name].items():
            as_dict = dict(labels)
            out[(as_dict["device"], as_dict["mountpoint"], as_dict["fstype"])] = value
        return out

    theirs_by_mount, ours_by_mount = by_mount(theirs), by_mount(ours)
    assert set(theirs_by_mount) <= set(ours_by_mount), "nodeagent misses mounts node_exporter reports"
    for mount, value in theirs_by_mount.items():
        assert ours_by_mount[mount] == value, f"{name} of {mount}"


# node_exporter names some metrics after kernel fields (node_netstat_TcpExt_ListenOverflows); promtool's
# lint calls those camelCase. Which ones appear depends on the host and version, so such remarks are
# expected for any name of these families.
KERNEL_FIELD_NAMES = re.compile(
    r"^node_(netstat|memory|vmstat|sockstat)_\w+ metric names should be "
    r"written in 'snake_case' not 'camelCase'$"
)


def promtool_lint(text: bytes) -> set[str]:
    """promtool check metrics: fails on parse errors (exit 1), returns the lint remarks (exit 3)."""
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode in (0, 3), output
    return {line.strip() for line in output.splitlines() if line.strip()}


def assert_lints_like_node_exporter(ours: bytes, theirs: bytes) -> None:
    """Parses, and every lint remark is one node_exporter's own output earns too."""
    unexplained = {
        remark
        for remark in promtool_lint(ours) - promtool_lint(theirs)
        if not KERNEL_FIELD_NAMES.match(remark)
    }
    assert not unexplained, sorted(unexplained)


def test_promtool_accepts_the_scrape(raw_scrapes: tuple[bytes, bytes]) -> None:
    theirs, ours = raw_scrapes
    assert_lints_like_node_exporter(ours, theirs)


def test_promtool_accepts_the_metrics_command(raw_scrapes: tuple[bytes, bytes]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nodeagent", "metrics"], capture_output=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"\nnode_load1 " in result.stdout
    assert_lints_like_node_exporter(result.stdout, raw_scrapes[0])


def prometheus_query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    reply = json.loads(http_get(url))
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def wait_for_result(base: str, expr: str, proc: subprocess.Popen[bytes]) -> list[dict]:
    deadline = time.monotonic() + PEER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}")
        result = prometheus_query(base, expr)
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"prometheus returned nothing for {expr} within {PEER_TIMEOUT}s")


def test_prometheus_scrapes_nodeagent_and_evaluates_mixin_rules(nodeagent_url: str, tmp_path: Path) -> None:
    binary = require_binary("prometheus")
    target = nodeagent_url.removeprefix("http://")
    (tmp_path / "rules.yml").write_text(RECORDING_RULES)
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        f"scrape_configs:\n  - job_name: nodeagent\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        wait_http(f"{base}/-/ready", proc, "prometheus")
        up = wait_for_result(base, 'up{job="nodeagent"} == 1', proc)
        assert up[0]["metric"]["instance"] == target
        targets = json.loads(http_get(f"{base}/api/v1/targets"))["data"]["activeTargets"]
        assert [t["lastError"] for t in targets] == [""]
        samples = prometheus_query(base, 'scrape_samples_scraped{job="nodeagent"}')
        assert float(samples[0]["value"][1]) > 100
        for record in (
            "instance:node_num_cpu:sum",
            "instance:node_cpu_utilisation:rate1m",
            "instance:node_load1_per_cpu:ratio",
            "instance:node_memory_utilisation:ratio",
        ):
            (series,) = wait_for_result(base, record, proc)
            value = float(series["value"][1])
            assert not math.isnan(value), f"{record} is NaN"
            if record == "instance:node_cpu_utilisation:rate1m":
                assert 0.0 <= value <= 1.0
    finally:
        stop(proc)
        log.close()
