"""Helpers for the deployment tests: rendering the kustomizations and picking objects out of them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, require_binary

MANIFESTS = ROOT / "manifests"
# listen-port reads the port from the overlay's nodeagent-settings: it renders only within an overlay
# (examples/node-exporter-migration).
OVERLAY_ONLY_COMPONENTS = {"listen-port"}
COMPONENTS = sorted(
    p.parent
    for p in (MANIFESTS / "components").glob("*/kustomization.yaml")
    if p.parent.name not in OVERLAY_ONLY_COMPONENTS
)
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("**/kustomization.yaml"))
DATA = Path(__file__).resolve().parent / "data"
KUSTOMIZE_TIMEOUT = 60


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY` as a list of objects; fails the test with kubectl's message."""
    kubectl = require_binary("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def component_overlay(component: Path, directory: Path) -> Path:
    """A throw-away overlay of the base plus one component (a component cannot be rendered alone)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize refuses absolute paths here.
                "resources": [os.path.relpath(MANIFESTS, directory)],
                "components": [os.path.relpath(component, directory)],
            }
        )
    )
    return directory


def find(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def rendered_id(directory: Path) -> str:
    return str(directory.relative_to(ROOT))


def rendering_namespace(rendering: str) -> str:
    """The namespace a rendering puts its objects in: its kustomization's `namespace`, else the base's."""
    kustomization = yaml.safe_load((ROOT / rendering / "kustomization.yaml").read_text())
    return kustomization.get("namespace") or "nodeagent"


@pytest.fixture(scope="session")
def base_objects() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS)


@pytest.fixture(scope="session")
def all_renderings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every way the manifests are meant to be rendered: the base, base + each component, each example."""
    renderings = {rendered_id(MANIFESTS): kustomize(MANIFESTS)}
    for component in COMPONENTS:
        overlay = component_overlay(component, tmp_path_factory.mktemp(component.name))
        renderings[rendered_id(component)] = kustomize(overlay)
    for example in EXAMPLES:
        renderings[rendered_id(example)] = kustomize(example)
    return renderings


@pytest.fixture(scope="session")
def daemonset(base_objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(base_objects, "DaemonSet", "nodeagent")


@pytest.fixture(scope="session")
def container(daemonset: dict[str, Any]) -> dict[str, Any]:
    containers = daemonset["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nodeagent"]
    return containers[0]
