"""The Dockerfile lints clean and keeps the promises the manifests rely on."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess

import yaml

from tests.conftest import ROOT, require_binary

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        result.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return result


def test_hadolint_passes() -> None:
    hadolint = require_binary("hadolint")
    result = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, json.dumps(json.loads(result.stdout or "[]"), indent=1) + result.stderr
    # Any `# hadolint ignore=` must say why on the same or the previous line.
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = line.split("hadolint ignore", 1)[1] + (lines[number - 1] if number else "")
            assert re.search(r"[a-z]{4,} [a-z]{3,}", reason), f"line {number + 1}: ignore without a reason"


def test_base_image_is_a_pinned_official_slim_python() -> None:
    args = [rest for word, rest in instructions() if word == "ARG" and rest.startswith("BASE_IMAGE=")]
    assert args == ["BASE_IMAGE=python:3.11.13-slim-bookworm"]
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert froms == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]


def test_final_stage_contract() -> None:
    last_from = max(i for i, (word, _) in enumerate(instructions()) if word == "FROM")
    final = instructions()[last_from:]
    by_word: dict[str, list[str]] = {}
    for word, rest in final:
        by_word.setdefault(word, []).append(rest)
    assert by_word["ENTRYPOINT"] == ['["nodeagent"]']
    assert by_word["CMD"] == ['["run"]']  # the embedded defaults; the DaemonSet passes --config
    assert by_word["EXPOSE"] == ["9100"]
    assert "RUN" not in by_word, "the final stage only copies: no package manager, compiler or pip"
    # Nothing but the virtualenv, journalctl (for journald inputs: the binary and the libraries the base
    # lacks) and the empty state directory the default user owns: no config file (with sink URLs or tokens)
    # is baked into the image.
    assert by_word["COPY"] == [
        "--from=builder /opt/nodeagent /opt/nodeagent",
        "--from=builder /journalctl-root/ /",
        "--from=builder --chown=65534:65534 /var/lib/nodeagent /var/lib/nodeagent",
    ]
    [user] = by_word["USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "numeric non-root default user"
    labels = " ".join(by_word["LABEL"])
    for key in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels


def test_no_pip_cache_and_no_compiler() -> None:
    text = DOCKERFILE.read_text()
    assert "PIP_NO_CACHE_DIR=1" in text
    assert "--only-binary=:all:" in text
    assert not re.search(r"gcc|build-essential|-dev\b", text)
    # The packages installed, in the builder only: systemd for journalctl (copied out without the rest)
    # and binutils for strip (deploy/slim-venv.sh).
    apt = [
        part for word, rest in instructions() if word == "RUN" for part in rest.split("&&") if "apt" in part
    ]
    installed = [part.split() for part in apt if " install " in part]
    expected = "apt-get install -y -qq --no-install-recommends systemd binutils > /dev/null"
    assert installed == [expected.split(" ")]


def test_dockerignore_sends_what_the_build_copies() -> None:
    """The build context is an allow-list; the files the Dockerfile needs must be on it."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:
        included = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path, bare + "/*"):
                included = negated
        return included

    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "nodeagent/__init__.py",
        "nodeagent/cli.py",
        "nodeagent/logs/default.yaml",
        "deploy/slim-venv.sh",
    ):
        assert sent(needed), needed
    for unneeded in (
        "tests/conftest.py",
        ".git/HEAD",
        "manifests/daemonset.yaml",
        "manifests/config.yaml",
        "benchmarks/x.py",
        "deploy/containers.conf",
    ):
        assert not sent(unneeded), unneeded


def test_dependencies_install_with_the_pinned_versions() -> None:
    runs = [rest for word, rest in instructions() if word == "RUN" and " install " in rest]
    # Every pip install that resolves dependencies (the package itself goes in with --no-deps).
    installs = [
        part
        for run in runs
        for part in run.split("&&")
        if " install " in part and "pip" in part and "--no-deps" not in part
    ]
    assert len(installs) == 2 and all("-c constraints.txt" in part for part in installs), installs
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert "pyproject.toml constraints.txt /src/" in copies


def test_no_default_package_index() -> None:
    """pip knows its index; a mirror is an explicit build argument, never a default naming a host."""
    index_args = [rest for word, rest in instructions() if word == "ARG" and rest.startswith("PIP_INDEX_URL")]
    assert index_args == ["PIP_INDEX_URL"]


CREDENTIAL_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|authorization|bearer|credential)", re.I)
URL_WITH_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@\"']+@", re.I)


def _credentials_in(value: object, path: str = "") -> list[str]:
    """Keys that name a credential and hold a value, and URLs that carry user:password@, anywhere in value."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            # A key naming where a credential comes from (token_file, password_env) holds a path or a name.
            names_a_source = str(key).lower().endswith(("_file", "-file", "_env", "-env"))
            if CREDENTIAL_KEY.search(str(key)) and not names_a_source and item not in (None, "", [], {}):
                found.append(where)
            found += _credentials_in(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _credentials_in(item, f"{path}[{index}]")
    elif isinstance(value, str) and URL_WITH_USERINFO.search(value):
        found.append(path)
    return found


def test_image_carries_no_config_with_credentials() -> None:
    """Whatever config the image carries (files the final stage copies from the build context, and the
    embedded defaults inside the package) holds no credential: it would be readable by anyone who can
    pull the image."""
    last_from = max(i for i, (word, _) in enumerate(instructions()) if word == "FROM")
    copied = [
        rest.split()[0]
        for word, rest in instructions()[last_from:]
        if word == "COPY" and not rest.startswith("--from=")
    ]
    embedded = [str(path.relative_to(ROOT)) for path in (ROOT / "nodeagent").rglob("*.yaml")]
    assert embedded, "the package embeds its default config; update this test if that moved"
    for source in copied + embedded:
        path = ROOT / source
        assert path.is_file(), source
        text = path.read_text()
        assert not URL_WITH_USERINFO.search(text), f"{source}: a URL with user:password@"
        for document in yaml.safe_load_all(text):
            assert not _credentials_in(document), f"{source}: credentials at {_credentials_in(document)}"


def test_credential_check_sees_inline_secrets() -> None:
    inline = {
        "logs": {"sinks": [{"type": "http", "url": "https://user:pw@logs.example", "bearer_token": "x"}]}
    }
    assert _credentials_in(inline) == ["logs.sinks[0].url", "logs.sinks[0].bearer_token"]
    from_files = {"type": "loki", "token_file": "/run/secrets/loki/token", "password_env": "LOKI_PASSWORD"}
    assert _credentials_in({"logs": {"sinks": [from_files]}}) == []
