"""Process-wide runtime tuning for the long-running agent (``nodeagent run``), each done once from
:func:`nodeagent.agent.run_agent`.

- The cyclic GC: everything alive once the agent listens (modules, settings, collectors, the application)
  lives as long as the process, so it is frozen out of later collections; a scrape allocates tens of
  thousands of short-lived, acyclic objects that reference counting frees, so a higher first threshold
  spares most of the young-generation collections they would otherwise trigger (in-process GC time per
  render 0.43 -> 0.17 ms when this was measured).
- The open-file limit: container runtimes start processes at a soft limit of 1024 (hard 524288); Go
  raises its soft limit at start, Python does not, and the agent needs descriptors for connections, log
  files and checkpoints. The soft limit is raised to the hard one.
- glibc's malloc: it gives every thread that allocates its own arena (up to 8 per core), each keeping
  freed memory for reuse; the agent's few worker threads allocate briefly (a scrape's collectors) and
  the heap's free top is not returned by default until it exceeds 128 KiB of slack per arena. At most
  :data:`MALLOC_ARENAS` arenas are used, and free memory is handed back to the kernel once start-up is
  done (``malloc_trim``). Elsewhere (musl) nothing is done.
- frozenlist (aiohttp's signal lists, a few short lists built at start-up) is used without its C++
  extension: that extension alone maps the C++ runtime, about 1.2 MB resident for no measurable gain.
- aiohttp builds two client TLS contexts when it is imported, each loading the system's CA store (about
  2 MB resident together, on every node, whether or not anything connects over TLS). It is imported with
  OpenSSL's CA locations pointed at nothing, so those contexts hold no CA and verify no server: every TLS
  connection of the agent (kubeclient, the http and stream sinks) passes a context the agent built itself
  from the system's CAs, only when it needs one. The environment is restored right after the import.
  aiohttp.web's type table for file responses is built from Python's own table, not the system's
  mime.types (0.4 MB): the agent serves no file.
- The event loop's error reports: an accept() failing with EMFILE is reported by asyncio with a full
  traceback on every retry; these reports are logged without traceback, at most once per
  :data:`LOOP_ERROR_LOG_INTERVAL` per kind, with the number left out.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import logging
import os
import resource
import sys
import time
from typing import Any

log = logging.getLogger("nodeagent.runtime")

GC_THRESHOLD = 10_000  # allocations between young-generation collections (CPython's default: 700)
LOOP_ERROR_LOG_INTERVAL = 10.0  # seconds between two log lines for the same kind of loop error
MALLOC_ARENAS = 2  # glibc arenas: the main one and one the worker threads share
_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # the same
# The log shipper's large buffers (reads, a batch's JSON text and bytes: a few MB each) come from the
# heap up to this size instead of fresh mmap()s: each fresh page is a page fault and a zeroed page, which
# cost a sixth of the CPU time of shipping a backlog. Up to LARGE_BUFFER_KEEP of free heap stays mapped
# while busy (the shipper trims it when a backlog is over: idle, or a batch that did not fill).
LARGE_BUFFER_BYTES = 32 * 1024 * 1024
LARGE_BUFFER_KEEP = 64 * 1024 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def skip_heavy_extensions() -> None:
    """Call before aiohttp is imported; an explicit setting in the environment wins."""
    os.environ.setdefault("FROZENLIST_NO_EXTENSIONS", "1")  # frozenlist's documented switch


_CA_LOCATIONS = ("SSL_CERT_FILE", "SSL_CERT_DIR")  # OpenSSL reads them at each load of the default CAs


def import_aiohttp() -> None:
    """Import aiohttp without its import-time contexts loading the system's CAs (see above).

    Call before any thread starts (the environment is process-wide) and before aiohttp is imported
    elsewhere; if it already was, nothing is done.
    """
    if "aiohttp" in sys.modules:
        return
    import mimetypes

    saved = {name: os.environ.get(name) for name in _CA_LOCATIONS}
    known_files = mimetypes.knownfiles
    try:
        for name in _CA_LOCATIONS:
            os.environ[name] = os.devnull  # no certificate in it, and no file can be under it
        # aiohttp.web's file responses build their type table at import from the system's mime.types
        # (0.4 MB resident); the agent serves no file: Python's built-in table is enough.
        mimetypes.knownfiles = []
        import aiohttp.web  # noqa: F401
    finally:
        mimetypes.knownfiles = known_files
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_malloc_arenas() -> None:
    """Call first, before any thread starts: arenas made before stay."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


_keeping_large_buffers = False  # set by reuse_large_buffers: free heap is then kept on purpose


def reuse_large_buffers() -> None:
    """Serve allocations up to LARGE_BUFFER_BYTES from the heap and keep freed ones (see above)."""
    global _keeping_large_buffers
    libc = _glibc()
    if libc is not None:
        _keeping_large_buffers = True
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, LARGE_BUFFER_KEEP)


def trim_malloc() -> None:
    """Give glibc's free heap memory back to the kernel."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def release_after_scrape() -> None:
    """Call when a scrape's page is rendered: the collectors' transient objects are freed, and without a
    trim glibc keeps their pages (0.6 MB more RSS after 200 scrapes of each kind, for about 0.15 ms per
    scrape). Not while the log shipper keeps free heap for its buffers on purpose: it trims by itself."""
    if not _keeping_large_buffers:
        trim_malloc()


def settle_after_startup() -> None:
    """Call once, when start-up is complete (the server listens, the jobs are built)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    trim_malloc()


def raise_open_file_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit", extra={"soft": soft, "hard": hard, "err": str(exc)})
        return soft
    log.info("raised the open-file limit", extra={"from": soft, "to": hard})
    return hard


class _RateLimitedLoopErrors:
    """A loop exception handler logging each kind of error (its message) at most once per interval."""

    def __init__(self, interval: float = LOOP_ERROR_LOG_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")[:200]
        now = time.monotonic()
        if now - self._last.get(message, -self.interval) < self.interval:
            self._suppressed[message] = self._suppressed.get(message, 0) + 1
            return
        if len(self._last) > 100:  # kinds are few; never let odd messages grow this
            self._last.clear()
        self._last[message] = now
        exc = context.get("exception")
        log.error(
            message,
            # A bug keeps its traceback (once per interval); resource errors (EMFILE...) need none.
            exc_info=exc if isinstance(exc, BaseException) and not isinstance(exc, OSError) else None,
            extra={
                "err": repr(exc)[:200] if exc is not None else "",
                "suppressed": self._suppressed.pop(message, 0),
            },
        )


def quiet_loop_errors(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_exception_handler(_RateLimitedLoopErrors())
