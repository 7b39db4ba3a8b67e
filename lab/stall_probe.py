"""The host stall probe: one per CPU, wakes every period, reports each late wake-up.

Run by :class:`lab.stalls.StallWitness` as ``python -I stall_probe.py CPU PERIOD FLOOR``, in the
runner's own namespaces (it sends no traffic, so it needs no lab node). It pins itself to CPU,
takes the highest priority it is allowed (SCHED_FIFO 1, else nice -20, else none) and reports
over its stdout, one ASCII record per line::

    ready <priority> <cpu>           pinned and prioritised
    stall <start> <end> <cpu>        it woke <end> though due at <start> (lab clock, seconds)
    synced <time>                    answer to a line on stdin: every stall before <time> is out

It ends when its stdin reaches EOF, or when its parent dies (parent-death signal, set by the
witness between fork and exec). Standard library only, at module level and below: importing the
``lab`` package would cost every probe 0.6 s of CPU (see ``lab/probe.py``).
"""

from __future__ import annotations

import os
import select
import sys
import time


def prioritise() -> str:
    """Take the highest scheduling priority allowed; say which one was obtained."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return "fifo1"
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
        return "nice-20"
    except OSError:
        return "none"


def run(cpu: int, period: float, floor: float, parent: int) -> int:
    """Wake every ``period`` until stdin closes; report overshoots above ``floor``."""
    os.sched_setaffinity(0, {cpu})
    priority = prioritise()
    out = sys.stdout
    out.write(f"ready {priority} {cpu}\n")
    out.flush()
    stdin = sys.stdin.fileno()
    # Measured wake to wake, not from a fresh clock read before each sleep: a stall that hits
    # while the loop body runs (between two sleeps) is then counted too.
    last_mono, last_wall = time.monotonic(), time.time()
    while True:
        readable, _, _ = select.select([stdin], [], [], period)
        now_mono = time.monotonic()
        late = now_mono - last_mono - period
        if late > floor:
            due = last_wall + period
            out.write(f"stall {due:.6f} {due + late:.6f} {cpu}\n")
            out.flush()
        last_mono, last_wall = now_mono, time.time()
        if os.getppid() != parent:  # orphaned before the death signal took effect
            return 0
        if readable:
            data = os.read(stdin, 4096)
            if not data:
                return 0
            # Stalls are written before the stdin is read, so every one before now is out.
            out.write(f"synced {time.time():.6f}\n")
            out.flush()


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
