"""What a run recorded, frozen at one moment: the input of :mod:`lab.measure`.

The recorders of a run (the prober, the capture, the observer's neighbour watch, the SDN
controller, the routers' notify streams and BFD events) keep growing while it plays.
:func:`record` reads each of them once into a :class:`Recording`, so the measurements work on
plain data and need neither the runner nor the lab: the runner hands them a fresh recording
whenever it measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab import metrics, service_metrics
from lab.capture import Capture
from lab.capture_events import ArpEvent, BfdControl, VrrpAdvert
from lab.capture_events import Event as CaptureEvent
from lab.faults import FaultRecord
from lab.neighbours import NeighbourChange, NeighbourWatch
from lab.probe import ProbeResult, ProbeRun
from lab.routers.base import BfdEvent, Router, Transition
from lab.sdn.client import ControllerClient
from lab.sdn.client import Event as SdnEvent
from lab.steps import Step

if TYPE_CHECKING:
    from lab.service import Service, ServiceLine
    from lab.service_probe import SessionEvent


@dataclass(frozen=True)
class RouterTimers:
    """What the RFC figures need from one router's config."""

    priority: int
    advert_int: float
    vrid: int
    use_vmac: bool
    version: int
    """The VRRP version the instance runs (2: RFC 3768, 3: RFC 5798), as keepalived resolves
    it: ``version``, else 3 for IPv6, else ``global_defs``' ``vrrp_version`` (default 2)."""
    checks: tuple[service_metrics.CheckTimers, ...] = ()
    """The health checks the instance tracks: each ``vrrp_script`` its ``track_script`` names,
    the entry's weight overriding the script's."""
    garp_master_delay: float = 5.0
    """Seconds from a new master's first GARPs to its second batch (keepalived's
    ``garp_master_delay``, else the global ``vrrp_garp_master_delay``)."""

    def theory(self, fault: str) -> tuple[float, float | None]:
        """The RFC figure for ``fault`` with this router as the new master, in ms: (latest,
        earliest), the earliest None after a stop (see :func:`lab.metrics.theory_window`)."""
        low, high = metrics.theory_window(fault, self.priority, self.advert_int, self.version)
        return high * 1000, None if low is None else low * 1000


def timers_of_config(text: str, source: str = "<text>") -> RouterTimers:
    """Priority, advert interval, VRID, VMAC use and VRRP version of the first instance of a
    ``keepalived.conf`` ``text``."""
    from vrrp import config as kconfig

    parsed = kconfig.parse(text, source)
    inst = parsed.instances[0]
    scripts = {s.name: s for s in parsed.vrrp_scripts}
    checks = tuple(
        service_metrics.CheckTimers(
            scripts[t.name].interval,
            scripts[t.name].fall,
            scripts[t.name].time_limit,
            scripts[t.name].weight if t.weight is None else t.weight,
        )
        for t in inst.track_script
        if t.name in scripts
    )
    return RouterTimers(
        inst.effective_priority,
        inst.advert_int,
        inst.virtual_router_id,
        bool(inst.use_vmac),
        inst.effective_version(parsed.global_defs),
        checks,
        float(inst.effective_garp(parsed.global_defs)["garp_master_delay"]),
    )


def bfd_detect_times(configs: Mapping[str, str]) -> dict[tuple[str, str], float]:
    """The configured detection time (s) of each router's BFD sessions, by (router, session):
    the peer's multiplier × max(the router's min_rx, the peer's min_tx) (RFC 5880 §6.8.4).

    ``configs`` maps router nodes to their ``keepalived.conf`` texts. The peer's session is the
    ``bfd_instance`` of another router whose neighbour is this session's source (or whose
    source is this session's neighbour); a session without one is left out.
    """
    from vrrp import config as kconfig

    parsed = {name: kconfig.parse(text).bfd_instances for name, text in configs.items()}
    out: dict[tuple[str, str], float] = {}
    for router, sessions in parsed.items():
        for mine in sessions:
            theirs = [
                b
                for other, bfds in parsed.items()
                if other != router
                for b in bfds
                if (mine.source_ip is not None and b.neighbor_ip == mine.source_ip)
                or (b.source_ip is not None and b.source_ip == mine.neighbor_ip)
            ]
            if theirs:
                peer = theirs[0]
                out[router, mine.name] = peer.multiplier * max(mine.min_rx, peer.min_tx)
    return out


def router_timers(router: Router) -> RouterTimers:
    """Priority, advert interval, VRID, VMAC use and VRRP version of a router's first
    instance."""
    return timers_of_config(router.config_text, router.source)


def adverts_seen(capture: Capture | None) -> list[metrics.AdvertSeen]:
    """The VRRP adverts of a capture (one per frame on the wire), as the metrics take them."""
    if capture is None:
        return []
    return _adverts_in(capture.events())


def _adverts_in(events: Iterable[CaptureEvent]) -> list[metrics.AdvertSeen]:
    return [
        metrics.AdvertSeen(
            e.time, e.src_mac, e.src_ip, e.vrid, e.priority, e.sender, e.adver_int, e.version
        )
        for e in events
        if isinstance(e, VrrpAdvert)
    ]


def _bfd_packets_in(events: Iterable[CaptureEvent]) -> list[metrics.BfdPacket]:
    return [
        metrics.BfdPacket(
            e.time,
            e.sender,
            e.src_ip,
            e.dst_ip,
            e.state,
            e.diag,
            e.detect_mult,
            e.desired_min_tx,
            e.required_min_rx,
            e.receivers,
        )
        for e in events
        if isinstance(e, BfdControl)
    ]


def _bfd_changes_in(events: Iterable[BfdEvent]) -> list[metrics.BfdChange]:
    """The session state changes among a daemon's BFD events (its BFD process's lines)."""
    return [
        metrics.BfdChange(e.at, e.router, e.session, e.state, e.diag)
        for e in events
        if e.kind == "session"
    ]


def garps_of(capture: Capture | None) -> list[tuple[float, str]]:
    """(time, sending instance) of every gratuitous ARP in a capture."""
    if capture is None:
        return []
    return _garps_in(capture.events())


def _garps_in(events: Iterable[CaptureEvent]) -> list[tuple[float, str]]:
    return [(e.time, e.sender) for e in events if isinstance(e, ArpEvent) and e.kind == "garp"]


def sdn_answers_for(events: Iterable[SdnEvent], ip: str | None) -> list[tuple[float, str]]:
    """(time, MAC) of every ARP answer among the SDN controller's ``events`` for ``ip``."""
    if ip is None:
        return []
    return [
        (e["t"], e["mac"]) for e in events if e.get("event") == "answered" and e.get("ip") == ip
    ]


@dataclass(frozen=True)
class StepStamp:
    """One played step as the timeline shows it."""

    at: float
    name: str
    detail: str


@dataclass(frozen=True)
class Recording:
    """Everything the measurements read of a run, as it stood when :func:`record` was called."""

    probes: Sequence[metrics.Probe]
    """Every probe, as the metrics see it (responder None when unanswered)."""
    probe_results: Sequence[ProbeResult]
    """The prober's own results, for the accounting (empty without a prober)."""
    capture_events: Sequence[CaptureEvent]
    """The capture's adverts, ARP packets and probes (empty without a capture)."""
    adverts: Sequence[metrics.AdvertSeen]
    """The VRRP adverts of the capture."""
    garps: Sequence[tuple[float, str]]
    """(time, sending instance) of every gratuitous ARP of the capture."""
    sdn_events: Sequence[SdnEvent]
    """The SDN controller's events (empty without a controller)."""
    sdn_answers: Sequence[tuple[float, str]]
    """(time, MAC) of every ARP answer the controller gave for the VIP."""
    neighbour_changes: Sequence[NeighbourChange]
    """The observer's neighbour changes for the VIP (empty without a watch)."""
    transitions: Sequence[Transition]
    """Every router's transitions, router by router in the order of ``timers``."""
    bfd_events: Sequence[BfdEvent]
    """Every router's BFD events (from its log), router by router in the order of ``timers``."""
    bfd_changes: Sequence[metrics.BfdChange]
    """The BFD session state changes among ``bfd_events``, as the metrics take them."""
    bfd_packets: Sequence[metrics.BfdPacket]
    """The BFD Control packets of the capture, as the metrics take them."""
    bfd_detect_times: Mapping[tuple[str, str], float]
    """The configured detection time (s) of each (router, BFD session)."""
    timers: Mapping[str, RouterTimers]
    """Each router's RFC timers, by node."""
    port_macs: Mapping[str, frozenset[str]]
    """The MACs of each router node's ports."""
    holders_at_window_end: Sequence[list[str]]
    """Per fault but the last, the nodes holding the VIP when its failover window closed."""
    faults: Sequence[tuple[Step, float]]
    """Each fault step played, with when it was injected."""
    steps: Sequence[StepStamp]
    """Every step played so far."""
    observer: str
    """The observer node (empty when the run has none)."""
    vip: str = ""
    """The first VIP, which the observer probes (empty without one)."""
    requests: Sequence[service_metrics.Request] = ()
    """The HTTP clients' requests (scenarios with a ``service:``)."""
    session_breaks: Sequence[service_metrics.SessionBreak] = ()
    """When and how the clients' long-lived connections broke."""
    service_lines: Sequence[ServiceLine] = ()
    """What the proxies' haproxy logged, stamped as it arrived."""
    fault_log: Sequence[FaultRecord] = ()
    """Every fault and undo the catalogue applied (:func:`lab.faults.history`): the steps' own,
    and what they set going, such as an injection's end."""

    @property
    def has_service(self) -> bool:
        """True when the run measured a service (its clients sent a request)."""
        return bool(self.requests)


def record(
    *,
    probes: ProbeRun | None,
    capture: Capture | None,
    neighbours: NeighbourWatch | None,
    controller: ControllerClient | None,
    routers: Mapping[str, Router],
    port_macs: Mapping[str, frozenset[str]],
    vip: str | None,
    holders_at_window_end: Sequence[list[str]],
    faults: Sequence[tuple[Step, float]],
    steps: Iterable[StepStamp],
    observer: str | None,
    service: Service | None = None,
    fault_log: Sequence[FaultRecord] = (),
    ovn_events: Sequence[Mapping[str, Any]] = (),
) -> Recording:
    """Read every recorder once into a :class:`Recording`.

    ``ovn_events`` (engine ovn: ``bind-vport``, ``port-binding``) join the SDN controller's
    events, in time order, so the timeline shows them as ``sdn`` events."""
    results = probes.results() if probes is not None else None
    probe_records = (
        [
            metrics.Probe(
                p.seq, p.sent, p.responder if p.received is not None else None, p.received
            )
            for p in results
        ]
        if results is not None
        else []
    )
    capture_events = capture.events() if capture is not None else []
    bfd_events = [e for r in routers.values() for e in r.bfd_events.snapshot()]
    sdn_events: list[Any] = (
        [dict(e) for e in list(controller.events)] if controller is not None else []
    )
    if ovn_events:
        sdn_events = sorted([*sdn_events, *map(dict, ovn_events)], key=lambda e: e.get("t", 0))
    return Recording(
        probes=probe_records,
        probe_results=results.items if results is not None else [],
        capture_events=capture_events,
        adverts=_adverts_in(capture_events),
        garps=_garps_in(capture_events),
        sdn_events=sdn_events,
        sdn_answers=sdn_answers_for(sdn_events, vip),
        neighbour_changes=neighbours.changes() if neighbours is not None else [],
        transitions=[t for r in routers.values() for t in r.events.snapshot()],
        bfd_events=bfd_events,
        bfd_changes=_bfd_changes_in(bfd_events),
        bfd_packets=_bfd_packets_in(capture_events),
        bfd_detect_times=bfd_detect_times({n: r.config_text for n, r in routers.items()}),
        timers={name: router_timers(r) for name, r in routers.items()},
        port_macs=port_macs,
        holders_at_window_end=holders_at_window_end,
        faults=list(faults),
        steps=list(steps),
        observer=observer or "",
        vip=vip or "",
        fault_log=tuple(fault_log),
        **_service_records(service),
    )


def _established_breaks(events: Iterable[SessionEvent]) -> list[service_metrics.SessionBreak]:
    """The breaks of long-lived connections that were open: a slot that fails to connect again
    (refused, say, while the VIP has no haproxy) reports a break too, and is no broken
    connection."""
    open_slots: set[int] = set()
    out = []
    for e in sorted(events, key=lambda e: e.at):
        if e.kind == "opened":
            open_slots.add(e.slot)
        elif e.slot in open_slots:
            open_slots.discard(e.slot)
            out.append(service_metrics.SessionBreak(e.slot, e.at, e.how or "broken"))
    return out


def _service_records(service: Service | None) -> dict[str, Any]:
    """The clients' requests and session breaks, and haproxy's lines, as the metrics take them."""
    if service is None:
        return {}
    results = service.results()
    return {
        "requests": [
            service_metrics.Request(
                r.sent,
                r.ended,
                r.ok,
                r.served_by,
                None if r.ok else (r.error or f"status {r.status}"),
            )
            for r in results.requests
        ],
        "session_breaks": _established_breaks(results.sessions),
        "service_lines": service.lines(),
    }
