"""Capture: one pcapng per lab run covering every fabric port, and a reader that extracts events.

Recording
    A capture program (``python -m lab.capture record``) runs in the **fabric** namespace with one
    ``AF_PACKET``/``ETH_P_ALL`` socket. It keeps the frames of the ``tap`` ports and writes them
    to a pcapng file that the runner opened (``--fd``), so the file can live anywhere on the host
    (``--pcap DIR``) even though the fabric's ``/tmp`` is private. Timestamps are the kernel's
    (``SO_TIMESTAMPNS``, CLOCK_REALTIME): frames sit on the lab clock, to the nanosecond
    (``if_tsresol`` = 9).

    The file has one Interface Description Block per tap. ``if_name`` is the tap and
    ``if_description`` reads ``instance=ha_first ifname=ens3 mac=fa:16:3e:8d:dc:bb port=<id>``,
    so Wireshark's *Capture File Properties* and tshark's ``frame.interface_name`` /
    ``frame.interface_description`` name the instance behind every frame.

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
    checksum form), :class:`ArpEvent` (GARP, request, reply, probe) and :class:`ProbePacket`
    (the probes of :mod:`lab.probe`, UDP and ICMP, with seq, direction and responder).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import ipaddress
import itertools
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal

if TYPE_CHECKING:
    from lab.lab import Lab

# -- pcapng -----------------------------------------------------------------------------------

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_PB = 0x00000002
_SPB = 0x00000003
_ISB = 0x00000005
_EPB = 0x00000006
_BOM = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1
_OPT_END = 0
_OPT_COMMENT = 1
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_EPB_FLAGS = 2
_SHB_USERAPPL = 4

#: pcapng epb_flags bits 0-1: the direction of a frame relative to the interface.
DIRECTION_INBOUND = 1
DIRECTION_OUTBOUND = 2

# AF_PACKET sll_pkttype values and the pcapng reception types (epb_flags bits 2-4) they become.
_PACKET_HOST = 0
_PACKET_BROADCAST = 1
_PACKET_MULTICAST = 2
_PACKET_OTHERHOST = 3
_PACKET_OUTGOING = 4
_RECEPTION = {_PACKET_HOST: 1, _PACKET_MULTICAST: 2, _PACKET_BROADCAST: 3, _PACKET_OTHERHOST: 4}

_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_ETH_P_ALL = 0x0003
_TIMESPEC = struct.Struct("@qq")

Direction = Literal["in", "out"]


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + bytes(pad)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(comment: str | None = None) -> bytes:
    """A pcapng Section Header Block (little-endian, version 1.0, unknown section length)."""
    opts = _option(_SHB_USERAPPL, b"vrrp-lab capture")
    if comment:
        opts += _option(_OPT_COMMENT, comment.encode())
    opts += _option(_OPT_END, b"")
    return _block(_SHB, struct.pack("<IHHq", _BOM, 1, 0, -1) + opts)


def interface_block(name: str, description: str | None = None, snaplen: int = 65535) -> bytes:
    """An Interface Description Block for an Ethernet interface with nanosecond timestamps."""
    opts = _option(_IF_NAME, name.encode())
    if description:
        opts += _option(_IF_DESCRIPTION, description.encode())
    opts += _option(_IF_TSRESOL, bytes([9])) + _option(_OPT_END, b"")
    return _block(_IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + opts)


def packet_block(interface: int, time_ns: int, data: bytes, flags: int | None = None) -> bytes:
    """An Enhanced Packet Block: ``time_ns`` in the interface's nanosecond resolution."""
    head = struct.pack(
        "<IIIII", interface, time_ns >> 32, time_ns & 0xFFFFFFFF, len(data), len(data)
    )
    body = head + data + bytes((-len(data)) % 4)
    if flags is not None:
        body += _option(_EPB_FLAGS, struct.pack("<I", flags)) + _option(_OPT_END, b"")
    return _block(_EPB, body)


def epb_flags(pkttype: int) -> int:
    """pcapng ``epb_flags`` for an AF_PACKET ``sll_pkttype``: direction and reception type."""
    if pkttype == _PACKET_OUTGOING:
        return DIRECTION_OUTBOUND
    return DIRECTION_INBOUND | (_RECEPTION.get(pkttype, 0) << 2)


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    """A captured interface: a tap, and the instance behind it (from the IDB description)."""

    name: str
    description: str | None = None
    linktype: int = LINKTYPE_ETHERNET
    tsresol: int = 1_000_000
    """Timestamp units per second."""

    @functools.cached_property
    def instance(self) -> str | None:
        """The instance this tap belongs to, from ``instance=`` in the description."""
        return self.attributes.get("instance")

    @functools.cached_property
    def attributes(self) -> dict[str, str]:
        """The ``key=value`` pairs of the description."""
        pairs = (item.partition("=") for item in (self.description or "").split())
        return {k: v for k, sep, v in pairs if sep}


@dataclass(frozen=True)
class Frame:
    """One captured copy of a frame.

    ``direction`` is relative to the tap: ``"in"`` means received on the tap, i.e. the instance
    sent the frame into the fabric; ``"out"`` means the fabric delivered it to the instance.
    None when the file does not say (a classic pcap).
    """

    time_ns: int
    interface: Interface
    direction: Direction | None
    data: bytes
    index: int = 0
    """The frame's number in the file, from 1 (tshark's ``frame.number``)."""

    @property
    def time(self) -> float:
        """Seconds on the lab clock."""
        return self.time_ns / 1e9

    @property
    def tap(self) -> str:
        """The tap (interface) the frame was captured on."""
        return self.interface.name

    @property
    def instance(self) -> str | None:
        """The instance behind that tap."""
        return self.interface.instance


def _options(buf: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(buf):
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == _OPT_END:
            return
        yield code, buf[pos + 4 : pos + 4 + length]
        pos += 4 + length + ((-length) % 4)


def _tsresol(raw: bytes) -> int:
    value = raw[0]
    return 2 ** (value & 0x7F) if value & 0x80 else 10 ** (value & 0x7F)


def read_frames(path: str | os.PathLike[str]) -> Iterator[Frame]:
    """Every frame of a pcapng (or classic pcap) file, in file order.

    A truncated last block, as in a capture that is still being written, ends the iteration
    quietly, so a running capture can be read.
    """
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head in _PCAP_MAGICS:
            yield from _read_pcap(f)
        else:
            yield from PcapngReader(path).parse(f)


_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


class PcapngReader:
    """Reads a growing pcapng file incrementally: each :meth:`read` returns the frames of the
    whole blocks written since the previous call, so polling a live capture costs only what is
    new."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0
        """Where the first block not read yet starts."""
        self.endian = "<"
        self.interfaces: list[Interface] = []
        self.count = 0
        """Frames read so far."""

    def read(self) -> list[Frame]:
        """The frames of the complete blocks appended since the last call."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return list(self.parse(f))

    def parse(self, f: BinaryIO) -> Iterator[Frame]:
        """Frames from ``f``'s position on; :attr:`offset` follows each complete block."""
        while True:
            head = f.read(8)
            if len(head) < 8:
                return
            kind = struct.unpack("<I", head[:4])[0]
            if kind == _SHB:
                bom = f.read(4)
                if len(bom) < 4:
                    return
                endian = "<" if struct.unpack("<I", bom)[0] == _BOM else ">"
                length = struct.unpack(endian + "I", head[4:])[0]
                body = bom + f.read(max(0, length - 16))
            else:
                endian = self.endian
                kind, length = struct.unpack(endian + "II", head)
                body = f.read(max(0, length - 12))
            trailer = f.read(4)
            if len(body) < length - 12 or len(trailer) < 4 or length < 12:
                return  # truncated: the writer is still at work (or died); retry from offset
            self.offset += length
            if kind == _SHB:
                self.endian, self.interfaces = endian, []
            elif kind == _IDB:
                self.interfaces.append(self._interface(body))
            elif kind in (_EPB, _PB, _SPB):
                self.count += 1
                yield self._frame(kind, body)

    def _interface(self, body: bytes) -> Interface:
        linktype, _res, _snap = struct.unpack_from(self.endian + "HHI", body)
        opts = dict(_options(body[8:], self.endian))
        return Interface(
            name=opts.get(_IF_NAME, b"if%d" % len(self.interfaces)).decode(errors="replace"),
            description=(
                opts[_IF_DESCRIPTION].decode(errors="replace") if _IF_DESCRIPTION in opts else None
            ),
            linktype=linktype,
            tsresol=_tsresol(opts[_IF_TSRESOL]) if _IF_TSRESOL in opts else 1_000_000,
        )

    def _frame(self, kind: int, body: bytes) -> Frame:
        endian = self.endian
        if kind == _SPB:
            (orig,) = struct.unpack_from(endian + "I", body)
            return Frame(0, self.interfaces[0], None, body[4 : 4 + orig], self.count)
        if kind == _EPB:
            ifid, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body)
        else:
            ifid, _drops, hi, lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", body)
        data = body[20 : 20 + caplen]
        opts_at = 20 + caplen + ((-caplen) % 4)
        direction: Direction | None = None
        for code, value in _options(body[opts_at:], endian):
            if code == _EPB_FLAGS and len(value) >= 4:
                bits = struct.unpack(endian + "I", value[:4])[0] & 3
                direction = {1: "in", 2: "out"}.get(bits)  # type: ignore[assignment]
        iface = self.interfaces[ifid]
        ticks = (hi << 32) | lo
        return Frame(ticks * 1_000_000_000 // iface.tsresol, iface, direction, data, self.count)


def _read_pcap(f: BinaryIO) -> Iterator[Frame]:
    head = f.read(24)
    magic = head[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", head, 20)[0]
    iface = Interface("pcap", None, linktype, 1_000_000_000 if nano else 1_000_000)
    index = 0
    while True:
        rec = f.read(16)
        if len(rec) < 16:
            return
        sec, frac, caplen, _orig = struct.unpack(endian + "IIII", rec)
        data = f.read(caplen)
        if len(data) < caplen:
            return
        index += 1
        ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        yield Frame(ns, iface, None, data, index)


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
_WINDOW = 0.05


def transits(frames: Iterable[Frame], window: float = _WINDOW) -> list[Transit]:
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

    ``kind``: ``garp`` (sender IP = target IP, request or reply), ``probe`` (sender IP 0.0.0.0,
    RFC 5227), ``request`` or ``reply``.
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


Event = VrrpAdvert | ArpEvent | ProbePacket


def decode_frame(data: bytes) -> dict[str, Any] | None:
    """Decode the fields of a VRRP advert, ARP packet or probe in an Ethernet frame.

    Returns the event class under ``"class"`` and its frame-level fields, or None for any other
    frame. Pure: no capture metadata.
    """
    from lab.prober import decode_payload  # stdlib-only module: cheap in the capture program

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
        if spa == tpa and spa != bytes(4):
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
    window: float = _WINDOW,
) -> list[Event]:
    """The VRRP adverts, ARP packets and probes of a capture, in time order.

    ``source`` is a capture file or frames. With ``dedupe`` (the default) there is one event per
    frame (per :class:`Transit`); without, one per captured copy, with its ``tap`` and
    ``direction``.
    """
    frames = read_frames(source) if isinstance(source, str | os.PathLike) else source
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


# -- the capture program (runs in the fabric namespace) ----------------------------------------


def run_recorder(
    out: BinaryIO,
    interfaces: Sequence[tuple[str, str]],
    *,
    flush_every: float = 0.05,
    status: IO[str] = sys.stdout,
) -> dict[str, float]:
    """Record every frame of ``interfaces`` (name, description) to ``out`` until stdin's EOF.

    The pcapng is flushed every ``flush_every`` seconds, so it can be read while it grows.
    Returns (and prints as its ``done`` line) frames written, kernel drops and CPU time.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    try:
        # Root may exceed rmem_max: a burst (a GARP storm, a 1,000/s prober) must not overflow.
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 32 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    ids = {name: i for i, (name, _desc) in enumerate(interfaces)}
    out.write(
        section_header(
            "vrrp-lab: every fabric tap. Each forwarded frame appears inbound on the sender's tap "
            "and outbound on each receiver's; show each once with frame.packet_flags_direction==1."
        )
    )
    for name, desc in interfaces:
        out.write(interface_block(name, desc))
    out.flush()
    status.write("ready\n")
    status.flush()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    written = 0
    flushed = time.monotonic()
    stdin = sys.stdin.fileno()

    def drain() -> int:
        n = 0
        while True:
            try:
                data, anc, _flags, addr = sock.recvmsg(65536, 64)
            except BlockingIOError:
                return n
            ifid = ids.get(addr[0])
            if ifid is None:
                continue  # the bridge device, lo: not a port
            stamp = None
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(raw)
                    stamp = sec * 1_000_000_000 + nsec
            if stamp is None:
                stamp = time.time_ns()
            out.write(packet_block(ifid, stamp, data, epb_flags(addr[2])))
            n += 1

    while True:
        ready, _, _ = select.select([sock, stdin], [], [], flush_every)
        if sock in ready:
            written += drain()
        if stdin in ready and not os.read(stdin, 4096):
            break
        now = time.monotonic()
        if now - flushed >= flush_every:
            out.flush()
            flushed = now
    written += drain()
    out.flush()
    _packets, drops = struct.unpack("II", sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "frames": float(written),
        "drops": float(drops),
        "utime": usage.ru_utime - usage0.ru_utime,
        "stime": usage.ru_stime - usage0.ru_stime,
    }
    status.write("done " + " ".join(f"{k}={v:.6g}" for k, v in figures.items()) + "\n")
    status.flush()
    sock.close()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.capture record|show ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.capture", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record taps to pcapng until stdin reaches EOF")
    dest = rec.add_mutually_exclusive_group(required=True)
    dest.add_argument("--fd", type=int, help="write to this open file descriptor")
    dest.add_argument("--out", type=Path, help="write to this file")
    rec.add_argument(
        "--iface",
        action="append",
        required=True,
        metavar="NAME[=DESCRIPTION]",
        help="an interface to record (repeatable); the description names the instance",
    )
    rec.add_argument("--flush", type=float, default=0.05, help="flush period (s)")
    show = sub.add_parser("show", help="print the events of a capture file")
    show.add_argument("file", type=Path)
    show.add_argument("--all-copies", action="store_true", help="one line per captured copy")
    args = parser.parse_args(argv)
    if args.command == "show":
        try:
            for ev in events(args.file, dedupe=not args.all_copies):
                print(describe(ev))
        except BrokenPipeError:  # `| head` closed the pipe: not an error
            sys.stderr.close()
        return 0
    ifaces = [(n, d or None) for n, _, d in (i.partition("=") for i in args.iface)]
    sink: BinaryIO = (
        os.fdopen(args.fd, "wb", buffering=1 << 20)
        if args.fd is not None
        else open(args.out, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
    )
    try:
        run_recorder(sink, [(n, d or "") for n, d in ifaces], flush_every=args.flush)
    finally:
        sink.close()
    return 0


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
    else:
        what = f"probe {ev.proto} {ev.direction_kind} seq={ev.seq} {ev.src_ip}->{ev.dst_ip}" + (
            f" responder={ev.responder}" if ev.responder else ""
        )
    return f"{ev.time:.6f} {where}: {what}"


# -- runner side ------------------------------------------------------------------------------


class Capture:
    """A recording of every fabric tap of a lab, made by :func:`start_capture`.

    :meth:`frames` and :meth:`events` read the file, also while it is being written (up to the
    last flush, at most ``flush`` seconds old). :meth:`stop` ends the recording; it runs at lab
    teardown at the latest, and the file stays where it is.
    """

    def __init__(self, lab: Lab, path: Path, *, flush: float = 0.05) -> None:
        self.lab = lab
        self.path = path
        self.flush = flush
        self.figures: dict[str, float] = {}
        """After :meth:`stop`: frames written, kernel drops, CPU seconds (utime, stime)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader = PcapngReader(path)
        self._frames: list[Frame] = []
        self._lock = threading.Lock()

    def interfaces(self) -> list[tuple[str, str]]:
        """(tap, description) of every fabric port, in a stable order."""
        out = []
        for port in sorted(self.lab.fabric.ports.values(), key=lambda p: (p.instance.name, p.tap)):
            desc = (
                f"instance={port.instance.name} ifname={port.ifname} mac={port.mac} "
                f"network={port.network.name} port={port.id}"
            )
            out.append((port.tap, desc))
        return out

    def start(self, timeout: float = 10.0) -> Capture:
        """Start recording; return once the capture socket is open."""
        from lab.sandbox import read_ready

        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        # The runner opens the file and hands the descriptor over: the fabric's /tmp is private,
        # so a path of the runner's may not exist, or be another file, in there.
        args = ["record", f"--fd={fd}", f"--flush={self.flush}"]
        args += [f"--iface={tap}={desc}" for tap, desc in self.interfaces()]
        try:
            self._proc = self.lab.fabric.popen(
                [sys.executable, "-I", os.path.abspath(__file__), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        finally:
            os.close(fd)
        read_ready(self._proc, timeout, "the fabric capture")
        return self

    @property
    def running(self) -> bool:
        """True while the capture program runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Path:
        """Stop recording (draining what the kernel still holds) and return the file's path."""
        from lab.errors import LabError

        proc, self._proc = self._proc, None
        if proc is None:
            return self.path
        from lab.sandbox import end_by_stdin

        end_by_stdin(proc, timeout)
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read().decode(errors="replace")
        err = proc.stderr.read().decode(errors="replace")
        proc.stdout.close()
        proc.stderr.close()
        for line in out.splitlines():
            if line.startswith("done "):
                self.figures = {k: float(v) for k, v in (p.split("=", 1) for p in line.split()[1:])}
        if proc.returncode != 0:
            raise LabError(
                f"the fabric capture exited {proc.returncode}: {err.strip().splitlines()[-3:]}"
            )
        return self.path

    def frames(self) -> list[Frame]:
        """Every frame recorded so far (read incrementally: repeated calls are cheap)."""
        with self._lock:
            self._frames.extend(self._reader.read())
            return list(self._frames)

    def events(self, *, dedupe: bool = True, since: float | None = None) -> list[Event]:
        """The adverts, ARP packets and probes recorded so far (see :func:`events`); with
        ``since``, only those at or after that time (and only the frames near it are folded)."""
        frames = self.frames()
        if since is not None:
            # An event's copies lie within the folding window of its first one.
            frames = [f for f in frames if f.time >= since - 2 * _WINDOW]
        found = events(frames, dedupe=dedupe)
        return found if since is None else [e for e in found if e.time >= since]

    def wait_for(
        self,
        match: Callable[[Event], bool],
        *,
        timeout: float,
        what: str,
        since: float | None = None,
    ) -> Event:
        """Wait until the capture holds an event for which ``match`` holds (at or after
        ``since``), and return the first such event. Sees frames up to ``flush`` seconds late."""
        from lab.wait import wait_until

        def first() -> Event | None:
            return next((e for e in self.events(since=since) if match(e)), None)

        found = wait_until(first, timeout=timeout, what=what, accept=lambda e: e is not None)
        assert found is not None
        return found


def start_capture(
    lab: Lab,
    where: str | os.PathLike[str] | None = None,
    *,
    flush: float = 0.05,
) -> Capture:
    """Record every fabric port of ``lab``; stopped at lab teardown at the latest.

    ``where`` is a file (a name ending in ``.pcapng``) or a directory, which gets
    ``<lab id>.pcapng``: what ``--pcap DIR`` names. Without it the file goes to the system's
    temporary directory, and is kept.
    """
    target = Path(where) if where is not None else Path(tempfile.gettempdir())
    if target.suffix not in (".pcapng", ".pcap"):
        target = target / f"{lab.id}.pcapng"
    target.parent.mkdir(parents=True, exist_ok=True)
    capture = Capture(lab, target, flush=flush)
    lab.defer(f"capture {capture.path}", capture.stop)
    return capture.start()


if __name__ == "__main__":
    sys.exit(main())
