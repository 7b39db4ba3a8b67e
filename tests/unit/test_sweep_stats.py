"""lab.sweep.stats: percentiles as numpy's default computes them, the median's order-statistic
interval against its binomial coverage, and a cell's figures. Pure, no privileges."""

from __future__ import annotations

import math

import pytest

from lab.sweep.stats import describe, median_ci, percentile


def coverage(n: int, k: int) -> float:
    """P(x(k) ≤ median ≤ x(n+1-k)) among n values: the chance that between k and n - k of
    them lie below the median, B ~ binomial(n, 1/2). Summed over the middle directly, not as
    the complement of the tails the module uses."""
    return sum(math.comb(n, i) for i in range(k, n - k + 1)) / 2**n


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 95, 3.85),  # rank 2.85: 3 + 0.85·(4 - 3)
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([10.0, 0.0, 5.0], 25, 2.5),  # unsorted input; rank 0.5 between 0 and 5
        ([60.0, 61.0, 62.0], 95, 61.9),  # rank 1.9
        ([7.5], 95, 7.5),
        ([3.0, 3.0, 3.0, 9.0], 50, 3.0),
    ],
)
def test_percentile_interpolates_between_closest_ranks(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected, abs=1e-12)


def test_percentile_matches_numpy_default_when_numpy_is_there():
    np = pytest.importorskip("numpy")
    values = [12.0, 3.5, 8.25, 99.0, 41.0, 41.0, 0.5]
    for q in (0, 5, 33.3, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_refuses_no_values_and_q_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


@pytest.mark.parametrize("n", range(1, 41))
def test_median_ci_is_the_narrowest_symmetric_pair_with_95_percent_coverage(n):
    # Values 0..n-1, shuffled: each value is its own 0-based rank, so the bounds name k.
    values = [float((i * 7) % n) for i in range(n)] if n % 7 else [float(i) for i in range(n)]
    assert sorted(values) == [float(i) for i in range(n)]
    lo, hi, cov = median_ci(values)
    k = int(lo) + 1
    assert hi == n - k  # x(n+1-k), 0-based: symmetric
    assert cov == pytest.approx(coverage(n, k), abs=1e-12)
    if n >= 6:
        assert cov >= 0.95
        if k + 1 <= n + 1 - (k + 1):
            assert coverage(n, k + 1) < 0.95  # one step narrower falls short
    else:
        # No pair reaches 95 %: (min, max), with the coverage it really has.
        assert (lo, hi) == (0, n - 1)
        assert cov < 0.95


@pytest.mark.parametrize(
    ("n", "bounds", "cov"),
    [
        (1, (1, 1), 0.0),
        (2, (1, 2), 0.5),
        (3, (1, 3), 0.75),
        (5, (1, 5), 0.9375),
        (6, (1, 6), 0.96875),
        (10, (2, 9), 0.978515625),
        (20, (6, 15), 1 - 2 * 21700 / 2**20),
    ],
)
def test_median_ci_known_cases(n, bounds, cov):
    lo, hi, got = median_ci([float(i) for i in range(1, n + 1)])
    assert (lo, hi) == bounds
    assert got == pytest.approx(cov, abs=1e-12)


def test_median_ci_at_another_confidence():
    # At 50 %, ten values: [x(4), x(7)] covers 1 - 2·(1+10+45+120)/1024 = 0.65625 and
    # [x(5), x(6)] only 1 - 2·386/1024 = 0.24609375, so x(4)..x(7) it is.
    lo, hi, cov = median_ci([float(i) for i in range(1, 11)], confidence=0.5)
    assert (lo, hi) == (4.0, 7.0)
    assert cov == pytest.approx(0.65625) == coverage(10, 4)
    assert coverage(10, 5) < 0.5


def test_median_ci_refuses_no_values_and_silly_confidence():
    with pytest.raises(ValueError):
        median_ci([])
    with pytest.raises(ValueError):
        median_ci([1.0, 2.0], confidence=1.0)


def test_describe_three_trials():
    assert describe([62.0, 60.0, 61.0]) == {
        "n": 3,
        "p50": 61.0,
        "p95": 61.9,
        "max": 62.0,
        "ci95": [60.0, 62.0],
        "ci_coverage": 0.75,
    }


def test_describe_rounds_to_a_hundredth_of_a_millisecond():
    figures = describe([61.23456, 61.23456])
    assert figures["p50"] == 61.23
    assert figures["ci95"] == [61.23, 61.23]


def test_describe_of_nothing_is_all_none():
    assert describe([]) == {
        "n": 0,
        "p50": None,
        "p95": None,
        "max": None,
        "ci95": None,
        "ci_coverage": None,
    }
