"""Secrets in the HTTP sinks (issue 12, item 9): never printed, tokens and passwords from files re-read
on change, and a URL with credentials plus an Authorization header refused before anything starts.

Against the local test servers of test_sink_http.py (generic HTTP) and test_sink_loki.py (Loki).
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nodeagent.config import ConfigError
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks._http import ERROR_BODY_BYTES
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink
from tests.conftest import free_port
from tests.logs import test_sink_http, test_sink_loki
from tests.logs.test_sink_http import Collector, record
from tests.logs.test_sink_loki import FakeLoki

collector = test_sink_http.collector  # the servers of those modules, as fixtures here
loki = test_sink_loki.loki

TOKEN = "tok-3f9a1c7e5d"
PASSWORD = "hunter2-pw"


@contextlib.asynccontextmanager
async def started(spec: dict[str, Any]) -> AsyncIterator[Sink]:
    sink = make_sink(spec, name="s")
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


async def deliver(spec: dict[str, Any]) -> None:
    async with started(spec) as sink:
        await sink.send([record("x")])


def with_credentials(url: str, userinfo: str) -> str:
    return url.replace("http://", f"http://{userinfo}@", 1)


async def test_url_credentials_are_not_in_retry_messages(collector: tuple[Collector, str]) -> None:
    fake, url = collector
    fake.answer = (503, "try later")
    with pytest.raises(RetryableSinkError) as error:
        await deliver({"type": "http", "url": with_credentials(url, f"user:{PASSWORD}")})
    assert PASSWORD not in str(error.value)
    assert "http://user:***@127.0.0.1" in str(error.value)
    # The credentials were still used.
    assert (
        fake.requests[0].headers["Authorization"]
        == "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    )


async def test_url_credentials_are_not_in_connection_errors() -> None:
    url = f"http://{TOKEN}@127.0.0.1:{free_port()}/x"
    with pytest.raises(RetryableSinkError) as error:
        await deliver({"type": "loki", "url": url, "timeout": "2s"})
    assert TOKEN not in str(error.value) and "http://***@127.0.0.1" in str(error.value)


@pytest.mark.parametrize(
    "auth",
    [
        {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        {"bearer_token": TOKEN},
        {"headers": {"X-Api-Key": TOKEN}},
    ],
)
async def test_an_echoed_credential_is_cut_and_redacted(
    collector: tuple[Collector, str], auth: dict[str, Any]
) -> None:
    fake, url = collector
    header = next(iter(auth.get("headers", {"Authorization": f"Bearer {TOKEN}"})))
    fake.answer = (401, f"denied, you sent {header}: Bearer {TOKEN} " + "padding " * 200 + TOKEN)
    with pytest.raises(PermanentSinkError) as error:
        await deliver({"type": "http", "url": url, **auth})
    message = str(error.value)
    assert TOKEN not in message
    assert "***" in message
    body = message.split("answered 401: ", 1)[1]
    assert len(body.encode()) <= ERROR_BODY_BYTES + 3  # "..."


async def test_an_echoed_basic_password_is_redacted(loki: tuple[FakeLoki, str]) -> None:
    fake, url = loki
    basic = base64.b64encode(f"u:{PASSWORD}".encode()).decode()
    fake.fail_with = (500, f"bad auth Basic {basic} for password {PASSWORD}")
    with pytest.raises(RetryableSinkError) as error:
        await deliver({"type": "loki", "url": url, "basic_auth": {"username": "u", "password": PASSWORD}})
    assert basic not in str(error.value) and PASSWORD not in str(error.value)


@pytest.mark.parametrize("sink_type", ["http", "loki"])
@pytest.mark.parametrize(
    "auth",
    [
        {"headers": {"authorization": "Bearer x"}},
        {"bearer_token": "x"},
        {"basic_auth": {"username": "u", "password": "p"}},
        {"username": "u", "password": "p"},
    ],
)
def test_url_credentials_plus_an_authorization_are_refused(sink_type: str, auth: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as error:
        make_sink({"type": sink_type, "url": f"http://user:{PASSWORD}@127.0.0.1:1/", **auth}, name="s")
    assert error.value.key == "url"
    assert "credentials in the URL and an Authorization header" in str(error.value)
    assert PASSWORD not in str(error.value)


@pytest.mark.parametrize(
    ("auth", "key", "words"),
    [
        ({"bearer_token": "a", "bearer_token_file": "/f"}, "bearer_token_file", "not both"),
        ({"bearer_token": "a", "basic_auth": {"username": "u"}}, "bearer_token", "not both"),
        ({"basic_auth": {"username": "u"}, "username": "v"}, "basic_auth", "not both"),
        ({"basic_auth": {"password": "p"}}, "basic_auth", "'username' is required"),
        (
            {"basic_auth": {"username": "u", "password": "p", "password_file": "/f"}},
            "basic_auth.password_file",
            "",
        ),
        ({"headers": {"Authorization": "Bearer a"}, "bearer_token": "b"}, "headers", "only one"),
    ],
)
def test_one_source_of_credentials(auth: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_sink({"type": "http", "url": "http://127.0.0.1:1/", **auth}, name="s")
    assert error.value.key == key and words in error.value.message


async def test_bearer_token_file_is_reread_when_it_changes(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    fake, url = collector
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    async with started({"type": "http", "url": url, "bearer_token_file": str(token_file)}) as sink:
        await sink.send([record("a")])
        token_file.write_text("second-token-longer\n")  # a new size: changed even within one mtime tick
        await sink.send([record("b")])
        os.utime(token_file, ns=(1, 1))  # same content, other mtime: read again, same header
        await sink.send([record("c")])
    assert [r.headers["Authorization"] for r in fake.requests] == [
        "Bearer first-token",
        "Bearer second-token-longer",
        "Bearer second-token-longer",
    ]


async def test_basic_auth_password_file_is_reread_and_never_printed(
    loki: tuple[FakeLoki, str], tmp_path: Path
) -> None:
    fake, url = loki
    password_file = tmp_path / "pw"
    password_file.write_text("one\n")
    spec = {"type": "loki", "url": url, "basic_auth": {"username": "u", "password_file": str(password_file)}}
    async with started(spec) as sink:
        await sink.send([record("a")])
        password_file.write_text(f"{PASSWORD}\n")
        fake.fail_with = (500, f"echo {PASSWORD}")
        with pytest.raises(RetryableSinkError) as error:
            await sink.send([record("b")])
        assert PASSWORD not in str(error.value)
        password_file.unlink()
        with pytest.raises(RetryableSinkError, match="cannot read password_file"):
            await sink.send([record("c")])
    expected = ["Basic " + base64.b64encode(f"u:{p}".encode()).decode() for p in ("one", PASSWORD)]
    assert [r.headers["Authorization"] for r in fake.requests] == expected


def test_a_syslog_address_with_a_user_part_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as error:
        make_sink({"type": "syslog", "address": f"{TOKEN}@127.0.0.1:514"}, name="s")
    assert error.value.key == "address" and TOKEN not in str(error.value)
