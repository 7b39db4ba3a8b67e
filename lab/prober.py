"""The probe programs that run inside lab nodes, and their wire format.

Two programs, driven from the runner by :mod:`lab.probe`:

* the **prober** (``python -m lab.prober send``) runs in the observer and sends seq-numbered
  probes to a target at a fixed rate (1,000/s by default). Sends follow a deadline schedule
  (probe *k* is due at ``t0 + k/rate``), so a slow iteration does not lower the rate; a backlog of
  more than ``--max-lag`` seconds is skipped rather than burst out, and counted.
* the **responder** (``python -m lab.prober respond``) runs on every backend and answers each UDP
  probe with its node name, from the address the probe was sent to (``IP_PKTINFO``), so that the
  reply of a VIP comes from the VIP and every result says *who served* it.

Modes:

``udp``
    A request is ``VLpq`` + seq (u64) + padding; the reply is ``VLpr`` + seq + the responder's
    name. Reply times are the kernel's receive timestamps (``SO_TIMESTAMPNS``, CLOCK_REALTIME:
    the lab clock). Send times are read from the lab clock just before ``sendto``.
``icmp``
    Echo requests from a raw socket, ICMP id = prober pid, ICMP seq = seq mod 2**16, with the
    same ``VLpq`` + seq (u64) as echo data, so the 64-bit seq survives the 16-bit wrap. No
    responder is needed: the target's kernel answers. Replies are read from an ``AF_PACKET``
    socket, which gives the reply's **source MAC**; the runner passes the lab's port MACs
    (``--mac NAME=MAC``) and the responder is the node owning that MAC. A MAC not in the map is
    reported as ``mac:<mac>``: in particular a VRRP virtual MAC (``00:00:5e:00:01:XX``) is shared
    by every router of the VRID, so who served is ``mac:00:00:5e:00:01:XX`` there, and only the
    UDP mode can tell the routers apart. IPv4 only.

The prober reports to the runner over its stdout, one ASCII record per line::

    ready <t0>                           after the sockets are open
    s <seq> <sent>                       a probe left
    r <seq> <received> <responder>       its reply came back (a duplicate reply is reported again)
    e <seq> <time> <errno name>          sendto failed (no route, neighbour failed, ...)
    done key=value ...                   the end: counts, CPU time (``utime``/``stime``), wall

It stops when its stdin reaches EOF (the runner closes it, or dies), after waiting ``--linger``
seconds for late replies. The responder also ends at stdin EOF.

The runner launches both from this file's path with ``python -I`` (``lab.probe`` builds the
command line), so this module imports only the standard library, at module level and below, and
never ``lab.probe``: importing the ``lab`` package costs about 0.6 s of CPU, which a scenario
with a 5 s budget cannot pay per process. The capture reader decodes probes with the wire
functions here for the same reason.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import os
import resource
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

#: The UDP port responders listen on (an unassigned one).
DEFAULT_PORT = 50051
#: Probes per second.
DEFAULT_RATE = 1000.0
#: Bytes of a UDP probe's payload (the header and padding).
DEFAULT_SIZE = 32

REQUEST_MAGIC = b"VLpq"
REPLY_MAGIC = b"VLpr"
_HEADER = struct.Struct("!4sQ")
#: The longest responder name a reply carries (a node name is at most 32 characters).
MAX_NAME = 64

Mode = Literal["udp", "icmp"]

# Linux values the socket module of Python 3.11 does not name.
_IP_PKTINFO = 8
_IPV6_RECVPKTINFO = 49
_IPV6_PKTINFO = 50
_SO_TIMESTAMPNS = 35
_SO_RCVBUFFORCE = 33
_SOL_RAW = 255
_ICMP_FILTER = 1
_ETH_P_IP = 0x0800
_TIMESPEC = struct.Struct("@qq")


# -- wire format (pure; the capture reader uses it too) ----------------------------------------


def encode_request(seq: int, size: int = DEFAULT_SIZE) -> bytes:
    """The payload of probe ``seq``: magic, seq, then zero padding up to ``size`` bytes."""
    head = _HEADER.pack(REQUEST_MAGIC, seq)
    return head + bytes(max(0, size - len(head)))


def encode_reply(seq: int, responder: str) -> bytes:
    """The payload a responder answers probe ``seq`` with: magic, seq, its name (UTF-8)."""
    return _HEADER.pack(REPLY_MAGIC, seq) + responder.encode()[:MAX_NAME]


@dataclass(frozen=True)
class ProbePayload:
    """A decoded probe payload: a request, or a reply naming its responder."""

    kind: Literal["request", "reply"]
    seq: int
    responder: str | None = None


def decode_payload(data: bytes) -> ProbePayload | None:
    """Decode a probe request or reply payload (UDP payload or ICMP echo data); None if foreign.

    ICMP echo replies mirror the request's data, so they decode as ``request`` here: the ICMP
    type, not the payload, tells the direction there.
    """
    if len(data) < _HEADER.size:
        return None
    magic, seq = _HEADER.unpack_from(data)
    if magic == REQUEST_MAGIC:
        return ProbePayload("request", seq)
    if magic == REPLY_MAGIC:
        name = data[_HEADER.size : _HEADER.size + MAX_NAME].decode(errors="replace")
        return ProbePayload("reply", seq, name)
    return None


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def encode_echo_request(ident: int, seq: int, size: int = DEFAULT_SIZE) -> bytes:
    """An ICMP echo request for probe ``seq`` (checksummed), carrying the probe payload."""
    body = encode_request(seq, size)
    head = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = _icmp_checksum(head + body)
    return struct.pack("!BBHHH", 8, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + body


# -- the programs (run inside nodes) ----------------------------------------------------------


def _kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return None


class _Out:
    """Batched line output: flushed every ``period`` seconds, so the runner sees results live
    without one write per probe."""

    def __init__(self, stream: IO[str], period: float = 0.01) -> None:
        self.stream = stream
        self.period = period
        self.lines: list[str] = []
        self.flushed = time.monotonic()

    def add(self, line: str) -> None:
        self.lines.append(line)

    def maybe_flush(self, now: float) -> None:
        if self.lines and now - self.flushed >= self.period:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.stream.write("\n".join(self.lines) + "\n")
            self.lines.clear()
        self.stream.flush()
        self.flushed = time.monotonic()


def _stdin_closed(ready: list[Any]) -> bool:
    if sys.stdin.fileno() not in ready:
        return False
    return not os.read(sys.stdin.fileno(), 4096)


def _big_rcvbuf(sock: socket.socket, size: int = 4 << 20) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)  # root may exceed rmem_max
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _open_udp(target: str) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(target).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    _big_rcvbuf(sock)
    # Unconnected on purpose: replies may come from any address, and an ICMP error must not
    # turn into ECONNREFUSED on the next send and stop the schedule.
    sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
    sock.setblocking(False)
    return sock


def _open_icmp(ifname: str | None) -> tuple[socket.socket, socket.socket]:
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    # The raw socket only sends: filter every ICMP type out of its receive queue.
    tx.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", 0xFFFFFFFF))
    tx.setblocking(False)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP))
    rx.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    _big_rcvbuf(rx)
    if ifname:
        rx.bind((ifname, _ETH_P_IP))
    rx.setblocking(False)
    return tx, rx


def _parse_echo_reply(frame: bytes, ident: int) -> tuple[int, str] | None:
    """(seq, source MAC) of an echo reply to this prober in an Ethernet frame, else None."""
    if len(frame) < 14 + 20 + 8 + _HEADER.size or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != 1:
        return None
    icmp = 14 + ihl
    kind, _code, _csum, rid, _rseq = struct.unpack_from("!BBHHH", frame, icmp)
    if kind != 0 or rid != ident & 0xFFFF:
        return None
    payload = decode_payload(frame[icmp + 8 :])
    if payload is None or payload.kind != "request":
        return None
    return payload.seq, frame[6:12].hex(":")


def run_prober(
    target: str,
    *,
    port: int = DEFAULT_PORT,
    rate: float = DEFAULT_RATE,
    mode: Mode = "udp",
    size: int = DEFAULT_SIZE,
    count: int | None = None,
    linger: float = 0.2,
    max_lag: float = 0.05,
    ifname: str | None = None,
    macs: dict[str, str] | None = None,
    out: IO[str] = sys.stdout,
    stop_on_stdin: bool = True,
) -> dict[str, float]:
    """The prober's loop (runs inside the observer). Returns the figures of its ``done`` line.

    Sends until stdin reaches EOF (or ``count`` probes), then waits ``linger`` seconds for late
    replies. Between two due sends it blocks in ``select`` on stdin with the time left to the
    next deadline (at most 10 ms) as timeout, then reads the replies that came meanwhile.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    macs = {mac.lower(): name for mac, name in (macs or {}).items()}
    ident = os.getpid() & 0xFFFF
    if mode == "udp":
        sock = _open_udp(target)
        rx = sock
        dest: tuple[Any, ...] = (target, port)
    else:
        sock, rx = _open_icmp(ifname)
        dest = (target, 0)
    interval = 1.0 / rate
    lines = _Out(out)
    # Replies are not waited for: their times are the kernel's receive stamps, so reading them
    # at the next wake-up (at most ``poll`` later) loses no precision and halves the wake-ups.
    watch: list[Any] = [sys.stdin.fileno()] if stop_on_stdin else []
    poll = 0.01
    t0_wall = time.time()
    lines.add(f"ready {t0_wall:.9f}")
    lines.flush()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    seq = sent = replies = errors = skipped = 0
    sending = True
    end_at = float("inf")

    def drain() -> None:
        nonlocal replies
        while True:
            try:
                data, anc, _flags, addr = rx.recvmsg(2048, 64)
            except BlockingIOError:
                return
            when = _kernel_time(anc) or time.time()
            if mode == "udp":
                payload = decode_payload(data)
                if payload is None or payload.kind != "reply":
                    continue
                got_seq, who = payload.seq, payload.responder or "?"
            else:
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                parsed = _parse_echo_reply(data, ident)
                if parsed is None:
                    continue
                got_seq, mac = parsed
                who = macs.get(mac, f"mac:{mac}")
            replies += 1
            lines.add(f"r {got_seq} {when:.9f} {who.replace(' ', '_')}")

    while True:
        now = time.monotonic()
        if sending:
            due = start + seq * interval
            if now - due > max_lag:
                # Descheduled for longer than max_lag: skip the backlog rather than burst it
                # out, which would put many probes at one instant and load the target.
                behind = int((now - due) / interval)
                seq += behind
                skipped += behind
                due = start + seq * interval
            while due <= now:
                payload = (
                    encode_request(seq, size)
                    if mode == "udp"
                    else encode_echo_request(ident, seq, size)
                )
                sent_at = time.time()
                try:
                    sock.sendto(payload, dest)
                    lines.add(f"s {seq} {sent_at:.9f}")
                    sent += 1
                except OSError as exc:
                    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                    lines.add(f"e {seq} {sent_at:.9f} {name}")
                    errors += 1
                seq += 1
                if count is not None and seq >= count:
                    sending = False
                    end_at = time.monotonic() + linger
                    break
                due = start + seq * interval
                now = time.monotonic()
            timeout = (due - time.monotonic()) if sending else (end_at - time.monotonic())
        else:
            timeout = end_at - now
            if timeout <= 0:
                break
        ready, _, _ = select.select(watch, [], [], min(poll, max(0.0, timeout)))
        drain()
        if stop_on_stdin and sending and _stdin_closed(ready):
            sending = False
            end_at = time.monotonic() + linger
            watch.remove(sys.stdin.fileno())
        lines.maybe_flush(time.monotonic())
    drain()
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "sent": float(sent),
        "replies": float(replies),
        "errors": float(errors),
        "skipped": float(skipped),
        "utime": usage.ru_utime - usage0.ru_utime,
        "stime": usage.ru_stime - usage0.ru_stime,
        "wall": wall,
    }
    lines.add("done " + " ".join(f"{k}={v:.6g}" for k, v in figures.items()))
    lines.flush()
    sock.close()
    if rx is not sock:
        rx.close()
    return figures


def run_responder(name: str, *, port: int = DEFAULT_PORT, out: IO[str] = sys.stdout) -> int:
    """The responder's loop (runs inside a backend). Returns how many probes it answered.

    It answers from the address the probe was addressed to (``IP_PKTINFO``/``IPV6_PKTINFO``):
    a reply to a probe of the VIP leaves from the VIP, as a real service's would, rather than from
    the node's primary address.
    """
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v4.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
    v4.bind(("0.0.0.0", port))
    socks = [v4]
    with contextlib.suppress(OSError):  # a node without IPv6 still answers IPv4
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        v6.bind(("::", port))
        socks.append(v6)
    for s in socks:
        # A neighbour resolution on the prober's side releases a few hundred queued probes at
        # once: the default buffer (~270 small datagrams) would drop some of them.
        _big_rcvbuf(s)
        s.setblocking(False)
    out.write("ready\n")
    out.flush()
    answered = 0
    watch: list[Any] = [*socks, sys.stdin.fileno()]
    while True:
        ready, _, _ = select.select(watch, [], [])
        if _stdin_closed(ready):
            break
        for s in socks:
            if s not in ready:
                continue
            while True:
                try:
                    data, anc, _flags, addr = s.recvmsg(2048, 256)
                except BlockingIOError:
                    break
                payload = decode_payload(data)
                if payload is None or payload.kind != "request":
                    continue
                reply_anc = []
                for level, kind, info in anc:
                    if level == socket.IPPROTO_IP and kind == _IP_PKTINFO:
                        # in_pktinfo {ifindex, spec_dst, addr}: answer from the probed address.
                        dst = info[8:12]
                        reply_anc.append((level, kind, struct.pack("@i4s4s", 0, dst, bytes(4))))
                    elif level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO:
                        reply_anc.append((level, kind, info[:16] + struct.pack("@I", 0)))
                with contextlib.suppress(OSError):  # a reply that cannot leave is a lost probe
                    s.sendmsg([encode_reply(payload.seq, name)], reply_anc, 0, addr)
                    answered += 1
    out.write(f"done answered={answered}\n")
    out.flush()
    return answered


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.prober send|respond ...``: the programs, as run inside a node."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.prober", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send seq-numbered probes; print results on stdout")
    send.add_argument("target", help="the IP address to probe (the VIP)")
    send.add_argument("--port", type=int, default=DEFAULT_PORT, help="responders' UDP port")
    send.add_argument("--rate", type=float, default=DEFAULT_RATE, help="probes per second")
    send.add_argument(
        "--mode", choices=["udp", "icmp"], default="udp", help="UDP to responders, or ICMP echo"
    )
    send.add_argument("--size", type=int, default=DEFAULT_SIZE, help="probe payload bytes")
    send.add_argument("--count", type=int, help="stop after this many probes")
    send.add_argument("--linger", type=float, default=0.2, help="wait for late replies (s)")
    send.add_argument("--max-lag", type=float, default=0.05, help="skip a longer backlog (s)")
    send.add_argument("--ifname", help="icmp mode: read replies on this interface only")
    send.add_argument(
        "--mac",
        action="append",
        default=[],
        metavar="NAME=MAC",
        help="icmp mode: name the responder owning this source MAC (repeatable)",
    )
    send.add_argument(
        "--no-stdin", action="store_true", help="do not stop at stdin EOF (use --count)"
    )
    respond = sub.add_parser("respond", help="answer UDP probes with a name")
    respond.add_argument("--name", default=socket.gethostname(), help="name to answer with")
    respond.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if args.command == "respond":
        run_responder(args.name, port=args.port)
        return 0
    if args.mode == "icmp" and ipaddress.ip_address(args.target).version != 4:
        parser.error("--mode icmp probes IPv4 targets only")
    if args.no_stdin and args.count is None:
        parser.error("--no-stdin needs --count, or the prober never stops")
    macs = {}
    for item in args.mac:
        name, _, mac = item.partition("=")
        macs[mac] = name
    run_prober(
        args.target,
        port=args.port,
        rate=args.rate,
        mode=args.mode,
        size=args.size,
        count=args.count,
        linger=args.linger,
        max_lag=args.max_lag,
        ifname=args.ifname,
        macs=macs,
        stop_on_stdin=not args.no_stdin,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
