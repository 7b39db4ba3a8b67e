"""Running a sweep's trials, ``jobs`` at a time, each in a child process of its own.

Each trial is a ``python -m lab.sweep.trial`` child (see :mod:`lab.sweep.trial`), started in a
session of its own (a Ctrl-C at the terminal reaches this process only) with a parent-death
signal (it dies with the thread that started it, and its lab with it). One thread per job hands
its trial to a *launcher* and waits: :class:`LocalLauncher` starts the child here,
:class:`lab.sweep.cluster.ClusterLauncher` has a dask worker on another host start the same
child (:func:`run_trial_process`, one loop for both). The main thread alone appends to
``results.jsonl``, as each trial ends, wherever it ran.

A ``cpu-hog`` trial runs alone: its hog keeps one core busy, and a trial beside it would be
measured under that load too, whatever its own cell says.

Ctrl-C stops starting trials and lets the running ones finish and be recorded (they are a few
seconds each); a second Ctrl-C abandons them: they are sent SIGTERM, tear their labs down, and
are not recorded, so ``--resume`` runs them again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from lab import clock
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.results import Results
from lab.sweep.spec import Sweep
from lab.sweep.trial import request

#: On top of the timers' deadlines, what a trial may take before it is called hung: building
#: and tearing down its lab, starting the daemons and the capture (a few seconds here; a slow
#: or loaded machine gets ten times that).
TRIAL_SLACK = 60.0
#: How often a waiting trial checks whether it was abandoned (a second Ctrl-C): the longest a
#: trial's lab outlives the user's second Ctrl-C, on top of its own teardown.
ABANDON_CHECK = 0.2


@dataclass(frozen=True)
class TrialProcess:
    """How one ``python -m lab.sweep.trial`` child ended, on this host or a cluster worker."""

    returncode: int
    out: str
    err: str
    timed_out: float | None = None
    """The deadline (s) the child overran and was stopped at, if it did."""
    abandoned: bool = False
    """It was stopped by a second Ctrl-C: not a result, not recorded."""


def run_trial_process(
    request_text: str, timeout: float, abandoned: Callable[[], bool]
) -> TrialProcess:
    """Run one trial child to its end, feeding it ``request_text``; stop it (SIGTERM, then
    SIGKILL) when it overruns ``timeout`` or once ``abandoned()`` turns true. The same code runs
    in the executor's threads and on a cluster's workers."""
    from lab import linux

    child = subprocess.Popen(
        [sys.executable, "-m", "lab.sweep.trial"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=linux.set_parent_death_signal,
    )
    deadline = time.monotonic() + timeout
    feed: str | None = request_text
    while True:
        try:
            out, err = child.communicate(feed, timeout=ABANDON_CHECK)
        except subprocess.TimeoutExpired:
            feed = None  # communicate() wrote it already; a retry must not write it again
            stopped = abandoned()
            if not stopped and time.monotonic() < deadline:
                continue
            out, err = _stop(child)
            if stopped:
                return TrialProcess(child.returncode, out, err, abandoned=True)
            return TrialProcess(child.returncode, out, err, timed_out=timeout)
        return TrialProcess(child.returncode, out, err)


def _stop(child: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM (the trial tears its lab down), then SIGKILL if it takes longer than 30 s."""
    child.terminate()
    try:
        return child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.communicate()


class Launcher(Protocol):
    """Where trials run: :meth:`run` one to its end (it is called from many threads at once),
    :meth:`abandon` every running one."""

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        """Run one trial and say how its process ended."""
        ...

    def abandon(self) -> None:
        """Stop every running trial, unrecorded (a second Ctrl-C)."""
        ...


class LocalLauncher:
    """Trials as children of this process."""

    def __init__(self) -> None:
        self._abandon = threading.Event()

    def run(self, request_text: str, timeout: float) -> TrialProcess:
        """One trial child here."""
        return run_trial_process(request_text, timeout, self._abandon.is_set)

    def abandon(self) -> None:
        """Every running child gets SIGTERM within :data:`ABANDON_CHECK`."""
        self._abandon.set()


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
        launcher: Launcher | None = None,
        on_record: Callable[[TrialRecord, Progress], None] | None = None,
        on_interrupt: Callable[[int], None] | None = None,
    ) -> None:
        self.sweep = sweep
        self.results = results
        self.jobs = max(1, jobs)
        self.launcher: Launcher = launcher or LocalLauncher()
        self.on_record = on_record or (lambda record, progress: None)
        self.on_interrupt = on_interrupt or (lambda running: None)
        self._lock = threading.Lock()
        self._running = 0
        self._abandoning = False
        self._abandoned = 0
        """Trials running when the second Ctrl-C abandoned them."""
        self._alone = _AloneGate()
        self._stopping = False
        """A first Ctrl-C came: a trial still waiting its turn at the gate does not start."""

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
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="trial") as pool:
            pending: dict[Future[TrialRecord | None], tuple[Cell, int]] = {
                pool.submit(self._run_child, cell, n): (cell, n) for cell, n in todo
            }
            with _CtrlC() as ctrl_c:
                handled = 0
                while pending:
                    # Ctrl-Cs are counted by the handler wherever they land (recording a trial,
                    # printing its line) and acted on here, between waits: none is lost and none
                    # breaks a trial's recording half way.
                    done = None
                    with ctrl_c.interruptible():
                        if handled == ctrl_c.count:
                            done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    while handled < ctrl_c.count:
                        handled += 1
                        pending = self._interrupt(pending, first=handled == 1)
                    if done is None:
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
                interrupted = ctrl_c.count > 0
        if interrupted:
            raise Interrupted(self._abandoned)
        return progress

    def _interrupt(
        self, pending: dict[Future[TrialRecord | None], tuple[Cell, int]], *, first: bool
    ) -> dict[Future[TrialRecord | None], tuple[Cell, int]]:
        """A first Ctrl-C cancels the trials not started; a later one abandons the running."""
        if first:
            self._stopping = True
            for future in pending:
                future.cancel()
            self.on_interrupt(sum(not f.cancelled() for f in pending))
        else:
            self._abandon_running()
        return {f: v for f, v in pending.items() if not f.cancelled()}

    def _abandon_running(self) -> None:
        with self._lock:
            self._abandoning = True
            self._abandoned = self._running
        self.launcher.abandon()

    def _run_child(self, cell: Cell, trial: int) -> TrialRecord | None:
        """One trial in a child process, here or on a worker; its record, an error record if
        the child broke, or None if it was abandoned."""
        with self._lock:
            if self._abandoning:
                return None
            self._running += 1
        try:
            with self._alone.held(alone=cell.load == "cpu-hog"):
                if self._abandoning or self._stopping:  # Ctrl-C while it waited its turn
                    return None
                started, began = clock.now(), time.monotonic()
                up, over = self.sweep.deadlines(cell)
                timeout = 4 * (up + over) + self.sweep.held_for(cell) + TRIAL_SLACK
                try:
                    ended = self.launcher.run(request(self.sweep, cell, trial), timeout)
                except Exception as exc:  # a lost worker, a broken link: this trial's error only
                    return _error(cell, trial, started, began, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running -= 1
        return record_of(ended, cell, trial, started, began)


class _AloneGate:
    """Lets trials run side by side, except one that must run alone: it waits for the running
    ones to end, and the others wait for it (one waiting to run alone goes before trials that
    come after it, so a stream of them cannot hold it off)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._side_by_side = 0
        self._alone = False
        self._waiting_alone = 0

    @contextmanager
    def held(self, *, alone: bool) -> Iterator[None]:
        """The gate held for one trial, alone or beside others, for the block's length."""
        with self._changed:
            if alone:
                self._waiting_alone += 1
                self._changed.wait_for(lambda: not self._alone and self._side_by_side == 0)
                self._waiting_alone -= 1
                self._alone = True
            else:
                self._changed.wait_for(lambda: not self._alone and self._waiting_alone == 0)
                self._side_by_side += 1
        try:
            yield
        finally:
            with self._changed:
                if alone:
                    self._alone = False
                else:
                    self._side_by_side -= 1
                self._changed.notify_all()


class _CtrlC:
    """Counts SIGINTs while a sweep runs, and interrupts only :meth:`interruptible` blocks.

    Python raises KeyboardInterrupt wherever the main thread happens to be: between appending a
    trial to ``results.jsonl`` and printing its line, it escaped the executor (a sweep stopped
    at once and said nothing of its running trial). Here the handler counts, and raises only
    inside the wait for the next trial, where the loop expects it.
    """

    def __init__(self) -> None:
        self.count = 0
        self._in_wait = False
        self._previous: object = None

    def __enter__(self) -> _CtrlC:
        # Only the main thread may set handlers, and a SIGINT someone ignored stays ignored.
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.count += 1
        if self._in_wait:
            raise KeyboardInterrupt

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a Ctrl-C may cut short. It is marked before the block reads the count, so a
        SIGINT is either seen by that read or raised inside the block: never left waiting."""
        self._in_wait = True
        try:
            yield
        except KeyboardInterrupt:
            pass
        finally:
            self._in_wait = False


def record_of(
    ended: TrialProcess, cell: Cell, trial: int, started: float, began: float
) -> TrialRecord | None:
    """The record a trial child left on its stdout; an error record naming why there is none;
    None when it was abandoned (not a result: ``--resume`` runs it again)."""
    if ended.abandoned:
        return None
    if ended.timed_out is not None:
        return _error(cell, trial, started, began, f"timed out after {ended.timed_out:.0f}s")
    lines = [line for line in ended.out.splitlines() if line.startswith('{"type": "trial"')]
    if ended.returncode == 0 and lines:
        return TrialRecord.from_json(json.loads(lines[-1]))
    tail = " | ".join(ended.err.strip().splitlines()[-3:]) or "no output"
    return _error(
        cell, trial, started, began, f"the trial process exited {ended.returncode}: {tail}"
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
