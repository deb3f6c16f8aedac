"""No package-registry host names in the repository: pip, apt and debootstrap know their own index, and a
mirror comes from the machine's configuration or an explicit argument."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT

# Joined from parts so that this file does not name them itself.
REGISTRY_HOSTS = [
    ".".join(parts)
    for parts in (
        ("pypi", "org"),
        ("pypi", "python", "org"),
        ("files", "pythonhosted", "org"),
        ("deb", "debian", "org"),
        ("security", "debian", "org"),
        ("ftp", "debian", "org"),
        ("archive", "ubuntu", "com"),
        ("security", "ubuntu", "com"),
        ("dl-cdn", "alpinelinux", "org"),
        ("registry", "npmjs", "org"),
        ("registry", "yarnpkg", "com"),
        ("proxy", "golang", "org"),
        ("crates", "io"),
        ("static", "crates", "io"),
        ("rubygems", "org"),
        ("repo1", "maven", "org"),
        ("repo", "maven", "apache", "org"),
        ("conda", "anaconda", "org"),
    )
]


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    )
    return [name for name in listing.stdout.decode().split("\0") if name]


def hosts_named_in(text: str) -> list[str]:
    lowered = text.lower()
    return [host for host in REGISTRY_HOSTS if host in lowered]


def test_no_tracked_file_names_a_package_registry_host() -> None:
    found = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        found += [f"{name}: {host}" for host in hosts_named_in(path.read_bytes().decode("utf-8", "replace"))]
    assert not found, "package-registry host names in the repository:\n" + "\n".join(found)


def test_the_scan_finds_a_planted_index_url() -> None:
    planted = (
        "ARG PIP_INDEX_URL=https://" + "PyPI." + "org/simple\nMIRROR=http://" + "deb.debian" + ".org/debian"
    )
    assert hosts_named_in(planted) == [".".join(("pypi", "org")), ".".join(("deb", "debian", "org"))]
