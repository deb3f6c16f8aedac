"""Guard rails: the tree stays `ruff format`ted, `ruff check` clean and `mypy` clean (settings in
pyproject.toml). They run with the suite so that `./run-tests` refuses what CI would."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _tool(name: str) -> list[str]:
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", "--quiet", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "--quiet", "."], id="ruff-format"),
        pytest.param(["mypy"], id="mypy"),
    ],
)
def test_guard_rail(command: list[str]) -> None:
    result = subprocess.run(
        [*_tool(command[0]), *command[1:]], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
