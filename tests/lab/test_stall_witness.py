"""A measurement spoiled on purpose is inconclusive, never a pass or a fail (issue 10, point 4).

``vrrp-lab run short-timers`` judges the failover's detection against [240.9, 380.9] ms. The
measuring process (the runner) is frozen with SIGSTOP inside the failover's window, for longer
than any margin a passing detection can have to those bounds (at most half their 140 ms span):
the verdict must be inconclusive with the stall in the JSON. The same run unfrozen is judged.

The freeze starts on a condition, the runner's own progress line for the fault (printed as soon
as the fault is applied); only the freeze itself is timed, as the fault it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lab import clock
from lab.stalls import inconclusive_from_dict

pytestmark = pytest.mark.lab

#: The detection bounds of short-timers.yaml, and the freeze: longer than half their span.
BOUNDS_MS = (240.9, 380.9)
FREEZE = 0.150
DETECTION_STEP = "detection inside the RFC window"


def run_short_timers(tmp_path: Path, freeze: bool) -> tuple[int, dict[str, Any], str, Any]:
    """Run short-timers on the bundled daemon; with ``freeze``, SIGSTOP the runner for
    :data:`FREEZE` once it reports the fault. Exit code, JSON report, stdout, freeze window."""
    out = tmp_path / "run.json"
    argv = ["run", "short-timers", "--impl", "bundled", "--json", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, proc.kill)  # a hung run fails the test, never hangs it
    watchdog.start()
    lines, frozen = [], None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if freeze and frozen is None and "host dies" in line:
                began = clock.now()
                os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(FREEZE)  # the fault itself: a freeze of known length
                os.kill(proc.pid, signal.SIGCONT)
                frozen = (began, clock.now())
        code = proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        watchdog.cancel()
    stdout = "".join(lines)
    assert out.exists(), f"no JSON report; exit {code}; stdout {stdout[-2000:]} stderr {err}"
    return code, json.loads(out.read_text()), stdout, frozen


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["steps"] if name in s["name"])


def test_a_frozen_runner_makes_the_detection_verdict_inconclusive(tmp_path: Path) -> None:
    code, report, stdout, frozen = run_short_timers(tmp_path, freeze=True)
    assert frozen is not None, f"the runner never reported the fault: {stdout[-2000:]}"
    step = _step(report, DETECTION_STEP)
    assert step.get("outcome") == "inconclusive", (
        f"a {FREEZE * 1000:.0f} ms freeze in the failover window was judged: {step}"
    )
    stall = step["stall"]
    # The runner's own probe saw it (a host probe may add a shorter stall of its own).
    assert stall["source"] == "self" and stall["ms"] >= (FREEZE - 0.005) * 1000, stall
    assert stall["start"] <= frozen[1] and stall["end"] >= frozen[0], (stall, frozen)
    assert "inconclusive" in step["detail"] and "ms stall (self)" in step["detail"], step
    assert not report["ok"] and code == 1, (code, report["ok"])
    assert "1 step(s) inconclusive" in stdout and "step(s) failed" not in stdout, stdout
    assert any(s["source"] == "self" and s["ms"] >= 140 for s in report["stalls"]["stalls"])
    assert report["stalls"]["failovers"][0]["worst_ms"] >= 140, report["stalls"]


def test_the_same_run_unfrozen_is_judged(tmp_path: Path) -> None:
    code, report, stdout, _ = run_short_timers(tmp_path, freeze=False)
    step = _step(report, DETECTION_STEP)
    if step.get("outcome") == "inconclusive":  # the host really stalled: run again
        raise inconclusive_from_dict(step)
    assert step["ok"] and "outcome" not in step, step
    assert code == 0 and report["ok"], stdout[-2000:]
    detection = report["failovers"][0]["detection_ms"]
    assert BOUNDS_MS[0] <= detection <= BOUNDS_MS[1], detection
    assert report["stalls"]["priority"], report["stalls"]
