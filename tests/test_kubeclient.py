"""The Kubernetes API client: kubeconfig as kubectl reads it (CA and client certificates as files or data,
tokens, token files, exec plugins), in-cluster configuration, and GETs and watches against a local HTTPS
API server that checks client certificates."""

from __future__ import annotations

import base64
import json
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from nodeagent.kubeclient import (
    KubeClient,
    KubeConfigError,
    KubeRequestError,
    incluster_config,
    load_kubeconfig,
)


@pytest.fixture
async def api_server(pki: Path) -> AsyncIterator[tuple[int, list[str | None]]]:
    """HTTPS on 127.0.0.1 requiring a client certificate of the test CA; records Authorization headers."""
    seen: list[str | None] = []

    async def nodes(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization"))
        if request.query.get("watch") == "1":
            if request.query.get("resourceVersion") == "old":
                gone = {"kind": "Status", "code": 410, "message": "too old resource version"}
                return web.json_response(gone, status=410)
            response = web.StreamResponse()
            await response.prepare(request)
            for name in ("a", "b"):
                event = {"type": "ADDED", "object": {"metadata": {"name": name}}}
                await response.write(json.dumps(event).encode() + b"\n")
            return response
        return web.json_response({"kind": "NodeList", "items": [{"metadata": {"name": "n1"}}]})

    async def forbidden(request: web.Request) -> web.Response:
        body = {"kind": "Status", "code": 403, "message": 'pods is forbidden: User "x"\ncannot list'}
        return web.json_response(body, status=403)

    app = web.Application()
    app.router.add_get("/api/v1/nodes", nodes)
    app.router.add_get("/api/v1/pods", forbidden)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(cafile=str(pki / "ca.crt"))
    context.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(directory: Path, server: str, user: dict[str, Any], cluster: dict[str, Any]) -> Path:
    path = directory / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "main",
                "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


async def test_client_certificate_and_ca_as_data(
    pki: Path, tmp_path: Path, api_server: tuple[int, list[str | None]]
) -> None:
    port, seen = api_server
    user = {"client-certificate-data": b64(pki / "client.crt"), "client-key-data": b64(pki / "client.key")}
    path = write_kubeconfig(
        tmp_path, f"https://127.0.0.1:{port}", user, {"certificate-authority-data": b64(pki / "ca.crt")}
    )
    async with KubeClient(load_kubeconfig(str(path))) as api:
        nodes = await api.get_json("/api/v1/nodes", {"limit": "10"})
        with pytest.raises(KubeRequestError) as refused:
            await api.get_json("/api/v1/pods")
    assert nodes["items"][0]["metadata"]["name"] == "n1"
    assert seen == [None]
    assert refused.value.status == 403
    assert str(refused.value) == 'API request failed: HTTP 403 pods is forbidden: User "x" cannot list'
    assert not list(tmp_path.glob("nodeagent-kube-*")), "key material left on disk"


async def test_files_relative_to_the_kubeconfig_and_tls_server_name(
    pki: Path, tmp_path: Path, api_server: tuple[int, list[str | None]]
) -> None:
    port, seen = api_server
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_bytes((pki / name).read_bytes())
    (tmp_path / "token").write_text("first-token\n")
    user = {"client-certificate": "client.crt", "client-key": "client.key", "tokenFile": "token"}
    cluster = {"certificate-authority": "ca.crt", "tls-server-name": "localhost"}
    path = write_kubeconfig(tmp_path, f"https://127.0.0.1:{port}", user, cluster)
    async with KubeClient(load_kubeconfig(str(path))) as api:
        await api.get_json("/api/v1/nodes")
        (tmp_path / "token").write_text("rotated-token-longer\n")  # the kubelet rotates projected tokens
        await api.get_json("/api/v1/nodes")
    assert seen == ["Bearer first-token", "Bearer rotated-token-longer"]


async def test_unknown_server_ca_is_refused(
    pki: Path, tmp_path: Path, api_server: tuple[int, list[str | None]]
) -> None:
    port, _ = api_server
    user = {"client-certificate-data": b64(pki / "client.crt"), "client-key-data": b64(pki / "client.key")}
    cluster = {"certificate-authority-data": b64(pki / "otherca.crt")}
    path = write_kubeconfig(tmp_path, f"https://127.0.0.1:{port}", user, cluster)
    async with KubeClient(load_kubeconfig(str(path))) as api:
        with pytest.raises(KubeRequestError, match=r"cannot reach the API server.*CERTIFICATE_VERIFY_FAILED"):
            await api.get_json("/api/v1/nodes")


async def test_exec_plugin_token_is_renewed_when_it_expires(
    pki: Path, tmp_path: Path, api_server: tuple[int, list[str | None]]
) -> None:
    """The plugin runs at start and again once its credential expired (here: already at issue)."""
    port, seen = api_server
    counter = tmp_path / "calls"
    plugin = tmp_path / "get-token"
    plugin.write_text(
        f"""#!{sys.executable}
import json, os, pathlib
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and os.environ["EXTRA"] == "yes"
calls = pathlib.Path({str(counter)!r})
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": f"exec-{{n}}", "expirationTimestamp": "2020-01-01T00:00:00Z"}}}}))
"""
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    user = {
        "client-certificate-data": b64(pki / "client.crt"),
        "client-key-data": b64(pki / "client.key"),
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./get-token",
            "env": [{"name": "EXTRA", "value": "yes"}],
            "interactiveMode": "Never",
        },
    }
    path = write_kubeconfig(
        tmp_path, f"https://127.0.0.1:{port}", user, {"certificate-authority-data": b64(pki / "ca.crt")}
    )
    async with KubeClient(load_kubeconfig(str(path))) as api:
        await api.get_json("/api/v1/nodes")
        await api.get_json("/api/v1/nodes")
    assert seen == ["Bearer exec-2", "Bearer exec-3"]


async def test_watch_lines_and_gone_resource_version(
    pki: Path, tmp_path: Path, api_server: tuple[int, list[str | None]]
) -> None:
    port, _ = api_server
    user = {"client-certificate-data": b64(pki / "client.crt"), "client-key-data": b64(pki / "client.key")}
    path = write_kubeconfig(
        tmp_path, f"https://127.0.0.1:{port}", user, {"certificate-authority-data": b64(pki / "ca.crt")}
    )
    async with KubeClient(load_kubeconfig(str(path))) as api:
        async with api.stream("/api/v1/nodes", {"watch": "1", "resourceVersion": "5"}, 10.0, 2**20) as lines:
            events = [json.loads(line) async for line in lines]
        with pytest.raises(KubeRequestError) as gone:
            async with api.stream("/api/v1/nodes", {"watch": "1", "resourceVersion": "old"}, 10.0, 2**20):
                pass
    assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
    assert gone.value.status == 410


def test_in_cluster_configuration(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    config = incluster_config(
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path
    )
    assert config.server == "https://[fd00::1]:443"
    assert config.token_file == tmp_path / "token"
    with pytest.raises(KubeConfigError, match="not running in a pod"):
        incluster_config({}, tmp_path)


@pytest.mark.parametrize(
    "user, cluster, message",
    [
        ({"auth-provider": {"name": "gcp"}}, {}, "auth-provider is not supported"),
        ({"client-certificate-data": "eA=="}, {}, "without its key"),
        ({"token": "t"}, {"proxy-url": "http://proxy:3128"}, "proxy-url is not supported"),
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}}, {}, "v1alpha1"),
        ({"client-key": "missing.key", "client-certificate": "missing.crt"}, {}, "missing.crt"),
    ],
)
def test_unusable_kubeconfigs_are_refused_in_one_line(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any], message: str
) -> None:
    path = write_kubeconfig(tmp_path, "https://127.0.0.1:6443", user, cluster)
    with pytest.raises(KubeConfigError, match=message) as refused:
        load_kubeconfig(str(path))
    assert "\n" not in str(refused.value)
    with pytest.raises(KubeConfigError, match="context 'other' not found"):
        load_kubeconfig(str(write_kubeconfig(tmp_path, "https://h", {"token": "t"}, {})), "other")
