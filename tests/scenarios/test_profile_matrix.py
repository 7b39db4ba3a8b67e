"""The SDN profile table, cell by cell, reproduced in the lab (issue 4, scenarios 2).

The predictions are those of docs/architecture.md#profile-predictions.

Each cell runs a short-timer scenario (lab.profile_matrix) and compares the measured outcome
with the table's prediction. `benchmarks/profile_matrix.py` prints the same table with figures.
"""

from __future__ import annotations

import pytest

from lab.profile_matrix import COLUMNS, PROFILES, run_cell
from tests.matrix import cell, sliced

pytestmark = pytest.mark.lab


#: ``make test`` asks every profile in the two columns where the profiles disagree most (an IP
#: pair with and without use_vmac): all three outcomes and every profile come up; the no-pair
#: and VMAC-pair columns are the seed's and the fix's, judged again by the scenario tests.
#: ``make test MATRIX=full`` asks all 24 cells (tests.matrix).
SLICE = {f"{p}-{c}" for p in PROFILES for c in ("ip-pair", "ip-pair-vmac")}


@pytest.mark.parametrize(
    ("profile", "column"),
    sliced([cell(p, c, id=f"{p}-{c.key}") for p in PROFILES for c in COLUMNS], SLICE),
)
def test_cell_matches_the_design_table(profile: str, column) -> None:
    result = run_cell(profile, column)
    failed = "; ".join(f"{s.name}: {s.detail[:160]}" for s in result.report.steps if not s.ok)
    assert result.as_expected, (
        f"{profile} / {column.title}: measured {result.outcome}, expected {result.expected} "
        f"(DESIGN predicts {result.predicted}; {failed or 'every step held'})"
    )
    if result.outcome == "failover-broken":
        # The observer keeps the old master's MAC: the report must show that as stale ARP.
        assert result.stale_arp_ms is not None and result.stale_arp_ms > 0
    if result.outcome == "works":
        assert result.report.failovers[-1].new_master == "ha_second"
