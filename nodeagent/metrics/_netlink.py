"""Interface statistics over rtnetlink (RTM_GETLINK dump), as node_exporter's default netdev path.

Netlink answers for the network namespace of the agent itself: a DaemonSet pod must run with
``hostNetwork: true`` to see the node's interfaces (the same holds for /proc/net/dev, which is
per-namespace too). Only the stdlib ``socket`` module is used.
"""

from __future__ import annotations

import os
import socket
import struct

from nodeagent.metrics.host.files import decode

NETLINK_ROUTE = 0
RTM_NEWLINK = 16
RTM_GETLINK = 18
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFLA_IFNAME = 3
IFLA_STATS = 7
IFLA_STATS64 = 23

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_RTATTR = struct.Struct("=HH")  # len, type

# struct rtnl_link_stats64 / rtnl_link_stats field order (include/uapi/linux/if_link.h). Kernels add
# fields at the end over time; missing trailing fields read as 0.
LINK_STATS_FIELDS = (
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
)


class NetlinkError(OSError):
    """The kernel answered the dump request with an error."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def _parse_stats(payload: bytes, width: int) -> dict[str, int]:
    count = min(len(payload) // width, len(LINK_STATS_FIELDS))
    values = struct.unpack_from(f"={count}{'Q' if width == 8 else 'I'}", payload)
    stats = dict.fromkeys(LINK_STATS_FIELDS, 0)
    stats.update(zip(LINK_STATS_FIELDS, values, strict=False))
    return stats


def parse_link_message(body: bytes) -> tuple[str, dict[str, int] | None] | None:
    """One RTM_NEWLINK payload (after the netlink header) -> (name, stats) or None without a name.

    Stats come from IFLA_STATS64, else from the 32-bit IFLA_STATS, else None.
    """
    offset = _IFINFOMSG.size
    name = None
    stats64 = stats32 = None
    while offset + _RTATTR.size <= len(body):
        length, attr_type = _RTATTR.unpack_from(body, offset)
        if length < _RTATTR.size or offset + length > len(body):
            break  # truncated attribute: stop rather than read garbage
        attr_type &= 0x3FFF  # strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if attr_type == IFLA_IFNAME:
            payload = body[offset + _RTATTR.size : offset + length]
            name = decode(payload.split(b"\0", 1)[0])
        elif attr_type == IFLA_STATS64:
            stats64 = body[offset + _RTATTR.size : offset + length]
        elif attr_type == IFLA_STATS:
            stats32 = body[offset + _RTATTR.size : offset + length]
        if name is not None and stats64 is not None:
            break  # all that is needed; the kernel sends both early, before dozens of other attributes
        offset += _align(length)
    if name is None:
        return None
    if stats64 is not None:
        return name, _parse_stats(stats64, 8)
    if stats32 is not None:
        return name, _parse_stats(stats32, 4)
    return name, None


def parse_dump(chunks: list[bytes], seq: int) -> tuple[list[tuple[str, dict[str, int] | None]], bool]:
    """Parse received datagrams; return the links found and whether NLMSG_DONE was seen."""
    links: list[tuple[str, dict[str, int] | None]] = []
    for data in chunks:
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, msg_type, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size or offset + length > len(data):
                raise NetlinkError(f"truncated netlink message ({length} bytes)")
            body = data[offset + _NLMSGHDR.size : offset + length]
            offset += _align(length)
            if msg_seq != seq:
                continue
            if msg_type == NLMSG_DONE:
                return links, True
            if msg_type == NLMSG_ERROR:
                code = struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
                if code:
                    raise NetlinkError(-code, f"netlink error: {os.strerror(-code)}")
                continue
            if msg_type == RTM_NEWLINK:
                link = parse_link_message(body)
                if link is not None:
                    links.append(link)
    return links, False


def dump_links(timeout: float = 5.0) -> list[tuple[str, dict[str, int] | None]]:
    """All links of the current network namespace with their counters. Bounded by ``timeout``."""
    seq = 1
    request = _NLMSGHDR.pack(
        _NLMSGHDR.size + _IFINFOMSG.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    ) + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as sock:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        sock.sendto(request, (0, 0))
        links: list[tuple[str, dict[str, int] | None]] = []
        while True:
            data = sock.recv(1 << 17)  # dump datagrams are at most ~32 KiB
            found, done = parse_dump([data], seq)
            links.extend(found)
            if done:
                return links
