"""The tests' fake Kubernetes API server (tests/placement/fake_apiserver.py) as a process of its own, for
benchmarks that run nodeagent with pod metadata on: it serves the recorded kind cluster plus one pod per
``<namespace>_<pod>_<uid>`` directory given, scheduled on NODE (a copy of a recorded pod with the names,
uid and node replaced, one container named CONTAINER).

    python -m benchmarks._fake_apiserver DIRECTORY NODE CONTAINER NS_POD_UID...

Writes DIRECTORY/kubeconfig (current context: the fake server, on 127.0.0.1) and then DIRECTORY/ready;
serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import copy
import signal
import sys
from pathlib import Path

import yaml

from tests.placement.fake_apiserver import FakeCluster, recorded_cluster, serving

TEMPLATE_POD = "coredns-74ff55c5b-cpfqs"  # a Deployment's pod: labels, owner, image, pod IP


def pod_for(template: dict, directory: str, node: str, container: str) -> dict:
    namespace, name, uid = directory.split("_", 2)
    pod = copy.deepcopy(template)
    pod["metadata"].update(namespace=namespace, name=name, uid=uid)
    pod["spec"]["nodeName"] = node
    pod["spec"]["containers"] = [dict(pod["spec"]["containers"][0], name=container)]
    statuses = pod["status"].get("containerStatuses") or [{}]
    pod["status"]["containerStatuses"] = [dict(statuses[0], name=container)]
    return pod


def cluster_for(directories: list[str], node: str, container: str) -> FakeCluster:
    cluster = recorded_cluster()
    cluster.page_size = None  # whole lists: pagination is the tests' business
    template = next(p for p in cluster.pods if p["metadata"]["name"] == TEMPLATE_POD)
    cluster.pods += [pod_for(template, directory, node, container) for directory in directories]
    return cluster


async def serve(directory: Path, cluster: FakeCluster) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    async with serving(cluster, directory) as kubeconfig:
        document = yaml.safe_load(kubeconfig.read_text())
        document["current-context"] = "test"
        kubeconfig.write_text(yaml.safe_dump(document))
        (directory / "ready").touch()
        await stopped.wait()


def main(argv: list[str]) -> int:
    directory, node, container, *pods = argv
    asyncio.run(serve(Path(directory), cluster_for(pods, node, container)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
