"""Elasticsearch / OpenSearch sink against the strict fake ``_bulk`` server (fake_elasticsearch.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from nodeagent.config.errors import ConfigError
from nodeagent.logs.record import Record
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks._http import parse_retry_after
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink
from nodeagent.logs.sinks.elasticsearch import ElasticsearchSink, IndexTemplate, sanitize_index_name
from tests.conftest import free_port
from tests.logs.conftest import (
    KUBE,
    MemorySink,
    Shipper,
    eventually,
    make_config,
    sample,
    shipping,
    sink_record,
    unique_name,
    write_lines,
)
from tests.logs.fake_elasticsearch import FakeElasticsearch, index_name_error, serving

STAMP = "2026-01-02T03:04:05.123456789Z"


@pytest.fixture
async def es() -> AsyncIterator[tuple[FakeElasticsearch, str]]:
    fake = FakeElasticsearch()
    async with serving(fake) as url:
        yield fake, url


def es_sink(url: str, **options: Any) -> Sink:
    return make_sink(
        {"type": "elasticsearch", "url": url, **options}, name=options.pop("name", unique_name("es"))
    )


async def send_until_done(sink: Sink, batch: list[Record], attempts: int = 20) -> int:
    """What the pipeline does: the same batch again after each retryable error; returns the retries."""
    for attempt in range(attempts):
        try:
            await sink.send(batch)
            return attempt
        except RetryableSinkError:
            continue
    raise AssertionError("never delivered")


async def send(url: str, batch: list[Record], **options: Any) -> None:
    sink = es_sink(url, **options)
    await sink.start()
    try:
        await sink.send(batch)
    finally:
        await sink.close()


def records(count: int, **kwargs: Any) -> list[Record]:
    return [sink_record(f"seq {i:06d}", kubernetes=KUBE, **kwargs) for i in range(count)]


# -- the request ----------------------------------------------------------------------------------


async def test_bulk_request_documents_index_and_timestamp(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    batch = [sink_record("hello", kubernetes=KUBE), sink_record("host", stream=None)]
    await send(url, batch)
    (request,) = fake.requests
    assert request["path"] == "/_bulk"
    assert request["headers"]["Content-Type"] == "application/x-ndjson"
    assert request["headers"]["User-Agent"].startswith("nodeagent/")
    assert request["query"]["filter_path"] == "errors,items.*.status,items.*.error"
    assert "Content-Encoding" not in request["headers"]
    assert fake.docs == [
        ("nodeagent-2026.01.02", {"@timestamp": STAMP, **batch[0].to_dict()}),
        ("nodeagent-2026.01.02", {"@timestamp": STAMP, **batch[1].to_dict()}),
    ]


async def test_index_template_fields_fallback_date_in_utc_and_sanitising(
    es: tuple[FakeElasticsearch, str],
) -> None:
    fake, url = es
    kube = {**KUBE, "namespace": "Shop #1", "labels": {"app": "Cart"}}
    batch = [
        sink_record("a", kubernetes=kube, time="2026-01-02T01:30:00.5+02:00"),  # 2026-01-01 in UTC
        sink_record("b", kubernetes=None),
        sink_record("c", kubernetes=kube, time="not a time"),
    ]
    await send(url, batch, index="Logs-{kubernetes.namespace|host}-{kubernetes.labels.app}-%Y.%m.%d")
    today = time.strftime("%Y.%m.%d", time.gmtime())
    assert [index for index, _ in fake.docs] == [
        "logs-shop__1-cart-2026.01.01",
        "logs-host-unknown-2026.01.02",
        f"logs-shop__1-cart-{today}",
    ]
    assert fake.docs[0][1]["@timestamp"] == "2026-01-01T23:30:00.500000000Z"
    assert fake.docs[2][1]["time"] == "not a time"  # the record keeps its own time field


def test_index_names_are_sanitised_to_what_elasticsearch_accepts() -> None:
    for raw in ["ABC", "-x", "_x", "+x", "a b", 'a\\/*?"<>| ,#:b', "", ".", "..", "é" * 300, "ok-1.2"]:
        name = sanitize_index_name(raw)
        assert index_name_error(name) is None, (raw, name)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("logs-%M", "unsupported date code %M"),
        ("logs-{pod}", "unknown field 'pod'"),
        ("logs-{node.x}", "'node' has no sub-fields"),
        ("logs-{kubernetes.namespace", "unbalanced braces"),
        ("", "empty"),
    ],
)
def test_bad_index_templates_are_config_errors(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_sink({"type": "elasticsearch", "url": "http://es:9200", "index": template}, name="es")


def test_template_parts() -> None:
    parsed = IndexTemplate.parse("a-{stream|none}-%Y")
    assert parsed.literals == ("a-", "-%Y") and parsed.fields == ((("stream",), "none"),) and parsed.dated


async def test_action_index_pipeline_opensearch_alias_and_gzip(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    sink = make_sink(
        {
            "type": "opensearch",
            "url": url + "/_bulk",
            "action": "index",
            "pipeline": "parse-nginx",
            "gzip": True,
        },
        name="os",
    )
    assert isinstance(sink, ElasticsearchSink)
    await sink.start()
    await sink.send([sink_record("x")])
    await sink.close()
    (request,) = fake.requests
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["query"]["pipeline"] == "parse-nginx"
    assert len(fake.docs) == 1


async def test_data_streams_take_create_with_a_timestamp_only(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    await send(url, [sink_record("x")], index="logs-nodeagent-default")
    assert fake.docs[0][0] == "logs-nodeagent-default"
    with pytest.raises(PermanentSinkError, match="only write ops with an op_type of create") as caught:
        await send(url, [sink_record("y")], index="logs-nodeagent-default", action="index")
    assert caught.value.refused == 1


async def test_the_strict_server_takes_hostile_records(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    weird = [
        sink_record("nul\x00 and \ud800 lone surrogate", time="garbage"),
        sink_record("é" * 1000 + "\n\u2028 newline inside"),
        sink_record('{"@timestamp": "json in message"}'),
    ]
    await send(url, weird)
    assert [doc["message"] for _, doc in fake.docs][1:] == [weird[1].message, weird[2].message]


# -- per-item results -----------------------------------------------------------------------------


async def test_items_refused_with_429_are_the_only_ones_sent_again(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    fake.item_429_rate = 0.3
    sink = es_sink(url)
    batch = records(500)
    retries = await send_until_done(sink, batch)
    await sink.close()
    assert retries >= 1
    assert sorted(fake.messages()) == [r.message for r in batch]  # each once
    sizes = [request["size"] for request in fake.requests]
    assert sizes == sorted(sizes, reverse=True) and sizes[1] < sizes[0] / 2  # only the refused part again


async def test_mapping_errors_are_dead_letters_the_rest_is_kept(
    es: tuple[FakeElasticsearch, str], tmp_path: Path
) -> None:
    fake, url = es
    fake.refuse_item = lambda doc: "BAD" in doc["message"]
    fake.item_429_rate = 0.2
    name = unique_name("es")
    dead = tmp_path / "dead" / "es.ndjson"
    sink = es_sink(url, name=name, dead_letter_file=str(dead))
    batch = [sink_record("BAD one" if i % 10 == 3 else f"ok {i}") for i in range(100)]
    with pytest.raises(
        PermanentSinkError, match=r"10 of 100 records refused for good.*mapper_parsing_exception"
    ) as caught:
        await send_until_done(sink, batch)
    assert caught.value.refused == 10
    assert sorted(fake.messages()) == sorted(r.message for r in batch if "BAD" not in r.message)
    assert (
        sample(
            "nodeagent_logs_sink_dead_letter_records_total",
            {"sink": name, "reason": "mapper_parsing_exception"},
        )
        == 10
    )
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == 10 and dead.stat().st_mode & 0o777 == 0o600
    assert letters[0]["status"] == 400 and letters[0]["index"] == "nodeagent-2026.01.02"
    assert letters[0]["error"]["type"] == "mapper_parsing_exception"
    assert "For input string" in letters[0]["error"]["reason"]
    assert letters[0]["document"]["message"] == "BAD one"
    # The next batch starts afresh.
    await sink.send([sink_record("ok again")])
    await sink.close()
    assert fake.messages()[-1] == "ok again"


async def test_mapping_conflict_and_invalid_index_from_a_field(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    fake.mappings["nodeagent-2026.01.02"] = {"stream": "long"}
    with pytest.raises(PermanentSinkError, match="failed to parse field \\[stream\\] of type \\[long\\]"):
        await send(url, [sink_record("x")])
    assert fake.docs == []


async def test_dead_letter_file_is_capped(es: tuple[FakeElasticsearch, str], tmp_path: Path) -> None:
    fake, url = es
    fake.refuse_item = lambda doc: True
    dead = tmp_path / "dead.ndjson"
    with pytest.raises(PermanentSinkError):
        await send(
            url,
            [sink_record("x" * 100) for _ in range(50)],
            dead_letter_file=str(dead),
            dead_letter_max_bytes=2000,
        )
    assert 0 < dead.stat().st_size <= 2000


# -- whole-request failures -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "503"])
async def test_throttling_is_retryable_with_the_servers_retry_after(
    es: tuple[FakeElasticsearch, str], fault: str
) -> None:
    fake, url = es
    fake.faults = [fault, fault]
    fake.retry_after = "7"
    sink = es_sink(url)
    with pytest.raises(RetryableSinkError, match=f"answered {fault}") as caught:
        await sink.send([sink_record("x")])
    assert caught.value.retry_after == 7.0
    fake.retry_after = formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(RetryableSinkError) as caught:
        await sink.send([sink_record("x")])
    assert caught.value.retry_after is not None and 25 < caught.value.retry_after <= 31
    await sink.send([sink_record("x")])
    await sink.close()
    assert len(fake.docs) == 1


def test_retry_after_values() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    for bad in [None, "", "soon", "nan", "Wed, 99 Oct 2015 07:28:00"]:
        assert parse_retry_after(bad) is None


async def test_413_splits_the_request_and_a_single_huge_record_is_a_dead_letter(
    es: tuple[FakeElasticsearch, str],
) -> None:
    fake, url = es
    fake.max_content_length = 20_000
    batch = [*records(300), sink_record("huge " + "x" * 30_000), *records(10)]
    with pytest.raises(PermanentSinkError, match=r"1 of 311 records refused for good.*413") as caught:
        await send(url, batch)
    assert caught.value.refused == 1
    assert len(fake.docs) == 310
    assert max(request["size"] for request in fake.requests) > 20_000  # tried, then split


@pytest.mark.parametrize("fault", ["hang", "reset"])
async def test_hangs_and_resets_are_retryable(es: tuple[FakeElasticsearch, str], fault: str) -> None:
    fake, url = es
    fake.faults = [fault]
    fake.hang_seconds = 5
    sink = es_sink(url, timeout="500ms")
    with pytest.raises(RetryableSinkError, match="failed"):
        await sink.send([sink_record("x")])
    await sink.send([sink_record("x")])
    await sink.close()
    assert fake.messages() == ["x"]


async def test_malformed_bulk_answers_are_refused_by_the_fake(es: tuple[FakeElasticsearch, str]) -> None:
    """The fake rejects what Elasticsearch rejects (what the sink must never send)."""
    import aiohttp

    _, url = es
    async with aiohttp.ClientSession() as session:
        cases = [
            (b'{"create":{"_index":"a"}}\n{"m":1}', "application/x-ndjson", 400, "terminated by a newline"),
            (b'{"upsert":{"_index":"a"}}\n{}\n', "application/x-ndjson", 400, "but found [upsert]"),
            (b"[1]\n", "application/x-ndjson", 400, "expected START_OBJECT but found [START_ARRAY]"),
            (b'{"create":{"_index":"a"}}\n{}\n', "text/plain", 406, "is not supported"),
            (b'{"create":{}}\n{}\n', "application/json", 400, "index is missing"),
        ]
        for body, content_type, status, text in cases:
            async with session.post(
                url + "/_bulk", data=body, headers={"Content-Type": content_type}
            ) as response:
                assert response.status == status, body
                answer = await response.json()
                assert text in json.dumps(answer), answer
        async with session.post(
            url + "/_bulk",
            data=b'{"create":{"_index":"Bad"}}\n{}\n',
            headers={"Content-Type": "application/x-ndjson"},
        ) as response:
            answer = await response.json()
        assert answer["errors"] is True
        error = answer["items"][0]["create"]["error"]
        assert error["type"] == "invalid_index_name_exception" and "must be lowercase" in error["reason"]


# -- authentication -------------------------------------------------------------------------------


async def test_basic_auth_and_api_keys(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"key-id:key-secret").decode()
    fake = FakeElasticsearch(users={"elastic": "changeme"}, api_keys={encoded})
    async with serving(fake) as url:
        await send(url, [sink_record("basic")], username="elastic", password="changeme")
        await send(url, [sink_record("encoded")], api_key=encoded)
        (tmp_path / "key").write_text("key-id:key-secret\n")
        await send(url, [sink_record("pair from a file")], api_key_file=str(tmp_path / "key"))
        with pytest.raises(
            PermanentSinkError, match=r"answered 401.*missing authentication credentials"
        ) as caught:
            await send(url, [sink_record("anonymous")])
        assert caught.value.refused == 1
        with pytest.raises(PermanentSinkError, match="unable to authenticate user \\[elastic\\]") as caught:
            await send(url, [sink_record("wrong")], username="elastic", password="wrong-password")
        assert "wrong-password" not in str(caught.value)
        with pytest.raises(PermanentSinkError, match="unable to authenticate with provided credentials"):
            await send(url, [sink_record("bad key")], api_key="bm9wZTpub3Bl")
    assert fake.messages() == ["basic", "encoded", "pair from a file"]
    assert fake.requests[1]["headers"]["Authorization"] == f"ApiKey {encoded}"
    assert fake.requests[2]["headers"]["Authorization"] == f"ApiKey {encoded}"


async def test_a_refused_retry_drops_only_what_was_not_accepted(es: tuple[FakeElasticsearch, str]) -> None:
    fake, url = es
    fake.item_429_rate = 0.5
    sink = es_sink(url)
    batch = records(100)
    with pytest.raises(RetryableSinkError):
        await sink.send(batch)
    accepted = len(fake.docs)
    assert 0 < accepted < 100
    fake.users = {"elastic": "changeme"}  # the key was revoked meanwhile
    with pytest.raises(PermanentSinkError, match="answered 401") as caught:
        await sink.send(batch)
    assert caught.value.refused == 100 - accepted
    await sink.close()


def test_one_credential_at_a_time() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        make_sink({"type": "elasticsearch", "url": "http://es", "api_key": "k", "username": "u"}, name="es")
    with pytest.raises(ConfigError, match="api_key_file"):
        make_sink(
            {"type": "elasticsearch", "url": "http://es", "api_key": "k", "api_key_file": "/k"}, name="es"
        )


async def test_server_down_is_retryable() -> None:
    with pytest.raises(RetryableSinkError, match="failed"):
        await send(f"http://127.0.0.1:{free_port()}", [sink_record("x")], timeout="2s")


# -- through the shipper: nothing lost, at most one batch repeated ---------------------------------


async def test_20000_records_through_faults_none_lost_at_most_one_batch_repeated(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"seq {i:06d} " + "lorem ipsum " * (i % 7) for i in range(20_000)]
    write_lines(log, lines)
    # The fake shares the event loop with the shipper: a timeout generous enough that only the injected
    # hang ends in one (a request indexed but timed out would be one more repeated batch).
    fake = FakeElasticsearch(item_429_rate=0.02, hang_seconds=10)
    # Whole-request faults spread over the run; "reset-after" indexes then drops the connection: the
    # one fault that makes the sink repeat (that request's items).
    fake.faults = ["429", "", "503", "", "reset", "", "hang", "", "413", "", "reset-after", ""]
    fake.retry_after = "0.05"
    batch = 1000
    async with serving(fake) as url:
        sink = es_sink(url, timeout="5s", index="logs-{kubernetes.namespace|host}-%Y.%m.%d")
        config = make_config(tmp_path, [log], batch_max_records=batch)
        shipper = Shipper(config, [sink])
        await shipper.start()
        try:
            deadline = time.monotonic() + 120
            while len({m.split()[1] for m in fake.messages()}) < 20_000:
                assert time.monotonic() < deadline, f"only {len(fake.messages())} delivered"
                await asyncio.sleep(0.1)
        finally:
            await shipper.stop(timeout=60)  # a loaded machine: the property here is delivery, not speed
    seen = Counter(message.split()[1] for message in fake.messages())
    assert len(seen) == 20_000  # none lost
    repeated = sum(count - 1 for count in seen.values())
    assert repeated <= batch  # at most one batch repeated
    assert max(seen.values()) <= 2
    assert {429, 503, 413}.issubset(fake.statuses)


# -- what the pipeline makes of retry_after and refused ---------------------------------------------


class TimedSink(MemorySink):
    def __init__(self) -> None:
        super().__init__(unique_name("timed"))
        self.times: list[float] = []

    async def send(self, batch: Sequence[Record]) -> None:
        self.times.append(time.monotonic())
        await super().send(batch)


async def test_the_pipeline_waits_at_least_the_retry_after(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, ["one", "two"])
    sink = TimedSink()
    sink.fail_with = RetryableSinkError("429 slow down", retry_after=0.6)
    sink.fail_times = 1
    async with shipping(make_config(tmp_path, [log]), sink):  # backoff 20-100 ms without it
        await eventually(lambda: len(sink.records) == 2, what="delivery after the wait")
    assert sink.times[1] - sink.times[0] >= 0.6


async def test_the_pipeline_counts_only_the_refused_records(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write_lines(log, [f"line {i}" for i in range(10)])
    sink = TimedSink()
    sink.fail_with = PermanentSinkError("3 entries too old", refused=3)
    sink.fail_times = 1
    async with shipping(make_config(tmp_path, [log]), sink):
        await eventually(lambda: sample("nodeagent_logs_records_sent_total", {"sink": sink.name}) == 7)
    assert sample("nodeagent_logs_records_dropped_total", {"sink": sink.name, "reason": "rejected"}) == 3
