"""Test certificates, made with the openssl command line (a CA, servers, clients) for TLS tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_binary

OPENSSL_TIMEOUT = 30


def openssl(*args: str, cwd: Path) -> None:
    binary = require_binary("openssl")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT)
    assert result.returncode == 0, result.stderr


def make_ca(directory: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def make_cert(directory: Path, name: str, ca: str, *, san: str, usage: str, days: int = 2) -> None:
    """``days`` -1: a certificate that expired yesterday."""
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", str(days), "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca signs server, server2 (its successor), expired, and client; otherca signs stranger."""
    directory = tmp_path_factory.mktemp("pki")
    make_ca(directory, "ca")
    make_ca(directory, "otherca")
    server_san = "DNS:localhost,IP:127.0.0.1"
    make_cert(directory, "server", "ca", san=server_san, usage="serverAuth")
    make_cert(directory, "server2", "ca", san=server_san, usage="serverAuth")
    make_cert(directory, "expired", "ca", san=server_san, usage="serverAuth", days=-1)
    make_cert(directory, "client", "ca", san="DNS:prometheus,IP:::1", usage="clientAuth")
    make_cert(directory, "stranger", "otherca", san="DNS:prometheus", usage="clientAuth")
    return directory
