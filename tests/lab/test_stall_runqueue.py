"""The run-queue probe reads what a watched process itself waited for a CPU.

A process watched through its parent (so a descendant, as keepalived's VRRP child is) spins on
CPU 0 at nice 19; a SCHED_FIFO loop then takes CPU 0 for :data:`HOG` seconds. The spinning
process cannot run for that long, the kernel adds the wait to its run delay when it gets the CPU
back, and the witness must report a ``runqueue`` stall of about that length inside the hog's
window. A process that is not watched gives no such stall.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lab import clock
from lab.stalls import StallWitness
from lab.wait import wait_until

pytestmark = pytest.mark.lab

#: How long the FIFO loop holds CPU 0: far above the probe's 2 ms floor, and well inside the
#: kernel's real-time budget (950 ms a second).
HOG = 0.08
SPINNER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import os; os.sched_setaffinity(0, {0}); os.nice(19)\\nwhile True: pass'])\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)
HOGGER = (
    "import os, sys, time\n"
    "os.sched_setaffinity(0, {0})\n"
    "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(2))\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end: pass\n"
)


def _run_delay(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/schedstat") as f:
        ran, waited, _ = (int(x) for x in f.read().split())
    return ran, waited


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _hog_cpu0_while(watch: bool) -> tuple[list, float, float]:
    """Spin a watched (or unwatched) grandchild on CPU 0, hog CPU 0; the runqueue stalls seen
    and the hog's window on the lab clock."""
    if os.geteuid() != 0:
        pytest.skip("a SCHED_FIFO loop needs root")
    if 0 not in os.sched_getaffinity(0):
        pytest.skip("CPU 0 is not this process's to use")
    # A session of its own, so that the whole tree, the spinning grandchild too, is killed.
    spinner = subprocess.Popen(
        [sys.executable, "-c", SPINNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = None
    try:
        assert spinner.stdout is not None
        child = int(spinner.stdout.readline())
        with StallWitness() as witness:
            if watch:
                witness.watch([spinner.pid])
            wait_until(
                lambda: _run_delay(child)[0] > 0.05e9,
                timeout=10,
                what="the spinning grandchild to have run 50 ms on CPU 0",
            )
            waited = _run_delay(child)[1]
            begun = clock.now()
            subprocess.run([sys.executable, "-c", HOGGER, str(HOG)], check=True, timeout=30)
            ended = clock.now()
            # The kernel adds the wait when the spinner runs again: wait for that.
            wait_until(
                lambda: _run_delay(child)[1] - waited >= HOG * 0.6 * 1e9,
                timeout=10,
                what="the spinner's run delay to grow by the hog",
            )
            witness.sync()
            seen = [s for s in witness.stalls(begun, ended) if s.source == "runqueue"]
    finally:
        os.killpg(spinner.pid, signal.SIGKILL)
        spinner.wait(timeout=10)
        assert spinner.stdout is not None
        spinner.stdout.close()
        if child is not None:
            wait_until(
                lambda: _gone(child),
                timeout=10,
                what=f"the spinning grandchild {child} to be gone",
            )
    return seen, begun, ended


def test_a_watched_descendant_held_off_the_cpu_is_a_runqueue_stall():
    seen, begun, ended = _hog_cpu0_while(watch=True)
    assert seen, "no runqueue stall while the watched spinner was held off CPU 0"
    worst = max(seen, key=lambda s: s.seconds)
    # The spinner waited for the whole hog, less the moment it took to start.
    assert HOG * 0.6 <= worst.seconds <= (ended - begun) + 0.01, worst
    assert worst.end >= begun and worst.start <= ended, (worst, begun, ended)


def test_an_unwatched_process_is_not_read():
    seen, _, _ = _hog_cpu0_while(watch=False)
    assert seen == []
