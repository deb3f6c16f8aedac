"""`check-placement` end to end on files: output formats, exit statuses and one-line errors."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest

from nodeagent.placement.cli import add_arguments, run
from tests.placement.builders import (
    DAEMONSETS,
    KIND_NODES,
    MINIKUBE_NODE,
    MODERN_NODES,
    MODERN_PODS,
    OPENSHIFT_NODES,
    SEEDS,
)

RULES = (
    "taint",
    "nodeSelector",
    "nodeAffinity",
    "nodeName",
    "resources",
    "podCount",
    "hostPort",
    "notReady",
    "platform",
)


@pytest.fixture
def cli(capsys):
    def invoke(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="check-placement")
        add_arguments(parser)
        out = io.StringIO()
        code = run(
            parser.parse_args(argv), stdin=io.StringIO(stdin) if stdin is not None else None, stdout=out
        )
        return code, out.getvalue(), capsys.readouterr().err

    return invoke


def test_table_names_every_node_and_the_summary(cli):
    code, out, err = cli("-f", str(SEEDS / "01-nginx-daemonset.yaml"), "--nodes", str(OPENSHIFT_NODES))
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("DaemonSet default/nginx-daemonset")
    assert lines[1].split() == ["NODE", "ROLE", "VERDICT", "REASON"]
    master = next(line for line in lines if line.startswith("ci-ln-ywdpkbt-f76d1-vw6lz-master-0"))
    assert master.split()[1:4] == ["control-plane", "blocked", "taint"]
    assert "Summary: 6 nodes: 3 runs, 3 blocked, 0 excluded, 0 pending" in lines
    assert "      - key: node-role.kubernetes.io/master" in lines  # the fix, as YAML


def test_json_follows_the_documented_shape(cli):
    code, out, _ = cli(
        "-f", str(DAEMONSETS / "kube-prometheus-node-exporter.daemonset.yaml"),
        "--nodes", str(MODERN_NODES), "--pods", str(MODERN_PODS), "-o", "json",
    )  # fmt: skip
    assert code == 1
    document = json.loads(out)
    (ds,) = document["daemonsets"]
    assert {"namespace", "name", "nodes", "summary", "warnings"} <= ds.keys()
    assert (ds["namespace"], ds["name"]) == ("monitoring", "node-exporter")
    assert ds["summary"] == {"nodes": 8, "runs": 4, "blocked": 0, "excluded": 1, "pending": 3}
    for node in ds["nodes"]:
        assert {"name", "control_plane", "verdict", "reasons"} <= node.keys()
        assert node["verdict"] in ("runs", "blocked", "excluded", "pending")
        for reason in node["reasons"]:
            assert reason.keys() == {"rule", "message", "fix"}
            assert reason["rule"] in RULES
    worker = next(n for n in ds["nodes"] if n["name"] == "worker-1")
    assert worker["reasons"][0]["rule"] == "hostPort"
    assert next(n for n in ds["nodes"] if n["name"] == "cp-1")["control_plane"] is True


def test_exit_zero_when_every_node_runs(cli):
    code, out, _ = cli("-f", str(DAEMONSETS / "calico-node.daemonset.yaml"), "--nodes", str(OPENSHIFT_NODES))
    assert code == 0, out


def test_allow_excluded(tmp_path, cli):
    workers_only = tmp_path / "workers.yaml"
    workers_only.write_text(
        (SEEDS / "01-nginx-daemonset.yaml")
        .read_text()
        .replace(
            "    spec:\n", '    spec:\n      nodeSelector:\n        node-role.kubernetes.io/worker: ""\n', 1
        )
    )
    args = ("-f", str(workers_only), "--nodes", str(OPENSHIFT_NODES))
    assert cli(*args)[0] == 1
    assert cli(*args, "--allow-excluded")[0] == 0


def test_directory_input_checks_every_daemonset_and_daemonset_picks_one(cli):
    code, out, _ = cli("-f", str(SEEDS), "--nodes", str(MINIKUBE_NODE), "-o", "json")
    assert [d["name"] for d in json.loads(out)["daemonsets"]] == [
        "nginx-daemonset",
        "fluentd",
        "node-exporter",
    ]
    assert code == 0  # minikube's single node has no taint
    code, out, _ = cli("-f", str(SEEDS), "--nodes", str(MINIKUBE_NODE), "--daemonset", "kube-system/fluentd")
    assert out.startswith("DaemonSet kube-system/fluentd") and out.count("DaemonSet ") == 1


def test_daemonset_from_stdin(cli):
    code, out, _ = cli(
        "-f", "-", "--nodes", str(KIND_NODES), stdin=(SEEDS / "02-fluentd-daemonset.yaml").read_text()
    )
    assert "DaemonSet kube-system/fluentd  (<stdin>)" in out
    assert code == 1  # kind-worker is NotReady


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-f", "{nodes}", "--nodes", "{nodes}"], "no DaemonSet found in"),
        (["-f", "{missing}", "--nodes", "{nodes}"], "no such file or directory"),
        (["-f", "{seed}"], "no nodes: give --nodes"),
        (["--nodes", "{nodes}"], "no DaemonSet input"),
        (["-f", "{seed}", "--nodes", "{empty}"], "no nodes found in"),
        (
            ["-f", "{broken}", "--nodes", "{nodes}"],
            "broken.yaml:4: invalid YAML: while parsing a flow sequence (from line 3) did not",
        ),
        (["-f", "{seed}", "--nodes", "{nodes}", "--daemonset", "x/y"], "DaemonSet x/y not found"),
        (["-f", "{seed}", "--live", "--nodes", "{nodes}"], "--nodes and --pods are for offline checks"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, cli, argv, message):
    (tmp_path / "empty.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    (tmp_path / "broken.yaml").write_text("kind: DaemonSet\nmetadata:\n  name: [unclosed\n")
    paths = {
        "nodes": str(KIND_NODES),
        "missing": str(tmp_path / "missing.yaml"),
        "seed": str(SEEDS / "01-nginx-daemonset.yaml"),
        "empty": str(tmp_path / "empty.yaml"),
        "broken": str(tmp_path / "broken.yaml"),
    }
    code, out, err = cli(*[part.format(**paths) for part in argv])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_module_entry_point_exit_status():
    completed = subprocess.run(
        [sys.executable, "-m", "nodeagent.placement", "-f", str(SEEDS / "03-node-exporter-daemonset.yaml"),
         "--nodes", str(MODERN_NODES), "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    verdicts = {n["name"]: n["verdict"] for n in json.loads(completed.stdout)["daemonsets"][0]["nodes"]}
    assert verdicts["cp-1"] == "blocked"
