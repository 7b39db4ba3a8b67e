"""Periodic events judged against the host's stalls, period by period (``judge_periods``).

The rule under test: a stall can only make an event late, by at most its own length. A period
out of bounds by more than the stalls before its events could have moved it fails; one the
stalls could have moved across a bound, either way, is inconclusive; the rest stand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from lab.conformance.verdict import Findings, combine
from lab.stalls import RUNQUEUE_PERIOD, Stall, StallWitness, held_back, judge_periods

ADV = 0.100
TOL = ADV / 5
DRIFT = 0.005
T0 = 1_000_000.0


def steady(n: int = 31, late: dict[int, float] | None = None, period: float = ADV) -> list[float]:
    """``n`` events every ``period`` from T0, event k sent ``late[k]`` seconds late and the
    schedule re-armed from there (as keepalived does)."""
    times, at = [], T0
    for k in range(n):
        at += (late or {}).get(k, 0.0)
        times.append(at)
        at += period
    return times


def held_by(stalls: Sequence[Stall]) -> Callable[[float, float], float]:
    return lambda since, at: held_back(stalls, at, since, lag=RUNQUEUE_PERIOD)


def test_only_the_run_of_stalls_reaching_the_event_held_it_back() -> None:
    at = 10.100
    assert held_back([], at, 10.0) == 0.0
    # A stall that ended well before the event held back something else.
    assert held_back([Stall(10.020, 10.050, "cpu0")], at, 10.0) == 0.0
    # One still on when the event came held it back from its start.
    assert held_back([Stall(10.080, 10.0995, "cpu0")], at, 10.0) == pytest.approx(0.020)
    # Stalls chained by gaps under the probes' floor are one run; seen twice, counted once.
    chain = [
        Stall(10.060, 10.070, "cpu1"),
        Stall(10.071, 10.090, "cpu0"),
        Stall(10.075, 10.085, "fifo1"),
        Stall(10.091, 10.099, "cpu0"),
    ]
    assert held_back(chain, at, 10.0) == pytest.approx(0.040)
    # No further back than the event was due.
    assert held_back(chain, at, 10.080) == pytest.approx(0.020)
    # The run-queue probe reports a wait up to one of its periods after it ended, and so the
    # wait may have begun that much before its reported start.
    wait = Stall(10.088, 10.104, "runqueue")
    assert held_back([wait], at, 10.0, lag=RUNQUEUE_PERIOD) == pytest.approx(
        at - 10.088 + RUNQUEUE_PERIOD
    )
    assert held_back([Stall(10.106, 10.120, "runqueue")], at, 10.0, lag=RUNQUEUE_PERIOD) == 0.0


def test_a_clean_train_passes() -> None:
    judged = judge_periods(steady(), ADV, TOL, DRIFT, held_by([]))
    assert judged.outcome == "pass", judged


def test_a_period_out_of_bounds_with_nothing_around_it_fails() -> None:
    # The CI run that was red: one period 20.45 ms long, no stall seen near it.
    times = steady(late={12: 0.02045})
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([]))
    assert judged.outcome == "fail" and "period 12" in judged.reason, judged


def test_a_period_a_stall_under_the_tolerance_could_explain_is_inconclusive() -> None:
    # A 19.9 ms wait for a CPU (under the 20 ms tolerance) and the sender's own 0.55 ms.
    times = steady(late={12: 0.02045})
    wait = Stall(times[12] - 0.0199, times[12], "runqueue")
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([wait]))
    assert judged.outcome == "inconclusive", judged
    assert judged.stretch is not None and judged.stretch[0] <= wait.start <= judged.stretch[1]


def test_a_stall_too_short_to_explain_a_late_period_does_not_save_it() -> None:
    times = steady(late={12: 0.035})
    blip = Stall(times[12] - 0.003, times[12], "cpu0")
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([blip]))
    assert judged.outcome == "fail", judged


def test_a_stall_elsewhere_does_not_explain_a_late_period() -> None:
    times = steady(late={12: 0.030})
    far = Stall(times[3] - 0.040, times[3] - 0.001, "cpu1")  # 39 ms, but ten periods earlier
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([far]))
    assert judged.outcome == "fail" and "period 12" in judged.reason, judged


def test_a_stall_that_could_hide_a_short_period_makes_a_passing_train_inconclusive() -> None:
    # Nothing out of bounds was measured, but a 30 ms stall before event 8 could have made a
    # period of 75 ms (out of bounds) look like 105 ms: the train says nothing for sure.
    times = steady(late={8: 0.005})
    stall = Stall(times[8] - 0.030, times[8], "cpu0")
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([stall]))
    assert judged.outcome == "inconclusive", judged


def test_small_stalls_leave_a_passing_train_passing() -> None:
    times = steady(late={8: 0.004, 20: 0.003})
    stalls = [
        Stall(times[8] - 0.004, times[8], "runqueue"),
        Stall(times[20] - 0.003, times[20], "cpu1"),
    ]
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by(stalls))
    assert judged.outcome == "pass", judged


def test_a_mean_off_by_a_centisecond_fails_though_every_period_is_within_the_tolerance() -> None:
    times = steady(period=ADV + 0.010)
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by([]))
    assert judged.outcome == "fail" and "mean" in judged.reason, judged


def test_stalls_that_add_up_to_a_mean_shift_make_it_inconclusive() -> None:
    # A re-arming sender carries every delay into the rest of the train: 30 waits of 6 ms
    # move its mean by 6 ms, past the half-centisecond bound, though each period passes.
    times = steady(late={k: 0.006 for k in range(1, 31)})
    stalls = [Stall(t - 0.006, t, "runqueue") for t in times[1:]]
    assert judge_periods(times, ADV, TOL, DRIFT, held_by([])).outcome == "fail"
    judged = judge_periods(times, ADV, TOL, DRIFT, held_by(stalls))
    assert judged.outcome == "inconclusive" and "mean" in judged.reason, judged


def test_findings_periods_records_a_pass_a_fail_and_an_inconclusive_case() -> None:
    witness = StallWitness(host=False)  # never started: only what the test adds
    clean = Findings(4, witness)
    assert clean.periods(steady(), ADV, TOL, DRIFT, what="p", passed="ok", failed="bad")
    assert combine("T03", "x", [clean]).outcome == "pass"

    late = steady(late={12: 0.02045})
    bad = Findings(4, witness)
    assert bad.periods(late, ADV, TOL, DRIFT, what="p", passed="ok", failed="bad") is False
    verdict = combine("T03", "x", [bad])
    assert verdict.outcome == "fail" and "period 12" in verdict.reason, verdict

    witness.add(Stall(late[12] - 0.0199, late[12], "runqueue"))
    spoiled = Findings(6, witness)
    assert spoiled.periods(late, ADV, TOL, DRIFT, what="p", passed="ok", failed="bad") is None
    verdict = combine("T03", "x", [spoiled])
    assert verdict.outcome == "inconclusive", verdict
    assert verdict.stalls["spoiled"][0]["source"] == "runqueue"
    with pytest.raises(Exception, match="could move it across") as raised:
        verdict.raise_if_inconclusive()
    assert "19.9 ms stall (runqueue)" in str(raised.value)


def test_a_self_stall_does_not_weigh_on_times_taken_from_the_wire() -> None:
    late = steady(late={12: 0.02045})
    witness = StallWitness(host=False)
    witness.add(Stall(late[12] - 0.030, late[12], "self"))  # the measuring process, not the IUT
    findings = Findings(4, witness)
    assert findings.periods(late, ADV, TOL, DRIFT, what="p", passed="ok", failed="bad") is False


# -- reactions: a reply due at once (F03, RFC 9568's F06) or not at once (RFC 5798's F06) ----


def judged_replies(pairs: list[tuple[float, float]], stalls: list[Stall], prompt: bool) -> str:
    witness = StallWitness(host=False)
    for stall in stalls:
        witness.add(stall)
    findings = Findings(4, witness)
    findings.replies(pairs, 0.025, prompt=prompt, what="reply", passed="ok", failed="bad")
    return combine("F06", "x", [findings]).outcome


def test_prompt_replies_pass_and_a_late_one_fails() -> None:
    pairs = [(T0, T0 + 0.001), (T0 + 1, T0 + 1.002)]
    assert judged_replies(pairs, [], prompt=True) == "pass"
    late = [*pairs, (T0 + 2, T0 + 2.043)]  # the 43 ms answer a CI run once saw
    assert judged_replies(late, [], prompt=True) == "fail"


def test_a_late_reply_a_stall_was_still_holding_is_inconclusive() -> None:
    late = [(T0, T0 + 0.001), (T0 + 2, T0 + 2.043)]
    held = Stall(T0 + 2.005, T0 + 2.042, "cpu1")  # 37 ms, on until just before the reply
    assert judged_replies(late, [held], prompt=True) == "inconclusive"
    # The same stall, over before the reply went out, held back nothing: the fail stands.
    over = Stall(T0 + 2.001, T0 + 2.020, "cpu1")
    assert judged_replies(late, [over], prompt=True) == "fail"


def test_a_reply_that_must_not_come_at_once() -> None:
    on_schedule = [(T0, T0 + 0.050), (T0 + 1, T0 + 1.049)]
    assert judged_replies(on_schedule, [], prompt=False) == "pass"
    assert judged_replies([(T0, T0 + 0.002)], [], prompt=False) == "fail"
    # A stall still on at the scheduled advert could have hidden an answer at once.
    hiding = Stall(T0 + 0.010, T0 + 0.049, "runqueue")
    assert judged_replies(on_schedule, [hiding], prompt=False) == "inconclusive"
