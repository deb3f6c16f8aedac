"""HTTP delivery shared by the HTTP sinks (loki, http, elasticsearch): one session, status codes mapped
to sink errors, ``Retry-After`` (seconds or an HTTP-date) on 429/503 passed on as the error's
``retry_after``.

Credentials: ``bearer_token`` / ``bearer_token_file``, ``basic_auth: {username, password | password_file}``
(also written flat: ``username``, ``password``, ``password_file``), ``api_key`` / ``api_key_file`` (sinks
that add :func:`api_key_fields`; sent as ``Authorization: ApiKey <key>``), an ``Authorization`` header, or
``user:pass@`` in the URL: one of them, which the options check refuses otherwise. Files are re-read when
they change (checked at each send). Nothing printed carries a credential: the URL is shown redacted, and
an error answer's body is cut to :data:`ERROR_BODY_BYTES` and stripped of every header value sent.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
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
from nodeagent.logs.sinks._tls import SYSTEM_TLS, ClientTLS, TLSFileError, tls_field
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink, SinkError
from nodeagent.safeio import read_regular

USER_AGENT = f"nodeagent/{__version__}"
ERROR_BODY_BYTES = 200  # how much of a refusal's body goes into the error message
ERROR_DECODE_BYTES = 64 * 1024  # how much of a refusal's body a decoder (describe_error) may see
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


def api_key_fields() -> tuple[Field, ...]:
    """Elasticsearch-style API keys: ``Authorization: ApiKey <base64 of id:key>``."""
    return (
        Field(
            "api_key",
            None,
            "Sent as Authorization: ApiKey <key> (the encoded key, or id:key, which is encoded).",
            parse_nonempty_str,
        ),
        Field("api_key_file", None, "File holding the API key, re-read when it changes.", parse_nonempty_str),
    )


def _api_key(settings: dict[str, Any]) -> bool:
    return settings.get("api_key") is not None or settings.get("api_key_file") is not None


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
    if settings.get("api_key") is not None and settings.get("api_key_file") is not None:
        raise Invalid("api_key_file", "set either api_key or api_key_file, not both")
    bearer = settings["bearer_token"] is not None or settings["bearer_token_file"] is not None
    if bearer and _basic_auth(settings) is not None:
        raise Invalid("bearer_token", "set either a bearer token or basic auth, not both")
    if _api_key(settings) and (bearer or _basic_auth(settings) is not None):
        raise Invalid("api_key", "set either an API key or a bearer token/basic auth, not both")
    configured = bearer or _api_key(settings) or _basic_auth(settings) is not None
    header = any(name.lower() == "authorization" for name in settings["headers"])
    if header and configured:
        raise Invalid("headers", "an Authorization header and bearer_token/basic_auth/api_key: set only one")
    if has_credentials(settings["url"]) and (header or configured):
        raise Invalid(
            "url",
            "credentials in the URL and an Authorization header (or bearer_token/basic_auth/api_key): "
            "set only one",
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

    async def current(self, sink_name: str) -> str:
        """The content, read in a thread; a file that cannot be read is a retryable error naming it."""
        try:
            return await asyncio.to_thread(self.read)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise RetryableSinkError(f"{sink_name}: cannot read {self.option} {self.path}: {reason}") from exc


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
        elif _api_key(settings):
            self.scheme, self.secret = "ApiKey", settings["api_key"]
            if settings["api_key_file"]:
                self.file = SecretFile("api_key_file", settings["api_key_file"])
        else:
            self.scheme, self.secret = "Bearer", settings["bearer_token"]
            if settings["bearer_token_file"]:
                self.file = SecretFile("bearer_token_file", settings["bearer_token_file"])

    @staticmethod
    def wanted(settings: dict[str, Any]) -> bool:
        return (
            _basic_auth(settings) is not None
            or _api_key(settings)
            or bool(settings["bearer_token"] or settings["bearer_token_file"])
        )

    async def current(self, sink_name: str) -> tuple[str, str]:
        """(header value, the secret in it); a file that cannot be read is a retryable error."""
        if self.file is not None:
            self.secret = await self.file.current(sink_name)
        secret = self.secret or ""
        if self.scheme == "Basic":
            token = base64.b64encode(f"{self.username}:{secret}".encode()).decode("ascii")
            return f"Basic {token}", secret
        if self.scheme == "ApiKey":
            # Elasticsearch hands out "id:api_key" pairs and their base64 ("encoded"); accept both.
            encoded = base64.b64encode(secret.encode()).decode("ascii") if ":" in secret else secret
            return f"ApiKey {encoded}", secret
        return f"Bearer {secret}", secret


def endpoint(url: str, path: str) -> str:
    """``url`` with the API's ``path`` appended, unless the configured URL already ends with it."""
    base = url.rstrip("/")
    return base if base.endswith(path) else base + path


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (delay-seconds or an HTTP-date) as seconds from now; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(slots=True)
class HttpAnswer:
    """A response: its status, (part of) its body, the server's Retry-After, what to redact in quotes."""

    status: int
    body: bytes
    retry_after: float | None = None
    secrets: Sequence[str] = ()
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class HttpPoster:
    """Sends request bodies to one URL; 2xx is delivery, 429/5xx/network trouble retryable, 4xx final.

    ``retryable_statuses``: when given, the only 4xx/5xx answers retried (OTLP: 429, 502, 503, 504);
    every other 4xx/5xx is final. ``describe_error(body, content_type)``: turns a refusal's body (up to
    :data:`ERROR_DECODE_BYTES`) into the text quoted in the error (e.g. a protobuf google.rpc.Status),
    or None to quote the body as text. A Retry-After header goes into the error as ``retry_after``.
    """

    def __init__(
        self,
        sink_name: str,
        method: str,
        url: str,
        settings: dict[str, Any],
        *,
        retryable_statuses: Collection[int] | None = None,
        describe_error: Callable[[bytes, str], str | None] | None = None,
    ) -> None:
        self.sink_name = sink_name
        self.method = method
        self.url = url
        self.retryable_statuses = retryable_statuses
        self.describe_error = describe_error
        self.shown_url = redact_url(url)
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.blocking = DEFAULT  # the sink's (see Sink.blocking), set at start
        self._authorization = Authorization(settings) if Authorization.wanted(settings) else None
        tls = settings["tls"]
        if tls is None and url.lower().startswith("https://"):
            tls = SYSTEM_TLS
        self._tls = ClientTLS(sink_name, tls)

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

    async def post(
        self,
        body: bytes,
        content_type: str,
        extra_headers: dict[str, str] | None = None,
        *,
        keep_body: int = 0,
    ) -> bytes:
        """Send; on 2xx the answer's body (up to ``keep_body`` bytes), else raise the sink error it means."""
        answer = await self.exchange(body, content_type, extra_headers, keep_body=keep_body)
        if not answer.ok:
            raise self.refusal(answer)
        return answer.body

    async def exchange(
        self,
        body: bytes,
        content_type: str,
        extra_headers: dict[str, str] | None = None,
        *,
        keep_body: int = 0,
    ) -> HttpAnswer:
        """Send one request and return the answer, whatever its status; network trouble is retryable.

        ``keep_body``: how many bytes of the answer's body to keep (a 2xx body is read and dropped when
        0); an error's body is always kept up to what an error message quotes.
        """
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
                retry_after = None
                if status in (429, 503):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if 200 <= status < 300 and not keep_body:
                    await response.read()
                    return HttpAnswer(status, b"", retry_after, secrets)
                # An error: enough to redact a secret that straddles the cut and to know there is more.
                limit = max(keep_body, ERROR_BODY_BYTES + max(map(len, secrets), default=0) + 1)
                if self.describe_error is not None and not 200 <= status < 300:
                    limit = max(limit, ERROR_DECODE_BYTES)
                answer_type = response.content_type
                raw = await _read_at_most(response.content, limit)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = redact_text(f"{type(exc).__name__}: {exc}", secrets)
            raise RetryableSinkError(
                f"{self.sink_name}: {self.method} {self.shown_url} failed: {reason}"
            ) from exc
        return HttpAnswer(status, raw, retry_after, secrets, answer_type)

    def quote(self, answer: HttpAnswer, text: str | None = None) -> str:
        """The answer's body (or ``text`` taken from it) for an error message: redacted and cut."""
        if text is None:
            text = answer.body.decode("utf-8", "replace")
        text = redact_text(text, answer.secrets).strip()
        if len(text) > ERROR_BODY_BYTES:
            text = text[:ERROR_BODY_BYTES] + "..."
        return text

    def refusal(self, answer: HttpAnswer, *, refused: int | None = None) -> SinkError:
        """The sink error a non-2xx answer means: 429/5xx (and 1xx/3xx) retryable, other 4xx final
        (or, with ``retryable_statuses``, every 4xx/5xx not listed there final)."""
        status = answer.status
        described = self.describe_error(answer.body, answer.content_type) if self.describe_error else None
        quoted = self.quote(answer, described)
        message = f"{self.sink_name}: {self.method} {self.shown_url} answered {status}: {quoted}"
        if self.retryable_statuses is not None:
            final = 400 <= status < 600 and status not in self.retryable_statuses
        else:
            final = 400 <= status < 500 and status != 429
        if final:
            return PermanentSinkError(message, refused=refused)
        # 429, 5xx, and anything unexpected (1xx, 3xx): keep the data and try again later.
        return RetryableSinkError(message, retry_after=answer.retry_after)

    async def tls_context(self) -> Any:
        try:
            return await asyncio.to_thread(self._tls.context)
        except TLSFileError as exc:
            raise RetryableSinkError(f"{self.sink_name}: {exc}") from None

    def url_password(self) -> str | None:
        return urlsplit(self.url).password


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body (fewer at its end); the rest is left unread."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class PostingSink(Sink):
    """A sink that delivers through an :class:`HttpPoster` (``self._poster``, made by the subclass's
    constructor): starting and closing are the poster's, with the sink's blocking pool."""

    _poster: HttpPoster

    async def start(self) -> None:
        self._poster.blocking = self.blocking
        await self._poster.start()

    async def close(self) -> None:
        await self._poster.close()
