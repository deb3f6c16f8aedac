"""Reading input: YAML/JSON, multi-document, List objects, directories, stdin, kustomize, and bad input."""

from __future__ import annotations

import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent.placement.sources import (
    InputError,
    daemonsets_from,
    load_path,
    load_paths,
    nodes_from,
    parse_text,
    pods_from,
    select_daemonsets,
)
from tests.conftest import require_binary
from tests.placement.builders import DAEMONSETS, KIND_NODES, KIND_PODS, OPENSHIFT_NODES, POPEYE_NODES, SEEDS


def test_multi_document_yaml_keeps_only_daemonsets(tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\n"
        + (SEEDS / "01-nginx-daemonset.yaml").read_text()
        + "\n---\n# an empty document\n---\n"
        + (DAEMONSETS / "calico-node.daemonset.yaml").read_text()
    )
    daemonsets = daemonsets_from(load_path(str(manifest)))
    assert [ds.key for ds in daemonsets] == ["default/nginx-daemonset", "kube-system/calico-node"]


def test_json_node_list_and_pod_list():
    problems = []
    nodes = nodes_from(load_path(str(KIND_NODES)), problems)
    pods = pods_from(load_path(str(KIND_PODS)), problems)
    assert [n.name for n in nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert len(pods) == 14 and not problems


def test_directory_of_single_nodes_without_kind():
    nodes = nodes_from(load_path(str(OPENSHIFT_NODES)), [])
    assert len(nodes) == 6
    assert sum(n.control_plane for n in nodes) == 3


def test_yaml_list_of_nodes():
    nodes = nodes_from(load_path(str(POPEYE_NODES)), [])
    assert [n.name for n in nodes] == ["n1", "n2", "n3", "n4", "n5"]
    assert nodes[0].control_plane and not nodes[0].taints  # role label without a taint


def test_stdin():
    text = (SEEDS / "02-fluentd-daemonset.yaml").read_text()
    (ds,) = daemonsets_from(load_path("-", io.StringIO(text)))
    assert ds.key == "kube-system/fluentd" and ds.source == "<stdin>"


def test_stdin_only_once():
    with pytest.raises(InputError, match="only once"):
        load_paths(["-", "-"], io.StringIO(""))


def test_yaml_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\n   namespace: y\n")
    with pytest.raises(InputError) as error:
        load_path(str(bad))
    assert str(error.value).startswith(f"{bad}:5: invalid YAML")
    assert "\n" not in str(error.value)


def test_json_error_names_file_and_line(tmp_path):
    bad = tmp_path / "nodes.json"
    bad.write_text('{\n  "kind": "NodeList",\n  "items": [\n}\n')
    with pytest.raises(InputError, match=rf"^{bad}:4: invalid JSON"):
        load_path(str(bad))


def test_missing_file_and_scalar_document(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_path(str(tmp_path / "nope.yaml"))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(InputError, match="not a Kubernetes object"):
        load_path(str(scalar))


def test_non_node_objects_in_node_input_are_noted(tmp_path):
    problems = []
    nodes_from(load_path(str(SEEDS / "01-nginx-daemonset.yaml")), problems)
    assert problems == ["1 object(s) in the node input are not Nodes; ignored"]


def test_select_daemonset_by_namespace_and_name():
    daemonsets = daemonsets_from(load_path(str(SEEDS)))
    assert [ds.key for ds in select_daemonsets(daemonsets, "kube-system/fluentd")] == ["kube-system/fluentd"]
    assert [ds.key for ds in select_daemonsets(daemonsets, "node-exporter")] == ["monitoring/node-exporter"]
    with pytest.raises(InputError, match="not found"):
        select_daemonsets(daemonsets, "default/fluentd")


def test_bad_quantity_in_node_is_a_note_not_a_crash(tmp_path):
    node = {
        "kind": "Node",
        "metadata": {"name": "odd"},
        "status": {"allocatable": {"cpu": "many", "pods": "10"}},
    }
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node))
    problems = []
    (parsed,) = nodes_from(load_path(str(path)), problems)
    assert parsed.allocatable == {"pods": 10}
    assert problems == ["node odd allocatable: cpu: 'many' is not a quantity; ignored"]


def test_kustomization_directory_is_rendered(tmp_path):
    require_binary("kubectl")
    (tmp_path / "ds.yaml").write_text((SEEDS / "01-nginx-daemonset.yaml").read_text())
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: edge\nnamePrefix: prod-\nresources:\n- ds.yaml\n"
    )
    (ds,) = daemonsets_from(load_path(str(tmp_path)))
    assert ds.key == "edge/prod-nginx-daemonset"
    assert ds.source == f"{tmp_path} (kustomize)"


def test_broken_kustomization_is_an_input_error(tmp_path):
    require_binary("kubectl")
    (tmp_path / "kustomization.yaml").write_text("resources:\n- missing.yaml\n")
    with pytest.raises(InputError, match="kubectl kustomize failed"):
        load_path(str(tmp_path))


def test_bulk_loading_pauses_and_restores_the_collector():
    import gc

    from nodeagent.placement.sources import bulk_loading

    assert gc.isenabled()
    with pytest.raises(InputError), bulk_loading():
        assert not gc.isenabled()
        raise InputError("stop")
    assert gc.isenabled()


# ---------------------------------------------------------------- hostile input


YAMLISH = st.text(alphabet="[]{}:-&*!|>'\"\n #,ab1.?%<=\t\\", max_size=200)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(YAMLISH, st.text(max_size=200)))
def test_any_text_gives_objects_or_one_line_input_error(text):
    try:
        loaded = parse_text(text, "fuzz.yaml")
    except InputError as error:
        message = str(error)
        assert message.startswith("fuzz.yaml") and "\n" not in message and len(message) < 1000
    else:
        assert all(isinstance(item.obj, dict) for item in loaded)


def test_nested_lists_of_objects_keep_their_order():
    text = json.dumps([{"kind": "List", "items": [{"kind": "Node", "metadata": {"name": n}} for n in "ab"]},
                       {"kind": "Node", "metadata": {"name": "c"}}])  # fmt: skip
    assert [loaded.obj["metadata"]["name"] for loaded in parse_text(text, "x.json")] == ["a", "b", "c"]


def test_size_limit_applies_to_files_and_stdin(tmp_path):
    path = tmp_path / "ds.yaml"
    text = (SEEDS / "02-fluentd-daemonset.yaml").read_text()
    path.write_text(text)
    assert load_path(str(path), max_bytes=len(text.encode()))
    with pytest.raises(InputError, match=r"ds.yaml: larger than 0 MiB \(--max-input-mib\)"):
        load_path(str(path), max_bytes=len(text.encode()) - 1)
    with pytest.raises(InputError, match=r"^<stdin>: larger than"):
        load_path("-", io.StringIO(text), max_bytes=10)


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "nodes.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"nodes\.yaml: not a regular file"):
        load_path(str(fifo))  # refused at once: opened non-blocking, never waiting for a writer


def test_alias_allowance_and_depth_bound():
    shared = "base: &base {a: 1, b: 2}\n" + "".join(f"k{i}: *base\n" for i in range(100))
    (loaded,) = parse_text("kind: Node\nmetadata: {name: n}\n" + shared, "ok.yaml")
    assert loaded.obj["k99"] == {"a": 1, "b": 2}
    with pytest.raises(InputError, match=r"^deep.yaml:1: nested more than 100 levels deep$"):
        parse_text("x: " + "[" * 101 + "]" * 101, "deep.yaml")
    assert parse_text("x: " + "[" * 99 + "]" * 99, "fine.yaml")
