"""The forward sink against a strict forward-protocol server (tests/logs/fake_fluentd.py): every mode the
sink sends, acks, the shared-key handshake checked both ways, injected faults, TLS, and the server's own
strictness (it must reject what Fluentd's in_forward rejects, or the tests would prove nothing)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config.errors import ConfigError
from nodeagent.logs.encoding import unix_nanos
from nodeagent.logs.record import RecordBatch, Records
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import RetryableSinkError
from nodeagent.logs.sinks.forward import (
    MAX_RESPONSE_BYTES,
    ForwardProtocolError,
    ForwardSink,
    TagTemplate,
    check_ack,
    check_pong,
    event_time,
    next_response,
    pack_messages,
    read_helo,
)
from tests.logs.conftest import KUBE, deliver, sample
from tests.logs.conftest import sink_record as record
from tests.logs.fake_fluentd import EventTime, FakeFluentd

SECRET = "s3cr3t-shared-key"
PASSWORD = "pa55w0rd-value"


def forward(server: FakeFluentd, **options: Any) -> ForwardSink:
    sink = make_sink({"type": "forward", "address": server.address, "timeout": "2s", **options}, name="fw")
    assert isinstance(sink, ForwardSink)
    return sink


# -- encoding ------------------------------------------------------------------------------------------


def test_event_time_is_ext_0_with_seconds_and_nanoseconds_big_endian() -> None:
    packed = event_time("2026-01-02T03:04:05.123456789Z")
    nanos = unix_nanos("2026-01-02T03:04:05Z")
    assert nanos is not None
    assert packed == b"\xd7\x00" + struct.pack(">II", nanos // 10**9, 123456789)
    # A record whose time is not RFC 3339 gets the current time, not 0 (which servers replace anyway).
    assert msgpack.unpackb(packed, ext_hook=lambda code, data: (code, len(data))) == (0, 8)
    now = struct.unpack(">II", event_time("bad")[2:])[0]
    assert now > nanos // 10**9


def test_entries_are_time_and_the_record_map_grouped_by_tag_and_split_by_size() -> None:
    records = [
        record("a", kubernetes={**KUBE, "namespace": "ns1"}),
        record("b", kubernetes={**KUBE, "namespace": "ns2"}),
        record("c", kubernetes={**KUBE, "namespace": "ns1"}),
    ]
    messages = pack_messages(records, TagTemplate("kube.{kubernetes.namespace}"), 1 << 20)
    assert [(tag, count) for tag, _, count in messages] == [("kube.ns1", 2), ("kube.ns2", 1)]
    stream = msgpack.Unpacker(ext_hook=lambda code, data: (code, len(data)))
    stream.feed(messages[0][1])
    entries = list(stream)
    assert [entry[1] for entry in entries] == [records[0].to_dict(), records[2].to_dict()]
    assert all(entry[0] == (0, 8) for entry in entries)
    small = pack_messages([record(f"m{n}" * 50) for n in range(10)], TagTemplate("t"), 300)
    assert len(small) > 1 and sum(count for _, _, count in small) == 10
    assert all(count >= 1 for _, _, count in small)


def test_runs_of_one_file_pack_exactly_as_records_one_by_one() -> None:
    """The column path (shared fields packed once per file) gives the bytes of the per-record path."""
    runs = [
        Records(
            [
                "2026-01-02T03:04:05.000000001Z",
                "2026-01-02T03:04:05.9Z",
                "2026-01-02T04:04:06.5+01:00",
                "2026-01-02T03:04:05.123456789Z",
            ],
            ["a", "b\udcff", "", "d" * 300],
            ["stdout", "stderr", None, "stdout"],
            "/var/log/pods/ns_p_u/c/0.log",
            "node-1",
            {**KUBE, "big": 10**30},
        ),
        Records(
            ["2026-01-02T03:04:07.000000000Z"] * 2, ["e", "f"], ["stdout"] * 2, "/var/log/syslog", "n", None
        ),
    ]
    for template in ("t", "kube.{kubernetes.namespace}.{file}", "{message}"):
        for limit in (1 << 20, 200):
            by_columns = pack_messages(RecordBatch(runs), TagTemplate(template), limit)
            one_by_one = pack_messages([*runs[0], *runs[1]], TagTemplate(template), limit)
            assert by_columns == one_by_one
            assert sum(count for _, _, count in by_columns) == 6


def test_fields_set_by_filters_go_in_the_record_map() -> None:
    run = Records(
        ["2026-01-02T03:04:05.000000001Z"] * 2,
        ["a", "b"],
        ["stdout"] * 2,
        "/f",
        "n",
        None,
        [{"level": "info", "time": "x"}, None],
    )
    [(_, entries, count)] = pack_messages(RecordBatch([run]), TagTemplate("t"), 1 << 20)
    stream = msgpack.Unpacker(ext_hook=lambda code, data: code)
    stream.feed(entries)
    sent = [entry[1] for entry in stream]
    assert count == 2 and sent == [record.to_dict() for record in run]
    assert sent[0]["level"] == "info" and sent[0]["_time"] == "x"


def test_tag_template() -> None:
    data = record("m", kubernetes=KUBE).to_dict()
    assert TagTemplate("kube.{kubernetes.namespace}.{kubernetes.pod}").render(data) == "kube.default.web-0"
    assert TagTemplate("kube.{file}").render(data) == "kube.var.log.x.log"  # Fluent Bit's kube.* tag
    assert TagTemplate("k.{kubernetes.labels.app}.{node}").render(data) == "k._.node-1"
    assert TagTemplate("x.{message}").render({"message": "a b/c*d"}) == "x.a_b_c_d"
    assert TagTemplate("fixed").constant == "fixed"
    for bad in ("a{b", "a}b", "{}", "{a..b}"):
        with pytest.raises(ValueError):
            TagTemplate(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "address: required"),
        ({"address": "h:x"}, "address: bad port"),
        ({"address": "h", "tag": "a{"}, "tag: unbalanced brace"),
        ({"address": "h", "username": "u", "password": "p"}, "username: user authentication happens"),
        ({"address": "h", "password": "p"}, "username: required when a password is set"),
        ({"address": "h", "shared_key": "k", "shared_key_file": "/k"}, "shared_key_file: set either"),
        ({"address": "h", "ack_timeout": "0s"}, "ack_timeout: must be greater than 0"),
    ],
)
def test_bad_options_are_refused_with_the_key(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_sink({"type": "forward", **options}, name="fw")
    assert str(caught.value).startswith(message)


def test_default_port_is_24224() -> None:
    sink = make_sink({"type": "forward", "address": "fluentd.logging"}, name="fw")
    assert (sink.host, sink.port) == ("fluentd.logging", 24224)  # type: ignore[attr-defined]


# -- delivery ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gzip_option", "mode"), [(False, "PackedForward"), (True, "CompressedPackedForward")]
)
async def test_records_arrive_with_nanosecond_times_and_every_message_is_acknowledged(
    gzip_option: bool, mode: str
) -> None:
    async with FakeFluentd() as server:
        batch = [record(f"line {n}", kubernetes=KUBE) for n in range(100)]
        await deliver(forward(server, gzip=gzip_option, tag="kube.{kubernetes.namespace}"), batch, batch[:3])
        assert len(server.events) == 103 and {e.mode for e in server.events} == {mode}
        assert [e.record for e in server.events[:100]] == [r.to_dict() for r in batch]
        assert {e.tag for e in server.events} == {"kube.default"}
        seconds = unix_nanos("2026-01-02T03:04:05Z") // 10**9  # type: ignore[operator]
        assert server.events[0].time == EventTime(seconds, 123456789)
        assert len(server.acked) == 2 and server.acked == server.chunks
        assert server.connections == 1  # kept alive between batches
        assert not server.rejections


async def test_a_big_batch_is_split_into_messages_and_gzipped_off_the_event_loop() -> None:
    async with FakeFluentd() as server:
        batch = [record(f"{n:05d} " + "x" * 300, kubernetes=KUBE) for n in range(3000)]  # about 1.3 MB
        await deliver(forward(server, gzip=True, max_message_bytes="512KiB"), batch)
        assert [e.record["message"] for e in server.events] == [r.message for r in batch]
        assert len(server.acked) == 3 and {e.mode for e in server.events} == {"CompressedPackedForward"}


async def test_without_acks_nothing_is_waited_for() -> None:
    async with FakeFluentd(default_fault="no_ack") as server:
        await deliver(forward(server, require_ack_response=False, ack_timeout="50ms"), [record("x")] * 5)
        await server.wait_for_events(5)
        assert not server.chunks and not server.rejections


async def test_keepalive_false_opens_a_connection_per_batch() -> None:
    async with FakeFluentd() as server:
        await deliver(forward(server, keepalive=False), [record("a")], [record("b")])
        assert server.connections == 2 and len(server.events) == 2


# -- handshake -----------------------------------------------------------------------------------------


async def test_shared_key_handshake_both_ways(tmp_path: Path) -> None:
    async with FakeFluentd(shared_key=SECRET) as server:
        await deliver(forward(server, shared_key=SECRET, self_hostname="node-1.example"), [record("ok")])
        assert [e.record["message"] for e in server.events] == ["ok"]
        assert server.pings[0][1] == "node-1.example" and server.pings[0][4:] == ["", ""]
        assert SECRET not in repr(server.pings)


async def test_a_wrong_shared_key_is_refused_by_the_server_and_retried_without_leaking_it() -> None:
    async with FakeFluentd(shared_key=SECRET) as server:
        sink = forward(server, shared_key="not-the-key")
        handshake_failures = sample("nodeagent_logs_sink_handshake_failures_total", {"sink": "fw"})
        with pytest.raises(RetryableSinkError, match="shared_key mismatch") as failure:
            await deliver(sink, [record("never")])
        assert "not-the-key" not in str(failure.value) and SECRET not in str(failure.value)
        assert set(server.rejections) == {"shared_key mismatch"} and not server.events
        assert sample("nodeagent_logs_sink_handshake_failures_total", {"sink": "fw"}) > handshake_failures


async def test_the_client_refuses_a_server_whose_pong_digest_is_wrong() -> None:
    """A server that does not know the key cannot get records: the client checks PONG before sending."""
    async with FakeFluentd(shared_key=SECRET, pong_digest="wrong") as server:
        with pytest.raises(RetryableSinkError, match="digest is wrong"):
            await deliver(forward(server, shared_key=SECRET), [record("secret data")])
        assert not server.events and server.messages_seen == 0


async def test_the_client_refuses_a_server_that_echoes_its_own_digest() -> None:
    """Without the key, a server could answer PONG with the client's hostname and digest: refused."""
    async with FakeFluentd(shared_key="unknown-to-the-server", pong_digest="echo") as server:
        with pytest.raises(RetryableSinkError, match="has our self_hostname"):
            await deliver(forward(server, shared_key=SECRET, self_hostname="node-1"), [record("x")])
        assert not server.events and server.messages_seen == 0


async def test_user_authentication(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    async with FakeFluentd(shared_key=SECRET, users={"agent": PASSWORD}) as server:
        good = forward(server, shared_key=SECRET, username="agent", password_file=str(password_file))
        await deliver(good, [record("authenticated")])
        assert len(server.events) == 1 and server.pings[0][4] == "agent"
        assert PASSWORD not in repr(server.pings)
        wrong = forward(server, shared_key=SECRET, username="agent", password="guess")
        with pytest.raises(RetryableSinkError, match="username/password mismatch") as failure:
            await deliver(wrong, [record("x")])
        assert "guess" not in str(failure.value)
        anonymous = forward(server, shared_key=SECRET)
        with pytest.raises(RetryableSinkError, match="requires a username"):
            await deliver(anonymous, [record("x")])
        assert len(server.events) == 1


async def test_shared_key_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("first-key\n")
    async with FakeFluentd(shared_key="first-key") as server:
        sink = forward(server, shared_key_file=str(key_file), keepalive=False)
        await sink.send([record("one")])
        server.shared_key = "second-key"  # the aggregator's secret rotated
        with pytest.raises(RetryableSinkError, match="shared_key mismatch"):
            await sink.send([record("two")])
        key_file.write_text("second-key-rotated-too\n")
        server.shared_key = "second-key-rotated-too"
        await sink.send([record("two")])
        await sink.close()
        assert [e.record["message"] for e in server.events] == ["one", "two"]


async def test_a_server_asking_for_a_handshake_the_sink_was_not_told_about() -> None:
    async with FakeFluentd(shared_key=SECRET) as server:
        with pytest.raises(RetryableSinkError, match="set shared_key"):
            await deliver(forward(server), [record("x")])
        assert not server.events


async def test_server_without_keepalive_gets_a_new_authenticated_connection_per_message() -> None:
    async with FakeFluentd(shared_key=SECRET, keepalive=False) as server:
        batch = [record("a", kubernetes={**KUBE, "pod": "p1"}), record("b", kubernetes={**KUBE, "pod": "p2"})]
        await deliver(forward(server, shared_key=SECRET, tag="{kubernetes.pod}"), batch, batch)
        assert len(server.events) == 4 and server.connections == 4 and not server.rejections


# -- faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kept_before_retry", "reason"),
    [
        ("no_ack", 1, "no ack within"),
        ("reset_mid_chunk", 0, "connection lost before the ack|failed"),
        ("refuse", 0, "connection lost before the ack"),
        ("wrong_ack", 1, "ack for another chunk"),
    ],
)
async def test_a_failed_message_is_retryable_and_the_retry_is_delivered(
    fault: str, kept_before_retry: int, reason: str
) -> None:
    async with FakeFluentd(plan={1: fault}) as server:
        sink = forward(server, ack_timeout="300ms")
        await sink.start()
        await sink.send([record("first")])
        missed = sample("nodeagent_logs_sink_acks_missed_total", {"sink": "fw"})
        with pytest.raises(RetryableSinkError, match=reason):
            await sink.send([record("second")])
        assert len(server.events) == 1 + kept_before_retry
        await sink.send([record("second")])  # what the pipeline does next
        await sink.close()
        messages = [e.record["message"] for e in server.events]
        assert messages[0] == "first" and messages[1:] == ["second"] * (1 + kept_before_retry)
        assert sample("nodeagent_logs_sink_acks_missed_total", {"sink": "fw"}) == missed + 1


async def test_a_delayed_ack_within_the_timeout_is_waited_for() -> None:
    async with FakeFluentd(default_fault="delay_ack", ack_delay=0.2) as server:
        await deliver(forward(server, ack_timeout="2s"), [record("slow")])
        assert len(server.acked) == 1


async def test_a_connection_closed_after_an_ack_is_replaced_before_the_next_batch() -> None:
    async with FakeFluentd(default_fault="close_after_ack") as server:
        sink = forward(server)
        await sink.start()
        for n in range(3):
            await sink.send([record(f"m{n}")])
            await asyncio.sleep(0.05)  # the server's FIN arrives
        await sink.close()
        assert len(server.events) == 3 and server.connections == 3


async def test_server_down_is_retryable_then_recovers() -> None:
    server = await FakeFluentd().start()
    port = server.port
    await server.stop()
    sink = make_sink({"type": "forward", "address": f"127.0.0.1:{port}", "timeout": "1s"}, name="fw")
    await sink.start()
    with pytest.raises(RetryableSinkError, match="cannot connect"):
        await sink.send([record("x")])
    server = await FakeFluentd().start(port)
    try:
        await sink.send([record("x")])
        assert len(server.events) == 1
    finally:
        await sink.close()
        await server.stop()


# -- TLS -----------------------------------------------------------------------------------------------


async def test_forward_over_tls_with_a_client_certificate(pki: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(cafile=str(pki / "ca.crt"))
    context.verify_mode = ssl.CERT_REQUIRED
    tls = {
        "ca_file": str(pki / "ca.crt"),
        "cert_file": str(pki / "client.crt"),
        "key_file": str(pki / "client.key"),
    }
    async with FakeFluentd(shared_key=SECRET, ssl_context=context) as server:
        await deliver(forward(server, shared_key=SECRET, tls=tls), [record("over tls")])
        assert [e.record["message"] for e in server.events] == ["over tls"]
        with pytest.raises(RetryableSinkError, match="CERTIFICATE_VERIFY_FAILED"):
            await deliver(
                forward(server, shared_key=SECRET, tls={"ca_file": str(pki / "otherca.crt")}), [record("x")]
            )


# -- the server is strict ------------------------------------------------------------------------------


async def raw_exchange(server: FakeFluentd, data: bytes, wait: float = 1.0) -> tuple[bytes, bool]:
    """Send ``data`` as a client would; what the server answered within ``wait`` s and whether it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    received = bytearray()
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                received += chunk
        return bytes(received), True
    except TimeoutError:
        return bytes(received), False
    finally:
        writer.close()


def ext(code: int, data: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(code, data)


GOOD_TIME = ext(0, struct.pack(">II", 1_700_000_000, 5))


@pytest.mark.parametrize(
    ("message", "rejection"),
    [
        (b"\xc1", "malformed msgpack"),
        (msgpack.packb(["t", [[ext(0, b"\x00" * 4), {}]], {"chunk": "x"}]), "EventTime of 4 bytes"),
        (msgpack.packb(["t", [[ext(0, struct.pack(">II", 1, 10**9)), {}]]]), "EventTime nanoseconds"),
        (msgpack.packb(["t", [[ext(5, b"\x00" * 8), {}]]]), "unknown ext type 5"),
        (msgpack.packb(["t", [["now", {}]]]), "entry time is str"),
        (msgpack.packb(["t", [[GOOD_TIME, "text"]]]), "entry record is not a map"),
        (msgpack.packb(["t", msgpack.packb([GOOD_TIME, {}])[:-1]]), "truncated entries stream"),
        (msgpack.packb(["t", b"\x1f\x8b", {"compressed": "gzip"}]), "bad gzip"),
        (msgpack.packb(["t", msgpack.packb([GOOD_TIME, {}]), {"size": 2}]), "size option 2 but 1"),
        (msgpack.packb([1, [[GOOD_TIME, {}]]]), "tag is not a string"),
    ],
)
async def test_the_fake_server_rejects_what_in_forward_rejects(message: bytes, rejection: str) -> None:
    async with FakeFluentd() as server:
        assert await raw_exchange(server, message) == (b"", True)  # closed without an answer
        assert server.rejections and server.rejections[0].startswith(rejection)
        assert not server.events


async def test_the_fake_server_reads_every_mode_and_acks_chunks() -> None:
    async with FakeFluentd() as server:
        entry = [GOOD_TIME, {"k": "v"}]
        stream = msgpack.packb(entry) * 2
        chunk = "p8n9gmxTQVC8/nh2wlKKeQ=="
        # PackedForward with the stream in a msgpack str, as out_forward sends it (raw bytes, not UTF-8).
        as_str = b"\x92" + msgpack.packb("t") + b"\xda" + struct.pack(">H", len(stream)) + stream
        gzipped = gzip.compress(stream[:11]) + gzip.compress(stream[11:])  # concatenated gzip members
        data = b"".join(
            [
                msgpack.packb(["t", 1_700_000_000, {"k": "v"}]),
                msgpack.packb(["t", [entry, entry]]),
                msgpack.packb(None),  # a heartbeat
                as_str,
                msgpack.packb(["t", stream, {"size": 2}]),
                msgpack.packb(["t", gzipped, {"compressed": "gzip", "chunk": chunk}]),
            ]
        )
        answer, closed = await raw_exchange(server, data, wait=0.5)
        assert msgpack.unpackb(answer) == {"ack": chunk} and not closed
        modes = [e.mode for e in server.events]
        expected = ["Message"] + ["Forward"] * 2 + ["PackedForward"] * 4 + ["CompressedPackedForward"] * 2
        assert modes == expected
        assert server.events[1].time == EventTime(1_700_000_000, 5)
        assert not server.rejections


def test_values_msgpack_cannot_hold_are_sent_as_text() -> None:
    """A lone surrogate, an integer beyond 64 bits, a set: the record still goes, nothing raises."""
    odd = record("broken \udcff text", kubernetes={**KUBE, "big": 10**30, "labels": {"set": {1}}})
    [(_, entries, count)] = pack_messages([odd], TagTemplate("t"), 1 << 20)
    _, sent = msgpack.unpackb(entries, ext_hook=lambda code, data: code)
    assert count == 1 and sent["message"] == "broken ? text"
    assert sent["kubernetes"]["big"] == str(10**30) and sent["kubernetes"]["labels"] == {"set": "{1}"}


# -- whatever a server sends ---------------------------------------------------------------------------

MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=20)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.binary(max_size=8) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=8,
)
HANDSHAKE_WORDS = st.sampled_from([b"HELO", b"PONG", b"ack", b"nonce", b"auth", b"keepalive"])


def answers_of(data: bytes) -> list[object]:
    """The objects a sink reads from ``data``; only ForwardProtocolError may come out of it."""
    unpacker = msgpack.Unpacker(raw=True, max_buffer_size=MAX_RESPONSE_BYTES)
    unpacker.feed(data[:MAX_RESPONSE_BYTES])
    objects: list[object] = []
    while True:
        complete, response = next_response(unpacker)
        if not complete:
            return objects
        objects.append(response)


def judge_every_way(response: object) -> None:
    for check in (
        read_helo,
        lambda r: check_pong(r, salt=b"s", hostname=b"h", nonce=b"n", shared_key=b"k"),
        lambda r: check_ack(r, "chunk"),
    ):
        try:
            check(response)
        except ForwardProtocolError as exc:
            assert len(str(exc)) < 1000  # quoted, bounded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_from_a_server_are_a_protocol_error_or_an_answer(data: bytes) -> None:
    try:
        objects = answers_of(data)
    except ForwardProtocolError:
        return
    for response in objects:
        judge_every_way(response)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(HANDSHAKE_WORDS | MSGPACK_VALUES, max_size=6) | st.dictionaries(HANDSHAKE_WORDS, MSGPACK_VALUES)
)
def test_any_well_formed_answer_is_judged_without_crashing(value: object) -> None:
    for response in answers_of(msgpack.packb(value)):
        judge_every_way(response)
