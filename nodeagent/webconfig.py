"""``--web.config.file``: TLS, basic auth and response headers in exporter-toolkit's file format.

node_exporter, Prometheus and every official exporter read the same YAML file (``tls_server_config``,
``basic_auth_users``, ``http_server_config``, ``rate_limit``); a user's file works here unchanged.
Unknown keys are refused, as exporter-toolkit's strict unmarshalling does; relative paths are relative to
the file's directory. The file and the files it names are read through :mod:`nodeagent.safeio`, bounded.

The file is looked at again for every new connection and request (so rotated certificates apply without
a restart), but re-read only when the ``stat`` of it or of a file it names changed: a handful of stat
calls per connection, no parsing. A file that no longer loads is logged once and the last good
configuration stays.

Where Python's ``ssl`` module differs from Go's ``crypto/tls`` (README, "Web configuration"):
``RequestClientCert`` asks for nothing (nothing ever reads an unverified certificate, so the clients let
in are the same); ``RequireAnyClientCert`` needs a ``client_ca`` to verify against; of several
``curve_preferences`` only the first is offered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeagent.config.errors import ConfigError, KeyPart
from nodeagent.config.loader import LineDict, load_yaml
from nodeagent.config.schema import Field, Invalid, Section, mapping_entries, normalize_key
from nodeagent.config.values import (
    non_negative_int,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_str,
    parse_string_list,
    shown,
)
from nodeagent.pools import BoundedPool
from nodeagent.safeio import quote, read_regular

log = logging.getLogger("nodeagent.webconfig")

MAX_FILE_BYTES = 1 << 20  # the web config file, and each certificate, key or CA file it names

# Go's crypto/tls names (tls.CipherSuites(): the ones exporter-toolkit accepts) -> OpenSSL's names.
# TLS 1.3 suites are accepted and, as in Go, not configurable: they apply to TLS 1.2 and older only.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # exporter-toolkit's older name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
# The only headers exporter-toolkit lets a file set, and the values allowed where it restricts them.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT_HASH = re.compile(rb"^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
# Compared against when the user is unknown, so that timing does not tell which users exist.
_UNKNOWN_USER_HASH = b"$2b$10$moLZ2TG6r7/8nf9WRv.mOO/9yeGs/xKz9kLulvgz4gpbDyliHmswS"  # any password
AUTH_CACHE_ENTRIES = 100  # verified (user, hash, password) results kept, as exporter-toolkit keeps


# ------------------------------------------------------------------------------------------------
# Values


def _parse_cipher(raw: Any) -> str:
    name = parse_str(raw)
    if name not in CIPHER_SUITES:
        raise ValueError(f"unknown cipher: {shown(name)}")
    return name


def _parse_curve(raw: Any) -> str:
    name = parse_str(raw)
    if name not in CURVES:
        raise ValueError(f"unknown curve: {shown(name)} (known: {', '.join(CURVES)})")
    return name


def _parse_tls_version(raw: Any) -> str:
    name = parse_str(raw)
    if name not in TLS_VERSIONS:
        raise ValueError(f"unknown TLS version: {shown(name)} (known: {', '.join(TLS_VERSIONS)})")
    return name


def _list_of(parse: Any) -> Any:
    def parse_list(raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, list):
            raise ValueError("expected a list")
        return tuple(parse(item) for item in raw)

    return parse_list


def parse_bcrypt_hash(raw: Any) -> bytes:
    """A bcrypt hash (``$2y$10$...``); the message never quotes it."""
    if not isinstance(raw, str):
        raise ValueError("expected a bcrypt hash")
    value = raw.encode("utf-8", "surrogateescape")
    match = _BCRYPT_HASH.match(value)
    if not match:
        raise ValueError("not a bcrypt hash (htpasswd -nBC 10 USER, or Python's bcrypt.hashpw)")
    if not 4 <= int(match[1]) <= 31:
        raise ValueError(f"bcrypt cost {int(match[1])} out of range 4..31")
    return value


def parse_users(raw: Any) -> dict[str, bytes]:
    """``basic_auth_users``: user name (as written, never normalised) -> bcrypt hash."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of user names to bcrypt hashes, got {type(raw).__name__}")
    users = {}
    for key, _, value in mapping_entries(raw):
        line = raw.line_of(key) if isinstance(raw, LineDict) else None
        try:
            users[key] = parse_bcrypt_hash(value)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key, file=getattr(raw, "file", None), line=line) from None
    return users


def parse_response_headers(raw: Any) -> dict[str, str]:
    """``http_server_config.headers``: only the names exporter-toolkit allows (exact case)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a mapping of header names to values, got {type(raw).__name__}")
    headers = {}
    for name, _, value in mapping_entries(raw):
        if name not in ALLOWED_HEADERS:
            known = ", ".join(ALLOWED_HEADERS)
            raise ValueError(f"HTTP header {shown(name)} can not be configured (allowed: {known})")
        text = parse_str(value)
        allowed = ALLOWED_HEADERS[name]
        if allowed and text not in allowed:
            raise ValueError(f"invalid value for {name}: expected one of {', '.join(allowed)}")
        if "\r" in text or "\n" in text:
            raise ValueError(f"{name}: the value must not contain line breaks")
        headers[name] = text
    return headers


# ------------------------------------------------------------------------------------------------
# Schema


@dataclass(frozen=True)
class TLSServerConfig:
    cert: str = ""
    key: str = ""
    client_ca: str = ""
    cert_file: str = ""
    key_file: str = ""
    client_auth_type: str = ""  # "" and NoClientCert ask for no certificate; only "" leaves TLS off
    client_ca_file: str = ""
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True
    client_allowed_sans: tuple[str, ...] | None = None

    @property
    def enabled(self) -> bool:
        """As exporter-toolkit: any certificate, key, CA or client auth setting (even NoClientCert)
        turns TLS on."""
        return any(
            (
                self.cert,
                self.key,
                self.cert_file,
                self.key_file,
                self.client_ca,
                self.client_ca_file,
                self.client_auth_type,
            )
        )


def _check_tls(values: dict[str, Any]) -> None:
    if values["cert"] and values["cert_file"]:
        raise Invalid("cert", "give either cert or cert_file, not both")
    if values["key"] and values["key_file"]:
        raise Invalid("key", "give either key or key_file, not both")
    if values["client_ca"] and values["client_ca_file"]:
        raise Invalid("client_ca", "give either client_ca or client_ca_file, not both")
    tls = TLSServerConfig(**values)
    if not tls.enabled:
        return
    if not tls.cert and not tls.cert_file:
        raise Invalid(None, "missing one of cert or cert_file")
    if not tls.key and not tls.key_file:
        raise Invalid(None, "missing one of key or key_file")
    has_ca = bool(tls.client_ca or tls.client_ca_file)
    auth = tls.client_auth_type
    if has_ca and auth in ("", "NoClientCert"):
        raise Invalid("client_auth_type", "client CA's have been configured without a Client Auth Policy")
    if auth in ("RequireAnyClientCert", "RequireClientCert") and not has_ca:
        raise Invalid(
            "client_auth_type",
            f"{auth} without client_ca_file: Python's ssl cannot require a certificate without "
            "verifying it; give the CA that signs the clients' certificates",
        )
    if tls.client_allowed_sans is not None and auth not in (
        "RequireAnyClientCert",
        "RequireClientCert",
        "RequireAndVerifyClientCert",
    ):
        raise Invalid(
            "client_allowed_sans",
            "client_allowed_sans requires client_auth_type RequireAnyClientCert or "
            "RequireAndVerifyClientCert",
        )
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        raise Invalid("min_version", "min_version is above max_version")


TLS_SECTION = Section(
    (
        Field("cert"),
        Field("key"),
        Field("client_ca"),
        Field("cert_file"),
        Field("key_file"),
        Field("client_auth_type", parse=parse_choice("", *CLIENT_AUTH_TYPES)),
        Field("client_ca_file"),
        Field("cipher_suites", parse=_list_of(_parse_cipher)),
        Field("curve_preferences", parse=_list_of(_parse_curve)),
        Field("min_version", parse=_parse_tls_version),
        Field("max_version", parse=_parse_tls_version),
        Field("prefer_server_cipher_suites", parse=parse_bool),
        Field("client_allowed_sans", parse=parse_string_list),
    ),
    target=TLSServerConfig,
    check=_check_tls,
)


@dataclass(frozen=True)
class HTTPServerConfig:
    headers: dict[str, str] = field(default_factory=dict)
    http2: bool = True  # accepted for compatibility; aiohttp serves HTTP/1.1 only


HTTP_SECTION = Section(
    (Field("headers", parse=parse_response_headers), Field("http2", parse=parse_bool)),
    target=HTTPServerConfig,
)


@dataclass(frozen=True)
class RateLimit:
    burst: int = 0
    interval: float = 0.0  # seconds between two new tokens; 0: no limit


RATE_LIMIT_SECTION = Section(
    (Field("burst", parse=non_negative_int), Field("interval", parse=parse_duration)), target=RateLimit
)

DOCUMENT = Section(
    (
        Field("tls_server_config", parse=TLS_SECTION),
        Field("http_server_config", parse=HTTP_SECTION),
        Field("rate_limit", parse=RATE_LIMIT_SECTION),
        Field("basic_auth_users", parse=parse_users),
    )
)


# ------------------------------------------------------------------------------------------------
# Loading


# OpenSSL's reasons for refusing a client's certificate, which the client should be told in an alert.
_CLIENT_CERTIFICATE_REFUSALS = frozenset({"CERTIFICATE_VERIFY_FAILED", "PEER_DID_NOT_RETURN_A_CERTIFICATE"})


class _AlertingSSLObject(ssl.SSLObject):
    """A refused handshake (a client certificate from an unknown CA) ends with OpenSSL's alert on the
    wire, as Go's does: asyncio closes the socket without sending what OpenSSL wrote, so the failure is
    reported as "want more data" once, which makes asyncio send it; the next call raises the failure
    (the client closes on the alert; asyncio's handshake timeout bounds one that does not)."""

    _failure: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if exc.reason not in _CLIENT_CERTIFICATE_REFUSALS:
                raise  # e.g. plain HTTP on the TLS port: close at once, as before
            self._failure = exc
            raise ssl.SSLWantReadError("handshake failed; sending the alert") from None


class _WebSSLContext(ssl.SSLContext):
    """A server context that remembers which client certificate SANs it lets in (None: any)."""

    allowed_sans: frozenset[str] | None = None
    sslobject_class = _AlertingSSLObject


@dataclass
class WebConfig:
    """One load of the file: what serving needs, checked, with the TLS context built."""

    path: str
    tls: TLSServerConfig
    users: dict[str, bytes]
    headers: dict[str, str]
    http2: bool
    rate_limit: RateLimit
    ssl_context: _WebSSLContext | None
    watched: tuple[str, ...]  # the file and the files it names: a change of any of them reloads

    @property
    def tls_enabled(self) -> bool:
        return self.ssl_context is not None


def _read(path: str, *, what: str) -> bytes:
    """The file's bytes; ValueError(message, what) so that the error names the key that gave the path."""
    try:
        data, more = read_regular(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise ValueError(f"cannot read {what} {quote(path)}: {exc.strerror or exc}", what) from None
    if more:
        raise ValueError(f"{what} {quote(path)} is larger than {MAX_FILE_BYTES} bytes", what)
    return data


def _line(raw: Any, *keys: str) -> int | None:
    """The line of ``keys`` (a path of mapping keys, spelled either way) in the loaded document."""
    line = raw.line if isinstance(raw, LineDict) else None
    for key in keys:
        if not isinstance(raw, LineDict):
            break
        written = next(
            (k for k in raw if isinstance(k, str) and normalize_key(k) == normalize_key(key)), None
        )
        if written is None:
            break
        line, raw = raw.line_of(written), raw[written]
    return line


def _memfd_path(name: str, data: bytes) -> tuple[int, str]:
    """An anonymous in-memory file holding ``data``: OpenSSL loads certificates from paths only, and the
    bytes it loads must be the ones read and checked here (no second read of a file being rotated)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
    except BaseException:
        os.close(fd)
        raise
    return fd, f"/proc/self/fd/{fd}"


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on a terminal


def build_ssl_context(tls: TLSServerConfig, base_dir: str) -> _WebSSLContext:
    """The server context of ``tls``; ValueError (with the key at fault in ``args[1]``) when it cannot."""

    def resolve(path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(base_dir, path)

    cert = _read(resolve(tls.cert_file), what="cert_file") if tls.cert_file else tls.cert.encode()
    key = _read(resolve(tls.key_file), what="key_file") if tls.key_file else tls.key.encode()
    context = _WebSSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    opened: list[int] = []
    try:
        cert_fd, cert_path = _memfd_path("nodeagent-cert", cert)
        opened.append(cert_fd)
        key_fd, key_path = _memfd_path("nodeagent-key", key)
        opened.append(key_fd)
        context.load_cert_chain(cert_path, key_path, password=_no_password)
    except ssl.SSLError as exc:
        where = "cert_file" if tls.cert_file else "cert"
        raise ValueError(f"failed to load X509KeyPair: {_ssl_reason(exc)}", where) from None
    finally:
        for fd in opened:
            os.close(fd)
    suites = [CIPHER_SUITES[name] for name in tls.cipher_suites]
    openssl_suites = [name for name in suites if name]
    if openssl_suites:
        try:
            context.set_ciphers(":".join(openssl_suites))
        except ssl.SSLError as exc:
            raise ValueError(f"no usable cipher: {_ssl_reason(exc)}", "cipher_suites") from None
    if tls.curve_preferences:
        context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
    auth = tls.client_auth_type
    if auth in ("", "NoClientCert", "RequestClientCert"):
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_OPTIONAL if auth == "VerifyClientCertIfGiven" else ssl.CERT_REQUIRED
        ca = _read(resolve(tls.client_ca_file), what="client_ca_file") if tls.client_ca_file else None
        if ca is None and tls.client_ca:
            ca = tls.client_ca.encode()
        if ca is None:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # Go verifies against the system roots
        else:
            try:
                context.load_verify_locations(cadata=ca.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError) as exc:
                where = "client_ca_file" if tls.client_ca_file else "client_ca"
                raise ValueError(f"no CA certificate in {where}: {_ssl_reason(exc)}", where) from None
    if tls.client_allowed_sans is not None:
        context.allowed_sans = frozenset(_canonical_san(san) for san in tls.client_allowed_sans)
    return context


def _ssl_reason(exc: Exception) -> str:
    return quote(getattr(exc, "reason", None) or str(exc), 120)


def load_web_config(path: str) -> WebConfig:
    """Read and check the file and everything it names; raises ConfigError (``file:line: key: message``)."""
    try:
        data = _read(path, what="web config file")
    except ValueError as exc:
        raise ConfigError(exc.args[0], file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    raw = load_yaml(text, path)
    if raw is None:
        raw = LineDict()
    if not isinstance(raw, Mapping):
        raise ConfigError("the web config file must be a YAML mapping", file=path)
    values = DOCUMENT.read(raw)
    tls: TLSServerConfig = values.get("tls_server_config") or TLSServerConfig()
    http: HTTPServerConfig = values.get("http_server_config") or HTTPServerConfig()
    base_dir = os.path.dirname(os.path.abspath(path))
    context = None
    if tls.enabled:
        try:
            context = build_ssl_context(tls, base_dir)
        except ValueError as exc:
            key = exc.args[1] if len(exc.args) > 1 else None
            written_key: list[KeyPart] = ["tls_server_config", *([key] if key else [])]
            line = _line(raw, "tls_server_config", *([key] if key else []))
            raise ConfigError(exc.args[0], key=written_key, file=path, line=line) from None
    named = [tls.cert_file, tls.key_file, tls.client_ca_file] if tls.enabled else []
    watched = (path, *(p if os.path.isabs(p) else os.path.join(base_dir, p) for p in named if p))
    return WebConfig(
        path=path,
        tls=tls,
        users=values.get("basic_auth_users") or {},
        headers=http.headers,
        http2=http.http2,
        rate_limit=values.get("rate_limit") or RateLimit(),
        ssl_context=context,
        watched=watched,
    )


def _signature(paths: tuple[str, ...]) -> tuple[object, ...]:
    """What tells that a file changed: device, inode, size, mtime and ctime (a Secret's update swaps a
    symlink: the inode changes), or the error of stat."""
    parts: list[object] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            parts.append(exc.errno)
            continue
        parts.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(parts)


class WebConfigSource:
    """The web config file, re-read when it (or a file it names) changed; the last good load stays.

    :meth:`current` costs a few ``stat`` calls: it runs on the event loop for every new connection and
    request, as exporter-toolkit reads the file on every request. Files on a node's disk or in a Secret
    volume (tmpfs) answer ``stat`` from the inode cache.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._config = load_web_config(path)  # ConfigError: refused at startup
        self._signature = _signature(self._config.watched)
        self._failed_signature: tuple[object, ...] | None = None
        self.tls_enabled = self._config.tls_enabled

    def current(self) -> WebConfig:
        signature = _signature(self._config.watched)
        if signature == self._signature or signature == self._failed_signature:
            return self._config
        try:
            config = load_web_config(self.path)
            if config.tls_enabled != self.tls_enabled:
                raise ConfigError("switching TLS on or off needs a restart", file=self.path)
        except ConfigError as exc:
            self._failed_signature = signature
            log.error("web config not reloaded; the last good one stays", extra={"err": str(exc)})
            return self._config
        self._config, self._signature, self._failed_signature = config, _signature(config.watched), None
        log.info("web config reloaded", extra={"file": self.path, "tls": config.tls_enabled})
        return config

    def server_context(self) -> ssl.SSLContext:
        """The listener's context: every new connection gets the context of the current file."""
        return _ReloadingContext(self)


class _ReloadingContext(ssl.SSLContext):
    """asyncio wraps each accepted connection with ``wrap_bio`` of the listener's context: this one hands
    the connection to the context of the current load, so certificates, client CAs, versions and
    ciphers all apply from the next connection on."""

    source: WebConfigSource

    def __new__(cls, source: WebConfigSource) -> _ReloadingContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)

    def __init__(self, source: WebConfigSource) -> None:
        self.source = source

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        context = self.source.current().ssl_context
        assert context is not None  # the source refuses to turn TLS off
        return context.wrap_bio(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# Requests


def _canonical_san(value: str) -> str:
    """An IP address as Go prints it (``::1``, not OpenSSL's ``0:0:0:0:0:0:0:1``); anything else as is."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return value


def peer_sans(certificate: Mapping[str, Any]) -> list[str]:
    """The DNS names, e-mail addresses, IP addresses and URIs of a verified peer certificate."""
    kinds = {"DNS", "email", "IP Address", "URI"}
    return [
        _canonical_san(str(value)) for kind, value in certificate.get("subjectAltName", ()) if kind in kinds
    ]


def client_allowed(ssl_object: ssl.SSLObject | None) -> bool:
    """Whether the connection's client certificate carries one of the SANs its context allows."""
    if ssl_object is None:
        return True
    context = ssl_object.context
    allowed = context.allowed_sans if isinstance(context, _WebSSLContext) else None
    if allowed is None:
        return True
    certificate = ssl_object.getpeercert()
    return certificate is not None and any(san in allowed for san in peer_sans(certificate))


def basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) of an ``Authorization: Basic`` header, as Go's ``Request.BasicAuth`` reads it."""
    if not header or len(header) < 6 or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "surrogateescape"), password


class BasicAuth:
    """Checks passwords against bcrypt hashes, off the event loop, one at a time (bcrypt is meant to be
    slow); results are cached so that a scrape every 15 s does not pay bcrypt every time. A cache key is
    a keyed hash of user, bcrypt hash and password: no password is kept in memory, and a changed hash in
    the file misses the cache."""

    def __init__(self, pool: BoundedPool | None = None) -> None:
        self._pool = pool if pool is not None else BoundedPool("auth", 1)
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    def _cache_key(self, user: str, hashed: bytes, password: bytes) -> bytes:
        digest = hashlib.blake2b(key=self._key, digest_size=32)
        for part in (user.encode("utf-8", "surrogateescape"), hashed, password):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.digest()

    async def allowed(self, users: Mapping[str, bytes], header: str | None) -> bool:
        credentials = basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        known = user in users
        hashed = users[user] if known else _UNKNOWN_USER_HASH
        key = self._cache_key(user, hashed, password)
        result = self._cache.get(key)
        if result is None:
            matches = await asyncio.wrap_future(self._pool.submit(_check_password, password, hashed))
            result = known and matches
            self._cache[key] = result
            while len(self._cache) > AUTH_CACHE_ENTRIES:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _check_password(password: bytes, hashed: bytes) -> bool:
    import bcrypt  # only a file with basic_auth_users needs it

    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a password longer than bcrypt's 72 bytes, a malformed hash
        return False


class RateLimiter:
    """A token bucket as Go's ``rate.Limiter``: ``burst`` tokens, one more every ``interval`` seconds."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        if self.limit.interval <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(float(self.limit.burst), self._tokens + (now - self._last) / self.limit.interval)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
