"""A loss planted before the fault is reported as unexplained loss, outside the failover.

The fabric drops the observer's probes to the VIP for 100 probes (judged by the prober's own
sequence numbers, not the wall clock) once ha_first serves; the fault comes after the service
is steady again. The report must list that loss as its own interval, outside the failover's
window, with a probe count inside the bounds the nft transactions' timing allows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import clock
from lab.accounting import LATE
from lab.runner import RunReport, ScenarioRun, StepResult
from lab.scenario import load_scenario
from lab.stalls import Inconclusive, judge
from lab.wait import wait_until

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
TABLE = "lab_planted_loss"
PLANTED = 100


def _nft(run: ScenarioRun, ruleset: str) -> tuple[float, float]:
    """Load ``ruleset`` in the fabric; return (before nft started, after it exited)."""
    before = clock.now()
    run.lab.fabric.run(["nft", "-f", "-"], input=ruleset)
    return before, clock.now()


def _plant(run: ScenarioRun) -> dict[str, float]:
    """Drop the probes to the VIP in the fabric until the prober has sent PLANTED of them."""
    assert run.probes is not None and run.vip is not None
    added = _nft(
        run,
        f"table bridge {TABLE} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority -10; policy accept;\n"
        f"    ether type ip ip daddr {run.vip} udp dport 50051 drop\n"
        "  }\n"
        "}\n",
    )
    probes = run.probes

    def sent_since() -> int:
        return sum(1 for p in probes.results().items if p.sent >= added[1])

    # Waiting on the prober's own count makes the drop cover PLANTED probes whatever the load.
    wait_until(
        sent_since,
        accept=lambda n: n >= PLANTED,
        timeout=2.0,
        what=f"the prober to send {PLANTED} probes into the planted drop",
    )
    removed = _nft(run, f"delete table bridge {TABLE}\n")
    return {"add_lo": added[0], "add_hi": added[1], "del_lo": removed[0], "del_hi": removed[1]}


def test_planted_loss_before_the_fault_is_unexplained() -> None:
    scenario = load_scenario(REPO / "scenarios" / "short-timers.yaml")
    planted: dict[str, float] = {}
    holder: dict[str, ScenarioRun] = {}

    def progress(result: StepResult) -> None:
        # Right after ha_first is seen serving, before the fault step starts.
        if result.name.startswith("expect served_by=ha_first") and not planted:
            planted.update(_plant(holder["run"]))

    run = ScenarioRun(scenario, impl="bundled", progress=progress)
    holder["run"] = run
    try:
        report: RunReport = run.execute()
    finally:
        leftover = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    assert TABLE not in leftover.stdout, "the planted table leaked into the root namespace"
    assert planted, f"the plant never ran; steps: {[s.name for s in report.steps]}"
    assert report.ok, [(s.name, s.detail) for s in report.steps if not s.ok]

    acc = report.accounting
    assert acc is not None
    fault_at = report.failovers[0].at
    before_fault = [i for i in acc.unexplained if i.end < fault_at]
    # Any other loss before the fault the lab did not make. Only a host stall may excuse one
    # (a reply delayed past LATE by a starved prober or responder), and then the run says
    # nothing either way: inconclusive, re-run. Without a stall it is a false loss: red.
    elsewhere = [
        i for i in before_fault if i.end < planted["add_lo"] or i.start > planted["del_hi"]
    ]
    for other in elsewhere:
        window = (other.start - LATE, other.end + LATE)
        stall = judge(run.witness.stalls(), *window, LATE / 5)
        seen = other.as_json(report.started)
        assert stall is not None, (
            f"an unexplained loss the lab did not plant, no host stall: {seen}"
        )
        raise Inconclusive(f"an unplanted loss {seen['probes']} probes", stall, window, LATE / 5)
    assert len(before_fault) == 1, (
        f"awaited one unexplained loss before the fault at {fault_at}; "
        f"saw {[i.as_json(report.started) for i in acc.unexplained]}"
    )
    loss = before_fault[0]
    probes = run.probes.results().items if run.probes is not None else []
    # Sure to be dropped: sent after the rule was certainly in and before its removal began;
    # possibly dropped: sent between the first nft's start and the second's exit.
    sure = [p.seq for p in probes if planted["add_hi"] <= p.sent <= planted["del_lo"]]
    maybe = [p.seq for p in probes if planted["add_lo"] <= p.sent <= planted["del_hi"]]
    assert len(sure) >= PLANTED
    assert len(sure) <= loss.probes <= len(maybe), (
        f"planted loss of {len(sure)}–{len(maybe)} probes (seq {sure[0]}–{maybe[-1]}); "
        f"reported {loss.probes} (seq {loss.first_seq}–{loss.last_seq})"
    )
    assert loss.first_seq >= maybe[0] and loss.last_seq <= maybe[-1]
    assert loss.counts["unanswered"] == loss.probes
    # The failover's own loss is in its window, not in the planted interval.
    assert [i.window for i in acc.intervals if i.start >= fault_at - 0.01] == ["failover 1"]
    # The JSON carries it.
    [entry] = [
        e
        for e in report.as_json()["unexplained_loss"]
        if e["end_ms"] < (fault_at - report.started) * 1000
    ]
    assert entry["probes"] == loss.probes and entry["window"] is None
    # The fault step waited for the service to be steady again after the planted loss.
    fault_step = next(s for s in report.steps if "host dies" in s.name)
    assert "steady for" in fault_step.detail
    assert fault_at - loss.end >= 0.3
