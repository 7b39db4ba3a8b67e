"""Running a sweep's trials, ``jobs`` at a time, each in a child process of its own.

Each trial is a ``python -m lab.sweep.trial`` child (see :mod:`lab.sweep.trial`), started in a
session of its own (a Ctrl-C at the terminal reaches this process only) with a parent-death
signal (it dies with this process, and its lab with it). One thread per job waits on its child;
the main thread alone appends to ``results.jsonl``, as each trial ends.

Ctrl-C stops starting trials and lets the running ones finish and be recorded (they are a few
seconds each); a second Ctrl-C abandons them: they are sent SIGTERM, tear their labs down, and
are not recorded, so ``--resume`` runs them again.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from lab import clock
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.results import Results
from lab.sweep.spec import Sweep
from lab.sweep.trial import request

#: On top of the timers' deadlines, what a trial may take before it is called hung: building
#: and tearing down its lab, starting the daemons and the capture (a few seconds here; a slow
#: or loaded machine gets ten times that).
TRIAL_SLACK = 60.0


@dataclass
class Progress:
    """Where a sweep stands, for the progress display."""

    total: int
    done: int = 0
    skipped: int = 0
    """Trials already in ``results.jsonl`` (a resumed sweep)."""
    running: int = 0
    began: float = 0.0
    trial_seconds: float = 0.0
    """Sum of the finished trials' durations, for the estimate."""

    def eta(self, jobs: int) -> float | None:
        """Seconds left, from the mean trial so far and the jobs running side by side."""
        if self.done == 0:
            return None
        left = self.total - self.skipped - self.done
        return left * (self.trial_seconds / self.done) / max(1, jobs)


class Interrupted(Exception):
    """The sweep was stopped by Ctrl-C; what finished is recorded."""

    def __init__(self, abandoned: int) -> None:
        self.abandoned = abandoned
        super().__init__(f"interrupted; {abandoned} running trial(s) abandoned")


class Executor:
    """Runs the missing trials of ``sweep`` and records each in ``results``."""

    def __init__(
        self,
        sweep: Sweep,
        results: Results,
        *,
        jobs: int = 1,
        on_record: Callable[[TrialRecord, Progress], None] | None = None,
        on_interrupt: Callable[[int], None] | None = None,
    ) -> None:
        self.sweep = sweep
        self.results = results
        self.jobs = max(1, jobs)
        self.on_record = on_record or (lambda record, progress: None)
        self.on_interrupt = on_interrupt or (lambda running: None)
        self._children: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._abandon = threading.Event()
        self._abandoned = 0

    def todo(self) -> list[tuple[Cell, int]]:
        """The trials not yet in the results file, in run order."""
        done = self.results.done()
        return [(c, n) for c, n in self.sweep.trials() if (c.key, n) not in done]

    def run(self) -> Progress:
        """Run every missing trial; raise :class:`Interrupted` after a Ctrl-C (once the running
        trials finished or were abandoned)."""
        todo = self.todo()
        progress = Progress(
            total=len(self.sweep.trials()), skipped=len(self.sweep.trials()) - len(todo)
        )
        progress.began = time.monotonic()
        interrupted = False
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="trial") as pool:
            pending: dict[Future[TrialRecord | None], tuple[Cell, int]] = {
                pool.submit(self._run_child, cell, n): (cell, n) for cell, n in todo
            }
            while pending:
                try:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if not interrupted:
                        interrupted = True
                        for future in pending:
                            future.cancel()
                        self.on_interrupt(sum(not f.cancelled() for f in pending))
                    else:
                        self._abandon_running()
                    pending = {f: v for f, v in pending.items() if not f.cancelled()}
                    continue
                for future in done:
                    pending.pop(future)
                    if future.cancelled():
                        continue
                    record = future.result()
                    if record is None:  # abandoned: not recorded, --resume runs it again
                        continue
                    self.results.append(record)
                    progress.done += 1
                    progress.trial_seconds += record.seconds
                    self.on_record(record, progress)
        if interrupted:
            raise Interrupted(self._abandoned)
        return progress

    def _abandon_running(self) -> None:
        self._abandon.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            with contextlib.suppress(OSError):
                child.send_signal(signal.SIGTERM)
        self._abandoned = len(children)

    def _run_child(self, cell: Cell, trial: int) -> TrialRecord | None:
        """One trial in a child process; its record, an error record if the child broke, or
        None if it was abandoned."""
        from lab import linux

        if self._abandon.is_set():
            return None
        started, began = clock.now(), time.monotonic()
        up, over = self.sweep.deadlines(cell)
        timeout = 4 * (up + over) + TRIAL_SLACK
        child = subprocess.Popen(
            [sys.executable, "-m", "lab.sweep.trial"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=linux.set_parent_death_signal,
        )
        with self._lock:
            self._children.add(child)
        try:
            try:
                out, err = child.communicate(request(self.sweep, cell, trial), timeout=timeout)
            except subprocess.TimeoutExpired:
                child.terminate()
                try:
                    out, err = child.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    out, err = child.communicate()
                return _error(cell, trial, started, began, f"timed out after {timeout:.0f}s")
        finally:
            with self._lock:
                self._children.discard(child)
        if self._abandon.is_set() and child.returncode != 0:
            return None
        lines = [line for line in out.splitlines() if line.startswith('{"type": "trial"')]
        if child.returncode == 0 and lines:
            return TrialRecord.from_json(json.loads(lines[-1]))
        tail = " | ".join(err.strip().splitlines()[-3:]) or "no output"
        return _error(
            cell, trial, started, began, f"the trial process exited {child.returncode}: {tail}"
        )


def _error(cell: Cell, trial: int, started: float, began: float, why: str) -> TrialRecord:
    return TrialRecord(
        cell=cell,
        trial=trial,
        outcome="error",
        started=started,
        seconds=time.monotonic() - began,
        error=" ".join(why.split())[:500],
    )
