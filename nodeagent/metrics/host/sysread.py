"""prometheus/procfs's ``util.SysReadFile``: one read(2) of at most 128 bytes, whitespace trimmed.

Several collectors read sysfs/procfs attributes this way upstream (sysctl values, DMI strings, PCI
device and DRM card attributes); reading the same way gives the same value when the file is longer.
"""

from __future__ import annotations

from nodeagent.metrics.host.files import decode, read_attribute_bytes

SYS_READ_LIMIT = 128


def sys_read_file(path: str) -> str:
    """The attribute's first 128 bytes, decoded and stripped. Raises OSError."""
    return decode(read_attribute_bytes(path, SYS_READ_LIMIT)).strip()
