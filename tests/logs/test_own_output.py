"""The agent never reads what it writes itself: its stdout (the stdout sink) and stderr (its own log)
redirected into a file an input tails are excluded, with one info line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, free_port


def records(path: Path) -> list[dict]:
    out = []
    for line in path.read_bytes().splitlines():
        if line.startswith(b"{"):
            out.append(json.loads(line))
    return out


def test_stdout_and_stderr_redirected_into_a_tailed_file_are_not_read_again(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    stdout_file, stderr_file = logs / "agent-out.log", logs / "agent-err.log"
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{free_port()}
log:
  format: json
logs:
  state_dir: {tmp_path / "state"}
  batch_timeout: 50ms
  inputs:
    - {{name: own, paths: ["{logs}/*.log"], format: plain}}
  sinks:
    - {{type: stdout}}
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(stdout_file, "wb") as out, open(stderr_file, "wb") as err:
        agent = subprocess.Popen(
            [sys.executable, "-m", "nodeagent", "run", "--no-metrics", "--config", str(config)],
            stdout=out,
            stderr=err,
            env=env,
        )
    try:
        deadline = time.monotonic() + 20
        while b"log shipper started" not in stderr_file.read_bytes():
            assert agent.poll() is None, stderr_file.read_text(errors="replace")
            assert time.monotonic() < deadline, "agent not ready"
            time.sleep(0.05)
        (logs / "app.log").write_text("hello\n")
        while "hello" not in {r.get("message") for r in records(stdout_file)}:
            assert time.monotonic() < deadline, "the app's line never arrived"
            time.sleep(0.05)
        time.sleep(1.5)  # long enough for a loop to show
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
    shipped = records(stdout_file)
    assert [(r["message"], r["file"]) for r in shipped] == [("hello", str(logs / "app.log"))]
    notes = [r for r in records(stderr_file) if "own output" in r.get("msg", r.get("message", ""))]
    assert {n["path"] for n in notes} == {str(stdout_file), str(stderr_file)}
    assert agent.returncode == 0
