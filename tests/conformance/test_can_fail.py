"""Every verdict can fail (issue 6, point 3; issue 13 for the B rows), and every check can pass.

For each row, a stand-in plays the implementation under test and breaks just that row's rule
(``liar.py`` for the VRRP rows, ``bfd_liar.py`` for the BFD rows, ``mutant.py``, the bundled
daemon with one function replaced, for the tracker rows); the row's check,
unchanged, must report ``fail``, in IPv4 and in IPv6 (a BFD row in IPv4: see :func:`families`).
The honest stand-in (no flaw) must pass every row in the same families, so a fail is the flaw's
doing, not the bench's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.conformance import ROWS, Iut, run_row
from lab.conformance.checks_bfd import MALFORMED
from lab.conformance.rows import Family
from tests.conformance.bfd_liar import FLAWS as BFD_FLAWS
from tests.conformance.liar import FLAWS
from tests.conformance.mutant import FLAWS as MUTANT_FLAWS
from tests.conformance.standin import bfd_liar_iut, liar_iut, mutant_iut
from tests.matrix import cell, sliced

BROKEN = {
    flaw: row for flaws in (FLAWS, BFD_FLAWS, MUTANT_FLAWS) for flaw, row in flaws.items() if row
}
#: Rows that ask several cases: each case must fail on its own against the flaw, in each
#: family (the IPv6 reasons carry the ``IPv6: `` prefix too), so no case is a passenger.
#: ``{ttl}`` is the family's word: TTL or hop limit.
CASES = {
    "accept-type": ("type 2: accepted", "version 4: accepted", "VRID 2: accepted"),
    "accept-short": ("truncated", "count 2 with 1 address: accepted"),
    "ttl64": ("sent: {ttl} 64", "{ttl} 254: accepted"),
    "accept-malformed": tuple(f"{label}: accepted" for label in MALFORMED),
}


def standin(flaw: str, row: str) -> Iut:
    """The stand-in column breaking ``flaw`` that plays ``row``'s protocol: for a K row, the
    bundled daemon with that flaw (``none``: the daemon itself)."""
    if ROWS[row].tracker:
        return mutant_iut(flaw)
    return bfd_liar_iut(flaw) if ROWS[row].bfd else liar_iut(flaw)


def families(row: str) -> tuple[Family, ...]:
    """The families the stand-in is asked ``row`` in: every one for a VRRP row; IPv4 for a
    BFD row, whose stand-in has one code path for both (a UDP socket of either family), while
    the IPv6 question is asked of keepalived, bundled and FRR in ``test_rows`` (and this keeps
    the suite's conformance stage within a minute of what it was)."""
    return (4,) if ROWS[row].bfd else ROWS[row].families


def test_every_row_has_a_flaw() -> None:
    """The stand-ins break each row's rule in one of their flaws (no lab needed)."""
    assert sorted(BROKEN.values()) == sorted(ROWS)
    assert {ROWS[row].bfd for row in BFD_FLAWS.values() if row} == {True}
    assert {ROWS[row].tracker for row in MUTANT_FLAWS.values() if row} == {True}


@pytest.mark.lab
@pytest.mark.parametrize("flaw", list(BROKEN), ids=[f"{r}-{f}" for f, r in BROKEN.items()])
def test_check_fails_on_its_flaw(flaw: str, tmp_path: Path) -> None:
    """The check of the row ``flaw`` breaks reports fail against that stand-in."""
    row = BROKEN[flaw]
    verdict = run_row(standin(flaw, row), row, tmp_path, families(row))
    verdict.raise_if_error()  # the harness broke: fail with its traceback, never compare
    verdict.raise_if_inconclusive()  # a host stall spoiled a timing case: run again
    # In every family the row is asked in: each family's question can fail on its own.
    assert verdict.families == dict.fromkeys(_families(row), "fail"), (
        f"{verdict}; evidence {verdict.evidence}"
    )
    failures = verdict.reason.split("; ")
    for case in CASES.get(flaw, ()):
        for prefix, ttl in (("", "TTL"), ("IPv6: ", "hop limit"))[: len(families(row))]:
            want = prefix + case.format(ttl=ttl)
            assert any(f.startswith(want) for f in failures), (
                f"{want} did not fail: {verdict.reason}"
            )


def first_of_each_group() -> list[str]:
    """The rows ``make test`` asks the honest stand-ins: the first of each group (P, T, F, A,
    U, B, K), so that every stand-in (the liar, the BFD liar, the mutant) and every kind of
    check is asked at least once; ``VRRP_LAB_MATRIX=full`` (``make conformance``) asks every
    row. Every flaw is asked in both (:func:`test_check_fails_on_its_flaw`): that each check
    can fail is the promise; the honest stand-in passing each row is the bench's own control,
    which the bundled daemon's column of ``test_rows`` also gives row by row."""
    firsts: dict[str, str] = {}
    for row in ROWS:
        firsts.setdefault(row[0], row)
    return list(firsts.values())


@pytest.mark.lab
@pytest.mark.parametrize("row", sliced([cell(r, id=r) for r in ROWS], first_of_each_group()))
def test_honest_standin_passes(row: str, tmp_path: Path) -> None:
    """The stand-in without a flaw passes the row: the bench itself is sound."""
    verdict = run_row(standin("none", row), row, tmp_path, families(row))
    verdict.raise_if_error()  # the harness broke: fail with its traceback, never compare
    verdict.raise_if_inconclusive()  # a host stall spoiled a timing case: run again
    assert verdict.families == dict.fromkeys(_families(row), "pass"), (
        f"{verdict}; evidence {verdict.evidence}"
    )


def _families(row: str) -> list[str]:
    return [f"IPv{family}" for family in families(row)]
