"""The stdout sink: JSON lines, flushed per batch."""

from __future__ import annotations

import io
import json
import sys

import pytest

from nodeagent.logs.sinks.stdout import StdoutSink
from tests.logs.conftest import KUBE
from tests.logs.conftest import sink_record as record

# -- stdout -------------------------------------------------------------------------------------------


async def test_stdout_writes_json_lines_and_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    fake = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", fake)
    sink = StdoutSink("out", {})
    batch = [record("héllo"), record("second\nline", stream="stderr", kubernetes=KUBE)]
    await sink.send(batch)
    lines = raw.getvalue().decode().splitlines()  # visible without closing: flushed per batch
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in batch]
    assert lines[0] == batch[0].to_json()
