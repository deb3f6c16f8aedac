"""benchmarks/lean (issue 14's table) stays runnable: a tiny run of some rows, its Markdown output checked for
shape only (figures are the benchmark's business, never a test's)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, require_binary


def test_lean_prints_the_table_with_peers_from_the_same_run() -> None:
    rsyslogd = require_binary("rsyslogd", "/usr/sbin/rsyslogd")
    node_exporter = require_binary("prometheus-node-exporter", "node_exporter")
    argv = [sys.executable, str(ROOT / "benchmarks" / "lean"), "--tiny", "--markdown"]
    argv += ["--rsyslog", rsyslogd, "--node-exporter", node_exporter]
    argv += ["--only=throughput", "--only=rss-logs"]  # the two that use every helper; ~15 s
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("host: ") and "load average" in line for line in lines), result.stdout
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| figure | nodeagent | peer (same run) | goal | met |"
    cells = [line.strip("| ").split(" | ") for line in table[1:]]
    assert [len(row) for row in cells] == [5] * 2, table
    throughput, rss_logs = cells
    assert throughput[0].startswith("max durable throughput") and "rsyslog" in throughput[2]
    assert "rsyslog" in rss_logs[2] and "node_exporter" in rss_logs[2]
    assert all(row[4] in ("met", "NOT met") for row in cells), cells
