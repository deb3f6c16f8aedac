"""Rendering results: the table for people, JSON for programs, and the exit status."""

from __future__ import annotations

import json
from collections.abc import Sequence

import yaml

from nodeagent.placement.reality import LiveComparison
from nodeagent.placement.rules import DaemonSetResult, Verdict

# One checked DaemonSet: the prediction, and in live mode how the cluster compares with it.
Checked = tuple[DaemonSetResult, LiveComparison | None]


def exit_status(checked: Sequence[Checked], allow_excluded: bool = False) -> int:
    """0 when every node runs the pod or is excluded by design (another OS or architecture), or is excluded at
    all if allowed; 1 otherwise."""
    acceptable = {Verdict.RUNS, Verdict.EXCLUDED} if allow_excluded else {Verdict.RUNS}
    ok = all(node.verdict in acceptable or node.by_design for result, _ in checked for node in result.nodes)
    return 0 if ok else 1


def _live_json(live: LiveComparison) -> dict:
    return {
        "status_current": live.status_current,
        "generation": live.generation,
        "observed_generation": live.observed_generation,
        "counts": live.counts,
        "disagreements": live.disagreements,
        "notes": live.notes,
    }


def to_json(checked: Sequence[Checked], input_warnings: Sequence[str] = ()) -> dict:
    daemonsets = []
    for result, live in checked:
        nodes = []
        for node_result in result.nodes:
            entry = {
                "name": node_result.node.name,
                "control_plane": node_result.node.control_plane,
                "role": node_result.node.role,
                "verdict": node_result.verdict.value,
                "by_design": node_result.by_design,
                "reasons": [
                    {"rule": reason.rule, "message": reason.message, "fix": reason.fix}
                    for reason in node_result.reasons
                ],
            }
            if live is not None and node_result.node.name in live.nodes:
                reality = live.nodes[node_result.node.name]
                entry["live"] = {
                    "agrees": reality.agrees,
                    "pods": [{"name": p.name, "state": p.state, "detail": p.detail} for p in reality.pods],
                    "note": reality.note,
                }
            nodes.append(entry)
        item = {
            "namespace": result.daemonset.namespace,
            "name": result.daemonset.name,
            "source": result.daemonset.source,
            "nodes": nodes,
            "summary": result.summary(),
            "warnings": result.warnings,
        }
        if live is not None:
            item["live"] = _live_json(live)
        daemonsets.append(item)
    return {"daemonsets": daemonsets, "warnings": list(input_warnings)}


def render_json(checked: Sequence[Checked], input_warnings: Sequence[str] = ()) -> str:
    return json.dumps(to_json(checked, input_warnings), indent=2) + "\n"


def render_yaml(checked: Sequence[Checked], input_warnings: Sequence[str] = ()) -> str:
    plain = json.loads(json.dumps(to_json(checked, input_warnings)))  # StrEnum members become plain strings
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]).rstrip()
        for row in rows
    ]


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def render_table(checked: Sequence[Checked], input_warnings: Sequence[str] = (), wide: bool = False) -> str:
    """One line per node; ``wide`` (-o wide) adds each node's platform (os/arch) and taints."""
    out: list[str] = []
    for warning in input_warnings:
        out.append(f"warning: {warning}")
    if input_warnings:
        out.append("")
    for number, (result, live) in enumerate(checked):
        if number:
            out.append("")
        ds = result.daemonset
        out.append(f"DaemonSet {ds.key}  ({ds.source})")
        header = ["NODE", "ROLE", "VERDICT"] + (["CLUSTER"] if live else [])
        header += (["PLATFORM", "TAINTS"] if wide else []) + ["REASON"]
        rows = [header]
        for node_result in result.nodes:
            row = [node_result.node.name, node_result.node.role, node_result.verdict.value]
            if live:
                reality = live.nodes.get(node_result.node.name)
                state = reality.pod.state if reality and reality.pod else "no pod"
                row.append(state if not reality or reality.agrees else f"{state} (!)")
            if wide:
                taints = ",".join(map(str, node_result.node.taints)) or "<none>"
                row += [node_result.node.platform, taints]
            row.append("; ".join(reason.message for reason in node_result.reasons))
            rows.append(row)
        out.extend(_columns(rows))
        summary = result.summary()
        out.append(
            f"Summary: {summary['nodes']} nodes: {summary['runs']} runs, {summary['blocked']} blocked, "
            f"{summary['excluded']} excluded, {summary['pending']} pending"
        )
        if live:
            counts = ", ".join(
                f"{name} {'?' if pair['actual'] is None else pair['actual']} (predicted {pair['predicted']})"
                for name, pair in live.counts.items()
            )
            out.append(f"Cluster: {counts}")
            for note in live.notes:
                out.append(f"  note: {note}")
            if live.disagreements:
                out.append("Prediction and cluster disagree:")
                out.extend(f"  - {line}" for line in live.disagreements)
        if result.warnings:
            out.append("Warnings:")
            for warning in result.warnings:
                first, *rest = warning.splitlines()
                out.append(f"  - {first}")
                out.extend(f"    {line}" for line in rest)
        fixes: dict[str, list[str]] = {}
        for node_result in result.nodes:
            for reason in node_result.reasons:
                if reason.fix:
                    fixes.setdefault(reason.fix, []).append(node_result.node.name)
        if fixes:
            out.append("Fixes:")
            for fix, nodes in fixes.items():
                names = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
                out.append(f"  - for {names}:")
                out.append(_indent(fix, "      "))
    return "\n".join(out) + "\n"
