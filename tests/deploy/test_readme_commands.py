"""The README's two commands, verbatim, on a fresh Debian 12 and 13 with the system Python.

Each runs in a container from a debootstrap'd Debian root filesystem (tests/deploy/podman.py: minbase plus
python3) from which python3-venv and its pip wheels are removed first, as on a fresh install, on a copy of
this checkout. The first command must serve /metrics; the second must get through its set-up (Debian
peers, .venv with the test extra) into pytest's collection. pip inside reaches the package index this
machine's pip uses: its settings are passed as PIP_* variables, local index directories bind-mounted
read-only and the CA bundle this machine trusts (e.g. a proxy's) given as PIP_CERT.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.podman import HOST_CA_BUNDLE, base_image, podman

pytestmark = pytest.mark.peer

METRICS_TIMEOUT = 600  # first command: python3-venv from the mirror, runtime packages from the index
SETUP_TIMEOUT = 1200  # second command: the Debian peers and the test extra
CONTAINER_CA = "/run/host-ca.crt"
# Downloads (apt's .debs, pip's HTTP cache) kept between runs: the installs still run from scratch in each
# fresh container, only faster from the second run on.
DOWNLOAD_CACHE = Path("/var/tmp/nodeagent-test-downloads")
# pip settings carried into the container (pip reads them from PIP_<KEY>).
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host", "timeout", "default-timeout")


def readme_commands() -> list[str]:
    """The shell blocks of the README's "The two commands" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def host_pip_settings() -> tuple[dict[str, str], list[str]]:
    """PIP_* variables for the container and `-v` arguments for the local paths they name."""
    found = subprocess.run(
        ["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    settings: dict[str, str] = {}
    for line in found.splitlines():  # global.index-url='...' or :env:.find-links='...'
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name in PIP_KEYS:
            settings[name] = value.strip("'\"")
    env = {f"PIP_{k.upper().replace('-', '_')}": v for k, v in settings.items()}
    mounts: set[str] = set()
    for value in settings.values():
        for item in value.split():
            path = item.removeprefix("file://")
            if path.startswith("/") and os.path.exists(path):
                # The top directory: an index's links may point at files beside its simple/ tree.
                top = "/" + path.strip("/").split("/", 1)[0]
                mounts.add(top if top not in ("/", "/usr", "/etc", "/var") else path)
    args = [arg for path in sorted(mounts) for arg in ("-v", f"{path}:{path}:ro")]
    if HOST_CA_BUNDLE.is_file():
        env["PIP_CERT"] = CONTAINER_CA
        args += ["-v", f"{HOST_CA_BUNDLE}:{CONTAINER_CA}:ro"]
    for proxy in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if proxy in os.environ:
            env[proxy] = os.environ[proxy]
    return env, args


def checkout_copy(destination: Path) -> Path:
    """The files of this checkout a clone would have (tracked, and new ones not ignored): no .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(params=["bookworm", "trixie"])
def fresh_debian(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A running container of a fresh Debian with the checkout at /src; its name."""
    image = base_image(request.param)
    src = checkout_copy(tmp_path / "src")
    env, mounts = host_pip_settings()
    name = f"nodeagent-readme-{request.param}-{os.getpid()}"
    podman("rm", "-f", name, check=False)
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    caches = {
        DOWNLOAD_CACHE / request.param / "apt": "/var/cache/apt/archives",
        DOWNLOAD_CACHE / "pip": "/root/.cache/pip",
    }
    for cache, target in caches.items():
        (cache / "partial").mkdir(parents=True, exist_ok=True)
        mounts += ["-v", f"{cache}:{target}"]
    podman("run", "-d", "--name", name, "-v", f"{src}:/src", *mounts, *env_args, image, "sleep", "infinity")
    try:
        # As on a fresh install: no venv module, no pip.
        in_container(
            name,
            "dpkg --purge $(dpkg-query -W -f '${Package} ' 'python3*-venv' python3-pip-whl "
            "python3-setuptools-whl 2>/dev/null) && ! python3 -c 'import ensurepip'",
        )
        yield name
    finally:
        podman("rm", "-f", "--time", "0", name, check=False)


def in_container(name: str, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = podman("exec", "-w", "/src", name, "bash", "-c", script, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{script}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def test_readme_has_the_two_commands() -> None:
    assert readme_commands() == ["./run-agent", "./run-tests"]


def test_both_commands_work_on_a_fresh_debian(fresh_debian: str) -> None:
    run_agent, run_tests = readme_commands()
    podman("exec", "-d", "-w", "/src", fresh_debian, "bash", "-c", f"{run_agent} >/tmp/agent.log 2>&1")
    fetch = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=10).read().decode())"
    )
    deadline = time.monotonic() + METRICS_TIMEOUT
    while True:
        scraped = podman("exec", fresh_debian, "python3", "-c", fetch, check=False)
        if scraped.returncode == 0:
            break
        if time.monotonic() > deadline or not command_running(fresh_debian):
            pytest.fail(f"/metrics did not answer:\n{agent_log(fresh_debian)[-3000:]}")
        time.sleep(2)
    assert "node_cpu_seconds_total{" in scraped.stdout
    assert "nodeagent_build_info{" in scraped.stdout
    assert 'msg="nodeagent started"' in agent_log(fresh_debian)

    result = in_container(fresh_debian, f"{run_tests} --collect-only", timeout=SETUP_TIMEOUT)
    collected = re.search(r"^(\d+) tests collected", result.stdout, re.M)
    assert collected and int(collected[1]) > 1000, result.stdout[-3000:]


def command_running(name: str) -> bool:
    """Whether ./run-agent (or the agent it became) still runs; [r] keeps grep from matching itself."""
    probe = "grep -qs -e '[r]un-agent' -e '[n]odeagent' /proc/[0-9]*/cmdline"
    return podman("exec", name, "bash", "-c", probe, check=False).returncode == 0


def agent_log(name: str) -> str:
    return podman("exec", name, "cat", "/tmp/agent.log", check=False).stdout
