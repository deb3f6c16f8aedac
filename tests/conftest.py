"""Shared test helpers: fixture locations and the rule that a missing peer binary fails under CI."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ../shared next to the checkout (CI lays a copy there too); NODEAGENT_SHARED overrides.
SHARED = Path(os.environ.get("NODEAGENT_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
NODE_EXPORTER_FIXTURE = FIXTURES / "node_exporter"


def require_binary(name: str, *candidates: str) -> str:
    """Path of a peer binary; missing: fail when CI is set (CI installs it), else skip."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    message = f"{name} is not installed (Debian package; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_shared(path: Path) -> Path:
    if not path.exists():
        message = f"shared fixture {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def node_exporter_fixture() -> Path:
    return require_shared(NODE_EXPORTER_FIXTURE)
