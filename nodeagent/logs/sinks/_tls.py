"""TLS for every network sink: the ``tls:`` option and the client context built from it.

Options (all optional; ``tls: {}`` turns TLS on with the system's CAs):
  ca_file               PEM bundle of the CAs that may sign the server's certificate (default: system CAs)
  cert_file, key_file   client certificate and its key, for servers that require one (both or neither)
  server_name           the name checked against the server's certificate and sent as SNI (default: the
                        host the sink connects to)
  insecure_skip_verify  do not verify the server's certificate (default false; logged as a warning)
  min_version           TLS12 (default) or TLS13

The context is built when the sink starts, so a missing or unreadable file is a start-up error naming the
option, and a certificate renewed on disk is picked up by the next connection's new context (see
:class:`ClientTLS`). Key files are read by OpenSSL only: nothing of them is ever printed.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import Any

from nodeagent.config.schema import Field, Invalid, Section
from nodeagent.config.values import parse_bool, parse_choice, parse_nonempty_str

log = logging.getLogger("nodeagent.logs.sinks.tls")

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


def _check_pair(values: dict[str, Any]) -> None:
    if (values["cert_file"] is None) != (values["key_file"] is None):
        missing = "key_file" if values["key_file"] is None else "cert_file"
        raise Invalid(missing, "cert_file and key_file go together")


TLS_OPTIONS = Section(
    (
        Field("ca_file", None, "CAs for the server's certificate (default: system CAs).", parse_nonempty_str),
        Field("cert_file", None, "Client certificate (PEM).", parse_nonempty_str),
        Field("key_file", None, "Client certificate's key (PEM).", parse_nonempty_str),
        Field("server_name", None, "Name to verify and send as SNI (default: the host).", parse_nonempty_str),
        Field("insecure_skip_verify", False, "Do not verify the server's certificate.", parse_bool),
        Field("min_version", "TLS12", "TLS12 or TLS13.", parse_choice(*TLS_VERSIONS)),
    ),
    check=_check_pair,
)


def tls_field(help_text: str = "TLS towards the destination (ca_file, cert_file, key_file, ...).") -> Field:
    """The ``tls`` option of a sink: None (plain, or https:// with system CAs) or the mapping above."""
    return Field("tls", None, help_text, TLS_OPTIONS)


# What an https:// url without a ``tls`` block gets: the system's CAs, verified. The sink builds this context
# itself: aiohttp's own default one is built without CAs (see runtime.import_aiohttp), so it verifies nothing.
SYSTEM_TLS: dict[str, Any] = TLS_OPTIONS.read({})


class TLSFileError(ValueError):
    """A CA, certificate or key file could not be used; the message names the option and the path."""


def client_context(tls: dict[str, Any] | None) -> ssl.SSLContext | None:
    """The client context for ``tls`` (the read option), or None when the option is absent.

    Blocking (reads files): call it from a thread or at start-up. Raises TLSFileError.
    """
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = TLS_VERSIONS[tls["min_version"]]
    if tls["ca_file"]:
        try:
            context.load_verify_locations(cafile=tls["ca_file"])
        except (OSError, ssl.SSLError) as exc:
            raise TLSFileError(f"tls.ca_file {tls['ca_file']}: {_reason(exc)}") from None
    if tls["cert_file"]:
        try:
            context.load_cert_chain(tls["cert_file"], tls["key_file"])
        except (OSError, ssl.SSLError) as exc:
            raise TLSFileError(f"tls.cert_file/key_file {tls['cert_file']}: {_reason(exc)}") from None
    if tls["insecure_skip_verify"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__


class ClientTLS:
    """A sink's TLS: the context, rebuilt when a configured file changes (renewed certificates)."""

    def __init__(self, sink_name: str, tls: dict[str, Any] | None) -> None:
        self.sink_name = sink_name
        self.tls = tls
        self.server_name: str | None = tls["server_name"] if tls else None
        self._context: ssl.SSLContext | None = None
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        if tls and tls["insecure_skip_verify"]:
            log.warning("TLS server certificate verification is off", extra={"sink": sink_name})

    @property
    def enabled(self) -> bool:
        return self.tls is not None

    def _files_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamp = []
        assert self.tls is not None
        for key in ("ca_file", "cert_file", "key_file"):
            path = self.tls[key]
            if path:
                try:
                    st = os.stat(path)
                    stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
                except OSError:
                    stamp.append((0, 0, 0))
        return tuple(stamp)

    def context(self) -> ssl.SSLContext | None:
        """The current context (blocking: stats and maybe reads files); raises TLSFileError."""
        if self.tls is None:
            return None
        stamp = self._files_stamp()
        if self._context is None or stamp != self._stamp:
            self._context = client_context(self.tls)
            self._stamp = stamp
        return self._context
