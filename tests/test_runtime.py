"""nodeagent.runtime: the open-file limit, the event loop's error reports and glibc's malloc arenas."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nodeagent import runtime


def test_loop_errors_are_logged_once_per_interval_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    handler = runtime._RateLimitedLoopErrors(interval=60)
    loop = asyncio.new_event_loop()
    try:
        caplog.set_level(logging.ERROR, logger="nodeagent.runtime")
        for _ in range(1000):  # asyncio reports EMFILE on every accept retry
            handler(
                loop,
                {"message": "socket.accept() out of system resource", "exception": OSError(24, "EMFILE")},
            )
        handler(loop, {"message": "another kind", "exception": RuntimeError("bug")})
    finally:
        loop.close()
    accept_records = [r for r in caplog.records if r.getMessage().startswith("socket.accept()")]
    assert len(accept_records) == 1 and accept_records[0].exc_info is None
    bug = [r for r in caplog.records if r.getMessage() == "another kind"]
    assert len(bug) == 1 and bug[0].exc_info is not None  # a bug keeps its traceback


def test_the_open_file_limit_is_raised_to_the_hard_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"now": (256, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda which, value: limits.__setitem__("now", value))
    assert runtime.raise_open_file_limit() == 4096
    assert limits["now"] == (4096, 4096)
    assert runtime.raise_open_file_limit() == 4096  # already there: nothing to do


_ARENAS_AFTER_THREADS = """
import ctypes, sys, threading
from nodeagent import runtime
if sys.argv[1] == "limited":
    runtime.limit_malloc_arenas()
barrier = threading.Barrier(8)
def allocate():
    barrier.wait()  # all threads allocate at once, so that glibc gives each its own arena if allowed
    blocks = [bytearray(200_000) for _ in range(20)]
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
runtime.trim_malloc()
ctypes.CDLL(None).malloc_stats()
"""


def test_malloc_arenas_are_limited_before_threads_start() -> None:
    def arenas(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _ARENAS_AFTER_THREADS, mode], capture_output=True, text=True, check=True
        )
        return done.stderr.count("Arena ")

    assert arenas("limited") <= runtime.MALLOC_ARENAS
    assert arenas("default") > runtime.MALLOC_ARENAS  # the limit is what makes the difference


_IMPORT_AIOHTTP = """
import json, mimetypes, os, ssl, sys
from nodeagent import runtime
known_files = list(mimetypes.knownfiles)
runtime.import_aiohttp()
import aiohttp.connector
from aiohttp.web_fileresponse import CONTENT_TYPES
print(json.dumps({
    "known_files_restored": mimetypes.knownfiles == known_files,
    "types": CONTENT_TYPES.guess_type("page.html")[0],
    "aiohttp_cas": aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "own_cas": ssl.create_default_context().cert_store_stats()["x509_ca"],
    "env": {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")},
}))
"""


def test_aiohttp_is_imported_without_the_system_cas_or_mime_types_and_the_environment_is_restored(
    pki: Path,
) -> None:
    def run(env: dict[str, str]) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_AIOHTTP],
            capture_output=True,
            text=True,
            check=True,
            env={key: value for key, value in os.environ.items() if not key.startswith("SSL_CERT_")} | env,
        )
        return dict(json.loads(done.stdout))

    # The "system" trust store is the test CA here: aiohttp's default context has none of it, a context
    # the agent builds afterwards has it, and the variables are as they were.
    given = run({"SSL_CERT_FILE": str(pki / "ca.crt")})
    assert given == {
        "known_files_restored": True,  # aiohttp.web is imported, with Python's built-in types only
        "types": "text/html",
        "aiohttp_cas": 0,
        "own_cas": 1,
        "env": {"SSL_CERT_FILE": str(pki / "ca.crt"), "SSL_CERT_DIR": None},
    }
    unset = run({})
    assert unset["aiohttp_cas"] == 0 and unset["env"] == {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}
