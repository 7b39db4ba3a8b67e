"""The executor's bookkeeping around its launchers: a trial child's output becomes a record, an
error record naming why, or nothing when it was abandoned; a launcher that raises (a lost
cluster worker) costs that trial only. Pure logic: the launcher here answers from a table, the
real ones run in tests/lab/test_bench.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from lab.sweep.executor import Executor, TrialProcess, record_of
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.results import Results
from lab.sweep.spec import load_sweep, resolve_sweep

CELL = Cell("bundled", "stop", 0.1, 100, True, "l2-plain", "none")


def line(trial: int) -> str:
    record = TrialRecord(cell=CELL, trial=trial, outcome="measured", started=1.0, seconds=2.0)
    return json.dumps(record.as_json())


def test_the_last_record_line_is_the_trial():
    out = f"progress\n{line(0)}\n{line(3)}\n"
    record = record_of(TrialProcess(0, out, ""), CELL, 3, 1.0, 0.0)
    assert record is not None and record.trial == 3 and record.outcome == "measured"


def test_a_broken_child_is_an_error_naming_its_last_words():
    ended = TrialProcess(1, "", "starting\nTraceback (most recent call last):\nOSError: boom\n")
    record = record_of(ended, CELL, 0, 1.0, 0.0)
    assert record is not None and record.outcome == "error"
    assert record.error is not None
    assert record.error.startswith("the trial process exited 1:")
    assert "OSError: boom" in record.error


def test_an_overrun_is_an_error_and_an_abandoned_trial_is_no_record():
    overran = record_of(TrialProcess(-15, "", "", timed_out=61.0), CELL, 0, 1.0, 0.0)
    assert overran is not None and overran.error == "timed out after 61s"
    assert record_of(TrialProcess(-15, line(0), "", abandoned=True), CELL, 0, 1.0, 0.0) is None


class TableLauncher:
    """Answers each trial from its number: a record, or an exception as a lost worker raises."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        request = json.loads(request_text)
        with self.lock:
            self.requests.append(request)
        if request["trial"] == 1:
            raise ConnectionError("worker tcp://10.0.0.9:40000 lost")
        cell = Cell.from_json(request["cell"])
        record = TrialRecord(
            cell=cell, trial=request["trial"], outcome="measured", started=1.0, seconds=2.0
        )
        return TrialProcess(0, json.dumps(record.as_json()) + "\n", "")

    def abandon(self) -> None:
        raise AssertionError("nothing was interrupted")


def test_a_launcher_that_raises_costs_that_trial_only(tmp_path: Path):
    sweep = load_sweep(resolve_sweep("quick"))
    launcher = TableLauncher()
    with Results(tmp_path, sweep.header(), resume=False) as results:
        progress = Executor(sweep, results, jobs=2, launcher=launcher).run()
        records = list(results.records)
    assert progress.done == len(sweep.trials()) == len(records) == len(launcher.requests)
    errors = [r for r in records if r.outcome == "error"]
    assert {r.trial for r in errors} == {1}
    assert all(r.error == "ConnectionError: worker tcp://10.0.0.9:40000 lost" for r in errors)
    assert all(r.outcome == "measured" for r in records if r.trial != 1)
