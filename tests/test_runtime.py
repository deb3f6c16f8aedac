"""nodeagent.runtime: the open-file limit and the event loop's error reports."""

from __future__ import annotations

import asyncio
import logging
import resource

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
