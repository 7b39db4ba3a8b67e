"""A stall witness for the timing assertions of a test module.

Import :func:`timing_witness` into a module (an autouse fixture: every test there then runs one)
and call :func:`unless_stalled` over a measured window before asserting on the time measured:
a host stall that can have moved it makes the measurement inconclusive, and the plugin runs the
test again (``lab.pytest_plugin``).
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
    late_by: float = 0.0,
) -> None:
    """Raise Inconclusive when host stalls can have moved ``what``, measured over [start, end]:
    by default, when one longer than ``tolerance`` overlapped it.

    ``rtnl_within``: where in the window the routers change links or addresses; an RTNL stall
    elsewhere cannot have moved the measurement (:meth:`lab.stalls.StallWitness.judge`).
    ``late_by``: for a figure that failed by being late, how far past its bound (tolerance
    included) it measured; stalls can then have made it late only by holding the host for
    longer than that in the window, whatever the tolerance
    (:meth:`lab.stalls.StallWitness.check_late`).
    """
    assert _witnesses, "unless_stalled needs the timing_witness fixture in the test's module"
    if late_by > 0:
        _witnesses[-1].check_late(start, end, late_by, tolerance, what, rtnl_within=rtnl_within)
    else:
        _witnesses[-1].check(start, end, tolerance, what, rtnl_within=rtnl_within)


def assert_timely(
    what: str,
    measured: float,
    bounds: tuple[float, float],
    tolerance: float,
    *,
    span: tuple[float, float],
    rtnl_within: tuple[float, float] | None = None,
) -> None:
    """Assert that ``measured`` (seconds, taken over the lab-clock ``span``) lies within
    ``bounds`` ± ``tolerance``, unless host stalls can have moved it: then Inconclusive.

    A figure late past the upper bound is judged by the late rule (``late_by`` of
    :func:`unless_stalled`): an RTNL hold just under the tolerance plus the router's own timer
    wake add up, while stalls that held the host for less than the lateness cannot explain it.
    A late figure was due ``late_by`` earlier than the tolerance says, so an RTNL hold counts
    from then: ``rtnl_within``, where the routers change links or addresses at the end of the
    span (:func:`lab.stalls.takeover_netlink`), is stretched back by it.
    """
    low, high = bounds
    start, end = span
    late_by = measured - (high + tolerance)
    if rtnl_within is not None and late_by > 0:
        rtnl_within = (min(rtnl_within[0], end - tolerance - late_by), rtnl_within[1])
    unless_stalled(start, end, tolerance, what, rtnl_within=rtnl_within, late_by=late_by)
    assert low - tolerance <= measured <= high + tolerance, (
        f"{what}: {measured * 1000:.1f} ms is outside "
        f"{low * 1000:.1f}..{high * 1000:.1f} ms ± {tolerance * 1000:.0f} ms"
    )
