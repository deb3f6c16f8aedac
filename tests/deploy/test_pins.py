"""constraints.txt pins every version the image installs, within the ranges pyproject.toml declares."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(text) for text in PROJECT["project"]["dependencies"]]
BUILD = [Requirement(text) for text in PROJECT["build-system"]["requires"]]


def pins() -> dict[str, Version]:
    result: dict[str, Version] = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"constraints.txt:{number}: {text} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in result, f"constraints.txt:{number}: {name} pinned twice"
        result[name] = Version(specifier.version)
    return result


def test_every_dependency_is_pinned_within_its_pyproject_range() -> None:
    pinned = pins()
    for requirement in RUNTIME + BUILD:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject.toml's {requirement}"
        )


def test_what_the_runtime_dependencies_need_is_pinned_too() -> None:
    """The closure: each pinned runtime package's own requirements (as installed here) are pinned and
    satisfied, so the image resolves nothing the pins leave open."""
    pinned = pins()
    seen: set[str] = set()
    pending = list(RUNTIME)
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} (needed via {requirement}) is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, which does not satisfy {requirement}"
        )
        if name in seen:
            continue
        seen.add(name)
        assert Version(metadata.version(name)) == pinned[name], (
            f"the tests run against {name} {metadata.version(name)}, the image would install {pinned[name]}: "
            "run deploy/pin-dependencies.py"
        )
        pending.extend(Requirement(text) for text in metadata.requires(name) or ())
