"""podman for the deployment tests: this machine's settings (deploy/containers.conf) and the cached base
images built by deploy/build-base-image.sh (debootstrap plus Debian's python3), built once and then reused
from podman's storage."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, require_binary

CONTAINERS_CONF = ROOT / "deploy" / "containers.conf"
BASE_BUILD_TIMEOUT = 900  # debootstrap from the mirror, first run only
HOST_CA_BUNDLE = Path(
    os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
)


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_binary("podman"), *args], capture_output=True, text=True, timeout=timeout, env=podman_env()
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def base_image(suite: str = "bookworm") -> str:
    """localhost/nodeagent-base:SUITE, a minimal Debian SUITE with python3; built on first use."""
    image = f"localhost/nodeagent-base:{suite}"
    require_binary("podman")
    if podman("image", "exists", image, check=False).returncode != 0:
        require_binary("debootstrap")
        result = subprocess.run(
            [str(ROOT / "deploy" / "build-base-image.sh"), image, suite],
            capture_output=True,
            text=True,
            timeout=BASE_BUILD_TIMEOUT,
            env=podman_env(),
        )
        assert result.returncode == 0, (
            f"base image build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return image


def host_pip_index() -> list[str]:
    """Build args that point pip inside the build at the package index this machine's pip uses."""
    index = os.environ.get("PIP_INDEX_URL")
    if not index:
        found = subprocess.run(
            ["python3", "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        index = found.stdout.strip() if found.returncode == 0 else ""
    return ["--build-arg", f"PIP_INDEX_URL={index}"] if index else []


def build_image(tag: str, base: str, version: str, timeout: float) -> None:
    """Build this tree's Dockerfile as tag on the local base image, never pulling from a registry; pip
    in the build uses this machine's index and trusts what this machine trusts (e.g. a proxy's CA). The
    image the tag named before is removed once no tag names it."""
    previous = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    ca_args = []
    if HOST_CA_BUNDLE.is_file():
        ca_args = [
            "-v",
            f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
            "--build-arg",
            "PIP_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
        ]
    podman(
        "build",
        "--pull=never",
        "--network=host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"VERSION={version}",
        *host_pip_index(),
        *ca_args,
        "-t",
        tag,
        str(ROOT),
        timeout=timeout,
    )
    current = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    if previous and previous != current:
        tags = podman("image", "inspect", "--format", "{{len .RepoTags}}", previous, check=False).stdout
        if tags.strip() == "0":  # not when another tag (benchmarks/image's, say) still names it
            podman("rmi", previous, check=False)
