"""TLS towards every network sink: server verification by a CA file, client certificates, server_name,
insecure_skip_verify, and refusals (unknown CA, missing client certificate) as retryable errors."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from nodeagent.config.errors import ConfigError
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import RetryableSinkError, Sink
from tests.logs.conftest import sink_record as record


def server_context(pki: Path, *, require_client: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    if require_client:
        context.load_verify_locations(cafile=str(pki / "ca.crt"))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextlib.asynccontextmanager
async def serving_https(context: ssl.SSLContext) -> AsyncIterator[tuple[int, list[bytes]]]:
    """An HTTPS server on 127.0.0.1 keeping the bodies POSTed to it: (port, bodies)."""
    bodies: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, bodies
    finally:
        await runner.cleanup()


@pytest.fixture
async def https_server(pki: Path) -> AsyncIterator[tuple[int, list[bytes]]]:
    """An HTTPS server that requires a client certificate signed by the test CA."""
    async with serving_https(server_context(pki, require_client=True)) as server:
        yield server


def tls(pki: Path, **extra: Any) -> dict[str, Any]:
    return {
        "ca_file": str(pki / "ca.crt"),
        "cert_file": str(pki / "client.crt"),
        "key_file": str(pki / "client.key"),
        **extra,
    }


async def deliver(sink: Sink) -> None:
    await sink.start()
    try:
        await sink.send([record("over tls")])
    finally:
        await sink.close()


@pytest.mark.parametrize("sink_type", ["http", "loki"])
async def test_https_sinks_verify_the_server_and_present_a_client_certificate(
    pki: Path, https_server: tuple[int, list[bytes]], sink_type: str
) -> None:
    port, bodies = https_server
    # The certificate names localhost and 127.0.0.1; connect by address, verify by name.
    sink = make_sink(
        {"type": sink_type, "url": f"https://127.0.0.1:{port}/in", "gzip": False, "tls": tls(pki)},
        name=sink_type,
    )
    await deliver(sink)
    assert len(bodies) == 1 and b"over tls" in bodies[0]
    named = make_sink(
        {
            "type": sink_type,
            "url": f"https://127.0.0.1:{port}/in",
            "gzip": False,
            "tls": tls(pki, server_name="localhost"),
        },
        name=sink_type,
    )
    await deliver(named)
    assert len(bodies) == 2


@pytest.mark.parametrize(
    "change, what",
    [
        (lambda pki: {"ca_file": str(pki / "otherca.crt")}, "CERTIFICATE_VERIFY_FAILED"),
        (lambda pki: {"cert_file": None, "key_file": None}, ""),  # the server refuses the handshake
        (lambda pki: {"cert_file": str(pki / "stranger.crt"), "key_file": str(pki / "stranger.key")}, ""),
        (lambda pki: {"server_name": "elsewhere.example"}, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["unknown-server-ca", "no-client-certificate", "client-of-another-ca", "wrong-server-name"],
)
async def test_refused_handshakes_are_retryable(
    pki: Path, https_server: tuple[int, list[bytes]], change: Callable[[Path], dict[str, Any]], what: str
) -> None:
    port, bodies = https_server
    options = {**tls(pki), **change(pki)}
    options = {key: value for key, value in options.items() if value is not None}
    sink = make_sink({"type": "http", "url": f"https://127.0.0.1:{port}/in", "tls": options}, name="h")
    with pytest.raises(RetryableSinkError) as failure:
        await deliver(sink)
    assert what in str(failure.value)
    assert not bodies


async def test_insecure_skip_verify_accepts_an_unknown_ca(
    pki: Path, https_server: tuple[int, list[bytes]]
) -> None:
    port, bodies = https_server
    options = tls(pki, ca_file=str(pki / "otherca.crt"), insecure_skip_verify=True)
    await deliver(
        make_sink({"type": "http", "url": f"https://127.0.0.1:{port}/in", "tls": options}, name="h")
    )
    assert len(bodies) == 1


async def test_missing_certificate_file_names_the_option(pki: Path, tmp_path: Path) -> None:
    options = tls(pki, ca_file=str(tmp_path / "nope.crt"))
    sink = make_sink({"type": "http", "url": "https://127.0.0.1:1/in", "tls": options}, name="h")
    with pytest.raises(RetryableSinkError, match=r"tls\.ca_file .*nope\.crt"):
        await sink.start()
    await sink.close()


def test_tls_options_are_checked_at_config_time(pki: Path) -> None:
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        make_sink(
            {"type": "http", "url": "https://h/", "tls": {"cert_file": str(pki / "client.crt")}}, name="h"
        )
    with pytest.raises(ConfigError, match="https://"):
        make_sink({"type": "loki", "url": "http://h:3100", "tls": {}}, name="l")
    with pytest.raises(ConfigError, match=r"tls.*unknown"):
        make_sink({"type": "syslog", "address": "h:6514", "tls": {"ca": "x"}}, name="s")


async def test_syslog_over_tls(pki: Path) -> None:
    """RFC 5425: the same octet-counted frames inside a TLS session that checks the client too."""
    received = bytearray()
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)
            if b"over tls" in received:
                done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context(pki, require_client=True))
    port = server.sockets[0].getsockname()[1]
    try:
        sink = make_sink({"type": "syslog", "address": f"127.0.0.1:{port}", "tls": tls(pki)}, name="s")
        await deliver(sink)
        await asyncio.wait_for(done.wait(), 5)
        length, _, message = bytes(received).partition(b" ")
        assert int(length) == len(message) and message.endswith(b"over tls")
        refused = make_sink(
            {"type": "syslog", "address": f"127.0.0.1:{port}", "tls": {"ca_file": str(pki / "otherca.crt")}},
            name="s",
        )
        with pytest.raises(RetryableSinkError, match="CERTIFICATE_VERIFY_FAILED"):
            await refused.send([record("never")])
        await refused.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def https_server_any_client(pki: Path) -> AsyncIterator[tuple[int, list[bytes]]]:
    """An HTTPS server with the test CA's certificate, asking for no client certificate."""
    async with serving_https(server_context(pki, require_client=False)) as server:
        yield server


async def test_an_https_url_without_tls_options_verifies_the_server_with_the_system_cas(
    pki: Path, https_server_any_client: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink builds its own context from the system's CAs (OpenSSL reads SSL_CERT_FILE when a context
    loads them): aiohttp's default context, built at import with other CAs (or none, see
    runtime.import_aiohttp), would refuse the test CA; and a CA the system does not trust is refused."""
    port, bodies = https_server_any_client
    url = f"https://127.0.0.1:{port}/in"
    monkeypatch.setenv("SSL_CERT_FILE", str(pki / "ca.crt"))
    await deliver(make_sink({"type": "http", "url": url, "gzip": False}, name="h"))
    assert len(bodies) == 1
    monkeypatch.setenv("SSL_CERT_FILE", str(pki / "otherca.crt"))
    with pytest.raises(RetryableSinkError, match="CERTIFICATE_VERIFY_FAILED"):
        await deliver(make_sink({"type": "http", "url": url, "gzip": False}, name="h"))
    assert len(bodies) == 1
