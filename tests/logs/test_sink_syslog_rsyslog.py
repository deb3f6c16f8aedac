"""Syslog sink against a real Debian rsyslogd (imtcp, octet-counted RFC 5424), run unprivileged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeagent.logs.sinks import make_sink
from tests.logs.rsyslogd import Rsyslogd, record

pytestmark = pytest.mark.peer

# One line per message; '|' separates the fields we check. rsyslog escapes control characters in the
# message on receipt (a newline becomes #012), which also proves the framing kept the message whole.
CONFIG = """
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{port_file}")
template(name="fields" type="string"
         string="%hostname%|%app-name%|%syslogfacility%|%syslogseverity%|%timereported:::date-rfc3339%|%procid%|%msgid%|%structured-data%|%msg%\\n")
*.* action(type="omfile" file="{output}" template="fields")
"""


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslogd]:
    server = Rsyslogd(tmp_path, CONFIG, port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_rsyslog_receives_rfc5424_with_structured_data(rsyslog: Rsyslogd) -> None:
    sink = make_sink(
        {"type": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "facility": "local3"}, name="syslog"
    )
    tricky = {"namespace": 'we"ird\\ns]', "pod": "api-6f7c9-x2x9z", "container": "api"}
    normal = {"namespace": "prod", "pod": "api-6f7c9-x2x9z", "container": "api"}
    batch = [
        record("GET /healthz 200", "stdout", normal),
        record("panic: boom\ngoroutine 1 [running]:", "stderr", tricky),
        record("host message ünïcödé", None, None),
        record("", "stdout", None),
    ]
    await sink.start()
    try:
        await sink.send(batch)
    finally:
        await sink.close()
    lines = await asyncio.to_thread(rsyslog.lines, len(batch))
    assert lines == [
        "worker-7|api|19|6|2026-01-02T03:04:05.123456Z|-|-|"
        '[k8s@32473 namespace="prod" pod="api-6f7c9-x2x9z" container="api"]|GET /healthz 200',
        "worker-7|api|19|3|2026-01-02T03:04:05.123456Z|-|-|"
        '[k8s@32473 namespace="we\\"ird\\\\ns\\]" pod="api-6f7c9-x2x9z" container="api"]|'
        "panic: boom#012goroutine 1 [running]:",
        "worker-7|nodeagent|19|6|2026-01-02T03:04:05.123456Z|-|-|-|host message ünïcödé",
        "worker-7|nodeagent|19|6|2026-01-02T03:04:05.123456Z|-|-|-|",
    ]


async def test_rsyslog_many_messages_over_one_connection_in_order(rsyslog: Rsyslogd) -> None:
    sink = make_sink(
        {"type": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "app_name": "bulk"}, name="syslog"
    )
    await sink.start()
    try:
        for start in range(0, 2000, 500):
            await sink.send([record(f"seq={n}", "stdout", None) for n in range(start, start + 500)])
    finally:
        await sink.close()
    lines = await asyncio.to_thread(rsyslog.lines, 2000)
    assert [line.rsplit("|", 1)[1] for line in lines] == [f"seq={n}" for n in range(2000)]
    assert all(line.startswith("worker-7|bulk|1|6|") for line in lines)
