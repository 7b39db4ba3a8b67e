"""The stability floor (issue 12): hold trials in the sweep file and on the command line, their
verdicts, each implementation's floor from them, its place in the summary, and a CPU-hog trial
running alone. Pure, no privileges."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lab.errors import ScenarioError
from lab.sweep.executor import Executor, TrialProcess
from lab.sweep.floor import stability_floors
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.results import Results
from lab.sweep.spec import HOLD, HOLD_STEP, cell_scenario, load_order, parse_sweep
from lab.sweep.summary import markdown, summarise

LOADS = ("none", "advert-loss 1%", "advert-loss 5%", "cpu-hog")


def hold(
    impl: str, advert: float, load: str, spurious: int = 0, outcome: str = "measured", n: int = 0
) -> TrialRecord:
    """One hold trial of ``impl`` at ``advert`` under ``load``."""
    cell = Cell(impl, HOLD, advert, 100, True, "l2-plain", load)
    return TrialRecord(
        cell=cell,
        trial=n,
        outcome=outcome,  # type: ignore[arg-type]
        started=1.7e9,
        seconds=62.0,
        spurious_transitions=spurious,
        error="lab failed to build" if outcome == "error" else None,
    )


def grid(impl: str, unsteady: dict[tuple[float, str], int]) -> list[TrialRecord]:
    """Hold trials at 1 s down to 10 ms under every load, steady but where ``unsteady`` says."""
    return [
        hold(impl, a, load, unsteady.get((a, load), 0))
        for a in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
        for load in LOADS
    ]


def test_the_floor_is_the_shortest_interval_steady_under_every_load_all_the_way_down():
    records = grid("keepalived", {(0.02, "cpu-hog"): 3, (0.01, "cpu-hog"): 9, (0.01, "none"): 1})
    (floor,) = stability_floors(records)
    assert floor.floor == 0.05
    assert floor.below == (0.02, ("cpu-hog",))
    assert (0.01, "none", 1) in floor.unstable


def test_a_lucky_short_interval_below_an_unsteady_one_is_not_the_floor():
    (floor,) = stability_floors(grid("bundled", {(0.1, "advert-loss 5%"): 1}))
    assert floor.floor == 0.2
    assert floor.below == (0.1, ("advert-loss 5%",))


def test_an_unmeasured_cell_stops_the_walk_and_none_means_unsteady_everywhere():
    errored = hold("frr", 0.1, "cpu-hog", outcome="error", n=1)
    records = [r for r in grid("frr", {}) if r.cell != errored.cell] + [errored]
    (floor,) = stability_floors(records)
    assert floor.floor == 0.2 and floor.unmeasured == ((0.1, "cpu-hog"),)
    assert floor.below == (0.1, ("cpu-hog (unmeasured)",))
    (never,) = stability_floors(grid("frr", {(1.0, "cpu-hog"): 1}))
    assert never.floor is None and never.below == (1.0, ("cpu-hog",))


def test_every_implementation_gets_its_own_floor_and_failover_trials_count_for_none():
    failover = TrialRecord(
        cell=Cell("bundled", "stop", 0.01, 100, True, "l2-plain", "none"),
        trial=0, outcome="measured", started=1.0, seconds=3.0, spurious_transitions=4,
    )  # fmt: skip
    records = [*grid("bundled", {}), *grid("keepalived", {(0.01, "none"): 2}), failover]
    floors = {f.impl: f.floor for f in stability_floors(records)}
    assert floors == {"bundled": 0.01, "keepalived": 0.02}
    assert stability_floors([failover]) == []


def test_a_hold_cell_passes_when_steady_and_the_summary_carries_the_floor():
    records = [hold("bundled", 0.1, "none"), hold("bundled", 0.05, "none", spurious=2)]
    records.append(hold("bundled", 0.02, "none", outcome="error"))
    summary = summarise("floor", records)
    verdicts = {c["advert_int"]: (c["verdict"], c["verdict_reason"]) for c in summary["cells"]}
    assert verdicts[0.1] == ("pass", "steady: no spurious transition in 1 hold(s)")
    assert verdicts[0.05] == ("fail", "2 spurious transition(s) in 1 hold(s)")
    assert verdicts[0.02][0] == "error"
    (floor,) = summary["stability_floor"]
    assert floor["floor_advert_int"] == 0.1
    assert floor["gave_way_at"] == {"advert_int": 0.05, "loads": ["none"]}
    text = markdown(summary)
    assert "## Stability floor" in text and "| bundled | 0.1s | none | 0.05s: none |" in text
    assert "stability_floor" not in summarise("failovers", [])


def test_loads_sort_from_the_lightest():
    assert sorted(reversed(LOADS), key=load_order) == list(LOADS)


HOLD_SWEEP = """
name: floor
scenario: short-timers
trials: 1
hold: 30
axes:
  impl: [bundled]
  advert_int: [0.1]
  fault: [hold]
  load: [none, advert-loss 1%]
"""


def test_a_hold_cell_leaves_the_steady_pair_alone_for_the_hold_and_judges_nothing():
    sweep = parse_sweep(HOLD_SWEEP, "floor.yaml")
    lossy = next(c for c in sweep.cells if c.load != "none")
    steps = cell_scenario(sweep, lossy).steps
    assert [s.action for s in steps] == ["start", "expect", "expect", "advert_loss", "observe"]
    assert steps[-1].name == HOLD_STEP and steps[-1].observe == 30
    assert not any(s.is_fault for s in steps)
    assert sweep.held_for(lossy) == 30
    with pytest.raises(ScenarioError, match="hold"):
        parse_sweep(HOLD_SWEEP.replace("hold: 30", "hold: 0"), "floor.yaml")
    with pytest.raises(ScenarioError, match=r"or hold \(none\)"):
        parse_sweep(HOLD_SWEEP.replace("[hold]", "[hodl]"), "floor.yaml")


class CountingLauncher:
    """Runs each trial for a moment, noting how many ran at once, and whether a CPU-hog trial
    ever had company."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: list[str] = []
        self.hog_had_company = False
        self.most = 0

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        request = json.loads(request_text)
        cell = Cell.from_json(request["cell"])
        with self.lock:
            self.running.append(cell.load)
            self.most = max(self.most, len(self.running))
            if "cpu-hog" in self.running and len(self.running) > 1:
                self.hog_had_company = True
        time.sleep(0.02)  # the trial's length: long enough for the pool to start the others
        with self.lock:
            self.running.remove(cell.load)
        record = TrialRecord(
            cell=cell, trial=request["trial"], outcome="measured", started=1.0, seconds=0.02
        )
        return TrialProcess(0, json.dumps(record.as_json()) + "\n", "")

    def abandon(self) -> None:
        raise AssertionError("nothing was interrupted")


def test_a_cpu_hog_trial_runs_alone_and_the_others_side_by_side(tmp_path: Path):
    sweep = parse_sweep(
        HOLD_SWEEP.replace("trials: 1", "trials: 3").replace(
            "[none, advert-loss 1%]", "[none, advert-loss 1%, advert-loss 5%, cpu-hog]"
        ),
        "floor.yaml",
    )
    launcher = CountingLauncher()
    records: list[Any]
    with Results(tmp_path, sweep.header(), resume=False) as results:
        Executor(sweep, results, jobs=3, launcher=launcher).run()
        records = list(results.records)
    assert len(records) == 12 and all(r.outcome == "measured" for r in records)
    assert not launcher.hog_had_company
    assert launcher.most > 1  # the others did share
