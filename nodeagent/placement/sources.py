"""Reading Kubernetes objects from files, directories, kustomizations and stdin (YAML or JSON, multi-document,
`List` objects), and sorting them into DaemonSets, Nodes and Pods."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml

from nodeagent.placement.model import (
    DaemonSet,
    ExistingPod,
    Node,
    daemonset_from_obj,
    node_from_obj,
    pod_from_obj,
)

T = TypeVar("T")

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT_SECONDS = 120


class InputError(Exception):
    """Input the checker cannot use; the message is one line and names the file (and line)."""


@dataclass(slots=True)
class Loaded:
    obj: dict
    source: str


@contextmanager
def bulk_loading() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects at once.

    Big node and pod lists become millions of small dicts; without this the collector rescans them over
    and over and loading takes about three times as long. Nothing built here forms reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _flatten(value: Any, source: str) -> Iterator[Loaded]:
    if value is None:
        return
    if isinstance(value, list):  # a bare JSON array of objects
        for item in value:
            yield from _flatten(item, source)
        return
    if not isinstance(value, dict):
        raise InputError(f"{source}: a document is a {type(value).__name__}, not a Kubernetes object")
    kind = value.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), list):
        for item in value["items"]:
            yield from _flatten(item, source)
        return
    yield Loaded(value, source)


def parse_text(text: str, source: str) -> list[Loaded]:
    """All objects in one YAML or JSON text; syntax errors become InputError with file and line."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return list(_flatten(json.loads(text), source))
        except json.JSONDecodeError as error:
            raise InputError(f"{source}:{error.lineno}: invalid JSON: {error.msg}") from None
    objects: list[Loaded] = []
    try:
        for document in yaml.load_all(text, Loader=_LOADER):
            objects.extend(_flatten(document, source))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        context, start = error.context or "", error.context_mark
        if context and start is not None and start.line != getattr(mark, "line", None):
            context += f" (from line {start.line + 1})"
        problem = " ".join(str(part) for part in (context, error.problem) if part)
        raise InputError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{source}: invalid YAML: {error}".replace("\n", " ")) from None
    return objects


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {getattr(error, 'strerror', None) or error}") from None


def render_kustomization(directory: Path) -> str:
    try:
        completed = subprocess.run(
            ["kubectl", "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise InputError(
            f"{directory}: has a kustomization, but kubectl is not installed to render it"
        ) from None
    except subprocess.TimeoutExpired:
        raise InputError(
            f"{directory}: kubectl kustomize took longer than {KUSTOMIZE_TIMEOUT_SECONDS}s"
        ) from None
    if completed.returncode != 0:
        detail = " ".join(completed.stderr.split()) or f"exit status {completed.returncode}"
        raise InputError(f"{directory}: kubectl kustomize failed: {detail}")
    return completed.stdout


def load_path(path_text: str, stdin: IO[str] | None = None) -> list[Loaded]:
    """Objects from a file, a directory (its manifests, or its rendered kustomization) or '-' (stdin)."""
    if path_text == "-":
        return parse_text((stdin or sys.stdin).read(), "<stdin>")
    path = Path(path_text)
    if path.is_dir():
        for name in _KUSTOMIZATION_FILES:
            if (path / name).is_file():
                return parse_text(render_kustomization(path), f"{path} (kustomize)")
        objects = []
        for child in sorted(path.iterdir()):
            if child.is_file() and child.suffix in _MANIFEST_SUFFIXES:
                objects.extend(parse_text(_read(child), str(child)))
        return objects
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    return parse_text(_read(path), str(path))


def load_paths(paths: Iterable[str], stdin: IO[str] | None = None) -> list[Loaded]:
    paths = list(paths)
    if paths.count("-") > 1:
        raise InputError("'-' (stdin) can be given only once")
    return [loaded for path in paths for loaded in load_path(path, stdin)]


def daemonsets_from(objects: Iterable[Loaded]) -> list[DaemonSet]:
    return [daemonset_from_obj(o.obj, o.source) for o in objects if o.obj.get("kind") == "DaemonSet"]


def _objects_of_kind(
    objects: Iterable[Loaded], kind: str, build: Callable[[dict, list[str]], T], problems: list[str]
) -> list[T]:
    """Objects of one kind; objects without a kind count too (`oc adm inspect` style dumps omit it)."""
    found, skipped = [], 0
    for loaded in objects:
        obj_kind = loaded.obj.get("kind")
        if obj_kind == kind or (obj_kind is None and "metadata" in loaded.obj):
            found.append(build(loaded.obj, problems))
        else:
            skipped += 1
    if skipped:
        problems.append(f"{skipped} object(s) in the {kind.lower()} input are not {kind}s; ignored")
    return found


def nodes_from(objects: Iterable[Loaded], problems: list[str]) -> list[Node]:
    return _objects_of_kind(objects, "Node", node_from_obj, problems)


def pods_from(objects: Iterable[Loaded], problems: list[str]) -> list[ExistingPod]:
    return _objects_of_kind(objects, "Pod", pod_from_obj, problems)


def select_daemonsets(daemonsets: list[DaemonSet], wanted: str | None) -> list[DaemonSet]:
    """All DaemonSets, or the one named NAMESPACE/NAME (a bare NAME must be unique)."""
    if not wanted:
        return daemonsets
    if "/" in wanted:
        chosen = [ds for ds in daemonsets if ds.key == wanted]
    else:
        chosen = [ds for ds in daemonsets if ds.name == wanted]
        if len(chosen) > 1:
            raise InputError(f"DaemonSet {wanted} exists in several namespaces; use NAMESPACE/NAME")
    if not chosen:
        known = ", ".join(ds.key for ds in daemonsets[:10]) or "none"
        raise InputError(f"DaemonSet {wanted} not found (found: {known})")
    return chosen[:1]
