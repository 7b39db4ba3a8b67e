"""Which cells of the suite's matrices a run asks: a slice by default, every cell on request.

``make test`` asks a slice of each matrix (implementation pairs × modes, profiles × columns,
the RFC 9568 column), chosen so that every implementation, role, mode and outcome the full
matrix holds still comes up at least once; ``VRRP_LAB_MATRIX=full`` (``make test MATRIX=full``,
``make conformance``) asks every cell. The full matrices take the two-core machine the suite
is sized for well past its 15-minute bound, and the CLI prints them with figures
(``vrrp-lab conformance``, ``benchmarks/profile_matrix.py``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

import pytest
from _pytest.mark.structures import ParameterSet

#: One named cell of a matrix (what ``pytest.param`` makes).
Cell = ParameterSet

#: Whether every cell of every matrix is asked (``VRRP_LAB_MATRIX=full``).
FULL = os.environ.get("VRRP_LAB_MATRIX") == "full"


def sliced(cells: Sequence[ParameterSet], keep: Collection[str]) -> list[ParameterSet]:
    """The cells ``make test`` asks: those whose id is in ``keep`` (all of them when
    :data:`FULL`). Every id in ``keep`` must name a cell, so a renamed cell cannot silently
    leave the slice empty."""
    ids = {cell.id for cell in cells if cell.id is not None}
    unknown = set(keep) - ids
    if unknown:
        raise ValueError(f"matrix slice names no cell: {sorted(unknown)} (cells: {sorted(ids)})")
    return list(cells) if FULL else [cell for cell in cells if cell.id in keep]


def cell(*values: object, id: str, marks: Sequence[pytest.MarkDecorator] = ()) -> ParameterSet:
    """One cell of a matrix, named (``pytest.param`` with a required id)."""
    return pytest.param(*values, id=id, marks=marks)
