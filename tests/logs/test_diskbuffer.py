"""The disk buffer: the queue on its own (append, read, acknowledge, rotate, bound, torn and corrupted
frames, arbitrary damage to its files), the payload codec, the ``buffer:`` config, and the shipper with
a disk-buffered sink that is down, refusing to take more, and restarted."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError, load_yaml
from nodeagent.config.logs import BufferConfig, parse_logs_config
from nodeagent.logs.diskbuffer import (
    HEADER,
    SEGMENT_SUFFIX,
    DiskBufferedSink,
    DiskQueue,
    buffer_directory,
    decode_batch,
    encode_batch,
)
from nodeagent.logs.record import RecordBatch, Records
from nodeagent.logs.sinks.base import RetryableSinkError
from tests.logs.conftest import (
    KUBE,
    MemorySink,
    eventually,
    make_config,
    sample,
    shipping,
    unique_name,
    write_lines,
)

MiB = 1024 * 1024


def run(messages: list[str], *, file: str = "/var/log/a.log", kubernetes: dict | None = None) -> Records:
    return Records(
        [f"2026-01-02T03:04:05.{n:09d}Z" for n in range(len(messages))],
        messages,
        ["stdout" if n % 3 else "stderr" for n in range(len(messages))],
        file,
        "node-1",
        kubernetes,
    )


def payload(tag: str, count: int = 3) -> bytes:
    return encode_batch(run([f"{tag}-{n}" for n in range(count)]))


def messages_of(frame_records: RecordBatch) -> list[str]:
    return [record.message for record in frame_records]


def read_all(queue: DiskQueue, ack: bool = True) -> list[list[str]]:
    batches = []
    while (frame := queue.read_next()) is not None:
        batches.append(messages_of(frame.records))
        if ack:
            queue.acknowledge(frame)
    return batches


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SEGMENT_SUFFIX))


# -- payload ----------------------------------------------------------------------------------------


def test_a_batch_survives_the_codec_field_for_field() -> None:
    batch = RecordBatch(
        [
            run(["plain", 'with "quotes" and \\ and \n', "ünïcode ✓", "lone \udcff surrogate", ""]),
            run(["separators \x1e \x1f \ue000 \ufdd0 all in one", "\x1e"]),
            run([]),
            run(["from a pod"], file="/var/log/pods/x/0.log", kubernetes={**KUBE, "labels": {"app": "web"}}),
        ]
    )
    batch.runs[0].streams[0] = None
    decoded = decode_batch(encode_batch(batch))
    assert [r.to_dict() for r in decoded] == [r.to_dict() for r in batch]


def test_every_column_of_records_is_written() -> None:
    # The codec writes Records.__slots__ and rebuilds with Records(**columns): a column added to Records
    # flows through the disk as long as the constructor's parameters are named like the slots.
    parameters = set(inspect.signature(Records).parameters)
    assert parameters == set(Records.__slots__)


def test_a_sequence_of_records_is_grouped_into_runs() -> None:
    records = list(run(["a", "b"])) + list(run(["c"], file="/var/log/b.log"))
    decoded = decode_batch(encode_batch(records))
    assert [r.to_dict() for r in decoded] == [r.to_dict() for r in records]
    assert len(decoded.runs) == 2


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"{}",
        b"[1]\n",
        b'[{"times": 1}]\n',
        b"\xff\xfe",
        b"[{}]\n",
        b'[{"columns": {}, "packed": {"messages": [3, "", 1]}}]\nabc',
        b'[{"columns": {}, "packed": {"messages": [-1, "x", 1]}}]\nabc',
    ],
)
def test_a_payload_that_is_not_a_batch_is_refused(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        decode_batch(garbage)


# -- the queue --------------------------------------------------------------------------------------


def test_append_read_acknowledge_and_resume_after_the_acknowledged(tmp_path: Path) -> None:
    queue = DiskQueue.open(tmp_path, 4 * MiB)
    for tag in "abc":
        assert queue.append(payload(tag), 3)
    assert queue.pending_records == 9
    first = queue.read_next()
    assert first is not None and messages_of(first.records) == ["a-0", "a-1", "a-2"]
    assert not first.replayed
    queue.acknowledge(first)
    second = queue.read_next()  # read, not acknowledged: delivered again after a restart
    assert second is not None and messages_of(second.records)[0] == "b-0"
    assert queue.pending_records == 6
    queue.close()

    queue = DiskQueue.open(tmp_path, 4 * MiB)
    assert queue.pending_records == 6
    frame = queue.read_next()
    assert frame is not None and frame.replayed and messages_of(frame.records)[0] == "b-0"
    queue.acknowledge(frame)
    assert queue.append(payload("d"), 3)
    assert read_all(queue) == [["c-0", "c-1", "c-2"], ["d-0", "d-1", "d-2"]]
    assert queue.pending_records == 0 and queue.head_ns is None
    queue.close()

    queue = DiskQueue.open(tmp_path, 4 * MiB)
    assert queue.read_next() is None and queue.pending_records == 0
    queue.close()


def test_segments_rotate_are_deleted_once_acknowledged_and_the_bound_holds(tmp_path: Path) -> None:
    max_size = 64 * 1024
    queue = DiskQueue.open(tmp_path, max_size)
    body = payload("x" * 200, 10)
    appended = 0
    while queue.append(body, 10):
        appended += 1
        assert sum(p.stat().st_size for p in segment_files(tmp_path)) <= max_size
    assert appended >= (max_size * 3 // 4) // (HEADER.size + len(body))  # full, not refused early
    assert len(segment_files(tmp_path)) >= 4
    assert queue.used_bytes == sum(p.stat().st_size for p in segment_files(tmp_path))
    assert not queue.append(body, 10)  # full: nothing written
    assert len(read_all(queue)) == appended
    assert len(segment_files(tmp_path)) == 1  # the one being written to
    for _ in range(3 * appended):  # keeps going as it is drained, never beyond the bound
        assert queue.append(body, 10)
        frame = queue.read_next()
        assert frame is not None
        queue.acknowledge(frame)
        assert sum(p.stat().st_size for p in segment_files(tmp_path)) <= max_size
    queue.close()


def test_a_torn_tail_is_skipped_counted_and_the_rest_survives(tmp_path: Path) -> None:
    queue = DiskQueue.open(tmp_path, 4 * MiB)
    for tag in "abc":
        queue.append(payload(tag), 3)
    queue.close()
    (segment,) = segment_files(tmp_path)
    with open(segment, "r+b") as handle:
        handle.truncate(segment.stat().st_size - 5)  # SIGKILL halfway through the last write
    corrupt: list[int] = []
    queue = DiskQueue.open(tmp_path, 4 * MiB, corrupt.append)
    queue.append(payload("d"), 3)
    assert [b[0] for b in read_all(queue)] == ["a-0", "b-0", "d-0"]
    assert len(corrupt) == 1 and corrupt[0] > 0
    queue.close()


def test_a_corrupted_middle_frame_is_skipped_and_counted(tmp_path: Path) -> None:
    queue = DiskQueue.open(tmp_path, 4 * MiB)
    sizes = []
    for tag in "abc":
        queue.append(payload(tag), 3)
        sizes.append(queue.used_bytes)
    queue.close()
    (segment,) = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    data[sizes[0] + 2] ^= 0xFF  # the magic of the second frame
    data[sizes[0] + HEADER.size + 5] ^= 0x01  # and its payload
    segment.write_bytes(bytes(data))
    corrupt: list[int] = []
    queue = DiskQueue.open(tmp_path, 4 * MiB, corrupt.append)
    assert [b[0] for b in read_all(queue)] == ["a-0", "c-0"]
    assert corrupt == [sizes[1] - sizes[0]]
    queue.close()


def test_a_damaged_position_file_falls_back_to_the_other_slot(tmp_path: Path) -> None:
    queue = DiskQueue.open(tmp_path, 4 * MiB)
    for tag in "abc":
        queue.append(payload(tag), 3)
    for _ in range(2):
        frame = queue.read_next()
        assert frame is not None
        queue.acknowledge(frame)
    queue.close()
    position = tmp_path / "position"
    data = bytearray(position.read_bytes())
    data[512 * 0 + 3] ^= 0xFF  # the newest slot (generation 2) is torn: one batch behind
    position.write_bytes(bytes(data))
    queue = DiskQueue.open(tmp_path, 4 * MiB)
    assert [b[0] for b in read_all(queue)] == ["b-0", "c-0"]
    queue.close()


FRAMES = 12


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.one_of(st.none(), st.integers(min_value=0)),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), max_size=4),
    position_damage=st.one_of(st.none(), st.binary(max_size=1100)),
    acknowledged=st.integers(min_value=0, max_value=FRAMES),
)
def test_any_damage_to_the_files_yields_only_whole_frames_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    cut: int | None,
    flips: list[tuple[int, int]],
    position_damage: bytes | None,
    acknowledged: int,
) -> None:
    directory = tmp_path_factory.mktemp("q")
    queue = DiskQueue.open(directory, 64 * 1024)  # several segments
    expected = [[f"{n}-{k}-{'y' * (n * 97 % 700)}" for k in range(n % 4 + 1)] for n in range(FRAMES)]
    for batch in expected:
        assert queue.append(encode_batch(run(batch)), len(batch))
    for _ in range(acknowledged):
        frame = queue.read_next()
        assert frame is not None
        queue.acknowledge(frame)
    queue.close()
    segments = segment_files(directory)
    total = sum(p.stat().st_size for p in segments)
    damaged_from = total
    if cut is not None:  # a cut anywhere in the last segment
        last = segments[-1]
        keep = cut % (last.stat().st_size + 1)
        with open(last, "r+b") as handle:
            handle.truncate(keep)
        damaged_from = min(damaged_from, total - segments[-1].stat().st_size + keep - 1)
    for where, mask in flips:
        segments = segment_files(directory)
        sizes = [p.stat().st_size for p in segments]
        if not sum(sizes):
            break
        where %= sum(sizes)
        for path, size in zip(segments, sizes, strict=True):
            if where < size:
                data = bytearray(path.read_bytes())
                data[where] ^= mask
                path.write_bytes(bytes(data))
                break
            where -= size
    if position_damage is not None:
        (directory / "position").write_bytes(position_damage)

    corrupt: list[int] = []
    queue = DiskQueue.open(directory, 64 * 1024, corrupt.append)
    got = read_all(queue)
    queue.close()
    # Every batch read is one that was written, whole, in the order written.
    indexes = [expected.index(batch) for batch in got]
    assert indexes == sorted(set(indexes))
    if not flips and cut is None and position_damage is None:
        assert indexes == list(range(acknowledged, FRAMES))
        assert not corrupt
    if not flips and position_damage is None:  # a cut loses the frames it cuts, and nothing before
        start = acknowledged
        assert indexes[: len(indexes)] == list(range(start, start + len(indexes)))
    shutil.rmtree(directory)


# -- config -----------------------------------------------------------------------------------------


def parse(text: str):
    document = load_yaml(text, "agent.yaml")
    return parse_logs_config(document["logs"], source="agent.yaml", environ={})


def test_buffer_config_defaults_and_keys() -> None:
    config = parse("""
logs:
  sinks:
    - {type: stdout}
    - {type: file, path: /tmp/x.jsonl, buffer: {type: disk}}
    - {type: file, name: f2, path: /tmp/y.jsonl, buffer: {type: disk, max_size: 2GiB, when_full: drop_newest}}
""")
    assert [s.buffer for s in config.sinks] == [
        BufferConfig(),
        BufferConfig(type="disk"),
        BufferConfig(type="disk", max_size=2 * 1024**3, when_full="drop_newest"),
    ]
    assert BufferConfig() == BufferConfig("memory", 1024**3, "block")
    assert "buffer" not in config.sinks[1].options


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{type: tape}", "agent.yaml:5: logs.sinks[0].buffer.type: expected one of memory, disk"),
        ("{type: disk, max_size: 1KiB}", "agent.yaml:5: logs.sinks[0].buffer.max_size: "),
        ("{type: disk, when_full: drop_oldest}", "agent.yaml:5: logs.sinks[0].buffer.when_full: "),
        ("{max_size: 2GiB}", "agent.yaml:5: logs.sinks[0].buffer.max_size: only for a disk buffer"),
        ("{type: disk, size: 2GiB}", "agent.yaml:5: logs.sinks[0].buffer.size: unknown key"),
    ],
)
def test_buffer_config_errors_name_the_key_and_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"""
logs:
  sinks:
    - type: stdout
      buffer: {value}
""")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_the_buffer_directory_name_cannot_leave_buffers(tmp_path: Path) -> None:
    assert buffer_directory(tmp_path, "loki") == tmp_path / "buffers" / "loki"
    for name in ("..", "../x", "a/b", "."):
        directory = buffer_directory(tmp_path, name)
        assert directory.parent == tmp_path / "buffers" and "/" not in directory.name
        assert directory.name not in (".", "..")


# -- the shipper with a disk-buffered sink ----------------------------------------------------------


def disk_buffered(tmp_path: Path, sink: MemorySink, config, **buffer: object) -> DiskBufferedSink:
    settings_ = BufferConfig(type="disk", **buffer)  # type: ignore[arg-type]
    return DiskBufferedSink(sink, buffer_directory(config.state_dir, sink.name), settings_, config)


async def test_a_down_sink_gets_everything_later_and_the_checkpoint_moves_on_meanwhile(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    config = make_config(tmp_path, [log], batch_max_records=50)
    sink = MemorySink(unique_name("sink"))
    sink.fail_with = RetryableSinkError("503 down")
    buffered = disk_buffered(tmp_path, sink, config)
    lines = [f"line {n}" for n in range(500)]
    write_lines(log, lines)
    labels = {"sink": sink.name}
    async with shipping(config, buffered):
        await eventually(
            lambda: sample("nodeagent_logs_disk_buffer_records", labels) == 500,
            what="all lines in the buffer",
        )
        await eventually(
            lambda: (
                config.checkpoint_path.exists()
                and b'"offset":%d' % log.stat().st_size in config.checkpoint_path.read_bytes()
            )
        )
        assert sample("nodeagent_logs_disk_buffer_bytes", labels) > 0
        assert sample("nodeagent_logs_disk_buffer_oldest_record_age_seconds", labels) > 0
        assert sample("nodeagent_logs_records_sent_total", labels) == 0
        sink.fail_with = None
        await eventually(lambda: len(sink.records) == 500, what="the backlog delivered")
        await eventually(lambda: sample("nodeagent_logs_disk_buffer_records", labels) == 0)
        assert sample("nodeagent_logs_disk_buffer_oldest_record_age_seconds", labels) == 0
    assert sink.messages() == lines
    assert sample("nodeagent_logs_records_sent_total", labels) == 500  # counted once, by the buffer
    assert sink.closed


async def test_a_restart_replays_what_the_sink_never_acknowledged(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    config = make_config(tmp_path, [log], batch_max_records=40)
    name = unique_name("sink")
    down = MemorySink(name)
    down.fail_with = RetryableSinkError("503 down")
    write_lines(log, [f"line {n}" for n in range(300)])
    async with shipping(config, disk_buffered(tmp_path, down, config)):
        await eventually(lambda: sample("nodeagent_logs_disk_buffer_records", {"sink": name}) == 300)
    assert down.records == []
    up = MemorySink(name)
    write_lines(log, [f"line {n}" for n in range(300, 350)])
    async with shipping(config, disk_buffered(tmp_path, up, config)):
        await eventually(lambda: len(up.records) == 350, what="backlog and new lines")
    assert up.messages() == [f"line {n}" for n in range(350)]
    assert sample("nodeagent_logs_disk_buffer_replayed_records_total", {"sink": name}) == 300


@pytest.mark.parametrize("when_full", ["block", "drop_newest"])
async def test_when_full_block_stops_reading_and_drop_newest_drops_counted(
    tmp_path: Path, when_full: str
) -> None:
    base = tmp_path
    log = base / "a.log"
    config = make_config(base, [log], batch_max_records=100, buffer_max_bytes="64KiB")
    sink = MemorySink(unique_name("sink"))
    sink.fail_with = RetryableSinkError("503 down")
    buffered = disk_buffered(base, sink, config, max_size=64 * 1024, when_full=when_full)
    lines = [f"{n:06d} " + "z" * 200 for n in range(3000)]  # about 640 KB: ten times the buffer
    write_lines(log, lines)
    labels = {"sink": sink.name}
    async with shipping(config, buffered) as shipper:
        if when_full == "block":
            await eventually(lambda: sample("nodeagent_logs_disk_buffer_records", labels) > 0)
            await eventually(lambda: sample("nodeagent_logs_buffer_bytes") > 32 * 1024)
            read = sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name})
            assert read < log.stat().st_size / 2  # reading stopped: backpressure
            assert sample("nodeagent_logs_records_dropped_total", {**labels, "reason": "buffer_full"}) == 0
        else:
            await eventually(
                lambda: (
                    sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name})
                    == log.stat().st_size
                ),
                what="everything read",
            )
            await eventually(
                lambda: (
                    sample("nodeagent_logs_records_dropped_total", {**labels, "reason": "buffer_full"})
                    + sample("nodeagent_logs_disk_buffer_records", labels)
                    == 3000
                ),
                what="every line buffered or dropped",
            )
        assert sample("nodeagent_logs_disk_buffer_bytes", labels) <= 64 * 1024
        assert sum(p.stat().st_size for p in segment_files(buffered.directory)) <= 64 * 1024
        sink.fail_with = None
        if when_full == "block":
            await eventually(lambda: len(sink.records) == 3000, timeout=20, what="everything, in the end")
            assert sink.messages() == lines
        else:
            kept = 3000 - sample("nodeagent_logs_records_dropped_total", {**labels, "reason": "buffer_full"})
            await eventually(lambda: len(sink.records) == kept, what="what was kept")
            assert sink.messages() == sorted(sink.messages())  # in order, the newest dropped
