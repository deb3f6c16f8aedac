"""`nodeagent check-placement` on hostile input (issue 12, item 7), run as a user runs it: a subprocess
whose exit status, stderr and own peak RSS are checked. Each case once cost gigabytes, a
crash or a silent verdict."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.placement.builders import KIND_NODES, SEEDS

DAEMONSET = SEEDS / "01-nginx-daemonset.yaml"
RSS_LIMIT_KIB = 150 * 1024  # the checker runs in ~30 MiB; the attacks below reached 3 GiB
TIMEOUT = 60


@dataclass
class Completed:
    code: int
    stdout: str
    stderr: str
    peak_rss_kib: int


# `nodeagent` itself, reporting its peak RSS (VmHWM) at exit into a file. Not the rusage of wait4: Linux
# counts the memory of the process that forked the child before exec in its ru_maxrss, so a child of a
# big pytest process would show pytest's size.
PEAK_REPORTING_NODEAGENT = """
import atexit, os, sys
def report_peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_RSS_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(report_peak)
from nodeagent.cli import main
raise SystemExit(main())
"""


def check_placement(*argv: str, stdin: Path | None = None) -> Completed:
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PEAK_RSS_FILE": str(peak_file)}
        with open(stdin or os.devnull, "rb") as stdin_file:
            try:
                completed = subprocess.run(
                    [sys.executable, "-c", PEAK_REPORTING_NODEAGENT, "check-placement", *argv],
                    stdin=stdin_file,
                    capture_output=True,
                    env=env,
                    timeout=TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"check-placement {' '.join(argv)} did not finish in {TIMEOUT}s")
        peak = int(peak_file.read_text()) if peak_file.exists() else -1
        return Completed(completed.returncode, completed.stdout.decode(), completed.stderr.decode(), peak)


def assert_refused(result: Completed, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr holding every fragment, no traceback, small RSS."""
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nodeagent: error: "), result
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert 0 < result.peak_rss_kib < RSS_LIMIT_KIB, f"peak RSS {result.peak_rss_kib} KiB"


def billion_laughs() -> str:
    """Ten levels of nine aliases each: 9**10 strings when expanded, 0.6 KB written."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    lines.append("kind: Node\nmetadata:\n  name: n1\nspec:\n  taints: *l9\n")
    return "\n".join(lines)


def test_yaml_alias_bomb_as_nodes_is_refused_small(tmp_path):
    bomb = tmp_path / "nodes.yaml"
    bomb.write_text(billion_laughs())
    assert bomb.stat().st_size < 700
    result = check_placement("-f", str(DAEMONSET), "--nodes", str(bomb))
    assert_refused(result, str(bomb), "aliases expand to more than")


def test_small_aliases_are_still_yaml(tmp_path):
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        "kind: NodeList\napiVersion: v1\nitems:\n"
        "- metadata: {name: a, labels: &labels {kubernetes.io/os: linux}}\n  status: &status\n"
        "    allocatable: {cpu: '4', memory: 8Gi, pods: '110'}\n"
        "    conditions: [{type: Ready, status: 'True'}]\n"
        "- metadata: {name: b, labels: *labels}\n  status: *status\n"
    )
    result = check_placement("-f", str(DAEMONSET), "--nodes", str(nodes))
    assert result.code == 0 and "Summary: 2 nodes: 2 runs" in result.stdout, result


def test_dev_zero_is_not_read(tmp_path):
    assert_refused(
        check_placement("-f", "/dev/zero", "--nodes", str(KIND_NODES)), "/dev/zero: not a regular file"
    )


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "ds.yaml"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert_refused(check_placement("-f", str(fifo), "--nodes", str(KIND_NODES)), "not a regular file")


def test_huge_file_is_refused_before_reading(tmp_path):
    sparse = tmp_path / "nodes.yaml"
    with open(sparse, "wb") as fh:
        fh.truncate(3 * 2**30)  # 3 GiB of holes: no disk used, but any attempt to read it all shows in RSS
    result = check_placement("-f", str(DAEMONSET), "--nodes", str(sparse))
    assert_refused(result, str(sparse), "larger than 256 MiB (--max-input-mib)")


def test_input_limit_is_a_flag(tmp_path):
    padded = tmp_path / "ds.yaml"
    padded.write_text(DAEMONSET.read_text() + "\n# " + "x" * 2**20 + "\n")
    assert check_placement("-f", str(padded), "--nodes", str(KIND_NODES)).code == 1
    result = check_placement("-f", str(padded), "--nodes", str(KIND_NODES), "--max-input-mib", "1")
    assert_refused(result, "larger than 1 MiB")


def test_stdin_is_read_bounded(tmp_path):
    big = tmp_path / "stdin.yaml"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)
    result = check_placement("-f", "-", "--nodes", str(KIND_NODES), "--max-input-mib", "2", stdin=big)
    assert_refused(result, "<stdin>: larger than 2 MiB")


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("deep.yaml", "kind: Node\nmetadata: {name: n}\nx: " + "[" * 100_000 + "]" * 100_000, "levels deep"),
        ("deepblock.yaml", "".join(" " * i + "a:\n" for i in range(2_000)), "levels deep"),
        (
            "digits.json",
            '{"kind": "Node", "metadata": {"name": "n"}, "x": ' + "9" * 100_000 + "}",
            "invalid JSON",
        ),
        ("digits.yaml", "kind: Node\nmetadata: {name: n}\nx: " + "9" * 100_000 + "\n", "invalid YAML"),
        ("latin1.yaml", "kind: Node\nmetadata: {name: caf\xe9}\n", "not UTF-8"),
        ("lists.json", "[" * 5 + '{"kind": "Node", "metadata": {"name": "n"}}' + "]" * 5, "lists of objects"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else "",
)
def test_deep_or_odd_documents_are_one_line_errors(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1" if name.startswith("latin1") else "utf-8"))
    assert_refused(check_placement("-f", str(DAEMONSET), "--nodes", str(path)), str(path), fragment)


DS_HEAD = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n"


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        (
            "-f",
            DS_HEAD + "      containers: [{name: c, image: i}]\n      tolerations: 5\n",
            "DaemonSet x: spec.template.spec.tolerations: expected a list, got an integer",
        ),
        (
            "-f",
            DS_HEAD + "      containers: [{name: c, image: i}]\n      nodeSelector: [a, b]\n",
            "DaemonSet x: spec.template.spec.nodeSelector: expected a mapping, got a list",
        ),
        (
            "-f",
            DS_HEAD + "      containers: [{name: c, image: i, resources: {requests: [cpu]}}]\n",
            "DaemonSet x: spec.template.spec.containers[0].resources.requests: "
            "expected a mapping, got a list",
        ),
        (
            "--nodes",
            "kind: Node\nmetadata: {name: [1, 2]}\n",
            "Node <unnamed>: metadata.name: expected a string, got a list",
        ),
        (
            "--nodes",
            "kind: Node\nmetadata: {name: n1, labels: {zone: {a: b}}}\n",
            "Node n1: metadata.labels.zone: expected a string, got a mapping",
        ),
        (
            "--nodes",
            "kind: Node\nmetadata: {name: n1}\nspec: {taints: [{key: k, effect: [NoSchedule]}]}\n",
            "Node n1: spec.taints[0].effect: expected a string, got a list",
        ),
        (
            "--pods",
            "kind: Pod\nmetadata: {name: p, ownerReferences: {kind: DaemonSet}}\n",
            "Pod p: metadata.ownerReferences: expected a list, got a mapping",
        ),
    ],
    ids=["tolerations", "nodeSelector", "requests", "node name", "label value", "taint effect", "owners"],
)
def test_wrong_types_name_the_field_and_the_file(tmp_path, option, text, message):
    path = tmp_path / "input.yaml"
    path.write_text(text)
    inputs = {"-f": str(DAEMONSET), "--nodes": str(KIND_NODES)}
    inputs[option] = str(path)
    argv = [part for pair in inputs.items() for part in pair]
    result = check_placement(*argv)
    assert_refused(result, f"{path}: {message}")
