"""Listings below /sys shared by the collectors: class devices, network devices, numbered entries.

Every listing returns ``(name, path)`` pairs in Go's order: the name fit for a label (valid UTF-8, see
:func:`.files.valid_text`), the path as the kernel spelled it (a string, see :mod:`.files`).
"""

from __future__ import annotations

import os

from nodeagent.metrics.host.files import Paths, list_dir, valid_text


def class_devices(paths: Paths, device_class: str) -> list[tuple[str, str]]:
    """(name, path) of every entry of <sysfs>/class/<device_class> (symlinks to the devices).
    Raises FileNotFoundError when the class does not exist (its driver is not loaded)."""
    directory = paths.sys("class", device_class)
    return [(valid_text(name), f"{directory}/{name}") for name in list_dir(directory)]


def net_devices(paths: Paths) -> dict[str, str]:
    """Device name -> device directory for every interface in <sysfs>/class/net, sorted by name.

    Each device is a symlink to its directory; regular files such as ``bonding_masters`` are not
    devices, nor are dangling links. Raises FileNotFoundError when the directory does not exist.
    """
    with os.scandir(paths.sys("class", "net")) as entries:
        devices = {valid_text(entry.name): entry.path for entry in entries if entry.is_dir()}
    return dict(sorted(devices.items()))


def numbered_entries(directory: str, prefix: str) -> list[tuple[str, str]]:
    """Entries named ``<prefix><digit>...`` in ``directory`` as (suffix, path): the same set as Go's
    ``filepath.Glob(dir + "/<prefix>[0-9]*")``, in the same (byte) order. Raises OSError."""
    found = [
        name
        for name in list_dir(directory)
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in tuple("0123456789")
    ]
    return [(valid_text(name[len(prefix) :]), f"{directory}/{name}") for name in found]
