"""The bench itself: what it does to the implementation under test before any row asks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.conformance import iut
from lab.conformance.bench import IUT_NICE, Bench
from lab.conformance.cli import not_runnable


@pytest.mark.lab
@pytest.mark.parametrize("column", ["keepalived", "bundled"])
def test_the_iut_runs_ahead_of_the_harness(column: str, tmp_path: Path) -> None:
    """Every process of the IUT runs at IUT_NICE, so the harness's own work (the tester,
    tshark, a second cell) does not hold back the timers a row measures."""
    target = iut(column)
    missing = not_runnable(target)
    if missing:
        pytest.skip(missing)
    with Bench(target, "T01", tmp_path) as bench:
        bench.use_family(4)
        bench.start_iut(bench.params())
        assert bench.router is not None
        seen = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in bench.router.pids()}
    assert seen and set(seen.values()) == {IUT_NICE}, seen
