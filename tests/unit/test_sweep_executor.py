"""The executor's bookkeeping around its launchers: a trial child's output becomes a record, an
error record naming why, or nothing when it was abandoned; a launcher that raises (a lost
cluster worker) costs that trial only. Pure logic: the launcher here answers from a table, the
real ones run in tests/lab/test_bench.py."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from lab.sweep.executor import Executor, Interrupted, TrialProcess, record_of
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


class HeldLauncher:
    """The first trial asked for ends at once; every later one runs until released, or until
    abandoned."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.abandoned = threading.Event()
        self.second_started = threading.Event()
        self.started: list[int] = []

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        request = json.loads(request_text)
        self.started.append(request["trial"])
        if len(self.started) > 1:
            self.second_started.set()
            assert self.release.wait(10), "the held trial was neither released nor abandoned"
        record = TrialRecord(
            cell=Cell.from_json(request["cell"]), trial=request["trial"], outcome="measured",
            started=1.0, seconds=2.0,
        )  # fmt: skip
        return TrialProcess(
            0, json.dumps(record.as_json()) + "\n", "", abandoned=self.abandoned.is_set()
        )

    def abandon(self) -> None:
        self.abandoned.set()
        self.release.set()


def _ctrl_c_while_recording(tmp_path: Path, *, second: bool) -> tuple[HeldLauncher, list, object]:
    """Run the quick sweep one trial at a time, and press Ctrl-C while the first trial is being
    recorded (its on_record callback): outside the wait, where KeyboardInterrupt once escaped."""
    sweep = load_sweep(resolve_sweep("quick"))
    launcher = HeldLauncher()
    interrupts: list[int] = []

    def on_record(record: TrialRecord, progress: object) -> None:
        if progress.done == 1:  # type: ignore[attr-defined]
            # Once the next trial is running (the pool's thread picks it up on its own time).
            assert launcher.second_started.wait(10), "the second trial never started"
            os.kill(os.getpid(), signal.SIGINT)

    def on_interrupt(running: int) -> None:
        interrupts.append(running)
        if second:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            launcher.release.set()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Results(tmp_path, sweep.header(), resume=False) as results:
            executor = Executor(sweep, results, jobs=1, launcher=launcher)
            executor.on_record, executor.on_interrupt = on_record, on_interrupt
            with pytest.raises(Interrupted) as raised:
                executor.run()
            records = list(results.records)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert interrupts == [1], interrupts
    return launcher, records, raised.value


def test_a_ctrl_c_while_a_trial_is_recorded_lets_the_running_one_finish(tmp_path: Path):
    launcher, records, interrupted = _ctrl_c_while_recording(tmp_path, second=False)
    assert len(records) == len(launcher.started) == 2
    assert interrupted.abandoned == 0


def test_a_second_ctrl_c_abandons_the_running_trial_unrecorded(tmp_path: Path):
    launcher, records, interrupted = _ctrl_c_while_recording(tmp_path, second=True)
    assert len(records) == 1 and len(launcher.started) == 2
    assert interrupted.abandoned == 1
