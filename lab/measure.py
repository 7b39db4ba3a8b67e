"""Turn what a run recorded (probes, capture, neighbour changes, router transitions) into
:class:`lab.metrics.Failover` records: the glue between the recorders and the pure metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab import metrics
from lab.steps import Step

if TYPE_CHECKING:
    from lab.accounting import Accounting
    from lab.capture import Capture
    from lab.routers.base import Router
    from lab.runner import ScenarioRun


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
    return RouterTimers(
        inst.effective_priority,
        inst.advert_int,
        inst.virtual_router_id,
        bool(inst.use_vmac),
        inst.effective_version(parsed.global_defs),
    )


def router_timers(router: Router) -> RouterTimers:
    """Priority, advert interval, VRID, VMAC use and VRRP version of a router's first
    instance."""
    return timers_of_config(router.config_text, router.source)


def adverts_seen(capture: Capture | None) -> list[metrics.AdvertSeen]:
    """The VRRP adverts of a capture (one per frame on the wire), as the metrics take them."""
    from lab.capture import VrrpAdvert

    if capture is None:
        return []
    return [
        metrics.AdvertSeen(e.time, e.src_mac, e.src_ip, e.vrid, e.priority, e.sender)
        for e in capture.events()
        if isinstance(e, VrrpAdvert)
    ]


def garps_of(capture: Capture | None) -> list[tuple[float, str]]:
    """(time, sending instance) of every gratuitous ARP in a capture."""
    from lab.capture import ArpEvent

    if capture is None:
        return []
    return [
        (e.time, e.sender) for e in capture.events() if isinstance(e, ArpEvent) and e.kind == "garp"
    ]


def sdn_answers_for(run: ScenarioRun, ip: str | None) -> list[tuple[float, str]]:
    """(time, MAC) of every ARP answer the SDN controller gave for ``ip`` (none without one)."""
    sdn = getattr(run.lab.fabric, "sdn", None)
    controller = getattr(sdn, "controller", None)
    if controller is None or ip is None:
        return []
    return [
        (e["t"], e["mac"])
        for e in list(controller.events)
        if e.get("event") == "answered" and e.get("ip") == ip
    ]


def _vmac(vrid: int) -> str:
    return f"00:00:5e:00:01:{vrid:02x}"


def measure_failovers(
    run: ScenarioRun, faults: list[tuple[Step, float]], *, end: float
) -> list[metrics.Failover]:
    """Measure every fault of ``run``; each one's window ends where the next fault begins."""
    probes = run.probe_records()
    adverts = adverts_seen(run.capture)
    garps_seen = garps_of(run.capture)
    sdn_answers = sdn_answers_for(run, run.vip)
    changes: list[metrics.NeighbourChange] = []
    if run.neighbours is not None:
        changes = [metrics.NeighbourChange(c.at, c.mac, c.state) for c in run.neighbours.changes()]
    transitions = sorted(
        (t for r in run.routers.values() for t in r.events.snapshot()), key=lambda t: t.at
    )
    timers = {name: router_timers(r) for name, r in run.routers.items()}

    out = []
    for i, (step, at) in enumerate(faults):
        until = faults[i + 1][1] if i + 1 < len(faults) else end
        fault = step.action
        node = _target(step)
        f = metrics.Failover(fault=fault, node=node, at=at)
        last, first, lost, server = metrics.outage(probes, at, until)
        served_before = metrics.who_served(probes, last + 1e-9) if last is not None else None
        f.old_master = served_before or _master_before(transitions, at)
        f.last_served_before, f.first_served_after, f.lost_probes = last, first, lost
        if last is not None and first is not None:
            f.outage_ms = (first - last) * 1000
        became = [
            t
            for t in transitions
            if at <= t.at < until and t.state == "MASTER" and t.router != f.old_master
        ]
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
                port_macs = {p.mac for p in run.lab.node(f.new_master).ports}
                good = port_macs | ({_vmac(mine.vrid)} if mine.use_vmac else set())
                f.stale_arp_ms = _ms(metrics.stale_arp_seconds(changes, good, takeover, until))
            f.split_brain = metrics.split_brain_intervals(adverts, mine.advert_int, at, until)
        if i < len(run.holders_at_window_end):
            f.vip_holders_at_end = run.holders_at_window_end[i]
        out.append(f)
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


def run_events(run: ScenarioRun) -> list:
    """The run's timeline for loss intervals: adverts and ARP from the capture, router
    transitions, the observer's neighbour changes, SDN answers and the steps themselves."""
    from lab import timeline

    streams: list[list[timeline.TimelineEvent]] = []
    if run.capture is not None:
        streams.append(timeline.from_capture(run.capture.events()))
    streams.append(
        [
            timeline.TimelineEvent(t.at, t.router, "transition", f"{t.instance} {t.state}")
            for r in run.routers.values()
            for t in r.events.snapshot()
        ]
    )
    if run.neighbours is not None:
        streams.append(timeline.from_neighbours(run.neighbours.changes(), run._observer() or ""))
    sdn = getattr(run.lab.fabric, "sdn", None)
    controller = getattr(sdn, "controller", None)
    if controller is not None:
        streams.append(timeline.from_sdn([dict(e) for e in list(controller.events)]))
    streams.append(
        [
            timeline.TimelineEvent(s.at, "step", "step", f"{s.name}: {s.detail}")
            for s in run.report.steps
        ]
    )
    streams.append(
        [
            timeline.TimelineEvent(at, "step", "fault", f"{step.title()} injected")
            for step, at in run._faults
        ]
    )
    return list(timeline.merge(*streams))


def account_run(run: ScenarioRun, fault_began: list[float], *, end: float) -> Accounting:
    """Account for every probe of ``run``: the failover windows come from its failovers."""
    from lab import accounting

    windows = []
    failovers = run.report.failovers
    for i, f in enumerate(failovers):
        began = fault_began[i] if i < len(fault_began) else f.at
        until = fault_began[i + 1] if i + 1 < len(fault_began) else end
        restored = f.first_served_after
        if restored is None and f.last_served_before is None:
            restored = f.at  # never served around this fault: nothing for it to explain
        windows.append(accounting.failover_window(f"failover {i + 1}", began, restored, until))
    masters = [
        t.at for r in run.routers.values() for t in r.events.snapshot() if t.state == "MASTER"
    ]
    probes = run.probes.results().items if run.probes is not None else []
    return accounting.account(
        probes, windows, run_events(run), first_master=min(masters) if masters else None
    )
