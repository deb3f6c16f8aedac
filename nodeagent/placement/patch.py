"""`-o patch` / `--fix`: the change that makes a DaemonSet land on every node it should, and nothing that puts
pods where they cannot run.

One YAML document per DaemonSet that needs a change. Each is a strategic-merge patch (`kubectl patch ds NAME
--type strategic --patch-file FILE`) and, as it carries apiVersion, kind, name and namespace, also a kustomize
patch (`patches: [{path: FILE}]`). What it adds:

- a toleration for every taint that blocks a node the pod could run on. `tolerations` has no merge key in the
  API, so a strategic merge replaces the list: the patch holds the existing tolerations and the new ones;
- never a toleration for node lifecycle taints (`node.kubernetes.io/*`, `node.cloudprovider.kubernetes.io/*`):
  they mark nodes that are not ready, unreachable, shutting down or without a pod network, where the pod
  cannot run either;
- when some node is another OS or architecture than the images (the `platform` rule), a nodeSelector on
  `kubernetes.io/os` (a map: merged) or a `kubernetes.io/arch In [...]` requirement added to every required
  node affinity term (terms have no merge key: the patch holds all of them). Added whenever such a node
  exists, so new tolerations can never put a pod on it.

Nodes the DaemonSet's own selection leaves out stay out: that selection says where it should run.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from nodeagent.placement.matching import untolerated_taints
from nodeagent.placement.model import ARCH_LABELS, OS_LABELS, Requirement, SelectorTerm, Taint, Toleration
from nodeagent.placement.rules import DaemonSetResult, Prepared, Verdict, platform_mismatch, prepare

# Taints that describe a node's condition rather than who may use it: tolerating them never helps a pod run.
LIFECYCLE_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")


def _toleration_dict(toleration: Toleration) -> dict:
    entry: dict = {}
    if toleration.key:
        entry["key"] = toleration.key
    if toleration.operator:
        entry["operator"] = toleration.operator
    if toleration.value:
        entry["value"] = toleration.value
    if toleration.effect:
        entry["effect"] = toleration.effect
    if toleration.toleration_seconds is not None:
        entry["tolerationSeconds"] = toleration.toleration_seconds
    return entry


def toleration_for(taint: Taint) -> Toleration:
    """The narrowest toleration of one taint: its key, its value when it has one, its effect."""
    if taint.value:
        return Toleration(key=taint.key, operator="Equal", value=taint.value, effect=taint.effect)
    return Toleration(key=taint.key, operator="Exists", effect=taint.effect)


def _requirement_dict(requirement: Requirement) -> dict:
    entry: dict = {"key": requirement.key, "operator": requirement.operator}
    if requirement.values or requirement.operator not in ("Exists", "DoesNotExist"):
        entry["values"] = list(requirement.values)
    return entry


def _term_dict(term: SelectorTerm) -> dict:
    entry: dict = {}
    if term.match_expressions:
        entry["matchExpressions"] = [_requirement_dict(r) for r in term.match_expressions]
    if term.match_fields:
        entry["matchFields"] = [_requirement_dict(r) for r in term.match_fields]
    return entry


def _missing_tolerations(p: Prepared, result: DaemonSetResult) -> list[Toleration]:
    wanted: list[Toleration] = []
    for node_result in result.nodes:
        if node_result.verdict != Verdict.BLOCKED or platform_mismatch(p, node_result.node):
            continue
        for taint in untolerated_taints(node_result.node.taints, p.tolerations):
            if taint.key.startswith(LIFECYCLE_TAINT_PREFIXES):
                continue
            toleration = toleration_for(taint)
            if toleration not in wanted:
                wanted.append(toleration)
    return wanted


def _platform_selection(p: Prepared, result: DaemonSetResult) -> tuple[dict[str, str], list[dict] | None]:
    """(nodeSelector entries to merge, full nodeSelectorTerms or None) keeping pods off foreign platforms.

    One value fits a nodeSelector; several need an `In` requirement, added to every affinity term."""
    keys = {mismatch[0] for r in result.nodes if (mismatch := platform_mismatch(p, r.node))}
    selector: dict[str, str] = {}
    added: list[Requirement] = []
    wanted = {
        OS_LABELS[0]: sorted({platform.os for platform in p.platforms}),
        ARCH_LABELS[0]: sorted({platform.arch for platform in p.platforms if platform.arch}),
    }
    for key, values in wanted.items():
        if key not in keys or not values:
            continue
        if len(values) == 1:
            selector[key] = values[0]
        else:
            added.append(Requirement(key, "In", tuple(values)))
    if not added:
        return selector, None
    existing = p.ds.template.required_affinity or (SelectorTerm(),)
    terms = [
        _term_dict(SelectorTerm(term.match_expressions + tuple(added), term.match_fields))
        for term in existing
    ]
    return selector, terms


def patch_for(result: DaemonSetResult) -> dict | None:
    """The strategic-merge patch for one checked DaemonSet, or None when it needs no change."""
    ds = result.daemonset
    p = prepare(ds, result.platforms)
    template_spec: dict = {}
    missing = _missing_tolerations(p, result)
    if missing:
        template_spec["tolerations"] = [_toleration_dict(t) for t in ds.template.tolerations + tuple(missing)]
    selector, terms = _platform_selection(p, result)
    if selector:
        template_spec["nodeSelector"] = selector
    if terms is not None:
        template_spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        }
    if not template_spec:
        return None
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": ds.name, "namespace": ds.namespace},
        "spec": {"template": {"spec": template_spec}},
    }


def render_patches(results: Sequence[DaemonSetResult]) -> str:
    """A YAML stream: one patch per DaemonSet needing one, and a comment for each that does not."""
    out = [
        "# Strategic-merge patches: kubectl -n NAMESPACE patch daemonset NAME --type strategic --patch-file "
        "FILE,\n# or list this file under `patches:` in a kustomization.yaml.\n"
    ]
    for result in results:
        patch = patch_for(result)
        if patch is None:
            out.append(f"# {result.daemonset.key}: no change needed\n")
            continue
        out.append("---\n" + yaml.safe_dump(patch, sort_keys=False, default_flow_style=False))
    return "".join(out)
