"""Probes: who answers the VIP, probe by probe, on the lab clock.

Two programs run inside lab nodes, and one API drives them from the runner:

* the **prober** (``python -m lab.probe send``) runs in the observer and sends seq-numbered
  probes to a target at a fixed rate (1,000/s by default). Sends follow a deadline schedule
  (probe *k* is due at ``t0 + k/rate``), so a slow iteration does not lower the rate; a backlog of
  more than ``--max-lag`` seconds is skipped rather than burst out, and counted.
* the **responder** (``python -m lab.probe respond``) runs on every backend and answers each UDP
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

The runner starts both through the node (:meth:`lab.node.Namespace.popen`), so they die with the
lab at the latest, and are stopped in order by ``lab.defer``. They are launched from this file's
path with ``python -I`` and import only the standard library at module level: importing the
``lab`` package costs about 0.6 s of CPU, which a scenario with a 5 s budget cannot pay per
process. For the same reason the runner-side code imports its ``lab`` helpers inside functions.

Runner-side API::

    resp = responders(lab, nodes=["ha_first", "ha_second"])
    run = start_probes(lab, source="observer", target="10.200.51.10")
    first = run.wait_served(timeout=5)          # the VIP is reachable
    ...                                         # break something
    results = run.stop()
    for outage in results.outages():
        print(outage.duration, outage.old, "->", outage.new)
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
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.node import Namespace

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
    """``python -m lab.probe send|respond ...``: the programs, as run inside a node."""
    parser = argparse.ArgumentParser(prog="python -m lab.probe", description=__doc__.split("\n")[0])
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


# -- runner side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """One probe: when it left, when its reply came back and who sent that reply.

    Times are seconds on the lab clock. ``received`` is None while no reply has come: the probe
    is ``lost`` once the run has stopped (or, live, once it is older than the run's timeout).
    """

    seq: int
    sent: float
    received: float | None = None
    responder: str | None = None
    error: str | None = None
    """Why the send failed (an errno name), when it did."""

    @property
    def answered(self) -> bool:
        """True when a reply came back."""
        return self.received is not None

    @property
    def rtt(self) -> float | None:
        """Round-trip time in seconds, or None when unanswered."""
        return None if self.received is None else self.received - self.sent


@dataclass(frozen=True)
class Outage:
    """A run of unanswered probes between two answered ones.

    ``duration`` is the outage of docs/architecture.md#metrics: from the last reply before the
    gap to the first reply after it, both as received. ``send_gap`` is the same span measured on the
    two probes' send times.
    """

    last_before: ProbeResult
    first_after: ProbeResult
    lost: int
    """Probes sent in between that were not answered in time (send errors included)."""

    @property
    def start(self) -> float:
        """When the last reply before the outage arrived."""
        assert self.last_before.received is not None
        return self.last_before.received

    @property
    def end(self) -> float:
        """When the first reply after the outage arrived."""
        assert self.first_after.received is not None
        return self.first_after.received

    @property
    def duration(self) -> float:
        """Seconds from the last reply before to the first reply after."""
        return self.end - self.start

    @property
    def send_gap(self) -> float:
        """Seconds between the sends of those two probes."""
        return self.first_after.sent - self.last_before.sent

    @property
    def old(self) -> str | None:
        """Who served before the outage."""
        return self.last_before.responder

    @property
    def new(self) -> str | None:
        """Who served after it."""
        return self.first_after.responder


@dataclass
class ProbeResults(Sequence[ProbeResult]):
    """The results of a probe run, in seq order, with the prober's own figures."""

    items: list[ProbeResult]
    rate: float
    """The configured probes per second."""
    figures: dict[str, float] = field(default_factory=dict)
    """The prober's ``done`` line: sent, replies, errors, skipped, utime, stime, wall."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[ProbeResult]:
        return iter(self.items)

    @property
    def interval(self) -> float:
        """The configured seconds between two probes."""
        return 1.0 / self.rate

    def answered(self) -> list[ProbeResult]:
        """The probes that were answered, in seq order."""
        return [r for r in self.items if r.received is not None]

    def lost(self) -> list[ProbeResult]:
        """The probes that were not."""
        return [r for r in self.items if r.received is None]

    def between(self, start: float | None = None, end: float | None = None) -> ProbeResults:
        """The probes sent in ``[start, end)``."""
        keep = [
            r
            for r in self.items
            if (start is None or r.sent >= start) and (end is None or r.sent < end)
        ]
        return ProbeResults(keep, self.rate, self.figures)

    def served_by(self, since: float | None = None, until: float | None = None) -> Counter[str]:
        """How many replies each responder sent, for replies received in ``[since, until)``."""
        return Counter(
            r.responder or "?"
            for r in self.items
            if r.received is not None
            and (since is None or r.received >= since)
            and (until is None or r.received < until)
        )

    def segments(self) -> list[tuple[str, ProbeResult, ProbeResult]]:
        """Who served, as runs of consecutive answered probes: (responder, first, last)."""
        out: list[tuple[str, ProbeResult, ProbeResult]] = []
        for r in self.answered():
            who = r.responder or "?"
            if out and out[-1][0] == who:
                out[-1] = (who, out[-1][1], r)
            else:
                out.append((who, r, r))
        return out

    def outages(self, min_lost: int = 1, late: float = 0.1) -> list[Outage]:
        """Every gap of at least ``min_lost`` unanswered probes between two answered ones.

        A reply slower than ``late`` seconds counts as a loss here: such a probe sat in the
        kernel's queue while the observer resolved the target's MAC (the kernel holds a few
        hundred packets of an INCOMPLETE neighbour and flushes them when the answer comes), so
        its reply says when the path came back, not that the target answered it in time.
        Probes lost before the first reply or after the last one bound no outage: the target
        was not reachable yet, or did not come back before the run stopped.
        """
        out: list[Outage] = []
        previous: ProbeResult | None = None
        lost = 0
        for r in self.items:
            rtt = r.rtt
            if rtt is None or rtt > late:
                lost += 1
                continue
            if previous is not None and lost >= min_lost:
                out.append(Outage(previous, r, lost))
            previous, lost = r, 0
        return out

    def send_rate(self) -> float:
        """Probes actually sent per second, first send to last."""
        if len(self.items) < 2:
            return 0.0
        return (len(self.items) - 1) / (self.items[-1].sent - self.items[0].sent)


def _script_argv(*args: str) -> list[str]:
    # -I: no script directory on sys.path (lab/ holds modules whose names could shadow the
    # standard library's) and no environment; the venv's site-packages still load.
    return [sys.executable, "-I", os.path.abspath(__file__), *args]


class ProbeRun:
    """A prober running in a node, with its results readable while it runs.

    Made by :func:`start_probes`. A reader thread parses the prober's records as they arrive,
    so :meth:`last_served`, :meth:`served_by` and :meth:`wait_served` see replies within about
    10 ms. :meth:`stop` ends the prober and returns the :class:`ProbeResults`; it runs at lab
    teardown at the latest, and a second call returns the same results.
    """

    def __init__(
        self,
        node: Namespace,
        target: str,
        *,
        port: int = DEFAULT_PORT,
        rate: float = DEFAULT_RATE,
        mode: Mode = "udp",
        size: int = DEFAULT_SIZE,
        linger: float = 0.2,
        macs: dict[str, str] | None = None,
        ifname: str | None = None,
    ) -> None:
        self.node = node
        self.target = str(target)
        self.port = port
        self.rate = rate
        self.mode = mode
        self.size = size
        self.linger = linger
        self.macs = macs or {}
        self.ifname = ifname
        self.started_at: float | None = None
        """Lab-clock time the prober was ready."""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sent: dict[int, float] = {}
        self._replies: dict[int, tuple[float, str]] = {}
        self._errors: dict[int, tuple[float, str]] = {}
        self._last: ProbeResult | None = None
        self._figures: dict[str, float] = {}
        self._stderr: list[str] = []
        self._results: ProbeResults | None = None

    def start(self, timeout: float = 10.0) -> ProbeRun:
        """Start the prober and return once it is sending."""
        args = [
            "send",
            self.target,
            f"--port={self.port}",
            f"--rate={self.rate}",
            f"--mode={self.mode}",
            f"--size={self.size}",
            f"--linger={self.linger}",
        ]
        args += [f"--mac={name}={mac}" for mac, name in self.macs.items()]
        if self.ifname:
            args.append(f"--ifname={self.ifname}")
        self._proc = self.node.popen(
            _script_argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        from lab.sandbox import read_ready

        # The first line, "ready <t0>", is read byte by byte before the reader thread takes over.
        ready = read_ready(self._proc, timeout, f"the prober in {self.node.name}")
        self.started_at = float(ready.split()[1])
        self._reader = threading.Thread(
            target=self._read, name=f"prober-{self.node.name}", daemon=True
        )
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            parts = raw.decode(errors="replace").split()
            if not parts:
                continue
            tag = parts[0]
            with self._lock:
                if tag == "s":
                    self._sent[int(parts[1])] = float(parts[2])
                elif tag == "r":
                    seq, when, who = int(parts[1]), float(parts[2]), parts[3]
                    # The first reply counts; a duplicate (two routers answering) is ignored
                    # here and visible in the capture.
                    if seq not in self._replies:
                        self._replies[seq] = (when, who)
                        sent = self._sent.get(seq, when)
                        self._last = ProbeResult(seq, sent, when, who)
                elif tag == "e":
                    self._errors[int(parts[1])] = (float(parts[2]), parts[3])
                elif tag == "done":
                    self._figures = {k: float(v) for k, v in (p.split("=", 1) for p in parts[1:])}
        if self._proc.stderr is not None:
            self._stderr = self._proc.stderr.read().decode(errors="replace").splitlines()[-5:]

    @property
    def running(self) -> bool:
        """True while the prober process is alive and has not been stopped."""
        return self._proc is not None and self._proc.poll() is None and self._results is None

    def results(self) -> ProbeResults:
        """The results so far (all of them after :meth:`stop`).

        While running, a probe younger than ``linger`` without a reply is in flight, and left
        out, so that it is not mistaken for a lost one.
        """
        if self._results is not None:
            return self._results
        alive = self._proc is not None and self._proc.poll() is None
        return self._snapshot(_now() - self.linger if alive else None)

    def _snapshot(self, horizon: float | None) -> ProbeResults:
        with self._lock:
            sent = dict(self._sent)
            replies = dict(self._replies)
            errors = dict(self._errors)
            figures = dict(self._figures)
        items = []
        for seq in sorted(sent.keys() | errors.keys()):
            if seq in errors:
                when, why = errors[seq]
                items.append(ProbeResult(seq, when, error=why))
                continue
            when = sent[seq]
            reply = replies.get(seq)
            if reply is None and horizon is not None and when > horizon:
                continue
            if reply is None:
                items.append(ProbeResult(seq, when))
            else:
                items.append(ProbeResult(seq, when, reply[0], reply[1]))
        return ProbeResults(items, self.rate, figures)

    def last_served(self) -> ProbeResult | None:
        """The most recent reply (by arrival), or None before the first."""
        with self._lock:
            return self._last

    def served_by(self, since: float | None = None) -> Counter[str]:
        """Replies per responder, for replies received at or after ``since`` (lab clock)."""
        with self._lock:
            replies = list(self._replies.values())
        return Counter(who for when, who in replies if since is None or when >= since)

    def wait_served(
        self,
        *,
        timeout: float,
        by: str | None = None,
        since: float | None = None,
    ) -> ProbeResult:
        """Wait until a probe is answered (by ``by``, if given) at or after ``since``.

        This is the "the VIP is reachable" step. Returns the awaited reply; on timeout raises
        ``WaitTimeout`` saying who served last.
        """
        from lab.wait import wait_until

        since = _now() if since is None else since

        def ok(last: ProbeResult | None) -> bool:
            return (
                last is not None
                and last.received is not None
                and last.received >= since
                and (by is None or last.responder == by)
            )

        who = f" by {by}" if by else ""
        return wait_until(  # type: ignore[return-value]
            self.last_served,
            timeout=timeout,
            what=f"a probe of {self.target} to be answered{who}",
            accept=ok,
        )

    def wait_lost(self, count: int, *, timeout: float) -> None:
        """Wait until the latest ``count`` probes sent all went unanswered: the target is down."""
        from lab.wait import wait_until

        def streak() -> int:
            items = self.results().items
            n = 0
            for r in reversed(items):
                if r.received is not None:
                    break
                n += 1
            return n

        wait_until(
            streak,
            timeout=timeout,
            what=f"{count} consecutive probes of {self.target} to go unanswered",
            accept=lambda n: n >= count,
        )

    def stop(self, timeout: float = 10.0) -> ProbeResults:
        """Stop the prober (stdin EOF), wait for its late replies, and return all results."""
        if self._results is not None:
            return self._results
        if self._proc is None:
            return ProbeResults([], self.rate)
        from lab.sandbox import end_by_stdin

        end_by_stdin(self._proc, timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        self._results = self._snapshot(None)
        if self._proc.returncode != 0:
            from lab.errors import LabError

            raise LabError(
                f"the prober in {self.node.name} exited {self._proc.returncode}: "
                + " | ".join(self._stderr)
            )
        return self._results


def _now() -> float:
    from lab.clock import now

    return now()


class Responders:
    """Responder processes on a set of nodes, made by :func:`responders`."""

    def __init__(self, nodes: Iterable[Namespace], port: int = DEFAULT_PORT) -> None:
        self.nodes = list(nodes)
        self.port = port
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.answered: dict[str, int] = {}
        """After :meth:`stop`: how many probes each responder answered."""

    def start(self, timeout: float = 10.0) -> Responders:
        """Start one responder per node (in parallel) and return when all are listening."""
        for node in self.nodes:
            self._procs[node.name] = node.popen(
                _script_argv("respond", f"--name={node.name}", f"--port={self.port}"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        from lab.sandbox import read_ready

        for name, proc in self._procs.items():
            read_ready(proc, timeout, f"the probe responder in {name}")
        return self

    def stop(self, timeout: float = 5.0) -> dict[str, int]:
        """Stop every responder; return how many probes each answered."""
        from lab.sandbox import end_by_stdin

        # Every responder gets its cue first, so they wind down side by side.
        for proc in self._procs.values():
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for name, proc in self._procs.items():
            end_by_stdin(proc, timeout)
            # Its output is two short lines, so reading after the exit cannot block on a full pipe.
            assert proc.stdout is not None and proc.stderr is not None
            out = proc.stdout.read()
            proc.stdout.close()
            proc.stderr.close()
            for line in out.decode(errors="replace").splitlines():
                if line.startswith("done answered="):
                    self.answered[name] = int(line.split("=", 1)[1])
        self._procs.clear()
        return self.answered


def responders(
    lab: Lab, nodes: Iterable[str] | None = None, *, port: int = DEFAULT_PORT
) -> Responders:
    """Start a probe responder in each of ``nodes`` (default: every node); stopped at teardown."""
    names = list(nodes) if nodes is not None else list(lab.nodes)
    started = Responders([lab.node(n) for n in names], port)
    lab.defer(f"probe responders on {', '.join(names)}", started.stop)
    return started.start()


def start_probes(
    lab: Lab,
    *,
    source: str = "observer",
    target: str | None = None,
    rate: float = DEFAULT_RATE,
    mode: Mode = "udp",
    port: int = DEFAULT_PORT,
    size: int = DEFAULT_SIZE,
    linger: float = 0.2,
) -> ProbeRun:
    """Start probing ``target`` (default: the scenario's first VIP) from ``source``.

    In ``icmp`` mode the prober is given every lab port's MAC, so replies name the node whose
    MAC sent them. The run is stopped at lab teardown at the latest.
    """
    if target is None:
        if not lab.scenario.vips:
            from lab.errors import UsageError

            raise UsageError(f"scenario {lab.scenario.name} has no VIP; pass target=")
        target = str(lab.scenario.vips[0].address)
    macs = {p.mac: p.instance.name for p in lab.fabric.ports.values()} if mode == "icmp" else {}
    run = ProbeRun(
        lab.node(source),
        target,
        port=port,
        rate=rate,
        mode=mode,
        size=size,
        linger=linger,
        macs=macs,
    )
    lab.defer(f"prober {source} → {target}", run.stop)
    return run.start()


if __name__ == "__main__":
    sys.exit(main())
