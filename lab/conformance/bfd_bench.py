"""BFD on the conformance bench: the IUT's ``bfd_instance`` towards the tester, the tester's
own BFD speaker, and the BFD Control packets of the capture.

The B rows (RFC 5880 asynchronous mode, RFC 5881 single hop) reuse the VRRP bench (its lab,
capture, stall witness and IUT scheduling): the IUT runs a ``vrrp_instance`` (so every driver
reports a first state and starts as it always does) that stays backup for the whole row
(:data:`VRRP_QUIET`), plus one ``bfd_instance`` whose neighbour is the tester:

    iut     192.0.2.11 / 2001:db8::b   bfd_instance tester { neighbor_ip <tester>
                                          source_ip <iut> min_rx 50 min_tx 50 multiplier 3 }
    tester  192.0.2.14 / 2001:db8::e   a BFD speaker in the measuring process: UDP 3784 in,
                                       a source port in 49152-65535 out, TTL 255

The tester (:class:`BfdTester`) is an honest RFC 5880 session (:class:`vrrp.bfd.session.Session`,
the pure state machine the bundled daemon uses, unit-tested beside its codec) on a thread of
its own, which a check can hold silent, script packet by packet (B02, B06), re-parameterise
(a Poll Sequence), put in AdminDown, or make inject a crafted packet (any bytes, any TTL:
a UDP socket with ``IP_TTL`` / ``IPV6_UNICAST_HOPS`` set for that one packet forges the
TTL, so no raw socket is needed). Its own view of the session only paces it; every verdict
comes from the capture (:class:`lab.capture_events.BfdControl`), with frame numbers.

IPv6 sessions run between the nodes' global addresses (2001:db8::b and ::e): a single-hop
session needs no link-local (RFC 5881 §2 binds it to the interface, which the capture
shows), and keepalived and bfdd take global neighbours without a zone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lab import clock
from lab.capture_events import BfdControl
from lab.conformance.bench import Bench, Seen
from lab.wait import wait_until
from vrrp.bfd.packet import (
    CONTROL_PORT,
    GTSM_TTL,
    SOURCE_PORTS,
    BfdError,
    Control,
    SessionState,
    decode,
    encode,
)
from vrrp.bfd.session import Send, Session, SessionParams

#: The name of the IUT's ``bfd_instance`` (keepalived logs it in every session message).
BFD_NAME = "tester"


@dataclasses.dataclass(frozen=True)
class IutBfd:
    """The IUT's ``bfd_instance`` timers, in seconds (written in ms, as keepalived reads them).

    50 ms × 3 is the issue's figure and keepalived's measured one; bfdd takes 10..60000 ms.
    """

    min_tx: float = 0.05
    min_rx: float = 0.05
    multiplier: int = 3

    def block(self, neighbour: str, source: str, extra: tuple[str, ...] = ()) -> str:
        """The ``bfd_instance`` block, in keepalived's words."""
        lines = [
            f"bfd_instance {BFD_NAME} {{",
            f"    neighbor_ip {neighbour}",
            f"    source_ip {source}",
            f"    min_rx {_ms(self.min_rx)}",
            f"    min_tx {_ms(self.min_tx)}",
            f"    multiplier {self.multiplier}",
            *(f"    {line}" for line in extra),
            "}",
        ]
        return "\n".join(lines) + "\n"


IUT_BFD = IutBfd()
#: The advert interval of the IUT's VRRP instance in a B row: the longest VRRPv3 carries (40.95
#: s, 12 bits of centiseconds), so its Master_Down_Interval (over two minutes) outlasts the row
#: and the instance stays backup, without a VMAC: the IUT changes no link or address while a
#: row measures BFD (the bundled daemon serves VRRP and BFD on one loop, and a takeover's
#: netlink calls would wait on the RTNL lock in the middle of a BFD case).
VRRP_QUIET = 40.0
#: The tester's default session: a slower sender than the IUT (its packets come from a Python
#: thread of the measuring process) with a generous multiplier, so the IUT's Detection Time
#: of the tester (5 × 100 ms) outlasts any pause of that process the stall witness would call
#: harmless; it asks the IUT for 50 ms, the IUT's own Desired Min TX.
TESTER_TX = 0.1
TESTER_RX = 0.05
TESTER_MULT = 5


def _ms(seconds: float) -> str:
    """Seconds as keepalived's milliseconds (up to three decimals, no trailing zeros)."""
    return f"{seconds * 1000:.3f}".rstrip("0").rstrip(".")


def tolerance(interval: float) -> float:
    """How far a measured BFD time may stray: a fifth of the interval it is made of (as
    :func:`lab.conformance.bench.tolerance` for adverts), at least 10 ms: a scheduling delay
    on this shared machine is a few milliseconds, the stall witness judges longer ones."""
    return max(interval / 5, 0.01)


def bfd_config(b: Bench, bfd: IutBfd = IUT_BFD, extra: tuple[str, ...] = ()) -> str:
    """The ``bfd_instance`` a B row appends to the IUT's ``keepalived.conf``."""
    return bfd.block(b.unicast_ip("tester"), b.unicast_ip("iut"), extra)


def start_bfd_iut(b: Bench, bfd: IutBfd = IUT_BFD, extra: tuple[str, ...] = ()) -> float:
    """Start the IUT with its VRRP instance and the ``bfd_instance`` towards the tester; the
    lab-clock time of its first report. On IPv6 the global addresses are waited for first."""
    if b.family == 6:
        await_global(b, "iut")
        await_global(b, "tester")
    params = b.params(advert_int=VRRP_QUIET, use_vmac=False)
    return b.start_iut(params, append=bfd_config(b, bfd, extra))


def await_global(b: Bench, node: str, timeout: float = 5.0) -> None:
    """Wait until ``node``'s global IPv6 address has left DAD (a tentative one cannot be
    bound, and the kernel would not deliver to it)."""
    want = b.unicast_ip(node)
    tentative = 0x40  # IFA_F_TENTATIVE

    def ready() -> bool:
        for a in b.node(node).ipr.get_addr(family=socket.AF_INET6):
            if a.get_attr("IFA_ADDRESS") == want:
                return not (a.get_attr("IFA_FLAGS", a["flags"]) & tentative)
        return False

    wait_until(ready, timeout=timeout, what=f"{node}'s {want} to leave DAD")


# --- the capture --------------------------------------------------------------------------


def bfd_seen(
    b: Bench, sender: str = "iut", since: float | None = None, until: float | None = None
) -> list[Seen]:
    """The BFD Control packets ``sender`` put on the wire, in order."""
    return b.sent(BfdControl, sender, since, until)


def wait_bfd(
    b: Bench,
    match: Callable[[BfdControl], bool],
    *,
    since: float,
    timeout: float,
    sender: str = "iut",
    after: int = 0,
) -> Seen | None:
    """The first BFD packet of ``sender`` at or after ``since`` (and after frame ``after``)
    that ``match``es, or None when none came within ``timeout``."""
    return b.wait_seen(
        lambda s: (
            isinstance(s.event, BfdControl)
            and s.sender == sender
            and s.number > after
            and match(s.event)
        ),
        since=since,
        timeout=timeout,
        what=f"a BFD packet from {sender}",
    )


def payload(seen: Seen) -> bytes:
    """The UDP payload of a captured BFD frame (Ethernet, a bare IP header, UDP)."""
    data = seen.data
    start = 14 + (40 if data[12:14] == b"\x86\xdd" else (data[14] & 0x0F) * 4) + 8
    return data[start:]


# --- the tester ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Heard:
    """A packet the tester received from the IUT (its own view, for pacing; verdicts come
    from the capture)."""

    at: float
    """Lab-clock time it was read."""
    control: Control


class BfdTester:
    """The tester's BFD speaker on the bench's tester node, in the current family.

    ``start()`` runs an honest session (:class:`vrrp.bfd.session.Session`) with ``params``
    on its own thread; :meth:`scripted` instead leaves every packet to the check
    (:meth:`send`). A check may :meth:`silence` it, change its parameters (:meth:`set_params`:
    a Poll Sequence when Up), put it in AdminDown (:meth:`admin_down`) or :meth:`inject` any
    payload with any TTL from the session's source port.
    """

    def __init__(
        self,
        b: Bench,
        *,
        desired_min_tx: float = TESTER_TX,
        required_min_rx: float = TESTER_RX,
        detect_mult: int = TESTER_MULT,
    ) -> None:
        self.b = b
        self.family = b.family
        af = socket.AF_INET if b.family == 4 else socket.AF_INET6
        self.local = b.unicast_ip("tester")
        self.iut = b.unicast_ip("iut")
        tester = b.node("tester")
        if b.family == 6:
            # Its sockets bind the global address, which cannot be bound while tentative: a
            # row asked in IPv6 soon after the bench came up found it still in DAD (EADDRNOTAVAIL
            # beside scripts/neighbour-labs.sh).
            await_global(b, "tester")
        self.rx = tester.socket(af, socket.SOCK_DGRAM)
        self.rx.bind((self.local, CONTROL_PORT))
        self.tx = tester.socket(af, socket.SOCK_DGRAM)
        # RFC 5881 §4: a source port in 49152..65535, the same for the session's lifetime.
        self.port = random.choice(SOURCE_PORTS)
        self.tx.bind((self.local, self.port))
        self._set_ttl(GTSM_TTL)
        self.params = SessionParams(
            local_discriminator=random.randint(1, 0xFFFF_FFFF),
            desired_min_tx=desired_min_tx,
            required_min_rx=required_min_rx,
            detect_mult=detect_mult,
        )
        self.session = Session(self.params)
        self.heard: list[Heard] = []
        self.sent: list[tuple[float, Control]] = []
        self._lock = threading.RLock()
        self._running = False
        self._muted = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._heard_cond = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name="bfd-tester", daemon=True)
        self._thread.start()

    # -- the session -------------------------------------------------------------------------

    @property
    def discriminator(self) -> int:
        """The tester's My Discriminator."""
        return self.params.local_discriminator

    @property
    def iut_discriminator(self) -> int:
        """The IUT's My Discriminator as last heard (0 before any packet)."""
        with self._lock:
            return self.heard[-1].control.my_discriminator if self.heard else 0

    def start(self) -> None:
        """Run the honest session from now on (its first Down packet goes at once)."""
        with self._lock:
            self._running = True
            self._execute(self.session.start(time.monotonic()))
        self._wake()

    def silence(self) -> float:
        """Send nothing more (the session is frozen as it is); the lab-clock time."""
        with self._lock:
            self._muted = True
            self._running = False
        return clock.now()

    def set_params(self, **changes: Any) -> None:
        """Change the session's parameters (while Up: a Poll Sequence, RFC 5880 §6.8.3)."""
        with self._lock:
            self.params = dataclasses.replace(self.params, **changes)
            self._execute(self.session.set_params(time.monotonic(), self.params))
        self._wake()

    def admin_down(self) -> float:
        """Take the session to AdminDown (RFC 5880 §6.8.16: announced, then silence); the
        lab-clock time just before the first AdminDown packet."""
        at = clock.now()
        with self._lock:
            self._execute(self.session.admin_down(time.monotonic()))
        self._wake()
        return at

    def control(self, **changes: Any) -> Control:
        """The packet the session would send now, with ``changes`` (e.g. ``state=...``)."""
        with self._lock:
            heard = self.heard[-1].control.my_discriminator if self.heard else 0
            base = Control(
                diag=self.session.local_diag,
                state=self.session.state,
                detect_mult=self.params.detect_mult,
                my_discriminator=self.discriminator,
                your_discriminator=heard,
                desired_min_tx_us=round(self.session.desired_min_tx * 1e6),
                required_min_rx_us=round(self.session.required_min_rx * 1e6),
            )
        return dataclasses.replace(base, **changes)

    def send(self, control: Control) -> float:
        """Send one packet (a scripted tester's); the lab-clock time just before."""
        return self.inject(encode(control))

    def inject(self, data: bytes, ttl: int = GTSM_TTL) -> float:
        """Send ``data`` as one BFD datagram with TTL / hop limit ``ttl``; the lab-clock time
        just before."""
        with self._lock:
            if ttl != GTSM_TTL:
                self._set_ttl(ttl)
            at = clock.now()
            try:
                self.tx.sendto(data, (self.iut, CONTROL_PORT))
            finally:
                if ttl != GTSM_TTL:
                    self._set_ttl(GTSM_TTL)
        return at

    # -- waiting on the IUT ------------------------------------------------------------------

    def wait_heard(
        self, accept: Callable[[Control], bool], *, timeout: float, since: float | None = None
    ) -> Heard | None:
        """The first packet from the IUT read at or after ``since`` that ``accept``s, or
        None within ``timeout`` (the tester's own view: a pacing aid, not evidence)."""
        deadline = time.monotonic() + timeout
        since = clock.now() if since is None else since
        with self._heard_cond:
            while True:
                for heard in self.heard:
                    if heard.at >= since and accept(heard.control):
                        return heard
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._heard_cond.wait(left)

    def wait_up(self, timeout: float) -> bool:
        """Whether the session is Up at both ends within ``timeout`` (the IUT's packets say Up
        and name the tester, and no Poll Sequence of either side is running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = self.wait_heard(
                lambda c: (
                    c.state is SessionState.UP
                    and c.your_discriminator == self.discriminator
                    and not c.poll
                ),
                timeout=deadline - time.monotonic(),
            )
            if heard is None:
                return False
            with self._lock:
                if self.session.state is SessionState.UP and not self.session.polling:
                    return True
        return False

    # -- the thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                deadline = self.session.next_deadline() if self._running else None
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            readable, _, _ = select.select([self.rx, self._wake_r], [], [], wait)
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
            # Every packet waiting is read before the timers fire: after a pause of this
            # thread, the IUT's packets that did arrive re-arm the Detection Time first.
            while True:
                try:
                    data = self.rx.recv(512, socket.MSG_DONTWAIT)
                except (BlockingIOError, OSError):
                    break
                self._received(data)
            with self._lock:
                if self._running:
                    self._execute(self.session.tick(time.monotonic()))

    def _received(self, data: bytes) -> None:
        try:
            control = decode(data)  # no TTL check: the tester hears whatever the IUT sends
        except BfdError:
            return
        with self._heard_cond:
            self.heard.append(Heard(clock.now(), control))
            self._heard_cond.notify_all()
            if self._running and control.your_discriminator in (0, self.discriminator):
                self._execute(self.session.received(time.monotonic(), control))

    def _execute(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Send) and not self._muted:
                self.sent.append((clock.now(), action.control))
                self.tx.sendto(encode(action.control), (self.iut, CONTROL_PORT))

    def _set_ttl(self, ttl: int) -> None:
        if self.family == 4:
            self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        else:
            self.tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Stop the thread and close the sockets (nothing is sent on the way out)."""
        self.silence()
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)
        for sock in (self.rx, self.tx):
            sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def tester(b: Bench, **params: Any) -> Iterator[BfdTester]:
    """A :class:`BfdTester` for the current family, closed at the end of the block."""
    t = BfdTester(b, **params)
    try:
        yield t
    finally:
        t.close()


__all__ = [
    "BFD_NAME",
    "IUT_BFD",
    "TESTER_MULT",
    "TESTER_RX",
    "TESTER_TX",
    "VRRP_QUIET",
    "BfdTester",
    "Heard",
    "IutBfd",
    "await_global",
    "bfd_config",
    "bfd_seen",
    "payload",
    "start_bfd_iut",
    "tester",
    "tolerance",
    "wait_bfd",
]
