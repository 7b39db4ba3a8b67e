"""Unit tests of lab.accounting: every probe accounted for, loss placed in its window."""

from __future__ import annotations

from lab.accounting import (
    Window,
    account,
    classify,
    failover_window,
    steady_deadline,
    steady_for,
    steady_window,
)
from lab.probe import ProbeResult
from lab.timeline import TimelineEvent

RATE = 1000.0


def probes(n: int, lost: set[int] = frozenset(), *, who: str = "a", t0: float = 100.0, **kw):
    """n probes at 1,000/s from t0; those in ``lost`` unanswered, the others answered in 0.2 ms.

    ``late`` (a set) answers those after 0.3 s; ``errors`` (a set) fails their sends;
    ``switch`` (a seq) has ``b`` answer from there on.
    """
    late, errors, switch = kw.get("late", set()), kw.get("errors", set()), kw.get("switch")
    out = []
    for seq in range(n):
        sent = t0 + seq / RATE
        name = "b" if switch is not None and seq >= switch else who
        if seq in errors:
            out.append(ProbeResult(seq, sent, error="EAGAIN"))
        elif seq in lost:
            out.append(ProbeResult(seq, sent))
        elif seq in late:
            out.append(ProbeResult(seq, sent, sent + 0.3, name))
        else:
            out.append(ProbeResult(seq, sent, sent + 0.0002, name))
    return out


def at(seq: int, t0: float = 100.0) -> float:
    return t0 + seq / RATE


def test_all_served_has_no_loss() -> None:
    acc = account(probes(1000, switch=600), [])
    assert acc.sent == 1000 and acc.served == {"a": 600, "b": 400}
    assert sum(acc.lost.values()) == 0 and acc.intervals == [] and acc.unexplained == []
    assert acc.service_up == at(0)


def test_classify_kinds() -> None:
    assert classify(ProbeResult(1, 0.0, 0.0005, "a")) == "served"
    assert classify(ProbeResult(1, 0.0, 0.2, "a")) == "late"
    assert classify(ProbeResult(1, 0.0)) == "unanswered"
    assert classify(ProbeResult(1, 0.0, error="EHOSTUNREACH")) == "send_error"


def test_planted_loss_outside_a_window_is_unexplained_with_its_events() -> None:
    planted = set(range(300, 400))
    fault = Window("failover 1", at(700), at(900))
    events = [
        TimelineEvent(at(350), "capture", "garp", "a garp"),
        TimelineEvent(at(350), "probe", "outage", "left out"),
        TimelineEvent(at(600), "capture", "advert", "outside the interval"),
    ]
    acc = account(probes(1000, planted | set(range(700, 800))), [fault], events)
    [planted_loss] = acc.unexplained
    assert (planted_loss.first_seq, planted_loss.last_seq, planted_loss.probes) == (300, 399, 100)
    assert planted_loss.start == at(300) and planted_loss.end == at(399)
    assert [e.detail for e in planted_loss.events] == ["a garp"]
    [inside] = acc.in_window("failover 1")
    assert inside.probes == 100
    assert acc.sent == sum(acc.served.values()) + sum(acc.lost.values())


def test_loss_between_faults_and_after_the_last_one() -> None:
    lost = set(range(100, 150)) | set(range(300, 320)) | set(range(500, 550)) | {900, 901}
    windows = [Window("failover 1", at(95), at(151)), Window("failover 2", at(495), at(551))]
    acc = account(probes(1000, lost), windows)
    assert [(i.window, i.probes) for i in acc.intervals] == [
        ("failover 1", 50),
        (None, 20),
        ("failover 2", 50),
        (None, 2),
    ]
    assert [i.first_seq for i in acc.unexplained] == [300, 900]


def test_failover_cannot_hide_a_loss_that_began_before_the_fault() -> None:
    # Lost from seq 400 on; the fault came at 500: the first 100 are not the fault's.
    acc = account(
        probes(1000, set(range(400, 700))),
        [failover_window("failover 1", at(500), at(700), at(1000))],
    )
    before, during = acc.intervals
    assert before.window is None and (before.first_seq, before.probes) == (400, 90)
    assert during.window == "failover 1" and during.first_seq == 490


def test_startup_queued_and_rejected_probes_are_startup_not_served() -> None:
    # The picture: 256 probes held in the ARP queue and answered late, then EAGAIN,
    # then the master (MASTER at seq 350) serves.
    acc = account(
        probes(1000, late=set(range(256)), errors=set(range(256, 346))),
        [],
        first_master=at(350),
    )
    assert acc.service_up == at(350)
    [startup] = acc.intervals
    assert startup.window == "startup" and startup.counts == {"late": 256, "send_error": 90}
    assert acc.late_by == {"a": 256} and acc.unexplained == []
    # Probes 346..349 were served before the MASTER notify arrived: served, in the startup.
    assert acc.served["a"] == 1000 - 346


def test_skipped_sequence_numbers_are_counted_apart() -> None:
    recs = [p for p in probes(100, set(range(40, 60))) if not 45 <= p.seq < 50]
    acc = account(recs, [])
    [gap] = acc.unexplained
    assert gap.probes == 15 and gap.skipped == 5 and acc.skipped == 5


def test_json_carries_counts_and_events() -> None:
    acc = account(probes(100, set(range(10, 20))), [], [TimelineEvent(at(15), "s", "k", "d")])
    out = acc.as_json(t0=100.0)
    [interval] = out["loss_intervals"]
    assert interval["probes"] == 10 and interval["unanswered"] == 10
    assert interval["start_ms"] == 10.0 and interval["events"][0]["detail"] == "d"
    assert out["served"] == {"a": 90} and out["lost"]["unanswered"] == 10


def test_steady_for_measures_the_streak_of_decided_probes() -> None:
    recs = probes(1000, set(range(100, 200)))
    now = at(999) + 0.0005
    held, why = steady_for(recs, now)
    # Served from seq 200; decided up to now - 0.1 s.
    assert abs(held - (now - 0.1 - at(200))) < 1e-9 and "probe 199" in why


def test_steady_for_ignores_in_flight_but_not_decided_loss() -> None:
    recs = probes(1000, {990, 991})  # sent 9 ms ago: in flight
    held, _ = steady_for(recs, at(999) + 0.0005)
    assert held > 0.8
    recs = probes(1000, {850})  # sent 150 ms ago: lost
    held, why = steady_for(recs, at(999) + 0.0005)
    assert held < 0.05 and "850" in why
    assert steady_for([], 1.0) == (0.0, "no probe served yet")


def test_steady_window_and_deadline_follow_the_timers() -> None:
    assert abs(steady_window([0.1, 0.1]) - 0.3) < 1e-9
    assert steady_window([1.0, 0.5]) == 3.0
    assert steady_window([0.02]) == 0.2
    assert steady_deadline(0.3, [0.1]) > 0.3 + 1.0


def test_fault_steps_take_a_steadiness_window_and_other_steps_do_not() -> None:
    import pytest
    from pydantic import ValidationError

    from lab.steps import Step

    assert Step.model_validate({"host-down": "ha_first", "steady": 0.5}).steady == 0.5
    assert Step.model_validate({"stop": "ha_first", "steady": False}).steady is False
    assert Step.model_validate({"expect": {"steady": 0.3, "within": 2}}).expect.kind == "steady"
    for bad in (
        {"host-down": "ha_first", "steady": True},
        {"host-down": "ha_first", "steady": 0},
        {"observe": 1, "steady": 0.5},
    ):
        with pytest.raises(ValidationError, match="steady"):
            Step.model_validate(bad)


def test_a_service_that_never_came_up_is_startup_only_until_the_first_fault() -> None:
    acc = account(probes(100, set(range(100))), [Window("failover 1", at(60), at(70))])
    assert acc.service_up is None
    assert [(i.window, i.probes) for i in acc.intervals] == [
        ("startup", 60),
        ("failover 1", 11),
        (None, 29),
    ]


def test_the_steady_deadline_waits_for_the_second_garp_batch_with_a_vmac() -> None:
    # A VMAC answered back by the old master is repaired by the second GARP batch only.
    assert steady_deadline(0.3, [0.1], regarp=5.0) == steady_deadline(0.3, [0.1]) + 5.0
