"""A run imports what its enabled jobs need and nothing else (each module left out is RSS on every node:
the log shipper ~4 MB, PyYAML ~1 MB, the collectors not enabled ~1.2 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port
from tests.test_hostile_scrape import Agent

# Runs the agent in-process until it listens, then stops it and prints the modules it had imported.
_RUN_AND_LIST_MODULES = """
import asyncio, json, sys
from nodeagent import cli
from nodeagent.agent import plan_agent, run_agent

table = cli.settings_table()
args = cli.build_parser("run", table).parse_args(["run", *sys.argv[1:]])
plan = plan_agent(cli.resolve_from_args(args, table))

async def main():
    stop, started = asyncio.Event(), asyncio.Event()
    agent = asyncio.create_task(run_agent(plan, stop=stop, started=started, handle_signals=False))
    await started.wait()
    stop.set()
    return await agent

assert asyncio.run(main()) == 0
print(json.dumps(sorted(sys.modules)))
"""


def modules_of_a_run(*flags: str) -> set[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN_AND_LIST_MODULES,
            f"--web.listen-address=127.0.0.1:{free_port()}",
            *flags,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_metrics_only_run_imports_only_its_collectors_and_no_log_shipper() -> None:
    modules = modules_of_a_run("--no-logs", "--collector.disable-defaults", "--collector.cpu")
    assert "nodeagent.metrics.cpu" in modules
    left_out = {
        "nodeagent.metrics.meminfo",  # enabled by default, not here
        "nodeagent.metrics.perf",
        "nodeagent.logs.shipper",
        "nodeagent.config.logs",
        "nodeagent.placement",
        "nodeagent.kubeclient",
        "yaml",
    }
    assert modules & left_out == set()


def test_a_run_maps_no_cpp_runtime(tmp_path: Path) -> None:
    """frozenlist's C++ extension (it alone maps libstdc++, ~1.2 MB resident) is left out of a run."""
    agent = Agent(tmp_path, "--no-logs", "--collector.disable-defaults", "--collector.cpu")
    try:
        maps = Path(f"/proc/{agent.process.pid}/maps").read_text()
        assert "libssl" in maps  # the check can see shared objects at all
        assert "libstdc++" not in maps
    finally:
        agent.kill()


def test_a_log_run_imports_only_the_sinks_it_configures(tmp_path: Path) -> None:
    config = tmp_path / "nodeagent.yaml"
    config.write_text(f"""
logs:
  state_dir: {tmp_path / "state"}
  inputs:
    - name: files
      paths: ["{tmp_path}/*.log"]
  sinks:
    - {{type: file, path: {tmp_path / "out.jsonl"}}}
""")
    modules = modules_of_a_run("--no-metrics", "--config", str(config))
    assert "nodeagent.logs.sinks.file" in modules
    # (stdout, the embedded default's sink, is checked with the defaults: a small module.)
    others = {"elasticsearch", "forward", "http", "loki", "otlp", "relp", "syslog"}
    assert modules & {f"nodeagent.logs.sinks.{name}" for name in others} == set()
