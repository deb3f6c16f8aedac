"""HTTP delivery shared by the loki and http sinks: one session, status codes mapped to sink errors.

Credentials: ``bearer_token`` / ``bearer_token_file``, ``basic_auth: {username, password | password_file}``
(also written flat: ``username``, ``password``, ``password_file``), an ``Authorization`` header, or
``user:pass@`` in the URL: one of them, which the options check refuses otherwise. Files are re-read when
they change (checked at each send). Nothing printed carries a credential: the URL is shown redacted, and
an error answer's body is cut to :data:`ERROR_BODY_BYTES` and stripped of every header value sent.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from nodeagent import __version__
from nodeagent.config.schema import REQUIRED, Field, Invalid, Section
from nodeagent.config.secrets import has_credentials, redact_text, redact_url, secret_values
from nodeagent.config.values import (
    parse_bool,
    parse_headers,
    parse_nonempty_str,
    parse_str,
    positive_duration,
)
from nodeagent.logs.blocking import DEFAULT
from nodeagent.logs.sinks._tls import ClientTLS, TLSFileError, tls_field
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError
from nodeagent.safeio import read_regular

USER_AGENT = f"nodeagent/{__version__}"
ERROR_BODY_BYTES = 200  # how much of a refusal's body goes into the error message
MAX_SECRET_FILE_BYTES = 64 * 1024
_GZIP_IN_THREAD_BYTES = 256 * 1024  # compress bigger bodies off the event loop (zlib releases the GIL)


def check_password(values: dict[str, Any]) -> None:
    """username / password / password_file, flat or under basic_auth."""
    if values["password"] is not None and values["password_file"] is not None:
        raise Invalid("password_file", "set either password or password_file, not both")
    if values["username"] is None and (values["password"] is not None or values["password_file"]):
        raise Invalid("username", "required when a password is set")


BASIC_AUTH = Section(
    (
        Field("username", REQUIRED, "HTTP basic auth user.", parse_str),
        Field("password", None, "Its password (prefer password_file or ${ENV}).", parse_str),
        Field(
            "password_file", None, "File holding the password, re-read when it changes.", parse_nonempty_str
        ),
    ),
    check=check_password,
)


def http_fields(*, gzip_default: bool) -> tuple[Field, ...]:
    """Options every HTTP sink has: headers, gzip, timeout, credentials, TLS."""
    return (
        tls_field(),
        Field("headers", {}, "Extra request headers.", parse_headers),
        Field("gzip", gzip_default, "gzip the body (Content-Encoding: gzip).", parse_bool),
        Field("timeout", 10.0, "Per request.", positive_duration),
        Field("bearer_token", None, "Sent as Authorization: Bearer <token>.", parse_nonempty_str),
        Field(
            "bearer_token_file",
            None,
            "File holding the bearer token, re-read when it changes.",
            parse_nonempty_str,
        ),
        Field("basic_auth", None, "HTTP basic auth: username, password or password_file.", BASIC_AUTH),
        Field("username", None, "HTTP basic auth user (same as basic_auth.username).", parse_str),
        Field("password", None, "HTTP basic auth password.", parse_str),
        Field("password_file", None, "File holding the basic auth password.", parse_nonempty_str),
    )


def _basic_auth(settings: dict[str, Any]) -> dict[str, Any] | None:
    if settings["basic_auth"] is not None:
        return settings["basic_auth"]
    if settings["username"] is not None:
        return {key: settings[key] for key in ("username", "password", "password_file")}
    return None


def check_http_options(settings: dict[str, Any]) -> None:
    """One source of credentials at a time (two would be a guess about which one the server wants)."""
    check_password(settings)
    if settings["tls"] is not None and not settings["url"].lower().startswith("https://"):
        raise Invalid("tls", "TLS options need an https:// url")
    if settings["basic_auth"] is not None and settings["username"] is not None:
        raise Invalid("basic_auth", "set either basic_auth or username/password, not both")
    if settings["bearer_token"] is not None and settings["bearer_token_file"] is not None:
        raise Invalid("bearer_token_file", "set either bearer_token or bearer_token_file, not both")
    bearer = settings["bearer_token"] is not None or settings["bearer_token_file"] is not None
    if bearer and _basic_auth(settings) is not None:
        raise Invalid("bearer_token", "set either a bearer token or basic auth, not both")
    header = any(name.lower() == "authorization" for name in settings["headers"])
    if header and (bearer or _basic_auth(settings) is not None):
        raise Invalid("headers", "an Authorization header and bearer_token/basic_auth: set only one")
    if has_credentials(settings["url"]) and (header or bearer or _basic_auth(settings) is not None):
        raise Invalid(
            "url",
            "credentials in the URL and an Authorization header (or bearer_token/basic_auth): set only one",
        )


class SecretFile:
    """A password or token file, read again when its identity, size or modification time changes."""

    def __init__(self, option: str, path: str) -> None:
        self.option = option
        self.path = path
        self._identity: tuple[int, int, int, int] | None = None
        self._value = ""

    def read(self) -> str:
        """The stripped content (blocking: call it in a thread); raises OSError or ValueError."""
        stat = os.stat(self.path)
        identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if identity != self._identity:
            data, more = read_regular(self.path, MAX_SECRET_FILE_BYTES)
            if more:
                raise ValueError(f"larger than {MAX_SECRET_FILE_BYTES} bytes")
            self._value = data.decode("utf-8").strip()
            self._identity = identity
        return self._value


class Authorization:
    """The Authorization header value: from inline secrets, or from a file re-read when it changes."""

    def __init__(self, settings: dict[str, Any]) -> None:
        basic = _basic_auth(settings)
        self.file: SecretFile | None = None
        self.username: str | None = None
        self.secret: str | None = None
        if basic is not None:
            self.scheme, self.username, self.secret = "Basic", basic["username"], basic["password"] or ""
            if basic["password_file"]:
                self.file = SecretFile("password_file", basic["password_file"])
        else:
            self.scheme, self.secret = "Bearer", settings["bearer_token"]
            if settings["bearer_token_file"]:
                self.file = SecretFile("bearer_token_file", settings["bearer_token_file"])

    @staticmethod
    def wanted(settings: dict[str, Any]) -> bool:
        return _basic_auth(settings) is not None or bool(
            settings["bearer_token"] or settings["bearer_token_file"]
        )

    async def current(self, sink_name: str) -> tuple[str, str]:
        """(header value, the secret in it); a file that cannot be read is a retryable error."""
        if self.file is not None:
            try:
                self.secret = await asyncio.to_thread(self.file.read)
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise RetryableSinkError(
                    f"{sink_name}: cannot read {self.file.option} {self.file.path}: {reason}"
                ) from exc
        secret = self.secret or ""
        if self.scheme == "Basic":
            token = base64.b64encode(f"{self.username}:{secret}".encode()).decode("ascii")
            return f"Basic {token}", secret
        return f"Bearer {secret}", secret


class HttpPoster:
    """Sends request bodies to one URL; 2xx is delivery, 429/5xx/network trouble retryable, 4xx final."""

    def __init__(self, sink_name: str, method: str, url: str, settings: dict[str, Any]) -> None:
        self.sink_name = sink_name
        self.method = method
        self.url = url
        self.shown_url = redact_url(url)
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.blocking = DEFAULT  # the sink's (see Sink.blocking), set at start
        self._authorization = Authorization(settings) if Authorization.wanted(settings) else None
        self._tls = ClientTLS(sink_name, settings["tls"])

    async def start(self) -> None:
        if self._session is not None:
            return
        if self._authorization is not None:
            await self._authorization.current(self.sink_name)  # a missing file shows at start
        if self._tls.enabled:
            await self.tls_context()  # so does a missing certificate
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
        tls_options: dict[str, Any] = {}
        if self._tls.enabled:
            tls_options["ssl"] = await self.tls_context()
            if self._tls.server_name:
                tls_options["server_hostname"] = self._tls.server_name
        secrets_sent: list[str | None] = [self.url_password()]
        if self._authorization is not None:
            headers["Authorization"], secret = await self._authorization.current(self.sink_name)
            secrets_sent += [headers["Authorization"], secret]
        # What we were told to send; not Content-Type & co., whose echo helps reading the error.
        secrets = secret_values(self.settings["headers"], secrets_sent)
        if self.settings["gzip"]:
            if len(body) > _GZIP_IN_THREAD_BYTES:
                body = await self.blocking(gzip.compress, body, 6)
            else:
                body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._session.request(
                self.method, self.url, data=body, headers=headers, allow_redirects=False, **tls_options
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    await response.read()
                    return
                # Enough to redact a secret that straddles the cut and to know there is more, then cut.
                raw = await response.content.read(ERROR_BODY_BYTES + max(map(len, secrets), default=0) + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = redact_text(f"{type(exc).__name__}: {exc}", secrets)
            raise RetryableSinkError(
                f"{self.sink_name}: {self.method} {self.shown_url} failed: {reason}"
            ) from exc
        text = redact_text(raw.decode("utf-8", "replace"), secrets).strip()
        if len(text) > ERROR_BODY_BYTES:
            text = text[:ERROR_BODY_BYTES] + "..."
        message = f"{self.sink_name}: {self.method} {self.shown_url} answered {status}: {text}"
        if 400 <= status < 500 and status != 429:
            raise PermanentSinkError(message)
        # 429, 5xx, and anything unexpected (1xx, 3xx): keep the data and try again later.
        raise RetryableSinkError(message)

    async def tls_context(self) -> Any:
        try:
            return await asyncio.to_thread(self._tls.context)
        except TLSFileError as exc:
            raise RetryableSinkError(f"{self.sink_name}: {exc}") from None

    def url_password(self) -> str | None:
        return urlsplit(self.url).password
