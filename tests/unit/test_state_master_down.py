"""``StateMachine.master_down``: the Master_Down_Timer ended at once (the bundled daemon's
``bfd_takeover``, the VRRP-BFD drafts' critical-path session going Down)."""

from __future__ import annotations

import pytest

from tests.unit.test_state import PEER, VIP, FakeClock, make
from vrrp.state import (
    AddVips,
    BecomeMaster,
    Reason,
    SendAdvert,
    SendGratuitous,
    State,
    StateMachine,
)


def _backup_hearing_a_master(clock: FakeClock, **kwargs: object) -> StateMachine:
    machine = make(**kwargs)  # type: ignore[arg-type]
    machine.startup(clock.now)
    assert machine.advert_received(clock.advance(0.5), 200, 100, PEER) == []
    return machine


def test_a_backup_takes_over_at_once_as_if_the_timer_fired() -> None:
    clock = FakeClock()
    machine = _backup_hearing_a_master(clock)
    assert machine.master_down_timer == pytest.approx(clock.now + machine.master_down_interval)
    now = clock.advance(0.2)  # far below Master_Down_Interval (3.609 s)
    assert machine.master_down(now) == [
        SendAdvert(100, 100),
        AddVips((VIP,)),
        SendGratuitous((VIP,)),
        BecomeMaster(Reason.MASTER_DOWN),
    ]
    assert machine.state is State.MASTER
    assert machine.master_down_timer is None
    # The Adver_Timer runs from the takeover, as after §6.4.2's timer firing.
    assert machine.next_deadline() == now + 1.0


@pytest.mark.parametrize(
    "kwargs", [{"preempt": False}, {"preempt_delay": 30.0}], ids=["nopreempt", "preempt_delay"]
)
def test_preemption_settings_do_not_hold_it_back(kwargs: dict[str, object]) -> None:
    """Preempt_Mode and preempt_delay concern a lower-priority Master that is alive; the timer
    firing ignores them, and so does its early end."""
    clock = FakeClock()
    machine = _backup_hearing_a_master(clock, **kwargs)
    actions = machine.master_down(clock.advance(0.1))
    assert actions[-1] == BecomeMaster(Reason.MASTER_DOWN)


def test_a_no_op_in_every_other_state() -> None:
    clock = FakeClock()
    machine = make()
    assert machine.master_down(clock.now) == []  # Initialize
    assert machine.state is State.INITIALIZE
    owner = make(priority=255)
    owner.startup(clock.now)
    deadline = owner.next_deadline()
    assert owner.master_down(clock.advance(0.1)) == []  # Master
    assert owner.state is State.MASTER and owner.next_deadline() == deadline
    machine.startup(clock.now)
    machine.master_down(clock.advance(0.1))
    assert machine.state is State.MASTER
    assert machine.master_down(clock.advance(0.1)) == []  # twice: the second does nothing
    machine.shutdown(clock.now)
    assert machine.master_down(clock.advance(0.1)) == []
