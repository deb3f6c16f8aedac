"""Filters (nodeagent.logs.filters): pure functions of a record, and hostile messages against them."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.filters import (
    FAILED,
    FilterChain,
    Tally,
    keep_offsets,
    parse_filters,
    parse_json_object,
    parse_logfmt,
    parse_time_value,
)
from nodeagent.logs.record import Record, RecordBatch, Records

KUBE = {"namespace": "shop", "pod": "web-0", "container": "app"}
T0 = "2026-01-02T03:04:05.000000000Z"


def record(message: str, fields: dict | None = None, kubernetes: dict | None = KUBE) -> Record:
    return Record(T0, message, "stdout", "/var/log/pods/x/app/0.log", "node-1", kubernetes, fields)


def chain(*specs: dict) -> FilterChain:
    return FilterChain(tuple(parse_filters(list(specs))))


def run(specs: list[dict], rec: Record) -> tuple[Record | None, Tally]:
    tally = Tally()
    return chain(*specs).apply(rec, tally), tally


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_json_merges_the_object_into_fields_and_keeps_the_message() -> None:
    line = '{"level":"info","msg":"started","port":8080,"tags":["a"],"ok":true,"none":null}'
    out, tally = run([{"type": "parse_json"}], record(line))
    assert out is not None and tally == Tally(0, 0)
    assert out.message == line
    assert out.fields == {
        "level": "info",
        "msg": "started",
        "port": 8080,
        "tags": ["a"],
        "ok": True,
        "none": None,
    }


def test_parse_json_into_a_named_field_and_from_a_field() -> None:
    out, _ = run(
        [
            {"type": "parse_json", "target": "fields.payload"},
            {"type": "parse_json", "source": "fields.payload.inner", "target": "fields.inner"},
        ],
        record('{"inner":"{\\"a\\":1}"}'),
    )
    assert out is not None and out.fields == {"payload": {"inner": '{"a":1}'}, "inner": {"a": 1}}


@pytest.mark.parametrize(
    "message",
    [
        "plain text",
        "[1, 2]",  # JSON, but not an object
        '"a string"',
        '{"unterminated": ',
        "{" * 10,
        "",
    ],
)
def test_parse_json_failure_keeps_the_record_and_counts(message: str) -> None:
    rec = record(message)
    out, tally = run([{"type": "parse_json"}], rec)
    assert out == rec and out.fields is None
    assert tally == Tally(dropped=0, failures=1)


def test_json_bounds_depth_size_numbers_and_duplicates() -> None:
    deep = '{"a":' * 40 + "1" + "}" * 40
    assert parse_json_object(deep, 1 << 20, 32) is None
    assert parse_json_object(deep, 1 << 20, 40) is not None
    assert parse_json_object("[" * 200_000 + "]" * 200_000, 1 << 30, 32) is None  # recursion: refused
    assert parse_json_object('{"a":"' + "x" * 2000 + '"}', 1000, 32) is None  # too big
    assert parse_json_object('{"a":"\u00e9\u00e9"}', 9, 32) is None  # the limit is in UTF-8 bytes
    value = parse_json_object(
        '{"big":1e999,"neg":-1e999,"int":' + "9" * 5000 + ',"nan":NaN,"ok":1.5}', 1 << 20, 32
    )
    assert value == {"big": "1e999", "neg": "-1e999", "int": "9" * 5000, "nan": "NaN", "ok": 1.5}
    assert parse_json_object('{"k":1,"k":2}', 100, 32) == {"k": 2}  # the last one wins
    assert parse_json_object('{"s":"\\ud800"}', 100, 32) == {"s": "\ud800"}  # encodes as '?' later


def test_parse_logfmt() -> None:
    line = 'level=warn msg="disk \\"almost\\" full" path=/var empty= verbose'
    out, tally = run([{"type": "parse_logfmt"}], record(line))
    assert tally.failures == 0 and out is not None
    assert out.fields == {
        "level": "warn",
        "msg": 'disk "almost" full',
        "path": "/var",
        "empty": "",
        "verbose": True,
    }
    for text in ["just words here", 'a="unterminated', "", "=x", " ".join(f"k{i}=1" for i in range(300))]:
        assert parse_logfmt(text, 1 << 20, 256) is None, text


# -- keep, drop, redact -----------------------------------------------------------------------------


def test_keep_and_drop_by_regex_on_any_path() -> None:
    specs = [
        {"type": "parse_json"},
        {"type": "keep", "field": "fields.level", "regex": "^(warn|error)$"},
        {"type": "drop", "field": "kubernetes.namespace", "regex": "^kube-"},
    ]
    assert run(specs, record('{"level":"error"}'))[0] is not None
    assert run(specs, record('{"level":"info"}')) == (None, Tally(dropped=1, failures=0))
    assert run(specs, record("not json"))[0] is None  # no level: keep does not match
    kube = record('{"level":"error"}', kubernetes={"namespace": "kube-system"})
    assert run(specs, kube)[0] is None
    # drop with a missing field keeps the record; numbers match as their JSON text
    assert run([{"type": "drop", "field": "fields.x", "regex": "."}], record("m"))[0] is not None
    out, _ = run(
        [{"type": "parse_json"}, {"type": "keep", "field": "fields.code", "regex": "^5"}],
        record('{"code":503}'),
    )
    assert out is not None


def test_redact_in_the_message_and_in_fields() -> None:
    specs = [
        {"type": "parse_logfmt"},
        {"type": "redact", "field": "message", "regex": r"password=\S+", "replacement": "password=***"},
        {
            "type": "redact",
            "field": "fields.card",
            "regex": r"\d{12}(\d{4})",
            "replacement": r"************\1",
        },
    ]
    out, tally = run(specs, record("user=a password=hunter2 card=1234567812345678"))
    assert out is not None and tally == Tally()
    assert out.message == "user=a password=*** card=1234567812345678"
    assert out.fields == {"user": "a", "password": "hunter2", "card": "************5678"}


# -- reshaping --------------------------------------------------------------------------------------


def test_add_set_remove_rename_copy() -> None:
    specs = [
        {"type": "parse_json"},
        {"type": "add", "field": "fields.env", "value": "prod"},
        {"type": "add", "field": "fields.level", "value": "default"},  # exists: kept
        {"type": "set", "field": "fields.meta.region", "value": "eu"},
        {"type": "copy", "from": "kubernetes.pod", "to": "fields.pod"},
        {"type": "rename", "from": "fields.msg", "to": "message"},
        {"type": "rename", "from": "fields.lvl", "to": "fields.level"},  # missing source: nothing
        {"type": "remove", "fields": ["fields.secret", "fields.nothing", "fields.meta.none"]},
    ]
    rec = record('{"level":"info","msg":"hello","secret":"s"}')
    out, tally = run(specs, rec)
    assert out is not None and tally == Tally()
    assert out.message == "hello"
    assert out.fields == {"level": "info", "env": "prod", "meta": {"region": "eu"}, "pod": "web-0"}
    assert rec.fields is None and rec.message.startswith("{")  # the input record is unchanged
    assert out.kubernetes is KUBE and KUBE == {"namespace": "shop", "pod": "web-0", "container": "app"}


def test_rename_keeps_an_existing_target_unless_overwrite() -> None:
    rec = record("m", fields={"a": 1, "b": 2})
    assert run([{"type": "rename", "from": "fields.a", "to": "fields.b"}], rec)[0] == rec
    out, _ = run([{"type": "rename", "from": "fields.a", "to": "fields.b", "overwrite": True}], rec)
    assert out is not None and out.fields == {"b": 1}


def test_writing_below_a_value_that_is_not_a_mapping_changes_nothing() -> None:
    rec = record("m", fields={"a": "text"})
    assert run([{"type": "set", "field": "fields.a.b", "value": 1}], rec)[0] == rec


def test_removing_the_last_field_leaves_no_fields() -> None:
    out, _ = run([{"type": "remove", "fields": "fields.a"}], record("m", fields={"a": 1}))
    assert out is not None and out.fields is None


# -- time -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2026-11-30T13:00:00.5+01:00", "rfc3339", "2026-11-30T12:00:00.500000000Z"),
        (1700000000, "unix", "2023-11-14T22:13:20.000000000Z"),
        (1700000000.25, "unix", "2023-11-14T22:13:20.250000000Z"),
        ("1700000000.123456789", "unix", "2023-11-14T22:13:20.123456789Z"),
        (1700000000123, "unix_ms", "2023-11-14T22:13:20.123000000Z"),
        ("1700000000123456", "unix_us", "2023-11-14T22:13:20.123456000Z"),
        (1700000000123456789, "unix_ns", "2023-11-14T22:13:20.123456789Z"),
        ("30/Nov/2026:13:00:00 +0100", "%d/%b/%Y:%H:%M:%S %z", "2026-11-30T12:00:00.000000000Z"),
        ("2026-11-30 12:00:00.25", "%Y-%m-%d %H:%M:%S.%f", "2026-11-30T12:00:00.250000000Z"),
        ("yesterday", "rfc3339", None),
        (10**30, "unix", None),
        (-5, "unix", None),
        (float("nan"), "unix", None),
        (True, "unix", None),
        ("1e5", "unix", None),
        ({"a": 1}, "rfc3339", None),
        ("31/Feb/2026:00:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", None),
    ],
)
def test_time_values(value: object, fmt: str, expected: str | None) -> None:
    assert parse_time_value(value, fmt) == expected


def test_time_filter_sets_the_record_time_or_keeps_the_read_time() -> None:
    specs = [{"type": "parse_json"}, {"type": "time", "field": "fields.ts", "format": "unix_ms"}]
    out, tally = run(specs, record('{"ts":1700000000123}'))
    assert out is not None and out.time == "2023-11-14T22:13:20.123000000Z" and tally == Tally()
    out, tally = run(specs, record('{"ts":"soon"}'))
    assert out is not None and out.time == T0 and tally.failures == 1
    out, tally = run(specs, record('{"other":1}'))
    assert out is not None and out.time == T0 and tally.failures == 1


# -- chains over columns ----------------------------------------------------------------------------


def test_columns_keep_their_shared_metadata_and_offsets_cover_the_dropped() -> None:
    run_ = Records([T0] * 4, ["a", "drop b", "c", "drop d"], ["stdout"] * 4, "/f", "n", KUBE)
    tally = Tally()
    kept, index = chain({"type": "drop", "field": "message", "regex": "^drop"}).apply_records(run_, tally)
    assert kept.messages == ["a", "c"] and index == [0, 2] and kept.fields is None and kept.kubernetes is KUBE
    assert tally == Tally(dropped=2, failures=0)
    assert keep_offsets([10, 20, 30, 40], index) == [10, 40]  # the last kept one passes the dropped tail
    assert keep_offsets([10, 20, 30, 40], []) == []


def test_a_batch_through_a_chain() -> None:
    batch = RecordBatch(
        [
            Records([T0, T0], ['{"a":1}', "x"], ["stdout", "stderr"], "/f", "n", None),
            Records([T0], ["drop"], [None], "/g", "n", KUBE),
        ]
    )
    tally = Tally()
    out = chain({"type": "parse_json"}, {"type": "drop", "field": "message", "regex": "^drop$"}).apply_batch(
        batch, tally
    )
    assert [r.to_dict() for r in out] == [
        record('{"a":1}', {"a": 1}, None).to_dict() | {"file": "/f", "node": "n"},
        {"time": T0, "message": "x", "stream": "stderr", "file": "/f", "node": "n"},
    ]
    assert tally == Tally(dropped=1, failures=2)  # "x" and "drop" are not JSON
    assert json.loads(encode_json_lines(out).split(b"\n")[0])["a"] == 1


# -- hostile input ----------------------------------------------------------------------------------

ALL_FILTERS = [
    {"type": "parse_json"},
    {"type": "parse_logfmt", "target": "fields.kv"},
    {"type": "parse_json", "source": "fields.kv.payload", "target": "fields.payload"},
    {"type": "time", "field": "fields.ts", "format": "rfc3339"},
    {"type": "time", "field": "fields.kv.ts", "format": "unix"},
    {"type": "time", "field": "fields.when", "format": "%Y-%m-%d %H:%M:%S"},
    {"type": "redact", "field": "message", "regex": r"(\d+)", "replacement": r"<\1>"},
    {"type": "redact", "field": "fields.msg", "regex": "s+", "replacement": "S"},
    {"type": "drop", "field": "fields.level", "regex": "^debug$"},
    {"type": "keep", "field": "message", "regex": "."},
    {"type": "copy", "from": "fields.msg", "to": "fields.copy.deep"},
    {"type": "rename", "from": "fields.time", "to": "message"},
    {"type": "set", "field": "fields.level.sub", "value": 1},
    {"type": "remove", "fields": ["fields.kv.x", "fields.payload"]},
]
HOSTILE_CHAIN = chain(*ALL_FILTERS)

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(["ts", "time", "msg", "level", "when", "kv", "payload", "message"]) | st.text(
    max_size=6
)
messages = (
    st.text()
    | st.binary().map(lambda b: b.decode("utf-8", "replace"))
    | st.dictionaries(keys, json_values, max_size=6).map(lambda d: json.dumps(d, allow_nan=True))
    | st.lists(st.tuples(keys, st.text(max_size=10)), max_size=6).map(
        lambda pairs: " ".join(f"{k}={v}" if i % 2 else f'{k}="{v}"' for i, (k, v) in enumerate(pairs))
    )
    | st.integers(0, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)
)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_no_message_breaks_a_chain_and_every_result_encodes(message: str) -> None:
    tally = Tally()
    out = HOSTILE_CHAIN.apply(record(message), tally)
    if out is None:
        assert tally.dropped == 1
        return
    line = encode_json_lines([out])
    decoded = json.loads(line)  # valid JSON: no NaN or Infinity
    assert decoded["kubernetes"] == KUBE and decoded["node"] == "node-1"
    assert out.to_dict() == json.loads(out.to_json())
    assert all(not isinstance(v, float) or math.isfinite(v) for v in (out.fields or {}).values())


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300), st.sampled_from(["rfc3339", "unix", "unix_ms", "unix_ns", "%Y-%m-%dT%H:%M:%S%z"])
)
def test_time_parsing_never_raises(text: str, fmt: str) -> None:
    result = parse_time_value(text, fmt)
    assert result is None or (len(result) == 30 and result.endswith("Z"))


def test_a_megabyte_message_is_refused_quickly_by_the_size_limit() -> None:
    huge = '{"a":"' + "x" * (1 << 20) + '"}'
    out, tally = run([{"type": "parse_json"}], record(huge))
    assert out is not None and out.fields is None and tally.failures == 1
    out, tally = run([{"type": "parse_json", "max_bytes": "2MiB"}], record(huge))
    assert out is not None and out.fields is not None and len(out.fields["a"]) == 1 << 20


def test_a_filter_that_fails_unexpectedly_costs_only_its_work() -> None:
    def broken(rec: Record) -> Record:
        raise RuntimeError("bug")

    tally = Tally()
    rec = record("m")
    assert FilterChain((broken,)).apply(rec, tally) == rec and tally.failures == 1
    assert FAILED is not None
