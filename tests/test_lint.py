"""The tree stays ruff clean (the project's lint settings are in pyproject.toml)."""

import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    result = subprocess.run(
        [*command, "check", "--quiet", str(ROOT)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
