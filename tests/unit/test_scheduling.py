"""How the lab schedules a daemon it starts (``lab.linux.Scheduling``): a nice value on the
command line, a realtime priority raised once the daemon runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.linux import Scheduling, realtime_allowed


def test_a_nice_value_wraps_the_command_and_realtime_does_not() -> None:
    assert Scheduling().wrap(["keepalived", "-n"]) == ["keepalived", "-n"]
    assert Scheduling(nice=-10).wrap(["keepalived"]) == ["nice", "-n", "-10", "keepalived"]
    # The realtime priority is raised after start-up, never given to the start-up burst.
    assert Scheduling(fifo=1).wrap(["keepalived"]) == ["keepalived"]
    assert Scheduling(nice=-10, fifo=1).wrap(["x"]) == ["nice", "-n", "-10", "x"]


def test_labels() -> None:
    assert Scheduling().label == "inherited"
    assert Scheduling(nice=-10).label == "nice-10"
    assert Scheduling(nice=5, fifo=1).label == "fifo1"


def test_raise_realtime_reaches_every_thread_of_every_process() -> None:
    if not realtime_allowed():
        pytest.skip("realtime scheduling is refused here (not root in the initial namespace)")
    # A parent with a second thread, and a child of its own.
    program = (
        "import subprocess, sys, threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        Scheduling(fifo=1).raise_realtime([parent.pid, child, 999_999_999])  # one long gone
        tids = [
            (pid, int(tid))
            for pid in (parent.pid, child)
            for tid in os.listdir(f"/proc/{pid}/task")
        ]
        assert len(tids) >= 3
        policies = {tid: os.sched_getscheduler(tid) for _, tid in tids}
        assert set(policies.values()) == {os.SCHED_FIFO}, policies
    finally:
        if child:
            os.kill(child, 9)
        parent.kill()
        parent.wait()


def test_nothing_is_raised_without_a_realtime_priority() -> None:
    Scheduling(nice=5).raise_realtime([os.getpid()])
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_own_session_gives_a_process_its_own_autogroup() -> None:
    program = "import os; from lab.linux import own_session; print(own_session(), os.getsid(0))"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=True
    )
    led, sid = done.stdout.split()
    assert led == "True" and int(sid) != os.getsid(0)


def test_an_xdist_worker_measures_from_a_session_of_its_own() -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not run by a pytest-xdist worker (make test runs this under -n 2)")
    assert os.getsid(0) == os.getpid()
