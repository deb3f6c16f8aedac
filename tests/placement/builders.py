"""Small builders for placement tests: API-shaped dicts turned into model objects the way real input is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nodeagent.placement.model import (
    DaemonSet,
    ExistingPod,
    Node,
    daemonset_from_obj,
    node_from_obj,
    pod_from_obj,
)

DATA = Path(__file__).parent / "data"
MODERN_NODES = DATA / "modern-cluster.nodes.yaml"
MODERN_PODS = DATA / "modern-cluster.pods.yaml"
KIND_NODES = DATA / "sonobuoy-kind-3node-v1.20.nodelist.json"
KIND_PODS = DATA / "sonobuoy-kind-3node-v1.20.kube-system-pods.json"
OPENSHIFT_NODES = DATA / "openshift-4.7-gcp-6node"
POPEYE_NODES = DATA / "popeye-5node-list.yaml"
MINIKUBE_NODE = DATA / "k9s-minikube-1node-v1.15.json"
SEEDS = DATA / "seed-examples"
DAEMONSETS = DATA / "daemonsets"


def read_objects(path: Path) -> list[dict]:
    text = path.read_text()
    documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    objects = []
    for document in documents:
        if document and str(document.get("kind", "")).endswith("List"):
            objects.extend(document["items"])
        elif document:
            objects.append(document)
    return objects


def node_obj(
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[dict] | None = None,
    allocatable: dict[str, Any] | None = None,
    ready: str | None = "True",
    conditions: dict[str, str] | None = None,
    unschedulable: bool = False,
) -> dict:
    status_conditions = []
    if ready is not None:
        status_conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady"})
    for kind, status in (conditions or {}).items():
        status_conditions.append({"type": kind, "status": status})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", **(labels or {})}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}
            | (allocatable or {}),
            "conditions": status_conditions,
        },
    }


def make_node(name: str = "node-a", **kwargs: Any) -> Node:
    return node_from_obj(node_obj(name, **kwargs), [])


def ds_obj(
    pod_spec: dict | None = None, name: str = "agent", namespace: str = "default", **meta: Any
) -> dict:
    spec = {"containers": [{"name": "main", "image": "registry.example/agent:1"}]} | (pod_spec or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def make_ds(pod_spec: dict | None = None, **kwargs: Any) -> DaemonSet:
    return daemonset_from_obj(ds_obj(pod_spec, **kwargs), "test")


def pod_obj(
    name: str,
    node: str | None,
    containers: list[dict] | None = None,
    namespace: str = "default",
    owner: tuple[str, str] | None = None,
    phase: str = "Running",
    **spec: Any,
) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}
        ]
    pod_spec = {"containers": containers or [{"name": "main", "image": "x"}], **spec}
    if node:
        pod_spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec, "status": {"phase": phase}}


def make_pod(name: str, node: str | None, **kwargs: Any) -> ExistingPod:
    return pod_from_obj(pod_obj(name, node, **kwargs), [])


def requests_container(cpu: str | None = None, memory: str | None = None, **extra: str) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v} | extra
    return {"name": "c", "image": "x", "resources": {"requests": requests}}
