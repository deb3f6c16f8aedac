"""HTTP delivery shared by the loki and http sinks: one session, status codes mapped to sink errors."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import aiohttp

from nodeagent import __version__
from nodeagent.config.schema import Field, Invalid
from nodeagent.config.values import parse_bool, parse_headers, parse_str, positive_duration
from nodeagent.logs.blocking import DEFAULT
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError

USER_AGENT = f"nodeagent/{__version__}"
ERROR_BODY_CHARS = 512  # how much of a refusal's body goes into the error message
_GZIP_IN_THREAD_BYTES = 256 * 1024  # compress bigger bodies off the event loop (zlib releases the GIL)


def http_fields(*, gzip_default: bool) -> tuple[Field, ...]:
    """Options every HTTP sink has: headers, gzip, timeout, basic auth."""
    return (
        Field("headers", {}, "Extra request headers.", parse_headers),
        Field("gzip", gzip_default, "gzip the body (Content-Encoding: gzip).", parse_bool),
        Field("timeout", 10.0, "Per request.", positive_duration),
        Field("username", None, "HTTP basic auth user.", parse_str),
        Field("password", None, "HTTP basic auth password.", parse_str),
        Field("password_file", None, "File holding the basic auth password.", parse_str),
    )


def check_http_options(settings: dict[str, Any]) -> None:
    if settings["password"] is not None and settings["password_file"] is not None:
        raise Invalid("password_file", "set either password or password_file, not both")
    if settings["username"] is None and (settings["password"] is not None or settings["password_file"]):
        raise Invalid("username", "required when a password is set")


class HttpPoster:
    """Sends request bodies to one URL; 2xx is delivery, 429/5xx/network trouble retryable, 4xx final."""

    def __init__(self, sink_name: str, method: str, url: str, settings: dict[str, Any]) -> None:
        self.sink_name = sink_name
        self.method = method
        self.url = url
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.blocking = DEFAULT  # the sink's (see Sink.blocking), set at start
        self._auth_header: dict[str, str] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        username = self.settings["username"]
        if username is not None:
            password = self.settings["password"] or ""
            if self.settings["password_file"]:
                path = Path(self.settings["password_file"])
                try:
                    password = (await self.blocking(path.read_text, encoding="utf-8")).strip()
                except OSError as exc:
                    raise RetryableSinkError(f"{self.sink_name}: cannot read password_file: {exc}") from exc
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            self._auth_header = {"Authorization": f"Basic {token}"}
        # trust_env=False: talk only to the configured address, never to a proxy from the environment.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings["timeout"]),
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None) -> None:
        if self._session is None:
            await self.start()
        assert self._session is not None
        headers = {"Content-Type": content_type}
        if extra_headers:
            headers.update(extra_headers)
        headers.update(self.settings["headers"])
        headers.update(self._auth_header)
        if self.settings["gzip"]:
            if len(body) > _GZIP_IN_THREAD_BYTES:
                body = await self.blocking(gzip.compress, body, 6)
            else:
                body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._session.request(
                self.method, self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    await response.read()
                    return
                raw = await response.content.read(ERROR_BODY_CHARS * 4)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableSinkError(
                f"{self.sink_name}: {self.method} {self.url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        text = raw.decode("utf-8", "replace").strip()
        if len(text) > ERROR_BODY_CHARS:
            text = text[:ERROR_BODY_CHARS] + "..."
        message = f"{self.sink_name}: {self.method} {self.url} answered {status}: {text}"
        if 400 <= status < 500 and status != 429:
            raise PermanentSinkError(message)
        # 429, 5xx, and anything unexpected (1xx, 3xx): keep the data and try again later.
        raise RetryableSinkError(message)
