"""Capture events: the copies of each captured frame folded into one transit, and the frames
decoded into VRRP adverts, ARP packets and probes.

Duplicates, and how they are marked rather than avoided
    A tap sees a frame twice over its life in the fabric: a frame an instance sends is *received*
    on its own tap (**inbound**, pcapng ``epb_flags`` direction 1) and, once the bridge has
    forwarded it, *sent* on each receiver's tap (**outbound**, direction 2). Every copy is kept:
    the inbound copy tells when the instance sent it, even when the fabric then drops it (port
    security), and the outbound copies tell who it was delivered to, and when. A frame the SDN
    controller injects has no inbound copy, only outbound ones. In Wireshark, show each frame
    once with the display filter ``frame.packet_flags_direction == 1``, or only what instances
    received with ``== 2``.

    The reader folds the copies back into one :class:`Transit` per frame (:func:`transits`): an
    outbound copy joins the oldest inbound copy with the same bytes seen within ``window``
    (50 ms) that has not yet been delivered on that tap; an outbound copy that joins none is a
    frame **injected** by the fabric (sender ``"fabric"``). Events are built from transits, so
    each has one time (the inbound copy's: when the sender put it on the wire), its sender
    (the instance whose tap it entered on, or ``"fabric"``), and its receivers.

Events
    :func:`events` yields :class:`VrrpAdvert` (v2 and v3, IPv4 and IPv6, decoded here, with the
    checksum form), :class:`ArpEvent` (GARP, request, reply, probe), :class:`ProbePacket`
    (the probes of :mod:`lab.probe`, UDP and ICMP, with seq, direction and responder) and
    :class:`BfdControl` (BFD Control packets, with why a receiver would drop one).

The frames come from :mod:`lab.pcapng`; :mod:`lab.capture` records them and re-exports the
events and their classes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import socket
import struct
import subprocess
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.pcapng import Direction, Frame, read_frames
from lab.prober import decode_payload

# -- transits: the copies of one frame, folded ------------------------------------------------


@dataclass
class Transit:
    """One frame's passage through the fabric: where it entered and where it was delivered."""

    ingress: Frame | None
    """The inbound copy on the sender's tap; None for a frame the fabric injected."""
    egress: list[Frame] = field(default_factory=list)
    """The outbound copies, one per tap the frame was delivered on, in time order."""

    @property
    def first(self) -> Frame:
        """The earliest copy: the ingress one, or for an injected frame the first delivery."""
        return self.ingress if self.ingress is not None else self.egress[0]

    @property
    def time(self) -> float:
        """When the frame entered the fabric (injected: when it was first delivered)."""
        return self.first.time

    @property
    def data(self) -> bytes:
        """The frame's bytes."""
        return self.first.data

    @property
    def injected(self) -> bool:
        """True when no instance sent it: the fabric (SDN controller) did."""
        return self.ingress is None

    @property
    def sender(self) -> str:
        """The instance whose tap the frame entered on, or ``"fabric"``."""
        if self.ingress is None:
            return "fabric"
        return self.ingress.instance or self.ingress.tap

    @property
    def receivers(self) -> tuple[str, ...]:
        """The instances it was delivered to, in delivery order."""
        return tuple(f.instance or f.tap for f in self.egress)

    @property
    def dropped(self) -> bool:
        """True when it entered the fabric and was delivered nowhere."""
        return self.ingress is not None and not self.egress


#: Seconds within which an outbound copy may follow the inbound one it is a copy of.
FOLD_WINDOW = 0.05


def transits(frames: Iterable[Frame], window: float = FOLD_WINDOW) -> list[Transit]:
    """Fold the inbound and outbound copies of each frame into :class:`Transit` objects.

    Frames are taken in time order. An outbound copy joins the oldest transit with the same bytes
    that began at most ``window`` seconds earlier and has not been delivered on that tap yet, so
    identical frames sent in a row (GARP repeats) stay apart. Frames without a direction (classic
    pcap) each become their own transit.
    """
    ordered = sorted(frames, key=lambda fr: (fr.time_ns, 0 if fr.direction == "in" else 1))
    limit = int(window * 1e9)
    pending: dict[bytes, deque[Transit]] = {}
    out: list[Transit] = []
    for fr in ordered:
        if fr.direction is None:
            out.append(Transit(fr))
            continue
        key = hashlib.blake2b(fr.data, digest_size=16).digest()
        queue = pending.setdefault(key, deque())
        while queue and fr.time_ns - queue[0].first.time_ns > limit:
            queue.popleft()
        if fr.direction == "in":
            tr = Transit(fr)
            queue.append(tr)
            out.append(tr)
            continue
        for tr in queue:
            if all(e.tap != fr.tap for e in tr.egress) and (
                tr.ingress is None or tr.ingress.tap != fr.tap
            ):
                tr.egress.append(fr)
                break
        else:
            tr = Transit(None, [fr])
            queue.append(tr)
            out.append(tr)
    return out


# -- decoding ---------------------------------------------------------------------------------


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total >> 16) + (total & 0xFFFF)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class _L3:
    version: int
    src: str
    dst: str
    ttl: int
    proto: int
    payload: bytes
    pseudo: bytes
    """The pseudo-header for upper-layer checksums (without the length and protocol)."""


def _ethertype_payload(frame: bytes) -> tuple[int, bytes] | None:
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    pos = 14
    while ethertype in (0x8100, 0x88A8) and len(frame) >= pos + 4:  # VLAN tags
        ethertype = struct.unpack_from("!H", frame, pos + 2)[0]
        pos += 4
    return ethertype, frame[pos:]


def _l3(ethertype: int, data: bytes) -> _L3 | None:
    if ethertype == 0x0800 and len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        total = struct.unpack_from("!H", data, 2)[0]
        src, dst = data[12:16], data[16:20]
        return _L3(
            4,
            socket.inet_ntop(socket.AF_INET, src),
            socket.inet_ntop(socket.AF_INET, dst),
            data[8],
            data[9],
            data[ihl : max(ihl, min(total, len(data)))],
            src + dst,
        )
    if ethertype == 0x86DD and len(data) >= 40 and data[0] >> 4 == 6:
        plen = struct.unpack_from("!H", data, 4)[0]
        nxt, pos = data[6], 40
        # Skip hop-by-hop, routing and destination options headers (MLD reports carry one).
        while nxt in (0, 43, 60) and len(data) >= pos + 8:
            nxt, pos = data[pos], pos + (data[pos + 1] + 1) * 8
        src, dst = data[8:24], data[24:40]
        return _L3(
            6,
            socket.inet_ntop(socket.AF_INET6, src),
            socket.inet_ntop(socket.AF_INET6, dst),
            data[7],
            nxt,
            data[pos : 40 + plen],
            src + dst,
        )
    return None


@dataclass(frozen=True, kw_only=True)
class CaptureEvent:
    """What every capture event says: when, who sent it, where it went, and its Ethernet header.

    From a :class:`Transit` (the default), ``time`` is when the frame entered the fabric, ``sender``
    the instance it came from (``"fabric"`` when injected) and ``receivers`` the instances it
    was delivered to. From a single copy (``dedupe=False``), ``tap`` and ``direction`` say which.
    """

    time: float
    sender: str
    receivers: tuple[str, ...] = ()
    injected: bool = False
    tap: str | None = None
    direction: Direction | None = None
    src_mac: str
    dst_mac: str


@dataclass(frozen=True, kw_only=True)
class VrrpAdvert(CaptureEvent):
    """A VRRP advertisement (RFC 3768 v2, RFC 5798/9568 v3), IPv4 or IPv6."""

    src_ip: str
    dst_ip: str
    ttl: int
    """IPv4 TTL or IPv6 hop limit."""
    version: int
    type: int
    vrid: int
    priority: int
    count: int
    """The address count field."""
    adver_int: float
    """Seconds: v2's field is whole seconds, v3's is centiseconds."""
    addresses: tuple[str, ...]
    checksum: int
    checksum_form: Literal["pseudo-header", "vrrp-only", "bad"]
    """Which computation the checksum matches: RFC 5798 v3 (with the IP pseudo-header), the
    VRRP message alone (v2, and RFC 9568's IPv4 v3), or neither."""


@dataclass(frozen=True, kw_only=True)
class ArpEvent(CaptureEvent):
    """An ARP packet, classified.

    ``kind``: ``garp`` (sender IP = target IP: a request, or a reply sent to a group MAC),
    ``probe`` (sender IP 0.0.0.0, RFC 5227), ``request`` or ``reply``. A reply with sender IP =
    target IP sent to one host is a ``reply``: it is how a kernel answers another host's
    gratuitous request for an address it owns, not an announcement of its own.
    """

    op: int
    kind: Literal["garp", "probe", "request", "reply"]
    sha: str
    spa: str
    tha: str
    tpa: str


@dataclass(frozen=True, kw_only=True)
class ProbePacket(CaptureEvent):
    """A probe of :mod:`lab.probe`, or its reply.

    ``responder``: for UDP, the name the reply carries; for an ICMP echo reply, the instance it
    was sent from (the transit's sender); None for requests.
    """

    proto: Literal["udp", "icmp"]
    direction_kind: Literal["request", "reply"]
    seq: int
    responder: str | None
    src_ip: str
    dst_ip: str


@dataclass(frozen=True, kw_only=True)
class BfdControl(CaptureEvent):
    """A BFD Control packet (RFC 5880 §4.1) on UDP 3784 (single hop, RFC 5881) or 4784
    (multihop, RFC 5883), IPv4 or IPv6.

    The fields are read as they are on the wire, whatever their values; ``discard`` says why a
    receiver would drop it (:class:`vrrp.bfd.packet.Discard`, the TTL check included), or None.
    Intervals are in seconds.
    """

    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    ttl: int
    """IPv4 TTL or IPv6 hop limit (RFC 5881 §5: 255, GTSM)."""
    version: int
    diag: int
    state: str
    """``AdminDown``, ``Down``, ``Init`` or ``Up``."""
    poll: bool
    final: bool
    demand: bool
    auth: bool
    detect_mult: int
    length: int
    my_discriminator: int
    your_discriminator: int
    desired_min_tx: float
    required_min_rx: float
    required_min_echo_rx: float
    discard: str | None


#: The UDP ports of BFD Control packets: single hop (RFC 5881) and multihop (RFC 5883).
BFD_PORTS = (3784, 4784)
_BFD_STATES = ("AdminDown", "Down", "Init", "Up")

Event = VrrpAdvert | ArpEvent | ProbePacket | BfdControl


def _is_tcp(data: bytes) -> bool:
    """Whether a frame carries a TCP segment (IPv4, or IPv6 without extension headers)."""
    found = _ethertype_payload(data)
    if found is None:
        return False
    ethertype, payload = found
    if ethertype == 0x0800:
        return len(payload) > 9 and payload[9] == 6
    if ethertype == 0x86DD:
        return len(payload) > 6 and payload[6] == 6
    return False


def decode_frame(data: bytes) -> dict[str, Any] | None:
    """Decode the fields of a VRRP advert, ARP packet or probe in an Ethernet frame.

    Returns the event class under ``"class"`` and its frame-level fields, or None for any other
    frame. Pure: no capture metadata.
    """
    found = _ethertype_payload(data)
    if found is None:
        return None
    ethertype, payload = found
    macs = {"dst_mac": _mac(data[0:6]), "src_mac": _mac(data[6:12])}
    if ethertype == 0x0806:
        if len(payload) < 28:
            return None
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", payload)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            return None
        sha, spa = payload[8:14], payload[14:18]
        tha, tpa = payload[18:24], payload[24:28]
        spa_s = str(ipaddress.IPv4Address(spa))
        tpa_s = str(ipaddress.IPv4Address(tpa))
        # Ethernet's I/G bit: a reply announces only when it goes to everyone (arping -A,
        # RFC 5227 §3); a unicast one answers the host that asked.
        announced = op == 1 or bool(data[0] & 0x01)
        if spa == tpa and spa != bytes(4) and announced:
            kind = "garp"
        elif spa == bytes(4):
            kind = "probe"
        else:
            kind = "request" if op == 1 else "reply"
        return {
            "class": ArpEvent,
            **macs,
            "op": op,
            "kind": kind,
            "sha": _mac(sha),
            "spa": spa_s,
            "tha": _mac(tha),
            "tpa": tpa_s,
        }
    l3 = _l3(ethertype, payload)
    if l3 is None:
        return None
    ip = {"src_ip": l3.src, "dst_ip": l3.dst}
    if l3.proto == 112:
        return _decode_vrrp(l3, macs, ip)
    if l3.proto == 17 and len(l3.payload) >= 8:
        bfd = _decode_bfd(l3, macs, ip)
        if bfd is not None:
            return bfd
        probe = decode_payload(l3.payload[8:])
        if probe is None:
            return None
        return {
            "class": ProbePacket,
            **macs,
            **ip,
            "proto": "udp",
            "direction_kind": probe.kind,
            "seq": probe.seq,
            "responder": probe.responder,
        }
    if l3.proto == 1 and len(l3.payload) >= 8 and l3.payload[0] in (0, 8):
        probe = decode_payload(l3.payload[8:])
        if probe is None:
            return None
        return {
            "class": ProbePacket,
            **macs,
            **ip,
            "proto": "icmp",
            "direction_kind": "reply" if l3.payload[0] == 0 else "request",
            "seq": probe.seq,
            "responder": None,
        }
    return None


def _decode_vrrp(l3: _L3, macs: dict[str, str], ip: dict[str, str]) -> dict[str, Any] | None:
    msg = l3.payload
    if len(msg) < 8:
        return None
    version, kind = msg[0] >> 4, msg[0] & 0x0F
    vrid, priority, count = msg[1], msg[2], msg[3]
    checksum = struct.unpack_from("!H", msg, 6)[0]
    alen = 4 if l3.version == 4 else 16
    if version == 3:
        adver_int = (struct.unpack_from("!H", msg, 4)[0] & 0x0FFF) / 100.0
        body = msg[8:]
    else:
        adver_int = float(msg[5])
        body = msg[8:]
    addresses = []
    for i in range(count):
        raw = body[i * alen : (i + 1) * alen]
        if len(raw) < alen:
            break
        addresses.append(str(ipaddress.ip_address(raw)))
    # Checksum over the VRRP message as the IP header bounds it (v2 carries 8 auth bytes more).
    if _checksum(msg) == 0:
        form = "vrrp-only"
    else:
        if l3.version == 4:
            pseudo = l3.pseudo + struct.pack("!BBH", 0, 112, len(msg))
        else:
            pseudo = l3.pseudo + struct.pack("!I3xB", len(msg), 112)
        form = "pseudo-header" if _checksum(pseudo + msg) == 0 else "bad"
    return {
        "class": VrrpAdvert,
        **macs,
        **ip,
        "ttl": l3.ttl,
        "version": version,
        "type": kind,
        "vrid": vrid,
        "priority": priority,
        "count": count,
        "adver_int": adver_int,
        "addresses": tuple(addresses),
        "checksum": checksum,
        "checksum_form": form,
    }


def _decode_bfd(l3: _L3, macs: dict[str, str], ip: dict[str, str]) -> dict[str, Any] | None:
    sport, dport = struct.unpack_from("!HH", l3.payload)
    body = l3.payload[8:]
    if dport not in BFD_PORTS or len(body) < 24:
        return None
    from vrrp.bfd.packet import BfdError, decode

    flags = body[1]
    my_disc, your_disc, tx, rx, echo = struct.unpack_from("!IIIII", body, 4)
    try:
        decode(body, ttl=l3.ttl)
        discard = None
    except BfdError as exc:
        discard = str(exc.reason)
    return {
        "class": BfdControl,
        **macs,
        **ip,
        "src_port": sport,
        "dst_port": dport,
        "ttl": l3.ttl,
        "version": body[0] >> 5,
        "diag": body[0] & 0x1F,
        "state": _BFD_STATES[flags >> 6],
        "poll": bool(flags & 0x20),
        "final": bool(flags & 0x10),
        "demand": bool(flags & 0x02),
        "auth": bool(flags & 0x04),
        "detect_mult": body[2],
        "length": body[3],
        "my_discriminator": my_disc,
        "your_discriminator": your_disc,
        "desired_min_tx": tx / 1e6,
        "required_min_rx": rx / 1e6,
        "required_min_echo_rx": echo / 1e6,
        "discard": discard,
    }


def _is_echo_reply(fields: dict[str, Any]) -> bool:
    return (
        fields["class"] is ProbePacket
        and fields["proto"] == "icmp"
        and (fields["direction_kind"] == "reply")
    )


def events(
    source: str | os.PathLike[str] | Iterable[Frame],
    *,
    dedupe: bool = True,
    window: float = FOLD_WINDOW,
) -> list[Event]:
    """The VRRP adverts, ARP packets, probes and BFD Control packets of a capture, in time
    order.

    ``source`` is a capture file or frames. With ``dedupe`` (the default) there is one event per
    frame (per :class:`Transit`); without, one per captured copy, with its ``tap`` and
    ``direction``.
    """
    frames = read_frames(source) if isinstance(source, str | os.PathLike) else source
    # TCP (a service's HTTP, 1,000 connections a second) decodes into no event: cut it before
    # the folding, which hashes every frame.
    frames = [f for f in frames if not _is_tcp(f.data)]
    out: list[Event] = []
    if dedupe:
        for tr in transits(frames, window):
            fields = decode_frame(tr.data)
            if fields is None:
                continue
            if _is_echo_reply(fields):
                fields["responder"] = tr.sender
            cls = fields.pop("class")
            first = tr.first
            out.append(
                cls(
                    time=tr.time,
                    sender=tr.sender,
                    receivers=tr.receivers,
                    injected=tr.injected,
                    tap=first.tap,
                    direction=first.direction,
                    **fields,
                )
            )
    else:
        for fr in sorted(frames, key=lambda f: f.time_ns):
            fields = decode_frame(fr.data)
            if fields is None:
                continue
            mine = fr.instance or fr.tap
            if _is_echo_reply(fields):
                fields["responder"] = mine if fr.direction == "in" else None
            cls = fields.pop("class")
            out.append(
                cls(
                    time=fr.time,
                    sender=mine if fr.direction == "in" else "?",
                    receivers=(mine,) if fr.direction == "out" else (),
                    tap=fr.tap,
                    direction=fr.direction,
                    **fields,
                )
            )
    return out


def reply_gaps(
    evs: Iterable[Event], min_gap: float, *, start: float | None = None, end: float | None = None
) -> list[tuple[ProbePacket, ProbePacket]]:
    """Gaps in the probe replies on the wire: consecutive replies (by time, from any responder)
    more than ``min_gap`` seconds apart, as (last reply before, first reply after).

    This is the capture's view of an outage, to hold against the prober's (issue 4, point 5).
    Only replies in ``[start, end)`` are considered.
    """
    replies = sorted(
        (
            e
            for e in evs
            if isinstance(e, ProbePacket)
            and e.direction_kind == "reply"
            and not e.injected
            and (start is None or e.time >= start)
            and (end is None or e.time < end)
        ),
        key=lambda e: e.time,
    )
    return [(a, b) for a, b in itertools.pairwise(replies) if b.time - a.time > min_gap]


# -- cross-checks and printing ----------------------------------------------------------------


def tshark(
    path: str | os.PathLike[str], *fields: str, display: str | None = None, timeout: float = 120
) -> list[list[str]]:
    """Run ``tshark -r PATH -T fields -e FIELD...`` (with ``-Y DISPLAY``): one row per frame.

    For cross-checks of the reader against Wireshark's dissectors, e.g. the adverts::

        tshark(path, "frame.time_epoch", "eth.src", "vrrp.prio",
               display="vrrp && !icmp && frame.packet_flags_direction == 1")
    """
    argv = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    if display:
        argv += ["-Y", display]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()]


def describe(ev: Event) -> str:
    """One line for an event: time, sender → receivers, and the decoded fields."""
    where = f"{ev.sender} -> {','.join(ev.receivers) or '-'}"
    if ev.injected:
        where += " (injected)"
    if isinstance(ev, VrrpAdvert):
        what = (
            f"VRRPv{ev.version} vrid={ev.vrid} prio={ev.priority} int={ev.adver_int:g}s "
            f"{ev.src_ip}->{ev.dst_ip} ttl={ev.ttl} src_mac={ev.src_mac} "
            f"addrs={','.join(ev.addresses)} csum={ev.checksum_form}"
        )
    elif isinstance(ev, ArpEvent):
        what = f"ARP {ev.kind} sha={ev.sha} spa={ev.spa} tha={ev.tha} tpa={ev.tpa}"
    elif isinstance(ev, BfdControl):
        flags = "".join(f for f, on in (("P", ev.poll), ("F", ev.final)) if on)
        what = (
            f"BFD {ev.state} diag={ev.diag} {ev.src_ip}:{ev.src_port}->{ev.dst_ip}:{ev.dst_port} "
            f"ttl={ev.ttl} mult={ev.detect_mult} my={ev.my_discriminator:#010x} "
            f"your={ev.your_discriminator:#010x} tx={ev.desired_min_tx * 1000:g}ms "
            f"rx={ev.required_min_rx * 1000:g}ms"
            + (f" {flags}" if flags else "")
            + (f" discard={ev.discard}" if ev.discard else "")
        )
    else:
        what = f"probe {ev.proto} {ev.direction_kind} seq={ev.seq} {ev.src_ip}->{ev.dst_ip}" + (
            f" responder={ev.responder}" if ev.responder else ""
        )
    return f"{ev.time:.6f} {where}: {what}"
