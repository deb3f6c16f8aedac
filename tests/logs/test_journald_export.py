"""The journald input's pure parts: the export-format parser (any bytes, any pieces, bounded), the mapping
of journal fields into records, the journalctl command lines, the config section, and journal positions
in the checkpoint document."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config.logs import JournaldInputConfig
from nodeagent.logs.checkpoint import CheckpointStore, Segment
from nodeagent.logs.encoding import encode_json_lines, record_json
from nodeagent.logs.journald import (
    KEPT_FIELDS,
    MAX_NAME,
    ExportParser,
    encode_export,
    journal_record,
    journalctl_command,
    last_entry_command,
)
from nodeagent.logs.record import Records
from tests.config.test_logs import error_of, parse


def keep_all(limit: int = 1 << 30):
    return lambda name: limit


def feed_in_pieces(parser: ExportParser, data: bytes, cuts: list[int]) -> list:
    entries = []
    last = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        entries += parser.feed(data[last:cut])
        last = cut
    entries += parser.feed(data[last:])
    return entries


names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=20).filter(
    lambda name: not name[0].isdigit()
)
values = st.binary(max_size=300)
entries = st.lists(st.lists(st.tuples(names, values), min_size=1, max_size=6), max_size=6)


@settings(max_examples=200, deadline=None)
@given(entries, st.lists(st.integers(min_value=0), max_size=20))
def test_export_round_trip_in_any_pieces(written: list, cuts: list[int]) -> None:
    data = b"".join(encode_export(fields) for fields in written)
    parsed = feed_in_pieces(ExportParser(keep_all()), data, cuts)
    assert [entry.fields for entry in parsed] == [_first_values(fields) for fields in written]
    assert sum(entry.nbytes for entry in parsed) == len(data)
    assert not any(entry.cut for entry in parsed)


def _first_values(fields: list) -> dict:
    kept: dict = {}
    for name, value in fields:
        kept.setdefault(name, value)
    return kept


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=20), st.integers(0, 64))
def test_any_bytes_in_any_pieces_parse_alike_and_stay_bounded(
    data: bytes, cuts: list[int], limit: int
) -> None:
    whole = ExportParser(keep_all(limit)).feed(data)
    parser = ExportParser(keep_all(limit))
    pieces = feed_in_pieces(parser, data, cuts)
    assert [(e.fields, e.cut) for e in pieces] == [(e.fields, e.cut) for e in whole]
    assert len(parser._buf) <= MAX_NAME + 8  # what waits for more input is never more than a name
    for entry in whole:
        assert all(len(value) <= limit for value in entry.fields.values())
        journal_record(entry.fields)  # maps whatever came out


def test_a_huge_message_streams_through_in_bounded_memory() -> None:
    parser = ExportParser(lambda name: 1000 if name == "MESSAGE" else 0)
    chunk = b"y" * (1 << 20)
    entries = parser.feed(b"__CURSOR=c1\nMESSAGE=")
    for _ in range(100):  # 100 MiB of one text field
        entries += parser.feed(chunk)
        assert len(parser._buf) == 0
    entries += parser.feed(b"\nOTHER=z\n\n")
    binary = b"\x00\xff" * (1 << 20)
    entries += parser.feed(b"MESSAGE\n" + struct.pack("<Q", len(binary)))
    for start in range(0, len(binary), 65536):
        entries += parser.feed(binary[start : start + 65536])
        assert len(parser._buf) == 0
    entries += parser.feed(b"\n\n")
    first, second = entries
    assert first.fields == {"MESSAGE": b"y" * 1000} and first.cut
    assert first.nbytes == len(b"__CURSOR=c1\nMESSAGE=") + 100 * len(chunk) + len(b"\nOTHER=z\n\n")
    assert second.fields == {"MESSAGE": binary[:1000]} and second.cut


def test_garbage_lines_are_skipped_to_the_next_newline() -> None:
    parser = ExportParser(keep_all())
    data = b"\xff" * (MAX_NAME + 10) + b"\nMESSAGE=ok\n\n"
    (entry,) = parser.feed(data)
    assert entry.fields == {"MESSAGE": b"ok"}
    assert parser.garbage == 1


def test_a_binary_field_without_its_newline_is_read_on() -> None:
    parser = ExportParser(keep_all())
    data = b"MESSAGE\n" + struct.pack("<Q", 2) + b"abX=1\nNEXT=2\n\n"
    (entry,) = parser.feed(data)
    assert entry.fields == {"MESSAGE": b"ab", "X": b"1", "NEXT": b"2"}
    assert parser.garbage == 1


FIELDS = {
    "__CURSOR": b"s=1;i=2",
    "__REALTIME_TIMESTAMP": b"1700000000123456",
    "MESSAGE": b"caf\xc3\xa9 \xff",
    "PRIORITY": b"4",
    "_SYSTEMD_UNIT": b"kubelet.service",
    "_PID": b"123",
    "_UID": b"not a number",
    "_HOSTNAME": b"node-1",
    "SYSLOG_IDENTIFIER": b"kubelet",
    "_COMM": b"kubelet",
    "_BOOT_ID": b"b0",
    "UNKNOWN": b"dropped",
}


def test_journal_fields_map_into_the_record() -> None:
    mapped = journal_record(FIELDS)
    assert mapped.time == "2023-11-14T22:13:20.123456000Z"
    assert mapped.message == "café \ufffd"
    assert mapped.stream == "stdout"
    assert mapped.journal == {
        "priority": 4,
        "severity": "warning",
        "unit": "kubelet.service",
        "pid": 123,
        "uid": "not a number",
        "hostname": "node-1",
        "identifier": "kubelet",
        "comm": "kubelet",
        "boot_id": "b0",
    }
    assert journal_record({"PRIORITY": b"2"}).stream == "stderr"
    assert journal_record({"PRIORITY": b"9"}).stream is None
    assert journal_record({}, read_time_ns=5).time == "1970-01-01T00:00:00.000000005Z"
    assert journal_record({"__REALTIME_TIMESTAMP": b"9" * 20}, read_time_ns=5).time.startswith("1970")
    assert set(FIELDS) - {"UNKNOWN"} <= KEPT_FIELDS


def test_journal_records_encode_with_the_journal_object() -> None:
    mapped = [journal_record({**FIELDS, "MESSAGE": f'm"{n}'.encode()}) for n in range(3)]
    records = Records(
        [m.time for m in mapped],
        [m.message for m in mapped],
        [m.stream for m in mapped],
        "journal",
        "node-9",
        None,
        [{"journal": m.journal} for m in mapped],
    )
    lines = encode_json_lines(records).decode().splitlines()
    assert lines == [record_json(record) for record in records]
    assert json.loads(lines[1])["journal"]["unit"] == "kubelet.service"
    assert [r.message for r in records[1:]] == ['m"1', 'm"2']
    assert encode_json_lines(list(records)) == encode_json_lines(records)


def test_journalctl_command_lines() -> None:
    config = JournaldInputConfig(
        name="j",
        units=("kubelet.service", "containerd.service"),
        include=(("PRIORITY", ("3", "4")),),
        rootfs="/host/root",
    )
    assert journalctl_command(config, after_cursor="s=1") == [
        "journalctl",
        "--root=/host/root",
        "--output=export",
        "--no-pager",
        "--follow",
        "--no-tail",
        "--after-cursor=s=1",
        "_SYSTEMD_UNIT=kubelet.service",
        "_SYSTEMD_UNIT=containerd.service",
        "PRIORITY=3",
        "PRIORITY=4",
    ]
    directory = JournaldInputConfig(name="j", directory="/var/log/journal", rootfs="/host/root")
    assert journalctl_command(directory, after_cursor=None)[1] == "--directory=/host/root/var/log/journal"
    assert "--lines=1" in last_entry_command(directory)
    assert JournaldInputConfig(name="j").rootfs == "/"
    assert journalctl_command(JournaldInputConfig(name="j"), after_cursor=None)[1] == "--root=/"


def test_config_reads_journald_inputs_beside_file_inputs() -> None:
    config = parse(
        "logs:\n  inputs:\n"
        "    - paths: [/a/*.log]\n"
        "    - type: journald\n      name: node\n      units: [kubelet, containerd.service]\n"
        "      include: {PRIORITY: [3, '4']}\n      exclude: {SYSLOG_IDENTIFIER: noisy}\n"
        "      read_from: head\n      max_message_bytes: 64KiB\n"
    )
    assert [i.name for i in config.inputs] == ["input0"]
    (journal,) = config.journals
    assert journal.name == "node"
    assert journal.units == ("kubelet.service", "containerd.service")
    assert journal.include == (("PRIORITY", ("3", "4")),)
    assert journal.exclude == (("SYSLOG_IDENTIFIER", ("noisy",)),)
    assert journal.read_from == "head" and journal.max_message_bytes == 65536


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        (
            "logs:\n  inputs:\n    - paths: [/a]\n      units: [x]\n",
            "logs.inputs[0].units",
            4,
            "type journald",
        ),
        (
            "logs:\n  inputs:\n    - type: journald\n      paths: [/a]\n",
            "logs.inputs[0].paths",
            4,
            "type files",
        ),
        (
            "logs:\n  inputs:\n    - type: journald\n      format: cri\n",
            "logs.inputs[0].format",
            4,
            "type files",
        ),
        ("logs:\n  inputs:\n    - type: journal\n      paths: [/a]\n", "logs.inputs[0].type", 3, "one of"),
        (
            "logs:\n  inputs:\n    - type: journald\n      include: {priority: 3}\n",
            "logs.inputs[0].include",
            4,
            "journal field",
        ),
        (
            "logs:\n  inputs:\n    - type: journald\n      exclude: {MESSAGE: [[1]]}\n",
            "logs.inputs[0].exclude",
            4,
            "MESSAGE",
        ),
        (
            "logs:\n  inputs:\n    - type: journald\n      directory: var/log/journal\n",
            "logs.inputs[0].directory",
            4,
            "absolute",
        ),
        (
            "logs:\n  inputs:\n    - type: journald\n"
            "      restart_backoff: 5s\n      restart_max_backoff: 1s\n",
            "logs.inputs[0].restart_max_backoff",
            5,
            "smaller",
        ),
        (
            "logs:\n  inputs:\n    - {type: journald, name: a}\n    - {name: a, paths: [/b]}\n",
            "logs.inputs[1].name",
            4,
            "duplicate input name",
        ),
    ],
)
def test_config_errors_name_key_file_and_line(text: str, key: str, line: int, words: str) -> None:
    error = error_of(text)
    assert (error.key, error.line) == (key, line)
    assert words in error.message
    assert str(error).startswith(f"agent.yaml:{line}: {key}: ")
    assert "\n" not in str(error)


def test_journal_positions_are_committed_with_the_files_after_acknowledgement(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "state.json")
    store.load()
    position = store.journal_position("node")
    numbers = [position.read(f"c{n}") for n in range(4)]
    records = Records(["t"] * 4, ["m"] * 4, [None] * 4, "journal", "n", None)
    segment = Segment(position, records, numbers, 4)
    position.inflight += 4
    assert position.cursor is None
    store.pass_journal_entry(position, "c4-excluded")  # after record 4: carried by its acknowledgement
    store.acknowledge(segment.cursor, numbers[1], 2)
    assert position.cursor == "c1"
    data = store.snapshot()
    assert data is not None
    assert json.loads(data)["journals"] == [{"input": "node", "cursor": "c1"}]
    store.acknowledge(segment.cursor, numbers[3], 2)
    assert position.cursor == "c4-excluded" and position.inflight == 0
    store.pass_journal_entry(position, "c5-excluded")  # nothing in flight: moves at once
    assert position.cursor == "c5-excluded" and store.dirty
    data = store.snapshot()
    assert data is not None
    store.write(data)

    again = CheckpointStore(tmp_path / "state.json")
    again.load()
    assert again.journal_position("node").cursor == "c5-excluded"
    again.keep_journals({"other"})
    assert json.loads(again.snapshot() or b"") == {"version": 1, "files": []}


def test_a_state_without_journals_is_written_as_before(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "state.json")
    store.load()
    store.journal_position("never-read")  # no cursor yet: nothing to write
    store.dirty = True
    assert store.snapshot() == b'{"version":1,"files":[\n\n]}\n'


@pytest.mark.parametrize(
    "journals", ['"x"', '[{"input": 1, "cursor": "c"}]', '[{"input": "a", "cursor": ""}]', "[5]"]
)
def test_a_damaged_journal_entry_sets_the_state_aside(tmp_path: Path, journals: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(f'{{"version":1,"files":[],"journals":{journals}}}')
    store = CheckpointStore(path)
    store.load()
    assert store.journal_position("a").cursor is None
    assert path.with_name("state.json.corrupt").exists()


def test_journal_directories_follow_path_rootfs(tmp_path: Path) -> None:
    from nodeagent.agent import plan_agent
    from nodeagent.cli import build_parser, resolve_from_args
    from nodeagent.config import settings_table

    config = tmp_path / "agent.yaml"
    config.write_text(
        "logs:\n  inputs:\n"
        "    - {name: everything, type: journald}\n"
        "    - {name: one, type: journald, directory: /var/log/journal/remote}\n"
    )
    args = ["run", f"--config={config}", "--path.rootfs=/host/root", "--no-metrics"]
    table = settings_table()
    plan = plan_agent(resolve_from_args(build_parser("run", table).parse_args(args), table))
    assert plan.logs_config is not None
    everything, one = plan.logs_config.journals
    assert journalctl_command(everything, after_cursor=None)[1] == "--root=/host/root"
    assert journalctl_command(one, after_cursor=None)[1] == "--directory=/host/root/var/log/journal/remote"
