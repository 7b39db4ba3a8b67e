"""A run's recording and the failovers measured from it, on hand-made recorders (no namespaces).

The measurements read a frozen :class:`lab.recording.Recording`, so one failover can be played
here from a few fake recorders: the prober, the capture, the neighbour watch, the SDN controller
and two routers.
"""

from __future__ import annotations

from typing import Any

import pytest

from lab import metrics
from lab.capture import ArpEvent, VrrpAdvert
from lab.measure import account_run, measure_failovers, run_events
from lab.neighbours import NeighbourChange
from lab.probe import ProbeResult, ProbeResults
from lab.recording import Recording, StepStamp, record
from lab.routers.base import BfdStream, EventStream, Transition
from lab.steps import Step

VIP = "10.0.0.100"
MAC = {"ha_first": "02:00:00:00:00:01", "ha_second": "02:00:00:00:00:02"}
VMAC = "00:00:5e:00:01:33"  # VRID 51
CONFIG = """vrrp_instance VI_1 {{
  state BACKUP
  interface ens3
  virtual_router_id 51
  priority {priority}
  version 3
  advert_int 0.1
  use_vmac
  virtual_ipaddress {{ 10.0.0.100 }}
}}
"""
STOP = Step.model_validate({"stop": "ha_first"})


def advert(t: float, who: str, priority: int) -> VrrpAdvert:
    """A VRID 51 advert of ``who`` on the wire at ``t``."""
    return VrrpAdvert(
        time=t,
        sender=who,
        src_mac=MAC[who],
        dst_mac="01:00:5e:00:00:12",
        src_ip="10.0.0.1",
        dst_ip="224.0.0.18",
        ttl=255,
        version=3,
        type=1,
        vrid=51,
        priority=priority,
        count=1,
        adver_int=0.1,
        addresses=(VIP,),
        checksum=0,
        checksum_form="pseudo-header",
    )


def garp(t: float, who: str) -> ArpEvent:
    """A gratuitous ARP for the VIP from ``who`` at ``t``."""
    return ArpEvent(
        time=t,
        sender=who,
        src_mac=MAC[who],
        dst_mac="ff:ff:ff:ff:ff:ff",
        op=1,
        kind="garp",
        sha=MAC[who],
        spa=VIP,
        tha="00:00:00:00:00:00",
        tpa=VIP,
    )


class FakeCapture:
    """ha_first advertises until 5 s, ha_second from 5.3 s and sends two GARPs."""

    def __init__(self) -> None:
        self.reads = 0

    def events(self) -> list[Any]:
        self.reads += 1
        found = [advert(i / 10, "ha_first", 200) for i in range(50)]
        found += [advert(5.3 + i / 10, "ha_second", 100) for i in range(20)]
        return sorted([*found, garp(5.31, "ha_second"), garp(5.32, "ha_second")], key=_time)


def _time(event: Any) -> float:
    return float(event.time)


class FakeProber:
    """A probe every 10 ms, ha_first serving until 5 s, none answered until 5.35 s."""

    def results(self) -> ProbeResults:
        items = []
        for i in range(800):
            t = i / 100
            if 5.0 <= t < 5.35:
                items.append(ProbeResult(i, t))
            else:
                items.append(ProbeResult(i, t, t + 0.001, "ha_first" if t < 5 else "ha_second"))
        return ProbeResults(items, 100.0)


class FakeWatch:
    """The observer's entry for the VIP: ha_first's MAC from 1 s, ha_second's from 5.5 s."""

    def changes(self) -> list[NeighbourChange]:
        return [
            NeighbourChange(1.0, VIP, MAC["ha_first"], "REACHABLE", "new", 2),
            NeighbourChange(5.5, VIP, MAC["ha_second"], "STALE", "new", 2),
        ]


class FakeController:
    """One answer for the VIP (ha_second's MAC), and one for another address."""

    def __init__(self) -> None:
        self.events = [
            {"t": 5.33, "event": "answered", "ip": VIP, "mac": MAC["ha_second"]},
            {"t": 5.34, "event": "answered", "ip": "10.0.0.9", "mac": MAC["ha_first"]},
        ]


class FakeRouter:
    """A router's config and notify stream, as the recording reads them."""

    def __init__(self, name: str, priority: int, transitions: list[tuple[float, str]]) -> None:
        self.config_text = CONFIG.format(priority=priority)
        self.source = f"{name}.conf"
        self.events = EventStream(name)
        self.bfd_events = BfdStream(name)
        for at, state in transitions:
            self.events.append(Transition(at, name, "VI_1", state, priority))


def recording(capture: FakeCapture | None = None, **overrides: Any) -> Recording:
    """The recording of one graceful stop of ha_first at 5 s, the run ended at 8 s."""
    kwargs: dict[str, Any] = dict(
        probes=FakeProber(),
        capture=capture or FakeCapture(),
        neighbours=FakeWatch(),
        controller=FakeController(),
        routers={
            "ha_first": FakeRouter("ha_first", 200, [(0.5, "MASTER"), (5.0, "BACKUP")]),
            "ha_second": FakeRouter("ha_second", 100, [(0.4, "BACKUP"), (5.29, "MASTER")]),
        },
        port_macs={name: frozenset({mac}) for name, mac in MAC.items()},
        vip=VIP,
        holders_at_window_end=[],
        faults=[(STOP, 5.0)],
        steps=[StepStamp(0.1, "start all", "started"), StepStamp(5.0, "stop ha_first", "at")],
        observer="observer",
    )
    kwargs.update(overrides)
    return record(**kwargs)


def test_record_reads_the_capture_once() -> None:
    capture = FakeCapture()
    rec = recording(capture)
    assert capture.reads == 1
    assert len(rec.adverts) == 70 and rec.garps == [(5.31, "ha_second"), (5.32, "ha_second")]
    assert rec.sdn_answers == [(5.33, MAC["ha_second"])]
    assert rec.timers["ha_second"].priority == 100 and rec.timers["ha_second"].use_vmac
    assert [t.at for t in rec.transitions] == [0.5, 5.0, 0.4, 5.29]  # router by router


def test_a_graceful_stop_measured_from_the_recording() -> None:
    (f,) = measure_failovers(recording(), end=8.0)
    assert (f.fault, f.node, f.old_master, f.new_master) == (
        "stop",
        "ha_first",
        "ha_first",
        "ha_second",
    )
    assert f.outage_ms == pytest.approx(360)  # 4.991 s (last reply) to 5.351 s (first after)
    assert f.lost_probes == 35
    assert f.detection_ms == pytest.approx(300) and f.first_advert_after == pytest.approx(5.3)
    assert f.theory_ms == pytest.approx(metrics.theory_seconds("stop", 100, 0.1) * 1000)
    assert (f.first_garp_after, f.garps_after) == (5.31, 2)
    assert (f.sdn_answer_after, f.sdn_answer_mac) == (5.33, MAC["ha_second"])
    assert (f.neighbour_change_after, f.neighbour_mac_after) == (5.5, MAC["ha_second"])
    assert f.stale_arp_ms == pytest.approx(200)  # ha_first's MAC from the takeover to 5.5 s


def test_without_controller_or_watch_those_figures_stay_empty() -> None:
    (f,) = measure_failovers(recording(controller=None, neighbours=None), end=8.0)
    assert f.sdn_answer_after is None and f.neighbour_change_after is None
    assert f.stale_arp_ms is None and f.outage_ms == pytest.approx(360)


def test_timeline_and_accounting_read_the_recording() -> None:
    rec = recording()
    kinds = {(e.source, e.kind) for e in run_events(rec)}
    assert {("step", "fault"), ("step", "step"), ("ha_second", "transition")} <= kinds
    failovers = measure_failovers(rec, end=8.0)
    accounted = account_run(rec, failovers, [4.9], end=8.0)
    assert accounted.sent == 800 and accounted.lost["unanswered"] == 35
    assert dict(accounted.served) == {"ha_first": 500, "ha_second": 265}
