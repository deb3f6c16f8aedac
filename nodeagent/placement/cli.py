"""`nodeagent check-placement`: which nodes will run a DaemonSet's pod, which will not, and why."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import re
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

from nodeagent.placement.live import Cluster, ClusterError, events_by_pod, resolve_kubeconfig
from nodeagent.placement.model import DaemonSet, Platform
from nodeagent.placement.patch import render_patches
from nodeagent.placement.reality import compare, owned_pods, pod_state
from nodeagent.placement.report import Checked, exit_status, render_json, render_table, render_yaml
from nodeagent.placement.rules import DaemonSetResult, evaluate, index_usage
from nodeagent.placement.sources import (
    DEFAULT_MAX_INPUT_BYTES,
    InputError,
    Loaded,
    bulk_loading,
    daemonsets_from,
    load_kustomization,
    load_paths,
    nodes_from,
    pods_from,
    select_daemonsets,
)

EXIT_BAD_INPUT = 2
# The prefix of every error line of every nodeagent command (nodeagent/cli.py prints the same).
ERROR_PREFIX = "nodeagent: error: "
OUTPUTS = ("table", "wide", "json", "yaml", "patch")
T = TypeVar("T")

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """kubectl's --request-timeout: a bare integer is seconds, else a Go duration (1s, 2m, 1h30m, 500ms).
    Seconds; 0 means no timeout."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    position, seconds = 0, 0.0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if not match:
            raise argparse.ArgumentTypeError(
                f"invalid duration {text!r}: use a number with a unit, e.g. 5s, 1m, 1h30m, 500ms"
            )
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not text:
        raise argparse.ArgumentTypeError("invalid duration ''")
    return seconds


def _platform(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Predict, node by node, whether a DaemonSet's pod runs there, and why not: the DaemonSet "
        "controller's decision (nodeName, nodeSelector, node affinity, taints) and then the scheduler's "
        "(resources, pod count, host ports, node readiness). Exit status: 0 every node runs the pod, "
        "1 some node does not, 2 bad input."
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="DaemonSet manifests: a YAML/JSON file, a directory (rendered with kubectl kustomize when it "
        "has a kustomization.yaml), or - for stdin; repeatable",
    )
    parser.add_argument(
        "-k",
        "--kustomize",
        action="append",
        default=[],
        metavar="DIR",
        help="DaemonSets of a kustomization directory, rendered with `kubectl kustomize DIR`; repeatable",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        metavar="NAMESPACE",
        help="check only DaemonSets in this namespace; manifests without one are in it (as with kubectl)",
    )
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="check DaemonSets of every namespace (the default: unlike kubectl, the question is usually "
        "every DaemonSet)",
    )
    parser.add_argument("--daemonset", metavar="[NAMESPACE/]NAME", help="check only this DaemonSet")
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        type=_platform,
        metavar="OS[/ARCH]",
        help="what the DaemonSets' images run on (e.g. linux/amd64, linux/arm64); repeatable. Default: "
        "spec.os.name, else linux on any architecture. Nodes of another OS or architecture are excluded, "
        "by design",
    )
    parser.add_argument(
        "--nodes",
        action="append",
        default=[],
        metavar="PATH",
        help="offline: nodes as `kubectl get nodes -o json|yaml` prints them (file or directory); repeatable",
    )
    parser.add_argument(
        "--pods",
        action="append",
        default=[],
        metavar="PATH",
        help="offline: pods already on those nodes (`kubectl get pods -A -o json`), for resources and host "
        "ports; repeatable",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="read nodes, pods and DaemonSets (unless -f is given) from the cluster, read-only, and compare "
        "the prediction with what the cluster shows",
    )
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="keep watching the cluster (implies --live) and serve the verdicts as Prometheus metrics on "
        "--metrics-address: the in-cluster placement monitor (manifests/components/placement-monitor)",
    )
    parser.add_argument(
        "--metrics-address",
        default=":9102",
        metavar="[HOST]:PORT",
        help="--watch: where to serve /metrics and /healthz; default %(default)s",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="live: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)",
    )
    parser.add_argument(
        "--context", metavar="NAME", help="live: kubeconfig context (default: the current one)"
    )
    parser.add_argument(
        "--request-timeout",
        type=parse_duration,
        default=30.0,
        metavar="DURATION",
        help="live: timeout per API request, e.g. 5s, 1m (a bare number is seconds; 0: none); default 30s",
    )
    parser.add_argument(
        "--max-input-mib",
        type=_positive_int,
        default=DEFAULT_MAX_INPUT_BYTES // 2**20,
        metavar="MIB",
        help="refuse any input file (or stdin, or rendered kustomization) larger than this; default "
        "%(default)s",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="table",
        help="table (default), wide (adds platform and taints), json, yaml, or patch: the strategic-merge / "
        "kustomize patch that makes each DaemonSet land on every node it should",
    )
    parser.add_argument("--fix", action="store_true", help="same as -o patch")
    parser.add_argument(
        "--allow-excluded",
        action="store_true",
        help="exit 0 when nodes are excluded on purpose (nodeName, nodeSelector, node affinity)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _load(paths: list[str], args: argparse.Namespace, stdin: IO[str] | None) -> list[Loaded]:
    return load_paths(paths, stdin, args.max_input_mib * 2**20)


def _check_inputs(args: argparse.Namespace) -> None:
    if args.namespace and args.all_namespaces:
        raise InputError("-n/--namespace and -A/--all-namespaces exclude each other")
    if args.fix:
        if args.output not in ("table", "patch"):
            raise InputError(f"--fix prints a patch; it cannot be combined with -o {args.output}")
        args.output = "patch"
    if args.daemonset and args.namespace and "/" not in args.daemonset:
        args.daemonset = f"{args.namespace}/{args.daemonset}"
    if args.watch:
        if args.nodes or args.pods or args.filename or args.kustomize or args.output != "table":
            raise InputError(
                "--watch reads everything from the cluster and serves metrics; it takes no -f, -k, "
                "--nodes, --pods or -o"
            )
        args.live = True
    if args.live and (args.nodes or args.pods):
        raise InputError("--nodes and --pods are for offline checks; --live reads them from the cluster")
    if not args.live:
        if not args.filename and not args.kustomize:
            raise InputError(
                "no DaemonSet input: give -f/--filename PATH or -k/--kustomize DIR "
                "(or --live to read the cluster)"
            )
        if not args.nodes:
            raise InputError("no nodes: give --nodes PATH (kubectl get nodes -o json) or use --live")
    if [*args.filename, *args.nodes, *args.pods].count("-") > 1:
        raise InputError("'-' (stdin) can be given only once")


def _in_namespace(daemonsets: list[DaemonSet], args: argparse.Namespace, where: str) -> list[DaemonSet]:
    if args.namespace:
        daemonsets = [ds for ds in daemonsets if ds.namespace == args.namespace]
        if not daemonsets:
            raise InputError(f"no DaemonSet in namespace {args.namespace} in {where}")
    return select_daemonsets(daemonsets, args.daemonset)


def _file_daemonsets(args: argparse.Namespace, stdin: IO[str] | None) -> list[DaemonSet]:
    loaded = _load(args.filename, args, stdin)
    for directory in args.kustomize:
        loaded += load_kustomization(Path(directory), args.max_input_mib * 2**20)
    daemonsets = daemonsets_from(loaded, args.namespace or "default")
    where = ", ".join([*args.filename, *args.kustomize])
    if not daemonsets:
        raise InputError(f"no DaemonSet found in {where}")
    return _in_namespace(daemonsets, args, where)


def _platforms(args: argparse.Namespace) -> tuple[Platform, ...]:
    return tuple(args.platform)


def check_offline(args: argparse.Namespace, stdin: IO[str] | None = None) -> tuple[list[Checked], list[str]]:
    daemonsets = _file_daemonsets(args, stdin)
    problems: list[str] = []
    with bulk_loading():
        nodes = nodes_from(_load(args.nodes, args, stdin), problems)
        if not nodes:
            raise InputError(f"no nodes found in {', '.join(args.nodes)}")
        pods = pods_from(_load(args.pods, args, stdin), problems) if args.pods else []
        usage = index_usage(pods)
        platforms = _platforms(args)
        return [(evaluate(ds, nodes, usage, platforms), None) for ds in daemonsets], problems


def _evaluate_cluster(
    daemonsets: list[DaemonSet],
    node_objects: list[dict],
    pod_objects: list[dict],
    platforms: tuple[Platform, ...],
) -> tuple[list[DaemonSetResult], list[str], list]:
    problems: list[str] = []
    with bulk_loading():
        nodes = nodes_from((Loaded(obj, "cluster") for obj in node_objects), problems)
        if not nodes:
            raise InputError("the cluster has no nodes")
        pods = pods_from((Loaded(obj, "cluster") for obj in pod_objects), problems)
        usage = index_usage(pods)
        return [evaluate(ds, nodes, usage, platforms) for ds in daemonsets], problems, pods


async def check_live(
    args: argparse.Namespace, stdin: IO[str] | None = None
) -> tuple[list[Checked], list[str]]:
    file_daemonsets = _file_daemonsets(args, stdin) if args.filename or args.kustomize else None
    kubeconfig = resolve_kubeconfig(args.kubeconfig)
    async with Cluster(kubeconfig, args.context, args.request_timeout or None) as cluster:
        namespace = args.namespace
        if args.daemonset and "/" in args.daemonset:
            namespace = args.daemonset.split("/", 1)[0]
        fetches: list[Coroutine[Any, Any, list[dict]]] = [cluster.nodes(), cluster.pods()]
        if file_daemonsets is None:
            fetches.append(cluster.daemonsets(namespace))
        fetched = await asyncio.gather(*fetches)
        node_objects, pod_objects = fetched[0], fetched[1]
        if file_daemonsets is None:
            cluster_daemonsets = daemonsets_from(
                Loaded(dict(obj, kind="DaemonSet"), "cluster") for obj in fetched[2]
            )
            if not cluster_daemonsets:
                raise InputError(
                    "the cluster has no DaemonSets" + (f" in namespace {namespace}" if namespace else "")
                )
            daemonsets = _in_namespace(cluster_daemonsets, args, "the cluster")
        else:
            daemonsets = file_daemonsets
        # Parsing and checking thousands of objects is CPU work: keep it off the event loop.
        results, problems, pods = await asyncio.to_thread(
            _evaluate_cluster, daemonsets, node_objects, pod_objects, _platforms(args)
        )
        if file_daemonsets is not None:
            return [(result, None) for result in results], problems

        # Ask for scheduler events only where a pod is waiting for the scheduler.
        waiting_namespaces = sorted(
            {
                result.daemonset.namespace
                for result in results
                for pod in owned_pods(result.daemonset, pods)
                if pod_state(pod, {}).state == "unschedulable"
            }
        )
        event_lists = await asyncio.gather(*(cluster.scheduling_events(ns) for ns in waiting_namespaces))
        events = events_by_pod([event for events in event_lists for event in events])
        return [(result, compare(result, pods, events)) for result in results], problems


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from inside a running loop (an embedding application): use a loop of our own in a thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run(args: argparse.Namespace, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    stdout = stdout or sys.stdout
    try:
        _check_inputs(args)
        if args.watch:
            from nodeagent.placement.monitor import run_monitor

            kubeconfig = resolve_kubeconfig(args.kubeconfig)
            return _run_coroutine(
                run_monitor(
                    kubeconfig,
                    args.context,
                    args.request_timeout or None,
                    args.metrics_address,
                    _platforms(args),
                )
            )
        if args.live:
            checked, problems = _run_coroutine(check_live(args, stdin))
        else:
            checked, problems = check_offline(args, stdin)
    except (InputError, ClusterError) as error:
        print(f"{ERROR_PREFIX}{error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.output == "patch":
        stdout.write(render_patches([result for result, _ in checked]))
    elif args.output in ("json", "yaml"):
        stdout.write((render_json if args.output == "json" else render_yaml)(checked, problems))
    else:
        stdout.write(render_table(checked, problems, wide=args.output == "wide"))
    stdout.flush()
    return exit_status(checked, args.allow_excluded)


def main(argv: list[str] | None = None) -> int:
    """`python -m nodeagent.placement ARGS`: exactly `nodeagent check-placement ARGS`."""
    from nodeagent.cli import main as nodeagent_main

    return nodeagent_main(["check-placement", *(sys.argv[1:] if argv is None else argv)])
