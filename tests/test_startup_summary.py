"""The agent's info line at start: inputs, sinks (redacted), collectors, listen address."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, free_port

PASSWORD = "s3cret-in-url"
START_TIMEOUT = 20


def started_record(config: Path, *flags: str) -> dict[str, Any]:
    """Run the agent with a JSON log until its start-up line; that line as a dict."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodeagent", "run", "--config", str(config), "--log.format=json", *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    lines = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            record = json.loads(line)
            if record.get("msg") == "nodeagent started":
                return record
        raise AssertionError(f"no start-up line; exit {proc.poll()}:\n{''.join(lines)[-3000:]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_start_up_line_names_inputs_sinks_collectors_and_listen_address(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
web: {{listen-address: "127.0.0.1:{port}"}}
collector: {{disable-defaults: true, loadavg: {{enabled: true}}, meminfo: {{enabled: true}}}}
logs:
  state_dir: {tmp_path / "state"}
  inputs:
    - {{name: pods, paths: ["{tmp_path}/pods/*.log"], read_from: head}}
    - {{name: system, paths: ["{tmp_path}/a.log", "{tmp_path}/b.log"], read_from: tail}}
  sinks:
    - {{type: file, path: {tmp_path / "out.jsonl"}}}
    - {{type: http, url: "http://user:{PASSWORD}@127.0.0.1:9/ingest"}}
"""
    )
    record = started_record(config)
    assert record["level"] == "info"
    assert record["inputs"] == (
        f"pods(head):{tmp_path}/pods/*.log,system(tail):{tmp_path}/a.log|{tmp_path}/b.log"
    )
    assert (
        record["sinks"] == f"file=file:{tmp_path / 'out.jsonl'},http=http:http://user:***@127.0.0.1:9/ingest"
    )
    assert PASSWORD not in json.dumps(record)
    assert record["collectors"] == "loadavg,meminfo"
    assert record["listen"] == f"127.0.0.1:{port}"
    assert record["path"] == "/metrics"


def test_start_up_line_without_the_log_shipper(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(f'web: {{listen-address: "127.0.0.1:{port}"}}\n')
    record = started_record(config, "--no-logs", "--collector.disable-defaults", "--collector.time")
    assert (record["logs"], record["inputs"], record["sinks"]) == ("off", "none", "none")
    assert record["collectors"] == "time"
