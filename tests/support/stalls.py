"""A stall witness for the timing assertions of a test module.

Import :func:`timing_witness` into a module (an autouse fixture: every test there then runs one)
and call :func:`unless_stalled` over a measured window before asserting on the time measured:
a host stall longer than the tolerance makes the measurement inconclusive, and the plugin runs
the test again (``lab.pytest_plugin``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.stalls import StallWitness

_witnesses: list[StallWitness] = []


@pytest.fixture(autouse=True)
def timing_witness(stall_witness: StallWitness) -> Iterator[StallWitness]:
    """The test's stall witness, reachable from module helpers. Function scope; depends on
    ``stall_witness``."""
    _witnesses.append(stall_witness)
    yield stall_witness
    _witnesses.remove(stall_witness)


def unless_stalled(
    start: float,
    end: float,
    tolerance: float,
    what: str,
    *,
    rtnl_within: tuple[float, float] | None = None,
) -> None:
    """Raise Inconclusive when a host stall longer than ``tolerance`` overlapped [start, end].
    ``rtnl_within``: where in the window the routers change links or addresses; an RTNL stall
    elsewhere cannot have moved the measurement (:meth:`lab.stalls.StallWitness.judge`)."""
    assert _witnesses, "unless_stalled needs the timing_witness fixture in the test's module"
    _witnesses[-1].check(start, end, tolerance, what, rtnl_within=rtnl_within)
