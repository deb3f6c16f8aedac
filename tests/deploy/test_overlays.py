"""The example overlays (image, Loki, node_exporter migration), the one place for port and namespace, and
where the DaemonSet's config starts reading logs (pod logs from the head, host logs from the tail)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeagent.agent import plan_agent
from nodeagent.cli import build_parser, resolve_from_args
from nodeagent.config import settings_table
from nodeagent.config.logs import parse_logs_config
from nodeagent.logs.sinks import make_sink
from tests.conftest import ROOT, free_port
from tests.deploy.conftest import EXAMPLES, MANIFESTS, find, rendered_id

EXAMPLE_IDS = [rendered_id(e) for e in EXAMPLES]
LOKI = ROOT / "examples" / "loki"
ELASTICSEARCH = ROOT / "examples" / "elasticsearch"
MIGRATION = ROOT / "examples" / "node-exporter-migration"
DEFAULT_PORT = 9100
SHIP_TIMEOUT = 20


def metrics_ports(objects: list[dict[str, Any]]) -> dict[str, int]:
    """Every place of a rendering that names the agent's port."""
    daemonset, service = find(objects, "DaemonSet", "nodeagent"), find(objects, "Service", "nodeagent")
    [container] = daemonset["spec"]["template"]["spec"]["containers"]
    [listen] = [a for a in container["args"] if a.startswith("--web.listen-address=")]
    [container_port] = [p for p in container["ports"] if p["name"] == "metrics"]
    [service_port] = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    return {
        "--web.listen-address": int(listen.rsplit(":", 1)[1]),
        "containerPort": container_port["containerPort"],
        "Service port": service_port["port"],
        "prometheus.io/port": int(service["metadata"]["annotations"]["prometheus.io/port"]),
    }


def test_the_examples() -> None:
    assert {
        "examples/elasticsearch",
        "examples/loki",
        "examples/node-exporter-migration",
        "examples/prometheus-operator",
    } <= set(EXAMPLE_IDS)


@pytest.mark.parametrize("rendering", EXAMPLE_IDS)
def test_examples_pull_the_image_from_a_registry(
    rendering: str, all_renderings: dict[str, list[dict[str, Any]]]
) -> None:
    """The base's `nodeagent:0.1.0` exists in no registry (ImagePullBackOff); every example names one."""
    [container] = find(all_renderings[rendering], "DaemonSet")["spec"]["template"]["spec"]["containers"]
    registry, _, path = container["image"].partition("/")
    assert "." in registry and path.startswith("nodeagent:"), container["image"]


@pytest.mark.parametrize("rendering", ["manifests", *EXAMPLE_IDS])
def test_port_is_the_same_everywhere(rendering: str, all_renderings: dict[str, list[dict[str, Any]]]) -> None:
    ports = metrics_ports(all_renderings[rendering])
    assert len(set(ports.values())) == 1, ports
    if rendering != "examples/node-exporter-migration":
        assert set(ports.values()) == {DEFAULT_PORT}
    # The config file names no port: the flag would win anyway, and a second place could disagree.
    config = yaml.safe_load(find(all_renderings[rendering], "ConfigMap")["data"]["config.yaml"])
    assert "listen-address" not in (config.get("web") or {})


def test_migration_overlay_moves_off_node_exporters_port(
    all_renderings: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    settings = yaml.safe_load((MIGRATION / "settings.yaml").read_text())
    port = int(settings["data"]["port"])
    assert port != DEFAULT_PORT
    objects = all_renderings["examples/node-exporter-migration"]
    assert set(metrics_ports(objects).values()) == {port}
    assert not [o for o in objects if o["metadata"]["name"] == "nodeagent-settings"], "local config applied"
    # The agent takes the rendered command line (and config) as it is.
    [container] = find(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    config = tmp_path / "config.yaml"
    config.write_text(find(objects, "ConfigMap")["data"]["config.yaml"])
    args = [a.replace("/etc/nodeagent/config.yaml", str(config)) for a in container["args"]]
    table = settings_table()
    resolved = resolve_from_args(build_parser("run", table).parse_args(args), table)
    plan_agent(resolved)
    assert resolved["web.listen-address"] == f":{port}"


def test_loki_overlay_is_the_base_config_but_for_its_sink(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    shipped = find(all_renderings["examples/loki"], "ConfigMap")["data"]["config.yaml"]
    assert shipped == (LOKI / "config.yaml").read_text()
    loki, base = yaml.safe_load(shipped), yaml.safe_load((MANIFESTS / "config.yaml").read_text())
    loki_sinks, base_sinks = loki["logs"].pop("sinks"), base["logs"].pop("sinks")
    assert loki == base
    assert base_sinks == [{"type": "stdout"}]
    [sink] = parse_logs_config({**loki["logs"], "sinks": loki_sinks}, environ={}).sinks
    assert sink.type == "loki"
    assert sink.options["url"] == "http://loki-gateway.loki.svc.cluster.local"


def test_elasticsearch_overlay_is_the_base_config_but_for_its_sink_and_mounts_its_secret(
    all_renderings: dict[str, list[dict[str, Any]]],
) -> None:
    objects = all_renderings["examples/elasticsearch"]
    shipped = find(objects, "ConfigMap")["data"]["config.yaml"]
    assert shipped == (ELASTICSEARCH / "config.yaml").read_text()
    config, base = yaml.safe_load(shipped), yaml.safe_load((MANIFESTS / "config.yaml").read_text())
    sinks = config["logs"].pop("sinks")
    base["logs"].pop("sinks")
    assert config == base
    [spec] = parse_logs_config({**config["logs"], "sinks": sinks}, environ={}).sinks
    assert spec.type == "elasticsearch"
    sink = make_sink({"type": spec.type, **spec.options}, name="es")  # the options are valid
    assert sink.bulk_url.startswith("https://logging-es-http.elastic.svc:9200/_bulk?")  # type: ignore[attr-defined]
    # The files the sink reads are in the Secret volume, mounted read-only; the dead letters go to the
    # state directory's hostPath.
    pod = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "elasticsearch"]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == "elasticsearch"]
    assert volume["secret"]["secretName"] == "nodeagent-elasticsearch"
    for key in ("api_key_file",):
        assert spec.options[key].startswith(mount["mountPath"] + "/")
    assert spec.options["tls"]["ca_file"].startswith(mount["mountPath"] + "/")
    state = [
        m["mountPath"] for m in container["volumeMounts"] if m["mountPath"] == config["logs"]["state_dir"]
    ]
    assert state and spec.options["dead_letter_file"].startswith(state[0] + "/")


# ------------------------------------------------------------------------------------ where reading starts


def test_daemonset_reads_from_the_tail_like_the_embedded_default() -> None:
    inputs = yaml.safe_load((MANIFESTS / "config.yaml").read_text())["logs"]["inputs"]
    assert {i["name"]: i["read_from"] for i in inputs} == {
        "pods": "tail",
        "system": "tail",
        "node-services": "tail",
    }
    default = yaml.safe_load((ROOT / "nodeagent/logs/default.yaml").read_text())["inputs"]
    assert {i["read_from"] for i in default} == {"tail"}


def test_pod_log_written_before_the_agent_starts_is_shipped_whole(tmp_path: Path) -> None:
    """What a restart looks like to a pod started while the agent was down: its log exists, with no
    checkpoint entry, and was created after the checkpoint file was last written. The DaemonSet's config
    (paths moved under tmp_path) ships it from its first line, and starts host logs at their end."""
    root = tmp_path / "node"
    syslog = root / "var/log/syslog"
    syslog.parent.mkdir(parents=True)
    syslog.write_text("an old host line\n")
    state = tmp_path / "state"
    state.mkdir()
    checkpoint = state / "logs-checkpoints.json"
    checkpoint.write_text('{"version":1,"files":[]}\n')  # the agent ran before, had nothing to keep
    after_syslog = syslog.stat().st_ctime_ns + 1
    os.utime(checkpoint, ns=(after_syslog, after_syslog))
    pod_log = root / "var/log/pods/shop_web-1_0c0ffee0/web/0.log"
    pod_log.parent.mkdir(parents=True)
    pod_log.write_text(
        "2026-11-30T10:00:00.000000001Z stderr F panic: the first line\n"
        "2026-11-30T10:00:00.000000002Z stderr F the second line\n"
    )
    assert pod_log.stat().st_ctime_ns >= after_syslog
    config = yaml.safe_load((MANIFESTS / "config.yaml").read_text())
    logs = config["logs"]
    logs["state_dir"] = str(state)
    logs["inputs"] = [source for source in logs["inputs"] if source.get("type") != "journald"]  # files only
    for source in logs["inputs"]:
        source["paths"] = [str(root) + path for path in source["paths"]]
    out = tmp_path / "out.jsonl"
    logs["sinks"] = [{"type": "file", "path": str(out)}]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    listen = f"--web.listen-address=127.0.0.1:{free_port()}"
    agent = subprocess.Popen(
        [sys.executable, "-m", "nodeagent", "run", f"--config={config_file}", "--no-metrics", listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NODE_NAME": "test-node"},
    )
    try:
        wanted = {"panic: the first line", "the second line", "a new host line"}
        deadline = time.monotonic() + SHIP_TIMEOUT
        appended = False
        while not wanted <= (messages := shipped_messages(out)):
            if not appended and "the second line" in messages:  # the agent is up: the host log grows
                with syslog.open("a") as log:
                    log.write("a new host line\n")
                appended = True
            assert agent.poll() is None, f"agent exited {agent.returncode}"
            assert time.monotonic() < deadline, f"not shipped: {wanted - messages}"
            time.sleep(0.1)
        assert "an old host line" not in messages
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=10)
    assert agent.returncode == 0, stderr[-3000:]


def shipped_messages(out: Path) -> set[str]:
    if not out.exists():
        return set()
    return {json.loads(line)["message"] for line in out.read_text().splitlines() if line.endswith("}")}
