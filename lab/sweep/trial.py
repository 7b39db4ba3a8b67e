"""One trial of a sweep: one failover of one cell, measured as ``vrrp-lab run`` measures it.

A trial runs the cell's scenario (:func:`lab.sweep.spec.cell_scenario`) in a lab of its own,
which it builds and tears down: labs are never reused across trials, so no trial inherits
another's neighbour entries, FDB, SDN cache or daemon state, and a crashed trial cannot spoil
the next. A lab costs about a second to build, small beside the timers a trial waits on.

The executor runs each trial in a child process (``python -m lab.sweep.trial``), which reads
``{"sweep": ..., "cell": ..., "trial": N}`` on stdin and writes the record as the last line
of its stdout: a trial that crashes, hangs or is killed takes nothing else down, and its lab
dies with it (``lab.sandbox``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lab import clock, metrics
from lab.errors import LabError
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.spec import (
    HOLD,
    HOLD_STEP,
    Sweep,
    SweepSpec,
    cell_scenario,
    sweep_from_spec,
    theory,
    tolerance_interval,
)

#: The step of a cell's scenario that judges the failover (see ``cell_scenario``).
DETECTION_STEP = "detection against the RFC"
#: At most this many probes of the failover are kept in a record's timeline, evenly thinned:
#: enough to draw it, and a results file of a few hundred trials stays a couple of megabytes.
TIMELINE_PROBES = 300


def measure(sweep: Sweep, cell: Cell, trial: int) -> TrialRecord:
    """Run one trial of ``cell`` and return its record; never raises for a failed trial (an
    exception becomes an ``error`` record naming it)."""
    from lab.conformance.bench import tolerance
    from lab.runner import ScenarioRun

    started, began = clock.now(), time.monotonic()
    base = {
        "cell": cell,
        "trial": trial,
        "started": started,
        "tolerance_ms": round(tolerance(tolerance_interval(cell, sweep.version)) * 1000, 3),
    }
    try:
        scenario = cell_scenario(sweep, cell)
        with _load(cell.load):
            run = ScenarioRun(scenario, impl=cell.impl)
            report = run.execute()
    except (LabError, OSError) as exc:
        return TrialRecord(
            **base, outcome="error", seconds=time.monotonic() - began, error=_one_line(exc)
        )
    except Exception as exc:  # a bug of the lab's: recorded, and the sweep goes on
        detail = traceback.format_exception_only(exc)[-1].strip()
        return TrialRecord(
            **base, outcome="error", seconds=time.monotonic() - began, error=f"crashed: {detail}"
        )
    if cell.fault == HOLD:
        return from_hold(run, report, base, time.monotonic() - began)
    # A link flap lasts the takeover deadline (``cell_scenario``); then the old master preempts.
    flap = sweep.deadlines(cell)[1] if cell.fault == "link-flap" else None
    return from_report(run, report, base, time.monotonic() - began, flap, sweep.version)


def from_hold(run: Any, report: Any, base: dict[str, Any], seconds: float) -> TrialRecord:
    """The record of a finished ``hold`` trial: every entry into MASTER while the steady pair
    was left alone is a spurious transition (a backup that stays master, or a master that lost
    it and took it back, count one each); two masters at once are flagged as split brain
    beside them. Host stalls are recorded too, not used to discard a trial: that timers give
    way when the host does is what a hold beside the CPU hog measures."""
    steps = {s.name: s for s in report.steps}
    common = _common(base, seconds, report, [s for s in report.steps if not s.ok])
    held = steps.get(HOLD_STEP)
    broken = next((s for s in report.steps if not s.ok), None)
    if held is None or broken is not None:
        detail = f"{broken.name}: {broken.detail}" if broken else "the hold never began"
        return TrialRecord(**common, outcome="error", error=_one_line(detail))
    start, end = held.at, held.at + held.took
    masters = len(_entries_into_master(run, start, end))
    from lab.stalls import stalled_for

    stalls = run.witness.stalls(start, end)
    return TrialRecord(
        **common,
        outcome="measured",
        lost_probes=_lost_between(run.probe_records(), start, end),
        split_brain=any(lo < end and hi > start for lo, hi in report.split_brain),
        spurious_transitions=masters,
        stalls={
            "count": len(stalls),
            "worst_ms": round(max((s.end - s.start for s in stalls), default=0.0) * 1000, 3),
            "total_ms": round(stalled_for(stalls, start, end) * 1000, 3),
        },
    )


def _common(base: dict[str, Any], seconds: float, report: Any, failed: list[Any]) -> dict[str, Any]:
    """The fields every finished trial's record has: the cell's, its time, the versions run and
    the ``failed`` steps, a line each."""
    return {
        **base,
        "seconds": seconds,
        "versions": dict(report.versions),
        "failed_steps": [_one_line(f"{s.name}: {s.detail}") for s in failed],
    }


def _entries_into_master(run: Any, since: float, until: float) -> list[float]:
    """When any router of ``run`` entered MASTER in [since, until] (lab clock)."""
    return [
        event.at
        for router in run.routers.values()
        for event in router.events.snapshot(since=since)
        if event.state == "MASTER" and event.at <= until
    ]


def _lost_between(probes: Sequence[metrics.Probe], start: float, end: float) -> int:
    """The probes sent in [start, end] that no one answered."""
    return sum(1 for p in probes if start <= p.sent <= end and p.responder is None)


def from_report(
    run: Any,
    report: Any,
    base: dict[str, Any],
    seconds: float,
    flap: float | None = None,
    version: int = 3,
) -> TrialRecord:
    """The record of a finished :class:`lab.runner.ScenarioRun` (``flap``: how long a link
    flap kept the master's link down; ``version``: the cell's VRRP version)."""
    steps = {s.name: s for s in report.steps}
    judged = steps.get(DETECTION_STEP)
    failover = report.failovers[-1] if report.failovers else None
    failed = [s for s in report.steps if not s.ok and s.inconclusive is None]
    common = _common(base, seconds, report, failed)
    broken = next(
        (s for s in report.steps if not s.ok and not s.expectation and s.inconclusive is None),
        None,
    ) or next((s for s in report.steps[:3] if not s.ok), None)
    if failover is None or broken is not None:
        why = broken or next((s for s in report.steps if not s.ok), None)
        detail = f"{why.name}: {why.detail}" if why else "no failover was measured"
        return TrialRecord(**common, outcome="error", error=_one_line(detail))
    window = report.stalls.get("failovers", [{}])[-1]
    spoiled = judged.inconclusive if judged is not None else None
    theory_low, theory_high = failover.theory_min_ms, failover.theory_ms
    cell: Cell = base["cell"]
    if cell.bfd_takeover:
        # The failover's figures are VRRP's; here BFD's detection time sets the takeover.
        low, high = theory(cell, version)
        theory_low = None if low is None else round(low * 1000, 6)
        theory_high = round(high * 1000, 6)
    from lab.stalls import inconclusive_as_dict

    return TrialRecord(
        **common,
        outcome="inconclusive" if spoiled is not None else "measured",
        detection_ms=failover.detection_ms,
        outage_ms=failover.outage_ms,
        theory_ms=theory_high,
        theory_low_ms=theory_low,
        bfd_detection_ms=failover.bfd.detection_ms if failover.bfd is not None else None,
        lost_probes=failover.lost_probes,
        stale_arp_ms=failover.stale_arp_ms,
        split_brain=bool(failover.split_brain) or failover.duplicated_vip,
        spurious_transitions=spurious_transitions(run, report, failover, flap),
        stalls={k: window[k] for k in ("count", "worst_ms", "total_ms") if k in window},
        inconclusive=inconclusive_as_dict(spoiled) if spoiled is not None else None,
        timeline=timeline(failover, run.probe_records()),
    )


def spurious_transitions(
    run: Any, report: Any, failover: metrics.Failover, flap: float | None = None
) -> int:
    """Mastership changes the fault does not explain: any router entering MASTER between the
    service being steady and the fault, and any entry into MASTER after the fault beyond the
    backup's one takeover (a flap). After a link flap of ``flap`` seconds, only until the link
    comes back (the old master then preempts, as it should)."""
    steady = next((s.at for s in report.steps if s.name.endswith("serves the VIP")), None)
    if steady is None:
        return 0
    until = failover.at + flap if flap is not None else float("inf")
    entries = _entries_into_master(run, steady, until)
    before = sum(1 for at in entries if at < failover.at)
    return before + max(0, len(entries) - before - 1)


def timeline(failover: metrics.Failover, probes: Sequence[metrics.Probe]) -> dict[str, Any]:
    """The failover's stamps relative to the fault (ms), and its probes, thinned."""

    def rel(t: float | None) -> float | None:
        return None if t is None else round((t - failover.at) * 1000, 3)

    end = failover.first_served_after or failover.first_advert_after or failover.at
    lo, hi = failover.at - max(0.2, end - failover.at), end + max(0.2, end - failover.at)
    near = [p for p in probes if lo <= p.sent <= hi]
    step = max(1, -(-len(near) // TIMELINE_PROBES))
    return {
        "fault": 0.0,
        "last_served_before": rel(failover.last_served_before),
        "last_advert_old": rel(failover.last_advert_of_old_master),
        "first_advert_new": rel(failover.first_advert_after),
        "first_garp_new": rel(failover.first_garp_after),
        "first_served_after": rel(failover.first_served_after),
        "probes": [[rel(p.sent), p.responder is not None] for p in near[::step]],
    }


@contextlib.contextmanager
def _load(load: str) -> Iterator[None]:
    """The cell's load for the trial's length: ``cpu-hog`` keeps one core busy at nice 0 in a
    session of its own (as ``scripts/stress.sh`` does); advert loss is a step of the scenario."""
    if load != "cpu-hog":
        yield
        return
    from lab import linux

    hog = subprocess.Popen(
        [sys.executable, "-I", "-c", "while True: pass"],
        start_new_session=True,
        preexec_fn=linux.set_parent_death_signal,
        stdin=subprocess.DEVNULL,
    )
    try:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, hog.pid, 0)
        yield
    finally:
        hog.kill()
        hog.wait()


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:500]


# -- the child process ---------------------------------------------------------------------------


def request(sweep: Sweep, cell: Cell, trial: int) -> str:
    """What the executor writes to a trial child's stdin."""
    return json.dumps(
        {
            "spec": json.loads(sweep.spec.model_dump_json()),
            "source": sweep.source,
            "base_dir": str(sweep.base_dir) if sweep.base_dir else None,
            "cell": cell.as_json(),
            "trial": trial,
        }
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (the executor abandoning a trial) unwinds like Ctrl-C: the lab is torn down.
    raise KeyboardInterrupt


def main(stdin: str | None = None) -> int:
    """The child: one trial from the request on stdin, its record on the last stdout line.
    Exit 0 with a record (whatever its outcome), 130 when interrupted (no record)."""
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C is the executor's to handle: it lets running trials end, then stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    data = json.loads(stdin if stdin is not None else sys.stdin.read())
    spec = SweepSpec.model_validate(data["spec"])
    base_dir = Path(data["base_dir"]) if data.get("base_dir") else None
    try:
        sweep = sweep_from_spec(spec, data["source"], base_dir, check=False)
        record = measure(sweep, Cell.from_json(data["cell"]), int(data["trial"]))
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(json.dumps(record.as_json()) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
