"""The sockets of single-hop BFD (RFC 5881) for the bundled daemon.

* :class:`ControlReceiver` — one UDP socket per address family bound to port 3784 on every
  address, asking the kernel for each datagram's TTL / hop limit (``IP_RECVTTL``,
  ``IPV6_RECVHOPLIMIT``) and destination and interface (``IP_PKTINFO``, ``IPV6_RECVPKTINFO``):
  RFC 5881 §5's GTSM check needs the first, the session's binding the others.
* :class:`SessionSender` — one UDP socket per session, bound to a source port chosen at random
  in 49152..65535 (RFC 5881 §4: "MUST be in the range 49152 through 65535", and "the same
  source port MUST be used for all BFD Control packets associated with a particular
  session"), and to ``source_ip`` when configured, sending with TTL / hop limit 255
  (``IP_TTL``, ``IPV6_UNICAST_HOPS``; §5).

The kernel side only: what the packets mean is :mod:`vrrp.bfd.packet`, :mod:`vrrp.bfd.session`
and :mod:`vrrp.bfd.endpoint`. Nothing here imports from ``lab/``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from vrrp.bfd.packet import CONTROL_PORT, SOURCE_PORTS

__all__ = ["ControlReceiver", "Datagram", "SessionSender"]

log = logging.getLogger("vrrp")

IPAddress = IPv4Address | IPv6Address
"""An address of either family."""

# Linux values; Python 3.11's socket module does not export the IPv4 ones.
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
_RECV_BUFFER = 512  # a Control packet is 24 octets (up to 255 with authentication)
_PORT_ATTEMPTS = 64


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received UDP payload on port 3784, with what the kernel said about it."""

    payload: bytes
    src: IPAddress
    src_port: int
    dst: IPAddress | None
    """The destination address (None if the kernel did not say)."""
    ttl: int
    """IPv4 TTL or IPv6 hop limit; -1 if the kernel did not say (then GTSM fails it)."""
    ifindex: int
    """The interface it arrived on; 0 if the kernel did not say."""


def _address(text: str) -> IPAddress:
    # recvmsg gives IPv6 link-local sources with a %zone; the session is keyed without it.
    return ip_address(text.split("%", 1)[0])


class ControlReceiver:
    """The UDP socket on port 3784 of one address family (4 or 6)."""

    def __init__(self, family: int, *, port: int = CONTROL_PORT) -> None:
        """Open and bind it, non-blocking; raises OSError (e.g. EADDRINUSE) if it cannot.
        ``port`` is for tests, which cannot count on 3784 being free."""
        self.family = family
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            if family == 4:
                self.sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
                self.sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
                self.sock.bind(("0.0.0.0", port))
            else:
                # One socket per family: the IPv4 one takes IPv4, so no mapped addresses here.
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                self.sock.bind(("::", port))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        """The descriptor, for the event loop."""
        return self.sock.fileno()

    def receive(self) -> Datagram | None:
        """Read one datagram; None when nothing is queued."""
        space = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)
        try:
            data, ancdata, _flags, addr = self.sock.recvmsg(_RECV_BUFFER, space)
        except (BlockingIOError, InterruptedError):
            return None
        ttl, ifindex = -1, 0
        dst: IPAddress | None = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL and len(value) >= 4:
                ttl = struct.unpack("@i", value[:4])[0]
            elif level == socket.IPPROTO_IP and kind == _IP_PKTINFO and len(value) >= 12:
                # struct in_pktinfo: int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr.
                ifindex = struct.unpack("@i", value[:4])[0]
                dst = IPv4Address(value[8:12])
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack("@i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 20:
                # struct in6_pktinfo: in6_addr ipi6_addr; unsigned int ipi6_ifindex.
                dst = IPv6Address(value[:16])
                ifindex = struct.unpack("@I", value[16:20])[0]
        return Datagram(bytes(data), _address(addr[0]), addr[1], dst, ttl, ifindex)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class SessionSender:
    """The sending socket of one session: its own source port for its whole life."""

    def __init__(
        self,
        neighbor: IPAddress,
        source: IPAddress | None,
        ttl: int,
        *,
        rng: random.Random | None = None,
        port: int = CONTROL_PORT,
    ) -> None:
        """Open a socket bound to a free port of 49152..65535 (and to ``source`` if given),
        sending with TTL / hop limit ``ttl`` to the neighbour's ``port`` (3784; another for
        tests). Raises OSError if no port can be had."""
        self.neighbor = neighbor
        self.peer_port = port
        family = neighbor.version
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            if family == 4:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            else:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            # Nothing is ever read here: a small buffer keeps a stray sender from using memory.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            self.port = self._bind(str(source) if source is not None else "", rng)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.errors = 0
        """Datagrams the kernel refused (no route, a full buffer): the session goes on."""

    def _bind(self, host: str, rng: random.Random | None) -> int:
        # A random port, not the kernel's ephemeral choice: that range (32768..60999 by
        # default) overlaps 49152..65535 only in part.
        rng = rng or random.SystemRandom()
        for _ in range(_PORT_ATTEMPTS):
            port = rng.randrange(SOURCE_PORTS.start, SOURCE_PORTS.stop)
            try:
                self.sock.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            return port
        raise OSError(errno.EADDRINUSE, "no free UDP source port in 49152..65535")

    def fileno(self) -> int:
        """The descriptor (never read; for tests and diagnostics)."""
        return self.sock.fileno()

    def send(self, payload: bytes) -> bool:
        """Send one Control packet to the neighbour's port 3784; False if the kernel refused."""
        try:
            self.sock.sendto(payload, (str(self.neighbor), self.peer_port))
        except OSError as exc:
            self.errors += 1
            log.debug("BFD send to %s failed: %s", self.neighbor, exc)
            return False
        return True

    def close(self) -> None:
        """Close the socket (the port is free again)."""
        with contextlib.suppress(OSError):
            self.sock.close()
