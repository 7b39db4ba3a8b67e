"""The registry of conformance checks: ``@check("P01")`` files a function under its row id.

:data:`CHECKS` keeps the order the checks register in, which is the order
:mod:`lab.conformance.checks` imports the modules that hold them.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.conformance.bench import Bench
from lab.conformance.verdict import Findings

Check = Callable[[Bench, Findings], None]
CHECKS: dict[str, Check] = {}


def check(row: str) -> Callable[[Check], Check]:
    """Register a function as the check of ``row``."""

    def register(fn: Check) -> Check:
        CHECKS[row] = fn
        return fn

    return register
