"""The statistics of a sweep's cells: percentiles, the median's confidence interval, a summary.

Pure functions on plain lists of numbers, standard library only. A cell holds a handful of
trials (three, five, perhaps twenty), too few to assume any distribution: the median's interval
is therefore distribution-free, read from order statistics, and says how much coverage it
really has when there are too few trials for the coverage asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

#: Figures in milliseconds are rounded to this many decimals (0.01 ms): finer than any clock
#: the lab reads, and short enough for a table.
MS_DECIMALS = 2
#: Coverage is a probability, not a time; four decimals show 0.9375 or 0.9785 exactly enough.
COVERAGE_DECIMALS = 4


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0 ≤ q ≤ 100) of ``values``, by linear interpolation between the
    closest ranks: numpy's default (``method="linear"``), so figures match what an analyst
    gets from the same numbers.

    With the values sorted as x[0] ≤ … ≤ x[n-1], the rank is h = (n - 1)·q/100 and the result
    x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]). Raises ValueError on no values or q out of range.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q!r} outside 0..100")
    rank = (len(ordered) - 1) * q / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    fraction = rank - below
    if not fraction:
        # An exact rank returns the value itself, not a float product that may round off it.
        return ordered[below]
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def median_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval of the median: ``(lo, hi, coverage)``.

    Method: with the n values sorted as x(1) ≤ … ≤ x(n), the number B of values below the true
    median is binomial(n, 1/2) whatever the distribution (for a continuous one). The interval
    [x(k), x(n+1-k)] contains the median unless B < k or B > n - k, so its coverage is
    1 - 2·P(B ≤ k - 1) = 1 - 2·Σ_{i<k} C(n, i) / 2^n, computed exactly in integers. The result
    is the narrowest such symmetric pair (the largest k) whose coverage is at least
    ``confidence``.

    When n is too small for any pair to reach ``confidence`` (n < 6 for 95 %), the result is
    (min, max) with the coverage that pair actually achieves, 1 - 2/2^n: 0.75 for n = 3,
    0.9375 for n = 5, and 0 for a single value. Ties only make the interval conservative.
    Raises ValueError on no values or a confidence outside (0, 1).
    """
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("median interval of no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} outside (0, 1)")
    total = 2**n
    # k = 1, (min, max), is the fallback whatever its coverage: there is no wider pair.
    best_k, best_coverage = 1, (total - 2) / total
    tail = 1  # Σ_{i<k} C(n, i), kept up to date as k grows
    for k in range(2, (n + 1) // 2 + 1):
        tail += math.comb(n, k - 1)
        coverage = (total - 2 * tail) / total
        # Coverage only falls as k grows: the first pair below the target ends the search.
        if coverage < confidence:
            break
        best_k, best_coverage = k, coverage
    return ordered[best_k - 1], ordered[n - best_k], best_coverage


def describe(values: Iterable[float]) -> dict[str, Any]:
    """A summary of one cell's figures: ``{"n", "p50", "p95", "max", "ci95": [lo, hi],
    "ci_coverage"}``, times rounded to 0.01 ms. ``ci95`` is :func:`median_ci` at 95 % and
    ``ci_coverage`` the coverage it really has (below 0.95 for fewer than six values).

    For no values ``n`` is 0 and every figure (``ci95`` included) is None.
    """
    data: Sequence[float] = list(values)
    if not data:
        return {"n": 0, "p50": None, "p95": None, "max": None, "ci95": None, "ci_coverage": None}
    lo, hi, coverage = median_ci(data, 0.95)
    return {
        "n": len(data),
        "p50": _ms(percentile(data, 50)),
        "p95": _ms(percentile(data, 95)),
        "max": _ms(max(data)),
        "ci95": [_ms(lo), _ms(hi)],
        "ci_coverage": round(coverage, COVERAGE_DECIMALS),
    }


def _ms(value: float) -> float:
    return round(value, MS_DECIMALS)
