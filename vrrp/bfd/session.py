"""The BFD session of RFC 5880 (asynchronous mode) for RFC 5881 single hop, as pure code.

The session owns no socket, thread, timer or clock. A driver decodes packets with
:mod:`vrrp.bfd.packet`, picks the session with a :class:`vrrp.bfd.demux.Demux`, feeds the
session events together with the current time and executes the actions it returns, in
order::

    session = Session(SessionParams(local_discriminator=demux.allocate_discriminator(),
                                    desired_min_tx=0.05, required_min_rx=0.05))
    demux.add(session, peer="192.0.2.2", interface="eth0")
    run(session.start(now))
    while True:
        wait until session.next_deadline() or until a packet arrives
        run(session.tick(now))                                   # on wake-up
        run(session.received(now, control))                      # on receipt

Times are float seconds on whatever monotonic clock the driver uses; the protocol's
intervals are microseconds on the wire, so the session keeps them as integer microseconds
and its properties report seconds.

Scope: RFC 5880 §6.8.1-§6.8.7 and §6.8.16 for a session in Asynchronous mode, without
authentication, the Echo function or local Demand mode (the D bit is never sent; a peer's
Demand mode is honoured, §6.8.7). Every event method also returns the periodic packet that
is due at ``now``, if any, so a driver never needs a zero-delay :meth:`Session.tick`.

Choices where the RFC leaves room (the code says why where each is made): a Poll Sequence
(§6.5) runs only for changes while Up, including the switch to the configured timers on
entering Up; AdminDown is announced in ``detect_mult`` packets before transmission ceases
(§6.8.16); bfd.LocalDiag is cleared on coming Up and by :meth:`Session.admin_up`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from vrrp.bfd.packet import MAX_INTERVAL_US, Control, Diag, SessionState

__all__ = [
    "ONE_SECOND",
    "Action",
    "Send",
    "Session",
    "SessionCounters",
    "SessionParams",
    "StateChanged",
    "jittered_interval",
]

ONE_SECOND = 1.0
"""RFC 5880 §6.8.3: while not Up, bfd.DesiredMinTxInterval MUST NOT be below one second."""

_ONE_SECOND_US = 1_000_000
#: §6.8.1: bfd.RemoteMinRxInterval "MUST be initialized to 1" (microsecond), so a session
#: that has heard nothing transmits at its own DesiredMinTx.
_INITIAL_REMOTE_MIN_RX_US = 1
_MAX_DISCRIMINATOR = 0xFFFF_FFFF


def _to_us(name: str, seconds: float) -> int:
    """Seconds to whole microseconds (the wire unit), refusing what the field cannot carry."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    micros = round(seconds * 1_000_000)
    if not 0 <= micros <= MAX_INTERVAL_US:
        raise ValueError(f"{name} must be 0..{MAX_INTERVAL_US} µs, got {seconds} s")
    return micros


def jittered_interval(interval: float, detect_mult: int, u: float) -> float:
    """One periodic transmission interval with the jitter of RFC 5880 §6.8.7.

    ``interval`` is the negotiated transmit interval, ``u`` a uniform draw in [0, 1]. The
    interval is reduced by 0-25 % (so it lies in 75-100 % of ``interval``), or by 10-25 %
    when ``detect_mult`` is 1 (75-90 %), so that with a multiplier of 1 the next packet still
    arrives before the remote's Detection Time (one interval) runs out.
    """
    if not 0.0 <= u <= 1.0:
        raise ValueError(f"the random draw must be in [0, 1], got {u}")
    if detect_mult == 1:
        return interval * (0.90 - 0.15 * u)
    return interval * (1.0 - 0.25 * u)


# --------------------------------------------------------------------------------------------
# Parameters, actions, counters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionParams:
    """The locally configured part of RFC 5880 §6.8.1's state variables.

    Attributes:
        local_discriminator: bfd.LocalDiscr, nonzero and unique on the system (§6.8.1; see
            :meth:`Demux.allocate_discriminator`). It cannot change during a session.
        desired_min_tx: bfd.DesiredMinTxInterval while Up, seconds (> 0: the wire value 0 is
            reserved, §4.1).
        required_min_rx: bfd.RequiredMinRxInterval, seconds. 0 asks the peer to send no
            periodic packets (§6.8.7), which also disables detection here (absence of
            packets one asked not to get means nothing).
        detect_mult: bfd.DetectMult, 1..255: the peer's Detection Time is this many of our
            transmit intervals (§6.8.4).
        idle_tx: the Desired Min TX used while not Up, seconds, at least one second
            (§6.8.3 "not less than one second"). The effective value is the larger of this
            and ``desired_min_tx``.
        passive: take the Passive role of §6.1: send nothing until the peer has been heard
            (bfd.RemoteDiscr nonzero, §6.8.7). Note that RFC 5881 §3 requires both ends of
            a single-hop session to be Active; this is for other applications and tests.
        admin_down: hold the session in AdminDown (§6.8.16).
    """

    local_discriminator: int
    desired_min_tx: float = 1.0
    required_min_rx: float = 1.0
    detect_mult: int = 3
    idle_tx: float = ONE_SECOND
    passive: bool = False
    admin_down: bool = False

    def __post_init__(self) -> None:
        """Reject values the protocol cannot carry or the RFC forbids."""
        disc = self.local_discriminator
        if not isinstance(disc, int) or isinstance(disc, bool):
            raise TypeError("local_discriminator must be an int")
        if not 1 <= disc <= _MAX_DISCRIMINATOR:
            raise ValueError(f"local_discriminator must be 1..{_MAX_DISCRIMINATOR}, got {disc}")
        if _to_us("desired_min_tx", self.desired_min_tx) < 1:
            raise ValueError("desired_min_tx must be at least 1 µs: 0 is reserved (RFC 5880 §4.1)")
        _to_us("required_min_rx", self.required_min_rx)
        if _to_us("idle_tx", self.idle_tx) < _ONE_SECOND_US:
            raise ValueError(f"idle_tx must be at least 1 s (RFC 5880 §6.8.3), got {self.idle_tx}")
        mult = self.detect_mult
        if not isinstance(mult, int) or isinstance(mult, bool) or not 1 <= mult <= 255:
            raise ValueError(f"detect_mult must be an int in 1..255, got {mult!r}")
        if not isinstance(self.passive, bool) or not isinstance(self.admin_down, bool):
            raise TypeError("passive and admin_down must be bools")

    @property
    def desired_min_tx_us(self) -> int:
        """``desired_min_tx`` in microseconds."""
        return _to_us("desired_min_tx", self.desired_min_tx)

    @property
    def required_min_rx_us(self) -> int:
        """``required_min_rx`` in microseconds."""
        return _to_us("required_min_rx", self.required_min_rx)

    @property
    def idle_tx_us(self) -> int:
        """``idle_tx`` in microseconds."""
        return _to_us("idle_tx", self.idle_tx)


@dataclass(frozen=True, slots=True)
class Send:
    """Send this Control packet to the peer (UDP to port 3784, TTL 255, RFC 5881 §4-§5)."""

    control: Control


@dataclass(frozen=True, slots=True)
class StateChanged:
    """bfd.SessionState changed from ``old`` to ``new``; ``diag`` is bfd.LocalDiag after it."""

    old: SessionState
    new: SessionState
    diag: Diag


Action = Send | StateChanged
"""Everything an event can return."""


@dataclass(slots=True)
class SessionCounters:
    """Per-session statistics, for logs and status reports."""

    received: int = 0
    """Packets handed to :meth:`Session.received` (after decoding and demultiplexing)."""
    sent: int = 0
    """Packets sent, periodic and Final alike."""
    finals_sent: int = 0
    """Of ``sent``, the answers to a Poll (§6.5)."""
    state_changes: int = 0
    """Transitions of bfd.SessionState."""
    discarded: int = 0
    """Received packets the session dropped: before :meth:`Session.start`, or in AdminDown."""
    detection_timeouts: int = 0
    """Times the Detection Time expired in Init or Up, taking the session Down (§6.8.4)."""
    polls_started: int = 0
    """Poll Sequences begun (§6.5)."""

    def as_dict(self) -> dict[str, int]:
        """A JSON-ready snapshot."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------


class Session:
    """One BFD session in Asynchronous mode, driven by events with an injected clock.

    Every event method takes ``now`` (seconds) and returns the actions to execute in order.
    :meth:`next_deadline` says when :meth:`tick` is next due: the next periodic packet or the
    Detection Time expiring, whichever comes first.

    ``rand`` returns uniform draws in [0, 1) for the transmit jitter (§6.8.7); pass a seeded
    ``random.Random().random`` (or a constant) for reproducible runs.
    """

    def __init__(self, params: SessionParams, *, rand: Callable[[], float] = random.random) -> None:
        """Create a session in Down (§6.8.1); nothing is sent until :meth:`start`."""
        self._params = params
        self._rand = rand
        self._started = False
        # §6.8.1 initial values.
        self._state = SessionState.DOWN
        self._remote_state = SessionState.DOWN
        self._remote_discr = 0
        self._local_diag = Diag.NONE
        self._remote_min_rx_us = _INITIAL_REMOTE_MIN_RX_US
        self._remote_demand = False
        # Learnt from the peer's packets; None until the first one.
        self._remote_desired_tx_us: int | None = None
        self._remote_detect_mult: int | None = None
        # What our packets advertise (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval)
        # versus what the timers use: §6.8.3 holds some changes back until a Poll ends.
        self._advertised_us = self._advertised()
        self._tx_in_use_us, self._rx_in_use_us = self._advertised_us
        self._poll_active = False
        # A change arrived during a running poll: another poll must follow it.
        self._poll_dirty = False
        # The smallest Desired Min TX and largest Required Min RX advertised during the
        # running poll: whichever of them the peer's Final answers, these bound what is safe.
        self._poll_tx_floor_us = 0
        self._poll_rx_ceiling_us = 0
        self._last_tx: float | None = None
        self._next_tx: float | None = None
        # The un-jittered interval _next_tx was computed from, to notice a shorter one.
        self._scheduled_interval_us: int | None = None
        self._last_rx: float | None = None
        self._detect_deadline: float | None = None
        self._admin_announcements_left = 0
        self.counters = SessionCounters()
        """Statistics; reset by replacing with a fresh :class:`SessionCounters`."""

    # ---- read-only views --------------------------------------------------------------------

    @property
    def params(self) -> SessionParams:
        """The current parameters (change them with :meth:`set_params`)."""
        return self._params

    @property
    def local_discriminator(self) -> int:
        """bfd.LocalDiscr."""
        return self._params.local_discriminator

    @property
    def state(self) -> SessionState:
        """bfd.SessionState."""
        return self._state

    @property
    def remote_state(self) -> SessionState:
        """bfd.RemoteSessionState: the State of the last packet received."""
        return self._remote_state

    @property
    def local_diag(self) -> Diag:
        """bfd.LocalDiag: the reason for the last state change worth a diagnostic."""
        return self._local_diag

    @property
    def remote_discriminator(self) -> int:
        """bfd.RemoteDiscr: 0 until the peer is heard, and again after a Detection Time of
        silence (§6.8.1)."""
        return self._remote_discr

    @property
    def polling(self) -> bool:
        """Whether a Poll Sequence is running (our periodic packets carry the P bit)."""
        return self._poll_active

    @property
    def desired_min_tx(self) -> float:
        """The Desired Min TX Interval we advertise, seconds (at least ``idle_tx`` when not
        Up, §6.8.3)."""
        return self._advertised_us[0] / 1e6

    @property
    def required_min_rx(self) -> float:
        """The Required Min RX Interval we advertise, seconds."""
        return self._advertised_us[1] / 1e6

    @property
    def remote_min_rx(self) -> float:
        """bfd.RemoteMinRxInterval, seconds (1 µs until the peer is heard, §6.8.1)."""
        return self._remote_min_rx_us / 1e6

    @property
    def remote_desired_min_tx(self) -> float | None:
        """The peer's last Desired Min TX Interval, seconds, or None before any packet."""
        micros = self._remote_desired_tx_us
        return None if micros is None else micros / 1e6

    @property
    def tx_interval(self) -> float:
        """The negotiated transmit interval before jitter, seconds (§6.8.2, §6.8.7): the larger
        of the Desired Min TX in use and bfd.RemoteMinRxInterval."""
        return self._tx_interval_us() / 1e6

    @property
    def detection_time(self) -> float | None:
        """The Detection Time, seconds (§6.8.4), or None before the peer is heard (or when
        we asked for no packets)."""
        micros = self._detection_time_us()
        return None if micros is None else micros / 1e6

    @property
    def next_tx(self) -> float | None:
        """When the next periodic packet is due, or None while periodic transmission is off."""
        return self._next_tx

    @property
    def detection_deadline(self) -> float | None:
        """When the Detection Time runs out if nothing more arrives, or None."""
        return self._detect_deadline

    def next_deadline(self) -> float | None:
        """The time at which :meth:`tick` must next be called, or None if no timer runs."""
        times = [t for t in (self._next_tx, self._detect_deadline) if t is not None]
        return min(times) if times else None

    def __repr__(self) -> str:
        """Short form for logs and hypothesis failure reports."""
        return (
            f"Session(discr={self._params.local_discriminator}, state={self._state.name}, "
            f"remote={self._remote_discr}, diag={self._local_diag.name}, "
            f"deadline={self.next_deadline()})"
        )

    # ---- events -----------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin the session: an Active one sends its first Down packet at once.

        A session configured ``admin_down`` goes straight to AdminDown and sends nothing:
        no peer has ever been told it is up, so there is nothing to announce (§6.8.16).
        """
        if self._started:
            return []
        self._started = True
        actions: list[Action] = []
        if self._params.admin_down:
            actions += self._set_state(now, SessionState.ADMIN_DOWN, Diag.ADMIN_DOWN)
        self._update_timers(now)
        return actions + self._flush(now)

    def received(self, now: float, control: Control) -> list[Action]:
        """A Control packet for this session arrived: the per-session part of §6.8.6.

        ``control`` must have passed :func:`vrrp.bfd.packet.decode` and been demultiplexed
        to this session (:meth:`Demux.lookup`); a Your Discriminator naming another session
        is a driver bug and raises ValueError.
        """
        mine = self._params.local_discriminator
        if control.your_discriminator not in (0, mine):
            raise ValueError(
                f"Your Discriminator {control.your_discriminator} is not this session's ({mine})"
            )
        self.counters.received += 1
        if not self._started:
            self.counters.discarded += 1
            return []
        # §6.8.6: record the remote variables before anything else, AdminDown included.
        self._remote_discr = control.my_discriminator
        self._remote_state = control.state
        self._remote_demand = control.demand
        self._remote_min_rx_us = control.required_min_rx_us
        self._remote_desired_tx_us = control.desired_min_tx_us
        self._remote_detect_mult = control.detect_mult
        # "If a Poll Sequence is being transmitted by the local system and the Final (F) bit
        # in the received packet is set, the Poll Sequence MUST be terminated."
        if control.final and self._poll_active:
            self._terminate_poll()
        # "Update the transmit interval (§6.8.2) ... Update the Detection Time (§6.8.4)".
        self._update_timers(now)
        if self._state is SessionState.ADMIN_DOWN:
            # "If bfd.SessionState is AdminDown: Discard the packet" (no Final either).
            self.counters.discarded += 1
            return self._flush(now)
        actions = self._transition(now, control.state)
        # "If the packet was not discarded, it has been received for purposes of the
        # Detection Time expiration rules in section 6.8.4."
        self._last_rx = now
        self._rearm_detection()
        if control.poll:
            # §6.8.7: answer at once, "without respect to the transmission timer"; a Final
            # never carries P (§6.5), even while our own poll runs.
            actions.append(self._send_final())
        return actions + self._flush(now)

    def tick(self, now: float) -> list[Action]:
        """Fire whatever is due by ``now``: the Detection Time, then a periodic packet.

        A no-op when called early. Detection comes first so a packet sent in the same tick
        already carries the new state.
        """
        if not self._started:
            return []
        actions: list[Action] = []
        if self._detect_deadline is not None and now >= self._detect_deadline:
            actions += self._detection_expired(now)
        return actions + self._flush(now)

    def set_params(self, now: float, new: SessionParams) -> list[Action]:
        """Adopt new parameters without resetting the session (§6.8.3).

        A change of the advertised Desired Min TX or Required Min RX while Up starts a Poll
        Sequence. Until its Final arrives, an *increased* Desired Min TX does not slow our
        transmission (so the peer lengthens its Detection Time first), and a *reduced*
        Required Min RX does not shorten our Detection Time (so the peer is already sending
        faster). The opposite changes are safe and apply at once. A change of ``admin_down``
        is :meth:`admin_down` / :meth:`admin_up`.
        """
        old = self._params
        if new.local_discriminator != old.local_discriminator:
            raise ValueError("local_discriminator cannot change during a session")
        # The admin flag moves only through admin_down()/admin_up(), which do the transition.
        self._params = dataclasses.replace(new, admin_down=old.admin_down)
        actions: list[Action] = []
        if new.admin_down and not old.admin_down:
            actions += self.admin_down(now)
        elif old.admin_down and not new.admin_down:
            actions += self.admin_up(now)
        self._update_timers(now)
        return actions + self._flush(now)

    def admin_down(self, now: float, diag: Diag = Diag.ADMIN_DOWN) -> list[Action]:
        """Hold the session administratively down (§6.8.16).

        ``diag`` is "an appropriate value": ADMIN_DOWN, or PATH_DOWN when an outside signal
        says the path failed. The AdminDown state is sent at once and in ``detect_mult``
        packets in all, then transmission ceases.
        """
        self._params = dataclasses.replace(self._params, admin_down=True)
        if not self._started or self._state is SessionState.ADMIN_DOWN:
            return []
        self._admin_announcements_left = self._params.detect_mult
        actions = self._set_state(now, SessionState.ADMIN_DOWN, Diag(diag))
        # At once, not at the next periodic slot: that one may be a slow (1 s) slot away,
        # and the peer should hear AdminDown before its Detection Time runs out.
        if self._may_transmit():
            actions.append(self._send_periodic(now))
        return actions

    def admin_up(self, now: float) -> list[Action]:
        """Enable the session again: AdminDown → Down (§6.8.16), periodic packets resume."""
        self._params = dataclasses.replace(self._params, admin_down=False)
        if not self._started or self._state is not SessionState.ADMIN_DOWN:
            return []
        self._admin_announcements_left = 0
        # The administrative reason no longer describes the session, so clear it.
        actions = self._set_state(now, SessionState.DOWN, Diag.NONE)
        return actions + self._flush(now)

    # ---- state machine ----------------------------------------------------------------------

    def _transition(self, now: float, received: SessionState) -> list[Action]:
        """The state table at the end of §6.8.6 (the local state is not AdminDown here)."""
        state = self._state
        if received is SessionState.ADMIN_DOWN:
            if state is not SessionState.DOWN:
                return self._set_state(now, SessionState.DOWN, Diag.NEIGHBOR_DOWN)
            return []
        if state is SessionState.DOWN:
            if received is SessionState.DOWN:
                return self._set_state(now, SessionState.INIT, self._local_diag)
            if received is SessionState.INIT:
                return self._set_state(now, SessionState.UP, Diag.NONE)
            return []
        if state is SessionState.INIT:
            if received in (SessionState.INIT, SessionState.UP):
                return self._set_state(now, SessionState.UP, Diag.NONE)
            return []
        if received is SessionState.DOWN:  # Up
            return self._set_state(now, SessionState.DOWN, Diag.NEIGHBOR_DOWN)
        return []

    def _set_state(self, now: float, new: SessionState, diag: Diag) -> list[Action]:
        old = self._state
        self._state = new
        self._local_diag = diag
        self.counters.state_changes += 1
        # The advertised Desired Min TX depends on the state (§6.8.3), and so may the timers.
        self._update_timers(now)
        return [StateChanged(old, new, diag)]

    def _detection_expired(self, now: float) -> list[Action]:
        """§6.8.4 and §6.8.1: a Detection Time passed without a packet from the peer."""
        self._detect_deadline = None
        # Forget the last packet too, so a later recomputation cannot re-arm from it.
        self._last_rx = None
        # §6.8.1 bfd.RemoteDiscr: "If a period of a Detection Time passes without the
        # receipt of a valid, authenticated BFD packet from the remote system, this variable
        # MUST be set to zero." (A Passive session therefore falls silent again.)
        self._remote_discr = 0
        actions: list[Action] = []
        if self._state in (SessionState.INIT, SessionState.UP):
            self.counters.detection_timeouts += 1
            actions += self._set_state(now, SessionState.DOWN, Diag.CONTROL_DETECTION_EXPIRED)
        self._update_timers(now)
        return actions

    # ---- timers -----------------------------------------------------------------------------

    def _advertised(self) -> tuple[int, int]:
        """(bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval) in µs for the current state."""
        params = self._params
        tx = params.desired_min_tx_us
        if self._state is not SessionState.UP:
            # §6.8.3: "When bfd.SessionState is not Up, the system MUST set
            # bfd.DesiredMinTxInterval to a value of not less than one second"; idle_tx is
            # validated to be at least that.
            tx = max(tx, params.idle_tx_us)
        return tx, params.required_min_rx_us

    def _update_timers(self, now: float) -> None:
        """Re-derive everything timing after a change of state, parameters or remote values."""
        adv_tx, adv_rx = advertised = self._advertised()
        changed = advertised != self._advertised_us
        self._advertised_us = advertised
        if self._state is SessionState.UP:
            if changed:
                # §6.8.3: "If either bfd.DesiredMinTxInterval is changed or
                # bfd.RequiredMinRxInterval is changed, a Poll Sequence MUST be initiated".
                if self._poll_active:
                    self._poll_dirty = True
                    self._poll_tx_floor_us = min(self._poll_tx_floor_us, adv_tx)
                    self._poll_rx_ceiling_us = max(self._poll_rx_ceiling_us, adv_rx)
                else:
                    self._start_poll()
            # §6.8.3 holds back only a *larger* Desired Min TX and a *smaller* Required Min RX
            # until the poll ends; sending faster and detecting later are safe right away.
            self._tx_in_use_us = min(self._tx_in_use_us, adv_tx)
            self._rx_in_use_us = max(self._rx_in_use_us, adv_rx)
        else:
            # §6.8.3 holds values back only "and bfd.SessionState is Up"; outside Up nothing
            # depends on both ends agreeing, so new values apply at once and reach the peer
            # in the next packet, without a Poll (and a running one is dropped).
            self._poll_active = False
            self._poll_dirty = False
            self._tx_in_use_us, self._rx_in_use_us = advertised
        self._reschedule_tx(now)
        self._rearm_detection()

    def _start_poll(self) -> None:
        self._poll_active = True
        self._poll_dirty = False
        self._poll_tx_floor_us, self._poll_rx_ceiling_us = self._advertised_us
        self.counters.polls_started += 1

    def _terminate_poll(self) -> None:
        """The Final arrived: the held-back values of §6.8.3 take effect."""
        self._poll_active = False
        # The peer has seen one of the values advertised during the poll, so the smallest
        # Desired Min TX and the largest Required Min RX among them are safe to use.
        self._tx_in_use_us = max(self._tx_in_use_us, self._poll_tx_floor_us)
        self._rx_in_use_us = min(self._rx_in_use_us, self._poll_rx_ceiling_us)
        if self._poll_dirty:
            # The Final may answer a Poll sent before the latest change: poll again for it.
            self._start_poll()

    def _tx_interval_us(self) -> int:
        # §6.8.7: "the greater of bfd.DesiredMinTxInterval and bfd.RemoteMinRxInterval".
        return max(self._tx_in_use_us, self._remote_min_rx_us)

    def _detection_time_us(self) -> int | None:
        if self._remote_detect_mult is None or self._remote_desired_tx_us is None:
            return None
        if self._rx_in_use_us == 0:
            return None
        # §6.8.4: "the value of Detect Mult received from the remote system, multiplied by
        # the agreed transmit interval of the remote system (the greater of
        # bfd.RequiredMinRxInterval and the last received Desired Min TX Interval)".
        return self._remote_detect_mult * max(self._rx_in_use_us, self._remote_desired_tx_us)

    def _rearm_detection(self) -> None:
        detection = self._detection_time_us()
        if self._last_rx is None or detection is None:
            self._detect_deadline = None
        else:
            self._detect_deadline = self._last_rx + detection / 1e6

    def _remote_demand_active(self) -> bool:
        # §6.6 / §6.8.6: Demand mode is active on the remote system when it sets D and both
        # ends are Up.
        return (
            self._remote_demand
            and self._state is SessionState.UP
            and self._remote_state is SessionState.UP
        )

    def _may_transmit(self) -> bool:
        """Whether periodic transmission is allowed now (§6.8.7, §6.8.16)."""
        if not self._started:
            return False
        if self._params.passive and self._remote_discr == 0:
            # "A system MUST NOT transmit BFD Control packets if bfd.RemoteDiscr is zero and
            # the system is taking the Passive role."
            return False
        if self._remote_min_rx_us == 0:
            # "MUST NOT periodically transmit BFD Control packets if bfd.RemoteMinRxInterval
            # is zero."
            return False
        if self._state is SessionState.ADMIN_DOWN and self._admin_announcements_left <= 0:
            return False  # §6.8.16: "Cease the transmission of BFD Control packets".
        # "... if Demand mode is active on the remote system ... and a Poll Sequence is not
        # being transmitted."
        return not (self._remote_demand_active() and not self._poll_active)

    def _jitter(self, interval_us: int) -> float:
        return jittered_interval(interval_us / 1e6, self._params.detect_mult, self._rand())

    def _reschedule_tx(self, now: float) -> None:
        """Start, stop or pull in the periodic transmission after a change."""
        if not self._may_transmit():
            self._next_tx = None
            self._scheduled_interval_us = None
            return
        interval = self._tx_interval_us()
        if self._next_tx is None:
            # (Re)starting: the first packet goes at once; after a pause, keep at least a
            # jittered interval since the previous one.
            last = self._last_tx
            self._next_tx = now if last is None else max(now, last + self._jitter(interval))
        elif self._scheduled_interval_us is not None and interval < self._scheduled_interval_us:
            # §6.8.3: a shorter interval is honoured immediately: "the local system cannot
            # wait longer than the new interval between the previous packet transmission and
            # the next one", and sends "as soon as practicable" if that is already past. A
            # longer one waits for the packet already scheduled.
            base = now if self._last_tx is None else self._last_tx
            self._next_tx = min(self._next_tx, max(now, base + self._jitter(interval)))
        self._scheduled_interval_us = interval

    # ---- transmission -----------------------------------------------------------------------

    def _flush(self, now: float) -> list[Action]:
        """The periodic packet due at ``now``, if any."""
        if self._next_tx is None or now < self._next_tx:
            return []
        return [self._send_periodic(now)]

    def _send_periodic(self, now: float) -> Send:
        send = Send(self._control(final=False))
        self.counters.sent += 1
        self._last_tx = now
        interval = self._tx_interval_us()
        self._scheduled_interval_us = interval
        # Counted from now, not from the missed deadline: after a stall one packet goes out,
        # not a burst of catch-up packets.
        self._next_tx = now + self._jitter(interval)
        if self._state is SessionState.ADMIN_DOWN:
            self._admin_announcements_left -= 1
            if self._admin_announcements_left <= 0:
                self._reschedule_tx(now)
        return send

    def _send_final(self) -> Send:
        # Outside the periodic schedule (§6.5 "independent of any periodic BFD Control
        # packets"), so the schedule is left alone.
        self.counters.sent += 1
        self.counters.finals_sent += 1
        return Send(self._control(final=True))

    def _control(self, *, final: bool) -> Control:
        """The packet of §6.8.7 "Contents of transmitted BFD Control packets"."""
        desired_tx, required_rx = self._advertised_us
        return Control(
            diag=self._local_diag,
            state=self._state,
            poll=self._poll_active and not final,
            final=final,
            detect_mult=self._params.detect_mult,
            my_discriminator=self._params.local_discriminator,
            your_discriminator=self._remote_discr,
            desired_min_tx_us=desired_tx,
            required_min_rx_us=required_rx,
            # §4.1: zero means this system does not loop back Echo packets (no Echo here).
            required_min_echo_rx_us=0,
        )


# --------------------------------------------------------------------------------------------
# Demultiplexing
# --------------------------------------------------------------------------------------------
