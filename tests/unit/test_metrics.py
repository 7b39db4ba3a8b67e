"""The failover metrics of docs/architecture.md#metrics, on hand-made records (no namespaces)."""

from __future__ import annotations

import pytest

from lab import metrics
from lab.metrics import AdvertSeen, NeighbourChange, Probe, vmac_answered_back
from lab.routers.events import Transition


def probes(pattern: str, start: float = 0.0, step: float = 0.001) -> list[Probe]:
    """`a` = served by ha_first, `b` = by ha_second, `.` = lost; one char per probe interval."""
    who = {"a": "ha_first", "b": "ha_second", ".": None}
    return [Probe(i, start + i * step, who[c]) for i, c in enumerate(pattern)]


def test_skew_and_theory_follow_rfc5798() -> None:
    assert metrics.skew_time(100, 1.0) == pytest.approx(0.609375)  # the seed's backup
    assert metrics.theory_seconds("stop", 100, 1.0) == pytest.approx(0.609375)
    assert metrics.theory_seconds("crash", 100, 1.0) == pytest.approx(3.609375)
    assert metrics.theory_seconds("host_down", 100, 0.1) == pytest.approx(0.3609375)


def test_outage_spans_last_answer_before_to_first_after() -> None:
    record = probes("aaaa" + "." * 10 + "bbb")
    last, first, lost, server = metrics.outage(record, at=0.0045)
    assert last == pytest.approx(0.003) and first == pytest.approx(0.014)
    assert lost == 10 and server == "ha_second"
    assert metrics.who_served(record, 0.0045) == "ha_first"


def test_outage_without_recovery_counts_to_the_end() -> None:
    _, first, lost, server = metrics.outage(probes("aa" + "." * 5), at=0.0015)
    assert (first, server, lost) == (None, None, 5)


def test_first_advert_skips_priority_zero_and_other_nodes() -> None:
    adverts = [
        AdvertSeen(1.0, "m1", "10.0.0.1", 1, 0, "ha_first"),
        AdvertSeen(1.2, "m2", "10.0.0.2", 1, 100, "ha_second"),
        AdvertSeen(1.1, "m2", "10.0.0.2", 2, 100, "ha_second"),
    ]
    found = metrics.first_advert_from(adverts, "ha_second", after=0.9, vrid=1)
    assert found is not None and found.at == 1.2


def test_split_brain_is_two_sources_of_one_vrid() -> None:
    adv = 0.1
    a = [AdvertSeen(t / 10, "m", "10.0.0.1", 1, 200) for t in range(0, 20)]  # 0.0 .. 1.9 s
    b = [AdvertSeen(1.0 + t / 10, "m", "10.0.0.2", 1, 100) for t in range(0, 10)]  # 1.0 .. 1.9
    (interval,) = metrics.split_brain_intervals(a + b, adv, 0.0, 5.0)
    assert interval[0] == pytest.approx(1.0) and interval[1] == pytest.approx(1.9 + 1.5 * adv)
    handover = a[:10] + [AdvertSeen(1.0 + 0.2 + t / 10, "m", "10.0.0.2", 1, 100) for t in range(5)]
    assert metrics.split_brain_intervals(handover, adv, 0.0, 5.0) == []
    resign = [*a[:10], AdvertSeen(0.95, "m", "10.0.0.1", 1, 0)]  # priority 0: a resignation
    stop_handover = resign + [
        AdvertSeen(0.95 + skew, "m", "10.0.0.2", 1, 100) for skew in (0.061, 0.161, 0.261)
    ]
    assert metrics.split_brain_intervals(stop_handover, adv, 0.0, 5.0) == []
    other_vrid = [AdvertSeen(x.at, x.src_mac, x.src_ip, 2, x.priority) for x in b]
    assert metrics.split_brain_intervals(a + other_vrid, adv, 0.0, 5.0) == []


def test_stale_arp_is_time_on_a_wrong_mac() -> None:
    good = {"00:00:5e:00:01:01"}
    fresh = [NeighbourChange(0.5, "00:00:5e:00:01:01", "REACHABLE")]
    assert metrics.stale_arp_seconds(fresh, good, takeover=1.0, end=3.0) == 0.0
    sticky = [
        NeighbourChange(0.5, "fa:16:3e:8d:dc:bb", "REACHABLE"),
        NeighbourChange(2.0, "fa:16:3e:8d:dc:bb", "STALE"),
    ]
    assert metrics.stale_arp_seconds(sticky, {"fa:16:3e:f3:a9:a3"}, 1.0, 3.0) == pytest.approx(2.0)
    healed = [*sticky, NeighbourChange(2.5, "fa:16:3e:f3:a9:a3", "REACHABLE")]
    assert metrics.stale_arp_seconds(healed, {"fa:16:3e:f3:a9:a3"}, 1.0, 3.0) == pytest.approx(1.5)
    asking = [NeighbourChange(0.5, None, "INCOMPLETE")]
    assert metrics.stale_arp_seconds(asking, good, 1.0, 3.0) == 0.0
    assert metrics.stale_arp_seconds([], good, 1.0, 3.0) is None


def test_failover_json_keeps_the_design_keys() -> None:
    f = metrics.Failover(
        "host_down",
        "ha_first",
        10.0,
        "ha_first",
        "ha_second",
        350.123,
        340.0,
        theory_ms=360.9,
        lost_probes=349,
        stale_arp_ms=0.0,
        split_brain=[(10.1, 10.2)],
    )
    record = f.as_json()
    for key in (
        "fault",
        "old_master",
        "new_master",
        "outage_ms",
        "detection_ms",
        "theory_ms",
        "lost_probes",
        "stale_arp_ms",
    ):
        assert key in record
    assert record["fault"] == "host-down" and record["outage_ms"] == 350.12
    assert record["split_brain_ms"] == [[100.0, 200.0]]


def test_outage_ignores_answers_just_after_the_fault() -> None:
    """A SIGTERMed master answers for a moment before it drops the VIP: the gap comes later."""
    record = probes("aaa" + "aa" + "." * 20 + "bbb")
    last, first, lost, server = metrics.outage(record, at=0.0025)
    assert last == pytest.approx(0.004) and first == pytest.approx(0.025)
    assert (lost, server) == (20, "ha_second")


def test_outage_takes_the_longest_gap_after_the_fault() -> None:
    record = probes("aa.aaa" + "." * 9 + "bb.b")
    last, first, lost, _ = metrics.outage(record, at=0.001)
    assert (lost, last, first) == (9, pytest.approx(0.005), pytest.approx(0.015))


def test_no_gap_is_no_outage() -> None:
    last, first, lost, server = metrics.outage(probes("aaaabbbb"), at=0.002)
    assert (last, first, lost, server) == (0.002, 0.002, 0, "ha_first")


def test_a_master_that_heard_a_better_advert_and_sent_nothing_more_is_no_split_brain() -> None:
    """A weighted check's handover: ha_first (lowered to 50) stays up and steps down when it
    hears ha_second (100). Its last advert's hold reaches past ha_second's first, but it sent
    nothing after it: a handover, whatever its daemon's report adds. One more advert of its own
    after the better one is two advertisers, however short."""
    adv = 1.0
    first = [AdvertSeen(t, "m", "10.0.0.1", 1, 200, "ha_first") for t in (0.0, 1.0, 2.0)]
    first.append(AdvertSeen(3.0, "m", "10.0.0.1", 1, 50, "ha_first"))
    second = [AdvertSeen(t, "m2", "10.0.0.2", 1, 100, "ha_second") for t in (3.6, 4.6, 5.6)]
    assert metrics.split_brain_intervals(first + second, adv, 0.0, 6.0) == []
    answered = [*first, AdvertSeen(3.603, "m", "10.0.0.1", 1, 50, "ha_first")]
    (interval,) = metrics.split_brain_intervals(answered + second, adv, 0.0, 6.0)
    assert interval[0] == pytest.approx(3.6) and interval[1] == pytest.approx(4.6)
    # A better source does not cut a worse one that keeps advertising: both stay masters.
    steady = [AdvertSeen(t, "m", "10.0.0.1", 1, 200, "ha_first") for t in (0.0, 1.0, 2.0, 3.0)]
    rival = [AdvertSeen(t, "m2", "10.0.0.2", 1, 250, "ha_second") for t in (1.5, 2.5)]
    assert metrics.split_brain_intervals(steady + rival, adv, 0.0, 3.0) == [(1.5, 3.0)]


#: The shared virtual MAC of VRID 1.
VMAC = "00:00:5e:00:01:01"


def test_the_old_master_answering_the_new_masters_garp_from_the_vmac_is_found() -> None:
    """What a plain bridge showed in one handover in several: ha_second's GARP request at
    0.818 s reached ha_first, still holding the VIP, which answered it from the shared VMAC;
    the bridge then delivered the VIP's frames to ha_first."""
    arps = [
        (100.818, "ha_second", VMAC),  # the new master's GARP
        (100.8181, "ha_first", VMAC),  # the old master's answer: the bridge learns it back
        (100.9, "ha_first", "fa:16:3e:8d:dc:bb"),  # from its own MAC: harmless
    ]
    astray = [
        (100.8, ("ha_first",)),  # before the answer: the takeover's own moment
        (100.819, ("ha_first", "ha_second")),  # flooded: the new master has it too
        (100.82, ("ha_first",)),  # astray
    ]
    found = vmac_answered_back(arps, astray, "ha_first", "ha_second", VMAC, 100.818, 0.1)
    assert found == (100.8181, 100.82)
    # An answer the fabric did not learn from sends nothing astray: not reported.
    delivered = [(100.82, ("ha_second",))]
    assert vmac_answered_back(arps, delivered, "ha_first", "ha_second", VMAC, 100.818, 0.1) is None
    # Before the new master's GARP it is the old master's own MAC to send from.
    assert vmac_answered_back(arps[1:], astray, "ha_first", "ha_second", VMAC, 100.9, 0.1) is None
    # A reply and a delivery an advert interval on are another story (the old master is
    # master again after a preemption back).
    late = [(110.0, "ha_first", VMAC)]
    assert (
        vmac_answered_back(
            late, [(110.01, ("ha_first",))], "ha_first", "ha_second", VMAC, 100.818, 0.1
        )
        is None
    )


def test_a_failover_reports_the_vmac_answered_back_after_its_fault() -> None:
    f = metrics.Failover("file_flag", "ha_first", 100.0)
    assert f.as_json()["vmac_answered_back"] is None
    f.vmac_answered_back_at, f.vmac_astray_at, f.vmac_regarp_at = 100.8181, 100.82, 105.82
    assert f.as_json()["vmac_answered_back"] == {
        "answered_ms": 818.1,
        "astray_ms": 820.0,
        "regarp_ms": 5820.0,
    }


# --- hostile neighbours: mastership, blackhole, foreign adverts (issue 17) --------------------


def _report(at: float, router: str, state: str, instance: str = "vrrp_1") -> Transition:
    return Transition(at, router, instance, state, None)


def test_mastership_counts_time_with_none_and_with_two() -> None:
    reports = [
        _report(0.0, "a", "MASTER"),
        _report(0.0, "b", "BACKUP"),
        _report(1.0, "a", "BACKUP"),  # hijacked: nobody from 1.0 ...
        _report(3.0, "a", "MASTER"),  # ... to 3.0
        _report(4.0, "b", "MASTER"),  # two masters from 4.0 ...
        _report(4.5, "b", "BACKUP"),  # ... to 4.5
    ]
    none, several = metrics.mastership(reports, 0.5, 5.0)
    assert none == pytest.approx(2.0) and several == pytest.approx(0.5)
    # Before its first report in the window a router is what it said last: a master all along.
    assert metrics.mastership(reports, 3.5, 3.9) == (0.0, 0.0)
    # Event lines (MASTER_RX_LOWER_PRI) are no state.
    assert metrics.mastership([*reports, _report(1.5, "a", "MASTER_RX_LOWER_PRI")], 0.5, 5.0)[
        0
    ] == pytest.approx(2.0)


def test_first_to_leave_master_names_the_router_and_its_new_state() -> None:
    reports = [
        _report(0.0, "a", "MASTER"),
        _report(2.0, "a", "BACKUP"),
        _report(3.0, "a", "MASTER"),
    ]
    assert metrics.first_to_leave_master(reports, 1.0, 5.0) == ("a", "BACKUP", 2.0)
    assert metrics.first_to_leave_master(reports, 2.5, 5.0) is None


def test_blackhole_sums_every_gap_in_the_window() -> None:
    # Two gaps: 0.003 → 0.008 (5 ms) and 0.011 → 0.015 (4 ms); the outage is only the longest.
    record = probes("aaaa" + "...." + "aaa" + "..." + "aa")
    assert metrics.blackhole_seconds(record, 0.0, 0.02) == pytest.approx(0.009)
    assert metrics.blackhole_seconds(probes("aaaa"), 0.0, 0.02) == 0.0
    # A gap still open at the window's end counts to the end; one open at its start from there.
    assert metrics.blackhole_seconds(probes("aa..."), 0.0, 0.01) == pytest.approx(0.009)
    assert metrics.blackhole_seconds(probes("...aa"), 0.0, 0.01) == pytest.approx(0.003)


def test_foreign_adverts_summarise_each_stranger() -> None:
    adverts = [
        AdvertSeen(1.0, "m1", "10.0.0.1", 1, 200, "ha_first", 0.1, 3),
        AdvertSeen(1.1, "m9", "10.0.0.9", 1, 255, "mallory", 0.1, 3),
        AdvertSeen(1.2, "m9", "10.0.0.9", 1, 255, "mallory", 1.0, 3),
        AdvertSeen(9.0, "m9", "10.0.0.9", 1, 255, "mallory", 0.1, 3),  # outside the window
    ]
    (x,) = metrics.foreign_adverts(adverts, ["ha_first", "ha_second"], 0.0, 5.0)
    assert (x.node, x.src_ip, x.count, x.first, x.last) == ("mallory", "10.0.0.9", 2, 1.1, 1.2)
    assert x.priorities == (255,) and x.intervals == (0.1, 1.0)
    assert str(x) == "2 adverts from mallory (10.0.0.9): VRID 1, priority 255, interval 0.1s/1s"
    assert x.as_json(1.0)["first_ms"] == pytest.approx(100.0)


def test_longest_silence_is_the_widest_gap_between_a_nodes_adverts() -> None:
    adverts = [
        AdvertSeen(t, "m1", "10.0.0.1", 1, prio, node)
        for t, prio, node in [
            (1.0, 200, "a"),
            (1.1, 200, "a"),
            (1.5, 200, "a"),  # 0.4 s silent
            (1.2, 100, "b"),  # another node's
            (1.6, 0, "a"),  # a resignation is no advert of a master
        ]
    ]
    assert metrics.longest_silence(adverts, "a", 0.0, 5.0) == pytest.approx(0.4)
    assert metrics.longest_silence(adverts, "a", 1.2, 5.0) is None
