#!/usr/bin/env bash
# Build a local stand-in for the official python:3.11-slim-bookworm image, for machines that can reach
# the Debian mirror but no container registry: debootstrap a minimal bookworm, add Debian's python3 and
# python3-venv, and import the tree into podman's local storage.
#
#   deploy/build-base-image.sh [IMAGE [SUITE]]  (defaults: localhost/nodeagent-base:bookworm, bookworm)
#
# tests/deploy/test_readme_commands.py builds a trixie one the same way (a fresh Debian 13).
#
# Skips all work when IMAGE already exists (delete it with `podman rmi IMAGE` to rebuild).
# Needs root, debootstrap and podman. The mirror is taken from this machine's apt sources, so the image
# uses the same mirror the host does (DEBIAN_MIRROR overrides); with neither, debootstrap uses its own
# default.
set -euo pipefail

IMAGE="${1:-localhost/nodeagent-base:bookworm}"
SUITE="${2:-bookworm}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"

if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists; not rebuilding"
    exit 0
fi

host_mirror() {
    # First Debian (not -security) URI in the deb822 or one-line apt sources of this machine.
    local sources
    sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null || true)
    printf '%s\n' "$sources" | sed -n -E \
        -e 's/^URIs:[[:space:]]+([^[:space:]]+).*/\1/p' \
        -e 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
        | grep -E '/debian/?$' | grep -v -- '-security' | head -n 1
}

MIRROR="${DEBIAN_MIRROR:-$(host_mirror)}"

WORK="$(mktemp -d /var/tmp/nodeagent-base.XXXXXX)"
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT

echo "debootstrap $SUITE from ${MIRROR:-the default mirror of debootstrap} into $WORK/rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$WORK/rootfs" ${MIRROR:+"$MIRROR"}

# Slim it like the official image: no apt lists, caches, docs or man pages.
rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/"*.bin \
    "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/usr/share/doc/"* \
    "$WORK/rootfs/usr/share/man/"* "$WORK/rootfs/usr/share/info/"*

tar --numeric-owner -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$WORK/rootfs.tar" "$IMAGE"
echo "imported $IMAGE"
