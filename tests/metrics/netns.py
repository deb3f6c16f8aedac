"""Running a snippet of Python in a fresh network namespace (``unshare -n``), for the live netlink tests.

The namespace has only ``lo``: tests configure it (qdiscs, addresses, routes, neighbours) and send
traffic over 127.0.0.1 without touching the host's own network. Needs root (CAP_SYS_ADMIN) and the
``unshare``/``ip`` binaries; without them the test skips (fails under CI, see ``require_binary``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_binary


def run_in_netns(setup: list[list[str]], script: str, timeout: float = 60.0) -> str:
    """Run each ``setup`` command, then ``python -c script``, inside one new network namespace; return
    the script's stdout."""
    unshare = require_binary("unshare")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    commands = [["ip", "link", "set", "lo", "up"], *setup]
    shell = " && ".join(" ".join(_quote(arg) for arg in command) for command in commands)
    shell += f" && exec {_quote(sys.executable)} -c {_quote(script)}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [unshare, "-n", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
