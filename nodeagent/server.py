"""The HTTP side: /metrics (text 0.0.4 or OpenMetrics, optionally gzipped), a landing page, /healthz, /readyz.

Routes, content negotiation, gzip, request limits and the listener's lifecycle; what a scrape collects
and how it is rendered is :mod:`nodeagent.metrics.scrape`. A scrape runs on the scrape job's own bounded
pool (:mod:`nodeagent.pools`), so the event loop and the log shipper never wait for procfs reads or
rendering, and a scrape that hangs cannot take their threads.

Whoever reaches the port is untrusted: connections are capped (the oldest idle one makes room for a new
one), idle and slow ones are closed after :data:`IDLE_TIMEOUT_SECONDS` (aiohttp's default is an hour),
a request body is never read (the connection is closed instead), request lines up to node_exporter's
1 MiB are accepted (long ``collect[]`` lists), and no response names the Python or aiohttp version.

With ``--web.config.file`` (:mod:`nodeagent.webconfig`) the listener speaks TLS, every route but the
kubelet's probes (/healthz, /readyz) asks for basic auth, and the file's headers go on every response.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import html
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter, Gauge

from nodeagent import __version__, runtime
from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.config import split_listen_address
from nodeagent.metrics.registry import Collector
from nodeagent.metrics.scrape import FilterError, Scraper
from nodeagent.pools import BoundedPool, scrape_pool
from nodeagent.safeio import quote
from nodeagent.webconfig import BasicAuth, RateLimiter, WebConfigSource, client_allowed

log = logging.getLogger("nodeagent.server")

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
SHUTDOWN_GRACE_SECONDS = 3.0  # for in-flight scrapes once the listener is closed
# A connection waiting for (the rest of) a request's headers, or idle between requests, is closed after
# this: Prometheus sends its request at once, and reconnecting costs it less than an idle socket costs us.
IDLE_TIMEOUT_SECONDS = 15.0
MAX_REQUEST_LINE_BYTES = (1 << 20) + 4096  # as Go's net/http (node_exporter): 1 MiB plus its 4 KiB slack
MAX_HEADER_FIELD_BYTES = 64 << 10
SERVER_HEADER = "nodeagent"
# Reachable without basic auth and never rate limited: the kubelet's probes cannot send a password.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
WEB_HEADERS = web.RequestKey("web_headers", dict)  # the web config file's headers for this response
REFUSED_LOG_INTERVAL_SECONDS = 10.0

# node_exporter's names (client_golang's promhttp handler), so its dashboards and alerts carry over.
SCRAPE_REQUESTS = Counter(
    "promhttp_metric_handler_requests",
    "Requests to the telemetry path, by HTTP status code.",
    ["code"],
    registry=AGENT_REGISTRY,
)
SCRAPES_IN_FLIGHT = Gauge(
    "promhttp_metric_handler_requests_in_flight", "Scrapes being served right now.", registry=AGENT_REGISTRY
)
SCRAPE_ERRORS = Counter(
    "promhttp_metric_handler_errors",
    "Scrapes that failed inside the handler: gathering (a scrape timed out) or encoding (rendering failed).",
    ["cause"],
    registry=AGENT_REGISTRY,
)
CONNECTIONS_EVICTED = Counter(
    "nodeagent_http_connections_evicted",
    "Idle HTTP connections closed to make room for a new one at the connection limit.",
    registry=AGENT_REGISTRY,
)
for _code in ("200", "500", "503"):  # pre-set as promhttp does; a 400 appears when one happens
    SCRAPE_REQUESTS.labels(_code)
for _cause in ("encoding", "gathering"):
    SCRAPE_ERRORS.labels(_cause)


class _CappedServer(web.Server):
    """aiohttp's connection factory with a connection limit: at the limit, the oldest connection that
    is waiting for a request is closed to make room (as nginx drops idle keep-alive connections), so
    idle sockets can never keep a scraper out or use up the process's descriptors.

    The count lags behind accept() by at most one accept burst (the listen backlog), which is bounded.
    """

    max_connections = 0
    _last_log = 0.0

    def __call__(self) -> RequestHandler:
        if self.max_connections and len(self._connections) >= self.max_connections:
            self._evict_idle()
        return super().__call__()

    def _evict_idle(self) -> None:
        for handler in self._connections:
            waiter = handler._waiter
            if waiter is not None and not waiter.done() and not handler._messages:
                handler.force_close()
                CONNECTIONS_EVICTED.inc()
                now = time.monotonic()
                if now - self._last_log >= REFUSED_LOG_INTERVAL_SECONDS:
                    type(self)._last_log = now
                    log.warning(
                        "connection limit reached; closing idle connections to make room",
                        extra={"limit": self.max_connections},
                    )
                return


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
        listen_address: str | Sequence[str] = ":9100",
        telemetry_path: str = "/metrics",
        max_requests: int = 40,
        logs_ready: asyncio.Event | None = None,
        max_connections: int = 512,
        scrape_timeout: float = 10.0,
        pool: BoundedPool | None = None,
        job_pools: Mapping[str, BoundedPool] | None = None,
        stall_timeout: float = 60.0,
        web_config: WebConfigSource | None = None,
        systemd_socket: bool = False,
    ) -> None:
        """``pool``: where scrapes run (default: a pool of its own). ``scrape_timeout``: a scrape not done
        by then is answered 503 and given up (a Prometheus scrape-timeout header can only lower it).
        ``job_pools``: the pools of other jobs (name -> pool) whose stalls make /readyz 503 after
        ``stall_timeout`` seconds. ``web_config``: TLS, basic auth and headers (``--web.config.file``)."""
        self.scraper = scraper
        # Several addresses (--web.listen-address repeated, as node_exporter takes it) share one runner.
        self.listen_addresses = (
            (listen_address,) if isinstance(listen_address, str) else tuple(listen_address)
        )
        self.listen_address = ",".join(self.listen_addresses)
        self.telemetry_path = telemetry_path
        self.max_requests = max_requests
        self.logs_ready = logs_ready  # None: the log shipper is not running, readiness does not wait for it
        self.max_connections = max_connections
        self.scrape_timeout = scrape_timeout
        self.pool = pool if pool is not None else scrape_pool()
        self.job_pools: dict[str, BoundedPool] = {"scrape": self.pool, **(job_pools or {})}
        self.stall_timeout = stall_timeout
        self.web_config = web_config
        self.systemd_socket = systemd_socket  # serve on the sockets systemd passed, not listen_addresses
        self._auth = BasicAuth() if web_config is not None else None
        self._rate_limiter: RateLimiter | None = None
        self._last_refusal_log = 0.0
        self.listening = False
        self.stopping = False
        self.addresses: list[str] = []
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        middlewares = [_close_instead_of_reading_bodies]  # outermost: a 401 closes instead of reading too
        if self.web_config is not None:
            middlewares.append(self._apply_web_config)
        app = web.Application(middlewares=middlewares)
        app.on_response_prepare.append(_set_server_header)
        app.router.add_get(self.telemetry_path, self.handle_metrics)
        if self.telemetry_path != "/":
            app.router.add_get("/", self.handle_landing)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        return app

    @property
    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """None when ready, else one line saying why not."""
        if self.stopping:
            return "shutting down"
        if not self.listening:
            return "not listening yet"
        if self.logs_ready is not None and not self.logs_ready.is_set():
            return "log shipper not started yet"
        for name, pool in self.job_pools.items():
            stalled = pool.stalled_for()
            if stalled < self.stall_timeout:
                continue
            if name == "scrape" and (stuck := self.scraper.stuck()):
                names = ", ".join(f"{collector} ({age:.0f}s)" for collector, age in stuck)
                return f"scrape stalled: collector calls not returning: {names}"
            return f"{name} stalled: a blocking call has not returned for {stalled:.0f}s"
        return None

    async def start(self) -> None:
        """Bind and start serving; raises :class:`ListenError` with a one-line reason."""
        runner = web.AppRunner(
            self.app,
            access_log=log if log.isEnabledFor(logging.DEBUG) else None,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            handle_signals=False,
            keepalive_timeout=IDLE_TIMEOUT_SECONDS,
            lingering_time=0,  # never read (up to 10 s of) a body nobody asked for: close instead
            max_line_size=MAX_REQUEST_LINE_BYTES,
            max_field_size=MAX_HEADER_FIELD_BYTES,
        )
        await runner.setup()
        capped = runner.server
        assert capped is not None
        capped.__class__ = _CappedServer  # the same object, with the connection limit
        assert isinstance(capped, _CappedServer)
        capped.max_connections = self.max_connections
        tls = self.web_config.server_context() if self.web_config and self.web_config.tls_enabled else None
        # asyncio accepts up to a backlog's worth of connections before evictions free descriptors: keep that
        # burst a quarter of the cap, so cap + burst stays inside the open-file limit the cap was sized for.
        backlog = max(16, min(128, self.max_connections // 4)) if self.max_connections else 128
        if self.systemd_socket:
            try:
                sockets = systemd_listen_sockets()
            except ValueError as exc:
                await runner.cleanup()
                raise ListenError(str(exc)) from None
            for sock in sockets:
                await web.SockSite(runner, sock, ssl_context=tls, backlog=backlog).start()
        for address in () if self.systemd_socket else self.listen_addresses:
            host, port = split_listen_address(address)
            try:
                try:
                    await web.TCPSite(runner, host, port, ssl_context=tls, backlog=backlog).start()
                except OSError as exc:
                    # ":9100" means IPv4 and IPv6; on a node with IPv6 disabled, serve IPv4 as node_exporter
                    # does.
                    if host is not None or exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                        raise
                    await web.TCPSite(runner, "0.0.0.0", port, ssl_context=tls, backlog=backlog).start()
            except OSError as exc:
                await runner.cleanup()
                reason = {
                    errno.EADDRINUSE: "address already in use",
                    errno.EADDRNOTAVAIL: "address not available on this host",
                    errno.EACCES: "permission denied",
                }.get(exc.errno or 0, exc.strerror or str(exc))
                raise ListenError(f"cannot listen on {address}: {reason}") from None
        self._runner = runner
        self.addresses = [_format_address(a) for a in runner.addresses]
        self.listening = True
        log.info(
            "listening",
            extra={
                "address": ",".join(self.addresses),
                "path": self.telemetry_path,
                "tls": tls is not None,
                "basic_auth": bool(self.web_config and self.web_config.current().users),
            },
        )

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close."""
        self.stopping = True
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self.listening = False
        self.pool.shutdown(wait=False)
        if self._auth is not None:
            self._auth.close()

    @web.middleware
    async def _apply_web_config(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The web config file's rules, as exporter-toolkit applies them: rate limit (429), headers,
        client certificate SANs (403), basic auth (401 with ``WWW-Authenticate: Basic``)."""
        assert self.web_config is not None and self._auth is not None
        config = self.web_config.current()
        request[WEB_HEADERS] = config.headers  # set on every response, errors included
        if request.path in PROBE_PATHS:
            return await handler(request)
        if self._rate_limiter is None or self._rate_limiter.limit != config.rate_limit:
            self._rate_limiter = RateLimiter(config.rate_limit)
        if not self._rate_limiter.allow():
            return web.Response(status=429, text="Too Many Requests\n")
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if not client_allowed(ssl_object):
            now = time.monotonic()
            if now - self._last_refusal_log >= REFUSED_LOG_INTERVAL_SECONDS:
                self._last_refusal_log = now
                log.warning("client certificate has none of the allowed SANs", extra={"peer": request.remote})
            response = web.Response(status=403, text="Forbidden\n")
            response.force_close()
            return response
        if config.users and not await self._auth.allowed(config.users, request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"})
        return await handler(request)

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
        timeout = self._timeout_for(request)
        self._in_flight += 1
        SCRAPES_IN_FLIGHT.inc()
        future = self.pool.submit(self._body, selected, fmt, compress)
        try:
            body = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            self.pool.abandon(future)
            stuck = ", ".join(name for name, _ in self.scraper.stuck()) or "none yet"
            log.error("scrape timed out", extra={"timeout_seconds": timeout, "stuck_collectors": stuck})
            SCRAPE_REQUESTS.labels("503").inc()
            SCRAPE_ERRORS.labels("gathering").inc()
            return web.Response(status=503, text=f"Scrape timed out after {timeout:g}s.\n")
        except Exception as exc:
            # The page is not in the message (a failed encode carries all of it): a bounded quote only.
            log.error("scrape failed", extra={"err": quote(repr(exc))})
            SCRAPE_REQUESTS.labels("500").inc()
            SCRAPE_ERRORS.labels("encoding").inc()
            return web.Response(status=500, text=f"Scrape failed: {quote(repr(exc))}\n")
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

    def _timeout_for(self, request: web.Request) -> float:
        """The configured scrape timeout, lowered by Prometheus' X-Prometheus-Scrape-Timeout-Seconds."""
        try:
            asked = float(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds", "inf"))
        except ValueError:
            asked = float("inf")
        return min(self.scrape_timeout, asked) if asked > 0 else self.scrape_timeout

    def _body(self, selected: list[Collector], fmt: str, compress: bool) -> bytes:
        """Blocking: run in a worker thread."""
        body = self.scraper.render(selected, fmt)
        if compress:
            body = gzip.compress(body, compresslevel=1, mtime=0)
        runtime.release_after_scrape()
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
        reason = self.not_ready_reason()
        if reason is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {reason}\n")


@web.middleware
async def _close_instead_of_reading_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route reads a body: answer, then close the connection rather than read what was sent
    (aiohttp would otherwise read and discard it to keep the connection, 10 GB if that is sent)."""
    response = await handler(request)
    if request.body_exists:
        response.force_close()
    return response


async def _set_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER  # aiohttp's default names Python's and its own version
    response.headers.update(request.get(WEB_HEADERS, {}))


SD_LISTEN_FDS_START = 3  # sd_listen_fds(3): the first passed descriptor


def systemd_listen_sockets(environ: dict[str, str] | None = None) -> list[socket.socket]:
    """The listening stream sockets systemd passed (socket activation), as sd_listen_fds(3) finds them:
    ``LISTEN_FDS`` descriptors from 3 on, meant for us when ``LISTEN_PID`` is our PID. The variables are
    removed so that no child process takes them; raises ValueError when there are none."""
    env = os.environ if environ is None else environ
    pid, count = env.pop("LISTEN_PID", None), env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_FDNAMES", None)
    if pid is not None and pid.strip() != str(os.getpid()):
        raise ValueError("no socket activation file descriptors found (LISTEN_PID is another process)")
    try:
        fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count or "0"))
    except ValueError:
        raise ValueError(f"LISTEN_FDS is not a number: {(count or '')[:20]!r}") from None
    sockets = []
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ValueError(f"socket activation descriptor {fd} is not a socket: {exc.strerror}") from None
        if sock.type != socket.SOCK_STREAM:
            sock.detach()
            raise ValueError(f"socket activation descriptor {fd} is not a stream socket")
        sock.set_inheritable(False)
        sockets.append(sock)
    if not sockets:
        raise ValueError("no socket activation file descriptors found (LISTEN_FDS is not set)")
    return sockets


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
