"""Redaction: the one place that decides what of a URL, a header or a text may be printed.

Credentials in a URL (``http://user:pass@host`` -> ``http://user:***@host``; a bare ``token@host`` ->
``***@host``) and the secrets a sink sent (every configured header value, whatever its name: Authorization,
Proxy-Authorization, Cookie, X-Api-Key...; the token inside ``Authorization``; passwords and tokens) are
replaced by ``***`` wherever the agent prints them: configuration errors, sink errors and retries, its
start-up log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://userinfo@ anywhere in a text; userinfo cannot hold '/', '@' or whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
MIN_SECRET_CHARS = 3  # shorter values would mask random letters of a message


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if sep else MASK


def has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return parts.username is not None or parts.password is not None


def redact_url(url: str) -> str:
    """``url`` without its credentials (``user:***@`` or ``***@``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{_mask_userinfo(userinfo)}@{host}"))


def secret_values(
    headers: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()
) -> tuple[str, ...]:
    """What must never appear in a printed text: each of ``headers``' values (the configured ones and
    Authorization, not Content-Type), the credential part of a ``<scheme> <credential>`` value (``Basic
    <token>``), and ``extra`` (passwords, tokens). Longest first, so that a longer one is masked whole."""
    values: set[str] = set()
    for value in [*(headers or {}).values(), *extra]:
        if not value:
            continue
        values.add(value)
        scheme, _, credential = value.partition(" ")
        if credential and scheme.isalpha():
            values.add(credential.strip())
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=lambda v: (-len(v), v)))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL credentials and each of ``secrets`` replaced by ``***``."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_mask_userinfo(m['userinfo'])}@", text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
