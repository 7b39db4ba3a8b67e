"""The SDN profile table, cell by cell, reproduced in the lab (issue 4, scenarios 2).

The predictions are those of docs/architecture.md#profile-predictions.

Each cell runs a short-timer scenario (lab.profile_matrix) and compares the measured outcome
with the table's prediction. `benchmarks/profile_matrix.py` prints the same table with figures.
"""

from __future__ import annotations

import pytest

from lab.profile_matrix import COLUMNS, PROFILES, run_cell

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("column", COLUMNS, ids=[c.key for c in COLUMNS])
@pytest.mark.parametrize("profile", PROFILES)
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
