"""Turn what a run recorded (probes, capture, neighbour changes, router transitions) into
:class:`lab.metrics.Failover` records: the glue between the recorders and the pure metrics.

Everything here reads a :class:`lab.recording.Recording`, never the run itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from lab import accounting, metrics, service_metrics, timeline
from lab.capture_events import ArpEvent, ProbePacket
from lab.recording import (
    Recording,
    RouterTimers,
    adverts_seen,
    garps_of,
    router_timers,
    sdn_answers_for,
    timers_of_config,
)
from lab.routers.base import Transition
from lab.steps import SERVICE_ACTIONS, Step
from vrrp.timers import Timers

#: The recording's helpers stay importable from here, where the runner and tests found them.
__all__ = [
    "RouterTimers",
    "account_run",
    "advertising_ends",
    "adverts_seen",
    "garps_of",
    "measure_failovers",
    "router_timers",
    "run_events",
    "sdn_answers_for",
    "timers_of_config",
]


def _vmac(vrid: int) -> str:
    return f"00:00:5e:00:01:{vrid:02x}"


def measure_failovers(recording: Recording, *, end: float) -> list[metrics.Failover]:
    """Measure every fault of ``recording``; each one's window ends where the next fault begins."""
    faults = recording.faults
    probes = list(recording.probes)
    adverts = list(recording.adverts)
    garps_seen = recording.garps
    sdn_answers = recording.sdn_answers
    changes = [metrics.NeighbourChange(c.at, c.mac, c.state) for c in recording.neighbour_changes]
    transitions = sorted(recording.transitions, key=lambda t: t.at)
    timers = recording.timers
    stopped = advertising_ends(transitions, faults)
    # A stranger's adverts (an inject, a node on the subnet) are no router's: they are reported
    # as foreign, and never make a split brain.
    router_adverts = [a for a in adverts if a.node in timers]
    evidence = functools.cache(lambda: _vmac_evidence(recording))

    out = []
    for i, (step, at) in enumerate(faults):
        until = faults[i + 1][1] if i + 1 < len(faults) else end
        fault = step.action
        node = _target(step)
        f = metrics.Failover(fault=fault, node=node, at=at)
        last, first, lost, server = metrics.outage(probes, at, until)
        served_before = metrics.who_served(probes, last + 1e-9) if last is not None else None
        # A service fault leaves the node answering probes: the masters are VRRP's, as the
        # routers reported them, not whoever answered around a gap in the probes.
        on_service = fault in SERVICE_ACTIONS
        master_before = _master_before(transitions, at)
        f.old_master = master_before if on_service else served_before or master_before
        if on_service:
            # The node still answers probes: their gaps in the window are other events' (a
            # preemption back after service-up), and the outage is the HTTP clients' (service).
            last = first = None
        else:
            f.last_served_before, f.first_served_after, f.lost_probes = last, first, lost
        if last is not None and first is not None:
            f.outage_ms = (first - last) * 1000
        became = [
            t
            for t in transitions
            if at <= t.at < until and t.state == "MASTER" and t.router != f.old_master
        ]
        if on_service:
            f.new_master = became[0].router if became else None
        else:
            f.new_master = (
                server
                if server and server != f.old_master
                else (became[0].router if became else server)
            )
        old_adverts = [a for a in adverts if a.node == f.old_master and a.at < until]
        if old_adverts:
            f.last_advert_of_old_master = old_adverts[-1].at
        garps = [g for g in garps_seen if at <= g[0] < until and g[1] == f.new_master]
        if garps:
            f.first_garp_after, f.garps_after = garps[0][0], len(garps)
        answers = [e for e in sdn_answers if at <= e[0] < until]
        if answers:
            f.sdn_answer_after, f.sdn_answer_mac = answers[0]
        moved = [c for c in changes if at <= c.at < until and c.mac is not None]
        if moved:
            f.neighbour_change_after, f.neighbour_mac_after = moved[0].at, moved[0].mac
        if f.new_master in timers:
            mine = timers[f.new_master]
            if fault not in metrics.NO_RFC_FIGURE:
                f.theory_ms, f.theory_min_ms = mine.theory(fault)
            advert = metrics.first_advert_from(adverts, f.new_master, at, mine.vrid)
            if advert is not None and advert.at < until:
                f.first_advert_after = advert.at
                f.detection_ms = (advert.at - at) * 1000
            elif became:
                f.detection_ms = (became[0].at - at) * 1000
                f.detection_source = "notify"
            takeover = f.first_advert_after or (became[0].at if became else None)
            if takeover is not None:
                port_macs = recording.port_macs[f.new_master]
                good = port_macs | ({_vmac(mine.vrid)} if mine.use_vmac else set())
                f.stale_arp_ms = _ms(metrics.stale_arp_seconds(changes, good, takeover, until))
            f.split_brain = metrics.split_brain_intervals(
                router_adverts, mine.advert_int, at, until, stopped=stopped
            )
        f.bfd = metrics.bfd_detection(
            recording.bfd_changes,
            recording.bfd_packets,
            at,
            until,
            node=node,
            new_master=f.new_master,
            configured=recording.bfd_detect_times,
        )
        if timers:
            no_master, several = metrics.mastership(transitions, at, until)
            f.no_master_ms, f.two_masters_ms = no_master * 1000, several * 1000
            f.left_master = metrics.first_to_leave_master(transitions, at, until)
        if probes:
            f.blackhole_ms = metrics.blackhole_seconds(probes, at, until) * 1000
        f.foreign = metrics.foreign_adverts(adverts, timers, at, until)
        if f.old_master is not None:
            f.old_master_silence_ms = _ms(metrics.longest_silence(adverts, f.old_master, at, until))
        if i < len(recording.holders_at_window_end):
            f.vip_holders_at_end = recording.holders_at_window_end[i]
        _vmac_answered_back(recording, f, until, evidence)
        if recording.has_service:
            f.service = _service_outage(recording, f, until)
        out.append(f)
    return out


def _service_outage(
    recording: Recording, f: metrics.Failover, until: float
) -> service_metrics.ServiceOutage:
    """The service's side of failover ``f``: the outage the clients saw, the health check's
    detection (the old master's first lowered advert) and the takeover, and, after a
    ``service-down`` or ``service-hang``, the window the timers allow."""
    old = recording.timers.get(f.old_master or "")
    lowered = (
        service_metrics.lowered_advert(recording.adverts, f.old_master, old.vrid, f.at, until)
        if old is not None and f.old_master is not None
        else None
    )
    out = service_metrics.service_outage(
        recording.requests,
        recording.session_breaks,
        f.at,
        until,
        old_master_advert=lowered,
        takeover=f.first_advert_after,
    )
    new = recording.timers.get(f.new_master or "")
    if f.fault in ("service_down", "service_hang") and old is not None and new is not None:
        window = service_metrics.service_window(
            old.checks,
            old.advert_int,
            _takeover_window(old, new),
            hung=f.fault == "service_hang",
        )
        if window is not None:
            low, high = window
            if f.vmac_answered_back_at is not None:
                # The service comes back with the new master's second GARP batch.
                high += new.garp_master_delay
            out.theory_min_ms, out.theory_ms = low * 1000, high * 1000
    return out


_Evidence = tuple[list[tuple[float, str, str]], list[tuple[float, tuple[str, ...]]]]


def _vmac_evidence(recording: Recording) -> _Evidence:
    """What :func:`lab.metrics.vmac_answered_back` reads of the capture, read once for every
    failover: the ARP replies (the old master's answers are replies; its own GARPs are
    requests) and the probes to the VIP, each in time order."""
    arps = sorted(
        (e.time, e.sender, e.src_mac)
        for e in recording.capture_events
        if isinstance(e, ArpEvent) and e.op == 2
    )
    to_vip = sorted(
        (e.time, e.receivers)
        for e in recording.capture_events
        if isinstance(e, ProbePacket)
        and e.direction_kind == "request"
        and e.dst_ip == recording.vip
    )
    return arps, to_vip


def _vmac_answered_back(
    recording: Recording, f: metrics.Failover, until: float, evidence: Callable[[], _Evidence]
) -> None:
    """Whether, in failover ``f``, the old master answered the new master's GARP from the
    shared VMAC and the fabric then sent the VIP's frames to it
    (:func:`lab.metrics.vmac_answered_back`); sets the failover's ``vmac_*`` times if so.
    ``evidence`` reads the capture's part (only for a failover to a router with a VMAC)."""
    new = recording.timers.get(f.new_master or "")
    if new is None or not new.use_vmac or f.first_garp_after is None or not f.old_master:
        return
    old = recording.timers.get(f.old_master)
    arps, to_vip = evidence()
    found = metrics.vmac_answered_back(
        arps,
        to_vip,
        f.old_master,
        f.new_master or "",
        _vmac(new.vrid),
        f.first_garp_after,
        old.advert_int if old is not None else new.advert_int,
    )
    if found is None:
        return
    f.vmac_answered_back_at, f.vmac_astray_at = found
    f.vmac_regarp_at = next(
        (
            at
            for at, who in recording.garps
            if who == f.new_master and f.vmac_astray_at < at < until
        ),
        None,
    )


def _takeover_window(old: RouterTimers, new: RouterTimers) -> tuple[float, float]:
    """How long after the old master's lowered advert the new one takes over (s): Skew_Time
    when every check of the old master is unweighted (it goes to FAULT and sends priority 0),
    else the silent window [Master_Down_Interval − Adv, Master_Down_Interval] (the peer
    discards the lower-priority adverts and waits for its timer)."""
    timers = Timers.of(new.version, new.priority, new.advert_int)
    if old.checks and all(c.weight == 0 for c in old.checks):
        return timers.skew_time, timers.skew_time
    return timers.silent_failure_window()


#: Faults after which the node sends nothing more (its port is down, its daemon dead or
#: stopped); a partitioned master still advertises, into the partition.
SILENCING_FAULTS = ("crash", "host_down", "freeze", "link_flap")


def advertising_ends(
    transitions: Sequence[Transition], faults: Sequence[tuple[Step, float]]
) -> dict[str, list[float]]:
    """By node, when it is known to have stopped advertising: each time its router reported
    leaving MASTER, and each fault that silenced it (for
    :func:`lab.metrics.split_brain_intervals`)."""
    out: dict[str, list[float]] = {}
    was_master: dict[str, bool] = {}
    for t in sorted(transitions, key=lambda t: t.at):
        if t.kind != "INSTANCE" or not t.is_state:
            continue
        if was_master.get(t.router) and t.state != "MASTER":
            out.setdefault(t.router, []).append(t.at)
        was_master[t.router] = t.state == "MASTER"
    for step, at in faults:
        if step.action in SILENCING_FAULTS:
            out.setdefault(_target(step), []).append(at)
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _target(step: Step) -> str:
    value = getattr(step, step.action)
    if isinstance(value, str):
        return value
    for key in ("node", "a"):
        if hasattr(value, key):
            return str(getattr(value, key))
    return ""


def _master_before(transitions: list, at: float) -> str | None:
    state: dict[str, str] = {}
    for t in transitions:
        if t.at >= at:
            break
        state[t.router] = t.state
    masters = [r for r, s in state.items() if s == "MASTER"]
    return masters[0] if len(masters) == 1 else None


def run_events(recording: Recording) -> list:
    """The run's timeline for loss intervals: adverts, ARP and BFD state changes from the
    capture, router transitions and BFD events, the observer's neighbour changes, SDN answers,
    the steps themselves, and with a service what haproxy logged and the broken sessions."""
    streams: list[list[timeline.TimelineEvent]] = []
    streams.append(timeline.from_capture(recording.capture_events))
    streams.append(
        [
            timeline.TimelineEvent(t.at, t.router, "transition", f"{t.instance} {t.state}")
            for t in recording.transitions
        ]
    )
    streams.append(timeline.from_bfd(recording.bfd_events))
    streams.append(timeline.from_neighbours(recording.neighbour_changes, recording.observer))
    streams.append(timeline.from_sdn(list(recording.sdn_events)))
    streams.append(
        [
            timeline.TimelineEvent(s.at, "step", "step", f"{s.name}: {s.detail}")
            for s in recording.steps
        ]
    )
    streams.append(
        [
            timeline.TimelineEvent(at, "step", "fault", f"{step.title()} injected")
            for step, at in recording.faults
        ]
    )
    streams.append(
        [
            # What a step set going and the catalogue logged: an injection's frames and end.
            timeline.TimelineEvent(r.at, r.target, "fault", f"{r.kind}: {r.detail}")
            for r in recording.fault_log
            if r.kind in ("inject", "inject-end")
        ]
    )
    streams.append(
        [
            timeline.TimelineEvent(x.at, f"haproxy:{x.node}", "log", x.line)
            for x in recording.service_lines
        ]
    )
    streams.append(
        [
            timeline.TimelineEvent(
                b.at, "http", "session-broken", f"long-lived connection {b.slot}: {b.how}"
            )
            for b in recording.session_breaks
        ]
    )
    return list(timeline.merge(*streams))


def account_run(
    recording: Recording,
    failovers: list[metrics.Failover],
    fault_began: list[float],
    *,
    end: float,
) -> accounting.Accounting:
    """Account for every probe of ``recording``: the failover windows come from ``failovers``."""
    windows = []
    for i, f in enumerate(failovers):
        began = fault_began[i] if i < len(fault_began) else f.at
        until = fault_began[i + 1] if i + 1 < len(fault_began) else end
        restored = f.first_served_after
        if restored is None and f.last_served_before is None:
            restored = f.at  # never served around this fault: nothing for it to explain
        windows.append(accounting.failover_window(f"failover {i + 1}", began, restored, until))
    masters = [t.at for t in recording.transitions if t.state == "MASTER"]
    return accounting.account(
        recording.probe_results,
        windows,
        run_events(recording),
        first_master=min(masters) if masters else None,
    )
