"""The one netlink client of the collectors: request/dump over a netlink socket (rtnetlink, sock_diag,
generic netlink), message and attribute parsing, link names, generic netlink family lookup. The link
dump of netdev lives here; each other collector parses its own messages with these helpers (qdisc,
arp's neighbours, network_route, tcpstat's INET_DIAG, wifi's nl80211).

Netlink answers for the network namespace of the agent itself: a DaemonSet pod must run with
``hostNetwork: true`` to see the node's interfaces (the same holds for /proc/net/dev, which is
per-namespace too). Only the stdlib ``socket`` module is used: pyroute2 (the maintained Python netlink
library) costs 0.3-0.7 s to import and ~24 MiB of RSS, more than the whole agent, for the handful of
fixed-layout messages read here.

Every parser here is pure (bytes in, values out) and never reads past a message or attribute: a
truncated attribute ends the attribute list, a truncated message raises :class:`NetlinkError`.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from nodeagent.metrics.host.files import decode

NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_GENERIC = 16
RTM_NEWLINK = 16
RTM_GETLINK = 18
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
# A dump larger than this (a full Internet routing table is ~1M routes of ~100 bytes) is refused rather
# than held in memory.
DUMP_LIMIT = 256 << 20
IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_STATS = 7
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKMODE = 17
IFLA_IFALIAS = 20
IFLA_STATS64 = 23
IFLA_GROUP = 27
IFLA_CARRIER = 33
IFLA_CARRIER_CHANGES = 35
IFLA_CARRIER_UP_COUNT = 47
IFLA_CARRIER_DOWN_COUNT = 48
IFLA_PROP_LIST = 52
IFLA_ALT_IFNAME = 53

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
    """The kernel answered with an error, or a message was truncated."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def attributes(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(type without flag bits, payload) of each netlink attribute of ``data`` from ``offset``; a
    truncated attribute ends the list rather than reading garbage."""
    end = len(data)
    while offset + _RTATTR.size <= end:
        length, attr_type = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            return
        yield attr_type & NLA_TYPE_MASK, data[offset + _RTATTR.size : offset + length]
        offset += _align(length)


def attribute_map(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """type -> payload of the attributes of ``data`` (a repeated type: the last one)."""
    return dict(attributes(data, offset))


def c_string(payload: bytes) -> str:
    """A NUL-terminated attribute string, invalid UTF-8 as U+FFFD (a label read from the host)."""
    return decode(payload.split(b"\0", 1)[0])


def uint(payload: bytes) -> int:
    """An unsigned attribute of 1, 2, 4 or 8 bytes in host order; another size reads as 0."""
    return int.from_bytes(payload, "little" if _LITTLE else "big") if len(payload) in (1, 2, 4, 8) else 0


_LITTLE = struct.pack("=H", 1) == b"\x01\x00"


def messages(chunks: list[bytes], seq: int) -> tuple[list[tuple[int, bytes]], bool]:
    """(type, body) of every message of ``seq`` in the received datagrams, and whether NLMSG_DONE was
    seen (what follows it is ignored). Raises NetlinkError on an error answer or a truncated message."""
    found: list[tuple[int, bytes]] = []
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
                return found, True
            if msg_type == NLMSG_ERROR:
                code = struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
                if code:
                    raise NetlinkError(-code, f"netlink error: {os.strerror(-code)}")
                continue
            found.append((msg_type, body))
    return found, False


def request(
    protocol: int, msg_type: int, payload: bytes, *, dump: bool = True, timeout: float = 5.0, flags: int = 0
) -> list[tuple[int, bytes]]:
    """Send one request on a new ``protocol`` socket; return the (type, body) of the answers.

    ``dump``: read until NLMSG_DONE (bounded by :data:`DUMP_LIMIT`); else return the first datagram's
    answers. Bounded by ``timeout`` per receive. Raises OSError (NetlinkError for the kernel's errors).
    """
    seq = 1
    header_flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0) | flags
    message = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, header_flags, seq, 0) + payload
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol) as sock:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        sock.sendto(message, (0, 0))
        answers: list[tuple[int, bytes]] = []
        received = 0
        while True:
            data = sock.recv(1 << 17)  # dump datagrams are at most ~32 KiB
            received += len(data)
            if received > DUMP_LIMIT:
                raise NetlinkError(f"netlink dump larger than {DUMP_LIMIT} bytes")
            found, done = messages([data], seq)
            answers.extend(found)
            if done or (not dump and found):
                return answers


def dump(
    protocol: int, request_type: int, payload: bytes, answer_type: int, timeout: float = 5.0
) -> list[bytes]:
    """The bodies of the ``answer_type`` messages answering a ``request_type`` dump."""
    answers = request(protocol, request_type, payload, timeout=timeout)
    return [body for msg_type, body in answers if msg_type == answer_type]


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
    name = None
    stats64 = stats32 = None
    for attr_type, payload in attributes(body, _IFINFOMSG.size):
        if attr_type == IFLA_IFNAME:
            name = c_string(payload)
        elif attr_type == IFLA_STATS64:
            stats64 = payload
        elif attr_type == IFLA_STATS:
            stats32 = payload
        if name is not None and stats64 is not None:
            break  # all that is needed; the kernel sends both early, before dozens of other attributes
    if name is None:
        return None
    if stats64 is not None:
        return name, _parse_stats(stats64, 8)
    if stats32 is not None:
        return name, _parse_stats(stats32, 4)
    return name, None


def parse_dump(chunks: list[bytes], seq: int) -> tuple[list[tuple[str, dict[str, int] | None]], bool]:
    """Parse received RTM_GETLINK datagrams; return the links found and whether NLMSG_DONE was seen."""
    found, done = messages(chunks, seq)
    links = [
        link for msg_type, body in found if msg_type == RTM_NEWLINK if (link := parse_link_message(body))
    ]
    return links, done


def _link_dump(timeout: float) -> list[tuple[int, bytes]]:
    """The answers to an RTM_GETLINK dump of every link of the current network namespace."""
    return request(NETLINK_ROUTE, RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), timeout=timeout)


def dump_links(timeout: float = 5.0) -> list[tuple[str, dict[str, int] | None]]:
    """All links of the current network namespace with their counters. Bounded by ``timeout``."""
    answers = _link_dump(timeout)
    return [
        link for msg_type, body in answers if msg_type == RTM_NEWLINK if (link := parse_link_message(body))
    ]


# RFC 2863 operational states by their IF_OPER_* number (include/uapi/linux/if.h).
OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
# IFLA_* unsigned attributes -> the sysfs attribute of /sys/class/net/<iface>/ holding the same value,
# so a link read over rtnetlink has the keys of one read from sysfs.
_LINK_UINTS = {
    IFLA_MTU: "mtu",
    IFLA_TXQLEN: "tx_queue_len",
    IFLA_LINKMODE: "link_mode",
    IFLA_GROUP: "netdev_group",
    IFLA_CARRIER: "carrier",
    IFLA_CARRIER_CHANGES: "carrier_changes",
    IFLA_CARRIER_UP_COUNT: "carrier_up_count",
    IFLA_CARRIER_DOWN_COUNT: "carrier_down_count",
    IFLA_LINK: "iflink",
}


def hardware_address(payload: bytes) -> str:
    """A link-layer address as Go's net.HardwareAddr prints it: lowercase hex bytes joined by ':'."""
    return ":".join(f"{byte:02x}" for byte in payload)


def parse_link_attributes(body: bytes) -> dict[str, object] | None:
    """One RTM_NEWLINK payload -> its properties under sysfs attribute names (``ifindex``, ``type``,
    ``flags``, ``mtu``, ``operstate`` as text, ``address``...), plus ``altnames`` (list) and ``stats``
    (IFLA_STATS64 as a dict, or absent). None without a name. Absent attributes are missing keys."""
    if len(body) < _IFINFOMSG.size:
        return None
    _family, link_type, index, flags, _change = _IFINFOMSG.unpack_from(body)
    link: dict[str, object] = {"ifindex": index, "type": link_type, "flags": flags, "altnames": []}
    altnames: list[str] = []
    for attr_type, payload in attributes(body, _IFINFOMSG.size):
        if attr_type in _LINK_UINTS:
            link[_LINK_UINTS[attr_type]] = uint(payload)
        elif attr_type == IFLA_IFNAME:
            link["name"] = c_string(payload)
        elif attr_type == IFLA_OPERSTATE:
            state = uint(payload)
            link["operstate"] = OPERSTATES[state] if state < len(OPERSTATES) else "unknown"
        elif attr_type == IFLA_ADDRESS:
            link["address"] = hardware_address(payload)
        elif attr_type == IFLA_BROADCAST:
            link["broadcast"] = hardware_address(payload)
        elif attr_type == IFLA_IFALIAS:
            link["ifalias"] = c_string(payload)
        elif attr_type == IFLA_STATS64:
            link["stats"] = _parse_stats(payload, 8)
        elif attr_type == IFLA_PROP_LIST:
            altnames += [c_string(p) for t, p in attributes(payload) if t == IFLA_ALT_IFNAME]
    link["altnames"] = altnames
    return link if "name" in link else None


def dump_link_attributes(timeout: float = 5.0) -> list[dict[str, object]]:
    """Every link of the current network namespace, see :func:`parse_link_attributes`."""
    answers = _link_dump(timeout)
    return [
        link
        for msg_type, body in answers
        if msg_type == RTM_NEWLINK
        if (link := parse_link_attributes(body)) is not None
    ]


def link_names(timeout: float = 5.0) -> dict[int, str]:
    """Interface index -> name of the current network namespace (as Go's net.Interfaces)."""
    answers = _link_dump(timeout)
    names: dict[int, str] = {}
    for msg_type, body in answers:
        if msg_type == RTM_NEWLINK and len(body) >= _IFINFOMSG.size:
            index = _IFINFOMSG.unpack_from(body)[2]
            name = attribute_map(body, _IFINFOMSG.size).get(IFLA_IFNAME)
            if name is not None:
                names[index] = c_string(name)
    return names


# Generic netlink (genetlink): a family (nl80211, ...) is found by name through the controller.
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_VERSION = 3
_GENLMSGHDR = struct.Struct("=BBxx")  # cmd, version, reserved


def encode_attribute(attr_type: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, attr_type) + payload + bytes(_align(length) - length)


def genl_family(name: str, timeout: float = 5.0) -> tuple[int, int] | None:
    """(family id, version) of a generic netlink family, None when the kernel does not have it
    (its module is not loaded)."""
    payload = _GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, 1) + encode_attribute(
        CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"
    )
    try:
        answers = request(NETLINK_GENERIC, GENL_ID_CTRL, payload, dump=False, timeout=timeout)
    except NetlinkError as exc:
        if exc.errno == 2:  # ENOENT: no such family
            return None
        raise
    for msg_type, body in answers:
        if msg_type == GENL_ID_CTRL:
            attrs = attribute_map(body, _GENLMSGHDR.size)
            if CTRL_ATTR_FAMILY_ID in attrs:
                return uint(attrs[CTRL_ATTR_FAMILY_ID]), uint(attrs.get(CTRL_ATTR_VERSION, b""))
    return None


def genl_dump(
    family: tuple[int, int], command: int, attrs: bytes = b"", timeout: float = 5.0
) -> list[tuple[int, bytes]]:
    """(command, attribute bytes) of each answer to a generic netlink dump of ``command``."""
    family_id, version = family
    payload = _GENLMSGHDR.pack(command, version) + attrs
    answers = request(NETLINK_GENERIC, family_id, payload, timeout=timeout)
    return [
        (body[0], body[_GENLMSGHDR.size :]) for msg_type, body in answers if msg_type == family_id and body
    ]


# ethtool over generic netlink (linux/ethtool_netlink.h): link speed and duplex of every device.
ETHTOOL_MSG_LINKMODES_GET = 4
ETHTOOL_A_LINKMODES_HEADER = 1
ETHTOOL_A_LINKMODES_SPEED = 5
ETHTOOL_A_LINKMODES_DUPLEX = 6
ETHTOOL_A_HEADER_DEV_NAME = 2
NLA_F_NESTED = 0x8000


def parse_link_modes(attrs: bytes) -> tuple[str, int, int] | None:
    """One LINKMODES_GET reply's attributes -> (device name, speed in Mb/s as an unsigned 32-bit value,
    duplex code); an absent speed or duplex reads as 0, as mdlayher/ethtool does. None without a name."""
    name = None
    speed = duplex = 0
    for attr_type, payload in attributes(attrs):
        if attr_type == ETHTOOL_A_LINKMODES_HEADER:
            header = attribute_map(payload)
            if ETHTOOL_A_HEADER_DEV_NAME in header:
                name = c_string(header[ETHTOOL_A_HEADER_DEV_NAME])
        elif attr_type == ETHTOOL_A_LINKMODES_SPEED:
            speed = uint(payload)
        elif attr_type == ETHTOOL_A_LINKMODES_DUPLEX:
            duplex = uint(payload)
    return None if name is None else (name, speed, duplex)


def ethtool_link_modes(timeout: float = 5.0) -> list[tuple[str, int, int]] | None:
    """(device, speed, duplex) of every device whose driver reports link modes; None when the kernel
    has no ethtool netlink family (before Linux 5.6)."""
    family = genl_family("ethtool", timeout)
    if family is None:
        return None
    request_attrs = encode_attribute(ETHTOOL_A_LINKMODES_HEADER | NLA_F_NESTED, b"")
    answers = genl_dump(family, ETHTOOL_MSG_LINKMODES_GET, request_attrs, timeout)
    return [modes for _command, attrs in answers if (modes := parse_link_modes(attrs)) is not None]
