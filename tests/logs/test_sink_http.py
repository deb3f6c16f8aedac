"""Generic HTTP sink: NDJSON bodies (optionally gzipped) to a local aiohttp server; status handling."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from nodeagent.logs.record import Record
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from tests.conftest import free_port


def record(message: str) -> Record:
    return Record(
        time="2026-01-02T03:04:05.000000001Z",
        message=message,
        stream="stdout",
        file="/f",
        node="node-a",
        kubernetes={"namespace": "ns", "pod": "p", "container": "c"},
    )


class Collector:
    def __init__(self) -> None:
        self.bodies: list[list[dict[str, Any]]] = []
        self.requests: list[web.Request] = []
        self.answer: tuple[int, str] = (200, "ok")

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        status, text = self.answer
        if status >= 300:
            return web.Response(status=status, text=text)
        if request.content_type != "application/x-ndjson":
            return web.Response(status=415, text="expected NDJSON")
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        if not body.endswith(b"\n"):
            return web.Response(status=400, text="NDJSON must end with a newline")
        self.bodies.append([json.loads(line) for line in body.decode("utf-8").splitlines()])
        return web.Response(status=status, text=text)


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    collector = Collector()
    app = web.Application()
    app.router.add_route("*", "/ingest", collector.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield collector, f"http://127.0.0.1:{runner.addresses[0][1]}/ingest"
    finally:
        await runner.cleanup()


async def send(url: str, batch: list[Record], **options: Any) -> None:
    sink = make_sink({"type": "http", "url": url, **options}, name="http")
    await sink.start()
    try:
        await sink.send(batch)
    finally:
        await sink.close()


async def test_ndjson_body_default_post_without_gzip(collector: tuple[Collector, str]) -> None:
    fake, url = collector
    batch = [record("one"), record("two\nlines"), record("ünï")]
    await send(url, batch)
    (request,) = fake.requests
    assert request.method == "POST"
    assert "Content-Encoding" not in request.headers
    assert fake.bodies == [[r.to_dict() for r in batch]]


async def test_gzip_put_and_headers(collector: tuple[Collector, str]) -> None:
    fake, url = collector
    await send(url, [record("a" * 1000)] * 50, gzip=True, method="put", headers={"Authorization": "Bearer t"})
    (request,) = fake.requests
    assert (request.method, request.headers["Content-Encoding"]) == ("PUT", "gzip")
    assert int(request.headers["Content-Length"]) < 50 * 1000 // 10  # it really was compressed
    assert request.headers["Authorization"] == "Bearer t"
    assert len(fake.bodies[0]) == 50


async def test_gzip_body_is_valid_gzip_of_the_ndjson() -> None:
    # Check the bytes on the wire themselves (the aiohttp server above decompresses transparently).
    seen: list[bytes] = []

    async def raw_handler(request: web.Request) -> web.Response:
        seen.append(await request.content.read())
        return web.Response(status=202)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/", raw_handler)
    runner = web.AppRunner(app, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await send(f"http://127.0.0.1:{runner.addresses[0][1]}/", [record("x"), record("y")], gzip=True)
    finally:
        await runner.cleanup()
    assert gzip.decompress(seen[0]) == (record("x").to_json() + "\n" + record("y").to_json() + "\n").encode()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, RetryableSinkError),
        (503, RetryableSinkError),
        (429, RetryableSinkError),
        (404, PermanentSinkError),
        (413, PermanentSinkError),
        (302, RetryableSinkError),
    ],
)
async def test_status_codes(collector: tuple[Collector, str], status: int, error: type[Exception]) -> None:
    fake, url = collector
    fake.answer = (status, f"refused with {status}")
    with pytest.raises(error, match=f"answered {status}: refused with {status}"):
        await send(url, [record("x")])


async def test_connection_refused_is_retryable() -> None:
    with pytest.raises(RetryableSinkError):
        await send(f"http://127.0.0.1:{free_port()}/ingest", [record("x")], timeout="2s")


async def test_timeout_is_retryable() -> None:
    release = asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/", stalled)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        with pytest.raises(RetryableSinkError, match="TimeoutError"):
            await send(f"http://127.0.0.1:{runner.addresses[0][1]}/", [record("x")], timeout="200ms")
    finally:
        release.set()
        await runner.cleanup()
