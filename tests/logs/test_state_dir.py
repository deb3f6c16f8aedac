"""An unusable state directory: refused at start with one line and exit 2; one that fails later is
reported once, retried with backoff, and the recovery is logged."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodeagent.logs.checkpoint import CheckpointStore
from tests.conftest import ROOT, free_port
from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines


def test_an_unwritable_state_directory_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = tmp_path / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{free_port()}
logs:
  state_dir: {blocker / "state"}
  inputs: [{{name: x, paths: ["{tmp_path}/*.log"]}}]
""")
    done = subprocess.run(
        [sys.executable, "-m", "nodeagent", "run", "--no-metrics", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("nodeagent: error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert f"{config}:5: logs.state_dir: " in errors[0]
    assert "cannot write checkpoints in" in errors[0] and "Not a directory" in errors[0]
    assert not list(tmp_path.glob("*.tmp"))


async def test_a_state_directory_failing_later_is_reported_once_and_retried_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.touch()
    sink = MemorySink()
    attempts: list[float] = []  # failed writes
    real_write = CheckpointStore.write
    broken = True

    def write(store: CheckpointStore, data: bytes) -> None:
        if broken:
            attempts.append(1.0)
            raise PermissionError(13, "Permission denied", str(store.path))
        real_write(store, data)

    monkeypatch.setattr(CheckpointStore, "write", write)
    async with shipping(make_config(tmp_path, [log]), sink):
        with caplog.at_level(logging.INFO, logger="nodeagent.logs.pipeline"):
            for second in range(4):  # lines keep coming: a commit is wanted after every batch
                write_lines(log, [f"line {second}"])
                await asyncio.sleep(1.0)
            await eventually(lambda: len(sink.records) == 4, what="the lines delivered meanwhile")
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            assert "checkpoint" in errors[0].getMessage()
            assert len(attempts) <= 3  # 1 s, then 2 s: not one try per batch and per second
            assert sample("nodeagent_logs_checkpoint_age_seconds") >= 3.0
            broken = False
            await eventually(
                lambda: any("written again" in r.getMessage() for r in caplog.records),
                timeout=6,
                what="the recovery logged",
            )
            assert sample("nodeagent_logs_checkpoint_age_seconds") < 1.0
    assert sink.messages() == [f"line {n}" for n in range(4)]
