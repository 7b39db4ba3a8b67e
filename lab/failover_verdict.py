"""A failover expectation's verdict: the measured figures against their bounds, the RFC or BFD
figure, or the service's window, and whether a host stall spoils it
(docs/architecture.md#stall-witness-and-inconclusive).

:class:`lab.runner.ScenarioRun` asks it for every ``expect: {failover: ...}`` step. It reads a
measured :class:`lab.metrics.Failover` and the run's stall witness, and keeps no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab import clock, metrics
from lab.service_metrics import theory_problem
from lab.stalls import NO_NETLINK, Inconclusive, StallWitness, takeover_netlink
from lab.steps import Bound, FailoverExpectation

#: The periods a stall can lengthen but never hide: a zero is no timing claim.
_ONLY_LENGTHENED = ("stale_arp_ms", "blackhole_ms", "no_master_ms", "two_masters_ms")


class FailoverVerdict:
    """Judges failovers of one run: its stall witness, its routers by node (for whether their
    daemon touches netlink before its first advert), and its probe rate (a lost probe's worth of
    outage)."""

    def __init__(
        self, witness: StallWitness, routers: Mapping[str, Any], probe_rate: float
    ) -> None:
        self.witness = witness
        self.routers = routers
        self.probe_rate = probe_rate

    def judge(self, want: FailoverExpectation, failover: metrics.Failover) -> tuple[bool, str]:
        """Whether ``failover`` meets ``want``, and what was seen; raises
        :class:`~lab.stalls.Inconclusive` when a host stall could have moved a judged time across
        its bound (and no time failed that no stall explains)."""
        problems, shown = [], []
        # Each time judged: how long a stall must be to have moved it across its bound, and
        # whether it failed.
        timed: list[tuple[str, float, bool]] = []
        bfd, service = failover.bfd, failover.service
        figures = {
            "outage_ms": failover.outage_ms,
            "detection_ms": failover.detection_ms,
            "stale_arp_ms": failover.stale_arp_ms,
            "lost_probes": failover.lost_probes,
            "bfd_detection_ms": bfd.detection_ms if bfd is not None else None,
            "service_outage_ms": service.outage_ms if service is not None else None,
            "no_master_ms": failover.no_master_ms,
            "two_masters_ms": failover.two_masters_ms,
            "blackhole_ms": failover.blackhole_ms,
            "old_master_silence_ms": failover.old_master_silence_ms,
            "foreign_adverts": sum(x.count for x in failover.foreign),
        }
        for key, value in figures.items():
            bound = getattr(want, key)
            if bound is None:
                continue
            shown.append(f"{key}={value if value is None else round(value, 1)}")
            if not bound.check(value):
                problems.append(f"{key} {value if value is None else round(value, 1)} not {bound}")
            if value is None:  # nothing measured: no stall explains that
                timed.append((key, float("inf"), True))
            elif key in _ONLY_LENGTHENED and value == 0:
                # None at all: a stall delays what ends such a period (the neighbour change, an
                # answer, a router's report), so it can lengthen one but never hide one.
                pass
            elif key == "foreign_adverts":
                pass  # a count of frames on the wire: no stall moves it
            else:
                # A lost probe is 1/rate of outage: its margin in time is that many probes.
                per = 1000 / self.probe_rate if key == "lost_probes" else 1.0
                timed.append((key, margin_ms(value, bound) * per, not bound.check(value)))
        if want.new_master is not None and failover.new_master != want.new_master:
            problems.append(f"new master {failover.new_master}, expected {want.new_master}")
        if want.split_brain is not None and bool(failover.split_brain) != want.split_brain:
            problems.append(f"split brain {'seen' if failover.split_brain else 'not seen'}")
        # A wrong new master or a split brain is a fail whatever the timing.
        untimed = bool(problems) and any(p.startswith(("new master", "split")) for p in problems)
        if want.detection_within_theory_ms is not None:
            d, t = failover.detection_ms, failover.theory_ms
            off = d is None or t is None or abs(d - t) > want.detection_within_theory_ms
            timed.append(("detection vs theory", want.detection_within_theory_ms, off))
            if off:
                problems.append(
                    f"detection {d} vs theory {t} differ by more than "
                    f"{want.detection_within_theory_ms:g} ms"
                )
            shown.append(f"detection={d and round(d, 1)} theory={t and round(t, 1)}")
        if want.detection_within_bfd_ms is not None:
            margin = want.detection_within_bfd_ms
            d = failover.detection_ms
            limit = _bfd_detect_time_ms(failover)
            late = d is None or limit is None or d > limit + margin
            timed.append(("detection vs BFD detection time", margin, late))
            if late:
                problems.append(
                    f"detection {d and round(d, 1)} not within BFD detection time "
                    f"{limit and round(limit, 1)} + {margin:g} ms"
                )
            shown.append(
                f"detection={d and round(d, 1)} BFD detection time={limit and round(limit, 1)}"
            )
        if want.service_within_theory_ms is not None:
            tol = want.service_within_theory_ms
            problem = theory_problem(service, tol)
            timed.append(("service outage vs theory", tol, problem is not None))
            if problem is not None:
                problems.append(problem)
            if service is not None:
                shown.append(service.against_theory())
        detail = ", ".join(shown) or "measured"
        if not untimed:
            self._judge_stalls(failover, timed, detail)
        return (not problems), ("; ".join(problems) + f" ({detail})" if problems else detail)

    def _judge_stalls(
        self, failover: metrics.Failover, timed: list[tuple[str, float, bool]], detail: str
    ) -> None:
        """Raise :class:`Inconclusive` when a stall in the failover's window is longer than a
        judged time's tolerance, unless a time failed that no stall explains (a stall shorter
        than its margin could not have moved it across its bound).

        The window spans what the figures are measured between: the fault, and the last event
        of the failover they read (the time taken to compute them afterwards is not in it)."""
        window = (failover.at, _last_event(failover))
        judged = [
            (
                key,
                tol_ms,
                failed,
                self.witness.judge(
                    *window, tol_ms / 1000, rtnl_within=self.netlink(failover, key, tol_ms)
                ),
            )
            for key, tol_ms, failed in sorted(timed, key=lambda t: t[1])
        ]
        if any(failed and stall is None for _, _, failed, stall in judged):
            return  # a real fail stands
        for key, tol_ms, _, stall in judged:
            if stall is not None:
                raise Inconclusive(f"{key} ({detail})", stall, window, tol_ms / 1000)

    def netlink(
        self, failover: metrics.Failover, key: str, tol_ms: float
    ) -> tuple[float, float] | None:
        """Where in the failover's window netlink work could have moved the figure ``key``
        (``rtnl_within`` of :meth:`lab.stalls.StallWitness.judge`); None: anywhere.

        A detection ends at the new master's first advert, or its report. Before that the
        backup waits on a timer, and the fault's own netlink work (a link taken down) is done
        before the fault is stamped: the one change that could delay it is the new master's,
        as it takes over (:func:`lab.stalls.takeover_netlink`), and none if the wire shows the
        advert of a daemon that sends it before any (``netlink_before_first_advert``). Other
        figures (outage, stale ARP) end at the observer, after the VIPs moved: anywhere."""
        if not key.startswith("detection") or failover.detection_ms is None:
            return None
        end = failover.at + failover.detection_ms / 1000
        router = self.routers.get(failover.new_master or "")
        on_the_wire = failover.detection_source == "capture"
        if router is not None and on_the_wire and not router.netlink_before_first_advert:
            return NO_NETLINK
        return takeover_netlink(end, tol_ms / 1000)


def margin_ms(value: float, bound: Bound) -> float:
    """How far ``value`` lies from the nearer edge of ``bound`` (inside or out): a stall
    longer than that could have moved it across."""
    edges = [e for e in (bound.min, bound.max) if e is not None]
    return min(abs(value - e) for e in edges)


def _bfd_detect_time_ms(f: metrics.Failover) -> float | None:
    """The detection time of the failover's BFD session: as negotiated on the wire, else as
    configured (None without BFD)."""
    if f.bfd is None:
        return None
    return f.bfd.detect_time_ms or f.bfd.configured_detect_time_ms


def _last_event(f: metrics.Failover) -> float:
    """The latest stamped event a failover's figures are measured to (now if none is)."""
    stamps = [
        f.first_served_after,
        f.first_advert_after,
        f.first_garp_after,
        f.neighbour_change_after,
        f.sdn_answer_after,
        f.bfd.down_at if f.bfd is not None else None,
        f.service.first_ok_after if f.service is not None else None,
    ]
    seen = [t for t in stamps if t is not None]
    return max(seen) if seen else clock.now()
