"""Network I/O for the bundled VRRP daemon: raw sockets, the VMAC macvlan, VIPs and GARPs.

Everything that touches the kernel lives here, so that :mod:`vrrp.daemon` is scheduling and
bookkeeping only. The pieces, and the keepalived behaviour each one matches:

* :class:`RxSocket` — one raw IPPROTO_VRRP socket per (base interface, family), bound to the
  interface (``SO_BINDTODEVICE``) and joined to 224.0.0.18 / ff02::12 there when an instance
  on it is multicast. IPv4 raw sockets deliver the IP header, which carries the TTL; IPv6 ones
  do not, so the hop limit and destination come as ancillary data (``IPV6_RECVHOPLIMIT``,
  ``IPV6_RECVPKTINFO``). Binding to the base interface matters with a VMAC: a private-mode
  macvlan receives a copy of every multicast frame of its lower device, and an unbound socket
  would see each advert twice.
* :class:`TxSocket` — one send-only socket per (transmit interface, family). IPv4 uses
  ``IPPROTO_RAW`` (implies ``IP_HDRINCL``) so that the source address (``unicast_src_ip`` or the
  primary address, P09) and the TTL of 255 (P01) are ours to write, and so that it never queues
  received packets. IPv6 writes the hop limit with socket options and the source with
  ``IPV6_PKTINFO``; a drop-everything BPF filter keeps it from queueing received adverts.
* :class:`Links` — netlink (pyroute2) and ``/proc/sys`` work: the VMAC macvlan in private mode
  named ``vrrp.VRID`` with MAC 00:00:5e:00:01:VRID (keepalived's ``netlink_link_add_vmac``), the
  ARP sysctls keepalived sets on it and on its base (``vrrp_if_config.c``), VIP add/remove (on a
  socket of :mod:`vrrp.rtnl`'s, not pyroute2's: what a failover does keeps nothing).
* :func:`garp_frame` / :func:`unsolicited_na_frame` and :class:`FrameSender` — gratuitous ARPs
  and unsolicited Neighbor Advertisements, sent as whole Ethernet frames from an AF_PACKET
  socket on the base interface with the VMAC as source and sender hardware address, which is
  what keepalived's ``send_gratuitous_arp_immediate`` puts on the wire.

Nothing here imports from ``lab/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import socket
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
)
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vrrp.packet import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_PROTO,
    VRRP_TTL,
    IPAddress,
    parse_ipv4_datagram,
)
from vrrp.rtnl import AddressSocket

__all__ = [
    "NFT_TABLE",
    "AcceptMode",
    "FrameSender",
    "LinkMonitor",
    "Links",
    "Received",
    "RxSocket",
    "TxSocket",
    "accept_mode_ruleset",
    "garp_frame",
    "mac_bytes",
    "pid_file_write",
    "unsolicited_na_frame",
]

log = logging.getLogger(__name__)

_SO_ATTACH_FILTER = 26  # not exported by Python's socket module
_BPF_RET_K = 0x06  # BPF_RET | BPF_K
_IPTOS_PREC_INTERNETCONTROL = 0xC0  # the TOS keepalived puts on adverts
_ETH_P_ARP = 0x0806
_ETH_P_IPV6 = 0x86DD
_ALL_NODES_V6 = IPv6Address("ff02::1")
_ALL_NODES_V6_MAC = bytes.fromhex("333300000001")
_BROADCAST_MAC = b"\xff" * 6
_RECV_BUFFER = 4096  # a VRRP advert with 255 IPv6 addresses is 4,088 octets plus headers
_MACVLAN_MODE_PRIVATE = "private"


def mac_bytes(mac: str) -> bytes:
    """``"00:00:5e:00:01:01"`` as six octets."""
    return bytes(int(part, 16) for part in mac.split(":"))


@dataclass(frozen=True, slots=True)
class Received:
    """One VRRP message as the receive path saw it (IP header already stripped)."""

    src: IPAddress
    """The IP source address."""
    dst: IPAddress
    """The IP destination: the multicast group or one of our addresses (unicast)."""
    ttl: int
    """IPv4 TTL or IPv6 Hop Limit."""
    payload: bytes
    """The VRRP message."""


# --- raw sockets -------------------------------------------------------------------------


def _drop_all_filter(sock: socket.socket) -> None:
    """Attach a one-instruction classic BPF program that accepts nothing.

    A raw IPv6 socket of protocol 112 is handed a copy of every advert the host receives; a
    send-only socket would queue them until its buffer is full. Filtering in the kernel costs
    nothing per packet on our side.
    """
    program = struct.pack("HBBI", _BPF_RET_K, 0, 0, 0)
    buf = bytearray(program)
    # The kernel copies the program during setsockopt; the buffer only has to live until then.
    cbuf = (ctypes.c_char * len(buf)).from_buffer(buf)
    fprog = struct.pack("HL", 1, ctypes.addressof(cbuf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


class RxSocket:
    """The receiving raw socket of one interface and family.

    ``join()``/``leave()`` are reference-counted so that several multicast instances can share
    the socket, and a unicast-only interface never joins the group (as keepalived does).
    """

    def __init__(self, ifname: str, ifindex: int, family: int) -> None:
        """Open the socket, bound to ``ifname``; ``family`` is 4 or 6."""
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_RAW, VRRP_PROTO)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if family == 6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self._joined = 0

    def fileno(self) -> int:
        """The descriptor, for the event loop."""
        return self.sock.fileno()

    def _membership(self, add: bool) -> None:
        if self.family == 4:
            # struct ip_mreqn: group, local address (any), ifindex.
            mreq = VRRP_GROUP_V4.packed + bytes(4) + struct.pack("@i", self.ifindex)
            opt = socket.IP_ADD_MEMBERSHIP if add else socket.IP_DROP_MEMBERSHIP
            self.sock.setsockopt(socket.IPPROTO_IP, opt, mreq)
        else:
            mreq6 = VRRP_GROUP_V6.packed + struct.pack("@I", self.ifindex)
            opt = socket.IPV6_JOIN_GROUP if add else socket.IPV6_LEAVE_GROUP
            self.sock.setsockopt(socket.IPPROTO_IPV6, opt, mreq6)

    def join(self) -> None:
        """Join the VRRP multicast group on the interface (first caller only)."""
        if self._joined == 0:
            self._membership(True)
        self._joined += 1

    def leave(self) -> None:
        """Drop one reference to the group membership; leave it with the last one."""
        if self._joined == 0:
            return
        self._joined -= 1
        if self._joined == 0:
            with contextlib.suppress(OSError):
                self._membership(False)

    def receive(self) -> Received | None:
        """Read one datagram; None when nothing is queued.

        Raises :class:`AdvertError` (reason LENGTH) when an IPv4 datagram cannot even be
        split into header and payload, so that the caller counts it like any other bad input.
        """
        try:
            if self.family == 4:
                data = self.sock.recv(_RECV_BUFFER + 60)
            else:
                data, ancdata, _flags, addr = self.sock.recvmsg(
                    _RECV_BUFFER, socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)
                )
        except (BlockingIOError, InterruptedError):
            return None
        if self.family == 4:
            dgram = parse_ipv4_datagram(data)
            return Received(dgram.src, dgram.dst, dgram.ttl, dgram.payload)
        hop_limit = -1
        dst: IPAddress = VRRP_GROUP_V6
        for level, kind, value in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                hop_limit = struct.unpack("@i", value[:4])[0]
            elif kind == socket.IPV6_PKTINFO and len(value) >= 16:
                dst = IPv6Address(value[:16])
        src = IPv6Address(addr[0].split("%", 1)[0])
        return Received(src, dst, hop_limit, bytes(data))

    def close(self) -> None:
        """Close the socket (the kernel drops the memberships with it)."""
        self.sock.close()


class TxSocket:
    """The sending socket of one interface and family; hop limit 255, never receives."""

    def __init__(self, ifname: str, ifindex: int, family: int) -> None:
        """Open a send-only socket bound to ``ifname``; ``family`` is 4 or 6."""
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        if family == 4:
            # IPPROTO_RAW: we write the IP header (source, TTL), and nothing is delivered to it.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        else:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, VRRP_PROTO)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if family == 4:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                self.sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_MULTICAST_IF,
                    bytes(8) + struct.pack("@i", ifindex),  # ip_mreqn: any, any, ifindex
                )
            else:
                _drop_all_filter(self.sock)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def send(self, payload: bytes, src: IPAddress, dst: IPAddress) -> bool:
        """Send one VRRP message; False (logged by the caller) when the kernel refused it.

        A full socket buffer or a vanished route must not stop the daemon: VRRP is built to
        survive a lost advert, so the error is reported and the schedule goes on.
        """
        try:
            if self.family == 4:
                header = struct.pack(
                    "!BBHHHBBH4s4s",
                    0x45,
                    _IPTOS_PREC_INTERNETCONTROL,
                    20 + len(payload),  # the kernel rewrites it anyway with IP_HDRINCL
                    0,  # identification: 0 lets the kernel choose
                    0,
                    VRRP_TTL,
                    VRRP_PROTO,
                    0,  # header checksum: always filled in by the kernel
                    src.packed,
                    dst.packed,
                )
                self.sock.sendto(header + payload, (str(dst), 0))
            else:
                pktinfo = src.packed + struct.pack("@I", self.ifindex)
                self.sock.sendmsg(
                    [payload],
                    [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                    0,
                    (str(dst), 0, 0, self.ifindex),
                )
        except OSError as exc:
            log.debug("send from %s to %s on %s failed: %s", src, dst, self.ifname, exc)
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


# --- link state ---------------------------------------------------------------------------

_RTMGRP_LINK = 1
_RTM_NEWLINK, _RTM_DELLINK = 16, 17
_IFLA_IFNAME = 3
_IFF_UP, _IFF_RUNNING = 0x1, 0x40


class LinkMonitor:
    """Link up/down events from the kernel (an rtnetlink socket joined to RTMGRP_LINK).

    A plain netlink socket parsed here rather than a pyroute2 object: the event loop needs a
    descriptor it can ``select()`` on and a read that never blocks, and an RTM_NEWLINK carries
    all we need in its fixed header (flags) and one attribute (the name).
    """

    def __init__(self) -> None:
        """Open and bind the socket."""
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        try:
            self.sock.bind((0, _RTMGRP_LINK))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self) -> int:
        """The descriptor, for the event loop."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def read(self) -> list[tuple[str, bool]]:
        """Pending events as (interface name, running); [] when none is queued."""
        events: list[tuple[str, bool]] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return events
            except OSError as exc:  # ENOBUFS: events were lost; callers re-check on their own
                log.warning("link events: %s", exc)
                return events
            events.extend(_parse_link_messages(data))


def _parse_link_messages(data: bytes) -> list[tuple[str, bool]]:
    out = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16 or offset + length > len(data):
            break
        if kind in (_RTM_NEWLINK, _RTM_DELLINK) and length >= 32:
            flags = struct.unpack_from("=I", data, offset + 24)[0]
            name = None
            attr = offset + 32
            while attr + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype == _IFLA_IFNAME:
                    name = data[attr + 4 : attr + alen].split(b"\0", 1)[0].decode()
                attr += (alen + 3) & ~3
            if name is not None:
                running = kind == _RTM_NEWLINK and bool(flags & _IFF_UP and flags & _IFF_RUNNING)
                out.append((name, running))
        offset += (length + 3) & ~3
    return out


# --- Accept_Mode ---------------------------------------------------------------------------

NFT_TABLE = "vrrp_bundled"
"""The nftables table (family ``inet``) that enforces Accept_Mode off."""


def accept_mode_ruleset(vips: Iterable[IPAddress]) -> str:
    """The whole nftables table that drops traffic to ``vips`` (RFC 5798 §6.4.3, row A03).

    A non-owner Master with Accept_Mode off must not accept packets addressed to the VIPs; it
    still answers ARP (not an ``inet`` hook) and Neighbor Discovery (let through here), as
    keepalived's ``no_accept`` rules do. The script replaces the table in one transaction.
    """
    v4 = sorted(str(v) for v in vips if v.version == 4)
    v6 = sorted(str(v) for v in vips if v.version == 6)

    def elements(items: list[str]) -> str:
        return f" elements = {{ {', '.join(items)} }};" if items else ""

    return (
        f"add table inet {NFT_TABLE}\n"
        f"delete table inet {NFT_TABLE}\n"
        f"table inet {NFT_TABLE} {{\n"
        f"  set vips4 {{ type ipv4_addr;{elements(v4)} }}\n"
        f"  set vips6 {{ type ipv6_addr;{elements(v6)} }}\n"
        "  chain input {\n"
        "    type filter hook input priority -1; policy accept;\n"
        "    ip daddr @vips4 drop\n"
        "    ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n"
        "    ip6 daddr @vips6 drop\n"
        "  }\n"
        "}\n"
    )


class AcceptMode:
    """Keeps the Accept_Mode table in step with the VIPs that must not accept traffic.

    Loaded with ``nft -f -`` (one atomic transaction per change) and only once a VIP needs it,
    so a daemon whose instances all accept (keepalived's default) never touches nftables.
    """

    def __init__(self) -> None:
        """Nothing is loaded until :meth:`update` has a VIP to protect."""
        self._current: frozenset[IPAddress] | None = None
        self._missing_warned = False

    def update(self, vips: Iterable[IPAddress]) -> None:
        """Make the table drop exactly ``vips`` (an empty set leaves an empty table)."""
        wanted = frozenset(vips)
        if wanted == self._current or (self._current is None and not wanted):
            return
        if self._run(accept_mode_ruleset(wanted)):
            self._current = wanted

    def close(self) -> None:
        """Remove the table if it was loaded."""
        if self._current is not None:
            self._run(f"add table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n")
            self._current = None

    def _run(self, script: str) -> bool:
        try:
            result = subprocess.run(
                ["nft", "-f", "-"],
                input=script,
                text=True,
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            if not self._missing_warned:
                log.warning("Accept_Mode off cannot be enforced (nft: %s)", exc)
                self._missing_warned = True
            return False
        if result.returncode != 0:
            log.warning("nft refused the Accept_Mode table: %s", result.stderr.strip())
            return False
        return True


# --- GARP / unsolicited NA ------------------------------------------------------------------


def garp_frame(vip: IPv4Address, mac: str) -> bytes:
    """A gratuitous ARP as keepalived sends it: an ARP *request* broadcast from ``mac``.

    Ethernet source and ARP sender hardware address are ``mac`` (the VMAC with ``use_vmac``,
    row A01); sender and target protocol address are the VIP; the target hardware address is
    all-ones, as in keepalived's ``send_gratuitous_arp_immediate``.
    """
    sha = mac_bytes(mac)
    eth = _BROADCAST_MAC + sha + struct.pack("!H", _ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + vip.packed + _BROADCAST_MAC + vip.packed
    return eth + arp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na_frame(vip: IPv6Address, mac: str, *, router: bool = False) -> bytes:
    """An unsolicited Neighbor Advertisement for ``vip`` from ``mac`` (RFC 4861 §7.2.6).

    Sent to all-nodes (ff02::1) with hop limit 255, Override set and Solicited clear (RFC 5798
    §6.4.2 / RFC 9568 erratum 7949), and a Target Link-Layer Address option carrying ``mac``.
    The source address is the VIP itself, which is installed before the NA goes out.
    """
    sha = mac_bytes(mac)
    flags = (0x80 if router else 0) | 0x20  # R (only when forwarding), O; S stays clear
    body = struct.pack("!BBHB3x", 136, 0, 0, flags) + vip.packed + struct.pack("!BB", 2, 1) + sha
    pseudo = vip.packed + _ALL_NODES_V6.packed + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 0x60000000, len(body), 58, 255) + vip.packed + _ALL_NODES_V6.packed
    eth = _ALL_NODES_V6_MAC + sha + struct.pack("!H", _ETH_P_IPV6)
    return eth + ip6 + body


class FrameSender:
    """A send-only AF_PACKET socket for GARPs and NAs (protocol 0: it receives nothing)."""

    def __init__(self) -> None:
        """Open the socket; frames are addressed per call to an interface."""
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.setblocking(False)

    def send(self, ifname: str, frame: bytes) -> bool:
        """Send ``frame`` out of ``ifname``; False when the kernel refused it."""
        try:
            self.sock.sendto(frame, (ifname, 0))
        except OSError as exc:
            log.debug("frame on %s failed: %s", ifname, exc)
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


# --- links, sysctls, addresses -------------------------------------------------------------


def _sysctl_path(family: int, ifname: str, name: str) -> Path:
    # /proc/sys/net shows the network namespace of the process that opens it: ours.
    return Path(f"/proc/sys/net/ipv{family}/conf/{ifname}/{name}")


class Links:
    """Netlink and sysctl operations on this network namespace's interfaces.

    Everything the daemon creates is remembered here (macvlans, VIPs, base-interface sysctls
    changed), so that :meth:`cleanup` removes exactly that and nothing else.
    """

    def __init__(self) -> None:
        """Open the netlink socket."""
        self.ipr = IPRoute()
        #: VIPs are added and removed on a socket of their own (:mod:`vrrp.rtnl`: why).
        self.vip_socket = AddressSocket()
        self.created_links: list[str] = []
        self._saved_sysctls: dict[tuple[int, str, str], str] = {}
        self._base_refs: dict[str, int] = {}
        self._index_cache: dict[str, int] = {}

    # -- lookups ------------------------------------------------------------------------------

    def index(self, ifname: str) -> int | None:
        """The ifindex of ``ifname``, or None if it does not exist.

        Cached: a netlink round trip costs about a millisecond, and a daemon with hundreds of
        instances would otherwise spend whole advert periods looking up the same interface.
        The cache is dropped when this class creates or deletes a link; :meth:`forget` drops
        it for interfaces changed by others.
        """
        cached = self._index_cache.get(ifname)
        if cached is not None:
            return cached
        # The kernel's name lookup (an ioctl), not pyroute2's link_lookup: see _link.
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            return None
        self._index_cache[ifname] = index
        return index

    def _link(self, idx: int) -> Any:
        """The RTM_NEWLINK message of link ``idx``, from a dump of every link.

        A dump, not pyroute2's single-link request (``get_links(idx)``, ``link_lookup``):
        with pyroute2 0.9.7 the kernel's ACK that follows a single link's answer arrives after
        the request's queue is gone and lands in the socket's root queue, which only a socket
        bound to multicast groups reads. Each such call kept about 2 KB for the daemon's
        lifetime: a long-lived daemon grew with every link event (found by the soak,
        docs/benchmarks.md). A dump ends with NLMSG_DONE on its own queue and leaves nothing.
        """
        for link in self.ipr.get_links():
            if link["index"] == idx:
                return link
        return None

    def forget(self) -> None:
        """Drop cached interface indexes (after links changed under us, e.g. on reload)."""
        self._index_cache.clear()

    def mac(self, ifname: str) -> str | None:
        """The link-layer address of ``ifname``, lower-case, or None."""
        idx = self.index(ifname)
        link = None if idx is None else self._link(idx)
        if link is None:
            return None
        addr = link.get_attr("IFLA_ADDRESS")
        return addr.lower() if addr else None

    def is_up(self, ifname: str) -> bool:
        """Whether ``ifname`` exists, is administratively up and has a carrier."""
        idx = self.index(ifname)
        link = None if idx is None else self._link(idx)
        if link is None:
            return False
        return bool(link["flags"] & _IFF_UP and link["flags"] & _IFF_RUNNING)

    def addresses(self, ifname: str, family: int) -> list[IPAddress]:
        """The addresses on ``ifname`` of ``family`` (4 or 6), primary first."""
        idx = self.index(ifname)
        if idx is None:
            return []
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        out: list[IPAddress] = []
        for msg in self.ipr.get_addr(family=af, index=idx):
            out.append(ip_address(msg.get_attr("IFA_ADDRESS")))
        return out

    def primary_address(self, ifname: str, family: int) -> IPAddress | None:
        """The address adverts are sent from when no ``unicast_src_ip`` is given (P09).

        IPv4: the interface's first address. IPv6: its link-local address (RFC 5798 §5.1.2.1).
        """
        addrs = self.addresses(ifname, family)
        if family == 6:
            addrs = [a for a in addrs if a.is_link_local]
        return addrs[0] if addrs else None

    # -- sysctls ------------------------------------------------------------------------------

    def set_sysctl(self, family: int, ifname: str, name: str, value: int) -> None:
        """Write one per-interface sysctl; a missing file is logged, not fatal."""
        try:
            _sysctl_path(family, ifname, name).write_text(f"{value}\n")
        except OSError as exc:
            log.warning("cannot set net.ipv%d.conf.%s.%s=%d: %s", family, ifname, name, value, exc)

    def _save_and_set(self, family: int, ifname: str, name: str, value: int) -> None:
        path = _sysctl_path(family, ifname, name)
        key = (family, ifname, name)
        try:
            old = path.read_text().strip()
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return
        if key not in self._saved_sysctls:
            self._saved_sysctls[key] = old
        if old != str(value):
            self.set_sysctl(family, ifname, name, value)

    # -- the VMAC -----------------------------------------------------------------------------

    def create_vmac(self, name: str, base: str, mac: str, family: int) -> bool:
        """Create (or adopt) the macvlan ``name`` on ``base`` with ``mac``, and bring it up.

        Returns True when this call created it; an adopted one is deleted on exit all the same,
        as keepalived does with the VMAC a crashed predecessor left. Mode private, as
        keepalived: frames with the VMAC as destination reach the macvlan, and nothing is
        bridged between macvlans of one base. For an IPv4 instance, the sysctls are the ones of
        keepalived's ``set_interface_parameters``:

        * on the macvlan: ``arp_ignore=1`` (answer ARP only for addresses on this interface: the
          VIP once master), ``accept_local=1`` (hear a peer using the same VMAC),
          ``rp_filter=0`` (receive while it has no address), ``promote_secondaries=1``, and
          IPv6 off so that no link-local derived from the VMAC ever speaks;
        * on the base: ``arp_ignore=1`` and ``arp_filter=1`` (the base must not answer for the
          VIP with its own MAC), plus ``arp_announce=2`` (our addition, see the code), all
          restored when the last VMAC on that base goes.
        """
        base_idx = self.index(base)
        if base_idx is None:
            raise OSError(errno.ENODEV, f"base interface {base} does not exist")
        created = False
        idx = self.index(name)
        link = None if idx is None else self._link(idx)
        if idx is not None and link is None:
            # Gone since the name was looked up: made afresh below.
            self.forget()
            idx = None
        if link is not None:
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            if kind != "macvlan":
                raise OSError(errno.EEXIST, f"{name} exists and is not a macvlan")
            if (link.get_attr("IFLA_ADDRESS") or "").lower() != mac or link.get_attr(
                "IFLA_LINK"
            ) != base_idx:
                # Left behind by a crashed run with other parameters: replace it, as keepalived.
                self.ipr.link("del", index=idx)
                self.forget()
                idx = None
            elif name not in self.created_links:
                # Left by a predecessor with the right MAC and base (a crashed run): adopted,
                # and deleted on exit like one we created, as keepalived does.
                self.created_links.append(name)
        if idx is None:
            self.ipr.link(
                "add",
                ifname=name,
                kind="macvlan",
                link=base_idx,
                macvlan_mode=_MACVLAN_MODE_PRIVATE,
                address=mac,
            )
            created = True
            self.forget()
            self.created_links.append(name)
            idx = self.index(name)
            assert idx is not None
        if family == 4:
            for key, value in (
                ("arp_ignore", 1),
                ("accept_local", 1),
                ("rp_filter", 0),
                ("promote_secondaries", 1),
            ):
                self.set_sysctl(4, name, key, value)
            if Path("/proc/sys/net/ipv6/conf", name).exists():
                self.set_sysctl(6, name, "disable_ipv6", 1)
            self._base_refs[base] = self._base_refs.get(base, 0) + 1
            self._save_and_set(4, base, "arp_ignore", 1)
            self._save_and_set(4, base, "arp_filter", 1)
            # Not in keepalived: arp_announce=2 makes ARP requests the base sends carry its own
            # address, not the VIP. Otherwise the Master's reply traffic from the VIP (routed
            # out of the base) triggers requests "who-has X tell VIP" from the base MAC, and
            # every neighbour that answers also rebinds the VIP to the base MAC, undoing the
            # VMAC that the GARPs and ARP replies announced.
            self._save_and_set(4, base, "arp_announce", 2)
        else:
            # RFC 5798 §7.4: no link-local address derived from the VMAC.
            with contextlib.suppress(OSError):
                self.set_sysctl(6, name, "addr_gen_mode", 1)
        self.ipr.link("set", index=idx, state="up")
        return created

    def delete_vmac(self, name: str, base: str | None = None) -> None:
        """Delete a macvlan this daemon created; restore the base's ARP sysctls with the last."""
        if name in self.created_links:
            idx = self.index(name)
            if idx is not None:
                with contextlib.suppress(NetlinkError):
                    self.ipr.link("del", index=idx)
                self.forget()
            self.created_links.remove(name)
        if base is not None and base in self._base_refs:
            self._base_refs[base] -= 1
            if self._base_refs[base] == 0:
                del self._base_refs[base]
                self._restore_base(base)

    def _restore_base(self, base: str) -> None:
        for key in [k for k in self._saved_sysctls if k[1] == base]:
            family, ifname, name = key
            value = self._saved_sysctls.pop(key)
            with contextlib.suppress(OSError):
                _sysctl_path(family, ifname, name).write_text(f"{value}\n")

    # -- addresses ----------------------------------------------------------------------------

    def add_address(self, ifname: str, addr: IPv4Interface | IPv6Interface) -> bool:
        """Add ``addr`` to ``ifname``; True if added, False if it was there or failed."""
        idx = self.index(ifname)
        if idx is None:
            log.warning("cannot add %s: no interface %s", addr, ifname)
            return False
        code = self.vip_socket.request("add", idx, addr)
        if code not in (0, errno.EEXIST):
            log.warning("cannot add %s to %s: %s", addr, ifname, os.strerror(code))
        return code == 0

    def remove_address(self, ifname: str, addr: IPv4Interface | IPv6Interface) -> bool:
        """Remove ``addr`` from ``ifname``; True if it was removed."""
        idx = self.index(ifname)
        if idx is None:
            return False
        code = self.vip_socket.request("del", idx, addr)
        if code not in (0, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
            log.warning("cannot remove %s from %s: %s", addr, ifname, os.strerror(code))
        return code == 0

    # -- teardown -----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete every macvlan created and restore every sysctl changed, then close netlink."""
        for name in list(self.created_links):
            self.delete_vmac(name)
        for base in list(self._base_refs):
            self._restore_base(base)
        self._base_refs.clear()
        with contextlib.suppress(Exception):
            self.ipr.close()
        self.vip_socket.close()


def pid_file_write(path: str) -> None:
    """Write our pid to ``path`` (creating its directory), as keepalived's ``-p`` does."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)
