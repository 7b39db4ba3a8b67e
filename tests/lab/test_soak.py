"""The soak, short (issue 17): twenty failovers in one lab per implementation and a couple of
fresh labs grow nothing that counts, and a torn-down lab leaves nothing in the runner.

The long soak (``benchmarks/soak.py``, under ``make bench``) runs 500 cycles of each kind and
judges every series, resident memory too. Twenty cycles show a leak per cycle (a descriptor,
a thread, a process, an entry per failover): those series are judged here, by the same rule
(:func:`lab.soak.judge`). Resident memory is not judged here: over twenty cycles it is the
allocator's warm-up, which only the long soak tells apart. The one-lab part forgets the labs'
records of the run after each cycle (``benchmarks/soak.py --forget-records``), as the long
soak that judges the runner does: the cycles must go on without them, and the records must
not pile up.
"""

from __future__ import annotations

import dataclasses

import pytest

from lab import Lab, soak
from lab.host_state import HostState, differences, snapshot
from lab.node import Namespace

pytestmark = pytest.mark.lab

#: Cycles in the one-lab part: implementations alternate, so each lab has half of them.
ONE_LAB_CYCLES = 20
#: Labs built, failed over once and torn down.
FRESH_CYCLES = 2
#: The slowest growth the short soak is asked about, in units per cycle of a lab: half the
#: leak it must catch (one per failover). Slower growth is the long soak's to judge; over ten
#: cycles a lab's neighbour entry that comes and goes is a one-unit step, which the rule cannot
#: tell from a slow leak (lab.soak.judge).
MIN_RATE = 0.5
#: The runner's figures that a torn-down lab must leave as it found them.
RUNNER_COUNTS = ("runner.fds", "runner.threads", "runner.descendants")


def _planted(samples: list[soak.Sample], series: str) -> list[soak.Sample]:
    """``samples`` with one more of ``series`` per cycle: a leak on top of the real noise."""
    return [
        dataclasses.replace(s, resources={**s.resources, series: s.resources[series] + s.cycle})
        for s in samples
    ]


def test_short_soak_grows_nothing(host_state: HostState) -> None:
    impls = list(soak.IMPLS)
    samples = list(soak.run_cycles("one-lab", impls, range(ONE_LAB_CYCLES), forget_records=True))
    assert [s.cycle for s in samples] == list(range(ONE_LAB_CYCLES))
    # Forgotten after each cycle, the fault history holds that cycle's alone: a fault and
    # its undo at most (kept, it holds every fault of the lab's run).
    held = [s.resources["records.faults"] for s in samples]
    assert max(held) <= 2, f"the fault history piled up over the cycles: {held}"
    assert all("records.sdn.events" in s.resources for s in samples)
    baseline = soak.runner_series()
    fresh = list(soak.run_cycles("fresh-labs", impls, range(FRESH_CYCLES)))

    trends = soak.judge_all(samples, min_rate=MIN_RATE)
    grown = soak.growing(trends, counts_only=True)
    assert not grown, "series growing over the short soak:\n" + soak.table(grown)
    judged = [t for t in trends if t.verdict != "too short" and soak.is_count(t.series)]
    assert judged, f"no series had enough cycles to judge: {[t.series for t in trends]}"

    # A descriptor leaked per failover, on top of the noise these very cycles had, is caught.
    for series in ("runner.fds", "daemon.ha_second.fds"):
        judged_planted = soak.judge_all(_planted(samples, series), min_rate=MIN_RATE)
        planted = soak.growing(judged_planted, counts_only=True)
        assert [t.series for t in planted if t.series.endswith(series)], (
            f"one {series} more per cycle was not judged growing:\n"
            + soak.table(t for t in judged_planted if t.series.endswith(series))
        )

    for s in fresh:
        assert s.build is not None and s.build > 0, f"fresh lab {s.cycle} has no build time"
        left = {k: s.resources[k] for k in RUNNER_COUNTS}
        before = {k: baseline[k] for k in RUNNER_COUNTS}
        assert left == before, (
            f"fresh lab {s.cycle} ({s.impl}, {s.fault}) left the runner with {left}; "
            f"before the fresh labs it had {before}"
        )
    assert differences(host_state, snapshot()) == []


def _stranded(node: Namespace) -> int:
    """The replies queued on the root queue of ``node``'s lab-long ``IPRoute`` for this
    thread: pyroute2 0.9.7 files there what no request waits for, and only a socket bound to
    multicast groups ever reads it (pyroute2's internals: ``CoreMessageQueue.root``)."""
    return int(node.ipr.asyncore.msg_queue.root.qsize())


def test_link_lookups_strand_nothing_on_a_nodes_socket() -> None:
    """``Namespace.link_index`` on the lab-long socket of a node leaves no reply behind,
    however often it is asked (pyroute2's ``link_lookup`` strands the kernel's ACK, about
    2 KB, one a call, for the socket's life: the soak's fix 2)."""
    with Lab(soak.soak_scenario(), label=None) as lab:
        node = lab.node(soak.MASTER)
        before = _stranded(node)
        index = node.link_index("ens3")
        assert index is not None
        for _ in range(200):
            assert node.link_index("ens3") == index
        assert node.link_index("no-such-link") is None
        assert _stranded(node) == before
