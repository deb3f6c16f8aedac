"""A read-only Kubernetes API client on aiohttp: kubeconfig and in-cluster configuration, GET and watch.

Everything the agent asks the API server is a GET of JSON (lists, page by page, and watches, one event per
line), so this is what a client needs to do: find the server and credentials as kubectl does, keep them
fresh, and make those requests. Kubernetes' generated Python clients carry every API's models (tens of MB
in an image); the agent reads plain JSON and needs none of them.

Configuration, as kubectl reads it:
- kubeconfig: ``current-context`` or the given context; cluster ``server``, ``certificate-authority`` /
  ``-data``, ``insecure-skip-tls-verify``, ``tls-server-name``; user ``token`` / ``tokenFile``,
  ``client-certificate`` / ``-data`` + ``client-key`` / ``-data``, ``username`` / ``password``, and ``exec``
  credential plugins (``client.authentication.k8s.io`` v1 and v1beta1: token or client certificate from the
  plugin's ExecCredential, cached until its ``expirationTimestamp``). Relative paths are relative to the
  kubeconfig file. Not supported (an error says so): ``auth-provider`` (removed from kubectl in 1.26) and
  ``proxy-url``.
- in-cluster: ``KUBERNETES_SERVICE_HOST`` / ``_PORT``, the service account's token (read again when it
  changes: projected tokens are rotated by the kubelet) and CA.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 30.0
EXEC_OUTPUT_BYTES = 1024 * 1024
EXPIRY_MARGIN = 10.0  # renew an exec credential this long before it expires
MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024
ERROR_TEXT_BYTES = 200


class KubeConfigError(Exception):
    """The configuration cannot be used; the message is one line and holds no credential."""


class KubeRequestError(Exception):
    """A request failed: ``status`` is the HTTP status (0 when the server could not be reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ExecPlugin:
    command: str
    args: list[str]
    env: dict[str, str]
    api_version: str
    base_dir: Path


@dataclass
class KubeConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    token_file: Path | None = None
    client_cert: bytes | None = None  # PEM
    client_key: bytes | None = None  # PEM
    username: str | None = None
    password: str | None = None
    exec_plugin: ExecPlugin | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KubeConfigError(f"{what} {path}: {exc.strerror}") from None


def _data_or_file(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except ValueError:
            raise KubeConfigError(f"{key}-data is not base64") from None
    path = section.get(key)
    if path:
        return _read_bytes(base / str(path), key)
    return None


def _named(entries: Any, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(what)
            return value if isinstance(value, dict) else {}
    raise KubeConfigError(f"{what} {name!r} not found")


def load_kubeconfig(path: str, context: str | None = None) -> KubeConfig:
    """The configuration of ``context`` (default: current-context) in the kubeconfig at ``path``."""
    file = Path(path).expanduser()
    text = _read_bytes(file, "kubeconfig")
    if len(text) > MAX_KUBECONFIG_BYTES:
        raise KubeConfigError(f"{file} is larger than {MAX_KUBECONFIG_BYTES // 2**20} MiB")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeConfigError(
            f"{file} is not YAML: {' '.join(str(exc).split())[:ERROR_TEXT_BYTES]}"
        ) from None
    if not isinstance(document, dict):
        raise KubeConfigError(f"{file} is not a kubeconfig")
    name = context or document.get("current-context")
    if not name:
        raise KubeConfigError(f"{file} has no current-context; give a context")
    ctx = _named(document.get("contexts"), str(name), "context")
    cluster = _named(document.get("clusters"), str(ctx.get("cluster")), "cluster")
    user = _named(document.get("users"), str(ctx.get("user")), "user") if ctx.get("user") else {}
    base = file.parent
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"cluster {ctx.get('cluster')!r} has no http(s) server")
    if cluster.get("proxy-url"):
        raise KubeConfigError("proxy-url is not supported")
    if user.get("auth-provider"):
        raise KubeConfigError("auth-provider is not supported (kubectl removed it too): use an exec plugin")
    config = KubeConfig(
        server=server.rstrip("/"),
        ca_data=_data_or_file(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        token=user.get("token") or None,
        token_file=base / str(user["tokenFile"]) if user.get("tokenFile") else None,
        client_cert=_data_or_file(user, "client-certificate", base),
        client_key=_data_or_file(user, "client-key", base),
        username=user.get("username") or None,
        password=user.get("password") or None,
    )
    if (config.client_cert is None) != (config.client_key is None):
        raise KubeConfigError("user has a client certificate without its key, or a key without certificate")
    plugin = user.get("exec")
    if isinstance(plugin, dict):
        api_version = str(plugin.get("apiVersion") or "")
        if api_version not in EXEC_API_VERSIONS:
            raise KubeConfigError(f"exec plugin apiVersion {api_version!r} is not supported")
        env = {
            str(e.get("name")): str(e.get("value")) for e in plugin.get("env") or [] if isinstance(e, dict)
        }
        config.exec_plugin = ExecPlugin(
            command=str(plugin.get("command") or ""),
            args=[str(a) for a in plugin.get("args") or []],
            env=env,
            api_version=api_version,
            base_dir=base,
        )
    return config


def incluster_config(
    environ: Mapping[str, str] | None = None, directory: Path = SERVICE_ACCOUNT_DIR
) -> KubeConfig:
    environ = os.environ if environ is None else environ
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeConfigError("not running in a pod (KUBERNETES_SERVICE_HOST/PORT are not set)")
    if ":" in host:
        host = f"[{host}]"
    token_file = directory / "token"
    if not token_file.is_file():
        raise KubeConfigError(f"no service account token at {token_file} (automountServiceAccountToken?)")
    return KubeConfig(
        server=f"https://{host}:{port}",
        ca_data=_read_bytes(directory / "ca.crt", "service account CA"),
        token_file=token_file,
    )


class _Credentials:
    """The Authorization header and client certificate, kept fresh (token files, exec plugins)."""

    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        self._file_token: tuple[tuple[int, int, int], str] | None = None
        self._exec_until = 0.0
        self._exec_token: str | None = None
        self.exec_cert: tuple[bytes, bytes] | None = None

    def _token_from_file(self, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise KubeRequestError(f"token file {path}: {exc.strerror}") from None
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._file_token is None or self._file_token[0] != stamp:
            self._file_token = (stamp, _read_bytes(path, "token file").decode("utf-8", "replace").strip())
        return self._file_token[1]

    def _run_exec(self) -> None:
        plugin = self.config.exec_plugin
        assert plugin is not None
        info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        env = {**os.environ, **plugin.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        command = plugin.command
        if os.sep in command and not os.path.isabs(command):
            command = str(plugin.base_dir / command)
        try:
            result = subprocess.run(
                [command, *plugin.args],
                env=env,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KubeRequestError(f"exec plugin {plugin.command}: {type(exc).__name__}") from None
        if result.returncode != 0:
            raise KubeRequestError(f"exec plugin {plugin.command} exited with {result.returncode}")
        try:
            credential = json.loads(result.stdout[:EXEC_OUTPUT_BYTES])
            status = credential["status"]
        except (ValueError, KeyError, TypeError):
            raise KubeRequestError(f"exec plugin {plugin.command} printed no ExecCredential") from None
        self._exec_token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        self.exec_cert = (cert.encode(), key.encode()) if cert and key else None
        expiry = status.get("expirationTimestamp")
        if expiry:
            try:
                until = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp()
            except ValueError:
                until = 0.0
            self._exec_until = until - EXPIRY_MARGIN
        else:
            self._exec_until = float("inf")

    def refresh(self) -> bool:
        """Run the exec plugin when its credential expired; True when a new client certificate came."""
        if self.config.exec_plugin is None or time.time() < self._exec_until:
            return False
        before = self.exec_cert
        self._run_exec()
        return self.exec_cert != before

    def authorization(self) -> str | None:
        config = self.config
        if self._exec_token:
            return f"Bearer {self._exec_token}"
        if config.token_file is not None:
            return f"Bearer {self._token_from_file(config.token_file)}"
        if config.token:
            return f"Bearer {config.token}"
        if config.username is not None:
            pair = f"{config.username}:{config.password or ''}".encode()
            return f"Basic {base64.b64encode(pair).decode('ascii')}"
        return None


def _ssl_context(config: KubeConfig, cert: tuple[bytes, bytes] | None) -> ssl.SSLContext | bool:
    if not config.server.startswith("https://"):
        return False
    context = ssl.create_default_context()
    if config.ca_data:
        try:
            context.load_verify_locations(cadata=config.ca_data.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise KubeConfigError("the cluster's certificate authority is not a PEM certificate") from None
    if config.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        # ssl loads certificates from files only: a private temporary directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="nodeagent-kube-") as directory:
            cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
            for path, data in ((cert_path, cert[0]), (key_path, cert[1])):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise KubeConfigError("the client certificate or key cannot be loaded") from None
    return context


class KubeClient:
    """GETs against one API server: ``async with KubeClient(config) as api: await api.get_json(...)``."""

    def __init__(self, config: KubeConfig, timeout: float | None = 30.0) -> None:
        self.config = config
        self.timeout = timeout
        self._credentials = _Credentials(config)
        self._session: Any = None
        self._ssl: ssl.SSLContext | bool = False

    async def __aenter__(self) -> KubeClient:
        import aiohttp

        await asyncio.to_thread(self._credentials.refresh)
        self._ssl = await asyncio.to_thread(self._context)
        # trust_env=False: never a proxy from the environment (no proxy-url support either).
        self._session = aiohttp.ClientSession(trust_env=False, headers={"Accept": "application/json"})
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _context(self) -> ssl.SSLContext | bool:
        cert = self._credentials.exec_cert
        if cert is None and self.config.client_cert is not None and self.config.client_key is not None:
            cert = (self.config.client_cert, self.config.client_key)
        return _ssl_context(self.config, cert)

    async def _headers(self) -> dict[str, str]:
        if await asyncio.to_thread(self._credentials.refresh):
            self._ssl = await asyncio.to_thread(self._context)
        authorization = await asyncio.to_thread(self._credentials.authorization)
        return {"Authorization": authorization} if authorization else {}

    def _request(self, path: str, params: Mapping[str, str], headers: dict[str, str], timeout: Any) -> Any:
        kwargs: dict[str, Any] = {"params": dict(params), "headers": headers, "timeout": timeout}
        if self._ssl is not False:
            kwargs["ssl"] = self._ssl
            if self.config.tls_server_name:
                kwargs["server_hostname"] = self.config.tls_server_name
        return self._session.get(self.config.server + path, allow_redirects=False, **kwargs)

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One GET; raises KubeRequestError (with the status) unless the answer is 2xx JSON."""
        import aiohttp

        headers = await self._headers()
        try:
            async with self._request(
                path, params or {}, headers, aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubeRequestError(f"cannot reach the API server: {exc or type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise KubeRequestError(
                f"API request failed: HTTP {status} {_status_message(body)}".strip(), status
            )
        try:
            document = json.loads(body)
        except ValueError:
            raise KubeRequestError("the API server sent a response that is not JSON", status) from None
        if not isinstance(document, dict):
            raise KubeRequestError("the API server sent a response that is not a JSON object", status)
        return document

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str], read_timeout: float, max_line_bytes: int
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A streaming GET (a watch): yields an iterator of its non-empty lines. Raises KubeRequestError
        with the status when the answer is not 2xx, and when a line is longer than ``max_line_bytes``."""
        import aiohttp

        headers = await self._headers()
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=read_timeout)
        try:
            response = await self._request(path, params, headers, timeout).__aenter__()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubeRequestError(f"cannot reach the API server: {exc or type(exc).__name__}") from None
        try:
            if not 200 <= response.status < 300:
                body = await response.content.read(64 * 1024)
                raise KubeRequestError(
                    f"API request failed: HTTP {response.status} {_status_message(body)}".strip(),
                    response.status,
                )
            yield _lines(response, max_line_bytes)
        finally:
            response.release()


async def _lines(response: Any, max_line_bytes: int) -> AsyncIterator[bytes]:
    import aiohttp

    pending = bytearray()
    try:
        async for chunk in response.content.iter_any():
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                if line.strip():
                    yield line
            if len(pending) > max_line_bytes:
                raise KubeRequestError(f"a watch event is larger than {max_line_bytes // 2**20} MiB")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise KubeRequestError(f"the watch broke: {exc or type(exc).__name__}") from None
    if pending.strip():
        yield bytes(pending)


def _status_message(body: bytes) -> str:
    """The ``message`` of a Status answer (or the start of the body), on one line."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = body[:ERROR_TEXT_BYTES].decode("utf-8", "replace")
    return " ".join(str(message).split())[:ERROR_TEXT_BYTES]
