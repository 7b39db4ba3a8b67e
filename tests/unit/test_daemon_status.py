"""The bundled daemon's status figures that live in memory for its lifetime (no lab)."""

from __future__ import annotations

import tracemalloc

import pytest

from vrrp.control import LatenessRing, lateness_ms


def test_the_ring_keeps_the_latest_samples_in_order_of_arrival() -> None:
    ring = LatenessRing(size=4)
    assert len(ring) == 0 and list(ring) == []
    assert lateness_ms(ring) == {"samples": 0, "p50": None, "p99": None, "max": None}
    for n in range(1, 7):
        ring.append(n / 1000)
    assert len(ring) == 4
    assert sorted(ring) == [0.003, 0.004, 0.005, 0.006]
    assert lateness_ms(ring) == {"samples": 4, "p50": 5.0, "p99": 6.0, "max": 6.0}


def test_filling_the_ring_allocates_nothing() -> None:
    """A daemon master for hours adds ten samples a second: its memory must not move with them
    (a deque of floats grew 32 bytes a sample until full: the soak's never-restarted daemon)."""
    ring = LatenessRing(size=10000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(25000):
            ring.append(n * 1e-6)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024, f"{grown} bytes allocated by 25,000 samples"
    assert len(ring) == 10000 and max(ring) == pytest.approx(24999e-6)


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        LatenessRing(size=0)
