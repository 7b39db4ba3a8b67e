"""The bundled daemon's status figures that live in memory for its lifetime (no lab)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from vrrp.control import LatenessRing, dump_traced_memory, lateness_ms, memory_status


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


def test_the_memory_status_counts_live_blocks_and_traces_only_when_tracing() -> None:
    kept = []
    before = memory_status()
    assert set(before) == {"allocated_blocks"}, "no tracing: no traced figures"
    kept.extend(object() for _ in range(5000))
    assert memory_status()["allocated_blocks"] >= before["allocated_blocks"] + 4000
    tracemalloc.start()
    try:
        kept.extend(bytearray(100) for _ in range(1000))
        traced = memory_status()
    finally:
        tracemalloc.stop()
    assert traced["traced_kib"] >= 100 and traced["traced_peak_kib"] >= traced["traced_kib"]


def test_a_memory_snapshot_is_written_only_while_tracing(tmp_path: Path) -> None:
    path = tmp_path / "vrrp.ctl.tracemalloc"
    why_not = dump_traced_memory(str(path))
    assert why_not is not None and "PYTHONTRACEMALLOC" in why_not and not path.exists()
    tracemalloc.start()
    try:
        kept = [bytearray(4096) for _ in range(64)]
        assert dump_traced_memory(str(path)) is None
    finally:
        tracemalloc.stop()
    snapshot = tracemalloc.Snapshot.load(str(path))
    here = [s for s in snapshot.statistics("filename") if s.traceback[0].filename == __file__]
    assert here and here[0].size >= 64 * 4096, "the snapshot holds what this test allocated"
    assert len(kept) == 64 and not list(tmp_path.glob("*.partial"))
