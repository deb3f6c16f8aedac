"""The HTTP server on 127.0.0.1: formats, gzip, collector filters, health, limits, graceful stop, and the
agent's run loop with a stand-in log shipper."""

from __future__ import annotations

import asyncio
import errno
import gzip
import sys
import threading
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import aiohttp.web
import pytest
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from nodeagent import runtime
from nodeagent.agent import AgentPlan, run_agent
from nodeagent.config import resolve_settings, settings_table
from nodeagent.metrics import registry
from nodeagent.metrics.loadavg import LoadavgCollector
from nodeagent.metrics.registry import Collector, Paths
from nodeagent.metrics.scrape import Scraper
from nodeagent.server import MetricsServer, accepts_gzip, negotiate_format
from tests.conftest import NODE_EXPORTER_FIXTURE, require_shared

PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


class FailingCollector(Collector):
    name = "testfailing"
    default_enabled = False

    def collect(self):
        yield GaugeMetricFamily("node_test_partial", "Emitted before the failure.", value=1)
        raise RuntimeError("simulated collector bug")


class BlockingCollector(Collector):
    """Holds its scrape until the test releases it, to have a scrape in flight."""

    name = "testblocking"
    default_enabled = False
    entered = threading.Event()
    release = threading.Event()

    def collect(self):
        type(self).entered.set()
        type(self).release.wait(10)
        yield GaugeMetricFamily("node_test_blocking", "Scraped after being released.", value=1)


class BadValueCollector(Collector):
    name = "testbadvalue"
    default_enabled = False

    def collect(self):
        yield GaugeMetricFamily("node_test_bad", "A value that is not a number.", value="not-a-number")


TEST_COLLECTORS = (FailingCollector, BlockingCollector, BadValueCollector)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    for cls in TEST_COLLECTORS:
        registry.register(cls)
    BlockingCollector.entered.clear()
    BlockingCollector.release.clear()
    try:
        yield
    finally:
        BlockingCollector.release.set()
        for cls in TEST_COLLECTORS:
            registry._REGISTRY.pop(cls.name, None)


@pytest.fixture
def paths() -> Paths:
    fixture = require_shared(NODE_EXPORTER_FIXTURE)
    return Paths(procfs=fixture / "proc", sysfs=fixture / "sys", rootfs=fixture, udev_data=fixture / "udev")


Start = Callable[..., Awaitable[tuple[MetricsServer, str]]]


@pytest.fixture
async def start(paths: Paths) -> AsyncIterator[Start]:
    servers: list[MetricsServer] = []

    async def start_server(
        *collector_classes: type[Collector], exporter_metrics: bool = True, **kwargs: object
    ) -> tuple[MetricsServer, str]:
        classes = collector_classes or (LoadavgCollector, FailingCollector)
        scraper = Scraper([cls(paths, {}) for cls in classes], exporter_metrics=exporter_metrics)
        server = MetricsServer(scraper, listen_address="127.0.0.1:0", **kwargs)
        await server.start()
        servers.append(server)
        return server, f"http://{server.addresses[0]}"

    yield start_server
    for server in servers:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # Plain bodies unless a test asks for gzip (aiohttp's client offers gzip by default).
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=20),
        auto_decompress=False,
        headers={"Accept-Encoding": "identity"},
    ) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with http.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def test_text_format_by_default_and_a_failing_collector_does_not_fail_it(
    start: Start, http: aiohttp.ClientSession
) -> None:
    _, base = await start()
    status, headers, body = await get(http, f"{base}/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = body.decode().splitlines()
    assert "# TYPE node_load1 gauge" in lines
    assert "node_load1 0.21" in lines
    assert 'node_scrape_collector_success{collector="loadavg"} 1' in lines
    assert 'node_scrape_collector_success{collector="testfailing"} 0' in lines
    assert any(line.startswith("process_cpu_seconds_total ") for line in lines)
    assert any(line.startswith("python_info{") for line in lines)
    assert any(line.startswith("nodeagent_build_info{") for line in lines)


@pytest.mark.parametrize("accept", [PROMETHEUS_2_ACCEPT, PROMETHEUS_3_ACCEPT, "application/openmetrics-text"])
async def test_openmetrics_when_asked(start: Start, http: aiohttp.ClientSession, accept: str) -> None:
    _, base = await start()
    await get(http, f"{base}/metrics")  # so the request counter has a 200 sample
    status, headers, body = await get(http, f"{base}/metrics", Accept=accept)
    assert status == 200
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}  # a strict parser
    assert families["node_load1"].samples[0].value == 0.21
    # Counters: the family is named without _total, its samples with it.
    assert "# TYPE promhttp_metric_handler_requests counter" in text
    assert families["promhttp_metric_handler_requests"].type == "counter"
    sample_names = {s.name for s in families["promhttp_metric_handler_requests"].samples}
    assert "promhttp_metric_handler_requests_total" in sample_names
    assert text.count("# TYPE node_scrape_collector_success ") == 1
    assert "promhttp_metric_handler_requests_created" not in text  # same series as the text format


@pytest.mark.parametrize(
    "accept",
    [
        "text/plain;version=0.0.4",
        "*/*",
        "application/json",
        "application/openmetrics-text;q=0.1,text/plain;q=0.9",
    ],
)
async def test_text_when_openmetrics_is_not_preferred(
    start: Start, http: aiohttp.ClientSession, accept: str
) -> None:
    _, base = await start()
    _, headers, _ = await get(http, f"{base}/metrics", Accept=accept)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize("accept", ["", PROMETHEUS_2_ACCEPT])
async def test_gzip_when_accepted(start: Start, http: aiohttp.ClientSession, accept: str) -> None:
    _, base = await start()
    status, headers, body = await get(http, f"{base}/metrics", Accept=accept, **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert body[:2] == b"\x1f\x8b"
    assert "\nnode_load1 0.21\n" in gzip.decompress(body).decode()
    _, plain_headers, plain = await get(http, f"{base}/metrics", **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain_headers
    assert b"\nnode_load1 0.21\n" in plain


async def test_each_scrape_trims_the_heap_unless_the_log_shipper_keeps_its_buffers(
    start: Start, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[str] = []
    monkeypatch.setattr(runtime, "trim_malloc", lambda: trims.append(threading.current_thread().name))
    monkeypatch.setattr(runtime, "_keeping_large_buffers", False)
    _, base = await start()
    for encoding in ("identity", "gzip"):
        status, _, _ = await get(http, f"{base}/metrics", **{"Accept-Encoding": encoding})
        assert status == 200
    assert len(trims) == 2 and all(name.startswith("nodeagent-scrape") for name in trims)  # off the loop
    monkeypatch.setattr(runtime, "_keeping_large_buffers", True)  # what reuse_large_buffers sets
    status, _, _ = await get(http, f"{base}/metrics")
    assert status == 200 and len(trims) == 2


def success_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith("node_scrape_collector_success")]


async def test_collect_and_exclude_filter_collectors(start: Start, http: aiohttp.ClientSession) -> None:
    _, base = await start()
    _, _, body = await get(http, f"{base}/metrics?collect[]=loadavg")
    assert success_lines(body) == ['node_scrape_collector_success{collector="loadavg"} 1']
    assert b"\nprocess_cpu_seconds_total " in body  # the agent's metrics stay, as node_exporter's
    _, _, body = await get(http, f"{base}/metrics?collect[]=loadavg&collect[]=testfailing&collect[]=loadavg")
    assert len(success_lines(body)) == 2
    _, _, body = await get(http, f"{base}/metrics?exclude[]=loadavg")
    assert success_lines(body) == ['node_scrape_collector_success{collector="testfailing"} 0']
    assert b"node_load1" not in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("collect[]=nosuch", "unknown collector 'nosuch'"),
        ("exclude[]=nosuch", "unknown collector 'nosuch'"),
        ("collect[]=testblocking", "collector 'testblocking' is not enabled"),
        ("collect[]=loadavg&exclude[]=testfailing", "cannot be combined"),
    ],
)
async def test_bad_filters_are_400(
    start: Start, http: aiohttp.ClientSession, query: str, message: str
) -> None:
    _, base = await start()
    status, _, body = await get(http, f"{base}/metrics?{query}")
    assert status == 400
    assert message in body.decode()
    status, _, _ = await get(http, f"{base}/metrics")
    assert status == 200


async def test_landing_page_links_endpoints(start: Start, http: aiohttp.ClientSession) -> None:
    _, base = await start(telemetry_path="/custom")
    status, headers, body = await get(http, f"{base}/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    for link in ('href="/custom"', 'href="/healthz"', 'href="/readyz"'):
        assert link in page
    assert (await get(http, f"{base}/custom"))[0] == 200
    assert (await get(http, f"{base}/metrics"))[0] == 404


async def test_health_and_readiness_follow_the_log_shipper(start: Start, http: aiohttp.ClientSession) -> None:
    logs_ready = asyncio.Event()
    server, base = await start(logs_ready=logs_ready)
    assert (await get(http, f"{base}/healthz"))[0] == 200
    status, _, body = await get(http, f"{base}/readyz")
    assert status == 503 and b"log shipper" in body
    logs_ready.set()
    assert (await get(http, f"{base}/readyz"))[0] == 200
    server.stopping = True
    assert (await get(http, f"{base}/readyz"))[0] == 503


async def test_readiness_reports_a_stalled_job(start: Start, http: aiohttp.ClientSession) -> None:
    from nodeagent.pools import BoundedPool

    logs_pool = BoundedPool("logs", 1)
    release = threading.Event()
    _, base = await start(job_pools={"log shipper": logs_pool}, stall_timeout=0.2)
    assert (await get(http, f"{base}/readyz"))[0] == 200
    logs_pool.submit(release.wait, 30)  # the shipper's file I/O hangs
    await asyncio.sleep(0.4)
    status, _, body = await get(http, f"{base}/readyz")
    assert status == 503 and body.startswith(b"not ready: log shipper stalled") and body.count(b"\n") == 1
    release.set()
    await asyncio.sleep(0.1)
    assert (await get(http, f"{base}/readyz"))[0] == 200
    logs_pool.shutdown()


async def test_concurrent_scrapes_above_the_limit_get_503(start: Start, http: aiohttp.ClientSession) -> None:
    _, base = await start(BlockingCollector, max_requests=1)
    first = asyncio.create_task(get(http, f"{base}/metrics"))
    assert await asyncio.to_thread(BlockingCollector.entered.wait, 10)
    status, _, body = await get(http, f"{base}/metrics")
    assert status == 503 and b"limit 1" in body
    assert (await get(http, f"{base}/healthz"))[0] == 200  # the loop is free while a scrape runs
    BlockingCollector.release.set()
    status, _, body = await first
    assert status == 200 and b"\nnode_test_blocking 1\n" in body
    status, _, body = await get(http, f"{base}/metrics")
    assert status == 200 and b'promhttp_metric_handler_requests_total{code="503"}' in body


async def test_stop_finishes_in_flight_scrape_and_closes_listener(
    start: Start, http: aiohttp.ClientSession
) -> None:
    server, base = await start(BlockingCollector)
    in_flight = asyncio.create_task(get(http, f"{base}/metrics"))
    assert await asyncio.to_thread(BlockingCollector.entered.wait, 10)
    stopping = asyncio.create_task(server.stop())
    await asyncio.sleep(0.2)
    assert not in_flight.done()
    BlockingCollector.release.set()
    status, _, body = await in_flight
    assert status == 200 and b"\nnode_test_blocking 1\n" in body
    await stopping
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(http, f"{base}/healthz")


async def test_render_failure_is_500_and_the_server_keeps_serving(
    start: Start, http: aiohttp.ClientSession
) -> None:
    _, base = await start(LoadavgCollector, BadValueCollector)
    status, _, body = await get(http, f"{base}/metrics")
    assert status == 500 and b"Scrape failed" in body
    status, _, body = await get(http, f"{base}/metrics?exclude[]=testbadvalue")
    assert status == 200 and b"\nnode_load1 0.21\n" in body


async def test_port_in_use_is_a_listen_error(start: Start) -> None:
    from nodeagent.server import ListenError

    server, _ = await start()
    busy = MetricsServer(server.scraper, listen_address=server.addresses[0])
    with pytest.raises(ListenError, match=f"cannot listen on {server.addresses[0]}: address already in use"):
        await busy.start()


def test_negotiation() -> None:
    assert negotiate_format(None) == "text"
    assert negotiate_format(PROMETHEUS_2_ACCEPT) == "openmetrics"
    assert negotiate_format("application/openmetrics-text;version=2.0.0") == "text"
    assert negotiate_format("text/plain;q=0.5, application/openmetrics-text;q=0.6") == "openmetrics"
    assert negotiate_format("application/openmetrics-text;q=0") == "text"
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("deflate;q=1.0, gzip;q=0.5")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip(None)


# --- the run loop, with a stand-in log shipper that honours the contract ---------------------------


class FakeShipper(types.ModuleType):
    """nodeagent.logs.shipper as the contract describes it; records what happened."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__("nodeagent.logs.shipper")
        self.fail = fail
        self.started = asyncio.Event()
        self.may_start = asyncio.Event()
        self.drained = False
        self.node_name: str | None = None

    async def run_logs(
        self,
        config: object,
        *,
        node_name: str,
        stop: asyncio.Event,
        ready: asyncio.Event | None = None,
        executor: object = None,
    ) -> None:
        self.node_name = node_name
        go = asyncio.ensure_future(self.may_start.wait())
        await asyncio.wait({go, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        go.cancel()
        if stop.is_set():  # stopped before it started: nothing to drain
            return
        self.started.set()
        if ready is not None:
            ready.set()
        if self.fail:
            raise OSError("checkpoint directory is read-only")
        await stop.wait()
        await asyncio.sleep(0.1)  # drain and commit
        self.drained = True


def plan_for(paths: Paths, monkeypatch: pytest.MonkeyPatch, shipper: FakeShipper) -> AgentPlan:
    monkeypatch.setitem(sys.modules, "nodeagent.logs.shipper", shipper)
    settings = resolve_settings(settings_table(), None, {"web.listen-address": "127.0.0.1:0"})
    return AgentPlan(
        settings=settings, node_name="node-a", collectors=[LoadavgCollector(paths, {})], logs_config=object()
    )


async def test_run_agent_waits_for_the_shipper_then_drains_it_on_stop(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    shipper = FakeShipper()
    plan = plan_for(paths, monkeypatch, shipper)
    stop = asyncio.Event()
    listening = asyncio.Event()
    servers: list[MetricsServer] = []
    original_start = MetricsServer.start

    async def remember_start(self: MetricsServer) -> None:
        servers.append(self)
        await original_start(self)

    monkeypatch.setattr(MetricsServer, "start", remember_start)
    agent = asyncio.create_task(run_agent(plan, stop=stop, handle_signals=False, started=listening))
    await asyncio.wait_for(listening.wait(), 10)
    base = f"http://{servers[0].addresses[0]}"
    assert (await get(http, f"{base}/readyz"))[0] == 503  # the shipper has not started yet
    shipper.may_start.set()
    await asyncio.wait_for(shipper.started.wait(), 10)
    assert (await get(http, f"{base}/readyz"))[0] == 200
    assert b"\nnode_load1 0.21\n" in (await get(http, f"{base}/metrics"))[2]
    stop.set()
    assert await asyncio.wait_for(agent, 10) == 0
    assert shipper.drained
    assert shipper.node_name == "node-a"


async def test_run_agent_exits_1_when_the_shipper_fails(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipper = FakeShipper(fail=True)
    shipper.may_start.set()
    plan = plan_for(paths, monkeypatch, shipper)
    assert await asyncio.wait_for(run_agent(plan, handle_signals=False), 10) == 1


async def test_all_interfaces_falls_back_to_ipv4_without_ipv6(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    """':PORT' on a node with IPv6 disabled (binding '::' fails) still serves on IPv4."""
    original_start = aiohttp.web.TCPSite.start

    async def no_ipv6(site: aiohttp.web.TCPSite) -> None:
        if site._host is None:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        await original_start(site)

    monkeypatch.setattr(aiohttp.web.TCPSite, "start", no_ipv6)
    server = MetricsServer(Scraper([LoadavgCollector(paths, {})]), listen_address=":0")
    await server.start()
    try:
        port = server.addresses[0].rsplit(":", 1)[1]
        assert server.addresses == [f"0.0.0.0:{port}"]
        assert (await get(http, f"http://127.0.0.1:{port}/healthz"))[0] == 200
    finally:
        await server.stop()


async def test_stop_before_the_shipper_is_ready_exits_0(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipper = FakeShipper()  # never allowed to start
    plan = plan_for(paths, monkeypatch, shipper)
    stop = asyncio.Event()
    listening = asyncio.Event()
    agent = asyncio.create_task(run_agent(plan, stop=stop, handle_signals=False, started=listening))
    await asyncio.wait_for(listening.wait(), 10)
    stop.set()
    assert await asyncio.wait_for(agent, 4) == 0  # well inside the shutdown timeout
    assert not shipper.started.is_set()


# --- hostile requests (issue 12, Low) -------------------------------------------------------------


async def test_a_get_body_is_never_read(start: Start) -> None:
    """A GET announcing 10 GB of body is answered and the connection closed, not drained."""
    server, _ = await start()
    host, port = server.addresses[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
    sent = 0
    chunk = b"x" * (1 << 20)

    async def send_forever() -> None:
        nonlocal sent
        while True:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    sender = asyncio.create_task(send_forever())
    try:  # the answer, unless the close with unread data (a TCP reset) overtook it
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    except ConnectionResetError:
        pass
    with pytest.raises((ConnectionError, OSError)):
        await asyncio.wait_for(sender, 20)  # the agent closed the connection
    assert sent < 64 << 20
    writer.close()


async def test_a_long_collect_list_is_accepted(start: Start, http: aiohttp.ClientSession) -> None:
    """node_exporter (Go's net/http) accepts 1 MiB of request line and headers: ~45k collect[] entries."""
    _, base = await start()
    query = "&".join(["collect%5B%5D=loadavg"] * 45_000)
    assert len(query) > 980_000
    status, _, body = await get(http, f"{base}/metrics?{query}")
    assert status == 200, body[:300]
    assert success_lines(body) == ['node_scrape_collector_success{collector="loadavg"} 1']


async def test_the_server_header_names_no_versions(start: Start, http: aiohttp.ClientSession) -> None:
    _, base = await start()
    for path in ("/metrics", "/healthz", "/", "/nosuch"):
        _, headers, _ = await get(http, f"{base}{path}")
        assert headers["Server"] == "nodeagent", (path, headers["Server"])


async def test_a_failed_render_is_500_without_the_page(
    start: Start, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    class Unrenderable:
        """A sample value whose failure message carries 100 KB, as a failed encode of a page does."""

        def __lt__(self, other: object) -> bool:
            raise ValueError("page " * 20_000)

        __gt__ = __lt__

    class Broken(Collector):
        name = "loadavg"

        def collect(self):  # type: ignore[no-untyped-def]
            yield GaugeMetricFamily("node_bad", "Cannot be rendered.", value=Unrenderable())

    _, base = await start(Broken)
    status, _, body = await get(http, f"{base}/metrics")
    assert status == 500 and b"Scrape failed" in body
    assert len(body) < 1000
    assert all(len(str(record.__dict__)) < 2000 for record in caplog.records)
