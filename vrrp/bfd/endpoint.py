"""The bundled daemon's BFD endpoint: every ``bfd_instance`` as a running session, on sockets.

:class:`BfdEndpoint` owns the sessions (:class:`vrrp.bfd.session.Session`), their table
(:class:`vrrp.bfd.demux.Demux`) and their sockets (:mod:`vrrp.bfd.netio`). The daemon drives it
from its one loop, on its clock: it puts each session's deadline on its timer heap
(:meth:`BfdEndpoint.pending`, :meth:`BfdEndpoint.tick`), hands it the readable receive sockets
(:meth:`BfdEndpoint.readable`), and applies the :class:`BfdEvent` it returns to the VRRP
instances that track a session (:mod:`vrrp.tracking`).

What keepalived 2.2.7 does, and this endpoint does the same way:

* It logs the same lines (keepalived/bfd/bfd_scheduler.c), so the lab reads one format:
  ``(peer) Entering Up state``, ``(peer) Expired after 150 ms (89 usec overdue)``,
  ``(peer) Entering Down state (Local diagnostic - Control Detection Time Expired, Remote
  diagnostic - No Diagnostic)``.
* Only Up and Down reach VRRP (``bfd_event_send``): Init and AdminDown count as Down, and a
  session that leaves Up because the *peer* signalled AdminDown tells VRRP nothing
  (``bfd_state_fall``): a peer taken down administratively is not a failure. VRRP then keeps
  the session's last reported state (:attr:`BfdEvent.notify`, :meth:`BfdEndpoint.is_up`).
* A received packet must have TTL + max_hops >= ttl (``bfd_check_packet_ttl``; 255 + 0 >=
  255 by default, RFC 5881 §5), and every discard is counted by reason.

Where it differs on purpose: on shutdown, and for a session a reload removes, it sends
AdminDown with diagnostic 7 (RFC 5880 §6.8.16), so that the peer knows the session was taken
down rather than lost; keepalived closes its sockets and sends nothing, and its peers detect it
by timeout. Sessions are bound to their neighbour's address on any interface (keepalived,
too, keys sessions by address only).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vrrp.bfd.demux import Demux
from vrrp.bfd.netio import ControlReceiver, Datagram, IPAddress, SessionSender
from vrrp.bfd.packet import (
    CONTROL_PORT,
    BfdError,
    Counters,
    Diag,
    Discard,
    SessionState,
    decode,
    encode,
)
from vrrp.bfd.session import Action, Send, Session, SessionParams, StateChanged
from vrrp.spec import BfdSpec

__all__ = ["DIAG_TEXT", "STATE_TEXT", "BfdEndpoint", "BfdEvent", "session_params"]

log = logging.getLogger("vrrp")

STATE_TEXT = {
    SessionState.ADMIN_DOWN: "AdminDown",
    SessionState.DOWN: "Down",
    SessionState.INIT: "Init",
    SessionState.UP: "Up",
}
"""keepalived's ``BFD_STATE_STR``."""

DIAG_TEXT = {
    Diag.NONE: "No Diagnostic",
    Diag.CONTROL_DETECTION_EXPIRED: "Control Detection Time Expired",
    Diag.ECHO_FAILED: "Echo Function Failed",
    Diag.NEIGHBOR_DOWN: "Neighbor Signaled Session Down",
    Diag.FORWARDING_PLANE_RESET: "Forwarding Plane Reset",
    Diag.PATH_DOWN: "Path Down",
    Diag.CONCATENATED_PATH_DOWN: "Concatenated Path Down",
    Diag.ADMIN_DOWN: "Administratively Down",
    Diag.REVERSE_CONCATENATED_PATH_DOWN: "Reverse Concatenated Path Down",
}
"""keepalived's ``BFD_DIAG_STR`` (a reserved code is "Unknown")."""

#: Sessions are bound to their neighbour on any interface (see the module docstring).
_ANY_INTERFACE = 0
_MAX_DRAIN = 64  # datagrams read per readable socket per loop turn


def session_params(spec: BfdSpec, discriminator: int) -> SessionParams:
    """A session's parameters from its ``bfd_instance``."""
    return SessionParams(
        local_discriminator=discriminator,
        desired_min_tx=spec.min_tx,
        required_min_rx=spec.min_rx,
        detect_mult=spec.multiplier,
        idle_tx=spec.idle_tx,
        passive=spec.passive,
    )


@dataclass(frozen=True, slots=True)
class BfdEvent:
    """A session went Up, or left Up (keepalived sends VRRP nothing else)."""

    name: str
    up: bool
    notify: bool
    """False when it left Up because the peer signalled AdminDown: VRRP is not told."""
    at: float
    """When (the loop's monotonic clock)."""


@dataclass
class _Record:
    """One session and what the endpoint keeps beside it."""

    spec: BfdSpec
    session: Session
    sender: SessionSender
    gen: int = 0
    scheduled: float | None = None
    since: float = field(default_factory=time.time)
    """Wall-clock time of the last state change (or of the start)."""
    remote_diag: Diag = Diag.NONE
    vrrp_up: bool = False
    """The state VRRP was last told (keepalived's ``vbfd->bfd_up``)."""
    ttl_discards: int = 0


class BfdEndpoint:
    """Every BFD session of the daemon, their sockets and their table."""

    def __init__(
        self,
        *,
        rand: Callable[[], float] = random.random,
        port: int = CONTROL_PORT,
        peer_port: int = CONTROL_PORT,
    ) -> None:
        """No session and no socket until :meth:`configure`. ``port`` and ``peer_port`` (where
        to listen, where peers listen) are 3784 but for tests, where it may be taken."""
        self._rand = rand
        self._port, self._peer_port = port, peer_port
        self._records: dict[str, _Record] = {}
        self._by_discr: dict[int, _Record] = {}
        self._demux = Demux()
        self._receivers: dict[int, ControlReceiver] = {}
        self._dirty: set[str] = set()
        self.counters = Counters()
        """Every datagram received on port 3784: decoded, or discarded and why."""

    # -- configuration ------------------------------------------------------------------------

    def configure(self, specs: tuple[BfdSpec, ...], now: float) -> list[BfdEvent]:
        """Run exactly ``specs``: start new sessions, keep those whose peer is unchanged (new
        timers go through a Poll Sequence while Up, RFC 5880 §6.8.3), take down the rest."""
        wanted = {spec.name: spec for spec in specs}
        events: list[BfdEvent] = []
        for name, rec in list(self._records.items()):
            spec = wanted.get(name)
            if spec is None or (spec.identity(), spec.ttl) != (rec.spec.identity(), rec.spec.ttl):
                events += self._remove(rec, now)
        for spec in wanted.values():
            rec = self._records.get(spec.name)
            if rec is None:
                events += self._add(spec, now)
            elif spec != rec.spec:
                rec.spec = spec
                params = session_params(spec, rec.session.local_discriminator)
                events += self._run(rec, rec.session.set_params(now, params), now)
                log.info("(%s) new timers applied", spec.name)
        for family in {4, 6} - {rec.spec.family for rec in self._records.values()}:
            receiver = self._receivers.pop(family, None)
            if receiver is not None:
                receiver.close()
        return events

    def _receiver(self, family: int) -> None:
        if family not in self._receivers:
            self._receivers[family] = ControlReceiver(family, port=self._port)

    def _add(self, spec: BfdSpec, now: float) -> list[BfdEvent]:
        try:
            self._receiver(spec.family)
            sender = SessionSender(spec.neighbor, spec.source, spec.ttl, port=self._peer_port)
        except OSError as exc:
            # The session stays absent, which tracking reads as Down: an unweighted
            # track_bfd keeps its instance in FAULT, as an unreachable peer would.
            log.error("(%s) cannot open the BFD sockets: %s", spec.name, exc)
            return []
        discr = self._demux.allocate_discriminator()
        session = Session(session_params(spec, discr), rand=self._rand)
        self._demux.add(session, peer=spec.neighbor, interface=_ANY_INTERFACE)
        rec = _Record(spec, session, sender)
        self._records[spec.name] = rec
        self._by_discr[discr] = rec
        log.info(
            "(%s) BFD session to %s from port %d, discriminator %#010x",
            spec.name,
            spec.neighbor,
            sender.port,
            discr,
        )
        return self._run(rec, session.start(now), now)

    def _remove(self, rec: _Record, now: float) -> list[BfdEvent]:
        # RFC 5880 §6.8.16: tell the peer the session is taken down, not lost.
        events = self._run(rec, rec.session.admin_down(now, Diag.ADMIN_DOWN), now)
        self._demux.remove(rec.session)
        del self._by_discr[rec.session.local_discriminator]
        del self._records[rec.spec.name]
        rec.sender.close()
        return events

    def shutdown(self, now: float) -> None:
        """Send AdminDown (diagnostic 7) on every session and close every socket."""
        for rec in list(self._records.values()):
            self._remove(rec, now)
        for receiver in self._receivers.values():
            receiver.close()
        self._receivers.clear()

    # -- the loop's side ----------------------------------------------------------------------

    def fds(self) -> dict[int, int]:
        """The receive sockets' descriptors, by descriptor: the family."""
        return {r.fileno(): family for family, r in self._receivers.items()}

    def pending(self) -> Iterator[tuple[str, float, int]]:
        """(session, deadline, generation) for each session whose next deadline changed since
        last asked; an older generation of the same session is stale (:meth:`is_current`)."""
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            rec = self._records.get(name)
            if rec is None:
                continue
            deadline = rec.session.next_deadline()
            if deadline == rec.scheduled:
                continue
            rec.scheduled = deadline
            rec.gen += 1
            if deadline is not None:
                yield name, deadline, rec.gen

    def is_current(self, name: str, gen: int) -> bool:
        """Whether a heap entry (session, generation) is still the session's deadline."""
        rec = self._records.get(name)
        return rec is not None and rec.gen == gen

    def tick(self, name: str, now: float) -> list[BfdEvent]:
        """The session's deadline came: the Detection Time, a periodic packet, or both."""
        rec = self._records[name]
        rec.scheduled = None
        session = rec.session
        deadline, detection = session.detection_deadline, session.detection_time
        if deadline is not None and detection is not None and now >= deadline:
            # keepalived's bfd_expire_thread: the time since the last packet, and how late.
            dead = now - (deadline - detection)
            level = logging.WARNING if session.state is SessionState.UP else logging.DEBUG
            log.log(
                level,
                "(%s) Expired after %d ms (%d usec overdue)",
                name,
                int(dead * 1000),
                round((now - deadline) * 1e6),
            )
        return self._run(rec, session.tick(now), now)

    def readable(self, fd: int, clock: Callable[[], float]) -> list[BfdEvent]:
        """Read what is queued on a receive socket; each datagram is handled at ``clock()``."""
        receiver = next(r for r in self._receivers.values() if r.fileno() == fd)
        events: list[BfdEvent] = []
        for _ in range(_MAX_DRAIN):
            try:
                datagram = receiver.receive()
            except OSError as exc:
                log.warning("BFD receive failed: %s", exc)
                break
            if datagram is None:
                break
            try:
                events += self.received(datagram, clock())
            except Exception:  # the network must never crash the daemon
                log.exception("unexpected error handling a BFD packet from %s", datagram.src)
        return events

    def received(self, datagram: Datagram, now: float) -> list[BfdEvent]:
        """One datagram from port 3784: decoded, demultiplexed, checked, handed to its session."""
        try:
            control = decode(datagram.payload, counters=self.counters)
        except BfdError as err:
            log.debug("BFD packet from %s discarded: %s", datagram.src, err)
            return []
        found = self._demux.lookup(control, source=datagram.src, interface=_ANY_INTERFACE)
        if isinstance(found, Discard):
            self.counters.count(found)
            log.debug("BFD packet from %s discarded: %s", datagram.src, found.value)
            return []
        rec = self._by_discr[found.local_discriminator]
        if not rec.spec.accepts_ttl(datagram.ttl):
            # RFC 5881 §5 / keepalived's bfd_check_packet_ttl, with the session's ttl/max_hops.
            self.counters.count(Discard.TTL)
            rec.ttl_discards += 1
            log.debug("(%s) packet with TTL %d discarded", rec.spec.name, datagram.ttl)
            return []
        rec.remote_diag = control.diag
        return self._run(rec, found.received(now, control), now)

    # -- actions ------------------------------------------------------------------------------

    def _run(self, rec: _Record, actions: list[Action], now: float) -> list[BfdEvent]:
        events: list[BfdEvent] = []
        for action in actions:
            if isinstance(action, Send):
                rec.sender.send(encode(action.control))
            elif isinstance(action, StateChanged):
                event = self._changed(rec, action, now)
                if event is not None:
                    events.append(event)
        self._dirty.add(rec.spec.name)
        return events

    def _changed(self, rec: _Record, change: StateChanged, now: float) -> BfdEvent | None:
        rec.since = time.time()
        name, old, new = rec.spec.name, change.old, change.new
        if new is SessionState.UP:
            log.info("(%s) Entering Up state", name)
        elif new is SessionState.DOWN and old is SessionState.UP:
            log.warning(
                "(%s) Entering Down state (Local diagnostic - %s, Remote diagnostic - %s)",
                name,
                DIAG_TEXT.get(change.diag, "Unknown"),
                DIAG_TEXT.get(rec.remote_diag, "Unknown"),
            )
        elif new is SessionState.ADMIN_DOWN:
            log.warning("(%s) Entering AdminDown state", name)
        else:
            log.debug("(%s) Entering %s state", name, STATE_TEXT[new])
        if (new is SessionState.UP) == (old is SessionState.UP):
            return None  # Down, Init and AdminDown are all "down" to VRRP
        up = new is SessionState.UP
        # keepalived's bfd_state_fall: a peer that signalled AdminDown is not a failure.
        notify = up or rec.session.remote_state is not SessionState.ADMIN_DOWN
        if notify:
            rec.vrrp_up = up
        return BfdEvent(name, up, notify, now)

    # -- queries ------------------------------------------------------------------------------

    def is_up(self, name: str) -> bool:
        """The state VRRP was last told of (False for a session that does not run)."""
        rec = self._records.get(name)
        return rec is not None and rec.vrrp_up

    def neighbor(self, name: str) -> IPAddress | None:
        """The session's neighbour address, or None if it does not run."""
        rec = self._records.get(name)
        return rec.spec.neighbor if rec is not None else None

    def notifies_vrrp(self, name: str) -> bool:
        """Whether VRRP instances hear this session (its ``vrrp`` / ``checker`` flags)."""
        rec = self._records.get(name)
        return rec is not None and rec.spec.notifies_vrrp

    def status(self) -> list[dict[str, Any]]:
        """One JSON-ready entry per session, for the control socket's ``bfd`` list."""
        out = []
        for rec in self._records.values():
            s = rec.session
            out.append(
                {
                    "name": rec.spec.name,
                    "neighbor": str(rec.spec.neighbor),
                    "source": None if rec.spec.source is None else str(rec.spec.source),
                    "source_port": rec.sender.port,
                    "state": STATE_TEXT[s.state],
                    "remote_state": STATE_TEXT[s.remote_state],
                    "diag": DIAG_TEXT.get(s.local_diag, "Unknown"),
                    "remote_diag": DIAG_TEXT.get(rec.remote_diag, "Unknown"),
                    "since": rec.since,
                    "vrrp_up": rec.vrrp_up,
                    "local_discriminator": s.local_discriminator,
                    "remote_discriminator": s.remote_discriminator,
                    "desired_min_tx": s.desired_min_tx,
                    "required_min_rx": s.required_min_rx,
                    "remote_min_rx": s.remote_min_rx,
                    "remote_desired_min_tx": s.remote_desired_min_tx,
                    "tx_interval": s.tx_interval,
                    "detect_mult": rec.spec.multiplier,
                    "detection_time": s.detection_time,
                    "polling": s.polling,
                    "ttl": rec.spec.ttl,
                    "max_hops": rec.spec.max_hops,
                    "counters": {
                        **dataclasses.asdict(s.counters),
                        "ttl_discards": rec.ttl_discards,
                        "send_errors": rec.sender.errors,
                    },
                }
            )
        return out

    def receive_counters(self) -> dict[str, Any]:
        """What arrived on port 3784 overall: decoded, and discarded by reason."""
        return self.counters.as_dict()
