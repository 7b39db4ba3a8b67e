"""The stall witness: its judgement rule, the probe's line format, and real stalls seen.

The frozen-probe tests stop plain processes (no namespaces, no root): SIGSTOP for longer than
the tolerance is the fault, and its duration is timed on purpose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lab import clock
from lab.conformance.verdict import STALL_KEY, Findings, combine
from lab.linux import Scheduling, realtime_allowed
from lab.stalls import (
    HOST_FLOOR,
    PERIOD,
    RTNL_PERIOD,
    SELF_FLOOR,
    Inconclusive,
    Stall,
    StallWitness,
    judge,
    overlapping,
    parse_line,
)
from lab.wait import wait_until

TOL = 0.020
#: How long a test freezes a probe: three tolerances, well clear of it either way.
FREEZE = 0.060


def test_judge_takes_the_largest_overlapping_stall_longer_than_the_tolerance() -> None:
    stalls = [
        Stall(10.0, 10.030, "cpu0"),  # overlaps, 30 ms
        Stall(10.5, 10.550, "self"),  # overlaps, 50 ms: the largest
        Stall(11.5, 11.600, "cpu1"),  # 100 ms but after the window
    ]
    assert judge(stalls, 10.0, 11.0, TOL) == stalls[1]


def test_judge_lets_a_verdict_stand_below_or_at_the_tolerance() -> None:
    stalls = [Stall(10.0, 10.015, "cpu0"), Stall(10.2, 10.2195, "self")]
    assert judge(stalls, 10.0, 11.0, TOL) is None


def test_judge_counts_a_stall_that_straddles_either_edge() -> None:
    before = Stall(9.97, 10.01, "cpu0")
    after = Stall(10.99, 11.05, "cpu1")
    assert judge([before], 10.0, 11.0, TOL) == before
    assert judge([after], 10.0, 11.0, TOL) == after
    assert judge([Stall(9.0, 9.9, "self")], 10.0, 11.0, TOL) is None


def test_overlapping_orders_by_start() -> None:
    a, b = Stall(2.0, 2.1, "self"), Stall(1.0, 1.1, "cpu0")
    assert overlapping([a, b], 0.0, 3.0) == [b, a]


def test_parse_line() -> None:
    assert parse_line("stall 100.5 100.56 1\n") == Stall(100.5, 100.56, "cpu1")
    assert parse_line("synced 100.0") is None
    assert parse_line("ready fifo2 0") is None
    with pytest.raises(ValueError, match="malformed"):
        parse_line("stall 100.5 1")
    with pytest.raises(ValueError, match="ends before"):
        parse_line("stall 100.5 100.4 0")


def test_inconclusive_names_the_stall_and_the_tolerance() -> None:
    stall = Stall(1_000_000.100, 1_000_000.160, "cpu1")
    exc = Inconclusive("T01 takeover", stall, (1_000_000.0, 1_000_000.4), TOL)
    text = str(exc)
    assert "T01 takeover: inconclusive" in text
    assert "60.0 ms stall (cpu1)" in text and "+100 ms into the window" in text
    assert "tolerance 20 ms" in text and "(400 ms)" in text


def test_floors_sit_below_the_tolerance() -> None:
    # Every stall that can spoil a 20 ms verdict is recorded by either kind of probe.
    assert HOST_FLOOR < SELF_FLOOR < TOL


def frozen_stall(witness: StallWitness, source: str, began: float, ended: float) -> Stall:
    """The stall ``source`` reported for a freeze from ``began`` to ``ended``: the one that
    covers it (due by the time the probe was stopped, over no earlier than it was let go).
    Other probes' stalls are not it: on a loaded host they may be longer."""
    witness.sync(ended)
    mine = [s for s in witness.stalls(began, ended) if s.source == source]
    covering = [s for s in mine if s.start <= began + 0.005 and s.end >= ended - 0.005]
    assert covering, f"no stall of {source} covers the freeze; recorded {witness.stalls()}"
    return max(covering, key=lambda s: s.seconds)


def test_a_stopped_host_probe_reports_the_stall() -> None:
    # Its own CPU probes (hub=None): a shared one frozen would be a stall to every witness.
    with StallWitness(hub=None) as witness:
        cpu_probes = {k: v for k, v in witness.priorities.items() if k.startswith("cpu")}
        assert cpu_probes and set(cpu_probes.values()) <= {"fifo2", "nice-20", "none"}
        probe = witness._probes[0]
        began = clock.now()
        os.kill(probe.proc.pid, signal.SIGSTOP)
        time.sleep(FREEZE)  # the fault itself: a freeze of known length
        os.kill(probe.proc.pid, signal.SIGCONT)
        ended = clock.now()
        with pytest.raises(Inconclusive, match=r"frozen probe: inconclusive: a \d+\.\d ms stall"):
            witness.check(began, ended, TOL, "frozen probe")
        stall = frozen_stall(witness, f"cpu{probe.cpu}", began, ended)
    # The probe runs at the highest priority allowed: it is back the moment it is let go.
    assert FREEZE - 0.005 <= stall.seconds <= FREEZE + 0.050, stall
    # The same stall does not spoil a window that ended before it.
    assert judge([stall], began - 1.0, began - 0.5, TOL) is None
    assert witness.summary()["worst_ms"] >= round(stall.seconds * 1000, 2)


def test_the_peer_probe_runs_at_the_routers_nice_and_reports_its_own_stalls() -> None:
    # The peer probe stands in for a router waiting for a CPU: unpinned, SCHED_OTHER, at the
    # routers' nice. Frozen, it reports the stall under its own name, and a verdict measured
    # between two kernel stamps (host_only) is judged by it too.
    with StallWitness(peer=Scheduling(nice=5)) as witness:
        assert witness.priorities["nice+5"] == "nice+5", witness.priorities
        peer = next(p for p in witness._probes if p.label == "nice+5")
        assert os.sched_getaffinity(peer.proc.pid) == os.sched_getaffinity(0)
        assert os.sched_getscheduler(peer.proc.pid) == os.SCHED_OTHER
        # Placed as a router is: a session (and so a scheduler autogroup) of its own.
        assert os.getsid(peer.proc.pid) == peer.proc.pid != os.getsid(0)
        began = clock.now()
        os.kill(peer.proc.pid, signal.SIGSTOP)
        time.sleep(FREEZE)  # the fault itself: a freeze of known length
        os.kill(peer.proc.pid, signal.SIGCONT)
        ended = clock.now()
        assert witness.judge(began, ended, TOL, host_only=True) is not None
        stall = frozen_stall(witness, "nice+5", began, ended)
    # No upper bound: at nice +5 on a busy host it may wait longer for a CPU once let go, and
    # that wait is a stall too.
    assert stall.seconds >= FREEZE - 0.005, stall


def test_the_peer_probe_runs_realtime_beside_realtime_routers() -> None:
    # Routers at SCHED_FIFO (the conformance IUT, where allowed) wait only behind other
    # realtime work: the peer probe then runs so, unpinned, in a session of its own. Where
    # realtime is refused (rootless) it stays SCHED_OTHER and its priority says so.
    with StallWitness(peer=Scheduling(fifo=1)) as witness:
        peer = next(p for p in witness._probes if p.cpu == -1)
        if realtime_allowed():
            assert peer.label == "fifo1" and witness.priorities["fifo1"] == "fifo1"
            assert os.sched_getscheduler(peer.proc.pid) == os.SCHED_FIFO
        else:
            assert witness.priorities[peer.label].startswith("nice"), witness.priorities
        assert os.sched_getaffinity(peer.proc.pid) == os.sched_getaffinity(0)
        assert os.getsid(peer.proc.pid) == peer.proc.pid != os.getsid(0)


def test_a_stopped_measuring_process_is_seen_by_its_self_probe() -> None:
    # A child runs a witness with only the self probe (so no other probe can be what saw it),
    # is frozen, then prints what its own thread recorded.
    program = textwrap.dedent(
        """
        import json, sys
        from lab.stalls import StallWitness
        with StallWitness(host=False) as w:
            print("ready", flush=True)
            sys.stdin.readline()
            w.sync()
            print(json.dumps([s.as_dict() for s in w.stalls()]), flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", program],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        began = clock.now()
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(FREEZE)
        os.kill(proc.pid, signal.SIGCONT)
        ended = clock.now()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        seen = [
            Stall(d["start"], d["end"], d["source"]) for d in json.loads(proc.stdout.readline())
        ]
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=10)
    stall = judge(seen, began, ended, TOL)
    assert stall is not None, f"the self probe recorded {seen}"
    assert stall.source == "self" and stall.seconds >= FREEZE - 0.005, stall


# --- how conformance findings use the witness ----------------------------------------------


def _witness_with(*stalls: Stall) -> StallWitness:
    witness = StallWitness(host=False)  # not started: it holds only what it is given
    for stall in stalls:
        witness.add(stall)
    return witness


def test_a_timing_case_across_a_stall_is_inconclusive_not_pass_or_fail() -> None:
    for ok in (True, False):
        f = Findings(6, _witness_with(Stall(100.1, 100.16, "self")))
        judged = f.timing(ok, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01")
        assert judged is None and not f.passes and not f.failures
        assert f.outcome == "inconclusive", (ok, f.passes, f.failures)
        verdict = f.verdict("T01", "bundled")
        assert verdict.outcome == "inconclusive" and verdict.families == {"IPv6": "inconclusive"}
        assert "IPv6: T01: inconclusive: a 60.0 ms stall (self)" in verdict.reason
        assert verdict.evidence[f"IPv6: T01: {STALL_KEY}"].startswith("60.0 ms stall (self)")
        assert verdict.stalls["spoiled"][0]["ms"] == 60.0
        with pytest.raises(Inconclusive, match=r"T01 bundled IPv6: T01: inconclusive: a 60\.0 ms"):
            verdict.raise_if_inconclusive()


def test_a_timing_case_beside_a_stall_is_judged() -> None:
    witness = _witness_with(Stall(100.1, 100.115, "cpu0"), Stall(101.0, 101.1, "cpu1"))
    f = Findings(4, witness)
    f.timing(False, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01")
    assert f.outcome == "fail" and f.failures == ["late"]


def test_a_case_late_by_less_than_a_stall_under_the_tolerance_is_inconclusive() -> None:
    # A 15 ms stall is under the 20 ms tolerance, but a takeover 3 ms past its bound could be
    # that stall plus the IUT's own latency: inconclusive. 30 ms past it, the stall cannot
    # explain it, and a case early by any amount is never a stall's doing: both fail.
    stall = Stall(100.1, 100.115, "cpu0")
    late = Findings(4, _witness_with(stall))
    assert (
        late.timing(
            False, "", "late", window=(100.0, 100.4), tolerance=TOL, what="T01", late_by=0.003
        )
        is None
    )
    assert late.outcome == "inconclusive" and "15.0 ms stall" in late.inconclusive[0]
    for late_by in (0.030, -0.003, None):
        judged = Findings(4, _witness_with(stall))
        judged.timing(
            False, "", "off", window=(100.0, 100.4), tolerance=TOL, what="T01", late_by=late_by
        )
        assert judged.outcome == "fail" and judged.failures == ["off"], late_by
    passed = Findings(4, _witness_with(stall))
    passed.timing(
        True, "on time", "", window=(100.0, 100.4), tolerance=TOL, what="T01", late_by=0.0
    )
    assert passed.outcome == "pass"


def test_a_case_late_by_more_than_its_stalls_add_up_to_fails() -> None:
    # A discard window that ran 361 ms past a conformant takeover's bound (the stand-in that
    # accepts TTL 254 stayed backup): a 33 ms RTNL hold, a 42 ms probe stall and a 21.8 ms
    # stall of the measuring process, each over the 20 ms tolerance, add up to 96.8 ms and
    # cannot have held a takeover back that long, so the fail stands (rt10: judged
    # inconclusive three times over on a quiet host). Stalls holding the host for longer than
    # the lateness could have: inconclusive, the longest named with the time held, which
    # counts once what several probes saw at once (and nothing past the window).
    stalls = (
        Stall(100.10, 100.133, "rtnl"),
        Stall(100.30, 100.342, "fifo1"),
        Stall(100.50, 100.5218, "self"),
    )
    window = (100.0, 100.742)
    stands = Findings(4, _witness_with(*stalls))
    stands.timing(False, "", "accepted", window=window, tolerance=TOL, what="P02", late_by=0.361)
    assert stands.outcome == "fail" and stands.failures == ["accepted"]
    held = (Stall(100.35, 100.70, "cpu1"), Stall(100.69, 100.80, "cpu0"))
    spoiled = Findings(4, _witness_with(*stalls, *held))
    assert (
        spoiled.timing(
            False, "", "accepted", window=window, tolerance=TOL, what="P02", late_by=0.361
        )
        is None
    )
    assert spoiled.outcome == "inconclusive"
    assert (
        "stalls holding the host 467.0 ms in all could have made it 361.0 ms late"
        in spoiled.inconclusive[0]
    )
    assert "350.0 ms stall (cpu1)" in spoiled.inconclusive[0]


def test_a_real_fail_in_one_family_still_fails_the_row() -> None:
    witness = _witness_with(Stall(100.1, 100.2, "cpu1"))
    v4, v6 = Findings(4, witness), Findings(6, witness)
    v4.check(False, "", "TTL 254 accepted")
    v6.timing(True, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01")
    verdict = combine("P02", "frr", [v4, v6])
    assert verdict.outcome == "fail"
    assert verdict.families == {"IPv4": "fail", "IPv6": "inconclusive"}
    assert "TTL 254 accepted" in verdict.reason and "inconclusive: IPv6: T01" in verdict.reason
    passed = Findings(4, witness)
    passed.check(True, "fine", "")
    assert combine("P02", "frr", [passed, v6]).outcome == "inconclusive"


def test_a_failed_control_is_n_a_unless_a_stall_may_be_why() -> None:
    quiet, noisy = Findings(4, _witness_with()), Findings(4, _witness_with(Stall(1, 2, "self")))
    quiet.control("control failed", window=(0.5, 1.5), tolerance=TOL)
    noisy.control("control failed", window=(0.5, 1.5), tolerance=TOL)
    assert quiet.outcome == "n/a" and noisy.outcome == "inconclusive"


def test_the_conformance_summary_counts_inconclusive_cells() -> None:
    from lab.conformance.cli import summary
    from lab.conformance.verdict import Verdict

    verdicts = [
        Verdict("T01", "k", "inconclusive", "", seconds=2.0, stalls={"worst_ms": 61.2}),
        Verdict("P01", "k", "pass", "", seconds=1.0),
    ]
    assert summary(verdicts, "k") == (
        "k: 1 pass, 0 fail, 0 n/a, 1 inconclusive of 2 rows in 3s "
        "(host stalls up to 61 ms spoiled their timing)"
    )


def test_a_wire_timed_case_is_judged_by_host_stalls_only() -> None:
    # Between two captured frames, the measuring process being starved on its own moves
    # nothing; a host stall (which holds back the IUT) does.
    own = Findings(4, _witness_with(Stall(100.1, 100.2, "self")))
    own.timing(True, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01", wire=True)
    assert own.outcome == "pass"
    host = Findings(4, _witness_with(Stall(100.1, 100.2, "cpu1")))
    host.timing(
        True, "on time", "late", window=(100.0, 100.4), tolerance=TOL, what="T01", wire=True
    )
    assert host.outcome == "inconclusive"


def test_a_bound_is_judged_by_the_margin_to_its_nearer_edge() -> None:
    from lab.failover_verdict import margin_ms
    from lab.steps import Bound

    assert margin_ms(303.4, Bound(min=240.9, max=380.9)) == pytest.approx(62.5)
    assert margin_ms(614.0, Bound(max=2000)) == pytest.approx(1386.0)
    assert margin_ms(400.0, Bound(max=380.9)) == pytest.approx(19.1)  # outside: how far


def test_the_run_queue_probe_reports_the_waits_that_grew_past_its_floor():
    from lab.stall_probe import new_waits

    before = {"/a": 1_000_000, "/b": 5_000_000}
    now = {"/a": 44_000_000, "/b": 6_000_000, "/c": 90_000_000}
    # /a waited 43 ms since the last reading, /b 1 ms (under the floor), /c is new: nothing yet.
    assert new_waits(before, now, 2_000_000) == [43_000_000]
    assert new_waits(now, now, 2_000_000) == []


def test_the_run_queue_probe_holds_the_threads_counters_open_and_lets_dead_ones_go():
    import os
    import threading

    from lab.stall_probe import SchedstatFiles, descendants, threads

    files = SchedstatFiles()
    started, leave = threading.Event(), threading.Event()
    helper = threading.Thread(target=lambda: (started.set(), leave.wait()))
    helper.start()
    started.wait()
    mine = threads(descendants([os.getpid()]))
    assert f"/proc/{os.getpid()}/task/{helper.native_id}/schedstat" in mine
    files.follow([*mine, "/proc/0/task/0/schedstat"])  # the last is no thread: not held
    first = files.read()
    assert set(first) == set(mine) and all(d >= 0 for d in first.values())
    main = f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat"
    assert files.read()[main] >= first[main]  # read again through the same descriptor
    leave.set()
    helper.join()
    gone = f"/proc/{os.getpid()}/task/{helper.native_id}/schedstat"
    listing = wait_until(
        lambda: threads(descendants([os.getpid()])),
        accept=lambda paths: gone not in paths,
        timeout=5,
        what="the ended thread to leave /proc",
    )
    files.follow(listing)  # the next rescan closes the ended thread's file
    assert gone not in files.fds and main in files.fds
    files.follow([])
    assert files.fds == {}


def test_an_rtnl_stall_outside_the_iuts_netlink_changes_cannot_spoil_a_window():
    from lab.stalls import Stall, StallWitness

    witness = StallWitness(host=False)
    witness.add(Stall(10.5, 10.54, "rtnl"))
    witness.add(Stall(12.0, 12.01, "cpu0"))
    assert witness.judge(10.0, 13.0, 0.02) == Stall(10.5, 10.54, "rtnl")
    # The IUT changed links or addresses only until 10.2: the lock held later moved nothing.
    assert witness.judge(10.0, 13.0, 0.02, rtnl_within=(10.0, 10.2)) is None
    # One held before it still counts.
    assert witness.judge(10.0, 13.0, 0.02, rtnl_within=(10.0, 10.6)) == Stall(10.5, 10.54, "rtnl")
    witness.add(Stall(11.0, 11.05, "nice-10"))
    other = witness.judge(10.0, 13.0, 0.02, rtnl_within=(10.0, 10.2))
    assert other == Stall(11.0, 11.05, "nice-10")


def test_a_takeovers_netlink_changes_are_at_its_end():
    from lab.stalls import Stall, StallWitness, takeover_netlink

    witness = StallWitness(host=False)
    window, tol = (20.0, 20.36), 0.02
    where = takeover_netlink(window[1], tol)
    assert where == (20.34, 20.36)
    # Held 100 ms into the window, while a backup waits on its timer: it moved nothing.
    witness.add(Stall(20.1, 20.13, "rtnl"))
    assert witness.judge(*window, tol, rtnl_within=where) is None
    # Held until the takeover: the VIP's address change waited for it.
    witness.add(Stall(20.31, 20.355, "rtnl"))
    assert witness.judge(*window, tol, rtnl_within=where) == Stall(20.31, 20.355, "rtnl")


def test_a_lab_tests_late_figure_is_inconclusive_only_where_stalls_could_have_made_it_late():
    from lab.stalls import Inconclusive, Stall, StallWitness

    # rt25 beside scripts/neighbour-labs.sh: a link flap meant to stay down 721.9 ms came back
    # up after 742.2 ms, 0.3 ms past the 20 ms tolerance, behind an RTNL hold of 19.5 ms (under
    # the tolerance) just before the link-up. The hold plus the harness's own timer wake
    # explains it: inconclusive, the hold named with the time it held the host.
    start, end, late_by = 50.0, 50.7422, 0.0003
    witness = StallWitness(host=False)
    witness.add(Stall(50.72, 50.7395, "rtnl"))
    where = (end - TOL - late_by, end)
    with pytest.raises(Inconclusive, match=r"holding the host 19\.5 ms .* 0\.3 ms late") as exc:
        witness.check_late(start, end, late_by, TOL, "link flap: down for", rtnl_within=where)
    assert exc.value.stall == Stall(50.72, 50.7395, "rtnl")
    # The same hold cannot explain a figure 25 ms late, nor one held by the lock half a second
    # earlier, before the link-up was due: the fail stands (check_late returns).
    witness.check_late(start, end, 0.025, TOL, "link flap: down for", rtnl_within=where)
    early = StallWitness(host=False)
    early.add(Stall(50.2, 50.22, "rtnl"))
    early.check_late(start, end, late_by, TOL, "link flap: down for", rtnl_within=where)
    # A host stall anywhere in the window counts, however early.
    early.add(Stall(50.3, 50.301, "cpu0"))
    with pytest.raises(Inconclusive, match=r"1\.0 ms stall \(cpu0\)"):
        early.check_late(start, end, late_by, TOL, "link flap: down for", rtnl_within=where)


def _hub_name() -> str:
    """A stall hub of the test's own, so that no other witness on the machine shares it."""
    return f"vrrp-lab/test-hub-{os.getpid()}-{time.monotonic_ns()}"


def test_witnesses_share_one_hubs_host_probes_and_each_sees_their_stalls() -> None:
    # Two witnesses, one set of CPU and RTNL probes (the hub's): a shared probe frozen is a
    # stall to both, and the probes end with the last witness (no process is left behind).
    name = _hub_name()
    with StallWitness(hub=name) as first, StallWitness(hub=name) as second:
        if first._hub is None:
            pytest.skip("the stall hub is for a root witness in the machine's netns")
        shared = {k: v for k, v in first.probe_pids.items() if k.startswith(("cpu", "rtnl"))}
        assert shared and shared.items() <= second.probe_pids.items(), (shared, second.probe_pids)
        began = clock.now()
        os.kill(shared["cpu0"], signal.SIGSTOP)
        time.sleep(FREEZE)  # the fault itself: a freeze of known length
        os.kill(shared["cpu0"], signal.SIGCONT)
        ended = clock.now()
        for witness in (first, second):
            stall = frozen_stall(witness, "cpu0", began, ended)
            assert FREEZE - 0.005 <= stall.seconds <= FREEZE + 0.050, stall
    wait_until(
        lambda: [pid for pid in shared.values() if os.path.exists(f"/proc/{pid}")],
        accept=lambda alive: not alive,
        timeout=5.0,
        what="the hub's probes to end with the last witness",
    )


def test_a_hub_that_dies_is_replaced_and_the_gap_counts_as_a_stall() -> None:
    # The hub SIGKILLed (its probes follow it): the witness starts a new one, and the time it
    # was without probes is a stall of every one of them, so no window across it is judged.
    from lab.stall_hub import HubLink

    name = _hub_name()
    seen: list[Stall] = []
    args = [str(PERIOD), str(RTNL_PERIOD), str(HOST_FLOOR)]
    link = HubLink(name, lambda *stall: seen.append(Stall(*stall)), args)
    try:
        old, joined = dict(link.pids), link.joined
        before = clock.now()
        hub = _parent_of(old["cpu0"])
        os.kill(hub, signal.SIGKILL)
        wait_until(
            lambda: [s for s in seen if s.source.endswith("(hub restarted)")],
            accept=lambda restarted: len(restarted) == len(old),
            timeout=10.0,
            what="a stall of every probe for the hub's restart",
        )
        assert link.pids.keys() == old.keys() and not set(link.pids.values()) & set(old.values())
        gap = next(s for s in seen if s.source == "cpu0 (hub restarted)")
        # From the join (no sync was asked for): not from the beginning of time.
        assert joined <= gap.start <= before <= gap.end <= clock.now(), (gap, joined, before)
        link.ask()
        assert link.wait_synced(clock.now() - 0.001, time.monotonic() + 5.0) == []
    finally:
        link.close()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_a_detection_is_spoiled_only_by_the_netlink_work_that_could_have_delayed_it():
    """The runner's failover verdicts: an RTNL hold counts against a detection only within
    the tolerance of its end (the new master's one netlink change), and not at all when the
    wire shows the advert of a daemon that sends it before any netlink change (bundled)."""
    from lab.failover_verdict import FailoverVerdict
    from lab.metrics import Failover
    from lab.routers.bundled import BundledRouter
    from lab.routers.keepalived import KeepalivedRouter
    from lab.stalls import NO_NETLINK, StallWitness

    def verdict(router: object) -> FailoverVerdict:
        return FailoverVerdict(StallWitness(), {"ha_second": router}, 1000.0)

    failover = Failover("stop", "ha_first", at=100.0, new_master="ha_second", detection_ms=61.0)
    assert verdict(BundledRouter).netlink(failover, "detection_ms", 20.0) == NO_NETLINK
    # The observer's figures: anywhere.
    assert verdict(BundledRouter).netlink(failover, "outage_ms", 20.0) is None
    assert verdict(KeepalivedRouter).netlink(failover, "detection_ms", 20.0) == pytest.approx(
        (100.041, 100.061)
    )
    failover.detection_source = "notify"  # the report comes after the VIPs, whoever sent it
    assert verdict(BundledRouter).netlink(failover, "detection vs theory", 20.0) == pytest.approx(
        (100.041, 100.061)
    )
