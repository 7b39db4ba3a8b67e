"""The wire fuzzer's oracle: what becomes of a frame sent at a VRRPv3 master/backup pair.

:func:`judge` reads a frame's bytes (one frame, or the IP fragments of one datagram) as the
path to each router would, and says its :class:`Fate` there: dropped by the kernel before the
daemon (:class:`KernelDrop`, with the rule and the counters it adds to), or delivered to the
daemon's raw socket (:class:`Delivered`: counted on the instance or only on the socket, under
a :class:`vrrp.packet.Reason` or valid, and what the daemon then does with a valid one).
:func:`lab.wire_fuzz.generate` builds the frames; this module never sees how.

What the oracle trusts, and nothing else:

* **The kernel**: RFC 791/1122 and RFC 8200 receive rules, with the Linux counter each drop is
  counted under in the receiver's namespace (``/proc/net/snmp``, ``netstat`` IpExt,
  ``snmp6``). Where Linux goes beyond an RFC the rule says so: a Routing header on a packet to
  a multicast address (``ipv6_rthdr_rcv``: ``Ip6InAddrErrors``), PadN over 7 octets or with
  non-zero octets (RFC 4942 §2.1.9.5, ``ip6_parse_tlv``), a host counting a datagram for
  another address as ``InAddrErrors``, a group the host has not joined dropped uncounted
  (``ip_route_input``), a frame for another host's MAC too.
* **The bridge in between**, when it validates (``br_netfilter`` with
  ``bridge-nf-call-iptables`` / ``-ip6tables`` in the fabric's namespace,
  :attr:`Pair.bridge_checks`): ``br_validate_ipv4`` drops a bad IPv4 version, IHL, header
  checksum or Total Length, ``br_validate_ipv6`` a bad IPv6 version or Payload Length and a
  hop-by-hop header that overruns (uncounted), each counted in the *fabric's* namespace; and
  both cut the frame to the IP length, as a router would.
* **RFC 5798 §7.1** for the advert, checked here with its own one's-complement sum (RFC
  1071), with the failure vocabulary of :class:`vrrp.packet.Reason` as its docstrings define
  each reason. The RFC names no order of the checks, so a frame that fails more than one is
  refused (:class:`Unsafe`): the reason of one that fails one is the same in any order. RFC
  9568 §7.1 (erratum 8301) makes an interval of 0 a discard; either checksum form is accepted
  on IPv4 (docs/vrrp-daemon.md, "RFC 9568 mode"). A message whose length or count says it is
  incomplete has no checksum to verify.
* **The daemon's documented rules beyond the RFC** (docs/vrrp-daemon.md, ``vrrp.receive``'s
  docstring): a datagram is for the instance whose VRID its second octet names, on the socket
  it came in on; a multicast instance listens to the group only, a unicast one to its peers
  only (anything else is counted ``unicast-to-multicast`` / ``unknown-peer`` on the instance
  when valid, under its reason on the socket only otherwise); a unicast peer's TTL is checked
  against its ``min_ttl``/``max_ttl`` only (keepalived's rule; the defaults take any).
* **RFC 5798 §6.4** for a valid advert: a master discards one of lower priority
  (``losing-advert``), a backup with preemption one below its own (``lower-priority``) and
  takes any other as its master's. It refuses (:class:`Unsafe`) what would rightly change
  state: priority 0, a priority the master does not beat, an interval a backup would adopt.

Nothing here decodes with :mod:`vrrp.packet`; ``tests/unit/test_wire_fuzz.py`` compares
:func:`check_advert` with ``vrrp.packet.decode`` as an independent cross-check. Pure: no I/O,
no clock, the standard library and :class:`vrrp.packet.Reason` only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Literal

from vrrp.packet import Reason

__all__ = [
    "ALL_NODES",
    "FABRIC",
    "GROUP",
    "OTHER_GROUP",
    "ROLES",
    "Delivered",
    "Family",
    "Fate",
    "IPAddress",
    "KernelDrop",
    "Mode",
    "Pair",
    "Peer",
    "Role",
    "Unsafe",
    "check_advert",
    "checksum",
    "judge",
    "mac_bytes",
    "pseudo_header",
]

IPAddress = IPv4Address | IPv6Address
Family = Literal[4, 6]
Mode = Literal["multicast", "unicast"]
Role = Literal["master", "backup"]
ROLES: tuple[Role, Role] = ("master", "backup")
"""The two routers of a pair, in the order every report lists them."""
FABRIC = "fabric"
"""The key of the fabric's bridge among :func:`judge`'s fates."""

GROUP = {4: IPv4Address("224.0.0.18"), 6: IPv6Address("ff02::12")}
ALL_NODES = {4: IPv4Address("224.0.0.1"), 6: IPv6Address("ff02::1")}
OTHER_GROUP = {4: IPv4Address("224.0.0.19"), 6: IPv6Address("ff02::13")}
_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_VRRP, _HOP, _ROUTING, _FRAGMENT, _DSTOPTS = 112, 0, 43, 44, 60


@dataclass(frozen=True)
class Peer:
    """One router of the pair (or the observer) as the wire sees it."""

    mac: str
    """Its port's MAC."""
    address: str
    """The address it advertises from: IPv4, or IPv6 link-local (multicast) / global (unicast)."""
    unicast: str
    """The address unicast frames are sent to (IPv4, or its IPv6 global address)."""
    link_local: str | None = None
    """Its IPv6 link-local address (IPv6 only)."""
    priority: int = 0
    """Its configured VRRP priority (0 for the observer)."""

    def locals(self) -> set[IPAddress]:
        """Every address of its own a frame may be sent to."""
        out = {ip_address(self.address), ip_address(self.unicast)}
        if self.link_local:
            out.add(ip_address(self.link_local))
        return out


@dataclass(frozen=True)
class Pair:
    """The pair under fuzz: family, mode, VRID, timers, VIPs and who is who."""

    family: Family
    mode: Mode
    vrid: int
    interval_cs: int
    vips: tuple[str, ...]
    master: Peer
    backup: Peer
    observer: Peer
    spare: str
    """An on-link unicast address nobody holds (a wrong destination)."""
    bridge_checks: tuple[int, ...] = ()
    """The families whose headers the bridge between observer and routers validates
    (``br_netfilter``: ``bridge-nf-call-iptables`` 4, ``-ip6tables`` 6)."""
    bridge_listens: tuple[int, ...] = ()
    """The families the bridge's own interface has a stack for: it is a host on the segment
    too, with no address, in the all-nodes group only, and no VRRP socket."""

    def peer(self, role: str) -> Peer:
        """The router playing ``role``."""
        return self.master if role == "master" else self.backup

    def other(self, role: str) -> Peer:
        """The other router: the one configured as ``role``'s unicast peer."""
        return self.backup if role == "master" else self.master

    def joined(self) -> set[IPAddress]:
        """The multicast groups each router's kernel delivers: all-nodes always, the VRRP
        group when the instance is multicast (a unicast one never joins it)."""
        groups = {ALL_NODES[self.family]}
        if self.mode == "multicast":
            groups.add(GROUP[self.family])
        return groups


@dataclass(frozen=True)
class KernelDrop:
    """Dropped by the receiver's kernel before the daemon's socket."""

    rule: str
    """Why, in a few words (the RFC, or Linux where it goes beyond)."""
    counters: tuple[str, ...] = ()
    """The kernel counters it adds one to (``Ip:InHdrErrors``...); none when uncounted."""
    at: Literal["router", "bridge"] = "router"
    """Whose kernel: the router's, or the fabric's bridge (``counters`` are the fabric's)."""


@dataclass(frozen=True)
class Delivered:
    """Handed to the daemon's raw socket; where it is counted and how it ends."""

    instance: bool
    """Counted on the instance (True) or only on the socket (no instance took it)."""
    reason: str | None
    """The :class:`vrrp.packet.Reason` value it is discarded for, None when valid."""
    discard: str | None = None
    """For a valid one: the daemon's discard key (``losing-advert``, ``unknown-peer``...),
    None when the instance acted on it (a backup hearing a master)."""
    counters: tuple[str, ...] = ()
    """Kernel counters its way in adds one to (reassembly)."""

    @property
    def valid(self) -> bool:
        """Passed RFC 5798 §7.1 and was taken by the instance."""
        return self.reason is None and self.instance


Fate = KernelDrop | Delivered


class Unsafe(ValueError):
    """A frame the oracle cannot judge exactly, or one that would rightly change state."""


# --- RFC 1071 and the advert's checks ----------------------------------------------------


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    """The RFC 1071 Internet checksum of ``data``."""
    return ~_sum16(data) & 0xFFFF


def pseudo_header(src: str, dst: str, length: int) -> bytes:
    """The pseudo-header a VRRPv3 checksum covers (RFC 5798 §5.2.8, RFC 8200 §8.1)."""
    s, d = ip_address(src), ip_address(dst)
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, _VRRP, length)
    return s.packed + d.packed + struct.pack("!I3xB", length, _VRRP)


def check_advert(
    payload: bytes,
    *,
    src: str,
    dst: str,
    ttl: int,
    version: int | None,
    vrids: set[int] | None,
) -> set[Reason]:
    """Every RFC 5798 §7.1 check ``payload`` fails (an empty set: valid).

    ``version`` is the one the receiving instance runs (None: any of 2 and 3, for a datagram
    no instance took; a VRRPv2 message is then outside this oracle and raises :class:`Unsafe`),
    ``vrids`` the configured VRIDs to check against (None: the instance's own, already
    matched). A message whose length or count says it is incomplete has no checksum to verify.
    """
    family = ip_address(src).version
    failed: set[Reason] = set()
    if ttl != 255:
        failed.add(Reason.TTL)
    if payload:
        ver, kind = payload[0] >> 4, payload[0] & 0x0F
        wrong = ver not in (2, 3) or (version is not None and ver != version)
        if wrong or (ver == 2 and family == 6):  # VRRPv2 has no IPv6 (RFC 3768)
            failed.add(Reason.VERSION)
        elif ver == 2:
            raise Unsafe("a VRRPv2 message to no instance: outside this oracle")
        if kind != 1:
            failed.add(Reason.TYPE)
    if len(payload) < 8:
        return failed | {Reason.LENGTH}
    addr_len = 4 if family == 4 else 16
    body = len(payload) - 8
    if body % addr_len:
        return failed | {Reason.LENGTH}
    count = payload[3]
    if count == 0 or count != body // addr_len:
        return failed | {Reason.ADDRESS_COUNT}
    forms = [pseudo_header(src, dst, len(payload)) + payload]
    if family == 4:
        forms.append(payload)  # RFC 9568 §5.2.8: no pseudo-header for IPv4
    if not any(_sum16(f) == 0xFFFF for f in forms):
        failed.add(Reason.CHECKSUM)
    vrid = payload[1]
    if vrid == 0 or (vrids is not None and vrid not in vrids):
        failed.add(Reason.VRID)
    if struct.unpack_from("!H", payload, 4)[0] & 0x0FFF == 0:
        failed.add(Reason.INTERVAL_ZERO)
    return failed


# --- the kernel's receive path -----------------------------------------------------------


@dataclass
class _Packet:
    """An IP datagram as the kernel hands it up: addresses, TTL, protocol, payload."""

    src: str
    dst: str
    ttl: int
    proto: int
    payload: bytes
    counters: tuple[str, ...] = ()


def mac_bytes(text: str) -> bytes:
    """A MAC address's six octets."""
    return bytes(int(b, 16) for b in text.split(":"))


def _ipv4_in(data: bytes, mine: set[IPAddress], joined: set[IPAddress]) -> _Packet | KernelDrop:
    """RFC 791 / RFC 1122 §3.2.1 receive checks, in Linux's order (``ip_rcv_core``)."""
    if len(data) < 20 or data[0] >> 4 != 4 or data[0] & 0x0F < 5:
        return KernelDrop("IPv4 version or IHL", ("Ip:InHdrErrors",))
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl:
        return KernelDrop("IPv4 header longer than the frame", ("Ip:InHdrErrors",))
    if _sum16(data[:ihl]) != 0xFFFF:
        return KernelDrop("IPv4 header checksum", ("Ip:InHdrErrors", "IpExt:InCsumErrors"))
    total = struct.unpack_from("!H", data, 2)[0]
    if total > len(data):
        return KernelDrop("IPv4 Total Length beyond the frame", ("IpExt:InTruncatedPkts",))
    if total < ihl:
        return KernelDrop("IPv4 Total Length below the header", ("Ip:InHdrErrors",))
    src, dst = str(IPv4Address(data[12:16])), IPv4Address(data[16:20])
    local = dst in mine or dst in joined
    # Linux routes first (a group not joined ends there, uncounted), then reads the options,
    # and only then hands a datagram for another address to ip_error.
    if not local and dst.is_multicast:
        return KernelDrop("a group this host has not joined")
    if not _ipv4_options_ok(data[20:ihl]):
        return KernelDrop("malformed IPv4 option", ("Ip:InHdrErrors",))
    if not local:
        return KernelDrop("not this host's address (no forwarding)", ("Ip:InAddrErrors",))
    return _Packet(src, str(dst), data[8], data[9], data[ihl:total])


def _ipv4_options_ok(options: bytes) -> bool:
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:  # End of Option List
            return True
        if kind == 1:  # No Operation
            i += 1
            continue
        if i + 1 >= len(options) or not 2 <= options[i + 1] <= len(options) - i:
            return False
        i += options[i + 1]
    return True


def _reassemble4(frags: list[bytes]) -> bytes:
    """The whole datagram from IPv4 fragments (RFC 791 §3.2), header of the first."""
    parts = sorted(frags, key=lambda d: struct.unpack_from("!H", d, 6)[0] & 0x1FFF)
    head = parts[0]
    ihl = (head[0] & 0x0F) * 4
    body = b"".join(p[(p[0] & 0x0F) * 4 : struct.unpack_from("!H", p, 2)[0]] for p in parts)
    header = bytearray(head[:ihl])
    struct.pack_into("!HHH", header, 2, ihl + len(body), 0, 0)
    struct.pack_into("!H", header, 10, 0)
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header) + body


def _tlv_drop(data: bytes, hop: bool) -> str | None:
    """RFC 8200 §4.2 options of a hop-by-hop or destination options header: why the packet
    is dropped, or None. PadN over 7 octets or not zero: RFC 4942 §2.1.9.5, as Linux."""
    i, pad = 2, 0
    while i < len(data):
        kind = data[i]
        if kind == 0:
            i, pad = i + 1, pad + 1
            if pad > 7:
                return "more than 7 octets of padding"
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            return "an option overruns its header"
        length = data[i + 1]
        if kind == 1:
            pad += length + 2
            if pad > 7:
                return "more than 7 octets of padding"
            if any(data[i + 2 : i + 2 + length]):
                return "PadN with non-zero octets"
        else:
            pad = 0
            known = hop and kind == 5 and length == 2  # Router Alert (RFC 2711)
            action = kind >> 6
            if not known and action != 0:
                return f"unknown option {kind:#04x} with action {action:02b}"
        i += 2 + length
    return None


def _ipv6_in(
    frames: list[bytes], mine: set[IPAddress], joined: set[IPAddress]
) -> _Packet | KernelDrop:
    """RFC 8200 receive checks and extension headers, in Linux's order (``ipv6_rcv``)."""
    packets = []
    for data in frames:
        if len(data) < 40 or data[0] >> 4 != 6:
            return KernelDrop("IPv6 version", ("Ip6:Ip6InHdrErrors",))
        plen = struct.unpack_from("!H", data, 4)[0]
        if 40 + plen > len(data):
            return KernelDrop("IPv6 Payload Length beyond the frame", ("Ip6:Ip6InTruncatedPkts",))
        packets.append(data[: 40 + plen])
    data = packets[0]
    src, dst = IPv6Address(data[8:24]), IPv6Address(data[24:40])
    if src.is_multicast:
        return KernelDrop("a multicast source (RFC 4291 §2.7)", ("Ip6:Ip6InHdrErrors",))
    nxt, off = data[6], 40
    if nxt == _HOP:  # processed before routing, first of all (RFC 8200 §4.3)
        drop = _ext_drop(data, off, True)
        if drop is not None:
            return drop
        nxt, off = data[off], off + (data[off + 1] + 1) * 8
    if not (dst in mine or dst in joined):
        if dst.is_multicast:
            return KernelDrop("a group this host has not joined")
        return KernelDrop("not this host's address (no forwarding)", ("Ip6:Ip6InAddrErrors",))
    counters: list[str] = []
    while nxt in (_DSTOPTS, _ROUTING, _FRAGMENT):
        if off + 8 > len(data):
            return KernelDrop("a truncated extension header", ("Ip6:Ip6InHdrErrors",))
        if nxt == _DSTOPTS:
            drop = _ext_drop(data, off, False)
            if drop is not None:
                return drop
        elif nxt == _ROUTING:
            if len(data) < off + 8 or len(data) < off + (data[off + 1] + 1) * 8:
                return KernelDrop("a truncated routing header", ("Ip6:Ip6InHdrErrors",))
            if dst.is_multicast:
                return KernelDrop("a routing header to a group (Linux)", ("Ip6:Ip6InAddrErrors",))
            if data[off + 3]:
                return KernelDrop("routing header type with Segments Left", ("Ip6:Ip6InHdrErrors",))
        elif nxt == _FRAGMENT:
            counters.append("Ip6:Ip6ReasmOKs")
            if len(packets) > 1:
                data = _reassemble6(packets, off)
            elif struct.unpack_from("!H", data, off + 2)[0] & 0xFFF9:
                raise Unsafe("a lone fragment would wait for reassembly")
            nxt, off = data[off], off + 8
            continue
        nxt, off = data[off], off + (data[off + 1] + 1) * 8
    return _Packet(str(src), str(dst), data[7], nxt, data[off:], tuple(counters))


def _ext_drop(data: bytes, off: int, hop: bool) -> KernelDrop | None:
    if len(data) < off + 8 or len(data) < off + (data[off + 1] + 1) * 8:
        return KernelDrop("a truncated options header", ("Ip6:Ip6InHdrErrors",))
    why = _tlv_drop(data[off : off + (data[off + 1] + 1) * 8], hop)
    return None if why is None else KernelDrop(why, ("Ip6:Ip6InHdrErrors",))


def _reassemble6(packets: list[bytes], off: int) -> bytes:
    """The packet from its fragments (RFC 8200 §4.5): the unfragmentable part of the first,
    the fragment header kept as an atomic one, then the fragments' data in offset order."""
    parts = sorted(packets, key=lambda p: struct.unpack_from("!H", p, off + 2)[0] >> 3)
    body = b"".join(p[off + 8 :] for p in parts)
    head = bytearray(parts[0][: off + 8])
    struct.pack_into("!H", head, off + 2, 0)
    struct.pack_into("!H", head, 4, len(head) - 40 + len(body))
    return bytes(head) + body


# --- the daemon's side -------------------------------------------------------------------


def _daemon(pair: Pair, role: str, pkt: _Packet) -> Delivered:
    """Where the daemon counts ``pkt`` and how it ends (see the module docstring)."""
    me, other = pair.peer(role), pair.other(role)
    candidate = len(pkt.payload) >= 2 and pkt.payload[1] == pair.vrid
    to_group = ip_address(pkt.dst) == GROUP[pair.family]
    if pair.mode == "unicast":
        taken = candidate and not to_group and ip_address(pkt.src) == ip_address(other.unicast)
    else:
        taken = candidate and to_group
    ttl = 255 if taken and pair.mode == "unicast" else pkt.ttl  # keepalived's unicast rule
    failed = check_advert(
        pkt.payload,
        src=pkt.src,
        dst=pkt.dst,
        ttl=ttl,
        version=3 if taken else None,
        vrids=None if candidate else {pair.vrid},
    )
    if len(failed) > 1:
        raise Unsafe(f"fails {sorted(failed)}: the RFC names no order")
    if failed:
        return Delivered(taken, failed.pop().value, counters=pkt.counters)
    if not taken:
        key = "unknown-peer" if pair.mode == "unicast" else "unicast-to-multicast"
        return Delivered(False, None, key, pkt.counters)
    priority = pkt.payload[2]
    interval = struct.unpack_from("!H", pkt.payload, 4)[0] & 0x0FFF
    if priority == 0:
        raise Unsafe("a valid priority 0 starts Skew_Time at the backup")
    if role == "master":
        if priority >= me.priority:
            raise Unsafe("a valid advert the master does not beat")
        return Delivered(True, None, "losing-advert", pkt.counters)
    if priority < me.priority:  # §6.4.2 with Preempt_Mode (the default)
        return Delivered(True, None, "lower-priority", pkt.counters)
    if interval != pair.interval_cs:
        raise Unsafe("the backup would adopt another interval")
    return Delivered(True, None, None, pkt.counters)


def _bridge(pair: Pair, frame: bytes) -> KernelDrop | None:
    """``br_validate_ipv4`` / ``br_validate_ipv6``: what the bridge drops, when it checks."""
    ethertype, data = struct.unpack_from("!H", frame, 12)[0], frame[14:]
    if ethertype == _ETH_IPV4 and 4 in pair.bridge_checks:
        if len(data) < 20 or data[0] >> 4 != 4 or data[0] & 0x0F < 5:
            return KernelDrop("bridge: IPv4 version or IHL", ("Ip:InHdrErrors",), "bridge")
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl:
            return KernelDrop("bridge: IPv4 header past the frame", ("Ip:InHdrErrors",), "bridge")
        if _sum16(data[:ihl]) != 0xFFFF:
            counters = ("Ip:InHdrErrors", "IpExt:InCsumErrors")
            return KernelDrop("bridge: IPv4 header checksum", counters, "bridge")
        total = struct.unpack_from("!H", data, 2)[0]
        if total > len(data):
            counters = ("IpExt:InTruncatedPkts",)
            return KernelDrop("bridge: IPv4 Total Length past the frame", counters, "bridge")
        if total < ihl:
            counters = ("Ip:InHdrErrors",)
            return KernelDrop("bridge: IPv4 Total Length below the header", counters, "bridge")
    if ethertype == _ETH_IPV6 and 6 in pair.bridge_checks:
        if len(data) < 40 or data[0] >> 4 != 6:
            return KernelDrop("bridge: IPv6 version", ("Ip6:Ip6InHdrErrors",), "bridge")
        if data[6] == _HOP and not _hbh_lengths_ok(data):
            return KernelDrop("bridge: hop-by-hop options overrun", (), "bridge")
        if 40 + struct.unpack_from("!H", data, 4)[0] > len(data):
            counters = ("Ip6:Ip6InTruncatedPkts",)
            return KernelDrop("bridge: IPv6 Payload Length past the frame", counters, "bridge")
    return None


def _hbh_lengths_ok(data: bytes) -> bool:
    """``nf_ip6_check_hbh_len``: the hop-by-hop header and its options fit (lengths only)."""
    if len(data) < 48 or len(data) < 40 + (data[41] + 1) * 8:
        return False
    off, end = 42, 40 + (data[41] + 1) * 8
    while off < end:
        if data[off] == 0:
            off += 1
            continue
        if end - off < 2 or data[off + 1] + 2 > end - off:
            return False
        off += data[off + 1] + 2
    return True


def _host(pair: Pair, frames: tuple[bytes, ...], role: str) -> Fate:
    """What one host on the segment does with ``frames``: a router, or :data:`FABRIC`."""
    me = pair.peer(role) if role in ROLES else None
    first = frames[0]
    ethertype = struct.unpack_from("!H", first, 12)[0]
    family = 4 if ethertype == _ETH_IPV4 else 6 if ethertype == _ETH_IPV6 else 0
    if not family:
        raise Unsafe(f"ethertype {ethertype:#06x}")
    if me is None:
        if not first[0] & 1 or family not in pair.bridge_listens:
            return KernelDrop("not for the bridge's own stack")
        mine, joined = set(), {ALL_NODES[family]}
    else:
        if not (first[0] & 1 or first[:6] == mac_bytes(me.mac)):
            return KernelDrop("another host's MAC")
        mine, joined = me.locals(), pair.joined()
    datagrams = [f[14:] for f in frames]
    pkt: _Packet | KernelDrop
    if family == 4:
        pkt = _ipv4_in(datagrams[0], mine, joined)
        if isinstance(pkt, _Packet) and len(datagrams) > 1:
            if any(isinstance(_ipv4_in(d, mine, joined), KernelDrop) for d in datagrams[1:]):
                raise Unsafe("one fragment of two dropped")
            pkt = _ipv4_in(_reassemble4(datagrams), mine, joined)
            if isinstance(pkt, _Packet):
                pkt.counters = ("Ip:ReasmOKs",)
        elif isinstance(pkt, _Packet) and struct.unpack_from("!H", first, 20)[0] & 0x3FFF:
            raise Unsafe("a lone fragment would wait for reassembly")
    else:
        pkt = _ipv6_in(datagrams, mine, joined)
    if isinstance(pkt, KernelDrop):
        if len(frames) > 1 and pkt.counters:
            raise Unsafe("the kernel counts a drop once per fragment")
        return pkt
    if pkt.proto != _VRRP or me is None:
        unknown = "Ip:InUnknownProtos" if family == 4 else "Ip6:Ip6InUnknownProtos"
        return KernelDrop(f"no socket for protocol {pkt.proto}", (*pkt.counters, unknown))
    return _daemon(pair, role, pkt)


def judge(pair: Pair, frames: tuple[bytes, ...]) -> dict[str, Fate]:
    """The fate of ``frames`` (one frame, or the fragments of one datagram) at each router
    and at :data:`FABRIC` (the bridge: its checks, and its own interface's stack).

    Raises :class:`Unsafe` for what the oracle will not judge (the generator skips those).
    """
    for frame in frames:
        dropped = _bridge(pair, frame)
        if dropped is not None:
            if len(frames) > 1 and dropped.counters:
                raise Unsafe("the bridge counts a drop once per fragment")
            return dict.fromkeys((*ROLES, FABRIC), dropped)
    return {role: _host(pair, frames, role) for role in (*ROLES, FABRIC)}
