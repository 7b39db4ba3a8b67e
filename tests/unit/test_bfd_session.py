"""Unit tests of the pure BFD session (vrrp/bfd/session.py): no privileges, sockets or sleeps.

Two kinds of test: single sessions fed hand-made packets, for exact timer arithmetic, and two
sessions wired to each other by :class:`Link`, a simulated clock and wire that runs an event
loop over ``next_deadline()`` and packet arrivals (every packet goes through the codec).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrp.bfd.demux import Demux
from vrrp.bfd.packet import Control, Diag, Discard, SessionState, decode, encode
from vrrp.bfd.session import (
    Action,
    Send,
    Session,
    SessionParams,
    StateChanged,
    jittered_interval,
)

ADMIN_DOWN, DOWN, INIT, UP = (
    SessionState.ADMIN_DOWN,
    SessionState.DOWN,
    SessionState.INIT,
    SessionState.UP,
)
A_DISCR = 0x0A0A0A0A
B_DISCR = 0x0B0B0B0B
EPS = 1e-9


def params(discr: int = A_DISCR, **overrides: object) -> SessionParams:
    """Fast test timers: 50 ms both ways, multiplier 3."""
    fields: dict[str, object] = {"desired_min_tx": 0.05, "required_min_rx": 0.05}
    fields.update(overrides)
    return SessionParams(local_discriminator=discr, **fields)  # type: ignore[arg-type]


def peer(**overrides: object) -> Control:
    """A packet from the peer (B) to session A: Up, 10 ms / 10 ms, and a multiplier of 50,
    so that a test feeding packets by hand has 2.5 s before A's Detection Time runs out."""
    fields: dict[str, object] = {
        "state": UP,
        "detect_mult": 50,
        "my_discriminator": B_DISCR,
        "your_discriminator": A_DISCR,
        "desired_min_tx_us": 10_000,
        "required_min_rx_us": 10_000,
    }
    fields.update(overrides)
    return Control(**fields)  # type: ignore[arg-type]


def sends(actions: list[Action]) -> list[Control]:
    return [a.control for a in actions if isinstance(a, Send)]


def changes(actions: list[Action]) -> list[StateChanged]:
    return [a for a in actions if isinstance(a, StateChanged)]


def no_jitter() -> float:
    return 0.0


def bring_up(session: Session, now: float = 0.0, **peer_fields: object) -> None:
    """Take a fresh session Down → Init → Up by hand and complete the poll that Up starts."""
    session.start(now)
    session.received(now, peer(state=DOWN, your_discriminator=0, **peer_fields))
    assert session.state is INIT
    session.received(now, peer(state=UP, **peer_fields))
    assert session.state is UP and session.polling
    session.received(now, peer(state=UP, final=True, **peer_fields))
    assert not session.polling


def fire_next_tx(session: Session) -> tuple[float, Control]:
    """Advance to the next periodic packet and return (time, packet)."""
    when = session.next_tx
    assert when is not None
    out = sends(session.tick(when))
    assert len(out) == 1
    return when, out[0]


# --------------------------------------------------------------------------------------------
# The simulated wire
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    time: float
    sender: str
    control: Control


@dataclass(frozen=True)
class Change:
    time: float
    name: str
    change: StateChanged


class Link:
    """Sessions "a" and "b" joined by a lossless wire of fixed latency, on a simulated clock."""

    def __init__(self, a: Session, b: Session, latency: float = 0.001) -> None:
        self.sessions = {"a": a, "b": b}
        self.latency = latency
        self.now = 0.0
        self.sent: list[Sent] = []
        self.changes: list[Change] = []
        self.arrivals: dict[str, list[Sent]] = {"a": [], "b": []}
        self.mute: set[str] = set()  # senders whose packets are lost
        self.dead: set[str] = set()  # sessions no longer driven at all
        self._wire: list[tuple[float, int, str, bytes]] = []
        self._seq = itertools.count()

    def do(self, name: str, event: Callable[..., list[Action]], *args: object) -> list[Action]:
        """Call ``event(now, *args)`` on session ``name`` and execute its actions."""
        actions = event(self.now, *args)
        self._execute(name, actions)
        return actions

    def start(self, name: str) -> list[Action]:
        return self.do(name, self.sessions[name].start)

    def _execute(self, name: str, actions: list[Action]) -> None:
        other = "b" if name == "a" else "a"
        for action in actions:
            if isinstance(action, Send):
                self.sent.append(Sent(self.now, name, action.control))
                if name not in self.mute:
                    arrival = self.now + self.latency
                    packet = encode(action.control)
                    heapq.heappush(self._wire, (arrival, next(self._seq), other, packet))
            else:
                self.changes.append(Change(self.now, name, action))

    def run_until(self, end: float) -> None:
        for _ in range(1_000_000):
            deadlines = {
                name: session.next_deadline()
                for name, session in self.sessions.items()
                if name not in self.dead
            }
            times = [t for t in deadlines.values() if t is not None]
            if self._wire:
                times.append(self._wire[0][0])
            if not times or min(times) > end:
                self.now = end
                return
            when = min(times)
            assert when >= self.now - EPS, "a deadline in the past"
            self.now = max(self.now, when)
            if self._wire and self._wire[0][0] == when:
                _, _, dest, data = heapq.heappop(self._wire)
                if dest not in self.dead:
                    control = decode(data, ttl=255)
                    self.arrivals[dest].append(Sent(self.now, dest, control))
                    self._execute(dest, self.sessions[dest].received(self.now, control))
                continue
            for name, deadline in deadlines.items():
                if deadline is not None and deadline <= when:
                    self._execute(name, self.sessions[name].tick(self.now))
        raise AssertionError("the simulation did not reach its end time")

    def sent_by(self, name: str, start: float = 0.0, end: float = float("inf")) -> list[Sent]:
        return [s for s in self.sent if s.sender == name and start <= s.time <= end]

    def periodic_gaps(self, name: str, start: float, end: float) -> list[float]:
        """Gaps between consecutive periodic (non-Final) packets of ``name`` in a window."""
        times = [s.time for s in self.sent_by(name, start, end) if not s.control.final]
        return [b - a for a, b in itertools.pairwise(times)]

    def changes_of(self, name: str) -> list[tuple[SessionState, SessionState, Diag]]:
        return [(c.change.old, c.change.new, c.change.diag) for c in self.changes if c.name == name]


def link(
    a: SessionParams | None = None,
    b: SessionParams | None = None,
    *,
    seed: int = 1,
    start: bool = True,
) -> Link:
    """Two sessions with seeded jitter, started together at time 0 unless told otherwise."""
    rng = random.Random(seed)
    wire = Link(
        Session(a or params(A_DISCR), rand=rng.random),
        Session(b or params(B_DISCR), rand=rng.random),
    )
    if start:
        wire.start("a")
        wire.start("b")
    return wire


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"local_discriminator": 0},
        {"local_discriminator": 1 << 32},
        {"desired_min_tx": 0},
        {"required_min_rx": -0.001},
        {"detect_mult": 0},
        {"detect_mult": 256},
        {"idle_tx": 0.5},
    ],
)
def test_params_refuse_what_the_rfc_forbids(overrides: dict[str, object]) -> None:
    fields: dict[str, object] = {"local_discriminator": 1, **overrides}
    with pytest.raises(ValueError):
        SessionParams(**fields)  # type: ignore[arg-type]


def test_params_in_microseconds() -> None:
    p = params(desired_min_tx=0.0333, required_min_rx=0, idle_tx=2)
    assert (p.desired_min_tx_us, p.required_min_rx_us, p.idle_tx_us) == (33_300, 0, 2_000_000)


# --------------------------------------------------------------------------------------------
# The state table of RFC 5880 §6.8.6
# --------------------------------------------------------------------------------------------


def session_in(state: SessionState) -> Session:
    session = Session(params(), rand=no_jitter)
    if state is UP:
        bring_up(session)
    else:
        session.start(0.0)
        if state is INIT:
            session.received(0.0, peer(state=DOWN, your_discriminator=0))
        elif state is ADMIN_DOWN:
            session.admin_down(0.0)
    assert session.state is state
    return session


@pytest.mark.parametrize(
    ("local", "remote", "expected", "diag"),
    [
        (DOWN, DOWN, INIT, Diag.NONE),
        (DOWN, INIT, UP, Diag.NONE),
        (DOWN, UP, DOWN, None),
        (DOWN, ADMIN_DOWN, DOWN, None),
        (INIT, DOWN, INIT, None),
        (INIT, INIT, UP, Diag.NONE),
        (INIT, UP, UP, Diag.NONE),
        (INIT, ADMIN_DOWN, DOWN, Diag.NEIGHBOR_DOWN),
        (UP, DOWN, DOWN, Diag.NEIGHBOR_DOWN),
        (UP, INIT, UP, None),
        (UP, UP, UP, None),
        (UP, ADMIN_DOWN, DOWN, Diag.NEIGHBOR_DOWN),
        (ADMIN_DOWN, DOWN, ADMIN_DOWN, None),
        (ADMIN_DOWN, UP, ADMIN_DOWN, None),
    ],
)
def test_state_table(
    local: SessionState, remote: SessionState, expected: SessionState, diag: Diag | None
) -> None:
    """Every row of the table at the end of §6.8.6; ``diag`` None means no transition."""
    session = session_in(local)
    your = 0 if remote in (DOWN, ADMIN_DOWN) else A_DISCR
    actions = session.received(0.01, peer(state=remote, your_discriminator=your))
    assert session.state is expected
    if diag is None:
        assert changes(actions) == []
    else:
        assert changes(actions) == [StateChanged(local, expected, diag)]
        assert session.local_diag is diag


def test_remote_variables_are_recorded() -> None:
    session = Session(params(), rand=no_jitter)
    session.start(0.0)
    session.received(
        0.0,
        peer(state=DOWN, your_discriminator=0, desired_min_tx_us=1_000_000, detect_mult=4),
    )
    assert session.remote_discriminator == B_DISCR
    assert session.remote_state is DOWN
    assert session.remote_desired_min_tx == 1.0 and session.remote_min_rx == 0.01
    assert session.detection_time == pytest.approx(4 * 1.0)


def test_packets_before_start_or_for_another_session() -> None:
    session = Session(params())
    assert session.received(0.0, peer(state=DOWN, your_discriminator=0)) == []
    assert session.counters.discarded == 1 and session.next_deadline() is None
    with pytest.raises(ValueError, match="not this session"):
        session.received(0.0, peer(your_discriminator=A_DISCR + 1))


def test_first_packet_is_sent_at_start() -> None:
    session = Session(params(), rand=no_jitter)
    (first,) = sends(session.start(5.0))
    assert first == Control(
        state=DOWN,
        my_discriminator=A_DISCR,
        your_discriminator=0,
        desired_min_tx_us=1_000_000,
        required_min_rx_us=50_000,
    )
    assert session.next_tx == pytest.approx(6.0)
    assert session.detection_deadline is None
    assert session.start(5.5) == []


# --------------------------------------------------------------------------------------------
# Handshake, slow rate, negotiation
# --------------------------------------------------------------------------------------------


def test_three_way_handshake_down_init_up_on_both() -> None:
    wire = link()
    wire.run_until(5.0)
    for name in ("a", "b"):
        assert wire.changes_of(name) == [
            (DOWN, INIT, Diag.NONE),
            (INIT, UP, Diag.NONE),
        ]
        assert wire.sessions[name].state is UP
    assert wire.sessions["a"].remote_discriminator == B_DISCR
    assert wire.sessions["b"].remote_discriminator == A_DISCR
    # Up within two slow intervals, not after a timeout.
    assert max(c.time for c in wire.changes) < 2.0


def test_late_starter_goes_down_to_up_directly() -> None:
    """B starts after A's first packet: it hears A's Init and skips Init itself."""
    wire = link(start=False)
    wire.start("a")
    wire.run_until(0.3)
    wire.start("b")
    wire.run_until(5.0)
    assert wire.changes_of("a") == [(DOWN, INIT, Diag.NONE), (INIT, UP, Diag.NONE)]
    assert wire.changes_of("b") == [(DOWN, UP, Diag.NONE)]


def test_slow_rate_until_up_then_negotiated_interval() -> None:
    """A talks to nobody for 4 s, then B starts: slow (≥ 1 s) until Up, 50 ms after."""
    wire = link(seed=7, start=False)
    wire.start("a")
    wire.run_until(4.0)
    wire.start("b")
    wire.run_until(14.0)
    up_at = max(c.time for c in wire.changes)
    for name in ("a", "b"):
        before = [s for s in wire.sent_by(name) if s.control.state is not UP]
        # §6.8.3: "not less than one second" advertised while not Up.
        assert before and all(s.control.desired_min_tx_us >= 1_000_000 for s in before)
        after = wire.periodic_gaps(name, up_at + 0.2, 14.0)
        assert len(after) > 100
        assert all(0.75 * 0.05 - EPS <= g <= 0.05 + EPS for g in after)
        assert wire.sessions[name].tx_interval == 0.05
    # A's periodic gaps while not Up: one second less at most 25 % jitter.
    slow = [s.time for s in wire.sent_by("a") if s.control.state is not UP]
    gaps = [b - a for a, b in itertools.pairwise(slow)]
    assert len(gaps) >= 4 and all(0.75 - EPS <= g <= 1.0 + EPS for g in gaps)
    # And the first Up packet follows within one fast interval of A coming Up.
    a_up = next(c.time for c in wire.changes if c.name == "a" and c.change.new is UP)
    first_up = next(s.time for s in wire.sent_by("a") if s.control.state is UP)
    assert first_up - a_up <= 0.05 + EPS


def test_slow_rate_with_no_peer_uses_idle_tx() -> None:
    session = Session(params(idle_tx=2.5), rand=no_jitter)
    sent = sends(session.start(0.0))
    times = [0.0]
    for _ in range(5):
        when, packet = fire_next_tx(session)
        times.append(when)
        sent.append(packet)
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([2.5] * 5)
    assert {p.desired_min_tx_us for p in sent} == {2_500_000}
    assert {p.state for p in sent} == {DOWN}


def test_desired_above_idle_is_kept_when_not_up() -> None:
    session = Session(params(desired_min_tx=3.0), rand=no_jitter)
    (first,) = sends(session.start(0.0))
    assert first.desired_min_tx_us == 3_000_000


def test_negotiated_intervals_are_asymmetric() -> None:
    """Tx interval = max(own DesiredMinTx, peer's RequiredMinRx) on each side (§6.8.2)."""
    a = params(A_DISCR, desired_min_tx=0.05, required_min_rx=0.2, detect_mult=3)
    b = params(B_DISCR, desired_min_tx=0.1, required_min_rx=0.03, detect_mult=5)
    wire = link(a, b, seed=3)
    wire.run_until(12.0)
    sa, sb = wire.sessions["a"], wire.sessions["b"]
    assert sa.state is UP and sb.state is UP
    assert sa.tx_interval == 0.05  # its own 50 ms beats B's 30 ms Required Min RX
    assert sb.tx_interval == 0.2  # A's 200 ms Required Min RX beats B's own 100 ms
    # §6.8.4: remote mult × max(own RequiredMinRx, remote DesiredMinTx).
    assert sa.detection_time == pytest.approx(5 * max(0.2, 0.1))
    assert sb.detection_time == pytest.approx(3 * max(0.03, 0.05))
    for name, interval in (("a", 0.05), ("b", 0.2)):
        gaps = wire.periodic_gaps(name, 6.0, 12.0)
        assert gaps and all(0.75 * interval - EPS <= g <= interval + EPS for g in gaps)


def test_remote_reducing_required_min_rx_is_honoured_immediately() -> None:
    """§6.8.3: no longer than the new interval after the previous packet."""
    session = Session(params(desired_min_tx=0.01), rand=no_jitter)
    bring_up(session, required_min_rx_us=1_000_000)
    last, _ = fire_next_tx(session)
    assert session.next_tx == pytest.approx(last + 1.0)
    actions = session.received(last + 0.5, peer(required_min_rx_us=10_000))
    # 10 ms after the last packet is already past: the packet goes out now.
    assert [p.state for p in sends(actions)] == [UP]
    assert session.next_tx == pytest.approx(last + 0.5 + 0.01)


# --------------------------------------------------------------------------------------------
# Poll Sequences and §6.8.3
# --------------------------------------------------------------------------------------------


def test_up_starts_a_poll_for_the_fast_timers() -> None:
    session = Session(params(), rand=no_jitter)
    session.start(0.0)
    session.received(0.0, peer(state=DOWN, your_discriminator=0))
    actions = session.received(0.2, peer(state=INIT))
    # The interval shrank from 1 s to 50 ms: more than 50 ms since the last packet, so the
    # first Up packet leaves at once, carrying the Poll.
    (packet,) = sends(actions)
    assert packet.state is UP and packet.poll and not packet.final
    assert packet.desired_min_tx_us == 50_000
    assert session.counters.polls_started == 1


def test_a_poll_is_answered_with_a_final_at_once() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    session.set_params(0.0, params(desired_min_tx=0.02))
    assert session.polling
    (final,) = sends(session.received(0.001, peer(poll=True)))
    # §6.5: F set, P clear, even while our own poll runs; the schedule is not disturbed.
    assert final.final and not final.poll
    assert session.counters.finals_sent == 1


def test_desired_tx_increase_waits_for_the_final() -> None:
    session = Session(params(desired_min_tx=0.05), rand=no_jitter)
    bring_up(session)
    t0, _ = fire_next_tx(session)
    assert sends(session.set_params(t0, params(desired_min_tx=0.3))) == []
    assert session.polling and session.desired_min_tx == 0.3
    assert session.tx_interval == 0.05  # §6.8.3: "MUST NOT change until the Poll ... terminated"
    times = [t0]
    for _ in range(3):
        when, packet = fire_next_tx(session)
        times.append(when)
        assert packet.poll and packet.desired_min_tx_us == 300_000
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.05] * 3)
    session.received(times[-1] + 0.001, peer(final=True))
    assert not session.polling and session.tx_interval == 0.3
    when, packet = fire_next_tx(session)
    assert not packet.poll
    when2, _ = fire_next_tx(session)
    assert when2 - when == pytest.approx(0.3)


def test_desired_tx_decrease_applies_at_once() -> None:
    session = Session(params(desired_min_tx=0.3), rand=no_jitter)
    bring_up(session)
    t0, _ = fire_next_tx(session)
    session.set_params(t0 + 0.01, params(desired_min_tx=0.05))
    assert session.polling  # still polled, as every change is (§6.8.3)
    assert session.tx_interval == 0.05
    assert session.next_tx == pytest.approx(t0 + 0.05)  # pulled in from t0 + 0.3


def test_required_rx_decrease_keeps_old_detection_until_final() -> None:
    session = Session(params(required_min_rx=0.3), rand=no_jitter)
    bring_up(session, detect_mult=3)  # peer: 10 ms Desired Min TX, multiplier 3
    assert session.detection_time == pytest.approx(0.9)
    session.set_params(0.1, params(required_min_rx=0.05))
    assert session.polling and session.required_min_rx == 0.05
    _, packet = fire_next_tx(session)
    assert packet.poll and packet.required_min_rx_us == 50_000  # advertised at once
    session.received(0.2, peer(detect_mult=3))
    assert session.detection_time == pytest.approx(0.9)  # §6.8.3: previous value until Final
    assert session.detection_deadline == pytest.approx(0.2 + 0.9)
    session.received(0.25, peer(detect_mult=3, final=True))
    assert session.detection_time == pytest.approx(0.15)
    assert session.detection_deadline == pytest.approx(0.25 + 0.15)


def test_required_rx_increase_applies_at_once() -> None:
    session = Session(params(required_min_rx=0.05), rand=no_jitter)
    bring_up(session)
    session.set_params(0.1, params(required_min_rx=0.3))
    assert session.polling
    assert session.detection_time == pytest.approx(50 * 0.3)


def test_change_during_a_poll_polls_again() -> None:
    session = Session(params(desired_min_tx=0.05), rand=no_jitter)
    bring_up(session)
    session.set_params(1.0, params(desired_min_tx=0.2))
    session.set_params(1.01, params(desired_min_tx=0.4))
    # The Final may answer a Poll that carried 200 ms: only that much is safe, then poll again.
    session.received(1.02, peer(final=True))
    assert session.polling and session.tx_interval == 0.2
    assert session.counters.polls_started == 3  # Up, then the two changes
    session.received(1.03, peer(final=True))
    assert not session.polling and session.tx_interval == 0.4


def test_final_without_poll_is_ignored() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    before = session.tx_interval
    session.received(1.0, peer(final=True))
    assert not session.polling and session.tx_interval == before


def test_poll_final_over_the_wire() -> None:
    """B slows from 50 to 300 ms: A stretches its Detection Time before B's first long gap."""
    a = params(A_DISCR, required_min_rx=0.01)
    wire = link(a, params(B_DISCR), seed=11)
    wire.run_until(5.0)
    sa, sb = wire.sessions["a"], wire.sessions["b"]
    assert sa.detection_time == pytest.approx(3 * 0.05)
    wire.do("b", sb.set_params, params(B_DISCR, desired_min_tx=0.3))
    wire.run_until(10.0)
    polls = [s for s in wire.sent_by("b", 5.0) if s.control.poll]
    finals = [s for s in wire.arrivals["b"] if s.time > 5.0 and s.control.final]
    assert polls and finals
    final_at = finals[0].time
    gaps = wire.periodic_gaps("b", 5.0, 10.0)
    first_long = next(i for i, g in enumerate(gaps) if g > 0.05 + EPS)
    b_times = [s.time for s in wire.sent_by("b", 5.0) if not s.control.final]
    assert b_times[first_long] >= final_at  # the long gap starts after the Final arrived
    assert all(0.225 - EPS <= g <= 0.3 + EPS for g in gaps[first_long:])
    assert sa.detection_time == pytest.approx(3 * 0.3)
    assert sa.state is UP and sb.state is UP


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def test_detection_time_from_the_last_packet() -> None:
    a = params(A_DISCR, required_min_rx=0.1)
    b = params(B_DISCR, desired_min_tx=0.05, detect_mult=5)
    wire = link(a, b, seed=5)
    wire.run_until(5.0)
    sa = wire.sessions["a"]
    detect = sa.detection_time
    assert detect == pytest.approx(5 * 0.1)
    wire.mute.add("b")
    wire.run_until(8.0)
    ((t_down, diag),) = [
        (c.time, c.change.diag) for c in wire.changes if c.name == "a" and c.change.new is DOWN
    ]
    last_rx = max(s.time for s in wire.arrivals["a"] if s.time <= t_down)
    assert diag is Diag.CONTROL_DETECTION_EXPIRED
    assert detect - EPS < t_down - last_rx <= detect + EPS
    assert sa.counters.detection_timeouts == 1
    # A now sends Down; B, still hearing A, follows with Neighbor Signaled Session Down.
    assert (UP, DOWN, Diag.NEIGHBOR_DOWN) in wire.changes_of("b")


@settings(max_examples=25, deadline=None)
@given(
    a_rx=st.sampled_from([0.01, 0.05, 0.2]),
    b_tx=st.sampled_from([0.01, 0.03, 0.1]),
    b_mult=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_detection_property(a_rx: float, b_tx: float, b_mult: int, seed: int) -> None:
    a = params(A_DISCR, required_min_rx=a_rx)
    b = params(B_DISCR, desired_min_tx=b_tx, detect_mult=b_mult)
    wire = link(a, b, seed=seed)
    wire.run_until(4.0)
    assert wire.sessions["a"].state is UP, "a lossless wire never times out"
    wire.mute.add("b")
    wire.run_until(6.0)
    t_down = next(c.time for c in wire.changes if c.name == "a" and c.time > 4.0)
    last_rx = max(s.time for s in wire.arrivals["a"])
    detect = b_mult * max(a_rx, b_tx)
    assert detect - EPS < t_down - last_rx <= detect + EPS


def test_silence_in_down_clears_the_remote_discriminator_only() -> None:
    session = Session(params(), rand=no_jitter)
    session.start(0.0)
    session.received(0.5, peer(state=ADMIN_DOWN, your_discriminator=0, detect_mult=3))
    assert session.remote_discriminator == B_DISCR
    assert session.detection_deadline == pytest.approx(0.5 + 3 * 0.05)
    assert changes(session.tick(0.65)) == []
    assert session.remote_discriminator == 0 and session.state is DOWN
    assert session.counters.detection_timeouts == 0
    _, packet = fire_next_tx(session)
    assert packet.your_discriminator == 0


# --------------------------------------------------------------------------------------------
# AdminDown (§6.8.16)
# --------------------------------------------------------------------------------------------


def test_admin_down_is_announced_and_not_a_failure() -> None:
    wire = link(seed=2)
    wire.run_until(5.0)
    sa, sb = wire.sessions["a"], wire.sessions["b"]
    actions = wire.do("a", sa.admin_down)
    assert changes(actions) == [StateChanged(UP, ADMIN_DOWN, Diag.ADMIN_DOWN)]
    (packet,) = sends(actions)
    assert packet.state is ADMIN_DOWN and packet.diag is Diag.ADMIN_DOWN
    wire.run_until(30.0)
    assert wire.changes_of("b")[-1] == (UP, DOWN, Diag.NEIGHBOR_DOWN)
    assert sb.counters.detection_timeouts == 0
    assert all(c.change.diag is not Diag.CONTROL_DETECTION_EXPIRED for c in wire.changes)
    # detect_mult packets of AdminDown, then silence; B forgets A's discriminator.
    announced = [s for s in wire.sent_by("a", 5.0) if s.control.state is ADMIN_DOWN]
    assert len(announced) == 3 and len(wire.sent_by("a", 5.0)) == 3
    assert sb.remote_discriminator == 0 and sb.state is DOWN
    # A discards everything in AdminDown, Polls included.
    assert sa.counters.discarded > 0 and sa.state is ADMIN_DOWN
    assert sa.received(wire.now, peer(state=DOWN, your_discriminator=0, poll=True)) == []
    # Enabling again brings the session back Up on both sides.
    wire.do("a", sa.admin_up)
    wire.run_until(40.0)
    assert sa.state is UP and sb.state is UP
    # B heard A's Down first and answers Init, so A goes from Down straight to Up.
    assert wire.changes_of("a")[-2:] == [(ADMIN_DOWN, DOWN, Diag.NONE), (DOWN, UP, Diag.NONE)]
    # B keeps the reason of its last failure through Init, and clears it on coming Up.
    assert wire.changes_of("b")[-2:] == [
        (DOWN, INIT, Diag.NEIGHBOR_DOWN),
        (INIT, UP, Diag.NONE),
    ]


def test_admin_down_with_path_down_diag() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    (packet,) = sends(session.admin_down(1.0, Diag.PATH_DOWN))
    assert packet.diag is Diag.PATH_DOWN and session.local_diag is Diag.PATH_DOWN
    assert session.admin_down(1.1) == []


def test_started_admin_down_is_silent() -> None:
    session = Session(params(admin_down=True), rand=no_jitter)
    actions = session.start(0.0)
    assert actions == [StateChanged(DOWN, ADMIN_DOWN, Diag.ADMIN_DOWN)]
    assert session.next_deadline() is None
    (packet,) = sends(session.set_params(1.0, params(admin_down=False)))
    assert packet.state is DOWN and not session.params.admin_down


def test_admin_flag_through_set_params() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    actions = session.set_params(1.0, params(admin_down=True))
    assert session.state is ADMIN_DOWN and session.params.admin_down
    assert [p.state for p in sends(actions)] == [ADMIN_DOWN]


# --------------------------------------------------------------------------------------------
# Jitter (§6.8.7)
# --------------------------------------------------------------------------------------------


@given(
    interval=st.floats(1e-6, 4000.0),
    mult=st.integers(1, 255),
    u=st.floats(0.0, 1.0),
)
def test_jitter_bounds(interval: float, mult: int, u: float) -> None:
    got = jittered_interval(interval, mult, u)
    high = 0.90 if mult == 1 else 1.0
    assert 0.75 * interval * (1 - 1e-12) <= got <= high * interval * (1 + 1e-12)


def test_jitter_end_points() -> None:
    assert jittered_interval(1.0, 3, 0.0) == 1.0
    assert jittered_interval(1.0, 3, 1.0) == pytest.approx(0.75)
    assert jittered_interval(1.0, 1, 0.0) == pytest.approx(0.90)
    assert jittered_interval(1.0, 1, 1.0) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        jittered_interval(1.0, 3, 1.5)


@pytest.mark.parametrize(("mult", "low", "high"), [(3, 0.75, 1.0), (1, 0.75, 0.90)])
def test_sent_intervals_are_jittered_within_bounds(mult: int, low: float, high: float) -> None:
    wire = link(params(A_DISCR, detect_mult=mult), params(B_DISCR), seed=9)
    wire.run_until(20.0)
    gaps = wire.periodic_gaps("a", 3.0, 20.0)
    assert len(gaps) > 300
    assert all(low * 0.05 - EPS <= g <= high * 0.05 + EPS for g in gaps)
    # Really jittered, across most of the allowed range.
    assert min(gaps) < (low + 0.02) * 0.05 and max(gaps) > (high - 0.02) * 0.05


# --------------------------------------------------------------------------------------------
# Transmission limits (§6.8.7)
# --------------------------------------------------------------------------------------------


def test_passive_role_waits_for_the_peer() -> None:
    wire = link(params(A_DISCR), params(B_DISCR, passive=True), start=False)
    wire.start("b")
    wire.run_until(10.0)
    assert wire.sent_by("b") == []
    wire.start("a")
    wire.run_until(15.0)
    first_b = wire.sent_by("b")[0]
    assert first_b.time == pytest.approx(10.0 + wire.latency)  # answers on hearing A
    assert wire.sessions["a"].state is UP and wire.sessions["b"].state is UP
    # A dies: B times out, forgets A's discriminator and falls silent again.
    wire.dead.add("a")
    wire.run_until(25.0)
    assert wire.sessions["b"].state is DOWN and wire.sessions["b"].remote_discriminator == 0
    last = wire.sent_by("b")[-1].time
    assert wire.sent_by("b", last + EPS) == [] and wire.sessions["b"].next_deadline() is None


def test_remote_required_min_rx_zero_stops_periodic_packets() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    assert sends(session.received(1.0, peer(required_min_rx_us=0))) == []
    assert session.next_tx is None
    (final,) = sends(session.received(1.1, peer(required_min_rx_us=0, poll=True)))
    assert final.final  # a Poll is answered "without respect to ... any other limitations"
    resumed = sends(session.received(1.2, peer()))
    assert len(resumed) == 1 and session.next_tx is not None


def test_remote_demand_mode_stops_periodic_packets_except_polls() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    session.received(1.0, peer(demand=True))
    assert session.next_tx is None
    session.set_params(1.0, params(desired_min_tx=0.02))
    _, packet = fire_next_tx(session)
    assert packet.poll
    session.received(1.1, peer(demand=True, final=True))
    assert session.next_tx is None


def test_counters() -> None:
    session = Session(params(), rand=no_jitter)
    bring_up(session)
    assert session.counters.as_dict() == {
        "received": 3,
        "sent": 1,  # the Down at start; the first Up one is due 50 ms after it
        "finals_sent": 0,
        "state_changes": 2,
        "discarded": 0,
        "detection_timeouts": 0,
        "polls_started": 1,
    }


# --------------------------------------------------------------------------------------------
# Demultiplexing (RFC 5880 §6.8.6, RFC 5881 §3)
# --------------------------------------------------------------------------------------------


def test_demux_selects_by_discriminator_then_binding() -> None:
    demux = Demux()
    one = Session(params(A_DISCR))
    two = Session(params(A_DISCR + 1))
    demux.add(one, peer="192.0.2.2", interface="eth0")
    demux.add(two, peer="2001:db8::2", interface=7)
    assert len(demux) == 2
    up_for_two = peer(your_discriminator=A_DISCR + 1)
    assert demux.lookup(up_for_two, source="2001:db8:0::2", interface=7) is two
    assert demux.lookup(up_for_two, source="2001:db8::2", interface=8) is Discard.BINDING
    unknown = peer(your_discriminator=99)
    assert demux.lookup(unknown, source="192.0.2.2", interface="eth0") is Discard.NO_SESSION
    down = peer(state=DOWN, your_discriminator=0)
    assert demux.lookup(down, source="192.0.2.2", interface="eth0") is one
    assert demux.lookup(down, source="192.0.2.3", interface="eth0") is Discard.NO_SESSION
    assert demux.lookup(down, source="fe80::1%eth0", interface=7) is Discard.NO_SESSION
    up_without = dataclasses.replace(peer(), your_discriminator=0)
    lookup = demux.lookup(up_without, source="192.0.2.2", interface="eth0")
    assert lookup is Discard.YOUR_DISCRIMINATOR
    demux.remove(one)
    assert demux.lookup(down, source="192.0.2.2", interface="eth0") is Discard.NO_SESSION


def test_demux_ignores_ipv6_zone() -> None:
    demux = Demux()
    session = Session(params())
    demux.add(session, peer="fe80::2%eth0", interface="eth0")
    down = peer(state=DOWN, your_discriminator=0)
    assert demux.lookup(down, source="fe80::2", interface="eth0") is session


def test_demux_refuses_duplicates_and_allocates_unused() -> None:
    demux = Demux()
    demux.add(Session(params(A_DISCR)), peer="192.0.2.2", interface="eth0")
    with pytest.raises(ValueError, match="discriminator"):
        demux.add(Session(params(A_DISCR)), peer="192.0.2.3", interface="eth0")
    with pytest.raises(ValueError, match="already exists"):
        demux.add(Session(params(A_DISCR + 1)), peer="192.0.2.2", interface="eth0")

    class Repeats(random.Random):
        """Offers the taken discriminator first."""

        def __init__(self) -> None:
            super().__init__(0)
            self.values = iter([A_DISCR, 42])

        def randint(self, a: int, b: int) -> int:
            return next(self.values)

    assert demux.allocate_discriminator(Repeats()) == 42
    assert 1 <= demux.allocate_discriminator() <= 0xFFFF_FFFF
