"""pcapng: the capture file format, the recorder program that writes it, and its reader.

Recording
    The recorder (:func:`run_recorder`, ``python -m lab.capture record``) runs in the **fabric**
    namespace with one ``AF_PACKET``/``ETH_P_ALL`` socket. It keeps the frames of the ``tap``
    ports and writes them to a pcapng file that the runner opened (``--fd``), so the file can
    live anywhere on the host (``--pcap DIR``) even though the fabric's ``/tmp`` is private.
    Timestamps are the kernel's (``SO_TIMESTAMPNS``, CLOCK_REALTIME): frames sit on the lab
    clock, to the nanosecond (``if_tsresol`` = 9).

    The file has one Interface Description Block per tap. ``if_name`` is the tap and
    ``if_description`` reads ``instance=ha_first ifname=ens3 mac=fa:16:3e:8d:dc:bb port=<id>``,
    so Wireshark's *Capture File Properties* and tshark's ``frame.interface_name`` /
    ``frame.interface_description`` name the instance behind every frame.

Reading
    :func:`read_frames` reads a whole pcapng (or classic pcap) file and :class:`PcapngReader` a
    growing one, block by block. Each captured copy is a :class:`Frame`, with its direction
    relative to the tap; :mod:`lab.capture_events` folds the copies and decodes them.

:class:`lab.capture.Capture` starts the recorder from this file's path with ``python -I``, in
every lab, so this module imports only the standard library, at module level and below:
importing the ``lab`` package costs about 0.6 s of CPU (see ``lab/probe.py``), and under ``-I``
the package on ``sys.path`` may not even be this checkout's.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

# -- writing ----------------------------------------------------------------------------------

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
        """The frames of the complete blocks appended since the last call, up to the file's
        size when the call began.

        Bounded by that size, not by the end of file: a writer that appends faster than this
        parses (a busy capture on a loaded host) would otherwise keep the call from returning.
        """
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(self.offset)
            data = f.read(max(0, size - self.offset))
        return list(self.parse(io.BytesIO(data)))

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


# -- the capture program (runs in the fabric namespace) ----------------------------------------


def run_recorder(
    out: BinaryIO,
    interfaces: Sequence[tuple[str, str]],
    *,
    flush_every: float = 0.05,
    status: IO[str] = sys.stdout,
    socket_fds: Sequence[int] = (),
) -> dict[str, float]:
    """Record every frame of ``interfaces`` (name, description) to ``out`` until stdin's EOF.

    The pcapng is flushed every ``flush_every`` seconds, so it can be read while it grows.
    Returns (and prints as its ``done`` line) frames written, kernel drops and CPU time.
    ``socket_fds`` are ``AF_PACKET`` sockets the caller opened in other network namespaces
    (a second OVN chassis's): their interfaces are recorded too, by the same names (tap names
    are unique across a lab's namespaces), on the same kernel clock.
    """
    socks = [socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))]
    socks += [socket.socket(fileno=fd) for fd in socket_fds]
    for sock in socks:
        try:
            # Root may exceed rmem_max: a burst (a GARP storm, a 1,000/s prober) must not
            # overflow.
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

    def drain(sock: socket.socket) -> int:
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
        ready, _, _ = select.select([*socks, stdin], [], [], flush_every)
        for sock in socks:
            if sock in ready:
                written += drain(sock)
        if stdin in ready and not os.read(stdin, 4096):
            break
        now = time.monotonic()
        if now - flushed >= flush_every:
            out.flush()
            flushed = now
    written += sum(drain(sock) for sock in socks)
    out.flush()
    drops = 0
    for sock in socks:
        _packets, lost = struct.unpack("II", sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8))
        drops += lost
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "frames": float(written),
        "drops": float(drops),
        "utime": usage.ru_utime - usage0.ru_utime,
        "stime": usage.ru_stime - usage0.ru_stime,
    }
    status.write("done " + " ".join(f"{k}={v:.6g}" for k, v in figures.items()) + "\n")
    status.flush()
    for sock in socks:
        sock.close()
    return figures


RECORD_HELP = "record taps to pcapng until stdin reaches EOF"


def record_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the recorder's options (``--fd`` or ``--out``, ``--iface``, ``--flush``) to
    ``parser``."""
    dest = parser.add_mutually_exclusive_group(required=True)
    dest.add_argument("--fd", type=int, help="write to this open file descriptor")
    dest.add_argument("--out", type=Path, help="write to this file")
    parser.add_argument(
        "--iface",
        action="append",
        required=True,
        metavar="NAME[=DESCRIPTION]",
        help="an interface to record (repeatable); the description names the instance",
    )
    parser.add_argument("--flush", type=float, default=0.05, help="flush period (s)")
    parser.add_argument(
        "--socket-fd",
        type=int,
        action="append",
        default=[],
        help="an open AF_PACKET socket of another namespace to record from too (repeatable)",
    )


def record(args: argparse.Namespace) -> int:
    """Run the recorder with the options of :func:`record_arguments` until stdin's EOF."""
    ifaces = [(n, d or None) for n, _, d in (i.partition("=") for i in args.iface)]
    sink: BinaryIO = (
        os.fdopen(args.fd, "wb", buffering=1 << 20)
        if args.fd is not None
        else open(args.out, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
    )
    try:
        run_recorder(
            sink,
            [(n, d or "") for n, d in ifaces],
            flush_every=args.flush,
            socket_fds=args.socket_fd,
        )
    finally:
        sink.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -I lab/pcapng.py record ...``: the recorder, as :class:`lab.capture.Capture`
    starts it."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.pcapng", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    record_arguments(sub.add_parser("record", help=RECORD_HELP))
    return record(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
