# nodeagent container image.
#
#   podman build -t nodeagent:0.1.0 --build-arg VERSION=0.1.0 .      (or docker build)
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module at the same path in both stages; the
# official slim image does (/usr/local/bin/python3), and so does the Debian image that
# deploy/build-base-image.sh makes for machines without a registry (/usr/bin/python3). Both stages use
# the same BASE_IMAGE, so the virtualenv built in the first one runs unchanged in the second.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

# No pip cache in any layer; no bytecode written by the build tools themselves.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A package index to install from, for builds behind a mirror or proxy; unset, pip uses its own default.
# A private CA bundle can be mounted for the build (podman/buildah: -v
# HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro) and named in PIP_CA_BUNDLE. Neither reaches the final image.
ARG PIP_INDEX_URL
ARG PIP_CA_BUNDLE=

# journalctl for the journald inputs, without the rest of systemd: Debian's systemd package is installed
# here, and only journalctl, libsystemd-shared and the libraries it needs that the base image lacks go to
# /journalctl-root, at their real paths (the README gives the cost). It comes from the base image's own
# Debian release, so its libraries match the final stage's (same BASE_IMAGE). binutils brings `strip`
# for deploy/slim-venv.sh; like systemd it stays in this stage.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Not pinned: the package version is the one of the base image's release, whose libraries it must match.
# hadolint ignore=DL3008
RUN set -eu \
 && dpkg-query -W -f '${Package}\n' | sort > /tmp/before \
 && export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends systemd binutils > /dev/null \
 && binary="$(realpath "$(command -v journalctl)")" \
 && mkdir -p /journalctl-root \
 && cp --parents "$binary" /journalctl-root/ \
 && ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do \
        package="$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$(realpath "$lib")" | head -n 1)"; \
        if ! grep -qx "${package%%:*}" /tmp/before; then \
            real="$(realpath "$(dirname "$lib")")/$(basename "$lib")"; \
            mkdir -p "/journalctl-root$(dirname "$real")"; \
            cp -L "$lib" "/journalctl-root$real"; \
        fi; \
    done \
 && find /journalctl-root -type f | sort \
 && du -sh /journalctl-root

WORKDIR /src

# Dependencies first, from pyproject.toml and constraints.txt alone, so that this layer is reused until
# they change. constraints.txt pins every version installed (deploy/pin-dependencies.py writes it; the
# ranges in pyproject.toml admit them). A throw-away venv holds the build tools (pip from ensurepip); the
# runtime venv gets no pip at all: pip installs into it from outside with --python. Dependencies come as
# wheels only, so no compiler is needed.
COPY pyproject.toml constraints.txt /src/
RUN if [ -n "${PIP_CA_BUNDLE}" ]; then export PIP_CERT="${PIP_CA_BUNDLE}"; fi \
 && if [ -z "${PIP_INDEX_URL:-}" ]; then unset PIP_INDEX_URL; fi \
 && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print("\n".join(p["build-system"]["requires"]), file=open("/tmp/build-requirements.txt", "w")); \
print("\n".join(p["project"]["dependencies"]), file=open("/tmp/requirements.txt", "w"))' \
 && python3 -m venv /opt/buildtools \
 && /opt/buildtools/bin/pip install -c constraints.txt -r /tmp/build-requirements.txt \
 && python3 -m venv --without-pip /opt/nodeagent \
 && /opt/buildtools/bin/pip --python /opt/nodeagent/bin/python install --only-binary=:all: \
        -c constraints.txt -r /tmp/requirements.txt

# Then the package itself (offline: build tools and dependencies are already there), and the venv slimmed:
# shared objects stripped, no tests, stubs or C sources of dependencies, one copy of bytecode (see the
# script, which then imports every extension module to prove the stripped ones still load).
COPY . /src
RUN /opt/buildtools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src \
 && /opt/buildtools/bin/pip --python /opt/nodeagent/bin/python install --no-deps /wheels/nodeagent-*.whl \
 && /src/deploy/slim-venv.sh /opt/nodeagent \
 && /opt/nodeagent/bin/python -c 'import nodeagent.cli, nodeagent.agent, nodeagent.logs.pipeline' \
 && mkdir -p /var/lib/nodeagent

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

ARG VERSION=0.1.0
ARG SOURCE_URL=https://example.invalid/nodeagent
LABEL org.opencontainers.image.title="nodeagent" \
      org.opencontainers.image.description="Node agent: node_exporter-compatible metrics, log shipping, DaemonSet placement checks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Only the finished virtualenv comes over; everything is root-owned and world-readable, so the image
# runs under any UID with a read-only root filesystem. No config file: whatever a config holds (sink URLs,
# tokens) must never be baked into an image. The DaemonSet mounts its ConfigMap and passes --config; without
# one the agent runs on its embedded defaults.
COPY --from=builder /opt/nodeagent /opt/nodeagent
COPY --from=builder /journalctl-root/ /
# The log shipper's state directory, the same path as the DaemonSet's hostPath: an empty directory the
# default user owns (a named volume mounted there takes this ownership), and XDG_STATE_HOME makes it the
# default state_dir for that user too (root's is /var/lib/nodeagent anyway). The DaemonSet runs as UID 0,
# the owner of its hostPath (DirectoryOrCreate).
COPY --from=builder --chown=65534:65534 /var/lib/nodeagent /var/lib/nodeagent

ENV PATH=/opt/nodeagent/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_STATE_HOME=/var/lib

# Unprivileged by default. The DaemonSet runs it as UID 0 with every capability dropped except
# DAC_READ_SEARCH (see manifests/daemonset.yaml) so that it can read root-only logs.
USER 65534:65534
WORKDIR /
EXPOSE 9100

# The agent is PID 1 (or, with hostPID, a plain child of the runtime): it handles SIGTERM and SIGINT
# itself, commits log checkpoints and exits 0, so no init wrapper is needed.
ENTRYPOINT ["nodeagent"]
CMD ["run"]
