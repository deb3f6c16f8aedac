"""Filters in the running shipper: per input after parsing, per sink before its send, metrics, and the
checkpoint moving past records the filters drop (their bytes count as delivered)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.logs.conftest import (
    MemorySink,
    eventually,
    make_config,
    sample,
    shipping,
    unique_name,
    write_lines,
)

T = "2026-11-30T12:00:00.000000000Z"


def cri(stream: str, message: str) -> str:
    return f"{T} {stream} F {message}"


def saved_offsets(config_state: Path) -> dict[str, int]:
    path = config_state / "logs-checkpoints.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {entry["path"]: entry["offset"] for entry in data["files"]}


async def test_input_and_sink_filters(tmp_path: Path) -> None:
    pod = tmp_path / "pods" / "shop_web-0_u1" / "app"
    pod.mkdir(parents=True)
    log = pod / "0.log"
    errors, everything = unique_name("errors"), unique_name("all")
    config = make_config(
        tmp_path,
        [tmp_path / "pods" / "*" / "*" / "*.log"],
        input_options={
            "format": "cri",
            "filters": [
                {"type": "parse_json"},
                {"type": "drop", "field": "fields.level", "regex": "^debug$"},
                {"type": "redact", "field": "message", "regex": r"token=\w+", "replacement": "token=***"},
                {"type": "copy", "from": "kubernetes.namespace", "to": "fields.team"},
            ],
        },
        sinks=[
            {
                "type": "stdout",
                "name": errors,
                "filters": [{"type": "keep", "field": "fields.level", "regex": "error"}],
            },
            {"type": "stdout", "name": everything},
        ],
    )
    error_sink, all_sink = MemorySink(errors), MemorySink(everything)
    write_lines(
        log,
        [
            cri("stdout", '{"level":"info","msg":"up token=abc"}'),
            cri("stdout", '{"level":"debug","msg":"noise"}'),
            cri("stderr", '{"level":"error","msg":"down"}'),
            cri("stdout", "not json"),
        ],
    )
    async with shipping(config, error_sink, all_sink) as shipper:
        await eventually(lambda: len(all_sink.records) == 3, what="three records for the unfiltered sink")
        await eventually(lambda: len(error_sink.records) == 1, what="the error for the error sink")
        name = shipper.input_name
    assert all_sink.messages() == [
        '{"level":"info","msg":"up token=***"}',
        '{"level":"error","msg":"down"}',
        "not json",
    ]
    assert [r.fields for r in all_sink.records] == [
        {"level": "info", "msg": "up token=abc", "team": "shop"},
        {"level": "error", "msg": "down", "team": "shop"},
        {"team": "shop"},
    ]
    (error,) = error_sink.records
    assert json.loads(error.to_json())["level"] == "error" and error.stream == "stderr"
    assert error.kubernetes is not None and error.kubernetes["pod"] == "web-0"
    assert sample("nodeagent_logs_filter_dropped_total", {"stage": "input", "name": name}) == 1
    assert sample("nodeagent_logs_filter_failures_total", {"stage": "input", "name": name}) == 1  # not json
    assert sample("nodeagent_logs_filter_dropped_total", {"stage": "sink", "name": errors}) == 2
    assert sample("nodeagent_logs_records_sent_total", {"sink": errors}) == 1
    # Every line is acknowledged, dropped ones included.
    assert saved_offsets(tmp_path / "state") == {str(log): log.stat().st_size}


async def test_a_batch_a_sink_filters_away_entirely_is_acknowledged(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    none_name = unique_name("none")
    config = make_config(
        tmp_path,
        [log],
        sinks=[
            {
                "type": "stdout",
                "name": none_name,
                "filters": [{"type": "keep", "field": "message", "regex": "^$"}],
            }
        ],
    )
    sink = MemorySink(none_name)
    write_lines(log, ["one", "two"])
    async with shipping(config, sink):
        await eventually(
            lambda: saved_offsets(tmp_path / "state").get(str(log)) == log.stat().st_size,
            what="the checkpoint at the end of the file",
        )
    assert sink.attempts == 0 and sink.records == []


async def test_dropped_records_move_the_checkpoint_behind_records_in_flight(tmp_path: Path) -> None:
    """Records read while earlier ones wait for the sink, all dropped: once the earlier ones are
    acknowledged, the saved position is past the dropped ones too (nothing is read again)."""
    log = tmp_path / "app.log"
    config = make_config(
        tmp_path, [log], input_options={"filters": [{"type": "drop", "field": "message", "regex": "^drop"}]}
    )
    sink = MemorySink()
    sink.gate.clear()  # the destination stalls
    async with shipping(config, sink) as shipper:
        write_lines(log, ["keep 1"])
        await eventually(lambda: sink.attempts == 1, what="the first batch in flight")
        write_lines(log, ["drop 2", "drop 3"])
        name = shipper.input_name
        await eventually(
            lambda: sample("nodeagent_logs_filter_dropped_total", {"stage": "input", "name": name}) == 2,
            what="the dropped lines read",
        )
        write_lines(log, ["drop 4"])  # one more turn, also all dropped
        await eventually(
            lambda: sample("nodeagent_logs_filter_dropped_total", {"stage": "input", "name": name}) == 3,
            what="the last dropped line read",
        )
        await asyncio.sleep(0.1)
        sink.gate.set()
        await eventually(
            lambda: saved_offsets(tmp_path / "state").get(str(log)) == log.stat().st_size,
            what="the checkpoint past the dropped lines",
        )
    assert sink.messages() == ["keep 1"]
    # A restart reads nothing again.
    again = MemorySink()
    write_lines(log, ["keep 5"])
    async with shipping(config, again):
        await eventually(lambda: len(again.records) == 1, what="the new line")
        await asyncio.sleep(0.2)
    assert again.messages() == ["keep 5"]
