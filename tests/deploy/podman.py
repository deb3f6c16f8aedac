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
