"""BFD in runs, without namespaces: the daemons' log lines as events, the BFD component of a
failover from a hand-made recording, its report and JSON, and the steps that use BFD.

The log lines are keepalived 2.2.7's, as it printed them in the lab (``-l -D``, a date before
each); the bundled daemon prints the same messages after ``vrrp[PID]:``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lab import fault_table, faults, metrics
from lab.capture_events import BfdControl
from lab.errors import ScenarioError
from lab.measure import measure_failovers, run_events
from lab.recording import StepStamp, record
from lab.report import failover_timeline, plot_failovers, print_report
from lab.routers.events import BfdEvent, BfdStream, parse_bfd_line
from lab.runner import RunReport, StepResult
from lab.scenario import parse_scenario
from lab.steps import Step
from tests.unit.test_recording import MAC, FakeController, FakeProber, FakeRouter, FakeWatch

DATE = "Sun Dec  6 19:26:47 2026: "
IP = {"ha_first": "10.0.0.1", "ha_second": "10.0.0.2"}
HOST_DOWN = Step.model_validate({"host-down": "ha_first"})

# --- the daemons' lines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"{DATE}(peer) Entering Up state",
            BfdEvent(1.0, "r", "peer", "session", "Up"),
        ),
        (
            f"{DATE}(peer) Entering Down state (Local diagnostic - Control Detection Time "
            "Expired, Remote diagnostic - No Diagnostic)",
            BfdEvent(1.0, "r", "peer", "session", "Down", diag=1, remote_diag=0),
        ),
        (
            "2026-12-06 19:26:47,123 vrrp[42]: (peer) Entering Down state (Local diagnostic - "
            "Neighbor Signaled Session Down, Remote diagnostic - Administratively Down)",
            BfdEvent(1.0, "r", "peer", "session", "Down", diag=3, remote_diag=7),
        ),
        (
            f"{DATE}(peer) Entering AdminDown state",
            BfdEvent(1.0, "r", "peer", "session", "AdminDown"),
        ),
        (
            f"{DATE}(peer) Expired after 150 ms (89 usec overdue)",
            BfdEvent(1.0, "r", "peer", "expired", "Down", expired_after_ms=150.0),
        ),
        (
            f"{DATE}Received BFD event: instance peer is in state Down (delivered in 27 usec)",
            BfdEvent(1.0, "r", "peer", "received", "Down"),
        ),
        (
            f"{DATE}VRRP_Instance(VI_1) Tracked BFD instance peer is DOWN",
            BfdEvent(1.0, "r", "peer", "tracked", "Down", instance="VI_1"),
        ),
    ],
)
def test_bfd_lines_are_events(line: str, expected: BfdEvent) -> None:
    assert parse_bfd_line(line, 1.0, "r") == expected


@pytest.mark.parametrize(
    "line",
    [
        f"{DATE}(VI_1) Entering BACKUP STATE (init)",  # VRRP's state, in capitals
        f"{DATE}(VI_1) Entering MASTER STATE",
        f"{DATE}(peer) Starting poll sequence",
        f"{DATE}(peer) ---------------< Session parameters >--------------",
        f"{DATE}Starting BFD child process, pid=30",
        "",
    ],
)
def test_other_lines_are_not_bfd_events(line: str) -> None:
    assert parse_bfd_line(line, 1.0, "r") is None


def test_the_stream_knows_each_sessions_last_state() -> None:
    stream = BfdStream("r")
    assert stream.session_state("peer") is None
    for at, state in ((1.0, "Up"), (2.0, "Down")):
        stream.append(BfdEvent(at, "r", "peer", "session", state))
    stream.append(BfdEvent(2.1, "r", "peer", "tracked", "Up", instance="VI_1"))
    assert stream.session_state("peer") == "Down"
    event = stream.wait_for(lambda e: e.state == "Down", timeout=0, what="a Down")
    assert event.at == 2.0
    with pytest.raises(Exception, match="BFD events seen: r BFD session peer Up"):
        stream.wait_for(lambda e: e.state == "Init", timeout=0, what="an Init")


# --- the BFD component of a failover --------------------------------------------------------


def packet(t: float, who: str, state: str = "Up", diag: int = 0, **over: Any) -> BfdControl:
    """A BFD packet of ``who`` to the other router at ``t``, delivered unless told."""
    other = "ha_second" if who == "ha_first" else "ha_first"
    fields: dict[str, Any] = dict(
        time=t,
        sender=who,
        receivers=(other,),
        src_mac=MAC[who],
        dst_mac=MAC[other],
        src_ip=IP[who],
        dst_ip=IP[other],
        src_port=49152,
        dst_port=3784,
        ttl=255,
        version=1,
        diag=diag,
        state=state,
        poll=False,
        final=False,
        demand=False,
        auth=False,
        detect_mult=3,
        length=24,
        my_discriminator=1,
        your_discriminator=2 if state == "Up" else 0,
        desired_min_tx=0.05 if state == "Up" else 1.0,
        required_min_rx=0.05,
        required_min_echo_rx=0.0,
        discard=None,
    )
    fields.update(over)
    return BfdControl(**fields)


class BfdCapture:
    """Both routers send BFD every 40 ms until ha_first's host dies at 5 s (its last packet
    at 4.98 s); ha_second's session expires at 5.13 s and its first Down packet is at 5.16 s.
    ha_second advertises as master from 8.5 s."""

    def events(self) -> list[Any]:
        from tests.unit.test_recording import advert

        found: list[Any] = [advert(i / 10, "ha_first", 220) for i in range(50)]
        found += [advert(8.5 + i, "ha_second", 100) for i in range(2)]
        found += [packet(i * 0.04 + 0.02 * (w == "ha_second"), w) for i in range(125) for w in MAC]
        found = [e for e in found if not (e.sender == "ha_first" and e.time > 4.98)]
        found.append(packet(4.98, "ha_first"))
        found.append(packet(5.16, "ha_second", "Down", diag=1))
        return sorted(found, key=lambda e: e.time)


def bfd_router(name: str, priority: int, transitions: list[tuple[float, str]]) -> FakeRouter:
    router = FakeRouter(name, priority, transitions)
    router.bfd_events = BfdStream(name)
    return router


def host_down_recording() -> Any:
    """ha_first's host dies at 5 s: ha_second's session Down at 5.13 s, MASTER at 8.5 s."""
    first = bfd_router("ha_first", 200, [(0.5, "MASTER")])
    second = bfd_router("ha_second", 100, [(0.4, "BACKUP"), (8.49, "MASTER")])
    first.bfd_events.append(BfdEvent(0.3, "ha_first", "ha_second", "session", "Up"))
    second.bfd_events.append(BfdEvent(0.3, "ha_second", "ha_first", "session", "Up"))
    second.bfd_events.append(
        BfdEvent(5.13, "ha_second", "ha_first", "expired", "Down", expired_after_ms=150)
    )
    second.bfd_events.append(
        BfdEvent(5.13, "ha_second", "ha_first", "session", "Down", diag=1, remote_diag=0)
    )
    return record(
        probes=FakeProber(),
        capture=BfdCapture(),
        neighbours=FakeWatch(),
        controller=FakeController(),
        routers={"ha_first": first, "ha_second": second},
        port_macs={name: frozenset({mac}) for name, mac in MAC.items()},
        vip="10.0.0.100",
        holders_at_window_end=[],
        faults=[(HOST_DOWN, 5.0)],
        steps=[StepStamp(5.0, "host-down ha_first", "at")],
        observer="observer",
    )


def test_the_bfd_component_of_a_host_down() -> None:
    rec = host_down_recording()
    assert [(c.router, c.state) for c in rec.bfd_changes] == [
        ("ha_first", "Up"),
        ("ha_second", "Up"),
        ("ha_second", "Down"),
    ]
    (f,) = measure_failovers(rec, end=10.0)
    assert f.new_master == "ha_second" and f.detection_ms == pytest.approx(3500)
    b = f.bfd
    assert b is not None
    assert (b.router, b.session, b.peer, b.diag) == ("ha_second", "ha_first", "ha_first", 1)
    assert b.detection_ms == pytest.approx(130)
    assert b.last_packet_from_peer == pytest.approx(4.98)
    assert b.first_down_packet == pytest.approx(5.16)
    assert b.silence_ms == pytest.approx(180)
    # ha_first's Detect Mult 3 x max(ha_second's Required Min RX, ha_first's Desired Min TX).
    assert b.detect_time_ms == pytest.approx(150)
    record_json = f.as_json()["bfd"]
    assert record_json == {
        "router": "ha_second",
        "session": "ha_first",
        "peer": "ha_first",
        "detection_ms": 130.0,
        "diag": 1,
        "detect_time_ms": 150.0,
        "configured_detect_time_ms": None,
        "last_packet_from_peer_ms": -20.0,
        "first_down_packet_ms": 160.0,
        "silence_ms": 180.0,
    }


def test_bfd_events_join_the_run_timeline() -> None:
    kinds = {(e.source, e.kind) for e in run_events(host_down_recording())}
    assert {("ha_second", "bfd-session"), ("ha_second", "bfd-expired")} <= kinds
    assert ("capture", "bfd") in kinds  # the wire's state changes, beside the daemons'


def test_the_new_masters_session_counts_first() -> None:
    changes = [
        metrics.BfdChange(5.10, "ha_first", "ha_second", "Down", 1),
        metrics.BfdChange(5.12, "ha_second", "ha_first", "Down", 1),
    ]
    # A bfd-loss: both ends go Down; the new master's detection is the one that could matter.
    found = metrics.bfd_detection(changes, [], 5.0, 9.0, node="ha_first", new_master="ha_second")
    assert found is not None and found.router == "ha_second"
    # Without a new master, a router other than the fault's node.
    found = metrics.bfd_detection(changes, [], 5.0, 9.0, node="ha_first")
    assert found is not None and found.router == "ha_second"
    found = metrics.bfd_detection(
        changes, [], 5.0, 9.0, configured={("ha_first", "ha_second"): 0.15}
    )
    assert found is not None and found.router == "ha_first"
    assert found.configured_detect_time_ms == pytest.approx(150)
    assert found.first_down_packet is None and found.detect_time_ms is None


def test_no_session_down_no_bfd_component() -> None:
    ups = [metrics.BfdChange(5.1, "ha_second", "ha_first", "Up")]
    assert metrics.bfd_detection(ups, [], 5.0, 9.0) is None
    late = [metrics.BfdChange(9.5, "ha_second", "ha_first", "Down", 1)]
    assert metrics.bfd_detection(late, [], 5.0, 9.0) is None


def test_a_packet_the_fabric_dropped_was_not_heard() -> None:
    """Under bfd-loss the capture still sees the peer's packets enter the fabric: the last one
    the survivor heard is the last one delivered to it."""
    packets = [
        metrics.BfdPacket(4.95, "ha_first", IP["ha_first"], IP["ha_second"], "Up", 0, 3, 0.05,
                          0.05, ("ha_second",)),
        metrics.BfdPacket(5.05, "ha_first", IP["ha_first"], IP["ha_second"], "Up", 0, 3, 0.05,
                          0.05, ()),
        metrics.BfdPacket(5.2, "ha_second", IP["ha_second"], IP["ha_first"], "Down", 1, 3, 1.0,
                          0.05, ()),
    ]  # fmt: skip
    changes = [metrics.BfdChange(5.1, "ha_second", "ha_first", "Down", 1)]
    found = metrics.bfd_detection(changes, packets, 5.0, 9.0)
    assert found is not None and found.last_packet_from_peer == pytest.approx(4.95)


def test_a_takeover_sooner_than_the_advert_hold_is_no_split_brain() -> None:
    """A BFD takeover comes well within 1.5 advert intervals of the dead master's last advert:
    the master's host died at the fault, so it advertised no more from there."""
    from lab.measure import advertising_ends
    from lab.routers.events import Transition

    adverts = [metrics.AdvertSeen(t, "m1", "10.0.0.1", 1, 200, "ha_first") for t in (3.0, 4.0)]
    adverts += [metrics.AdvertSeen(t, "m2", "10.0.0.2", 1, 100, "ha_second") for t in (4.2, 5.2)]
    assert metrics.split_brain_intervals(adverts, 1.0, 0.0, 6.0) == [(4.2, 5.5)]
    ends = advertising_ends([], [(HOST_DOWN, 4.05)])
    assert ends == {"ha_first": [4.05]}
    assert metrics.split_brain_intervals(adverts, 1.0, 0.0, 6.0, stopped=ends) == []
    # A master that stepped down (it heard a better one) stopped advertising when it said so.
    steps_down = [
        Transition(1.0, "ha_first", "VI_1", "MASTER", 200),
        Transition(4.1, "ha_first", "VI_1", "BACKUP", 200),
        Transition(0.5, "ha_second", "VI_1", "BACKUP", 100),
    ]
    assert advertising_ends(steps_down, []) == {"ha_first": [4.1]}
    assert (
        metrics.split_brain_intervals(
            adverts, 1.0, 0.0, 6.0, stopped=advertising_ends(steps_down, [])
        )
        == []
    )
    # Where both still advertise, the split brain stands.
    late = [*adverts, metrics.AdvertSeen(4.9, "m1", "10.0.0.1", 1, 200, "ha_first")]
    assert metrics.split_brain_intervals(late, 1.0, 0.0, 6.0, stopped=ends) == [(4.9, 6.0)]


# --- the report -----------------------------------------------------------------------------


def test_the_report_shows_the_bfd_component() -> None:
    (f,) = measure_failovers(host_down_recording(), end=10.0)
    lines = [text for _, text in failover_timeline(f)]
    assert "last BFD packet ha_second heard from ha_first" in lines
    assert "ha_second's BFD session ha_first Down (diag 1), detection time 150 ms" in lines
    report = RunReport("seed-bfd", "bundled", failovers=[f], started=0.0)
    report.bfd_events = list(host_down_recording().bfd_events)
    out = io.StringIO()
    print_report(report, Console(file=out, width=200))
    assert "BFD detection" in out.getvalue() and "130.0 ms (of 150)" in out.getvalue()
    events = report.as_json()["bfd_events"]
    assert events[-1] == {
        "t_ms": 5130.0,
        "router": "ha_second",
        "session": "ha_first",
        "kind": "session",
        "state": "Down",
        "diag": 1,
        "remote_diag": 0,
    }


def test_the_json_report_carries_ovns_events_on_the_runs_clock() -> None:
    report = RunReport("vip-port-ovn", "bundled", started=100.0)
    report.ovn_events = [
        {"t": 101.25, "event": "bind-vport", "port": "vip", "parent": "second"},
        {"t": 101.5, "event": "port-binding", "port": "vip", "chassis": "bound", "up": True},
    ]
    assert report.as_json()["ovn_events"] == [
        {"t_ms": 1250.0, "event": "bind-vport", "port": "vip", "parent": "second"},
        {"t_ms": 1500.0, "event": "port-binding", "port": "vip", "chassis": "bound", "up": True},
    ]
    assert RunReport("seed", "keepalived").as_json()["ovn_events"] == []


def test_the_failover_plot_draws_the_bfd_component(tmp_path: Path) -> None:
    rec = host_down_recording()
    (f,) = measure_failovers(rec, end=10.0)
    report = RunReport("seed-bfd", "bundled", failovers=[f], started=0.0)
    (plot,) = plot_failovers(report, list(rec.probes), tmp_path)  # no accounting: no run plot
    assert plot.name == "seed-bfd-failover1.png" and plot.stat().st_size > 0


def test_without_bfd_the_report_has_no_bfd_column() -> None:
    f = metrics.Failover("stop", "ha_first", 5.0)
    out = io.StringIO()
    print_report(RunReport("seed", "keepalived", failovers=[f], started=0.0), Console(file=out))
    assert "BFD" not in out.getvalue()
    assert f.as_json()["bfd"] is None


def test_a_skipped_step_is_neither_pass_nor_fail() -> None:
    skipped = StepResult("keepalived only", True, "skipped", 1.0, skipped=True)
    assert skipped.outcome == "skipped"
    report = RunReport("s", "bundled", steps=[skipped], started=0.0)
    assert report.ok and report.as_json()["steps"][0]["outcome"] == "skipped"


# --- steps and scenarios --------------------------------------------------------------------

SCENARIO = """
name: s
networks:
  - name: n
    subnets: [{cidr: 10.0.0.0/24}]
instances:
  - {name: a, ports: [{network: n, fixed_ips: [10.0.0.2]}]}
  - {name: b, ports: [{network: n, fixed_ips: [10.0.0.3]}]}
routers:
  - {node: a}
  - {node: b}
steps:
"""


def test_bfd_steps_parse() -> None:
    loss = Step.model_validate({"bfd-loss": {"a": "a", "b": "b"}})
    assert loss.action == "bfd_loss" and loss.is_fault and loss.title() == "bfd-loss a=a, b=b"
    restore = Step.model_validate({"bfd_restore": "all"})
    assert restore.action == "bfd_restore" and not restore.is_fault
    bfd = Step.model_validate({"expect": {"bfd": {"node": "a"}, "within": 3}})
    assert bfd.expect is not None and bfd.expect.kind == "bfd"
    assert bfd.expect.bfd is not None and bfd.expect.bfd.state == "Up"
    only = Step.model_validate({"expect": {"master": "a"}, "impl": "bundled"})
    assert only.impl == ["bundled"]
    assert only.applies_to({"bundled"}) and not only.applies_to({"bundled", "keepalived"})
    assert Step.model_validate({"observe": 1}).applies_to({"frr"})


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "  - {expect: {master: a}, impl: bundeld}",
            "steps[0].impl: unknown implementation 'bundeld'",
        ),
        ("  - {bfd-loss: {a: a, b: c}}", "steps[0].bfd-loss: unknown instance 'c'"),
        ("  - {expect: {bfd: {node: c}}}", "steps[0].expect.bfd.node: no router runs on 'c'"),
        ("  - {expect: {bfd: {node: a, state: Init}}}", "steps[0].expect.bfd.state"),
    ],
)
def test_bad_bfd_steps_are_one_line(step: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(SCENARIO + step + "\n", "s.yaml")


def test_bfd_loss_rules_drop_bfd_only() -> None:
    rules = fault_table.bfd_rules(None, *fault_table.EVERY_PAIR)  # type: ignore[arg-type]
    tail = 'udp udp dport { 3784, 3785 } counter drop comment "bfd-loss *<->*"'
    assert rules == [
        f"ether type ip ip protocol {tail}",
        f"ether type ip6 ip6 nexthdr {tail}",
    ]
    assert faults.CATALOGUE["bfd-loss"] is faults.bfd_loss
    assert faults.CATALOGUE["bfd-restore"] is faults.bfd_restore
