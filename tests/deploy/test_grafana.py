"""deploy/grafana/*.json: every query of each dashboard, run by a real Prometheus, returns data.

nodeagent.json: Prometheus scrapes a real agent whose log pipeline ships, retries and drops.
placement.json: Prometheus scrapes the real placement monitor watching the fake API server's recorded cluster.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, free_port, running_prometheus

pytestmark = pytest.mark.peer

DASHBOARD = ROOT / "deploy" / "grafana" / "nodeagent.json"
PLACEMENT_DASHBOARD = ROOT / "deploy" / "grafana" / "placement.json"
DASHBOARD_VARIABLES = {
    DASHBOARD: {"datasource", "instance"},
    PLACEMENT_DASHBOARD: {"datasource", "namespace"},
}
# What Grafana puts in for the template variables: every node/namespace, a rate window of a few scrapes.
VARIABLES = {"$instance": ".*", "$namespace": ".*", "$__rate_interval": "30s"}
START_TIMEOUT = 30
DATA_TIMEOUT = 60


def dashboard_queries(path: Path = DASHBOARD) -> dict[str, str]:
    """panel title (and refId) -> PromQL expression."""
    dashboard = json.loads(path.read_text())
    return {
        f"{panel['title']} {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


@pytest.mark.parametrize("path", DASHBOARD_VARIABLES, ids=lambda p: p.name)
def test_dashboard_uses_its_datasource_variable(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert DASHBOARD_VARIABLES[path] <= variables
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


class _Sink(BaseHTTPRequestHandler):
    """/reject answers 400 (the agent drops the batch); /flaky 503 to its first request, then 200."""

    flaky_calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/reject":
            status = 400
        else:
            type(self).flaky_calls += 1
            status = 503 if type(self).flaky_calls == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_sinks() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not answer {url}"
            time.sleep(0.2)


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_every_dashboard_query_returns_data(tmp_path: Path, http_sinks: str) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    app_log = logs_dir / "app.log"
    app_log.write_text("".join(f"line {n}\n" for n in range(100)))
    agent_port = free_port()
    config = {
        "logs": {
            "state_dir": str(tmp_path / "state"),
            "batch_timeout": "100ms",
            "retry_initial_backoff": "100ms",
            "inputs": [{"name": "app", "paths": [str(logs_dir / "*.log")], "read_from": "head"}],
            "sinks": [
                {"type": "file", "path": str(tmp_path / "out.jsonl")},
                {"type": "http", "name": "rejecting", "url": f"{http_sinks}/reject"},
                {"type": "http", "name": "flaky", "url": f"{http_sinks}/flaky", "buffer": {"type": "disk"}},
            ],
        }
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "nodeagent",
                        "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}],
                    }
                ],
            }
        )
    )
    agent_args = [f"--config={tmp_path / 'agent.yaml'}", f"--web.listen-address=127.0.0.1:{agent_port}"]
    with (
        (tmp_path / "agent.log").open("w") as agent_log,
        subprocess.Popen(
            [sys.executable, "-m", "nodeagent", "run", *agent_args],
            stdout=subprocess.DEVNULL,
            stderr=agent_log,
        ) as agent,
        running_prometheus(tmp_path / "prometheus.yml", tmp_path) as (prometheus_port, prometheus),
    ):
        try:
            prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            wait_for(f"http://127.0.0.1:{agent_port}/readyz", agent, "the agent")
            wait_for(f"{prometheus_url}/-/ready", prometheus, "prometheus")
            all_queries_return_data(prometheus_url, app_log, tmp_path / "agent.log")
        finally:
            agent.terminate()


def all_queries_return_data(
    prometheus_url: str,
    app_log: Path | None,
    agent_log: Path,
    dashboard: Path = DASHBOARD,
) -> None:
    queries = dashboard_queries(dashboard)
    for variable, value in VARIABLES.items():
        queries = {title: expr.replace(variable, value) for title, expr in queries.items()}
    deadline = time.monotonic() + DATA_TIMEOUT
    while True:
        if app_log is not None:
            with app_log.open("a") as log:  # keep the pipeline busy
                log.write(f"line at {time.time()}\n")
        empty = sorted(title for title, expr in queries.items() if not query(prometheus_url, expr))
        if not empty:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no data within {DATA_TIMEOUT}s for: {empty}\n{agent_log.read_text()[-2000:]}")
        time.sleep(1)


async def test_every_placement_dashboard_query_returns_data(tmp_path: Path) -> None:
    """The monitor watches the recorded cluster (which has blocked nodes), Prometheus scrapes it."""
    from tests.placement.fake_apiserver import recorded_cluster, serving

    monitor_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "nodeagent-placement-monitor",
                        "static_configs": [{"targets": [f"127.0.0.1:{monitor_port}"]}],
                    }
                ],
            }
        )
    )
    async with serving(recorded_cluster(), tmp_path) as kubeconfig:
        with (tmp_path / "monitor.log").open("w") as monitor_log:
            monitor = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "nodeagent", "check-placement", "--watch",
                "--kubeconfig", str(kubeconfig), "--context", "test",
                "--metrics-address", f"127.0.0.1:{monitor_port}",
                cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=monitor_log,
            )  # fmt: skip
            try:
                with running_prometheus(tmp_path / "prometheus.yml", tmp_path) as (
                    prometheus_port,
                    prometheus,
                ):
                    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
                    await asyncio.to_thread(wait_for, f"{prometheus_url}/-/ready", prometheus, "prometheus")
                    # Blocking queries in a thread: the fake API server runs on this loop.
                    await asyncio.to_thread(
                        all_queries_return_data,
                        prometheus_url,
                        None,
                        tmp_path / "monitor.log",
                        PLACEMENT_DASHBOARD,
                    )
            finally:
                monitor.terminate()
                await monitor.wait()
