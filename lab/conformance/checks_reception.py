"""The plain reception row, P02: an advert with TTL 254 discarded.

:mod:`lab.conformance.checks` imports this module after the other check modules, so P02 stays
the last row registered in :data:`lab.conformance.registry.CHECKS`, as it was before the checks
were split into modules.
"""

from __future__ import annotations

from lab.conformance.bench import TESTER_PRIO, Bench
from lab.conformance.procedures import discard_case
from lab.conformance.registry import check
from lab.conformance.verdict import Findings


@check("P02")
def p02(b: Bench, f: Findings) -> None:
    """An advert with TTL 254 is discarded."""
    discard_case(b, f, "TTL 254", lambda: b.frame(TESTER_PRIO, ttl=254))
