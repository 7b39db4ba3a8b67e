"""The SDN profile table, cell by cell, reproduced in the lab (issue 4, scenarios 2; issue 14).

The predictions are those of docs/architecture.md#profile-predictions.

Each cell runs a short-timer scenario (lab.profile_matrix) and compares the measured outcome
with the table's prediction, or its documented departure. Rows: the emulated profiles, and the
real OVN (``engine-ovn``: ``sdn: {engine: ovn}``) beside the emulated ``ovn`` profile. The
master leaves by a graceful ``stop`` or by ``host-down``. `benchmarks/profile_matrix.py`
prints the same table with figures.
"""

from __future__ import annotations

import pytest

from lab.ovn import engine
from lab.profile_matrix import COLUMNS, FAULTS, PROFILES, REAL_OVN, ROWS, Column, run_cell
from tests.matrix import cell, sliced

pytestmark = pytest.mark.lab

NO_OVN = pytest.mark.skipif(engine.missing() is not None, reason=engine.missing() or "")


def cell_id(row: str, column: Column, fault: str) -> str:
    """``row-column`` for ``stop`` (the table's first fault), ``row-column-fault`` otherwise."""
    return f"{row}-{column.key}" + ("" if fault == "stop" else f"-{fault}")


#: ``make test`` asks every profile in the two columns where the profiles disagree most (an IP
#: pair with and without use_vmac): all three outcomes and every profile come up; the no-pair
#: and VMAC-pair columns are the seed's and the fix's, judged again by the scenario tests.
#: Of the real OVN and the emulated ``ovn`` beside it, the cells where they once disagreed
#: (VMAC pairs) and the host-down failover of the working column. ``make test MATRIX=full``
#: asks all 36 cells (tests.matrix).
SLICE = (
    {f"{p}-{c}" for p in PROFILES for c in ("ip-pair", "ip-pair-vmac")}
    | {f"{row}-vmac-pairs" for row in ("ovn", REAL_OVN)}
    | {f"{row}-ip-pair-host-down" for row in ("ovn", REAL_OVN)}
)

CELLS = [
    cell(row, c, fault, id=cell_id(row, c, fault), marks=[NO_OVN] if row == REAL_OVN else [])
    for row in ROWS
    for c in COLUMNS
    for fault in FAULTS
    if fault == "stop" or row in ("ovn", REAL_OVN)
]


@pytest.mark.parametrize(("profile", "column", "fault"), sliced(CELLS, SLICE))
def test_cell_matches_the_design_table(profile: str, column: Column, fault: str) -> None:
    result = run_cell(profile, column, fault=fault)
    failed = "; ".join(f"{s.name}: {s.detail[:160]}" for s in result.report.steps if not s.ok)
    assert result.as_expected, (
        f"{profile} / {column.title} / {fault}: measured {result.outcome}, expected "
        f"{result.expected} (DESIGN predicts {result.predicted}; {failed or 'every step held'})"
    )
    if result.outcome == "failover-broken":
        failover = result.report.failovers[-1]
        if profile in ("ovn", REAL_OVN):
            # VRRP moved and the observer's ARP is right (the VMAC): the fabric misdelivers.
            assert failover.new_master == "ha_second" and failover.stale_arp_ms == 0, failover
        else:
            # The observer keeps the old master's MAC: the report must show that as stale ARP.
            assert result.stale_arp_ms is not None and result.stale_arp_ms > 0
    if result.outcome == "works":
        assert result.report.failovers[-1].new_master == "ha_second"
