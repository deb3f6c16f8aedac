"""Reading Kubernetes objects from files, directories, kustomizations and stdin (YAML or JSON, multi-document,
`List` objects), and sorting them into DaemonSets, Nodes and Pods."""

from __future__ import annotations

import gc
import json
import os
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
from nodeagent.placement.shapes import shape_problem
from nodeagent.safeio import RefusedFile, open_regular, quote, read_bounded

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


# Bounds on hostile input. A YAML alias stands for its whole anchored subtree, so a few hundred bytes can
# describe billions of nodes; kubectl never writes aliases, so a small allowance is plenty. Kubernetes
# objects nest a few tens of levels deep; libyaml's composer recurses in C and crashes the process on
# documents nested tens of thousands deep, so nesting is checked on the event stream first.
DEFAULT_MAX_INPUT_BYTES = 256 * 2**20
MAX_ALIAS_EXPANSION = 100_000  # nodes that aliases may add to the documents of one input
MAX_DEPTH = 100  # nesting of mappings and lists
MAX_LIST_NESTING = 3  # Lists inside Lists inside a bare array: more is not a Kubernetes dump


def _flatten(value: Any, source: str) -> Iterator[Loaded]:
    """The Kubernetes objects in one document: itself, a List's items, or a bare array's (nested a little)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, nesting = pending.pop()
        if item is None:
            continue
        kind = item.get("kind") if isinstance(item, dict) else None
        if isinstance(item, list) or (
            isinstance(kind, str) and kind.endswith("List") and isinstance(item.get("items"), list)
        ):
            if nesting >= MAX_LIST_NESTING:
                raise InputError(f"{source}: lists of objects nested more than {MAX_LIST_NESTING} deep")
            members = item if isinstance(item, list) else item["items"]
            pending.extend((member, nesting + 1) for member in reversed(members))
            continue
        if not isinstance(item, dict):
            raise InputError(f"{source}: a document is a {type(item).__name__}, not a Kubernetes object")
        yield Loaded(item, source)


def _check_yaml_events(text: str, source: str) -> None:
    """Refuse nesting past MAX_DEPTH and alias expansion past MAX_ALIAS_EXPANSION.

    Read from the event stream: libyaml's parser keeps its own stack, so this pass is safe on any input,
    and it stops at the first excess.
    """
    open_sizes: list[int] = []  # expanded node count of each open collection
    open_anchors: list[str | None] = []
    anchored: dict[str, int] = {}  # anchor -> expanded node count of its subtree, per document
    expanded_by_aliases = 0

    def add(size: int) -> None:
        if open_sizes:
            open_sizes[-1] += size

    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                anchored[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_sizes) >= MAX_DEPTH:
                raise InputError(f"{source}{_line(event)}: nested more than {MAX_DEPTH} levels deep")
            open_sizes.append(1)
            open_anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            size, anchor = open_sizes.pop(), open_anchors.pop()
            if anchor:
                anchored[anchor] = size
            add(size)
        elif isinstance(event, yaml.AliasEvent):
            size = anchored.get(event.anchor or "", 1)
            expanded_by_aliases += size
            if expanded_by_aliases > MAX_ALIAS_EXPANSION:
                raise InputError(
                    f"{source}{_line(event)}: YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes"
                )
            add(size)
        elif isinstance(event, yaml.DocumentEndEvent):
            anchored.clear()


def _line(event: yaml.Event) -> str:
    mark = event.start_mark
    return f":{mark.line + 1}" if mark is not None else ""


def parse_text(text: str, source: str) -> list[Loaded]:
    """All objects in one YAML or JSON text; syntax errors become InputError with file and line."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return list(_flatten(json.loads(text), source))
        except json.JSONDecodeError as error:
            raise InputError(f"{source}:{error.lineno}: invalid JSON: {error.msg}") from None
        except RecursionError:
            raise InputError(f"{source}: invalid JSON: nested too deeply") from None
        except ValueError as error:  # an integer of more digits than Python converts
            raise InputError(f"{source}: invalid JSON: {quote(str(error))}") from None
    objects: list[Loaded] = []
    try:
        _check_yaml_events(text, source)
        for document in yaml.load_all(text, Loader=_LOADER):
            objects.extend(_flatten(document, source))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        context, start = error.context or "", error.context_mark
        if context and start is not None and start.line != getattr(mark, "line", None):
            context += f" (from line {start.line + 1})"
        problem = " ".join(str(part) for part in (context, error.problem) if part)
        raise InputError(f"{source}{line}: invalid YAML: {' '.join(problem.split())}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{source}: invalid YAML: {' '.join(str(error).split())}") from None
    except (ValueError, RecursionError) as error:  # a value the constructor cannot convert
        raise InputError(f"{source}: invalid YAML: {quote(str(error))}") from None
    return objects


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{source}: not UTF-8 text (byte {error.start})") from None


def _too_big(source: str, limit: int) -> InputError:
    return InputError(f"{source}: larger than {limit // 2**20} MiB (--max-input-mib)")


def _read(path: Path, limit: int) -> str:
    """A regular file's text, at most ``limit`` bytes: a FIFO or device is refused, never waited on."""
    try:
        fd = open_regular(str(path))
    except RefusedFile:
        raise InputError(f"{path}: not a regular file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        if os.fstat(fd).st_size > limit:
            raise _too_big(str(path), limit)
        data, more = read_bounded(fd, limit)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    finally:
        os.close(fd)
    if more:
        raise _too_big(str(path), limit)
    return _decode(data, str(path))


def _read_stdin(stdin: IO[str], limit: int) -> str:
    binary = getattr(stdin, "buffer", None)
    if binary is not None:
        data = binary.read(limit + 1)
        if len(data) > limit:
            raise _too_big("<stdin>", limit)
        return _decode(data, "<stdin>")
    text = stdin.read(limit + 1)  # a text stream (tests, embedding callers): characters, not bytes
    if len(text) > limit:
        raise _too_big("<stdin>", limit)
    return text


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


def load_kustomization(directory: Path, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> list[Loaded]:
    """Objects of a kustomization directory (`-k DIR`), rendered with `kubectl kustomize`."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory (-k takes a kustomization directory)")
    rendered = render_kustomization(directory)
    if len(rendered) > max_bytes:
        raise _too_big(f"{directory} (kustomize)", max_bytes)
    return parse_text(rendered, f"{directory} (kustomize)")


def load_path(
    path_text: str, stdin: IO[str] | None = None, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> list[Loaded]:
    """Objects from a file, a directory (its manifests, or its rendered kustomization) or '-' (stdin).

    Each file (and stdin, and a rendered kustomization) may hold at most ``max_bytes``; only regular files
    are read.
    """
    if path_text == "-":
        return parse_text(_read_stdin(stdin or sys.stdin, max_bytes), "<stdin>")
    path = Path(path_text)
    if path.is_dir():
        if any((path / name).is_file() for name in _KUSTOMIZATION_FILES):
            return load_kustomization(path, max_bytes)
        objects = []
        for child in sorted(path.iterdir()):
            if child.is_file() and child.suffix in _MANIFEST_SUFFIXES:
                objects.extend(parse_text(_read(child, max_bytes), str(child)))
        return objects
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    return parse_text(_read(path, max_bytes), str(path))


def load_paths(
    paths: Iterable[str], stdin: IO[str] | None = None, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> list[Loaded]:
    paths = list(paths)
    if paths.count("-") > 1:
        raise InputError("'-' (stdin) can be given only once")
    return [loaded for path in paths for loaded in load_path(path, stdin, max_bytes)]


def check_shape(kind: str, loaded: Loaded) -> None:
    """Refuse an object whose fields the checker reads have the wrong types (see shapes.py)."""
    problem = shape_problem(kind, loaded.obj)
    if problem:
        raise InputError(f"{loaded.source}: {problem}")


def daemonsets_from(objects: Iterable[Loaded], default_namespace: str = "default") -> list[DaemonSet]:
    """The DaemonSets among the objects; one without a namespace is in ``default_namespace`` (as -n)."""
    daemonsets = []
    for loaded in objects:
        if loaded.obj.get("kind") == "DaemonSet":
            check_shape("DaemonSet", loaded)
            daemonsets.append(daemonset_from_obj(loaded.obj, loaded.source, default_namespace))
    return daemonsets


def _objects_of_kind(
    objects: Iterable[Loaded], kind: str, build: Callable[[dict, list[str]], T], problems: list[str]
) -> list[T]:
    """Objects of one kind; objects without a kind count too (`oc adm inspect` style dumps omit it)."""
    found, skipped = [], 0
    for loaded in objects:
        obj_kind = loaded.obj.get("kind")
        if obj_kind == kind or (obj_kind is None and "metadata" in loaded.obj):
            check_shape(kind, loaded)
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
