"""A seeded wire fuzzer for a VRRPv3 master/backup pair (issue 17).

:func:`generate` yields :class:`Fuzzed` items: whole Ethernet frames (one, or two IP fragments)
carrying a VRRPv3 advert with one thing changed, in IPv4 or IPv6, multicast or unicast, aimed
at the group, at one router (from the observer, or spoofing its unicast peer), at the all-nodes
group, at a group nobody joined or at an address nobody holds. Each item carries the fate the
oracle (:func:`lab.wire_fuzz_oracle.judge`) reads from its bytes at the master and the backup;
:func:`expect` adds those up into what each router's kernel and daemon should count.

What is mutated: the VRRP message (TTL / hop limit, version, type, a truncated or padded
message, the address count, the checksum, the RFC 9568 checksum form, the VRID, the interval,
the reserved bits, the priority); the IP header (version, Total / Payload Length, trailing
bytes, TOS/ID/DF); IPv4's IHL, header checksum, options, protocol and fragments; IPv6's
multicast source and protocol, and its extension headers (hop-by-hop and destination options
with padding, Router Alert and RFC 4727's experimental option under each of the four actions,
routing headers of type 0 and 253 with and without Segments Left, atomic and real fragments).

The same seed gives the same frames: one ``random.Random`` seeded with the seed, family and
mode, and draws the oracle refuses (:class:`lab.wire_fuzz_oracle.Unsafe`) drawn again from it.
:mod:`vrrp.packet` only *builds* the base advert (``encode``). Pure: no I/O, no clock.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from lab.wire_fuzz_oracle import (
    ALL_NODES,
    FABRIC,
    GROUP,
    OTHER_GROUP,
    ROLES,
    Fate,
    KernelDrop,
    Pair,
    Role,
    Unsafe,
    checksum,
    judge,
    mac_bytes,
    pseudo_header,
)
from vrrp.packet import Advert, encode

__all__ = ["FABRIC", "Expected", "Fuzzed", "expect", "generate"]

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_VRRP, _HOP, _ROUTING, _FRAGMENT, _DSTOPTS = 112, 0, 43, 44, 60
#: RFC 4727's experimental option type with each of RFC 8200 §4.2's actions (top two bits).
_EXP_OPTIONS = (0x1E, 0x5E, 0x9E, 0xDE)


@dataclass(frozen=True)
class Fuzzed:
    """One fuzzed advert: its frames, the mutation's name and each router's fate."""

    index: int
    kind: str
    frames: tuple[bytes, ...]
    fates: dict[str, Fate]


# --- building frames ---------------------------------------------------------------------


@dataclass
class _Draft:
    """A frame to build: every knob a mutation may turn, with a valid advert's defaults."""

    src: str
    dst: str
    dst_mac: str
    src_mac: str
    vrrp: bytes
    ttl: int = 255
    proto: int = _VRRP
    ip_version: int | None = None
    ihl: int | None = None
    bad_ip_checksum: bool = False
    total_delta: int = 0
    options: bytes = b""
    tos: int = 0
    ident: int = 0
    flags: int = 0
    ext: list[tuple[int, bytes]] = field(default_factory=list)
    fragment: str | None = None
    trailer: bytes = b""


def _group_mac(dst: IPv4Address | IPv6Address) -> str:
    if dst.version == 4:
        low = int(dst) & 0x7FFFFF
        return "01:00:5e:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (16, 8, 0))
    return "33:33:" + ":".join(f"{b:02x}" for b in dst.packed[-4:])


def _ipv4_header(d: _Draft, payload_len: int, frag: int = 0) -> bytes:
    ihl = 5 + len(d.options) // 4
    total = ihl * 4 + payload_len + d.total_delta
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            ((4 if d.ip_version is None else d.ip_version) << 4) | (d.ihl or ihl),
            d.tos,
            max(0, min(total, 0xFFFF)),
            d.ident,
            (d.flags << 13) | frag,
            d.ttl,
            d.proto,
            0,
            IPv4Address(d.src).packed,
            IPv4Address(d.dst).packed,
        )
        + d.options
    )
    value = checksum(bytes(header)) ^ (0x5A5A if d.bad_ip_checksum else 0)
    struct.pack_into("!H", header, 10, value)
    return bytes(header)


def _render(d: _Draft) -> tuple[bytes, ...]:
    """The frames of a draft (two when it asks for fragments)."""
    v6 = ip_address(d.src).version == 6
    eth = (
        mac_bytes(d.dst_mac)
        + mac_bytes(d.src_mac)
        + struct.pack("!H", _ETH_IPV6 if v6 else _ETH_IPV4)
    )
    if not v6:
        if d.fragment is None:
            return (eth + _ipv4_header(d, len(d.vrrp)) + d.vrrp + d.trailer,)
        head, tail = d.vrrp[:8], d.vrrp[8:]
        frags = [
            eth + _ipv4_header(d, len(head), frag=0x2000) + head,
            eth + _ipv4_header(d, len(tail), frag=1) + tail,
        ]
        return tuple(reversed(frags)) if d.fragment == "reversed" else tuple(frags)
    chain = [*d.ext]
    if d.fragment is not None:
        chain.append((_FRAGMENT, b""))
    codes = [c for c, _ in chain] + [d.proto]

    def packet(frag_field: int | None, vrrp: bytes) -> bytes:
        exts = b""
        for (code, body), nxt in zip(chain, codes[1:], strict=True):
            if code == _FRAGMENT:
                exts += struct.pack("!BBHI", nxt, 0, frag_field or 0, d.ident or 0x5EED)
            else:
                exts += bytes([nxt]) + body
        plen = len(exts) + len(vrrp) + d.total_delta
        ver = 6 if d.ip_version is None else d.ip_version
        first = struct.pack("!IHBB", (ver << 28) | (d.tos << 20), max(0, plen), codes[0], d.ttl)
        return first + IPv6Address(d.src).packed + IPv6Address(d.dst).packed + exts + vrrp

    if d.fragment in (None, "atomic"):
        return (eth + packet(0, d.vrrp) + d.trailer,)
    frags = [eth + packet(1, d.vrrp[:8]), eth + packet(1 << 3, d.vrrp[8:])]
    return tuple(reversed(frags)) if d.fragment == "reversed" else tuple(frags)


def _options(items: list[bytes]) -> bytes:
    """A hop-by-hop / destination options body (after its next-header octet): ``items``
    padded with Pad1/PadN so the header is a whole number of 8 octets."""
    raw = b"".join(items)
    total = -(-(2 + len(raw)) // 8) * 8
    pad = total - 2 - len(raw)
    padding = b"\0" if pad == 1 else (bytes([1, pad - 2]) + bytes(pad - 2) if pad else b"")
    return bytes([total // 8 - 1]) + raw + padding


# --- mutations ---------------------------------------------------------------------------

_Mutation = Callable[[random.Random, _Draft, Pair], None]


def _reseal(d: _Draft, payload: bytes) -> bytes:
    """``payload`` with its checksum made right again (RFC 5798 form), so that only the
    intended defect remains; a message shorter than the header is left as it is."""
    if len(payload) < 8:
        return payload
    zeroed = payload[:6] + b"\0\0" + payload[8:]
    return (
        zeroed[:6]
        + struct.pack("!H", checksum(pseudo_header(d.src, d.dst, len(zeroed)) + zeroed))
        + zeroed[8:]
    )


def _field(offset: int, values: Callable[[random.Random], int]) -> _Mutation:
    def mutate(rng: random.Random, d: _Draft, pair: Pair) -> None:
        data = bytearray(d.vrrp)
        data[offset] = values(rng)
        d.vrrp = _reseal(d, bytes(data))

    return mutate


def _hop_limit(rng: random.Random, d: _Draft, pair: Pair) -> None:
    d.ttl = rng.choice([0, 1, 64, 128, 254])


def _version(rng: random.Random, d: _Draft, pair: Pair) -> None:
    data = bytearray(d.vrrp)
    data[0] = (rng.choice([0, 1, 2, 4, 5, 7, 15]) << 4) | 1
    d.vrrp = _reseal(d, bytes(data))


def _kind(rng: random.Random, d: _Draft, pair: Pair) -> None:
    data = bytearray(d.vrrp)
    data[0] = 0x30 | rng.choice([0, 2, 3, 7, 15])
    d.vrrp = _reseal(d, bytes(data))


def _truncate(rng: random.Random, d: _Draft, pair: Pair) -> None:
    d.vrrp = _reseal(d, d.vrrp[: rng.randrange(0, len(d.vrrp))])


def _pad(rng: random.Random, d: _Draft, pair: Pair) -> None:
    d.vrrp = _reseal(d, d.vrrp + bytes(rng.randrange(1, 20)))


def _checksum(rng: random.Random, d: _Draft, pair: Pair) -> None:
    data = bytearray(d.vrrp)
    data[6] ^= rng.randrange(1, 256)
    d.vrrp = bytes(data)


def _rfc9568(rng: random.Random, d: _Draft, pair: Pair) -> None:
    if pair.family == 4:  # the message-only sum (RFC 9568 §5.2.8)
        zeroed = d.vrrp[:6] + b"\0\0" + d.vrrp[8:]
        d.vrrp = zeroed[:6] + struct.pack("!H", checksum(zeroed)) + zeroed[8:]


def _interval(rng: random.Random, d: _Draft, pair: Pair) -> None:
    data = bytearray(d.vrrp)
    value = rng.choice([0, 1, 50, 99, 101, 300, 0xFFF])
    struct.pack_into("!H", data, 4, (data[4] & 0xF0) << 8 | value)
    if value:  # a backup hearing it as its master would adopt it: lose to both
        data[2] = rng.randrange(1, pair.backup.priority)
    d.vrrp = _reseal(d, bytes(data))


def _reserved(rng: random.Random, d: _Draft, pair: Pair) -> None:
    data = bytearray(d.vrrp)
    data[4] |= rng.randrange(1, 16) << 4
    d.vrrp = _reseal(d, bytes(data))


def _ip_header(rng: random.Random, d: _Draft, pair: Pair) -> None:
    what = rng.choice(["version", "short", "long", "below", "noise", "trailer"])
    if what == "version":
        d.ip_version = rng.choice([0, 5, 6, 4] if pair.family == 4 else [0, 4, 5, 7])
        if d.ip_version == (4 if pair.family == 4 else 6):
            d.ip_version = 15
    elif what == "short":
        d.total_delta = -rng.randrange(1, len(d.vrrp) + 1)
    elif what == "long":
        d.total_delta = rng.randrange(1, 200)
    elif what == "below":
        d.total_delta = -(len(d.vrrp) + rng.randrange(1, 20))
    elif what == "noise":
        d.tos, d.ident, d.flags = rng.randrange(256), rng.randrange(1, 0xFFFF), rng.choice([0, 2])
    else:
        d.trailer = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))


def _ipv4_only(rng: random.Random, d: _Draft, pair: Pair) -> None:
    what = rng.choice(["ihl", "checksum", "options", "bad-option", "proto", "fragments"])
    if what == "ihl":
        d.ihl = rng.randrange(0, 5)
    elif what == "checksum":
        d.bad_ip_checksum = True
    elif what == "options":
        d.options = rng.choice([b"\x94\x04\0\0", b"\x01\x01\x01\x00", b"\x01\x94\x04\0\0\0\0\0"])
    elif what == "bad-option":
        d.options = rng.choice([b"\x1e\x01\0\0", b"\x1e\x09\0\0", b"\x01\x01\x1e\x00"])
    elif what == "proto":
        d.proto = rng.choice([253, 254, 113])
    else:
        d.fragment, d.ident = rng.choice(["inorder", "reversed"]), rng.randrange(1, 0xFFFF)


def _good_opts(rng: random.Random, hop: bool) -> bytes:
    exp = b"\x1e\x02\xaa\xbb"  # RFC 4727's experimental option, action 00: skipped
    router_alert = b"\x05\x02\0\0"  # RFC 2711, hop-by-hop only
    return _options(rng.choice([[], [exp], [router_alert if hop else exp], [b"\0"], [exp, exp]]))


def _bad_opts(rng: random.Random) -> bytes:
    what = rng.randrange(4)
    if what == 0:
        return _options([bytes([rng.choice(_EXP_OPTIONS[1:]), 2, 0, 0])])
    if what == 1:
        return bytes([0, 1, 4]) + b"\x01\0\0\0"  # PadN of 4 with a non-zero octet
    if what == 2:
        return bytes([1]) + b"\x01\x0c" + bytes(12)  # 14 octets of padding
    return bytes([10]) + b"\x01\x04" + bytes(4)  # says 88 octets, carries 8


def _extensions(rng: random.Random, d: _Draft, pair: Pair) -> None:
    chain: list[tuple[int, bytes]] = []
    if rng.random() < 0.5:
        chain.append((_HOP, _good_opts(rng, True)))
    if rng.random() < 0.5:
        chain.append((_DSTOPTS, _good_opts(rng, False)))
    if rng.random() < 0.3:
        left = rng.choice([0, 0, 1])
        address = IPv6Address(pair.spare).packed
        chain.append((_ROUTING, bytes([2, rng.choice([0, 253]), left, 0, 0, 0, 0]) + address))
    if rng.random() < 0.3:  # one header whose options the receiver must refuse
        has_hop = bool(chain) and chain[0][0] == _HOP
        if rng.random() < 0.5:  # hop-by-hop comes first or not at all (RFC 8200 §4.1)
            chain[: 1 if has_hop else 0] = [(_HOP, _bad_opts(rng))]
        else:
            at = rng.randrange(1 if has_hop else 0, len(chain) + 1)
            chain.insert(at, (_DSTOPTS, _bad_opts(rng)))
    d.ext = chain
    if rng.random() < 0.4:
        d.fragment = rng.choice(["atomic", "inorder", "reversed"])
        d.ident = rng.randrange(1, 0xFFFFFFFF)


def _ipv6_only(rng: random.Random, d: _Draft, pair: Pair) -> None:
    if rng.random() < 0.2:
        d.src = "ff02::1"
    else:
        d.proto = rng.choice([253, 254, 113])


def _valid(rng: random.Random, d: _Draft, pair: Pair) -> None:
    """Nothing broken: the base advert itself."""


_MUTATIONS: dict[str, tuple[float, _Mutation]] = {
    "valid": (6, _valid),
    "hop-limit": (5, _hop_limit),
    "version": (4, _version),
    "type": (4, _kind),
    "truncate": (5, _truncate),
    "pad": (4, _pad),
    "count": (4, _field(3, lambda r: r.choice([0, 2, 3, 17, 255]))),
    "checksum": (5, _checksum),
    "rfc9568-checksum": (2, _rfc9568),
    "vrid": (4, _field(1, lambda r: r.choice([0, 2, 7, 200, 255]))),
    "interval": (4, _interval),
    "reserved": (2, _reserved),
    "priority": (3, _field(2, lambda r: r.randrange(1, 200))),
    "ip-header": (8, _ip_header),
    "ipv4-header": (8, _ipv4_only),
    "ipv6-extensions": (10, _extensions),
    "ipv6-header": (3, _ipv6_only),
}


def _base(rng: random.Random, pair: Pair) -> tuple[str, _Draft]:
    """A valid advert from a source and to a destination the mode allows, and its name."""
    obs = pair.observer
    # Mostly where the mode's instance listens, some where it must not or nobody does.
    weights = [10, 3, 2, 1, 1] if pair.mode == "multicast" else [2, 10, 2, 1, 1]
    where = rng.choices(["group", "router", "all-nodes", "spare", "other-group"], weights)[0]
    role: Role = rng.choice(ROLES)
    me = pair.peer(role)
    src = obs.address
    if where == "router":
        dst, dst_mac = me.unicast, me.mac
        if pair.mode == "unicast" and rng.random() < 0.8:
            src = pair.other(role).unicast  # spoofing its peer, so the instance takes it
    elif where == "spare":
        dst, dst_mac = pair.spare, me.mac
    else:
        table = {"group": GROUP, "all-nodes": ALL_NODES, "other-group": OTHER_GROUP}
        dst = str(table[where][pair.family])
        dst_mac = _group_mac(ip_address(dst))
    # Below the master's: the master discards it, a backup keeps its master (§6.4).
    prio = rng.randrange(1, pair.master.priority)
    advert = Advert.v3(pair.vrid, prio, pair.vips, interval_cs=pair.interval_cs)
    vrrp = encode(advert, src=src, dst=dst)
    name = where if where != "router" else f"{'peer' if src != obs.address else 'stranger'}"
    return name, _Draft(src=src, dst=dst, dst_mac=dst_mac, src_mac=obs.mac, vrrp=vrrp)


def generate(pair: Pair, seed: int, count: int) -> Iterator[Fuzzed]:
    """``count`` fuzzed adverts for ``pair``, the same ones for the same seed.

    Draws the oracle refuses (:class:`Unsafe`) are drawn again from the same stream, so the
    sequence stays a function of the seed alone.
    """
    rng = random.Random(f"wire-fuzz/{seed}/ipv{pair.family}/{pair.mode}")
    other = "ipv6-" if pair.family == 4 else "ipv4-"
    names = [n for n in _MUTATIONS if not n.startswith(other)]
    weights = [_MUTATIONS[n][0] for n in names]
    made = 0
    while made < count:
        target, draft = _base(rng, pair)
        kind = rng.choices(names, weights)[0]
        _MUTATIONS[kind][1](rng, draft, pair)
        frames = _render(draft)
        try:
            fates = judge(pair, frames)
        except Unsafe:
            continue
        yield Fuzzed(made, f"{kind} to {target}", frames, fates)
        made += 1


# --- what the counters should show -------------------------------------------------------


@dataclass
class Expected:
    """What one router's kernel and daemon should count for a run of fuzzed adverts."""

    sent: int = 0
    kernel: Counter[str] = field(default_factory=Counter)
    """Kernel counter deltas (``Ip:InHdrErrors``...)."""
    kernel_drops: Counter[str] = field(default_factory=Counter)
    """Kernel drops by rule, counted or not."""
    socket: Counter[str] = field(default_factory=Counter)
    """The daemon's socket counters: ``received``, ``accepted`` and each reason."""
    instance: Counter[str] = field(default_factory=Counter)
    """The instance's receive counters: ``received``, ``accepted`` and each reason."""
    discards: Counter[str] = field(default_factory=Counter)
    """The instance's discard keys (``losing-advert``, ``unknown-peer``...)."""
    valid: int = 0
    """Valid adverts the instance took (RFC 5798 §7.1 passed)."""

    def add(self, fate: Fate, *, fabric: bool = False) -> None:
        """Account for one fuzzed advert's fate here (``fabric``: this is the bridge's, which
        counts its own drops; a router's kernel never sees those)."""
        self.sent += 1
        if fabric or not (isinstance(fate, KernelDrop) and fate.at == "bridge"):
            self.kernel.update(fate.counters)
        if isinstance(fate, KernelDrop):
            self.kernel_drops[fate.rule] += 1
            return
        self.socket["received"] += 1
        self.socket[fate.reason or "accepted"] += 1
        if fate.instance:
            self.instance["received"] += 1
            self.instance[fate.reason or "accepted"] += 1
        if fate.discard is not None:
            self.discards[fate.discard] += 1
        self.valid += fate.valid


def expect(items: list[Fuzzed]) -> dict[str, Expected]:
    """Each router's expected counts for ``items``, and the fabric's (:data:`FABRIC`)."""
    out = {key: Expected() for key in (*ROLES, FABRIC)}
    for item in items:
        for key, fate in item.fates.items():
            out[key].add(fate, fabric=key == FABRIC)
    return out
