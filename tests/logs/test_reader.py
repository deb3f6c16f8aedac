"""Reading files through the real shipper: start positions, discovery, awkward bytes and lines."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from nodeagent import safeio
from nodeagent.logs import discovery
from nodeagent.logs import reader as reader_module
from tests.logs.conftest import (
    MemorySink,
    eventually,
    make_config,
    sample,
    shipping,
    unique_name,
    write_lines,
)


async def test_reads_existing_then_appended_lines_with_record_fields(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, ["one", "two"])
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [tmp_path / "*.log"]), sink) as shipper:
        await eventually(lambda: len(sink.records) == 2, what="existing lines")
        write_lines(log, ["three"])
        await eventually(lambda: len(sink.records) == 3, what="appended line")
    assert sink.messages() == ["one", "two", "three"]
    record = sink.records[0]
    assert record.file == str(log)
    assert record.node == "node-1"
    assert record.stream is None
    assert record.kubernetes is None
    assert len(record.time) == 30 and record.time.endswith("Z")  # read time, RFC 3339 with nanoseconds
    assert sample("nodeagent_logs_lines_read_total", {"input": shipper.input_name}) == 3
    assert sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name}) == len(
        "one\ntwo\nthree\n"
    )


async def test_read_from_tail_skips_what_exists_but_reads_later_files_from_their_start(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.log"
    write_lines(old, ["before start"])
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "*.log"], input_options={"read_from": "tail"})
    async with shipping(config, sink):
        write_lines(old, ["after start"])
        write_lines(tmp_path / "new.log", ["new file, first line"])
        await eventually(lambda: len(sink.records) == 2, what="two lines")
        await asyncio.sleep(0.1)
    assert sorted(sink.messages()) == ["after start", "new file, first line"]


async def test_new_file_is_picked_up_by_file_events_not_the_rescan(tmp_path: Path) -> None:
    (tmp_path / "pods" / "ns_pod_uid" / "c").mkdir(parents=True)
    sink = MemorySink()
    # A rescan an hour away: only inotify can find the new file (and the new directory) in time.
    config = make_config(tmp_path, [tmp_path / "pods/*/*/*.log"], rescan_interval="1h")
    async with shipping(config, sink):
        write_lines(tmp_path / "pods" / "ns_pod_uid" / "c" / "0.log", ["hello"])
        new_dir = tmp_path / "pods" / "ns_other_uid2" / "c"
        new_dir.mkdir(parents=True)
        write_lines(new_dir / "0.log", ["from a new pod directory"])
        await eventually(lambda: len(sink.records) == 2, timeout=5, what="both new files")
    assert sorted(sink.messages()) == ["from a new pod directory", "hello"]


async def test_globs_and_excludes(tmp_path: Path) -> None:
    for name in ("a.log", "b.log.gz", "c.tmp", "d.txt", ".hidden.log"):
        write_lines(tmp_path / name, [name])
    (tmp_path / "dir.log").mkdir()
    sink = MemorySink()
    config = make_config(
        tmp_path, [tmp_path / "*.log*", tmp_path / "*.tmp"], input_options={"exclude": ["*.gz", "*.tmp"]}
    )
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) >= 1, what="a.log")
        await asyncio.sleep(0.2)
    assert sink.messages() == ["a.log"]


async def test_invalid_utf8_and_nul_bytes_are_kept_readable(tmp_path: Path) -> None:
    log = tmp_path / "bin.log"
    log.write_bytes(b"ok \xff\xfe bad\n\x00\x00nul\x00\n\xe2\x82\xac euro\n")
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink):
        await eventually(lambda: len(sink.records) == 3, what="three lines")
    assert sink.messages() == ["ok \ufffd\ufffd bad", "\x00\x00nul\x00", "\u20ac euro"]
    assert '"\\u0000\\u0000nul\\u0000"' in sink.records[1].to_json()


async def test_last_line_without_newline_waits_for_its_end_then_is_sent_after_the_timeout(
    tmp_path: Path,
) -> None:
    log = tmp_path / "partial.log"
    sink = MemorySink()
    config = make_config(tmp_path, [log], input_options={"partial_line_timeout": "600ms"})
    log.write_bytes(b"")
    async with shipping(config, sink):
        with open(log, "ab") as handle:
            handle.write(b"complete\nhalf a li")
            handle.flush()
            await eventually(lambda: len(sink.records) == 1, what="the complete line")
            await asyncio.sleep(0.2)
            handle.write(b"ne\nno end")
            handle.flush()
            await eventually(lambda: len(sink.records) == 2, what="the finished line")
            assert sink.messages() == ["complete", "half a line"]
            # "no end" never gets its newline: it goes out on its own after the timeout.
            await eventually(lambda: len(sink.records) == 3, timeout=5, what="the unfinished line")
    assert sink.messages() == ["complete", "half a line", "no end"]


async def test_giant_lines_are_cut_and_counted_and_never_stall_the_file(tmp_path: Path) -> None:
    log = tmp_path / "giant.log"
    sink = MemorySink()
    config = make_config(tmp_path, [log], input_options={"max_line_bytes": "1KiB"})
    log.write_bytes(b"")
    async with shipping(config, sink) as shipper:
        with open(log, "ab") as handle:
            handle.write(b"x" * 300_000 + b"\nsmall\n")  # a whole giant line in one write
            handle.flush()
            await eventually(lambda: len(sink.records) == 2, what="giant + small")
            # A giant line that arrives in pieces, without its newline for a while.
            for _ in range(5):
                handle.write(b"y" * 100_000)
                handle.flush()
                await asyncio.sleep(0.03)
            handle.write(b"tail of y\nafter\n")
            handle.flush()
            await eventually(lambda: len(sink.records) == 4, what="second giant + after")
        await asyncio.sleep(0.1)
        truncated = sample("nodeagent_logs_lines_truncated_total", {"input": shipper.input_name})
    messages = sink.messages()
    assert messages[0] == "x" * 1024
    assert messages[1] == "small"
    assert messages[2] == "y" * 1024
    assert messages[3] == "after"
    assert truncated == 2


async def test_cri_pieces_of_stdout_and_stderr_interleaved_are_joined_per_stream(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pods" / "kube-system_dns-7d8f_0123-4567" / "coredns"
    pod_dir.mkdir(parents=True)
    log = pod_dir / "2.log"
    log.write_text(
        "2026-11-27T10:00:00.000000001Z stdout P out-a \n"
        "2026-11-27T10:00:00.000000002Z stderr P err-a \n"
        "2026-11-27T10:00:00.000000003Z stdout F out-b\n"
        "2026-11-27T10:00:00.000000004Z stderr F err-b\n"
        "2026-11-27T10:00:00.000000005Z stdout F whole\n"
    )
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "pods/*/*/*.log"], input_options={"format": "cri"})
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 3, what="three records")
    by_message = {r.message: r for r in sink.records}
    assert set(by_message) == {"out-a out-b", "err-a err-b", "whole"}
    assert by_message["out-a out-b"].stream == "stdout"
    assert by_message["out-a out-b"].time == "2026-11-27T10:00:00.000000001Z"
    assert by_message["err-a err-b"].stream == "stderr"
    assert by_message["whole"].kubernetes == {
        "namespace": "kube-system",
        "pod": "dns-7d8f",
        "pod_uid": "0123-4567",
        "container": "coredns",
        "restart_count": 2,
    }


async def test_multiline_groups_are_flushed_after_their_timeout(tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    sink = MemorySink()
    config = make_config(
        tmp_path,
        [log],
        input_options={"format": "plain", "multiline": {"start_pattern": r"^\S", "timeout": "300ms"}},
    )
    write_lines(log, ["Exception in main", "  at a.b(C.java:1)", "  at d.e(F.java:2)", "next event"])
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 2, timeout=5, what="both groups")
    assert sink.messages() == ["Exception in main\n  at a.b(C.java:1)\n  at d.e(F.java:2)", "next event"]


async def test_an_unreadable_file_is_skipped_with_one_warning_and_a_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.log"
    write_lines(secret, ["hidden"])
    write_lines(tmp_path / "open.log", ["visible"])
    real_open = safeio.open_regular

    def refuse_secret(path: str, **options: Any) -> int:  # as root, chmod 000 would not stop a read
        if path == str(secret):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, **options)

    monkeypatch.setattr(safeio, "open_regular", refuse_secret)
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "*.log"], rescan_interval="100ms")
    async with shipping(config, sink) as shipper:
        await eventually(lambda: len(sink.records) == 1, what="the readable file")
        await asyncio.sleep(0.5)  # a few rescans: still one warning
        errors = sample("nodeagent_logs_read_errors_total", {"input": shipper.input_name, "reason": "open"})
    assert sink.messages() == ["visible"]
    warnings = [r for r in caplog.records if "cannot read a log file" in r.getMessage()]
    assert len(warnings) == 1 and getattr(warnings[0], "path", None) == str(secret)
    assert errors == 1


async def test_a_file_matched_twice_through_a_symlink_is_read_once(tmp_path: Path) -> None:
    target_dir = tmp_path / "pods"
    target_dir.mkdir()
    target = target_dir / "0.log"
    write_lines(target, ["once"])
    links = tmp_path / "containers"
    links.mkdir()
    os.symlink(target, links / "app.log")
    sink = MemorySink()
    config = make_config(tmp_path, [links / "*.log", target_dir / "*.log"])
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 1, what="the line")
        await asyncio.sleep(0.3)
    assert sink.messages() == ["once"]


async def test_without_file_events_polling_and_rescans_still_find_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nodeagent.logs.watch import inotify

    def no_inotify() -> None:
        raise OSError(24, "inotify_init1: Too many open files")

    monkeypatch.setattr(inotify, "Inotify", no_inotify)
    log = tmp_path / "app.log"
    write_lines(log, ["before"])
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "*.log"], rescan_interval="300ms")
    async with shipping(config, sink):
        write_lines(log, ["appended"])  # found by polling the open file
        write_lines(tmp_path / "new.log", ["new file"])  # found by a rescan
        await eventually(lambda: len(sink.records) == 3, what="all three lines")
    assert sorted(sink.messages()) == ["appended", "before", "new file"]


async def test_a_directory_that_appears_later_is_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_module, "RESCAN_WITHOUT_EVENTS", 0.2)  # how often roots are looked for
    pods = tmp_path / "pods"  # does not exist yet, as /var/log/pods before the kubelet's first pod
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [pods / "*/*/*.log"], rescan_interval="1h"), sink):
        (pods / "ns_a_1" / "c").mkdir(parents=True)
        write_lines(pods / "ns_a_1" / "c" / "0.log", ["first"])
        await eventually(lambda: len(sink.records) == 1, what="the first file in the new directory")
        (pods / "ns_b_2" / "c").mkdir(parents=True)
        write_lines(pods / "ns_b_2" / "c" / "0.log", ["second"])  # now through file events
        await eventually(lambda: len(sink.records) == 2, what="the second file")
    assert sink.messages() == ["first", "second"]


class RecordingEvents:
    """A ReaderEvents that remembers the calls, in place of the metrics."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, *args))


class SegmentList:
    """A PipelineInput that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def wait_for_space(self) -> None:
        return None

    def put(self, segment: Any) -> None:
        self.messages += segment.records.messages


async def test_the_reader_reports_through_the_events_it_is_given(tmp_path: Path) -> None:
    from nodeagent.logs.checkpoint import CheckpointStore
    from nodeagent.logs.reader import FileReader

    log = tmp_path / "app.log"
    write_lines(log, ["one", "two"])
    config = make_config(tmp_path, [tmp_path / "*.log"])
    name = config.inputs[0].name
    events, pipeline = RecordingEvents(), SegmentList()
    reader = FileReader(config, CheckpointStore(config.checkpoint_path), pipeline, "node-1", events)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(reader.run(stop, ready))
    try:
        await eventually(lambda: pipeline.messages == ["one", "two"], what="the lines")
        os.truncate(log, 0)
        write_lines(log, ["three"])
        await eventually(lambda: pipeline.messages[-1:] == ["three"], what="the line after truncation")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        reader.close()
    assert ("lines_read", name, 2, 8) in events.calls
    assert ("file_truncated", name) in events.calls
    assert ("file_counts", name, 1, 0) in events.calls  # the file registered (opened since)


@pytest.mark.parametrize("fmt", ["auto", "docker"])
@pytest.mark.parametrize("across_chunks", [True, False])
async def test_a_hostile_line_is_shipped_as_text_and_the_file_goes_on(
    tmp_path: Path, fmt: str, across_chunks: bool
) -> None:
    """Issue 12, item 1: an invalid byte and 5,000 nested arrays once ended the agent (across a read
    chunk boundary) or silently abandoned the file (within one chunk)."""
    from nodeagent.logs.tailer import CHUNK_BYTES

    evil = b'{"log":"\xff","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    good = [f"good line {i:06d}" for i in range(200)]
    head = b"".join(line.encode() + b"\n" for line in good)
    if across_chunks:  # pad so the hostile line starts 100 bytes before the first chunk ends
        head += b"p" * (CHUNK_BYTES - 100 - len(head) - 1) + b"\n"
    log = tmp_path / "app.log"
    log.write_bytes(head + evil + b"\nafter\n")
    sink = MemorySink()
    config = make_config(tmp_path, [log], input_options={"format": fmt})
    async with shipping(config, sink) as shipper:
        expected = len(head.splitlines()) + 2
        await eventually(lambda: len(sink.records) == expected, what="every line, the hostile one included")
        write_lines(log, ["appended later"])
        await eventually(lambda: len(sink.records) == expected + 1, what="the line appended later")
        assert shipper.task is not None and not shipper.task.done()
    messages = sink.messages()
    assert messages[: len(good)] == good
    assert messages[-3:] == [evil.decode("utf-8", "replace"), "after", "appended later"]


async def test_links_out_of_the_roots_are_refused_counted_and_logged_once_without_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12, item 2: ``0.log -> /etc/shadow`` in a pod's log directory (or a pod directory linking
    out) was read as root and shipped under the pod's name."""
    pods, containers, outside = tmp_path / "var/log/pods", tmp_path / "var/log/containers", tmp_path / "etc"
    monkeypatch.setattr(discovery, "RUNTIME_ROOTS", (str(pods),))  # this tree stands in for /var/log
    for directory in (pods / "ns_web_1/c", pods / "ns_evil_2/c", containers, outside / "c"):
        directory.mkdir(parents=True)
    write_lines(outside / "shadow", ["root:$6$secret-hash"])
    write_lines(outside / "c" / "0.log", ["root:$6$secret-hash"])
    write_lines(pods / "ns_web_1/c/0.log", ["honest line"])
    os.symlink(outside / "shadow", pods / "ns_evil_2/c/0.log")
    os.symlink(outside, pods / "ns_evil_3")
    os.symlink(pods / "ns_web_1/c/0.log", containers / f"web_ns_c-{'ab' * 32}.log")  # kubelet's link
    sink = MemorySink()
    config = make_config(
        tmp_path,
        [],
        inputs=[
            {"name": unique_name("pods"), "paths": [str(pods / "*/*/*.log")]},
            {"name": unique_name("containers"), "paths": [str(containers / "*.log")]},
        ],
        rescan_interval="100ms",
    )
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 1, what="the honest file (read once for both inputs)")
        os.symlink(outside / "shadow", pods / "ns_web_1/c/1.log")  # appears later: through file events
        await asyncio.sleep(0.6)  # several rescans
        refused = sample("nodeagent_logs_files_refused_total", {"input": config.inputs[0].name})
    assert sink.messages() == ["honest line"]
    assert refused >= 3
    warnings = [r for r in caplog.records if "outside the input's roots" in r.getMessage()]
    assert sorted(r.path for r in warnings) == sorted(  # type: ignore[attr-defined]
        repr(str(p)) for p in (pods / "ns_evil_2/c/0.log", pods / "ns_evil_3", pods / "ns_web_1/c/1.log")
    )
    assert "secret" not in caplog.text


async def test_the_checkpoint_moves_past_the_skipped_rest_of_a_cut_line(tmp_path: Path) -> None:
    """Issue 12, Low: after a line longer than max_line_bytes, the offset stayed at the cut point (262,144
    after a 100 MB line) and the rest of the line was read again after a restart."""
    log = tmp_path / "app.log"
    log.write_bytes(b"first\n" + b"x" * (3 << 20) + b"\n")
    size = log.stat().st_size
    state = tmp_path / "state" / "logs-checkpoints.json"

    def saved_offset() -> int:
        try:
            return json.loads(state.read_text())["files"][0]["offset"]
        except (OSError, ValueError, IndexError):
            return -1

    sink = MemorySink()
    config = make_config(tmp_path, [log])
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 2, what="the first line and the cut one")
        await eventually(lambda: saved_offset() == size, what="the checkpoint at the end of the file")
    assert sink.messages() == ["first", "x" * (256 * 1024)]
    again = MemorySink()
    async with shipping(config, again):
        write_lines(log, ["next"])
        await eventually(lambda: len(again.records) == 1, what="the next line")
        await asyncio.sleep(0.3)
    assert again.messages() == ["next"]  # nothing of the long line is read again


async def test_a_directory_that_cannot_be_listed_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As root no mode stops a listing, so the refusal is injected (test_discovery has the real one)."""
    closed = tmp_path / "closed"
    closed.mkdir()
    write_lines(closed / "a.log", ["hidden"])
    (tmp_path / "open").mkdir()
    write_lines(tmp_path / "open" / "a.log", ["visible"])
    real_scandir = os.scandir

    def refuse_closed(path: Any = ".") -> Any:
        if str(path) == str(closed):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_closed)
    caplog.set_level(logging.DEBUG, logger="nodeagent.logs.reader")
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "*" / "*.log"], rescan_interval="100ms")
    async with shipping(config, sink) as shipper:
        await eventually(lambda: len(sink.records) == 1, what="the readable file")
        await asyncio.sleep(0.5)  # a few rescans: still one warning
        errors = sample("nodeagent_logs_read_errors_total", {"input": shipper.input_name, "reason": "list"})
    assert sink.messages() == ["visible"]
    warnings = [r for r in caplog.records if "cannot list a log directory" in r.getMessage()]
    assert len(warnings) == 1 and getattr(warnings[0], "path", None) == safeio.quote(str(closed))
    assert errors == 1
    started = [r for r in caplog.records if r.getMessage() == "file started"]
    assert [getattr(r, "path", None) for r in started] == [str(tmp_path / "open" / "a.log")]
