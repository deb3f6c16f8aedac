"""Build the image with podman and run it the way the DaemonSet runs it.

The base image is a local stand-in for python:3.11-slim-bookworm (tests/deploy/podman.py). The container
gets exactly the DaemonSet's settings, read from the rendered manifest: its user, capabilities, read-only
root filesystem, no-new-privileges, host PID and network namespaces, the host's /proc, /sys and /
read-only, the ConfigMap, and its env and args. Only the host's /var/log, /var/lib/docker/containers and
the state directory are temporary directories standing in for the node's, and the listen address is
moved off port 9100.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nodeagent import __version__
from tests.conftest import free_port
from tests.deploy.conftest import find
from tests.deploy.podman import base_image, build_image, podman

pytestmark = pytest.mark.peer

IMAGE = "localhost/nodeagent:test"
BUILD_TIMEOUT = 600
READY_TIMEOUT = 60
SHIPPED_TIMEOUT = 30
STOP_GRACE = 5  # seconds podman waits after SIGTERM before SIGKILL: the agent must be gone by then
# What the pod's downward-API env resolves to in this run.
POD_FIELDS = {
    "spec.nodeName": "test-node",
    "metadata.name": "nodeagent-test",
    "metadata.namespace": "nodeagent",
    "metadata.uid": "0c0ffee0-0000-4000-8000-000000000001",
}


@pytest.fixture(scope="module")
def image() -> str:
    build_image(IMAGE, base_image(), __version__, BUILD_TIMEOUT)
    return IMAGE


def test_image_metadata(image: str) -> None:
    [info] = json.loads(podman("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["Entrypoint"] == ["nodeagent"]
    assert config["Cmd"] == ["run"]
    assert "9100/tcp" in config["ExposedPorts"]
    assert config["User"] == "65534:65534"
    assert "XDG_STATE_HOME=/var/lib" in config["Env"]  # the default user's state_dir: /var/lib/nodeagent
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"]


def test_image_has_no_build_tools(image: str) -> None:
    result = podman(
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        "command -v gcc cc pip pip3 /opt/nodeagent/bin/pip; ls /root/.cache 2>/dev/null; "
        "ls -A /etc/nodeagent 2>/dev/null",
        check=False,
    )
    assert result.stdout == "", result.stdout[:500]  # nor a config file: none is baked into the image


SLIM_PROBE = r"""
import pathlib, sys, sysconfig
site = pathlib.Path(sysconfig.get_path("purelib"))
for path in site.rglob("*"):
    relative = path.relative_to(site)
    if path.suffix == ".so":
        data = path.read_bytes()
        if b".symtab\0" in data or b".debug_info\0" in data:
            print("not stripped:", relative)
    elif path.suffix in (".pyi", ".pyx", ".pxd", ".c", ".h") or path.name in ("tests", "test"):
        print("development only:", relative)
    elif path.suffix == ".pyc" and ".opt-" in path.name:
        print("second bytecode level:", relative)
    elif path.suffix == ".py":
        compiled = path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
        if not compiled.is_file():
            print("no bytecode:", relative)
"""


def test_the_virtualenv_is_slim(image: str) -> None:
    """Stripped shared objects, nothing only development reads, exactly one compiled copy of each module."""
    result = podman(
        "run", "--rm", "--entrypoint", "/opt/nodeagent/bin/python", image, "-c", SLIM_PROBE, timeout=60
    )
    assert result.stdout == "", result.stdout[:2000]


def test_the_image_bytecode_is_used_on_a_read_only_root(image: str) -> None:
    """Every module of the venv the agent imports loads from its .pyc: nothing is compiled at each start
    (the root filesystem is read-only, so a stale .pyc would be recompiled in memory every time)."""
    result = podman(
        "run",
        "--rm",
        "--read-only",
        "--entrypoint",
        "/opt/nodeagent/bin/python",
        image,
        "-v",
        "-c",
        "import nodeagent.cli, nodeagent.agent, nodeagent.logs.pipeline, aiohttp, yaml, msgpack, psutil, "
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        timeout=60,
    )
    loaded = [
        line for line in result.stderr.splitlines() if line.startswith("# code object from '/opt/nodeagent/")
    ]
    assert len(loaded) > 100, result.stderr[-2000:]
    compiled = [line for line in loaded if not line.endswith(".pyc'")]
    assert compiled == []


def test_the_default_user_owns_the_default_state_directory(image: str) -> None:
    """Run as the image says, the log shipper's state_dir (/var/lib/nodeagent) is writable."""
    probe = (
        "from nodeagent.config.logs import default_state_dir; from nodeagent.logs.checkpoint import "
        "CheckpointStore; d = default_state_dir(); CheckpointStore(d / 'x.json').probe(); print(d)"
    )
    result = podman(
        "run",
        "--rm",
        "--entrypoint",
        "/opt/nodeagent/bin/python",
        image,
        "-c",
        probe,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "/var/lib/nodeagent"


def test_runs_under_any_uid_read_only_without_capabilities(image: str) -> None:
    """OpenShift-style arbitrary UID: one scrape of this host's /proc, nothing writable, no capabilities."""
    result = podman(
        "run",
        "--rm",
        "--user",
        "123456:0",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        image,
        "metrics",
        "--path.procfs=/proc",
        "--path.sysfs=/sys",
        "--no-logs",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = {family.name for family in text_string_to_metric_families(result.stdout)}
    assert {"node_memory_MemTotal_bytes", "node_cpu_seconds"} <= names


# ------------------------------------------------------------------------------------------- as a DaemonSet


@dataclass
class Node:
    """The temporary stand-ins for one node's writable or log directories."""

    var_log: Path
    docker_containers: Path
    state: Path
    config: Path


def run_args(
    daemonset: dict[str, Any], configmap: dict[str, Any], node: Node, port: int, name: str
) -> list[str]:
    """`podman run` arguments equivalent to the DaemonSet's pod (see the module docstring)."""
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = ["run", "-d", "--name", name, "--stop-signal=SIGTERM"]
    if pod.get("hostPID"):
        args.append("--pid=host")
    if pod.get("hostNetwork"):
        args.append("--network=host")
    pod_security, security = pod.get("securityContext", {}), container.get("securityContext", {})
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if user is not None:
        args += ["--user", f"{user}:{group if group is not None else 0}"]
    capabilities = security.get("capabilities", {})
    args += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
    args += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
    if security.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    if security.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]
    # podman applies its default seccomp profile, the counterpart of RuntimeDefault.
    seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile")
    assert seccomp == {"type": "RuntimeDefault"}

    stand_ins = {
        "/var/log": node.var_log,
        "/var/lib/docker/containers": node.docker_containers,
        "/var/lib/nodeagent": node.state,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit", "16Mi").replace("Mi", "m")
            args += ["--tmpfs", f"{mount['mountPath']}:rw,size={size}"]
            continue
        if "configMap" in volume:
            assert volume["configMap"]["name"] == configmap["metadata"]["name"]
            for key, text in configmap["data"].items():
                (node.config / key).write_text(text)
            source = node.config
        else:
            host_path = volume["hostPath"]["path"]
            source = Path(host_path) if host_path in ("/proc", "/sys", "/") else stand_ins[host_path]
        options = ["ro" if mount.get("readOnly") else "rw"]
        if mount.get("mountPropagation") == "HostToContainer":
            options.append("rslave")
        args += ["-v", f"{source}:{mount['mountPath']}:{','.join(options)}"]

    for variable in container.get("env", []):
        if "value" in variable:
            value = variable["value"]
        else:
            value = POD_FIELDS[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        args += ["-e", f"{variable['name']}={value}"]
    # Last flag wins: keep off the host's port 9100 (the DaemonSet uses the host network).
    return [*args, IMAGE, *container["args"], f"--web.listen-address=127.0.0.1:{port}"]


@dataclass
class Running:
    name: str
    url: str
    node: Node
    appended: dict[str, dict[str, Any]] = field(default_factory=dict)

    def logs(self) -> tuple[str, str]:
        result = podman("logs", self.name, check=False)
        return result.stdout, result.stderr

    def records(self) -> list[dict[str, Any]]:
        """What the stdout sink wrote: the JSON lines of the container's stdout."""
        found = []
        for line in self.logs()[0].splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    found.append(json.loads(line))
        return found

    def state(self) -> dict[str, Any]:
        [info] = json.loads(podman("inspect", self.name).stdout)
        return info["State"]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def agent(
    image: str, base_objects: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("node")
    node = Node(
        var_log=root / "var-log",
        docker_containers=root / "docker-containers",
        state=root / "state",
        config=root / "config",
    )
    for directory in (node.var_log, node.docker_containers, node.state, node.config):
        directory.mkdir()
    # A system log that exists before the agent starts: read from its end (read_from: tail).
    (node.var_log / "test.log").write_text("old line, before the agent started\n")
    port = free_port()
    name = f"nodeagent-test-{os.getpid()}"
    podman("rm", "-f", name, check=False)
    args = run_args(find(base_objects, "DaemonSet"), find(base_objects, "ConfigMap"), node, port, name)
    podman(*args)
    running = Running(name=name, url=f"http://127.0.0.1:{port}", node=node)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if not running.state()["Running"]:
                pytest.fail(
                    f"the agent exited early: {running.state()['ExitCode']}\n{running.logs()[1][-3000:]}"
                )
            try:
                if http_get(running.url + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/readyz not 200 within {READY_TIMEOUT}s\n{running.logs()[1][-3000:]}")
            time.sleep(0.2)
        yield running
    finally:
        podman("rm", "-f", "--time", "0", name, check=False)


def metric_samples(body: str) -> dict[str, list[Any]]:
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_metrics_are_the_hosts(agent: Running) -> None:
    status, body = http_get(agent.url + "/metrics")
    assert status == 200
    samples = metric_samples(body)
    # Host network namespace: every interface of this host is reported, not a container's eth0.
    net_dev = Path("/proc/net/dev").read_text().splitlines()[2:]
    host_devices = {line.split(":", 1)[0].strip() for line in net_dev}
    reported = {s.labels["device"] for s in samples["node_network_receive_bytes_total"]}
    assert host_devices <= reported
    # Host mount table through /host/proc/1 and /host/root: "/" is the host's root filesystem.
    host_root_type = next(
        line.split(" - ", 1)[1].split()[0]
        for line in Path("/proc/1/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    )
    root = [s for s in samples["node_filesystem_size_bytes"] if s.labels["mountpoint"] == "/"]
    assert [s.labels["fstype"] for s in root] == [host_root_type]
    assert host_root_type != "overlay"
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory = next(line for line in meminfo if line.startswith("MemTotal:"))
    assert samples["node_memory_MemTotal_bytes"][0].value == int(memory.split()[1]) * 1024


def test_healthz(agent: Running) -> None:
    assert http_get(agent.url + "/healthz")[0] == 200


def shipped(agent: Running) -> dict[str, dict[str, Any]]:
    """Append to a system log and add container logs (once per agent); the sink's records by message."""
    if agent.appended:
        return agent.appended
    var_log = agent.node.var_log
    with (var_log / "test.log").open("a") as log:
        log.write("first appended line\nsecond appended line\n")
    # A container log created after the start (read from its beginning), and the agent's own pod log,
    # which it must not read back.
    pod_dir = var_log / "pods" / "shop_web-7d9f_1234-5678" / "web"
    pod_dir.mkdir(parents=True)
    (pod_dir / "0.log").write_text("2026-11-27T10:00:00.000000001Z stdout F hello from a pod\n")
    own_uid = POD_FIELDS["metadata.uid"]
    own_dir = var_log / "pods" / f"nodeagent_nodeagent-test_{own_uid}" / "nodeagent"
    own_dir.mkdir(parents=True)
    (own_dir / "0.log").write_text("2026-11-27T10:00:00.000000002Z stdout F the agent's own line\n")

    wanted = {"first appended line", "second appended line", "hello from a pod"}
    deadline = time.monotonic() + SHIPPED_TIMEOUT
    while True:
        records = agent.records()
        if wanted <= {r["message"] for r in records}:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"not shipped within {SHIPPED_TIMEOUT}s: {wanted - {r['message'] for r in records}}\n"
                f"{agent.logs()[1][-3000:]}"
            )
        time.sleep(0.2)
    agent.appended = {r["message"]: r for r in records}
    return agent.appended


def test_appended_lines_come_out_of_the_sink(agent: Running) -> None:
    by_message = shipped(agent)
    assert by_message["first appended line"]["file"] == "/var/log/test.log"
    assert by_message["first appended line"]["node"] == "test-node"
    pod_record = by_message["hello from a pod"]
    assert pod_record["stream"] == "stdout"
    assert pod_record["kubernetes"]["namespace"] == "shop"
    assert pod_record["kubernetes"]["pod"] == "web-7d9f"
    assert pod_record["kubernetes"]["container"] == "web"
    assert "old line, before the agent started" not in by_message
    assert "the agent's own line" not in by_message


def checkpoint_offsets(state_dir: Path) -> dict[str, int]:
    """path -> committed offset, from whatever shape the checkpoint document has."""
    offsets: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("path"), str) and isinstance(node.get("offset"), int):
                offsets[node["path"]] = node["offset"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in state_dir.glob("*.json"):
        walk(json.loads(path.read_text()))
    return offsets


def test_stop_exits_cleanly_and_commits(agent: Running) -> None:
    """Runs last in this module: `podman stop` sends SIGTERM and would SIGKILL after STOP_GRACE seconds."""
    shipped(agent)  # something to commit
    podman("stop", "--time", str(STOP_GRACE), agent.name, timeout=STOP_GRACE + 30)
    state = agent.state()
    assert state["Running"] is False
    assert state["ExitCode"] == 0, (
        f"exit code {state['ExitCode']} (137 means SIGKILL)\n{agent.logs()[1][-3000:]}"
    )
    offsets = checkpoint_offsets(agent.node.state)
    assert offsets.get("/var/log/test.log") == (agent.node.var_log / "test.log").stat().st_size
    stderr = agent.logs()[1]
    assert "Traceback" not in stderr, stderr[-3000:]
