"""The daemon's own rtnetlink requests for what it does at every takeover and handover: adding
and removing a VIP (``RTM_NEWADDR`` / ``RTM_DELADDR``), as keepalived's ``netlink_ipaddress``
does with its own socket.

pyroute2 stays for the rest (links, VMACs, addresses read at start): work done once. Its
requests keep bookkeeping per socket: each freed sequence number is banned for the next 255
requests, with its pool entry and the request's filter state. That is about 67 KB, filled over
the first 255 requests and flat after (``benchmarks/soak_memory.py``'s daemon run, and 6,000
requests in a private namespace), which the soak saw as a never-restarted daemon's slow rise
over its first hundred and more failovers (docs/benchmarks.md). The two requests a failover
makes come here instead: one message each on one socket, the kernel's acknowledgement read
back, nothing kept. The codec (:func:`encode_address_request`, :func:`decode_ack`) is pure and
unit-tested; :class:`AddressSocket` is the socket.

The messages are iproute2's ``ip address add|del ADDR/LEN dev IFACE``: ``IFA_LOCAL`` and
``IFA_ADDRESS`` both set to the address for IPv4, ``IFA_ADDRESS`` for IPv6 (where the kernel
reads either), scope global, no broadcast; IPv6 VIPs carry ``IFA_F_NODAD`` (RFC 5798 §8.2.2:
the VIP is the group's, duplicate detection would only delay it).
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
from ipaddress import IPv4Interface, IPv6Interface
from typing import Literal

__all__ = ["IFA_F_NODAD", "AddressSocket", "decode_ack", "encode_address_request"]

# <linux/netlink.h> and <linux/rtnetlink.h>, <linux/if_addr.h>.
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWADDR = 20
RTM_DELADDR = 21
IFA_ADDRESS = 1
IFA_LOCAL = 2
#: Do not run duplicate address detection on the address (``<linux/if_addr.h>``).
IFA_F_NODAD = 0x02
SOL_NETLINK = 270
#: Acknowledgements without a copy of the request (``<linux/netlink.h>``).
NETLINK_CAP_ACK = 10

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
_NLATTR = struct.Struct("=HH")  # length, type
_ERROR = struct.Struct("=i")  # struct nlmsgerr's error, before the request's header

Command = Literal["add", "del"]


def _attribute(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to four bytes."""
    raw = _NLATTR.pack(_NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def encode_address_request(
    command: Command, index: int, addr: IPv4Interface | IPv6Interface, seq: int
) -> bytes:
    """The ``RTM_NEWADDR`` (``add``: create, fail if present) or ``RTM_DELADDR`` message for
    ``addr`` on interface ``index``, asking for an acknowledgement."""
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    flags = IFA_F_NODAD if addr.version == 6 else 0
    body = _IFADDRMSG.pack(family, addr.network.prefixlen, flags, 0, index)
    packed = addr.ip.packed
    if addr.version == 4:
        body += _attribute(IFA_LOCAL, packed)
    body += _attribute(IFA_ADDRESS, packed)
    if command == "add":
        kind, request_flags = RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    elif command == "del":
        kind, request_flags = RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK
    else:
        raise ValueError(f"an address request is add or del, not {command!r}")
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, request_flags, seq, 0) + body


def decode_ack(data: bytes, seq: int) -> int | None:
    """The outcome of request ``seq`` in ``data`` (one datagram from the kernel): 0 for success,
    the positive errno for a failure, None if ``data`` holds no acknowledgement of ``seq``."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _, msg_seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return None  # truncated or garbled: not an answer to rely on
        if kind == NLMSG_ERROR and msg_seq == seq and length >= _NLMSGHDR.size + _ERROR.size:
            (error,) = _ERROR.unpack_from(data, offset + _NLMSGHDR.size)
            return -error
        offset += (length + 3) & ~3
    return None


class AddressSocket:
    """A NETLINK_ROUTE socket for VIP requests: joined to no group, so that only the answers
    to its own requests arrive on it."""

    def __init__(self, timeout: float = 1.0) -> None:
        """Open and bind the socket; a request waits at most ``timeout`` seconds for its answer
        (the kernel answers while handling the request, so a wait means something is wrong)."""
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self.sock.bind((0, 0))
        # An older kernel copies the request into its answer: decode_ack reads past it.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.timeout = timeout
        self._seq = 0

    def request(self, command: Command, index: int, addr: IPv4Interface | IPv6Interface) -> int:
        """Add or delete ``addr`` on interface ``index``: 0, or the errno the kernel answered
        (``ETIMEDOUT`` if it did not answer within the timeout, the socket's own errno if
        sending or receiving failed): the daemon logs a failure and goes on, as it did when
        pyroute2 raised."""
        self._seq = self._seq % 0x7FFFFFFF + 1
        try:
            self.sock.send(encode_address_request(command, index, addr, self._seq))
            while True:
                ready, _, _ = select.select([self.sock], [], [], self.timeout)
                if not ready:
                    return errno.ETIMEDOUT
                outcome = decode_ack(self.sock.recv(65536), self._seq)
                if outcome is not None:
                    return outcome
        except OSError as exc:
            return exc.errno or errno.EIO

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
