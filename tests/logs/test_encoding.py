"""Record encoding and time formats (nodeagent.logs.encoding). The batch encoder the file/stdout/http
sinks use must give exactly ``Record.to_json`` per line (it encodes the fields a file's records share
once per batch, for throughput)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.encoding import encode_json_lines, rfc3339_ns, syslog_timestamp, unix_nanos
from nodeagent.logs.record import Record, RecordBatch, Records

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
kubernetes = (
    st.none()
    | st.fixed_dictionaries({"namespace": text, "pod": text})
    | st.fixed_dictionaries({"container_id": text, "restart_count": st.integers(0, 10)})
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
# Field names that collide with the record's own keys (and with their renamed forms) on purpose.
field_names = st.sampled_from(["time", "_time", "message", "kubernetes", "__time", "level"]) | text
fields = st.none() | st.dictionaries(field_names, json_values, max_size=5)
records = st.builds(
    Record,
    time=text,
    message=text | st.text(max_size=20),
    stream=st.none() | text,
    file=text,
    node=text,
    kubernetes=kubernetes,
    fields=fields,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=8))
def test_batch_encoding_is_record_to_json_per_line(batch: list[Record]) -> None:
    expected = "".join(record.to_json() + "\n" for record in batch).encode("utf-8", "replace")
    assert encode_json_lines(batch) == (expected if batch else b"\n")


def test_shared_metadata_objects_and_special_characters() -> None:
    meta = {"namespace": "ns", "pod": "p\u00e9", "restart_count": 1}
    batch = [
        Record("t", 'quote " backslash \\ nul \x00 tab \t \u2028', s, "/f", "n", meta)
        for s in ("stdout", "stderr", None)
    ]
    batch.append(Record("t", "lone \udc80 surrogate", "stdout", "/f", "n", None))
    lines = encode_json_lines(batch).decode().split("\n")[:-1]  # not splitlines(): U+2028
    assert [json.loads(line)["stream"] for line in lines] == ["stdout", "stderr", None, "stdout"]
    assert json.loads(lines[0])["message"] == 'quote " backslash \\ nul \x00 tab \t \u2028'
    assert json.loads(lines[0])["kubernetes"] == meta
    assert "kubernetes" not in json.loads(lines[3])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.tuples(text, text | st.text(max_size=20), st.none() | text), max_size=5),
            text,
            text,
            kubernetes,
        ),
        max_size=4,
    )
)
def test_column_runs_encode_and_read_like_the_records_they_hold(runs: list) -> None:
    batch = RecordBatch(
        [
            Records(
                [t for t, _, _ in rows], [m for _, m, _ in rows], [s for _, _, s in rows], file, node, meta
            )
            for rows, file, node, meta in runs
        ]
    )
    records = [Record(t, m, s, file, node, meta) for rows, file, node, meta in runs for t, m, s in rows]
    assert list(batch) == records
    assert len(batch) == len(records)
    assert [batch[i] for i in range(len(records))] == records
    assert batch[1:3] == records[1:3]
    expected = "".join(record.to_json() + "\n" for record in records).encode("utf-8", "replace")
    assert encode_json_lines(batch) == (expected if records else b"\n")
    for run in batch.runs:
        assert list(run[1:]) == list(run)[1:]


def test_fields_go_beside_the_record_keys_and_never_over_them() -> None:
    record = Record("t", "m", "stdout", "/f", "n", {"pod": "p"}, {"time": 1, "_time": 2, "level": "info"})
    assert record.to_dict() == {
        "time": "t",
        "message": "m",
        "stream": "stdout",
        "file": "/f",
        "node": "n",
        "kubernetes": {"pod": "p"},
        "__time": 1,
        "_time": 2,
        "level": "info",
    }
    assert json.loads(encode_json_lines([record])) == record.to_dict()
    assert "level" not in Record("t", "m", None, "/f", "n").to_dict()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(text, st.none() | st.dictionaries(field_names, json_values, max_size=3)), max_size=6)
)
def test_a_fields_column_encodes_like_its_records(rows: list) -> None:
    column = [f for _, f in rows]
    run = Records([t for t, _ in rows], [m for m, _ in rows], ["stdout"] * len(rows), "/f", "n", None, column)
    expected = "".join(record.to_json() + "\n" for record in run).encode("utf-8", "replace")
    assert encode_json_lines(run) == (expected if rows else b"\n")
    assert [r.fields for r in run] == column == [r.fields for r in run[0:]]
    for record in run:
        assert len(json.loads(record.to_json())) == 5 + len(record.fields or {})  # nothing overwritten


def test_read_time_format() -> None:
    assert rfc3339_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_ns(5) == "1970-01-01T00:00:00.000000005Z"


def test_record_times_as_unix_nanoseconds_and_syslog_timestamps() -> None:
    assert unix_nanos("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123_456_789
    assert unix_nanos("2023-11-15T00:13:20.5+02:00") == 1_700_000_000_500_000_000
    assert unix_nanos("not a time") is None and unix_nanos(None) is None
    assert syslog_timestamp("2023-11-14T22:13:20.123456789Z") == "2023-11-14T22:13:20.123456Z"
    assert syslog_timestamp("garbage") == "-"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 253402300799_999_999_999))
def test_rfc3339_ns_round_trips_through_unix_nanos(ns: int) -> None:
    assert unix_nanos(rfc3339_ns(ns)) == ns
