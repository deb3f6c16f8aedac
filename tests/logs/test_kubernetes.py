"""Kubernetes metadata from log paths (kubelet pod logs, /var/log/containers links, docker json-file)."""

from __future__ import annotations

import pytest

from nodeagent.logs.kubernetes import metadata_from_path

CONTAINER_ID = "3f1a0c5e9b2d4c7a8e6f1b0d2c3a4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"


def test_kubelet_pod_log() -> None:
    path = (
        "/var/log/pods/kube-system_coredns-5d78c9869d-8x2lq_0b3f9c1e-6a0d-4a57-9c1f-2f8e6d1a7b3c/"
        "coredns/2.log"
    )
    assert metadata_from_path(path) == {
        "namespace": "kube-system",
        "pod": "coredns-5d78c9869d-8x2lq",
        "pod_uid": "0b3f9c1e-6a0d-4a57-9c1f-2f8e6d1a7b3c",
        "container": "coredns",
        "restart_count": 2,
    }


@pytest.mark.parametrize("suffix", ["0.log.20260102-030405", "0.log.20260102-030405.gz"])
def test_kubelet_rotated_pod_log(suffix: str) -> None:
    path = f"/var/log/pods/default_web-0_6c1d2e3f-0000-4a57-9c1f-2f8e6d1a7b3c/nginx/{suffix}"
    meta = metadata_from_path(path)
    assert meta is not None
    assert (meta["namespace"], meta["pod"], meta["container"], meta["restart_count"]) == (
        "default",
        "web-0",
        "nginx",
        0,
    )


def test_static_pod_uid_is_a_hash() -> None:
    path = "/var/log/pods/kube-system_etcd-control-plane_a1b2c3d4e5f60718293a4b5c6d7e8f90/etcd/0.log"
    meta = metadata_from_path(path)
    assert meta is not None and meta["pod_uid"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_var_log_containers_link() -> None:
    path = f"/var/log/containers/kube-proxy-x7k2p_kube-system_kube-proxy-{CONTAINER_ID}.log"
    assert metadata_from_path(path) == {
        "namespace": "kube-system",
        "pod": "kube-proxy-x7k2p",
        "container": "kube-proxy",
        "container_id": CONTAINER_ID,
    }


def test_docker_json_file() -> None:
    assert metadata_from_path(f"/var/lib/docker/containers/{CONTAINER_ID}/{CONTAINER_ID}-json.log") == {
        "container_id": CONTAINER_ID
    }
    assert metadata_from_path(f"/var/lib/docker/containers/{CONTAINER_ID}/{CONTAINER_ID}-json.log.1") == {
        "container_id": CONTAINER_ID
    }


def test_layouts_under_another_root() -> None:
    root = "/tmp/pytest-of-x/test0"
    assert metadata_from_path(f"{root}/var/log/pods/ns_p_uid/c/0.log") == {
        "namespace": "ns",
        "pod": "p",
        "pod_uid": "uid",
        "container": "c",
        "restart_count": 0,
    }
    assert metadata_from_path(f"{root}/var/log/containers/p_ns_c-{CONTAINER_ID}.log") is not None


@pytest.mark.parametrize(
    "path",
    [
        "/var/log/syslog",
        "/var/log/pods/not-three-parts/c/0.log",
        "/var/log/pods/ns_pod_uid_extra/c/0.log",
        "/var/log/pods/ns_pod_uid/c/current.log",
        "/var/log/containers/no-id_here_c.log",
        f"/var/log/containers/p_ns_c-{CONTAINER_ID[:-1]}.log",
        f"/var/lib/docker/containers/{CONTAINER_ID}/other-json.log",
        f"/var/lib/docker/containers/{'0' * 64}/{CONTAINER_ID}-json.log",
        "relative.log",
        "",
    ],
)
def test_other_paths_give_nothing(path: str) -> None:
    assert metadata_from_path(path) is None
