"""Loki sink against a local server that implements the documented JSON push API."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.logs.encoding import record_json
from nodeagent.logs.record import Record
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from nodeagent.logs.sinks.loki import (
    THROTTLED_WAIT,
    TRUNCATION_MARKER,
    build_push_request,
    cap_line,
    refused_entries,
    sanitize_label_name,
)
from tests.conftest import free_port
from tests.logs.conftest import sample, unique_name

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
KUBE = {
    "namespace": "shop",
    "pod": "cart-7d9f8-abcde",
    "pod_uid": "0b3f9c1e",
    "container": "cart",
    "restart_count": 3,
}


def record(
    message: str,
    *,
    time: str = "2026-01-02T03:04:05.000000001Z",
    stream: str | None = "stdout",
    kubernetes: dict | None = None,
) -> Record:
    return Record(
        time=time,
        message=message,
        stream=stream,
        file="/var/log/pods/x/0.log",
        node="node-a",
        kubernetes=kubernetes,
    )


@dataclass
class FakeLoki:
    """``POST /loki/api/v1/push`` as Loki documents it (JSON body, optional gzip), strict about shape."""

    tenant: str | None = None
    fail_with: tuple[int, str] | None = None  # (status, body) to answer instead of accepting
    fail_headers: dict[str, str] = field(default_factory=dict)
    max_line_size: int = 0  # > 0: longer entries refused, the rest kept, as Loki's distributor does
    pushes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)

    async def push(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        if self.fail_with:
            status, body = self.fail_with
            return web.Response(status=status, text=body, headers=self.fail_headers)
        if request.content_type != "application/json":
            return web.Response(status=415, text=f"unsupported content type {request.content_type}")
        if self.tenant is not None and request.headers.get("X-Scope-OrgID") != self.tenant:
            return web.Response(status=401, text="no org id")
        # aiohttp's server undoes Content-Encoding: gzip the way Loki does (a bad gzip stream is a 400).
        raw = await request.read()
        try:
            body = json.loads(raw)
            self._check(body)
        except (ValueError, AssertionError) as exc:
            return web.Response(status=400, text=f"invalid push request: {exc}")
        refused = self._validate(body)
        self.pushes.append(body)
        if refused:
            return web.Response(status=400, text=refused)
        return web.Response(status=204)

    def _validate(self, body: dict[str, Any]) -> str:
        """Drop the entries Loki's distributor refuses, keep the rest; the 400 text it answers."""
        if not self.max_line_size:
            return ""
        refused, first = 0, ""
        for stream in body["streams"]:
            kept = []
            for ts, line in stream["values"]:
                size = len(line.encode())
                if size > self.max_line_size:
                    refused += 1
                    labels = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(stream["stream"].items())) + "}"
                    first = first or (
                        f"Max entry size '{self.max_line_size}' bytes exceeded for stream '{labels}' while "
                        f"adding an entry with length '{size}' bytes"
                    )
                else:
                    kept.append([ts, line])
            stream["values"] = kept
        return f"{refused} errors like: {first}\n" if refused else ""

    @staticmethod
    def _check(body: Any) -> None:
        assert isinstance(body, dict) and set(body) == {"streams"}, "top level must be {streams: [...]}"
        for stream in body["streams"]:
            assert set(stream) == {"stream", "values"}, f"bad stream keys {sorted(stream)}"
            labels = stream["stream"]
            assert labels, "at least one label pair is required per stream"
            for name, value in labels.items():
                assert LABEL_NAME.fullmatch(name), f"invalid label name {name!r}"
                assert isinstance(value, str) and value, f"label {name} must be a non-empty string"
            last = -1
            for entry in stream["values"]:
                assert isinstance(entry, list) and len(entry) == 2, "an entry is [timestamp, line]"
                ts, line = entry
                assert isinstance(ts, str) and ts.isdigit(), "timestamp must be a string of unix nanoseconds"
                assert isinstance(line, str)
                assert int(ts) >= last, "entries out of order within a stream"
                last = int(ts)

    def entries(self) -> list[tuple[dict[str, str], str, str]]:
        return [
            (s["stream"], ts, line)
            for push in self.pushes
            for s in push["streams"]
            for ts, line in s["values"]
        ]


@pytest.fixture
async def loki() -> AsyncIterator[tuple[FakeLoki, str]]:
    fake = FakeLoki()
    app = web.Application()
    app.router.add_post("/loki/api/v1/push", fake.push)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def send(url: str, batch: list[Record], **options: Any) -> None:
    sink = make_sink({"type": "loki", "url": url, **options}, name="loki")
    await sink.start()
    try:
        await sink.send(batch)
    finally:
        await sink.close()


async def test_push_default_labels_gzip_and_json_lines(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    batch = [
        record("hello", kubernetes=KUBE),
        record("oops", stream="stderr", kubernetes=KUBE),
        record("host line", stream=None),
    ]
    await send(url, batch)
    (request,) = fake.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["User-Agent"].startswith("nodeagent/")
    assert "X-Scope-OrgID" not in request.headers
    assert [(labels, ts, json.loads(line)) for labels, ts, line in fake.entries()] == [
        (
            {
                "node": "node-a",
                "namespace": "shop",
                "pod": "cart-7d9f8-abcde",
                "container": "cart",
                "stream": "stdout",
            },
            "1767323045000000001",
            batch[0].to_dict(),
        ),
        (
            {
                "node": "node-a",
                "namespace": "shop",
                "pod": "cart-7d9f8-abcde",
                "container": "cart",
                "stream": "stderr",
            },
            "1767323045000000001",
            batch[1].to_dict(),
        ),
        ({"node": "node-a"}, "1767323045000000001", batch[2].to_dict()),
    ]  # empty labels omitted


async def test_tenant_headers_auth_and_no_gzip(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.tenant = "team-a"
    await send(
        url + "/",
        [record("x")],
        tenant_id="team-a",
        gzip=False,
        headers={"X-Extra": "1"},
        username="u",
        password="p w",
    )
    (request,) = fake.requests
    assert "Content-Encoding" not in request.headers
    assert request.headers["X-Extra"] == "1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p w").decode()
    assert len(fake.pushes) == 1


async def test_password_file(loki: tuple[FakeLoki, str], tmp_path: Any) -> None:
    fake, url = loki
    (tmp_path / "pw").write_text("s3cret\n")
    await send(url, [record("x")], username="u", password_file=str(tmp_path / "pw"))
    assert fake.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"u:s3cret").decode()


async def test_full_push_url_is_accepted_as_is(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    await send(url + "/loki/api/v1/push", [record("x")])
    assert len(fake.pushes) == 1


async def test_entries_sorted_per_stream_stably(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    times = [
        "2026-01-02T03:04:05.000000003Z",
        "2026-01-02T03:04:05.000000001Z",
        "2026-01-02T03:04:05.000000003Z",
        "2026-01-02T05:04:05.000000002+02:00",
    ]
    await send(url, [record(f"m{i}", time=t) for i, t in enumerate(times)], line_format="message")
    assert [(ts[-1], line) for _, ts, line in fake.entries()] == [
        ("1", "m1"),
        ("2", "m3"),
        ("3", "m0"),
        ("3", "m2"),
    ]


async def test_label_mapping_static_labels_and_kubernetes_fields(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    await send(
        url,
        [record("x", kubernetes=KUBE)],
        line_format="message",
        labels={"k8s-ns": "kubernetes.namespace", "restarts": "restart_count", "uid": "pod_uid"},
        static_labels={"cluster": "prod", "9lives": "yes", "empty": ""},
    )
    ((labels, _, line),) = fake.entries()
    assert line == "x"
    assert labels == {
        "k8s_ns": "shop",
        "restarts": "3",
        "uid": "0b3f9c1e",
        "cluster": "prod",
        "_9lives": "yes",
    }


async def test_stream_without_any_label_gets_a_fallback(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    await send(url, [record("x", stream=None)], labels=["pod", "stream"])
    assert fake.entries()[0][0] == {"job": "nodeagent"}


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_and_throttling_are_retryable(loki: tuple[FakeLoki, str], status: int) -> None:
    fake, url = loki
    fake.fail_with = (status, "ingester busy")
    with pytest.raises(RetryableSinkError, match=f"answered {status}: ingester busy"):
        await send(url, [record("x")])


async def test_bad_request_is_permanent_with_the_body(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.fail_with = (400, "entry too far behind " + "x" * 5000)
    with pytest.raises(PermanentSinkError, match=r"answered 400: entry too far behind x+\.\.\.$") as caught:
        await send(url, [record("x")])
    assert len(str(caught.value)) < 1000  # the body is truncated


async def test_our_own_body_passes_the_strict_server(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.tenant = None
    weird = [record("nul\x00 and \ud800 lone surrogate", time="garbage"), record("é" * 1000)]
    await send(url, weird)
    assert len(fake.entries()) == 2  # the bad time became "now", the surrogate did not break encoding


async def test_server_down_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetryableSinkError, match="failed"):
        await send(url, [record("x")], timeout="2s")


async def test_session_lives_from_start_to_close(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    sink = make_sink({"type": "loki", "url": url}, name="loki")
    await sink.start()
    session = sink._poster._session  # type: ignore[attr-defined]
    assert session is not None and not session.closed
    await sink.send([record("a")])
    await sink.send([record("b")])
    await sink.close()
    assert session.closed and len(fake.pushes) == 2


def test_label_names_are_sanitized() -> None:
    assert sanitize_label_name("pod-uid") == "pod_uid"
    assert sanitize_label_name("1st") == "_1st"
    assert sanitize_label_name("a.b/c") == "a_b_c"
    assert sanitize_label_name("") == "_"


def test_push_request_groups_streams_in_first_seen_order() -> None:
    body = build_push_request(
        [record("a", stream="stderr"), record("b"), record("c", stream="stderr")],
        [("stream", "stream")],
        {},
        "message",
        now_ns=7,
    )
    assert body == {
        "streams": [
            {
                "stream": {"stream": "stderr"},
                "values": [["1767323045000000001", "a"], ["1767323045000000001", "c"]],
            },
            {"stream": {"stream": "stdout"}, "values": [["1767323045000000001", "b"]]},
        ]
    }


# -- Retry-After, partial refusals, line size, Promtail's defaults ---------------------------------


async def test_throttling_waits_for_retry_after(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.fail_with = (429, "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec)")
    fake.fail_headers = {"Retry-After": "5"}
    with pytest.raises(RetryableSinkError) as caught:
        await send(url, [record("x")])
    assert caught.value.retry_after == 5.0
    fake.fail_headers = {}
    with pytest.raises(RetryableSinkError) as caught:
        await send(url, [record("x")])
    assert caught.value.retry_after == THROTTLED_WAIT  # not the pipeline's 0.3 s


# Answers recorded from Loki's source (pkg/ingester/stream.go, pkg/distributor/distributor.go,
# pkg/validation/validate.go): what a 400 says when Loki kept the rest of the push.
LOKI_3_INGESTER = (
    "entry with timestamp 2026-01-02 03:04:05.000000001 +0000 UTC ignored, reason: 'entry too far behind, "
    "entry timestamp is: 2026-01-02T03:04:05Z, oldest acceptable timestamp is: 2026-01-02T05:04:05Z',\n"
    "entry with timestamp 2026-01-02 03:04:05.000000002 +0000 UTC ignored, reason: 'entry too far behind, "
    "entry timestamp is: 2026-01-02T03:04:05Z, oldest acceptable timestamp is: 2026-01-02T05:04:05Z',\n"
    "user 'fake', total ignored: 2 out of 5 for stream: {node=\"node-a\"}"
)
LOKI_2_INGESTER = (
    "entry with timestamp 1970-01-01 00:00:00 +0000 UTC ignored, reason: 'entry out of order' for stream: "
    '{foo="bar"},\ntotal ignored: 1 out of 3'
)
DISTRIBUTOR = (
    "3 errors like: Max entry size '10' bytes exceeded for stream '{foo=\"bar\"}' while adding an entry "
    "with length '11' bytes\n"
    "2 errors like: entry for stream '{foo=\"bar\"}' has timestamp too new: 2026-01-02T05:04:05Z\n"
)
OLD_DISTRIBUTOR = "entry for stream '{foo=\"bar\"}' has timestamp too old: 2019-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (LOKI_3_INGESTER, 2),
        (LOKI_2_INGESTER, 1),
        (DISTRIBUTOR, 5),
        (LOKI_3_INGESTER + "\n" + LOKI_3_INGESTER, 4),  # two streams
        (OLD_DISTRIBUTOR, 1),
        ("error at least one label pair is required per stream", None),
        ("invalid push request: unexpected EOF", None),
    ],
)
def test_refused_entries_counted_from_lokis_answers(answer: str, refused: int | None) -> None:
    assert refused_entries(answer) == refused


async def test_only_the_refused_entries_count_as_refused(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.max_line_size = 100
    batch = [record("short"), record("long " + "x" * 200), record("also short"), record("y" * 300)]
    with pytest.raises(PermanentSinkError, match="2 errors like: Max entry size") as caught:
        await send(url, batch, line_format="message", max_line_size=0)
    assert caught.value.refused == 2
    assert [line for _, _, line in fake.entries()] == ["short", "also short"]


async def test_long_lines_are_cut_to_max_line_size_visibly(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.max_line_size = 1000
    name = unique_name("loki")
    batch = [record("é" * 2000), record("fits"), record('"\\' * 600)]
    sink = make_sink({"type": "loki", "url": url, "max_line_size": 1000}, name=name)
    await sink.send(batch)
    await sink.close()
    lines = [line for _, _, line in fake.entries()]
    assert len(lines) == 3 and all(len(line.encode()) <= 1000 for line in lines)
    cut = json.loads(lines[0])
    assert cut["message"].endswith(TRUNCATION_MARKER) and cut["message"].startswith("é" * 100)
    assert {k: v for k, v in cut.items() if k != "message"} == {
        k: v for k, v in batch[0].to_dict().items() if k != "message"
    }
    assert json.loads(lines[1]) == batch[1].to_dict()
    assert json.loads(lines[2])["message"].endswith(TRUNCATION_MARKER)
    assert sample("nodeagent_logs_sink_lines_truncated_total", {"sink": name}) == 2
    await send(url, [record("z" * 5000)], line_format="message", max_line_size="1000")
    last = fake.entries()[-1][2]
    assert last == "z" * (1000 - len(TRUNCATION_MARKER.encode())) + TRUNCATION_MARKER


async def test_the_default_max_line_size_is_lokis(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    fake.max_line_size = 256_000
    await send(url, [record("x" * 300_000)], line_format="message")
    ((_, _, line),) = fake.entries()
    assert len(line.encode()) == 256_000


async def test_promtail_defaults_raw_line_filename_and_job(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    await send(url, [record("GET /healthz 200", kubernetes=KUBE)], line_format="raw")
    await send(url, [record("x")], line_format="raw", job="varlogs")
    await send(url, [record("y", kubernetes=KUBE)], line_format="raw", labels=["namespace"])
    assert fake.entries() == [
        (
            {"filename": "/var/log/pods/x/0.log", "job": "nodeagent"},
            "1767323045000000001",
            "GET /healthz 200",
        ),
        ({"filename": "/var/log/pods/x/0.log", "job": "varlogs"}, "1767323045000000001", "x"),
        ({"namespace": "shop", "job": "nodeagent"}, "1767323045000000001", "y"),
    ]


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=3000), st.integers(min_value=200, max_value=3000))
def test_a_capped_json_line_fits_and_stays_json(message: str, max_bytes: int) -> None:
    entry = record(message)
    line = record_json(entry)
    capped = cap_line(line, entry, "json", max_bytes)
    if capped is None:
        assert len(line.encode("utf-8", "replace")) <= max_bytes
    else:
        assert len(capped.encode("utf-8", "replace")) <= max_bytes
        cut = json.loads(capped)["message"]
        assert cut.endswith(TRUNCATION_MARKER) and message.startswith(cut.removesuffix(TRUNCATION_MARKER))
