"""The conformance matrix as tests: every row against every implementation the lab can run.

An inconclusive verdict (a timing case overlapped a host stall longer than its tolerance) raises
:class:`lab.stalls.Inconclusive`: the plugin runs the test again. Any other verdict must equal
the expected-verdict table (``lab/conformance/expected.py``), in each
address family: a pass, or a known departure with its reason. A keepalived or FRR fail is a
finding recorded there, not a broken test; a change in any verdict (a fixed bug, a regression,
a new departure) fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.conformance import iut, run_row
from lab.conformance.bench import RFC9568_SUFFIX
from lab.conformance.cli import not_runnable
from lab.conformance.expected import BFD_COLUMNS, COLUMNS, TRACKER_COLUMNS, expectation
from lab.conformance.rows import BFD_ROWS, ROWS, TRACKER_ROWS, VRRP_ROWS
from tests.matrix import FULL


def asked(column: str, row: str) -> bool:
    """Whether the suite asks ``column`` the ``row``: every cell with
    ``VRRP_LAB_MATRIX=full`` (``make conformance``, :mod:`tests.matrix`). By default
    (``make test``) a slice:

    * an RFC 9568 column only the rows RFC 9568 changes (:attr:`Row.rfc9568`), because on the
      others it runs the RFC 5798 column's code to the same figures;
    * FRR (:data:`SLICED_COLUMNS`) its departures (every row whose expected verdict is not a
      pass: where a change in FRR or in its driver shows first) and the first passing row of
      each group (P, T, F, A, B, K), so that every kind of check still meets it.

    keepalived's and the bundled daemon's columns are asked whole. The full matrix costs the
    suite's conformance stage about three minutes more on two cores (``vrrp-lab conformance``
    prints it with figures).
    """
    if FULL:
        return True
    if column.endswith(RFC9568_SUFFIX):
        return ROWS[row].rfc9568
    if column in SLICED_COLUMNS:
        return expectation(column, row).outcome != "pass" or row in _first_passes(column)
    return True


#: The columns ``make test`` asks a slice of (:func:`asked`).
SLICED_COLUMNS = ("frr",)


def _first_passes(column: str) -> set[str]:
    """The first row of each group (by its letter) that ``column`` is expected to pass."""
    firsts: dict[str, str] = {}
    for row in [*VRRP_ROWS, *BFD_ROWS, *TRACKER_ROWS]:
        if expectation(column, row).outcome == "pass":
            firsts.setdefault(row[0], row)
    return set(firsts.values())


#: Every cell: the VRRP rows in every column (an RFC 9568 column: see :func:`asked`), the BFD
#: rows in the columns with a BFD of their own (bundled-9568 is the bundled daemon's BFD
#: again: its RFC 9568 switch is VRRP's), the tracker rows in the columns of their own
#: implementation (bundled-9568 tracks as bundled does).
CELLS = (
    [(c, r) for c in COLUMNS for r in VRRP_ROWS if asked(c, r)]
    + [(c, r) for c in BFD_COLUMNS for r in BFD_ROWS if asked(c, r)]
    + [(c, r) for c in TRACKER_COLUMNS for r in TRACKER_ROWS if asked(c, r)]
)


@pytest.mark.lab
@pytest.mark.parametrize(("column", "row"), CELLS, ids=[f"{c}-{r}" for c, r in CELLS])
def test_row_verdict(column: str, row: str, tmp_path: Path) -> None:
    """``column``'s verdict on ``row`` is the expected one."""
    target = iut(column)
    missing = not_runnable(target)
    if missing:
        pytest.skip(missing)
    want = expectation(column, row)
    verdict = run_row(target, row, tmp_path)
    verdict.raise_if_error()  # the harness broke: fail with its traceback, never compare
    verdict.raise_if_inconclusive()  # a stall spoiled a timing case: re-run, never compared
    assert verdict.outcome == want.outcome, (
        f"{verdict}; expected {want.outcome} ({want.reason}); evidence {verdict.evidence}, "
        f"frames {verdict.frames} in {verdict.pcap}"
    )
    assert verdict.families == want.families(row), (
        f"{verdict}; expected per family {want.families(row)}, got {verdict.families}"
    )
    if want.contains:
        assert want.contains in verdict.reason, f"{verdict}; expected it to say {want.contains!r}"
