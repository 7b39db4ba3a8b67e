"""Every verdict can fail (issue 6, point 3), and every check can pass.

For each row, the scripted stand-in (``liar.py``) plays the implementation under test and breaks
just that row's rule; the row's check, unchanged, must report ``fail``, in IPv4 and in IPv6. The
honest stand-in (no flaw) must pass every row in both families, so a fail is the flaw's doing,
not the bench's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.conformance import ROWS, run_row
from tests.conformance.liar import FLAWS
from tests.conformance.standin import liar_iut

BROKEN = {flaw: row for flaw, row in FLAWS.items() if row}
#: Rows that ask several cases: each case must fail on its own against the flaw, in each
#: family (the IPv6 reasons carry the ``IPv6: `` prefix too), so no case is a passenger.
CASES = {
    "accept-type": ("type 2: accepted", "version 4: accepted", "VRID 2: accepted"),
    "accept-short": ("truncated", "count 2 with 1 address: accepted"),
}


def test_every_row_has_a_flaw() -> None:
    """The stand-in breaks each row's rule in one of its flaws (no lab needed)."""
    assert sorted(BROKEN.values()) == sorted(ROWS)


@pytest.mark.lab
@pytest.mark.parametrize("flaw", list(BROKEN), ids=[f"{r}-{f}" for f, r in BROKEN.items()])
def test_check_fails_on_its_flaw(flaw: str, tmp_path: Path) -> None:
    """The check of the row ``flaw`` breaks reports fail against that stand-in."""
    row = BROKEN[flaw]
    verdict = run_row(liar_iut(flaw), row, tmp_path)
    verdict.raise_if_error()  # the harness broke: fail with its traceback, never compare
    verdict.raise_if_inconclusive()  # a host stall spoiled a timing case: run again
    # In every family the row is asked in: each family's question can fail on its own.
    assert verdict.families == dict.fromkeys(_families(row), "fail"), (
        f"{verdict}; evidence {verdict.evidence}"
    )
    failures = verdict.reason.split("; ")
    for case in CASES.get(flaw, ()):
        for prefix in ("", "IPv6: "):
            assert any(f.startswith(prefix + case) for f in failures), (
                f"{prefix}{case} did not fail: {verdict.reason}"
            )


@pytest.mark.lab
@pytest.mark.parametrize("row", list(ROWS))
def test_honest_standin_passes(row: str, tmp_path: Path) -> None:
    """The stand-in without a flaw passes the row: the bench itself is sound."""
    verdict = run_row(liar_iut("none"), row, tmp_path)
    verdict.raise_if_error()  # the harness broke: fail with its traceback, never compare
    verdict.raise_if_inconclusive()  # a host stall spoiled a timing case: run again
    assert verdict.families == dict.fromkeys(_families(row), "pass"), (
        f"{verdict}; evidence {verdict.evidence}"
    )


def _families(row: str) -> list[str]:
    return [f"IPv{family}" for family in ROWS[row].families]
