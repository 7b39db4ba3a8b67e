"""The bench itself: what it does to the implementation under test before any row asks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.conformance import iut
from lab.conformance.bench import IUT_NICE, Bench
from lab.conformance.cli import not_runnable
from lab.linux import Scheduling, realtime_allowed


@pytest.mark.lab
@pytest.mark.parametrize("column", ["keepalived", "bundled", "frr"])
def test_the_iut_runs_ahead_of_the_harness(column: str, tmp_path: Path) -> None:
    """Every process of the IUT runs at SCHED_FIFO 1 (at IUT_NICE where realtime is refused),
    so the harness's own work (the tester, tshark, a second cell) does not hold back the timers
    a row measures; the witness's peer probe runs as the IUT does."""
    target = iut(column)
    missing = not_runnable(target)
    if missing:
        pytest.skip(missing)
    with Bench(target, "T01", tmp_path) as bench:
        bench.use_family(4)
        bench.start_iut(bench.params())
        assert bench.router is not None
        pids = bench.router.daemon_pids()
        policies = {pid: os.sched_getscheduler(pid) for pid in pids}
        nices = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids}
        peer = bench.witness.priorities
    assert pids
    if realtime_allowed():
        assert bench.scheduling == Scheduling(fifo=1)
        assert set(policies.values()) == {os.SCHED_FIFO}, policies
        assert peer.get("fifo1") == "fifo1", peer
    else:
        assert bench.scheduling == Scheduling(nice=IUT_NICE)
        assert set(nices.values()) == {IUT_NICE}, nices
