"""The HTTP side: /metrics (text 0.0.4 or OpenMetrics, optionally gzipped), a landing page, /healthz, /readyz.

Routes, content negotiation, gzip, request limits and the listener's lifecycle; what a scrape collects
and how it is rendered is :mod:`nodeagent.metrics.scrape`. A scrape runs in a worker thread, so the
event loop (and the log shipper on it) never waits for procfs reads or rendering.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import html
import logging
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import Counter, Gauge

from nodeagent import __version__
from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.config import split_listen_address
from nodeagent.metrics.registry import Collector
from nodeagent.metrics.scrape import FilterError, Scraper

log = logging.getLogger("nodeagent.server")

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
SHUTDOWN_GRACE_SECONDS = 3.0  # for in-flight scrapes once the listener is closed

SCRAPE_REQUESTS = Counter(
    "nodeagent_scrape_requests",
    "Requests to the telemetry path, by HTTP status code.",
    ["code"],
    registry=AGENT_REGISTRY,
)
SCRAPES_IN_FLIGHT = Gauge(
    "nodeagent_scrape_requests_in_flight", "Scrapes being served right now.", registry=AGENT_REGISTRY
)
for _code in ("200", "400", "500", "503"):
    SCRAPE_REQUESTS.labels(_code)


class ListenError(Exception):
    """The server could not bind its address (in use, not local, no permission)."""


# ------------------------------------------------------------------------------------------------
# Content negotiation


def _media_ranges(header: str) -> Iterable[tuple[str, dict[str, str], float]]:
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        yield media, params, q


def negotiate_format(accept: str | None) -> str:
    """'openmetrics' when the Accept header prefers OpenMetrics (1.0.0, 0.0.1 or unversioned), else 'text'.

    Follows the q values: Prometheus asks for OpenMetrics first and plain text as a fallback.
    """
    if not accept:
        return "text"
    best_openmetrics = best_text = 0.0
    for media, params, q in _media_ranges(accept):
        if media == "application/openmetrics-text" and params.get("version", "1.0.0") in ("1.0.0", "0.0.1"):
            best_openmetrics = max(best_openmetrics, q)
        elif media in ("text/plain", "text/*", "*/*"):
            best_text = max(best_text, q)
    return "openmetrics" if best_openmetrics > 0 and best_openmetrics >= best_text else "text"


def accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    return any(media in ("gzip", "x-gzip") and q > 0 for media, _, q in _media_ranges(accept_encoding))


# ------------------------------------------------------------------------------------------------
# HTTP server

_LANDING = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>nodeagent</title></head>
<body>
<h1>nodeagent {version}</h1>
<p>Node metrics in the node_exporter format, and a log shipper.</p>
<ul>
<li><a href="{path}">{path}</a>: metrics (text 0.0.4 or OpenMetrics; <code>?collect[]=NAME</code> or
<code>?exclude[]=NAME</code> to pick collectors)</li>
<li><a href="/healthz">/healthz</a>: liveness</li>
<li><a href="/readyz">/readyz</a>: readiness</li>
</ul>
<p>Collectors enabled: {collectors}</p>
</body>
</html>
"""


class MetricsServer:
    """The aiohttp application and its listener."""

    def __init__(
        self,
        scraper: Scraper,
        *,
        listen_address: str = ":9100",
        telemetry_path: str = "/metrics",
        max_requests: int = 40,
        logs_ready: asyncio.Event | None = None,
    ) -> None:
        self.scraper = scraper
        self.listen_address = listen_address
        self.telemetry_path = telemetry_path
        self.max_requests = max_requests
        self.logs_ready = logs_ready  # None: the log shipper is not running, readiness does not wait for it
        self.listening = False
        self.stopping = False
        self.addresses: list[str] = []
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.telemetry_path, self.handle_metrics)
        if self.telemetry_path != "/":
            app.router.add_get("/", self.handle_landing)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        return app

    @property
    def ready(self) -> bool:
        logs_ok = self.logs_ready is None or self.logs_ready.is_set()
        return self.listening and not self.stopping and logs_ok

    async def start(self) -> None:
        """Bind and start serving; raises :class:`ListenError` with a one-line reason."""
        host, port = split_listen_address(self.listen_address)
        runner = web.AppRunner(
            self.app,
            access_log=log if log.isEnabledFor(logging.DEBUG) else None,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            handle_signals=False,
        )
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                # ":9100" means IPv4 and IPv6; on a node with IPv6 disabled, serve IPv4 as node_exporter does.
                if host is not None or exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    raise
                await web.TCPSite(runner, "0.0.0.0", port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = {
                errno.EADDRINUSE: "address already in use",
                errno.EADDRNOTAVAIL: "address not available on this host",
                errno.EACCES: "permission denied",
            }.get(exc.errno or 0, exc.strerror or str(exc))
            raise ListenError(f"cannot listen on {self.listen_address}: {reason}") from None
        self._runner = runner
        self.addresses = [_format_address(a) for a in runner.addresses]
        self.listening = True
        log.info("listening", extra={"address": ",".join(self.addresses), "path": self.telemetry_path})

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close."""
        self.stopping = True
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self.listening = False

    async def handle_metrics(self, request: web.Request) -> web.Response:
        if self.max_requests and self._in_flight >= self.max_requests:
            SCRAPE_REQUESTS.labels("503").inc()
            return web.Response(
                status=503, text=f"Too many concurrent scrapes (limit {self.max_requests}).\n"
            )
        try:
            selected = self.scraper.select(
                request.query.getall("collect[]", []), request.query.getall("exclude[]", [])
            )
        except FilterError as exc:
            SCRAPE_REQUESTS.labels("400").inc()
            return web.Response(status=400, text=f"Cannot filter collectors: {exc}.\n")
        fmt = negotiate_format(request.headers.get("Accept"))
        compress = accepts_gzip(request.headers.get("Accept-Encoding"))
        self._in_flight += 1
        SCRAPES_IN_FLIGHT.inc()
        try:
            body = await asyncio.to_thread(self._body, selected, fmt, compress)
        except Exception as exc:
            log.exception("scrape failed", extra={"err": repr(exc)})
            SCRAPE_REQUESTS.labels("500").inc()
            return web.Response(status=500, text=f"Scrape failed: {exc!r}\n")
        finally:
            self._in_flight -= 1
            SCRAPES_IN_FLIGHT.dec()
        SCRAPE_REQUESTS.labels("200").inc()
        headers = {
            "Content-Type": OPENMETRICS_CONTENT_TYPE if fmt == "openmetrics" else TEXT_CONTENT_TYPE,
            "Vary": "Accept, Accept-Encoding",
        }
        if compress:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    def _body(self, selected: list[Collector], fmt: str, compress: bool) -> bytes:
        """Blocking: run in a worker thread."""
        body = self.scraper.render(selected, fmt)
        if compress:
            body = gzip.compress(body, compresslevel=1, mtime=0)
        return body

    async def handle_landing(self, request: web.Request) -> web.Response:
        page = _LANDING.format(
            version=html.escape(__version__),
            path=html.escape(self.telemetry_path),
            collectors=html.escape(", ".join(self.scraper.names) or "none"),
        )
        return web.Response(text=page, content_type="text/html")

    async def handle_healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def handle_readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ready\n")
        if self.stopping:
            reason = "shutting down"
        elif not self.listening:
            reason = "not listening yet"
        else:
            reason = "log shipper not started yet"
        return web.Response(status=503, text=f"not ready: {reason}\n")


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
