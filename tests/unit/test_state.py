"""Unit tests of the pure VRRP state machine (vrrp/state.py): no privileges, no sockets, no sleeps.

Each §6.4 transition has its own test, named after the RFC clause it covers. A hypothesis
stateful test then runs two or three machines over a perfect fake network and checks the
election invariants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from vrrp.state import (
    Action,
    AddVips,
    BecomeBackup,
    BecomeInitialize,
    BecomeMaster,
    DiscardAdvert,
    DiscardReason,
    Params,
    Reason,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    State,
    StateMachine,
)

VIP = "192.0.2.100"
ME = "192.0.2.10"
PEER = "192.0.2.20"  # numerically above ME
LOW_PEER = "192.0.2.9"  # numerically below ME, but above it as a string: "192.0.2.9" > "192.0.2.10"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        """Move forward and return the new time."""
        self.now += seconds
        return self.now


def make(
    priority: int = 100,
    interval_cs: int = 100,
    *,
    primary_ip: str = ME,
    vips: tuple[str, ...] = (VIP,),
    **kwargs: object,
) -> StateMachine:
    """A machine with test defaults."""
    return StateMachine(
        Params(
            vrid=51,
            priority=priority,
            primary_ip=primary_ip,
            vips=vips,
            advert_interval_cs=interval_cs,
            **kwargs,  # type: ignore[arg-type]
        )
    )


def run_until(machine: StateMachine, clock: FakeClock, until: float) -> list[Action]:
    """Drive ``tick`` at every deadline up to ``until``, like the daemon's loop would."""
    actions: list[Action] = []
    while (deadline := machine.next_deadline()) is not None and deadline <= until:
        clock.now = deadline
        actions += machine.tick(deadline)
    clock.now = until
    return actions


def backup(
    clock: FakeClock, priority: int = 100, interval_cs: int = 100, **kw: object
) -> StateMachine:
    """A started non-owner machine, which §6.4.1 puts in BACKUP."""
    machine = make(priority, interval_cs, **kw)
    assert machine.startup(clock.now) == [BecomeBackup(Reason.STARTUP)]
    return machine


def master(
    clock: FakeClock, priority: int = 100, interval_cs: int = 100, **kw: object
) -> StateMachine:
    """A machine brought to MASTER through its Master_Down_Timer."""
    machine = backup(clock, priority, interval_cs, **kw)
    clock.now = machine.next_deadline()
    machine.tick(clock.now)
    assert machine.state is State.MASTER
    return machine


# ---- §6.1 timers (rows T01, T02) -------------------------------------------------------------


def test_rfc5798_6_1_timers_priority_100_interval_1s() -> None:
    machine = make(100, 100)
    assert machine.skew_time == 0.609375
    assert machine.master_down_interval == 3.609375
    assert machine.master_adver_interval == 1.0


def test_rfc5798_6_1_timers_priority_100_interval_100ms() -> None:
    machine = make(100, 10)
    assert machine.skew_time == pytest.approx(0.0609375)
    assert machine.master_down_interval == pytest.approx(0.3609375)


def test_rfc5798_6_1_timers_owner_and_lowest_priority() -> None:
    assert make(255, 100).skew_time == pytest.approx(1 / 256)
    assert make(1, 100).skew_time == pytest.approx(255 / 256)


def test_rfc3768_6_1_v2_skew_is_seconds_whatever_the_interval() -> None:
    machine = make(100, 300, version=2)
    assert machine.skew_time == 0.609375
    assert machine.master_down_interval == 9.609375
    # Unlike v3, the skew does not scale with the interval.
    assert make(100, 100, version=2).skew_time == 0.609375


# ---- §6.4.1 Initialize ------------------------------------------------------------------------


def test_rfc5798_6_4_1_initialize_owner_startup_becomes_master() -> None:
    clock = FakeClock()
    machine = make(255)
    actions = machine.startup(clock.now)
    assert actions == [
        SendAdvert(255, 100),
        AddVips((VIP,)),
        SendGratuitous((VIP,)),
        BecomeMaster(Reason.OWNER_STARTUP),
    ]
    assert machine.state is State.MASTER
    # "Set the Adver_Timer to Advertisement_Interval".
    assert machine.next_deadline() == clock.now + 1.0
    assert machine.answers_arp and machine.accepts_vip_traffic


def test_rfc5798_6_4_1_initialize_startup_becomes_backup_with_master_down_timer() -> None:
    clock = FakeClock()
    machine = make(100)
    assert machine.startup(clock.now) == [BecomeBackup(Reason.STARTUP)]
    assert machine.state is State.BACKUP
    assert machine.master_adver_interval == 1.0
    assert machine.next_deadline() == clock.now + 3.609375
    assert not machine.answers_arp


def test_rfc5798_6_4_1_initialize_ignores_adverts_and_timers() -> None:
    clock = FakeClock()
    machine = make(100)
    assert machine.advert_received(clock.now, 200, 100, PEER) == [
        DiscardAdvert(DiscardReason.NOT_RUNNING, PEER, 200)
    ]
    assert machine.tick(clock.advance(100)) == []
    assert machine.next_deadline() is None
    assert machine.shutdown(clock.now) == []


def test_startup_twice_is_a_no_op() -> None:
    clock = FakeClock()
    machine = backup(clock)
    assert machine.startup(clock.now) == []


# ---- §6.4.2 Backup ------------------------------------------------------------------------------


def test_rfc5798_6_4_2_backup_shutdown_cancels_master_down_timer() -> None:
    clock = FakeClock()
    machine = backup(clock)
    assert machine.shutdown(clock.now) == [BecomeInitialize(Reason.SHUTDOWN)]
    assert machine.state is State.INITIALIZE
    assert machine.next_deadline() is None


def test_rfc5798_6_4_2_backup_master_down_timer_fires_becomes_master() -> None:
    clock = FakeClock()
    machine = backup(clock)
    start = clock.now
    assert machine.tick(start + 3.6) == []  # early: nothing
    actions = run_until(machine, clock, start + 3.609375)
    assert actions == [
        SendAdvert(100, 100),
        AddVips((VIP,)),
        SendGratuitous((VIP,)),
        BecomeMaster(Reason.MASTER_DOWN_TIMER),
    ]
    assert machine.state is State.MASTER
    assert machine.next_deadline() == start + 3.609375 + 1.0


def test_rfc5798_6_4_2_backup_priority_zero_sets_master_down_timer_to_skew_time() -> None:
    """Row F02: after a priority-0 advert the Backup takes over after Skew_Time alone."""
    clock = FakeClock()
    machine = backup(clock)
    t = clock.advance(1.0)
    assert machine.advert_received(t, 0, 100, PEER) == []
    assert machine.next_deadline() == t + 0.609375
    actions = run_until(machine, clock, t + 0.609375)
    assert BecomeMaster(Reason.MASTER_DOWN_TIMER) in actions


def test_rfc5798_6_4_2_backup_higher_priority_resets_timer_and_adopts_interval() -> None:
    """Row T02 (v3): the Backup adopts the Master's Max Adver Int."""
    clock = FakeClock()
    machine = backup(clock, 100, 100)
    t = clock.advance(2.0)
    assert machine.advert_received(t, 200, 50, PEER) == []
    assert machine.master_adver_interval == 0.5
    # RFC 5798 (455) recomputes Master_Down_Interval but not Skew_Time: the skew stays the one
    # computed for 1 s.
    assert machine.skew_time == 0.609375
    assert machine.next_deadline() == t + 1.5 + 0.609375


def test_rfc9568_6_4_2_backup_adoption_recomputes_skew_time() -> None:
    clock = FakeClock()
    machine = backup(clock, 100, 100, rfc9568=True)
    t = clock.advance(2.0)
    assert machine.advert_received(t, 200, 50, PEER) == []
    assert machine.master_adver_interval == 0.5
    assert machine.skew_time == 0.3046875
    assert machine.next_deadline() == t + 1.5 + 0.3046875


def test_rfc5798_6_4_2_backup_equal_priority_resets_timer() -> None:
    """Equal priority counts as "greater than or equal": the address does not matter here."""
    clock = FakeClock()
    machine = backup(clock, 100, primary_ip=PEER)
    t = clock.advance(3.0)
    assert machine.advert_received(t, 100, 100, ME) == []
    assert machine.next_deadline() == t + 3.609375


def test_rfc5798_6_4_2_backup_lower_priority_preempt_off_resets_timer() -> None:
    """Row F04, preempt off: a lower-priority Master is accepted."""
    clock = FakeClock()
    machine = backup(clock, 200, preempt=False)
    for _ in range(10):
        t = clock.advance(1.0)
        assert machine.advert_received(t, 100, 100, PEER) == []
        assert machine.next_deadline() == t + 3 + 56 / 256
    assert machine.state is State.BACKUP


def test_rfc5798_6_4_2_backup_lower_priority_preempt_on_discards() -> None:
    """Row F04, preempt on: the lower-priority adverts are discarded and the Backup takes over
    one Master_Down_Interval after startup."""
    clock = FakeClock()
    machine = backup(clock, 200)
    start = clock.now
    deadline = machine.next_deadline()
    t = clock.advance(1.0)
    assert machine.advert_received(t, 100, 100, PEER) == [
        DiscardAdvert(DiscardReason.LOWER_PRIORITY, PEER, 100)
    ]
    assert machine.next_deadline() == deadline == start + 3 + 56 / 256
    actions = run_until(machine, clock, deadline)
    assert BecomeMaster(Reason.MASTER_DOWN_TIMER) in actions


def test_rfc5798_6_1_owner_preempts_even_with_preempt_off() -> None:
    clock = FakeClock()
    machine = make(255, preempt=False)
    machine.startup(clock.now)
    # Put the owner in Backup through a (misconfigured) second owner with a higher address.
    t = clock.advance(0.5)
    machine.advert_received(t, 255, 100, PEER)
    assert machine.state is State.BACKUP
    # A lower-priority advert does not hold the owner back.
    assert machine.advert_received(clock.advance(0.5), 100, 100, PEER) == [
        DiscardAdvert(DiscardReason.LOWER_PRIORITY, PEER, 100)
    ]


def test_keepalived_preempt_delay_holds_preemption_after_startup() -> None:
    """keepalived's preempt_delay (no RFC): a lower-priority Master is accepted for the first
    preempt_delay seconds after startup; after that the Backup preempts as usual."""
    clock = FakeClock()
    machine = backup(clock, 200, preempt_delay=5.0)
    start = clock.now
    for second in range(1, 5):
        assert machine.advert_received(start + second, 100, 100, PEER) == []
    # The hold is over: adverts are discarded and the timer set at start+4 runs out.
    for second in range(5, 8):
        run_until(machine, clock, start + second)
        assert machine.advert_received(start + second, 100, 100, PEER) == [
            DiscardAdvert(DiscardReason.LOWER_PRIORITY, PEER, 100)
        ]
    actions = run_until(machine, clock, start + 4 + 3 + 56 / 256)
    assert actions[-1] == BecomeMaster(Reason.MASTER_DOWN_TIMER)


def test_keepalived_preempt_delay_restarts_on_a_new_lower_master() -> None:
    clock = FakeClock()
    machine = backup(clock, 200, preempt_delay=5.0)
    t = clock.advance(10.0)
    assert machine.advert_received(t, 250, 100, PEER) == []  # a Master we accept anyway
    # A lower-priority Master appears later: the hold runs from first hearing it.
    assert machine.advert_received(t + 1, 100, 100, LOW_PEER) == []
    assert machine.advert_received(t + 5.5, 100, 100, LOW_PEER) == []
    assert machine.advert_received(t + 6, 100, 100, LOW_PEER) == [
        DiscardAdvert(DiscardReason.LOWER_PRIORITY, LOW_PEER, 100)
    ]


def test_rfc3768_7_1_v2_interval_mismatch_is_discarded() -> None:
    """Row T02 (v2): no adoption; a mismatching interval is discarded, even with priority 0."""
    clock = FakeClock()
    machine = backup(clock, 100, 100, version=2)
    deadline = machine.next_deadline()
    t = clock.advance(1.0)
    for prio in (200, 0):
        assert machine.advert_received(t, prio, 200, PEER) == [
            DiscardAdvert(DiscardReason.INTERVAL_MISMATCH, PEER, prio)
        ]
    assert machine.next_deadline() == deadline
    assert machine.advert_received(t, 200, 100, PEER) == []
    assert machine.next_deadline() == t + 3 + 156 / 256


def test_v3_zero_interval_is_discarded() -> None:
    clock = FakeClock()
    machine = backup(clock)
    assert machine.advert_received(clock.now, 200, 0, PEER) == [
        DiscardAdvert(DiscardReason.ZERO_INTERVAL, PEER, 200)
    ]


def test_own_and_foreign_family_adverts_are_discarded() -> None:
    clock = FakeClock()
    machine = master(clock)
    assert machine.advert_received(clock.now, 100, 100, ME) == [
        DiscardAdvert(DiscardReason.OWN_ADVERT, ME, 100)
    ]
    assert machine.advert_received(clock.now, 200, 100, "2001:db8::1") == [
        DiscardAdvert(DiscardReason.FAMILY_MISMATCH, "2001:db8::1", 200)
    ]
    assert machine.state is State.MASTER


# ---- §6.4.3 Master ------------------------------------------------------------------------------


def test_rfc5798_6_4_3_master_adver_timer_fires_sends_advert_and_restarts() -> None:
    """Row T03: one advert per Advertisement_Interval."""
    clock = FakeClock()
    machine = master(clock, 100, 50)
    start = clock.now
    actions = run_until(machine, clock, start + 2.0)
    assert actions == [SendAdvert(100, 50)] * 4
    assert machine.next_deadline() == pytest.approx(start + 2.5)


def test_rfc5798_6_4_3_master_late_tick_sends_one_advert() -> None:
    clock = FakeClock()
    machine = master(clock)
    t = clock.advance(10.0)  # the daemon was frozen for 10 intervals
    assert machine.tick(t) == [SendAdvert(100, 100)]
    assert machine.next_deadline() == t + 1.0


def test_rfc5798_6_4_3_master_shutdown_sends_priority_zero_and_removes_vips() -> None:
    clock = FakeClock()
    machine = master(clock, 150)
    assert machine.shutdown(clock.now) == [
        SendAdvert(0, 100),
        RemoveVips((VIP,)),
        BecomeInitialize(Reason.SHUTDOWN),
    ]
    assert machine.state is State.INITIALIZE
    assert machine.next_deadline() is None
    assert not machine.answers_arp


def test_rfc5798_6_4_3_master_priority_zero_advert_answered_at_once() -> None:
    """Row F03: reassert at once and reset the Adver_Timer."""
    clock = FakeClock()
    machine = master(clock)
    t = clock.advance(0.3)
    assert machine.advert_received(t, 0, 100, PEER) == [SendAdvert(100, 100)]
    assert machine.next_deadline() == t + 1.0
    assert machine.state is State.MASTER


def test_rfc5798_6_4_3_master_higher_priority_becomes_backup_and_adopts_interval() -> None:
    clock = FakeClock()
    machine = master(clock, 100, 100)
    t = clock.advance(0.2)
    assert machine.advert_received(t, 101, 200, PEER) == [
        RemoveVips((VIP,)),
        BecomeBackup(Reason.HIGHER_PRIORITY),
    ]
    assert machine.state is State.BACKUP
    assert not machine.answers_arp and not machine.accepts_vip_traffic
    # (745)-(760): adopt 2 s, recompute Skew_Time and Master_Down_Interval.
    assert machine.master_adver_interval == 2.0
    assert machine.skew_time == pytest.approx(156 * 2 / 256)
    assert machine.next_deadline() == pytest.approx(t + 6 + 156 * 2 / 256)


def test_rfc5798_6_4_3_master_equal_priority_higher_address_becomes_backup() -> None:
    """Row F05: addresses compare as integers: 192.0.2.20 > 192.0.2.10."""
    clock = FakeClock()
    machine = master(clock)
    assert machine.advert_received(clock.now, 100, 100, PEER) == [
        RemoveVips((VIP,)),
        BecomeBackup(Reason.EQUAL_PRIORITY_HIGHER_IP),
    ]


def test_rfc5798_6_4_3_master_equal_priority_lower_address_discarded() -> None:
    """192.0.2.9 is below 192.0.2.10 as an integer although above it as a string."""
    clock = FakeClock()
    machine = master(clock)
    assert machine.advert_received(clock.now, 100, 100, LOW_PEER) == [
        DiscardAdvert(DiscardReason.LOSING_ADVERT, LOW_PEER, 100)
    ]
    assert machine.state is State.MASTER


def test_rfc5798_6_4_3_equal_priority_ipv6_addresses_compare_as_integers() -> None:
    clock = FakeClock()
    machine = master(clock, primary_ip="2001:db8::2", vips=("2001:db8::100",))
    # "2001:db8::10" < "2001:db8::2" as strings, but 0x10 > 0x2.
    assert machine.advert_received(clock.now, 100, 100, "2001:db8::10") == [
        RemoveVips(("2001:db8::100",)),
        BecomeBackup(Reason.EQUAL_PRIORITY_HIGHER_IP),
    ]


def test_rfc5798_6_4_3_master_lower_priority_discarded() -> None:
    """Row F06 (RFC 5798): the losing advert is discarded and nothing is sent."""
    clock = FakeClock()
    machine = master(clock, 200)
    deadline = machine.next_deadline()
    assert machine.advert_received(clock.now, 100, 100, PEER) == [
        DiscardAdvert(DiscardReason.LOSING_ADVERT, PEER, 100)
    ]
    assert machine.next_deadline() == deadline


def test_rfc9568_6_4_3_master_lower_priority_readvertised_at_once() -> None:
    """Row F06 (RFC 9568): discard, and "Send an ADVERTISEMENT immediately to assert the
    {Active} state"; the Adver_Timer is not reset."""
    clock = FakeClock()
    machine = master(clock, 200, rfc9568=True)
    deadline = machine.next_deadline()
    t = clock.advance(0.4)
    assert machine.advert_received(t, 100, 100, PEER) == [
        DiscardAdvert(DiscardReason.LOSING_ADVERT, PEER, 100),
        SendAdvert(200, 100),
    ]
    assert machine.next_deadline() == deadline


def test_rfc3768_6_4_3_v2_master_yields_without_adopting() -> None:
    clock = FakeClock()
    machine = master(clock, 100, 100, version=2)
    t = clock.now
    assert machine.advert_received(t, 200, 100, PEER)[-1] == BecomeBackup(Reason.HIGHER_PRIORITY)
    assert machine.master_adver_interval == 1.0
    assert machine.next_deadline() == t + 3.609375


# ---- ARP/ND and Accept_Mode (rows A02, A03) ----------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "accept_mode", "expected"),
    [(100, False, False), (100, True, True), (255, False, True), (255, True, True)],
)
def test_rfc5798_6_4_3_accept_mode(priority: int, accept_mode: bool, expected: bool) -> None:
    clock = FakeClock()
    machine = make(priority, accept_mode=accept_mode)
    machine.startup(clock.now)
    run_until(machine, clock, clock.now + 5)
    assert machine.state is State.MASTER
    assert machine.answers_arp
    assert machine.accepts_vip_traffic is expected


def test_rfc5798_6_4_2_backup_never_answers_or_accepts() -> None:
    clock = FakeClock()
    machine = backup(clock, accept_mode=True)
    assert not machine.answers_arp
    assert not machine.accepts_vip_traffic


# ---- reconfiguration -------------------------------------------------------------------------


def test_set_priority_as_master_advertises_at_once() -> None:
    clock = FakeClock()
    machine = master(clock, 200)
    t = clock.advance(0.3)
    assert machine.set_priority(t, 50) == [SendAdvert(50, 100)]
    assert machine.priority == 50
    assert machine.skew_time == pytest.approx(206 / 256)
    assert machine.next_deadline() == t + 1.0


def test_set_priority_as_backup_keeps_the_timer_running() -> None:
    clock = FakeClock()
    machine = backup(clock, 100)
    deadline = machine.next_deadline()
    assert machine.set_priority(clock.now, 150) == []
    assert machine.skew_time == pytest.approx(106 / 256)
    assert machine.next_deadline() == deadline


def test_reconfigure_vips_as_master() -> None:
    clock = FakeClock()
    machine = master(clock)
    new = Params(vrid=51, priority=100, primary_ip=ME, vips=(VIP, "192.0.2.101"))
    assert machine.reconfigure(clock.now, new) == [
        AddVips(("192.0.2.101",)),
        SendGratuitous(("192.0.2.101",)),
    ]
    newer = Params(vrid=51, priority=100, primary_ip=ME, vips=("192.0.2.101",))
    assert machine.reconfigure(clock.now, newer) == [RemoveVips((VIP,))]


def test_reconfigure_rejects_new_vrid() -> None:
    machine = make()
    with pytest.raises(ValueError, match="vrid"):
        machine.reconfigure(0.0, Params(vrid=52, priority=100, primary_ip=ME))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vrid": 0},
        {"priority": 0},
        {"priority": 256},
        {"advert_interval_cs": 0},
        {"advert_interval_cs": 4096},
        {"version": 4},
        {"version": 2, "primary_ip": "2001:db8::1"},
        {"version": 2, "rfc9568": True},
        {"vips": ("2001:db8::1",)},
        {"preempt_delay": -1.0},
    ],
)
def test_params_reject_invalid_values(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"vrid": 1, "priority": 100, "primary_ip": ME}
    with pytest.raises(ValueError):
        Params(**(base | kwargs))  # type: ignore[arg-type]


def test_notify_words() -> None:
    """Later code writes keepalived-style notify lines from these."""
    assert [str(s) for s in State] == ["INITIALIZE", "BACKUP", "MASTER"]
    assert BecomeMaster(Reason.STARTUP).state is State.MASTER
    assert f'INSTANCE "vi" {BecomeBackup(Reason.STARTUP).state} 100' == 'INSTANCE "vi" BACKUP 100'


# ---- hypothesis: routers over a perfect network -------------------------------------------------


@dataclass
class Node:
    """A router on the fake network: its machine plus what the driver would have done."""

    machine: StateMachine
    running: bool = False
    vips_installed: set[str] = field(default_factory=set)
    notified: State = State.INITIALIZE


class Elections(RuleBasedStateMachine):
    """Two or three routers; every advert sent reaches every other router instantly.

    "Changes" are startups, stops, crashes and priority changes; time advances freely between
    them. Once no change has happened for longer than any Master_Down_Interval (plus an advert
    interval for the last word to get round), the election must have settled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[Node] = []
        self.now = 0.0
        self.last_change = 0.0
        self.settle = 0.0

    @initialize(
        version=st.sampled_from([2, 3]),
        priorities=st.lists(st.integers(1, 255), min_size=2, max_size=3),
        data=st.data(),
    )
    def build(self, version: int, priorities: list[int], data: st.DataObject) -> None:
        count = len(priorities)
        if version == 2:
            # v2 discards adverts with a different interval (RFC 3768 §7.1): one for all.
            intervals = [data.draw(st.sampled_from([100, 200]), label="interval")] * count
        else:
            intervals = data.draw(
                st.lists(st.sampled_from([10, 25, 100]), min_size=count, max_size=count),
                label="intervals",
            )
        for index, (priority, interval) in enumerate(zip(priorities, intervals, strict=True)):
            params = Params(
                vrid=7,
                priority=priority,
                primary_ip=f"10.0.0.{index + 1}",
                vips=("10.0.0.100",),
                advert_interval_cs=interval,
                preempt=data.draw(st.booleans(), label=f"preempt{index}"),
                accept_mode=data.draw(st.booleans(), label=f"accept{index}"),
                version=version,
                rfc9568=version == 3 and data.draw(st.booleans(), label=f"rfc9568_{index}"),
            )
            self.nodes.append(Node(StateMachine(params)))
        biggest = max(intervals) / 100
        # Master_Down_Interval < 4 intervals in v3 (skew < one interval) and < 3 intervals + 1 s
        # in v2; one more interval lets the winner's next advert reach a stale Master.
        self.settle = 5 * biggest + 1.0
        for i in range(count):
            self._start(i)

    # -- the fake network -----------------------------------------------------------------

    def _apply(self, index: int, actions: list[Action]) -> None:
        """Execute one router's actions; adverts are delivered to every other running router,
        breadth first, as a perfect shared segment would."""
        queue: list[tuple[int, SendAdvert]] = []
        self._record(index, actions, queue)
        delivered = 0
        while queue:
            sender, advert = queue.pop(0)
            delivered += 1
            assert delivered < 1000, "advert storm"
            src = self.nodes[sender].machine.params.primary_ip
            for j, node in enumerate(self.nodes):
                if j == sender or not node.running:
                    continue
                reply = node.machine.advert_received(
                    self.now, advert.priority, advert.adver_int_cs, src
                )
                self._record(j, reply, queue)

    def _record(
        self, index: int, actions: list[Action], queue: list[tuple[int, SendAdvert]]
    ) -> None:
        """Play the driver: track VIPs and notifications, queue adverts for delivery."""
        node = self.nodes[index]
        for action in actions:
            match action:
                case SendAdvert():
                    queue.append((index, action))
                case AddVips(vips=vips):
                    node.vips_installed |= set(vips)
                case RemoveVips(vips=vips):
                    node.vips_installed -= set(vips)
                case BecomeMaster() | BecomeBackup() | BecomeInitialize():
                    node.notified = action.state

    def _start(self, index: int) -> None:
        node = self.nodes[index]
        node.running = True
        self._apply(index, node.machine.startup(self.now))
        self.last_change = self.now

    def _advance_to(self, target: float) -> None:
        """Fire every timer due up to ``target``, earliest first."""
        while True:
            due = [
                (deadline, i)
                for i, node in enumerate(self.nodes)
                if node.running
                and (deadline := node.machine.next_deadline()) is not None
                and deadline <= target
            ]
            if not due:
                break
            deadline, i = min(due)
            assert deadline >= self.now, "a timer was left in the past"
            self.now = deadline
            actions = self.nodes[i].machine.tick(deadline)
            assert actions, "tick at the deadline must fire the timer"
            self._apply(i, actions)
        self.now = target

    # -- rules --------------------------------------------------------------------------------

    @rule(seconds=st.floats(min_value=0.0, max_value=6.0, allow_nan=False))
    def wait(self, seconds: float) -> None:
        self._advance_to(self.now + seconds)

    @rule()
    def wait_until_settled(self) -> None:
        self._advance_to(max(self.now, self.last_change) + self.settle + 0.01)

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.nodes) - 1), label="node")
        if not self.nodes[index].running:
            self._start(index)

    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        """Graceful stop: a Master sends priority 0 (row F02)."""
        index = data.draw(st.integers(0, len(self.nodes) - 1), label="node")
        node = self.nodes[index]
        if node.running:
            self._apply(index, node.machine.shutdown(self.now))
            node.running = False
            self.last_change = self.now

    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """The host dies: no priority-0 advert; the router restarts later from scratch."""
        index = data.draw(st.integers(0, len(self.nodes) - 1), label="node")
        node = self.nodes[index]
        if node.running:
            self.nodes[index] = Node(StateMachine(node.machine.params))
            self.last_change = self.now

    @rule(data=st.data(), priority=st.integers(1, 255))
    def set_priority(self, data: st.DataObject, priority: int) -> None:
        index = data.draw(st.integers(0, len(self.nodes) - 1), label="node")
        node = self.nodes[index]
        self._apply(index, node.machine.set_priority(self.now, priority))
        self.last_change = self.now

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def backups_never_answer_for_the_vip(self) -> None:
        for node in self.nodes:
            machine = node.machine
            is_master = machine.state is State.MASTER
            assert machine.answers_arp == is_master
            assert not machine.accepts_vip_traffic or is_master
            # The actions the driver executed agree with the state.
            assert node.vips_installed == (set(machine.params.vips) if is_master else set())
            assert node.notified is machine.state

    @invariant()
    def timers_match_the_state(self) -> None:
        for node in self.nodes:
            deadline = node.machine.next_deadline()
            if node.machine.state is State.INITIALIZE:
                assert deadline is None
            else:
                # A Master always has its next advert pending, a Backup its Master_Down_Timer.
                assert deadline is not None and deadline > self.now

    @invariant()
    def one_master_once_quiet(self) -> None:
        if not self.nodes or self.now - self.last_change <= self.settle:
            return
        running = [n.machine for n in self.nodes if n.running]
        masters = [m for m in running if m.state is State.MASTER]
        assert len(masters) <= 1, f"two masters: {masters}"
        if running:
            assert len(masters) == 1, f"no master among {running}"
            leader = masters[0]
            for other in running:
                preempts = other.params.preempt or other.is_owner
                if other is not leader and preempts:
                    # A preempting Backup that outranks the Master would have taken over.
                    assert other.priority <= leader.priority, f"{other} outranks {leader}"


TestElections = Elections.TestCase
TestElections.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
