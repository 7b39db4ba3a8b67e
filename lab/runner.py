"""Run a scenario: build its lab, start the measurement side, play its steps, measure failovers.

The runner owns no measurement logic of its own: probes (``lab.probe``), the capture
(``lab.capture``), the neighbour watcher (``lab.neighbours``), routers (``lab.routers``), faults
(``lab.faults``) and the SDN (``lab.sdn``) each do their part; the runner sequences them on one
clock and hands the records to ``lab.metrics``. Every expectation polls its condition against a
deadline and records what it saw, so a failed step says why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import clock, metrics, versions
from lab.errors import LabError, WaitTimeout
from lab.failover_verdict import FailoverVerdict
from lab.lab import Lab
from lab.measure import account_run, advertising_ends, measure_failovers
from lab.recording import Recording, StepStamp, adverts_seen, record, router_timers
from lab.routers.events import BfdEvent
from lab.routers.spec import prepare_routers
from lab.scenario import Scenario
from lab.scratch import scratch_directory
from lab.service import Service, start_service
from lab.service_metrics import ServiceRecord
from lab.stalls import (
    Inconclusive,
    Stall,
    StallWitness,
    inconclusive_as_dict,
)
from lab.steps import STATE_KEYS, Expect, Step
from lab.wait import wait_until


@dataclass
class StepResult:
    """What one step did: its verdict and a one-line detail, stamped on the lab clock."""

    name: str
    ok: bool
    detail: str
    at: float
    took: float = 0.0
    expectation: bool = False
    inconclusive: Inconclusive | None = None
    """Set when the step is inconclusive: what a stall spoiled (``ok`` is then False: an
    inconclusive step is not a pass)."""
    skipped: bool = False
    """Set when the step was not played: it is for other implementations (``impl``)."""
    install_ms: float | None = None
    """A ``port-set``/``port-unset`` on an ``engine: ovn`` network: how long the NB change took
    to be installed by ovn-controller (``ovn-nbctl --wait=hv``), part of an operator's outage."""

    @property
    def stall(self) -> Stall | None:
        """The stall that made the step inconclusive, if one did."""
        return self.inconclusive.stall if self.inconclusive is not None else None

    @property
    def outcome(self) -> str:
        """``pass``, ``fail``, ``inconclusive`` or ``skipped``."""
        if self.skipped:
            return "skipped"
        return "inconclusive" if self.stall is not None else ("pass" if self.ok else "fail")


@dataclass
class RunReport:
    """Everything a run produced: step verdicts, failovers and where the artefacts are."""

    scenario: str
    impl: str
    steps: list[StepResult] = field(default_factory=list)
    failovers: list[metrics.Failover] = field(default_factory=list)
    started: float = 0.0
    wall_seconds: float = 0.0
    build_ms: float = 0.0
    engines: dict[str, str] = field(default_factory=dict)
    """Each network's fabric engine (``emulated`` or ``ovn``)."""
    pcap: Path | None = None
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    split_brain: list[tuple[float, float]] = field(default_factory=list)
    """Intervals of the whole run in which two routers advertised one VRID."""
    accounting: Any = None
    """Where every probe went (a :class:`lab.accounting.Accounting`), None without probes."""
    stalls: dict[str, Any] = field(default_factory=dict)
    """The stall witness over the run: its summary, every stall, and per failover."""
    versions: dict[str, str] = field(default_factory=versions.collect)
    """What the run was measured with (``lab.versions``): vrrp-lab, keepalived, FRR, kernel."""
    ovn_events: list[dict[str, Any]] = field(default_factory=list)
    """OVN's events on the lab clock (engine ovn: ``bind-vport``, ``port-binding``)."""
    bfd_events: list[BfdEvent] = field(default_factory=list)
    """Every BFD event the routers' daemons logged, in time order."""
    service: ServiceRecord | None = None
    """What the HTTP clients measured and haproxy logged (scenarios with a ``service:``)."""

    @property
    def ok(self) -> bool:
        """True when every step held."""
        return all(s.ok for s in self.steps)

    def raise_if_inconclusive(self) -> None:
        """Raise the :class:`Inconclusive` of the first inconclusive step, if a step was."""
        spoiled = next((s.inconclusive for s in self.steps if s.inconclusive), None)
        if spoiled is not None:
            raise spoiled

    def as_json(self) -> dict[str, Any]:
        """The JSON report (docs/architecture.md#contracts)."""
        return {
            "scenario": self.scenario,
            "impl": self.impl,
            "ok": self.ok,
            "wall_seconds": round(self.wall_seconds, 3),
            "build_ms": round(self.build_ms, 1),
            "engines": dict(self.engines),
            "steps": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "detail": s.detail,
                    "t_ms": round((s.at - self.started) * 1000, 1),
                    **(
                        {"outcome": s.outcome, **inconclusive_as_dict(s.inconclusive)}
                        if s.inconclusive
                        else {}
                    ),
                    **({"outcome": s.outcome} if s.skipped else {}),
                    **({"install_ms": round(s.install_ms, 1)} if s.install_ms is not None else {}),
                }
                for s in self.steps
            ],
            "failovers": [f.as_json() for f in self.failovers],
            "split_brain_ms": [
                [round((lo - self.started) * 1000, 1), round((hi - self.started) * 1000, 1)]
                for lo, hi in self.split_brain
            ],
            "pcap": str(self.pcap) if self.pcap else None,
            "plots": [str(p) for p in self.plots],
            "versions": dict(self.versions),
            "stalls": self.stalls,
            "bfd_events": [self._bfd_json(e) for e in self.bfd_events],
            "ovn_events": [
                {"t_ms": round((e["t"] - self.started) * 1000, 1)}
                | {k: v for k, v in e.items() if k != "t"}
                for e in self.ovn_events
            ],
            "service": self.service.as_json(self.started) if self.service is not None else None,
            **self._accounting_json(),
        }

    def _bfd_json(self, e: BfdEvent) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t_ms": round((e.at - self.started) * 1000, 1),
            "router": e.router,
            "session": e.session,
            "kind": e.kind,
            "state": e.state,
        }
        extra = {"diag": e.diag, "remote_diag": e.remote_diag, "instance": e.instance}
        extra["expired_after_ms"] = e.expired_after_ms
        return out | {k: v for k, v in extra.items() if v is not None}

    def _accounting_json(self) -> dict[str, Any]:
        if self.accounting is None:
            return {"unexplained_loss": [], "probe_accounting": None}
        return {
            "unexplained_loss": [i.as_json(self.started) for i in self.accounting.unexplained],
            "probe_accounting": self.accounting.as_json(self.started),
        }


ProgressFn = Callable[[StepResult], None]


class ScenarioRun:
    """One run of one scenario. ``execute()`` returns the :class:`RunReport`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        impl: str | None = None,
        pcap_dir: Path | None = None,
        plot_dir: Path | None = None,
        probe_rate: float = 1000.0,
        progress: ProgressFn | None = None,
    ) -> None:
        self.scenario = scenario
        self.impl = impl
        self.pcap_dir = pcap_dir
        self.plot_dir = plot_dir
        self.probe_rate = probe_rate
        self.progress = progress or (lambda result: None)
        self.report = RunReport(scenario.name, impl or "keepalived")
        self.report.engines = {n.name: n.sdn.engine for n in scenario.networks}
        self._install_ms: float | None = None
        self._faults: list[tuple[Step, float]] = []
        self._fault_began: list[float] = []
        """Per fault, when its step began injecting it (after the steadiness wait)."""
        self._holders_at_window_end: list[list[str]] = []
        self._since = 0.0
        self.service: Service | None = None
        self._failover_cache: list[metrics.Failover] | None = None

    # -- the run ----------------------------------------------------------------------------

    def execute(self) -> RunReport:
        """Build the lab, play every step (a failed expectation does not stop the run), measure."""
        from lab import capture, neighbours, probe

        began = time.perf_counter()
        self.report.started = clock.now()
        with Lab(self.scenario) as lab:
            self.lab = lab
            # Started inside the lab: a rootless lab enters its user namespace single-threaded.
            self.witness = StallWitness().start()
            lab.defer("stall witness", self.witness.close)
            self.report.build_ms = (lab.build_seconds or 0) * 1000
            self.routers = prepare_routers(lab, self.scenario.routers, impl_override=self.impl)
            impls = sorted({r.impl for r in self.routers.values()})
            self.report.impl = "+".join(impls) if impls else (self.impl or "keepalived")
            # Without --pcap the capture still feeds the metrics, from a directory that goes
            # away with the run.
            scratch = None
            if self.pcap_dir is None:
                scratch = scratch_directory()
                lab.defer("scratch directory", scratch.cleanup)
            self.capture = capture.start_capture(lab, self.pcap_dir or Path(scratch.name))
            self.report.pcap = self.capture.path if self.pcap_dir is not None else None
            observer = self._observer()
            self.vip = str(self.scenario.vips[0].address) if self.scenario.vips else None
            self.neighbours = (
                neighbours.watch_neighbours(lab, node=observer, ips=[self.vip])
                if observer and self.vip
                else None
            )
            self.responders = probe.responders(lab, list(self.routers)) if self.routers else None
            self.probes = (
                probe.start_probes(lab, source=observer, target=self.vip, rate=self.probe_rate)
                if observer and self.vip
                else None
            )
            self.service = self._start_service(observer)
            for step in self.scenario.steps:
                self._run_step(step)
            self._finish()
        self.report.wall_seconds = time.perf_counter() - began
        return self.report

    def _start_service(self, observer: str | None) -> Service | None:
        """haproxy on the proxies and the backend behind them, then the observer's HTTP clients
        (the scenario's ``service:``; None without one). The proxies start before any router,
        as a load balancer runs before keepalived on a real host."""
        spec = self.scenario.service
        if spec is None:
            return None
        assert observer is not None, "a service needs an observer (checked with the scenario)"
        service = start_service(
            self.lab, spec, proxies=spec.proxy_nodes(list(self.routers)), observer=observer
        )
        service.start_clients()
        return service

    def _observer(self) -> str | None:
        if self.scenario.observer:
            return self.scenario.observer
        return "observer" if "observer" in self.lab.nodes else None

    def _run_step(self, step: Step) -> None:
        impls = {r.impl for r in self.routers.values()}
        if not step.applies_to(impls):
            # What holds for other implementations only: shown, never judged.
            assert step.impl is not None
            skipped = StepResult(
                step.title(),
                True,
                f"skipped: for {', '.join(step.impl)} only, and this run is "
                f"{'+'.join(sorted(impls))}",
                clock.now(),
                expectation=step.action == "expect",
                skipped=True,
            )
            self.report.steps.append(skipped)
            self.progress(skipped)
            return
        at = clock.now()
        # What "since the previous step" means for expectations that read a recorded history.
        self._since = self.report.steps[-1].at if self.report.steps else self.report.started
        began = time.perf_counter()
        spoiled = None
        self._install_ms = None
        try:
            ok, detail = self._dispatch(step)
        except Inconclusive as exc:
            ok, detail, spoiled = False, str(exc), exc
        except WaitTimeout as exc:
            ok, detail = False, str(exc)
        except LabError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        # A dead SDN controller would leave a plain bridge behind: every later verdict would be
        # about the wrong network, so the run stops here, loudly.
        fabric_error = None
        try:
            self.lab.fabric.check()
        except LabError as exc:
            fabric_error = exc
            ok, detail = False, f"{detail}; {exc}"
        result = StepResult(
            step.title(),
            ok,
            detail,
            at,
            time.perf_counter() - began,
            expectation=step.action == "expect",
            inconclusive=spoiled,
            install_ms=self._install_ms,
        )
        self.report.steps.append(result)
        self.progress(result)
        if fabric_error is not None:
            raise fabric_error

    def _dispatch(self, step: Step) -> tuple[bool, str]:
        from lab import faults

        action = step.action
        if action == "start":
            names = list(self.routers) if step.start == "all" else list(step.start or [])
            for name in names:
                self._router(name).start()
            # The run-queue probe reads the waits of every router running now.
            self.witness.watch(r.pid for r in self.routers.values() if r.running)
            return True, "started " + ", ".join(f"{n} ({self.routers[n].impl})" for n in names)
        if action == "expect":
            assert step.expect is not None
            return self._expect(step.expect)
        if action in ("port_set", "port_unset"):
            change = step.port_set or step.port_unset
            assert change is not None
            port = self.lab.port(change.port)
            if action == "port_set":
                port.set_allowed_address(change.ip_address, change.mac_address)
            else:
                port.unset_allowed_address(change.ip_address, change.mac_address)
            mac = f",mac-address={change.mac_address}" if change.mac_address else ""
            verb = "set" if action == "port_set" else "unset"
            installed = ""
            if port.install_seconds is not None:
                self._install_ms = port.install_seconds * 1000
                installed = f"; OVN installed it in {self._install_ms:.1f} ms (--wait=hv)"
            return True, (
                f"openstack port {verb} --allowed-address "
                f"ip-address={change.ip_address}{mac} {port.id}{installed}"
            )
        if action == "observe":
            assert step.observe is not None
            # Observing is the point of this step: the probes, capture and watchers run meanwhile.
            time.sleep(step.observe)
            return True, f"observed {step.observe:g} s"
        steady = ""
        if step.is_fault:
            held, steady = self._steady_before_fault(step)
            if not held:
                return False, f"fault not injected: {steady}"
        if step.is_fault and self._faults:
            self._holders_at_window_end.append(self.vip_holders())
        began = clock.now()
        at = faults.apply(self.lab, step, routers=self.routers)
        if step.is_fault:
            self._faults.append((step, at))
            self._fault_began.append(began)
            self._failover_cache = None
        return True, f"at t={(at - self.report.started) * 1000:.0f} ms" + (
            f" ({steady})" if steady else ""
        )

    def _router(self, name: str) -> Any:
        try:
            return self.routers[name]
        except KeyError:
            known = ", ".join(self.routers)
            raise LabError(f"no router runs on {name!r}; routers: {known}") from None

    # -- expectations -----------------------------------------------------------------------

    def _expect(self, expect: Expect) -> tuple[bool, str]:
        kind = expect.kind
        if kind in STATE_KEYS:
            return self._expect_states(expect)
        if kind == "reachable":
            assert self.probes is not None, "reachable needs an observer and a VIP"
            reply = self.probes.wait_served(timeout=expect.within, since=clock.now())
            return True, f"answered by {reply.responder}, rtt {(reply.rtt or 0) * 1000:.2f} ms"
        if kind == "served_by":
            assert self.probes is not None, "served_by needs an observer and a VIP"
            reply = self.probes.wait_served(
                timeout=expect.within, by=expect.served_by, since=clock.now()
            )
            return True, f"answered by {reply.responder}"
        if kind == "http_served_by":
            if self.service is None:
                return False, "http_served_by needs a `service:` in the scenario"
            request = self.service.client.wait_ok(
                timeout=expect.within, by=expect.http_served_by, since=clock.now()
            )
            return True, (
                f"HTTP {request.status} through {request.served_by} from {request.backend}, "
                f"{request.latency * 1000:.2f} ms"
            )
        if kind == "unreachable":
            assert self.probes is not None, "unreachable needs an observer and a VIP"
            since = clock.now()
            time.sleep(expect.during)  # the expectation *is* "nothing answers for this long"
            served = self.probes.served_by(since=since)
            if served:
                return False, f"answered during {expect.during:g} s by {dict(served)}"
            return True, f"no probe answered in {expect.during:g} s"
        if kind == "neighbour":
            return self._expect_neighbour(expect)
        if kind == "bfd":
            return self._expect_bfd(expect)
        if kind == "split_brain":
            return self._expect_split_brain(expect)
        if kind == "steady":
            assert expect.steady is not None
            if self.probes is None:
                return (
                    False,
                    "no probes to judge steadiness by: the scenario needs an observer and a VIP",
                )
            return self._await_steady(expect.steady, expect.within)
        return self._expect_failover(expect)

    def _steady_before_fault(self, step: Step) -> tuple[bool, str]:
        """Wait, before a fault, until no probe was lost for the step's steadiness window."""
        from lab.accounting import steady_deadline, steady_window

        if self.probes is None or step.steady is False:
            return True, ""
        timers = [router_timers(r) for r in self.routers.values()]
        ints = [t.advert_int for t in timers]
        window = step.steady or steady_window(ints)
        regarp = max((t.garp_master_delay for t in timers if t.use_vmac), default=0.0)
        return self._await_steady(window, steady_deadline(window, ints, regarp))

    def _await_steady(self, window: float, within: float) -> tuple[bool, str]:
        """Wait until the observer's probes were all served for ``window`` seconds."""
        from lab.accounting import steady_for

        assert self.probes is not None
        probes = self.probes

        def streak() -> tuple[float, str]:
            # results() leaves out unanswered probes younger than the prober's linger, so
            # only what is older than that is decided.
            now = clock.now()
            return steady_for(probes.results().items, now, horizon=now - probes.linger)

        try:
            held, why = wait_until(
                streak,
                accept=lambda r: r[0] >= window,
                timeout=within,
                what=f"the service to lose no probe for {window * 1000:.0f} ms",
            )
        except WaitTimeout as exc:
            return False, str(exc)
        return True, f"steady for {held * 1000:.0f} ms, {why}"

    def vip_holders(self) -> list[str]:
        """The router nodes that have the VIP on an interface with carrier right now.

        An address on a link without carrier is held by nobody: no frame reaches it and none
        leaves it. That is FRR's backup (its macvlan is protodown, which is carrier off) and
        any router after a host-down (its port lost carrier). A crashed keepalived's VIP, on an
        interface that is still up, is held: the kernel still answers for it."""
        if self.vip is None:
            return []
        holders = []
        for name in self.routers:
            ipr = self.lab.node(name).ipr
            live = {
                link["index"]
                for link in ipr.get_links()
                if link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
            }
            addrs = ipr.get_addr()
            if any(a.get_attr("IFA_ADDRESS") == self.vip and a["index"] in live for a in addrs):
                holders.append(name)
        return holders

    def split_brain(self) -> list[tuple[float, float]]:
        """Intervals of the run so far in which two routers advertised one VRID."""
        if not self.routers:
            return []
        interval = max(router_timers(r).advert_int for r in self.routers.values())
        transitions = [t for r in self.routers.values() for t in r.events.snapshot()]
        return metrics.split_brain_intervals(
            [a for a in adverts_seen(self.capture) if a.node in self.routers],
            interval,
            self.report.started,
            clock.now(),
            stopped=advertising_ends(transitions, self._faults),
        )

    def _expect_split_brain(self, expect: Expect) -> tuple[bool, str]:
        if expect.split_brain:
            seen = wait_until(
                self.split_brain,
                accept=bool,
                timeout=expect.within,
                what="two routers to advertise one VRID at once",
            )
        else:
            seen = self.split_brain()
        total = sum(hi - lo for lo, hi in seen) * 1000
        detail = f"two sources advertised for {total:.0f} ms" if seen else "one source at a time"
        return bool(seen) == expect.split_brain, detail

    def _expect_states(self, expect: Expect) -> tuple[bool, str]:
        wanted = sorted(expect.masters) if expect.masters is not None else None

        def states() -> dict[str, str]:
            return {name: router.state(expect.instance) for name, router in self.routers.items()}

        def holds(seen: dict[str, str]) -> bool:
            masters = sorted(n for n, s in seen.items() if s == "MASTER")
            if expect.master is not None:
                return masters == [expect.master]
            if expect.backup is not None:
                return seen.get(expect.backup) == "BACKUP"
            if expect.fault is not None:
                return seen.get(expect.fault) == "FAULT"
            if expect.is_master is not None:
                return seen.get(expect.is_master) == "MASTER"
            return masters == wanted

        seen = wait_until(
            states,
            accept=holds,
            timeout=expect.within,
            what=f"router states to match {expect.kind}"
            + (f" (instance {expect.instance})" if expect.instance else ""),
        )
        return True, ", ".join(f"{n} {s}" for n, s in seen.items())

    def _expect_neighbour(self, expect: Expect) -> tuple[bool, str]:
        """The neighbour entry matched at some moment since the previous step began.

        The observer's recorded timeline is what counts, not one snapshot: under continuous
        probing the kernel re-opens a FAILED entry as INCOMPLETE within milliseconds, and
        `ip neigh` in the blog post shows whichever it caught.
        """
        from lab.neighbours import neighbour

        want = expect.neighbour
        assert want is not None
        node = self.lab.node(want.node or self._observer() or "observer")
        want_mac = want.mac.lower() if want.mac else None

        def wanted(mac: str | None, state: str) -> bool:
            return (want_mac is None or mac == want_mac) and (
                want.state is None or state == want.state
            )

        watched = (
            self.neighbours is not None
            and node.name == self._observer()
            and (str(want.ip) == self.vip)
        )
        if watched:
            watch = self.neighbours
            assert watch is not None

            def matching() -> tuple[bool, str]:
                changes = watch.timeline(str(want.ip))
                # The entry as the window opened counts too: an entry that never changes
                # produces no event, and "still names the VMAC" must hold for it.
                before = [c for c in changes if c.at < self._since][-1:]
                window = before + [c for c in changes if c.at >= self._since]
                for c in window:
                    if want.state == "FAILED" and want_mac is None and c.failed:
                        late = "" if c.state == "FAILED" else " (announced as re-opened)"
                        return True, f"{want.ip} FAILED{late}"
                    if wanted(c.mac, c.state):
                        return True, f"{want.ip} lladdr {c.mac or '-'} {c.state}"
                last = changes[-1] if changes else None
                return False, f"{want.ip} lladdr {last.mac or '-'} {last.state}" if last else "none"

            _, seen = wait_until(
                matching,
                accept=lambda r: r[0],
                timeout=expect.within,
                what=f"{node.name}'s neighbour entry for {want.ip} to be {want.mac or want.state}",
            )
            return True, seen

        def holds(seen: tuple[str | None, str] | None) -> bool:
            return seen is not None and wanted(*seen)

        seen = wait_until(
            lambda: neighbour(node, str(want.ip)),
            accept=holds,
            timeout=expect.within,
            what=f"{node.name}'s neighbour entry for {want.ip} to be {want.mac or want.state}",
        )
        assert seen is not None
        return True, f"{want.ip} lladdr {seen[0] or '-'} {seen[1]}"

    def _expect_bfd(self, expect: Expect) -> tuple[bool, str]:
        """Wait until a router's BFD session (or every one it logged) is in the state asked."""
        want = expect.bfd
        assert want is not None
        router = self._router(want.node)

        def states() -> dict[str, str]:
            seen = {e.session: e for e in router.bfd_events if e.kind == "session"}
            return {name: e.state for name, e in seen.items()}

        def holds(seen: dict[str, str]) -> bool:
            if want.session is not None:
                return seen.get(want.session) == want.state
            return bool(seen) and all(s == want.state for s in seen.values())

        which = want.session or "every session"
        seen = wait_until(
            states,
            accept=holds,
            timeout=expect.within,
            what=f"{want.node}'s BFD {which} to be {want.state} (as its daemon logs it)",
        )
        return True, ", ".join(f"{want.node}'s {n} {s}" for n, s in seen.items())

    def _expect_failover(self, expect: Expect) -> tuple[bool, str]:
        want = expect.failover
        assert want is not None
        if not self._faults:
            return False, "no fault has happened yet"
        # An injection's failover is judged once its last frame is out: the figures of a window
        # still being written to would be judged early.
        from lab.inject import wait_injections

        wait_injections(self.lab, timeout=expect.within)
        # The capture writes its file every `flush` seconds: the frames up to now are read once
        # a newer one is in (probes and adverts keep coming).
        quiet = max((router_timers(r).advert_int for r in self.routers.values()), default=1.0)
        self.capture.catch_up(clock.now(), timeout=2 * self.capture.flush + quiet)
        verdict = FailoverVerdict(self.witness, self.routers, self.probe_rate)
        return verdict.judge(want, self.failovers()[-1])

    # -- measurements -----------------------------------------------------------------------

    def failovers(self) -> list[metrics.Failover]:
        """The failovers so far, measured from what has been recorded up to now."""
        if self._failover_cache is not None and not self._live():
            return self._failover_cache
        end = clock.now()
        self._failover_cache = measure_failovers(self.recording(), end=end)
        return self._failover_cache

    @property
    def holders_at_window_end(self) -> list[list[str]]:
        """Per fault, the nodes holding the VIP when its failover window closed."""
        return self._holders_at_window_end

    def recording(self) -> Recording:
        """What the run's recorders hold right now, frozen for the measurements."""
        from lab import faults

        controller = self.lab.fabric.sdn.controller
        return record(
            probes=self.probes,
            capture=self.capture,
            neighbours=self.neighbours,
            controller=controller,
            routers=self.routers,
            port_macs={
                name: frozenset(p.mac for p in self.lab.node(name).ports) for name in self.routers
            },
            vip=self.vip,
            holders_at_window_end=self.holders_at_window_end,
            faults=self._faults,
            steps=(StepStamp(s.at, s.name, s.detail) for s in self.report.steps),
            observer=self._observer(),
            service=self.service,
            fault_log=faults.history(self.lab),
            ovn_events=self.lab.fabric.ovn.events() if self.lab.fabric.ovn is not None else (),
        )

    def probe_records(self) -> list[metrics.Probe]:
        """Every probe of the run as the metrics see it (responder None when unanswered)."""
        if self.probes is None:
            return []
        return [
            metrics.Probe(
                p.seq, p.sent, p.responder if p.received is not None else None, p.received
            )
            for p in self.probes.results()
        ]

    def _live(self) -> bool:
        return (self.probes is not None and self.probes.running) or (
            self.service is not None and self.service.client.running
        )

    def _finish(self) -> None:
        """Stop the probes and the capture, then measure every failover on the complete record."""
        if self._faults:
            self._holders_at_window_end.append(self.vip_holders())
        if self.probes is not None:
            self.probes.stop()
        if self.service is not None:
            self.service.stop_clients()
        end = clock.now()
        with contextlib.suppress(Exception):
            self.capture.stop()
        self._failover_cache = None
        recording = self.recording()
        self.report.failovers = measure_failovers(recording, end=end)
        self.report.split_brain = self.split_brain()
        self.report.bfd_events = sorted(recording.bfd_events, key=lambda e: e.at)
        if self.lab.fabric.ovn is not None:
            self.report.ovn_events = self.lab.fabric.ovn.events()
        if recording.has_service:
            self.report.service = ServiceRecord.of(recording)
        if self.probes is not None:
            self.report.accounting = account_run(
                recording, self.report.failovers, self._fault_began, end=end
            )
        self._record_stalls(end)

    def _record_stalls(self, end: float) -> None:
        """The witness's figures for the JSON: the run's, and each failover's window."""
        w = self.witness
        self.report.stalls = {
            **w.summary(),
            "stalls": [s.as_dict() for s in w.stalls()],
            "failovers": [
                _window_stalls(w, f.at, nxt.at if nxt else end)
                for f, nxt in zip(
                    self.report.failovers, [*self.report.failovers[1:], None], strict=False
                )
            ],
        }


def _window_stalls(witness: StallWitness, start: float, end: float) -> dict[str, Any]:
    """The stalls of one failover's window, summarised and listed."""
    from lab.stalls import summarise

    seen = witness.stalls(start, end)
    return {**summarise(seen), "stalls": [s.as_dict() for s in seen]}
