"""OTLP/HTTP logs sink against a strict OTLP receiver on 127.0.0.1.

The receiver decodes what it gets with the official definitions (``ExportLogsServiceRequest.FromString``
and ``json_format.Parse``), answers as the OTLP/HTTP specification says (415 for a content type it does not
take, 400 with a google.rpc.Status for a body it cannot decode, an ExportLogsServiceResponse in the
request's encoding), and injects faults on demand: 429 with Retry-After, 502/503/504, partial success, and
connections reset before or after it kept the data.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from nodeagent import __version__
from nodeagent.config.errors import ConfigError
from nodeagent.logs.record import Record
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from nodeagent.logs.sinks.otlp import describe_status, status_message_class
from tests.logs.conftest import make_config, sample, shipping, unique_name, write_lines

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

KUBE = {
    "namespace": "prod",
    "pod": "api-7d9f-x2x9z",
    "pod_uid": "0f0e0d0c-0b0a-0908-0706-050403020100",
    "container": "api",
    "restart_count": 2,
    "container_id": "containerd://abc123",
    "labels": {"app": "api", "tier": "web"},
    "annotations": {"team": "payments"},
    "owner_kind": "Deployment",
    "owner_name": "api",
    "image": "registry.local:5000/shop/api:1.4.2",
    "image_id": "registry.local:5000/shop/api@sha256:0123abcd",
    "pod_ip": "10.1.2.3",
}


def record(
    message: str, *, stream: str | None = "stdout", kubernetes: dict | None = None, **kw: Any
) -> Record:
    return Record(
        time=kw.get("time", "2026-01-02T03:04:05.123456789Z"),
        message=message,
        stream=stream,
        file=kw.get("file", "/var/log/pods/prod_api-7d9f-x2x9z_0f0e/api/2.log"),
        node="worker-7",
        kubernetes=kubernetes,
    )


class FieldsRecord(Record):
    """A record with parsed ``fields`` (what the filters stage adds to the record model)."""


def with_fields(base: Record, fields: dict[str, Any]) -> Record:
    rec = FieldsRecord(base.time, base.message, base.stream, base.file, base.node, base.kubernetes)
    rec.fields = fields  # type: ignore[attr-defined]
    return rec


def status_body(code: int, message: str, content_type: str) -> bytes:
    status = status_message_class()(code=code, message=message)
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    return bytes(status.SerializeToString())


def camel_case_only(value: Any) -> list[str]:
    """Keys of a JSON document that are not lowerCamelCase (OTLP/JSON uses the JSON names)."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "_" in key:
                bad.append(key)
            bad += camel_case_only(item)
    elif isinstance(value, list):
        for item in value:
            bad += camel_case_only(item)
    return bad


@dataclass
class Receiver:
    """A strict OTLP/HTTP logs receiver; ``faults`` are consumed one per request."""

    requests: list[ExportLogsServiceRequest] = field(default_factory=list)  # kept (acknowledged or not)
    content_types: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    retry_after: str = "1"
    rejected_per_partial: int = 2

    async def handle(self, request: web.Request) -> web.StreamResponse:
        fault = self.faults.pop(0) if self.faults else None
        self.headers.append(dict(request.headers))
        content_type = request.content_type
        self.content_types.append(content_type)
        if content_type not in (PROTOBUF, JSON):
            return self.status(415, f"unsupported content type {content_type}", PROTOBUF)
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        try:
            message = self.decode(body, content_type)
        except (DecodeError, json_format.ParseError, ValueError) as exc:
            return self.status(400, f"malformed request: {exc}", content_type)
        if fault == "reset-before":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault in ("429", "502", "503", "504"):
            headers = {"Retry-After": self.retry_after} if fault in ("429", "503") else {}
            return self.status(int(fault), "try later", content_type, headers)
        if fault in ("400", "500", "404"):
            return self.status(int(fault), f"refused with {fault}", content_type)
        self.requests.append(message)
        if fault == "reset-after":  # kept, but the client never hears so: it will send it again
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        response = ExportLogsServiceResponse()
        if fault == "partial":
            response.partial_success.rejected_log_records = self.rejected_per_partial
            response.partial_success.error_message = "2 records had an invalid body"
        if content_type == JSON:
            text = json_format.MessageToJson(response, use_integers_for_enums=True)
            return web.Response(body=text.encode(), content_type=JSON)
        return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)

    @staticmethod
    def decode(body: bytes, content_type: str) -> ExportLogsServiceRequest:
        if content_type == PROTOBUF:
            return ExportLogsServiceRequest.FromString(body)
        document = json.loads(body)
        if bad := camel_case_only(document):
            raise ValueError(f"not OTLP/JSON field names: {bad[:3]}")
        return json_format.Parse(body, ExportLogsServiceRequest())

    @staticmethod
    def status(
        code: int, message: str, content_type: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=code,
            body=status_body(code, message, content_type),
            content_type=content_type,
            headers=headers,
        )

    def messages(self) -> list[str]:
        return [
            log_record.body.string_value
            for request in self.requests
            for resource_logs in request.resource_logs
            for scope_logs in resource_logs.scope_logs
            for log_record in scope_logs.log_records
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake = Receiver()
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/logs", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def send(endpoint: str, batch: list[Record], **options: Any) -> None:
    sink = make_sink({"type": "otlp", "endpoint": endpoint, **options}, name=options.pop("name", "otlp"))
    await sink.start()
    try:
        await sink.send(batch)
    finally:
        await sink.close()


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: json_format.MessageToDict(pair.value) for pair in pairs}


async def test_protobuf_request_groups_records_by_resource(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    other = {"namespace": "prod", "pod": "db-0", "pod_uid": "u-2", "container": "db", "restart_count": 0}
    batch = [
        record("GET / 200", kubernetes=KUBE),
        record("db ready", kubernetes=other, file="/var/log/pods/prod_db-0_u-2/db/0.log"),
        record("panic: boom", stream="stderr", kubernetes=KUBE, time="2026-01-02T03:04:06Z"),
        record("host line", stream=None, file="/var/log/syslog"),
    ]
    await send(endpoint, batch)
    assert fake.content_types == [PROTOBUF]
    assert fake.headers[0]["User-Agent"].startswith("nodeagent/")
    (request,) = fake.requests
    assert len(request.resource_logs) == 3
    api, db, host = request.resource_logs
    assert attributes(api.resource.attributes) == {
        "host.name": {"stringValue": "worker-7"},
        "k8s.node.name": {"stringValue": "worker-7"},
        "log.file.path": {"stringValue": "/var/log/pods/prod_api-7d9f-x2x9z_0f0e/api/2.log"},
        "k8s.namespace.name": {"stringValue": "prod"},
        "k8s.pod.name": {"stringValue": "api-7d9f-x2x9z"},
        "k8s.pod.uid": {"stringValue": "0f0e0d0c-0b0a-0908-0706-050403020100"},
        "k8s.container.name": {"stringValue": "api"},
        "k8s.container.restart_count": {"intValue": "2"},
        "container.id": {"stringValue": "containerd://abc123"},
        "k8s.pod.label.app": {"stringValue": "api"},
        "k8s.pod.label.tier": {"stringValue": "web"},
        "k8s.pod.annotation.team": {"stringValue": "payments"},
        "k8s.deployment.name": {"stringValue": "api"},
        "container.image.name": {"stringValue": "registry.local:5000/shop/api"},
        "container.image.tag": {"stringValue": "1.4.2"},
        "container.image.id": {"stringValue": "sha256:0123abcd"},
        "container.image.repo_digests": {
            "arrayValue": {"values": [{"stringValue": "registry.local:5000/shop/api@sha256:0123abcd"}]}
        },
        "k8s.pod.ip": {"stringValue": "10.1.2.3"},
    }
    assert attributes(db.resource.attributes)["k8s.pod.name"] == {"stringValue": "db-0"}
    assert attributes(host.resource.attributes) == {
        "host.name": {"stringValue": "worker-7"},
        "log.file.path": {"stringValue": "/var/log/syslog"},
    }
    for resource_logs in request.resource_logs:
        (scope_logs,) = resource_logs.scope_logs
        assert (scope_logs.scope.name, scope_logs.scope.version) == ("nodeagent", __version__)
    first, panic = api.scope_logs[0].log_records
    assert first.body.string_value == "GET / 200"
    assert first.time_unix_nano == 1767323045123456789
    assert panic.time_unix_nano == 1767323046000000000
    assert first.observed_time_unix_nano >= first.time_unix_nano  # the batch was built after that
    assert attributes(first.attributes) == {"log.iostream": {"stringValue": "stdout"}}
    assert attributes(panic.attributes) == {"log.iostream": {"stringValue": "stderr"}}
    # stderr alone says nothing of severity (as the filelog receiver and Fluent Bit's output have it)
    assert (panic.severity_number, panic.severity_text) == (0, "")
    (host_line,) = host.scope_logs[0].log_records
    assert (host_line.body.string_value, len(host_line.attributes)) == ("host line", 0)


async def test_json_encoding_is_the_otlp_json_mapping(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    batch = [with_fields(record("x", kubernetes=KUBE), {"level": "WARN", "n": 2**40})]
    await send(endpoint, batch, encoding="json")
    await send(endpoint, batch)  # the same as protobuf, for comparison
    assert fake.content_types == [JSON, PROTOBUF]
    from_json, from_protobuf = fake.requests
    # observed time differs between the two sends; everything else is the same message
    for request in (from_json, from_protobuf):
        for log_record in request.resource_logs[0].scope_logs[0].log_records:
            log_record.observed_time_unix_nano = 0
    assert from_json == from_protobuf
    (log_record,) = from_json.resource_logs[0].scope_logs[0].log_records
    assert (log_record.severity_text, log_record.severity_number) == ("WARN", 13)


async def test_json_body_has_integer_enums_and_string_int64() -> None:
    seen: list[bytes] = []

    async def raw(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(body=b"{}", content_type=JSON)

    app = web.Application()
    app.router.add_post("/v1/logs", raw)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        rec = with_fields(record("x"), {"severity": "error"})
        await send(f"http://127.0.0.1:{runner.addresses[0][1]}", [rec], encoding="json")
    finally:
        await runner.cleanup()
    document = json.loads(seen[0])
    (log_record,) = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert log_record["severityNumber"] == 17  # an integer, not "SEVERITY_NUMBER_ERROR"
    assert log_record["timeUnixNano"] == "1767323045123456789"  # int64 as a string
    assert camel_case_only(document) == []


async def test_fields_become_attributes_with_nested_values(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    fields = {
        "level": "info",
        "status": 200,
        "ratio": 0.5,
        "ok": True,
        "missing": None,
        "user": {"id": 7, "roles": ["a", "b"]},
        "huge": 2**70,
        "bad": "\udcff lone surrogate",
    }
    await send(endpoint, [with_fields(record("{...}"), fields)])
    (log_record,) = fake.requests[0].resource_logs[0].scope_logs[0].log_records
    assert attributes(log_record.attributes) == {
        "log.iostream": {"stringValue": "stdout"},
        "level": {"stringValue": "info"},
        "status": {"intValue": "200"},
        "ratio": {"doubleValue": 0.5},
        "ok": {"boolValue": True},
        "missing": {},
        "user": {
            "kvlistValue": {
                "values": [
                    {"key": "id", "value": {"intValue": "7"}},
                    {
                        "key": "roles",
                        "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
                    },
                ]
            }
        },
        "huge": {"stringValue": str(2**70)},
        "bad": {"stringValue": "? lone surrogate"},
    }
    assert (log_record.severity_text, log_record.severity_number) == ("info", 9)


async def test_gzip_and_credentials(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    await send(endpoint, [record("a" * 500)] * 20, gzip=True, bearer_token="s3cret")
    assert fake.headers[0]["Content-Encoding"] == "gzip"
    assert fake.headers[0]["Authorization"] == "Bearer s3cret"
    assert len(fake.messages()) == 20


async def test_logs_endpoint_is_used_as_given(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    sink = make_sink({"type": "otlp", "logs_endpoint": f"{endpoint}/v1/logs"}, name="otlp")
    await sink.start()
    try:
        await sink.send([record("one")])
    finally:
        await sink.close()
    assert fake.messages() == ["one"]


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize(("fault", "retry_after"), [("429", 7.0), ("503", 7.0), ("502", None), ("504", None)])
async def test_retryable_answers_carry_retry_after(
    receiver: tuple[Receiver, str], fault: str, retry_after: float | None, encoding: str
) -> None:
    fake, endpoint = receiver
    fake.faults, fake.retry_after = [fault], "7"
    with pytest.raises(RetryableSinkError) as caught:
        await send(endpoint, [record("x")], encoding=encoding)
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert f"answered {fault}: status {fault}: try later" in str(caught.value)
    assert fake.requests == []


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize("fault", ["400", "404", "500"])
async def test_other_refusals_are_final_with_the_status_message(
    receiver: tuple[Receiver, str], fault: str, encoding: str
) -> None:
    # The OTLP/HTTP specification: only 429, 502, 503 and 504 may be retried.
    fake, endpoint = receiver
    fake.faults = [fault]
    with pytest.raises(PermanentSinkError, match=f"answered {fault}: status {fault}: refused with {fault}"):
        await send(endpoint, [record("x")], encoding=encoding)


async def test_connection_reset_is_retryable(receiver: tuple[Receiver, str]) -> None:
    fake, endpoint = receiver
    fake.faults = ["reset-before"]
    with pytest.raises(RetryableSinkError):
        await send(endpoint, [record("x")])


async def test_partial_success_is_counted(receiver: tuple[Receiver, str], caplog: Any) -> None:
    fake, endpoint = receiver
    name = unique_name("otlp")
    for encoding in ("protobuf", "json"):
        fake.faults = ["partial", "partial"]
        sink = make_sink({"type": "otlp", "endpoint": endpoint, "encoding": encoding}, name=name)
        await sink.start()
        try:
            await sink.send([record("a"), record("b"), record("c")])
            await sink.send([record("d"), record("e"), record("f")])
        finally:
            await sink.close()
    assert sample("nodeagent_logs_records_dropped_total", {"sink": name, "reason": "partial_success"}) == 8
    logged = [r for r in caplog.records if "rejected part of a request" in r.getMessage()]
    assert len(logged) == 2  # once per sink (each logs at most once a minute), not once per request
    assert logged[0].err == "2 records had an invalid body"


async def test_receiver_is_strict_about_what_it_takes(receiver: tuple[Receiver, str]) -> None:
    # What the sink's tests rely on: the receiver refuses what a Collector refuses.
    fake, endpoint = receiver
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{endpoint}/v1/logs", data=b"{}", headers={"Content-Type": "text/plain"}
        ) as answer:
            assert answer.status == 415
        async with session.post(
            f"{endpoint}/v1/logs", data=b"\xff\xff\xff", headers={"Content-Type": PROTOBUF}
        ) as answer:
            assert answer.status == 400
            status = status_message_class().FromString(await answer.read())
            assert status.message.startswith("malformed request")
        async with session.post(
            f"{endpoint}/v1/logs",
            data=b'{"resource_logs": []}',
            headers={"Content-Type": JSON},
        ) as answer:
            assert answer.status == 400
    assert fake.requests == []


def test_status_decoding_matches_the_wire_format() -> None:
    # google.rpc.Status{code=3, message="bad"} as its bytes: field 1 varint, field 2 length-delimited.
    assert describe_status(b"\x08\x03\x12\x03bad", PROTOBUF) == "status 3: bad"
    assert describe_status(b'{"code": 3, "message": "bad"}', JSON) == "status 3: bad"
    assert describe_status(b"\xff\xff", PROTOBUF) is None  # quoted as text instead
    assert describe_status(b"plain", "text/plain") is None


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "endpoint"),
        ({"endpoint": "http://a:4318", "logs_endpoint": "http://a:4318/v1/logs"}, "endpoint"),
        ({"endpoint": "ftp://a"}, "endpoint"),
        ({"endpoint": "http://a:4318", "encoding": "xml"}, "encoding"),
        ({"endpoint": "http://a:4318", "tls": {}}, "tls"),
    ],
)
def test_bad_options(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_sink({"type": "otlp", **options}, name="otlp")
    assert caught.value.key == key


def test_protobuf_is_imported_only_for_an_otlp_sink(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import nodeagent.logs.shipper, nodeagent.logs.sinks as sinks\n"
        "assert 'google.protobuf' not in sys.modules\n"
        "sinks.make_sink({'type': 'otlp', 'endpoint': 'http://127.0.0.1:1'}, name='o')\n"
        "assert 'google.protobuf' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_20000_records_through_faults_none_lost(receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    """Done-when: the real pipeline delivers 20,000 records through 429 / 503 / resets / partial success
    with none lost; only a reset after the receiver kept a request repeats it (one batch each)."""
    fake, endpoint = receiver
    fake.retry_after = "0"
    # A fault for one request in three, every kind four times.
    for kind in ["429", "reset-before", "503", "partial", "502", "reset-after", "504"] * 4:
        fake.faults += [kind, "ok", "ok"]
    resets_after = fake.faults.count("reset-after")
    log = tmp_path / "app.log"
    lines = [f"line {n:05d} " + "x" * (n % 50) for n in range(20_000)]
    sink = make_sink({"type": "otlp", "endpoint": endpoint, "gzip": True}, name=unique_name("otlp"))
    config = make_config(tmp_path, [log], batch_max_records=500)
    async with shipping(config, sink) as shipper:
        await asyncio.to_thread(write_lines, log, lines)
        deadline = asyncio.get_running_loop().time() + 120
        while len(set(fake.messages())) < len(lines):
            assert asyncio.get_running_loop().time() < deadline, f"{len(set(fake.messages()))} delivered"
            await asyncio.sleep(0.05)
        await shipper.stop(timeout=60)  # longer than shipping()'s 10 s: seen slower under load
    got = fake.messages()
    assert set(got) == set(lines)  # 0 lost
    # Each repeat is one whole request the receiver kept but could not acknowledge (at most one batch).
    batches = [
        [lr.body.string_value for lr in r.resource_logs[0].scope_logs[0].log_records] for r in fake.requests
    ]
    repeated = [batch for i, batch in enumerate(batches) if batch in batches[:i]]
    assert len(repeated) <= resets_after
    assert len(got) - len(lines) == sum(map(len, repeated))
    # in order, apart from the repeats
    seen: set[str] = set()
    assert [m for m in got if not (m in seen or seen.add(m))] == lines  # type: ignore[func-returns-value]
