"""The daemon's ``vrrp_script`` checks: each script run every ``interval`` from the start, ended
when it overruns its time limit, and its results counted as keepalived counts them.

keepalived 2.2.7 (vrrp_scheduler.c ``vrrp_script_thread`` and ``vrrp_script_child_thread``):
the first run starts with the daemon, then one every interval. A run that exits 0 succeeds;
any other exit, a signal, or overrunning the time limit (``timeout``, else the interval) fails.
An overrunning run's process group gets SIGTERM, and SIGKILL 2 s later if it is still there.
Here a run that falls due while the previous one is still running is skipped, which is what
keepalived's log says it does (its code then starts one anyway).

The runs are child processes in their own session; the daemon's loop waits on each one's
pidfd (:meth:`ScriptChecks.fds`) and on the deadlines :meth:`ScriptChecks.pending` yields, as
it does for BFD (:class:`vrrp.bfd.endpoint.BfdEndpoint`). What a result does to an instance is
:mod:`vrrp.tracking`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vrrp.spec import ScriptSpec
from vrrp.tracking import ScriptCounter

__all__ = ["KILL_AFTER", "ScriptChecks", "ScriptEvent"]

log = logging.getLogger("vrrp.checks")

KILL_AFTER = 2.0
"""Seconds between the SIGTERM to an overrunning run and the SIGKILL (keepalived's)."""


@dataclass(frozen=True, slots=True)
class ScriptEvent:
    """A script became good or failed (or was first decided)."""

    name: str
    ok: bool
    at: float
    """When the deciding run ended (the loop's monotonic clock)."""
    why: str
    """How the deciding run ended: ``succeeded``, ``exited with status N``, ``timed out``..."""


@dataclass
class _Record:
    """One script, its counter, and its run in progress."""

    spec: ScriptSpec
    counter: ScriptCounter
    next_run: float
    child: subprocess.Popen[bytes] | None = None
    pidfd: int = -1
    started: float = 0.0
    signalled: int = 0
    """The signal sent to the overrunning run (0: none yet)."""
    gen: int = 0
    scheduled: float | None = None
    runs: int = 0
    failures: int = 0
    last: str = ""

    @property
    def overrun_at(self) -> float:
        """When the run in progress is to be signalled: at its time limit, then
        :data:`KILL_AFTER` the SIGTERM (``started`` is then the SIGTERM's time)."""
        return self.started + (self.spec.time_limit if not self.signalled else KILL_AFTER)

    @property
    def deadline(self) -> float:
        """The next thing due: the next run, or signalling the one that overran."""
        return self.next_run if self.child is None else min(self.next_run, self.overrun_at)


class ScriptChecks:
    """The daemon's ``vrrp_script`` runs."""

    def __init__(self) -> None:
        """No scripts until :meth:`configure`."""
        self._records: dict[str, _Record] = {}
        self._dirty: set[str] = set()

    def configure(self, specs: tuple[ScriptSpec, ...], now: float) -> None:
        """Run these scripts from ``now``: a script kept across a reload keeps its count and
        its run in progress; one no longer configured is ended."""
        wanted = {s.name: s for s in specs}
        for name in [n for n in self._records if n not in wanted]:
            self._end(self._records.pop(name))
        for name, spec in wanted.items():
            rec = self._records.get(name)
            if rec is not None and rec.spec == spec:
                continue
            if rec is not None:
                self._end(rec)
            self._records[name] = _Record(
                spec, ScriptCounter(spec.rise, spec.fall, spec.init_fail), now
            )
            self._dirty.add(name)

    def ok(self, name: str) -> bool | None:
        """Whether script ``name`` is good (None: undecided, or not configured)."""
        rec = self._records.get(name)
        return rec.counter.ok if rec is not None else None

    def fds(self) -> dict[int, str]:
        """The pidfds of the runs in progress, by descriptor: the script."""
        return {r.pidfd: name for name, r in self._records.items() if r.child is not None}

    def pending(self) -> Iterator[tuple[str, float, int]]:
        """(script, deadline, generation) for each script whose next deadline changed since
        last asked; an older generation of the same script is stale (:meth:`is_current`)."""
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            rec = self._records.get(name)
            if rec is None or rec.deadline == rec.scheduled:
                continue
            rec.scheduled = rec.deadline
            rec.gen += 1
            yield name, rec.scheduled, rec.gen

    def is_current(self, name: str, gen: int) -> bool:
        """Whether a heap entry (script, generation) is still the script's deadline."""
        rec = self._records.get(name)
        return rec is not None and rec.gen == gen

    def tick(self, name: str, now: float) -> list[ScriptEvent]:
        """The script's deadline came: start a run, or end one that overran. The event when a
        script that cannot even be started changed state."""
        rec = self._records[name]
        rec.scheduled = None
        self._dirty.add(name)
        if rec.child is not None and now >= rec.overrun_at:
            self._overran(rec, now)
        if now < rec.next_run:
            return []
        # On the interval's grid from the start: a stalled daemon skips what it missed.
        missed = int((now - rec.next_run) // rec.spec.interval)
        rec.next_run += (missed + 1) * rec.spec.interval
        if rec.child is not None:
            log.info("Track script %s is already running, expect idle - skipping run", name)
            return []
        return self._start(rec, now)

    def readable(self, fd: int, now: float) -> list[ScriptEvent]:
        """A run ended: count its result; the event, when it changed the script's state."""
        name = self.fds().get(fd)
        if name is None:
            return []
        rec = self._records[name]
        assert rec.child is not None
        code = rec.child.wait()
        signalled = rec.signalled
        self._release(rec)
        self._dirty.add(name)
        if code == 0:
            success, why = True, "succeeded"
        elif code < 0 and signalled and -code in (signal.SIGTERM, signal.SIGKILL):
            success, why = False, "timed out"
        elif code < 0:
            success, why = False, f"failed (due to signal {-code})"
        else:
            success, why = False, f"failed (exited with status {code})"
        return self._count(rec, success, why, now)

    def shutdown(self) -> None:
        """End every run in progress (at the daemon's stop)."""
        for rec in self._records.values():
            self._end(rec)

    def status(self) -> list[dict[str, Any]]:
        """Each script's state and counts, for the control socket."""
        return [
            {
                "name": name,
                "ok": rec.counter.ok,
                "running": rec.child is not None,
                "runs": rec.runs,
                "failures": rec.failures,
                "last": rec.last,
            }
            for name, rec in self._records.items()
        ]

    # -- runs ------------------------------------------------------------------------------

    def _start(self, rec: _Record, now: float) -> list[ScriptEvent]:
        try:
            child = subprocess.Popen(
                rec.spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                user=rec.spec.user,
                group=rec.spec.group,
            )
        except (OSError, ValueError, KeyError) as exc:
            # keepalived counts a script it cannot execute as failing (its child exits 127).
            log.warning("vrrp_script %s failed to start: %s", rec.spec.name, exc)
            return self._count(rec, False, f"failed to start ({exc})", now)
        rec.child, rec.started, rec.signalled = child, now, 0
        rec.pidfd = os.pidfd_open(child.pid)
        return []

    @staticmethod
    def _count(rec: _Record, success: bool, why: str, now: float) -> list[ScriptEvent]:
        """Count one run's result; the event when it changed the script's state."""
        rec.runs += 1
        rec.failures += not success
        rec.last = why
        if not rec.counter.record(success):
            return []
        # keepalived's words: "VRRP_Script(chk) succeeded" / "VRRP_Script(chk) failed (...)".
        log.info("VRRP_Script(%s) %s", rec.spec.name, why)
        return [ScriptEvent(rec.spec.name, bool(rec.counter.ok), now, why)]

    def _overran(self, rec: _Record, now: float) -> None:
        """Signal the overrunning run's process group: SIGTERM, then SIGKILL."""
        assert rec.child is not None
        sig = signal.SIGKILL if rec.signalled else signal.SIGTERM
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.child.pid, sig)
        rec.signalled, rec.started = sig, now

    def _end(self, rec: _Record) -> None:
        """Kill a run in progress and reap it."""
        if rec.child is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.child.pid, signal.SIGKILL)
        rec.child.wait()
        self._release(rec)

    @staticmethod
    def _release(rec: _Record) -> None:
        if rec.pidfd >= 0:
            os.close(rec.pidfd)
        rec.child, rec.pidfd, rec.signalled = None, -1, 0
