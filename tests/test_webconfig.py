"""--web.config.file in exporter-toolkit's format: the files `promtool check web-config` accepts load
unchanged, the ones it refuses are refused in one line; the server speaks TLS with certificates re-read on
the next connection, asks for basic auth, and the real Prometheus scrapes it with TLS, basic auth and a
client certificate (and is refused with a wrong password or a client certificate from an unknown CA)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError
from nodeagent.metrics.scrape import Scraper
from nodeagent.server import MetricsServer
from nodeagent.webconfig import (
    BasicAuth,
    WebConfigSource,
    basic_credentials,
    load_web_config,
    peer_sans,
)
from tests.conftest import ROOT, free_port, require_binary, running_prometheus

PASSWORD = "s3cret-scraper"
# bcrypt of PASSWORD at cost 4; $2y$ as htpasswd writes it.
PASSWORD_HASH = "$2y$04$KCu46286hrQvp65pjxylDetB690j859VfO61mm7YEPp1Xjutrqy.S"


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("PROMTOOL") or require_binary("promtool")
    return subprocess.run(
        [binary, "check", "web-config", str(path)], capture_output=True, text=True, timeout=60
    )


def write(directory: Path, name: str, document: dict[str, Any] | str) -> Path:
    path = directory / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------
# The file format, against promtool


def accepted_files(pki: Path) -> dict[str, dict[str, Any]]:
    return {
        "tls": {
            "tls_server_config": {"cert_file": str(pki / "server.crt"), "key_file": str(pki / "server.key")}
        },
        "relative-paths": {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}},
        "basic-auth-only": {"basic_auth_users": {"prometheus": PASSWORD_HASH}},
        "mtls-everything": {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": "ca.crt",
                "min_version": "TLS12",
                "max_version": "TLS13",
                "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
                "curve_preferences": ["CurveP256", "X25519"],
                "prefer_server_cipher_suites": False,
            },
            "http_server_config": {
                "http2": False,
                "headers": {
                    "X-Frame-Options": "deny",
                    "X-Content-Type-Options": "nosniff",
                    "Strict-Transport-Security": "max-age=31536000",
                    "Content-Security-Policy": "default-src 'none'",
                    "X-XSS-Protection": "1",
                },
            },
            "basic_auth_users": {"prometheus": PASSWORD_HASH, "other": PASSWORD_HASH},
        },
        "verify-if-given": {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_auth_type": "VerifyClientCertIfGiven",
                "client_ca_file": "ca.crt",
            }
        },
        "empty": {},
    }


def refused_files(pki: Path) -> dict[str, tuple[str, str]]:
    """name -> (file text, what our one-line error says)."""
    tls = f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
    return {
        "client-auth-alone-turns-tls-on": (
            "tls_server_config:\n  client_auth_type: NoClientCert\n",
            ":2: tls_server_config: missing one of cert or cert_file",
        ),
        "unknown-top-level-key": ("tls_server_confg: {}\n", ":1: tls_server_confg: unknown key"),
        "unknown-tls-key": (tls + "  cert_path: x\n", ":4: tls_server_config.cert_path: unknown key"),
        "unknown-cipher": (
            tls + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
            ":4: tls_server_config.cipher_suites: unknown cipher: 'TLS_RSA_WITH_RC4_128_SHA'",
        ),
        "unknown-curve": (tls + "  curve_preferences: [P256]\n", ":4: tls_server_config.curve_preferences"),
        "unknown-version": (tls + "  min_version: TLS14\n", ":4: tls_server_config.min_version"),
        "unknown-client-auth": (
            tls + "  client_auth_type: Always\n",
            ":4: tls_server_config.client_auth_type",
        ),
        "ca-without-client-auth": (
            tls + f"  client_ca_file: {pki}/ca.crt\n",
            "client CA's have been configured without a Client Auth Policy",
        ),
        "missing-key": (
            f"tls_server_config:\n  cert_file: {pki}/server.crt\n",
            ":2: tls_server_config: missing one of key or key_file",
        ),
        "missing-cert-file": (
            f"tls_server_config:\n  cert_file: {pki}/nothere.crt\n  key_file: {pki}/server.key\n",
            ":2: tls_server_config.cert_file: cannot read cert_file",
        ),
        "key-of-another-cert": (
            f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/client.key\n",
            ":2: tls_server_config.cert_file: failed to load X509KeyPair",
        ),
        "header-not-allowed": (
            "http_server_config:\n  headers:\n    Server: mine\n",
            ":2: http_server_config.headers: HTTP header 'Server' can not be configured",
        ),
        "header-bad-value": (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            ":2: http_server_config.headers: invalid value for X-Frame-Options",
        ),
        "not-bcrypt": (
            "basic_auth_users:\n  prometheus: plain-text-password\n",
            ":2: basic_auth_users.prometheus: not a bcrypt hash",
        ),
        "users-not-a-mapping": ("basic_auth_users: [a, b]\n", ":1: basic_auth_users: expected a mapping"),
    }


def test_files_promtool_accepts_load_unchanged(pki: Path) -> None:
    for name, document in accepted_files(pki).items():
        path = write(pki, f"accepted-{name}.yml", document)
        result = promtool_check(path)
        assert result.returncode == 0, (name, result.stdout + result.stderr)
        config = load_web_config(str(path))
        assert config.tls_enabled == ("tls_server_config" in document), name


def test_files_promtool_refuses_are_refused_in_one_line(pki: Path) -> None:
    for name, (text, message) in refused_files(pki).items():
        path = write(pki, f"refused-{name}.yml", text)
        result = promtool_check(path)
        assert result.returncode != 0, (name, result.stdout)
        with pytest.raises(ConfigError) as caught:
            load_web_config(str(path))
        error = str(caught.value)
        assert error.startswith(str(path)), (name, error)
        assert message in error, (name, error)
        assert "\n" not in error


def test_loaded_values(pki: Path) -> None:
    document = accepted_files(pki)["mtls-everything"]
    document["tls_server_config"]["client_allowed_sans"] = ["prometheus"]  # newer than Debian's promtool
    document["rate_limit"] = {"burst": 5, "interval": "1s"}
    path = write(pki, "loaded.yml", document)
    config = load_web_config(str(path))
    assert config.users == {"prometheus": PASSWORD_HASH.encode(), "other": PASSWORD_HASH.encode()}
    assert config.headers["X-Frame-Options"] == "deny"
    assert config.http2 is False
    assert (config.rate_limit.burst, config.rate_limit.interval) == (5, 1.0)
    context = config.ssl_context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.allowed_sans == frozenset({"prometheus"})
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES128-GCM-SHA256"}
    assert str(pki / "server.crt") in config.watched and str(pki / "ca.crt") in config.watched


def test_inline_certificate_and_key(pki: Path) -> None:
    """cert/key/client_ca given as PEM text (newer exporter-toolkit; the Debian promtool predates it)."""
    document = {
        "tls_server_config": {
            "cert": (pki / "server.crt").read_text(),
            "key": (pki / "server.key").read_text(),
            "client_ca": (pki / "ca.crt").read_text(),
            "client_auth_type": "RequireAndVerifyClientCert",
        }
    }
    config = load_web_config(str(write(pki, "inline.yml", document)))
    assert config.ssl_context is not None and config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.watched == (str(pki / "inline.yml"),)


def test_no_error_quotes_a_secret(pki: Path) -> None:
    inline_key = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    document = {"tls_server_config": {"cert": (pki / "server.crt").read_text(), "key": inline_key}}
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(write(pki, "badkey.yml", document)))
    assert "TOPSECRETKEYMATERIAL" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(write(pki, "plain.yml", "basic_auth_users:\n  u: hunter2-password\n")))
    assert "hunter2" not in str(caught.value)


def test_requiring_an_unverified_certificate_needs_a_ca(pki: Path) -> None:
    """Python's ssl cannot require a client certificate without verifying it: said, not silently wrong."""
    text = (
        f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
        "  client_auth_type: RequireAnyClientCert\n"
    )
    with pytest.raises(ConfigError, match="give the CA"):
        load_web_config(str(write(pki, "anycert.yml", text)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_config_or_a_config_error(data: bytes) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nodeagent-webconfig-fuzz-{os.getpid()}.yml"
    path.write_bytes(data)
    try:
        load_web_config(str(path))
    except ConfigError as exc:
        assert "\n" not in str(exc)
    finally:
        path.unlink()


def test_basic_credentials_as_go_reads_them() -> None:
    token = base64.b64encode(b"prometheus:pa:ss").decode()
    assert basic_credentials(f"Basic {token}") == ("prometheus", b"pa:ss")
    assert basic_credentials(f"bAsIc {token}") == ("prometheus", b"pa:ss")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert basic_credentials(None) is None


@given(st.text(max_size=300))
def test_any_authorization_header_parses_or_is_none(header: str) -> None:
    result = basic_credentials(header)
    assert result is None or (isinstance(result[0], str) and isinstance(result[1], bytes))


def test_sans_compare_as_go_prints_them() -> None:
    certificate = {"subjectAltName": (("DNS", "a"), ("IP Address", "0:0:0:0:0:0:0:1"), ("email", "x@y"))}
    assert peer_sans(certificate) == ["a", "::1", "x@y"]


async def test_password_checks_are_cached_per_user_hash_and_password() -> None:
    auth = BasicAuth()
    users = {"prometheus": PASSWORD_HASH.encode()}
    good = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
    unknown = "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode()
    try:
        assert await auth.allowed(users, good)
        assert not await auth.allowed(users, bad)
        assert not await auth.allowed(users, unknown)
        assert len(auth._cache) == 3
        assert await auth.allowed(users, good)  # from the cache
        assert len(auth._cache) == 3
        assert all(PASSWORD.encode() not in key for key in auth._cache)
        other_hash = {"prometheus": b"$2b$04$" + PASSWORD_HASH.encode()[7:]}
        assert await auth.allowed(other_hash, good)  # $2b$ and $2y$ are the same algorithm
        assert len(auth._cache) == 4
    finally:
        auth.close()


# ------------------------------------------------------------------------------------------------
# The server


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def client_context(pki: Path, *, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return context


def served_certificate(port: int) -> str:
    """The PEM the server sends on a new connection (unverified)."""
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=5)


def pem_of(path: Path) -> str:
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(path.read_text()))


def replace_file(src: Path, dst: Path) -> None:
    """As a Secret volume or cert-manager does: the new file appears at once (rename)."""
    tmp = dst.with_suffix(".new")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@asynccontextmanager
async def serving(config: Path) -> AsyncIterator[MetricsServer]:
    """A metrics server on 127.0.0.1 with ``config`` as its --web.config.file."""
    server = MetricsServer(
        Scraper([]), listen_address=f"127.0.0.1:{free_port()}", web_config=WebConfigSource(str(config))
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def tls_server(pki: Path, tmp_path: Path) -> AsyncIterator[tuple[MetricsServer, Path]]:
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copyfile(pki / name, tmp_path / name)
    config = write(
        tmp_path,
        "web.yml",
        {
            "tls_server_config": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_auth_type": "VerifyClientCertIfGiven",
                "client_ca_file": "ca.crt",
            },
            "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
            "basic_auth_users": {"prometheus": PASSWORD_HASH},
        },
    )
    async with serving(config) as server:
        yield server, tmp_path


def mutual_tls(pki: Path) -> dict[str, str]:
    """tls_server_config requiring a client certificate signed by the test CA."""
    return {
        "cert_file": str(pki / "server.crt"),
        "key_file": str(pki / "server.key"),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki / "ca.crt"),
    }


def port_of(server: MetricsServer) -> int:
    return int(server.addresses[0].rsplit(":", 1)[1])


async def test_basic_auth_over_tls(tls_server: tuple[MetricsServer, Path], pki: Path) -> None:
    server, _ = tls_server
    url = f"https://localhost:{port_of(server)}"
    async with aiohttp.ClientSession() as session:
        context = client_context(pki)
        good = basic("prometheus", PASSWORD)
        async with session.get(f"{url}/metrics", ssl=context, headers=good) as response:
            assert response.status == 200
            assert b"nodeagent_build_info" in await response.read()
            assert response.headers["X-Frame-Options"] == "deny"
        for auth in (basic("prometheus", "wrong"), basic("nobody", PASSWORD), {}):
            async with session.get(f"{url}/metrics", ssl=context, headers=auth) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"] == "Basic"
                assert response.headers["X-Frame-Options"] == "deny"
        for probe in ("/healthz", "/readyz"):  # the kubelet's probes send no password
            async with session.get(f"{url}{probe}", ssl=context) as response:
                assert response.status == 200
        async with session.get(f"{url}/nothere", ssl=context, headers=good) as response:
            assert response.status == 404
            assert response.headers["X-Frame-Options"] == "deny"


async def test_plain_http_is_refused_on_the_tls_port(tls_server: tuple[MetricsServer, Path]) -> None:
    server, _ = tls_server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port_of(server)}/healthz") as response:
                await response.read()


async def test_client_certificate_of_an_unknown_ca_is_refused(
    tls_server: tuple[MetricsServer, Path], pki: Path
) -> None:
    server, _ = tls_server
    url = f"https://localhost:{port_of(server)}/healthz"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=client_context(pki, cert="client")) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientError) as caught:
            async with session.get(url, ssl=client_context(pki, cert="stranger")) as response:
                await response.read()
        assert "alert" in str(caught.value).lower() or "certificate" in str(caught.value).lower()


async def test_rotated_certificate_is_served_on_the_next_connection(
    tls_server: tuple[MetricsServer, Path], pki: Path
) -> None:
    server, directory = tls_server
    port = port_of(server)
    assert await asyncio.to_thread(served_certificate, port) == pem_of(pki / "server.crt")
    replace_file(pki / "server2.key", directory / "server.key")
    replace_file(pki / "server2.crt", directory / "server.crt")
    assert await asyncio.to_thread(served_certificate, port) == pem_of(pki / "server2.crt")


async def test_expired_certificate_then_its_renewal(
    tls_server: tuple[MetricsServer, Path], pki: Path
) -> None:
    server, directory = tls_server
    url = f"https://localhost:{port_of(server)}/healthz"
    replace_file(pki / "expired.key", directory / "server.key")
    replace_file(pki / "expired.crt", directory / "server.crt")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError, match="expired"):
            async with session.get(url, ssl=client_context(pki)) as response:
                await response.read()
        replace_file(pki / "server.key", directory / "server.key")
        replace_file(pki / "server.crt", directory / "server.crt")
        async with session.get(url, ssl=client_context(pki)) as response:
            assert response.status == 200


async def test_bad_file_at_reload_keeps_the_last_good_config(
    tls_server: tuple[MetricsServer, Path], pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, directory = tls_server
    url = f"https://localhost:{port_of(server)}/metrics"
    good = basic("prometheus", PASSWORD)
    with caplog.at_level(logging.ERROR, logger="nodeagent.webconfig"):
        (directory / "web.yml").write_text("tls_server_config:\n  cert_file: server.crt\n  bogus: 1\n")
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(url, ssl=client_context(pki), headers=good) as response:
                    assert response.status == 200
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per change of the file, not once per connection
    assert "tls_server_config.bogus: unknown key" in errors[0].__dict__["err"]


async def test_client_allowed_sans(pki: Path, tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "web.yml",
        {
            # the client certificate has DNS:prometheus and IP:::1
            "tls_server_config": {**mutual_tls(pki), "client_allowed_sans": ["::1"]}
        },
    )
    async with serving(config) as server:
        url = f"https://localhost:{port_of(server)}/metrics"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=client_context(pki, cert="client")) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):  # no certificate: refused in the handshake
                async with session.get(url, ssl=client_context(pki)) as response:
                    await response.read()
            config.write_text(config.read_text().replace("- ::1", "- someone-else"))
            async with session.get(url, ssl=client_context(pki, cert="client")) as response:
                assert response.status == 403


async def test_basic_auth_and_rate_limit_over_plain_http(tmp_path: Path) -> None:
    """No tls_server_config: plain HTTP, with basic auth and the rate limit (429) all the same."""
    config = write(
        tmp_path,
        "web.yml",
        {"basic_auth_users": {"prometheus": PASSWORD_HASH}, "rate_limit": {"burst": 2, "interval": "1h"}},
    )
    async with serving(config) as server:
        url = f"http://127.0.0.1:{port_of(server)}"
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(3):
                async with session.get(f"{url}/metrics", headers=basic("prometheus", PASSWORD)) as response:
                    statuses.append(response.status)
            assert statuses == [200, 200, 429]
            async with session.get(f"{url}/healthz") as response:  # probes are never limited
                assert response.status == 200


# ------------------------------------------------------------------------------------------------
# The agent as a process, and the real Prometheus scraping it

AGENT = [sys.executable, "-m", "nodeagent"]


def start_agent(port: int, web_config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *AGENT, "run", "--no-logs", "--collector.disable-defaults", "--collector.loadavg",
            f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web_config}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def stop_process(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return err


def test_bad_web_config_exits_2_in_one_line(pki: Path, tmp_path: Path) -> None:
    config = write(tmp_path, "web.yml", "tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n")
    proc = start_agent(free_port(), config)
    try:
        assert proc.wait(timeout=30) == 2
    finally:
        err = stop_process(proc)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"nodeagent: error: {config}:2: tls_server_config.cert_file: cannot read")


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_prometheus_scrapes_over_tls_with_basic_auth_and_client_certificates(
    pki: Path, tmp_path: Path
) -> None:
    """The real Prometheus: the right password and certificate scrape; a wrong password gets 401; a
    client certificate from an unknown CA is refused in the TLS handshake."""
    web_config = write(
        tmp_path,
        "web.yml",
        {
            "tls_server_config": mutual_tls(pki),
            "basic_auth_users": {"prometheus": PASSWORD_HASH},
        },
    )
    agent_port = free_port()
    agent = start_agent(agent_port, web_config)
    try:
        scrape_through_prometheus(pki, tmp_path, agent_port)
    finally:
        stop_process(agent)


def scrape_through_prometheus(pki: Path, tmp_path: Path, agent_port: int) -> None:
    def job(name: str, password: str, cert: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "basic_auth": {"username": "prometheus", "password": password},
            "tls_config": {
                "ca_file": str(pki / "ca.crt"),
                "cert_file": str(pki / f"{cert}.crt"),
                "key_file": str(pki / f"{cert}.key"),
                "server_name": "localhost",
            },
            "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}],
        }

    jobs = [
        job("good", PASSWORD, "client"),
        job("wrong-password", "nope", "client"),
        job("unknown-ca", PASSWORD, "stranger"),
    ]
    write(tmp_path, "prometheus.yml", {"global": {"scrape_interval": "1s"}, "scrape_configs": jobs})
    with running_prometheus(tmp_path / "prometheus.yml", tmp_path) as (prometheus_port, _):

        def targets() -> dict[str, dict[str, Any]] | None:
            try:
                url = f"http://127.0.0.1:{prometheus_port}/api/v1/targets"
                with urllib.request.urlopen(url, timeout=5) as response:
                    active = json.load(response)["data"]["activeTargets"]
            except OSError:
                return None
            by_job = {t["labels"]["job"]: t for t in active}
            if len(by_job) == 3 and all(t["health"] != "unknown" for t in by_job.values()):
                return by_job
            return None

        by_job = wait_until(targets, 60, "Prometheus to scrape every job")
        assert by_job["good"]["health"] == "up", by_job["good"]["lastError"]
        assert by_job["wrong-password"]["health"] == "down"
        assert "401" in by_job["wrong-password"]["lastError"]
        assert by_job["unknown-ca"]["health"] == "down"
        assert "remote error: tls: " in by_job["unknown-ca"]["lastError"]  # the server's alert

        def scraped() -> bool:
            query = "http://127.0.0.1:%d/api/v1/query?query=node_load1%%7Bjob%%3D%%22good%%22%%7D"
            with urllib.request.urlopen(query % prometheus_port, timeout=5) as response:
                return bool(json.load(response)["data"]["result"])

        wait_until(scraped, 30, "node_load1 from the TLS scrape")


# ------------------------------------------------------------------------------------------------
# The Kubernetes example

EXAMPLE = ROOT / "examples" / "tls"


def test_example_web_config_loads_as_promtool_checks_it(pki: Path, tmp_path: Path) -> None:
    """examples/tls/web-config.yml with the Secret's mount point swapped for test certificates."""
    shutil.copyfile(pki / "server.crt", tmp_path / "tls.crt")
    shutil.copyfile(pki / "server.key", tmp_path / "tls.key")
    text = (EXAMPLE / "web-config.yml").read_text().replace("/etc/nodeagent-tls/", f"{tmp_path}/")
    path = write(tmp_path, "web-config.yml", text)
    result = promtool_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_web_config(str(path))
    assert config.tls_enabled and set(config.users) == {"prometheus"}


def test_example_overlay_wires_the_file_probes_and_monitor() -> None:
    from tests.deploy.conftest import find, kustomize

    objects = kustomize(EXAMPLE)
    pod = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "--web.config.file=/etc/nodeagent-web/web-config.yml" in container["args"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = find(objects, "Secret")
    assert volumes[mounts["/etc/nodeagent-web"]]["secret"]["secretName"] == secret["metadata"]["name"]
    assert volumes[mounts["/etc/nodeagent-tls"]]["secret"]["secretName"] == "nodeagent-tls"
    assert base64.b64decode(secret["data"]["web-config.yml"]) == (EXAMPLE / "web-config.yml").read_bytes()
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert container[probe]["httpGet"]["path"] in ("/healthz", "/readyz")  # served without basic auth
    [endpoint] = find(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "nodeagent-tls", "key": "ca.crt"}
    assert endpoint["basicAuth"]["password"] == {"name": "nodeagent-scrape-auth", "key": "password"}
