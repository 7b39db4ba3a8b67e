"""The service outage of a failover as HTTP clients lived it, and its components: pure functions
on plain records (no lab, no clock), like :mod:`lab.metrics`.

A fault on the service (``service-down``, ``service-hang``) or on a router opens a failover;
for a scenario with a ``service:`` its :class:`ServiceOutage` says:

* **outage**: from the send of the first failed request to the completion of the first
  successful one after it (the longest run of failures that closes after the fault, as
  :func:`lab.metrics.outage` takes for probes), and the requests that failed in it, by reason;
* **sessions broken**: the long-lived connections that broke in the window, by how (reset,
  closed, hung);
* **health-check detection**: from the fault to the first advert of the old master carrying a
  lower priority than before it (a weighted check that failed), or priority 0 (its instance
  went to FAULT, or it stopped); the figure on the wire, as the peer saw it;
* **VRRP takeover**: from that advert to the new master's first advert.

The theory of a ``service-down`` (:func:`service_window`): a check runs every ``interval`` s
and fails at once on a killed haproxy (connection refused), so the ``fall``-th failure comes
(fall − 1)·interval to fall·interval after the fault (a ``service-hang``: each run fails when its
``timeout`` runs out, that much later); the lowered advert up to one advert interval later;
and the peer, which discards lower-priority adverts (RFC 5798 §6.4.2, preemption), takes over
when its Master_Down timer runs out, [Master_Down_Interval − Adv, Master_Down_Interval] after
that advert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class AdvertSeen(Protocol):
    """What this module reads of an advert in the capture (:class:`lab.metrics.AdvertSeen`,
    which carries a :class:`ServiceOutage` back: a protocol keeps the two modules apart)."""

    @property
    def at(self) -> float: ...
    @property
    def node(self) -> str | None: ...
    @property
    def vrid(self) -> int: ...
    @property
    def priority(self) -> int: ...


@dataclass(frozen=True)
class Request:
    """One HTTP request of the clients: sent, ended, and whether it succeeded."""

    sent: float
    ended: float
    ok: bool
    served_by: str | None = None
    error: str | None = None
    """Why it failed: an errno name, ``timeout``, ``eof``, ``bad``, or ``status NNN``."""


@dataclass(frozen=True)
class SessionBreak:
    """A long-lived connection broke: when, and how (``reset``, ``closed``, ``hung``, ...)."""

    slot: int
    at: float
    how: str


@dataclass
class ServiceOutage:
    """The service's side of one failover. Times are lab-clock seconds, figures in ms."""

    outage_ms: float | None = None
    """First failed request's send to the first success's completion; None: no failure."""
    first_failed: float | None = None
    first_ok_after: float | None = None
    """None while the service never came back in the window."""
    failed_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Failed requests of the outage by reason."""
    served_before: str | None = None
    served_after: str | None = None
    sessions_broken: dict[str, int] = field(default_factory=dict)
    """Long-lived connections broken in the window, by how."""
    check_detection_ms: float | None = None
    """The fault to the old master's first lowered-priority advert."""
    takeover_ms: float | None = None
    """That advert to the new master's first advert."""
    theory_ms: float | None = None
    """The latest outage the configured timers allow (``service-down`` and ``service-hang``)."""
    theory_min_ms: float | None = None

    @property
    def recovered(self) -> bool:
        """True when a request succeeded after the outage, within the window."""
        return self.first_failed is None or self.first_ok_after is not None

    def against_theory(self) -> str:
        """The outage beside its theory window, for a step's detail."""
        return (
            f"service outage={_round1(self.outage_ms)} in "
            f"[{_round1(self.theory_min_ms)}, {_round1(self.theory_ms)}]"
        )

    def as_json(self) -> dict[str, object]:
        """The ``service`` record of a failover in the JSON report."""
        return {
            "outage_ms": _round(self.outage_ms),
            "recovered": self.recovered,
            "failed_requests": self.failed_requests,
            "errors": dict(self.errors),
            "served_before": self.served_before,
            "served_after": self.served_after,
            "sessions_broken": dict(self.sessions_broken),
            "components": {
                "check_detection_ms": _round(self.check_detection_ms),
                "takeover_ms": _round(self.takeover_ms),
            },
            "theory_ms": _round(self.theory_ms),
            "theory_min_ms": _round(self.theory_min_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _round1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def theory_problem(service: ServiceOutage | None, tol_ms: float) -> str | None:
    """Why a service outage lies outside its theory window ± ``tol_ms``; None when inside."""
    if service is None:
        return "no service was measured (the scenario has no `service:`)"
    low, high, outage = service.theory_min_ms, service.theory_ms, service.outage_ms
    if low is None or high is None:
        return (
            "no theory for this outage (it needs a service-down or service-hang on a master that "
            "tracks a check, whose timeout is no longer than its interval)"
        )
    if outage is None:
        return f"the service never came back (theory [{low:.0f}, {high:.0f}] ms)"
    if not low - tol_ms <= outage <= high + tol_ms:
        return f"service outage {outage:.1f} ms outside [{low:.1f}, {high:.1f}] ± {tol_ms:g} ms"
    return None


def request_outage(
    requests: Sequence[Request], at: float, until: float
) -> tuple[Request | None, Request | None, list[Request]]:
    """The service gap a fault at ``at`` caused, in the requests sent before ``until``.

    Returns (the first failed request, the first success after the gap, the failed requests
    of the gap). The gap is the longest run of failed requests, in send order, that closes after
    ``at`` (an old master may serve a moment longer, and a failure before the fault that ended
    before it is not this fault's); one still open at ``until`` has no success after it.
    """
    window = sorted((r for r in requests if r.sent < until), key=lambda r: r.sent)
    best: tuple[int, int] | None = None  # (index of the first failure, index after the run)
    best_span = -1.0
    i = 0
    while i < len(window):
        if window[i].ok:
            i += 1
            continue
        j = i
        while j < len(window) and not window[j].ok:
            j += 1
        closes_after_fault = j == len(window) or window[j].sent > at
        if closes_after_fault:
            end = window[j].ended if j < len(window) else until
            span = end - window[i].sent
            if span > best_span:
                best, best_span = (i, j), span
        i = j
    if best is None:
        return None, None, []
    i, j = best
    return window[i], (window[j] if j < len(window) else None), window[i:j]


def lowered_advert(
    adverts: Sequence[AdvertSeen], node: str, vrid: int, at: float, until: float
) -> AdvertSeen | None:
    """The first advert of ``node`` for ``vrid`` after ``at`` whose priority is below that of
    its last advert before ``at`` (None: it never lowered it, or never advertised before)."""
    mine = [a for a in adverts if a.node == node and a.vrid == vrid and a.at < until]
    before = [a for a in mine if a.at < at]
    if not before:
        return None
    was = before[-1].priority
    return next((a for a in mine if a.at >= at and a.priority < was), None)


@dataclass(frozen=True)
class CheckTimers:
    """What the theory needs of one ``vrrp_script`` an instance tracks (seconds)."""

    interval: int
    fall: int
    timeout: int
    """How long a run may take (keepalived's ``timeout``, else the interval)."""
    weight: int
    """The weight the instance applies (the ``track_script`` entry's, else the script's)."""


def service_window(
    checks: Sequence[CheckTimers],
    advert_int: float,
    takeover: tuple[float, float],
    *,
    hung: bool = False,
) -> tuple[float, float] | None:
    """The window of the outage after ``service-down`` (or, ``hung``, ``service-hang``), in
    seconds (earliest, latest), from the old master's tracked checks, its advert interval, and
    the window of the peer's takeover after the lowered advert (``takeover``: [Master_Down_Interval
    − Adv, Master_Down_Interval] after a weighted check; Skew_Time after a priority-0 advert);
    None without a check.

    A check runs on a grid every ``interval``. A killed service fails the next run at once, so
    the ``fall``-th failure comes (fall − 1)·interval to fall·interval after the fault; a hung
    one fails each run when its ``timeout`` runs out, ``timeout`` later. A timeout longer than
    the interval leaves runs to skip or overlap, where keepalived and the bundled daemon part
    (docs/vrrp-daemon.md#health-checks-vrrp_script): no window then. Every check of the
    instance may be the one watching the service, so the window spans them all.
    """
    if not checks or (hung and any(c.timeout > c.interval for c in checks)):
        return None
    runs = [c.timeout if hung else 0 for c in checks]
    earliest = min((c.fall - 1) * c.interval + run for c, run in zip(checks, runs, strict=True))
    latest = max(c.fall * c.interval + run for c, run in zip(checks, runs, strict=True))
    return earliest + takeover[0], latest + advert_int + takeover[1]


def sessions_broken(breaks: Sequence[SessionBreak], at: float, until: float) -> dict[str, int]:
    """The long-lived connections broken in [at, until), by how."""
    return dict(Counter(b.how for b in breaks if at <= b.at < until))


def service_outage(
    requests: Sequence[Request],
    breaks: Sequence[SessionBreak],
    at: float,
    until: float,
    *,
    old_master_advert: AdvertSeen | None = None,
    takeover: float | None = None,
) -> ServiceOutage:
    """The :class:`ServiceOutage` of a fault at ``at`` whose window closes at ``until``.

    ``old_master_advert`` is the old master's first lowered advert (:func:`lowered_advert`),
    ``takeover`` the new master's first advert after the fault (both None when unseen).
    """
    out = ServiceOutage(sessions_broken=sessions_broken(breaks, at, until))
    first, ok_after, failed = request_outage(requests, at, until)
    served = [r for r in requests if r.ok and r.sent < (first.sent if first else at)]
    out.served_before = served[-1].served_by if served else None
    if first is not None:
        out.first_failed = first.sent
        out.failed_requests = len(failed)
        out.errors = dict(Counter(r.error or "failed" for r in failed))
        if ok_after is not None:
            out.first_ok_after = ok_after.ended
            out.outage_ms = (ok_after.ended - first.sent) * 1000
            out.served_after = ok_after.served_by
    else:
        out.outage_ms = 0.0
    if old_master_advert is not None:
        out.check_detection_ms = (old_master_advert.at - at) * 1000
        if takeover is not None and takeover >= old_master_advert.at:
            out.takeover_ms = (takeover - old_master_advert.at) * 1000
    return out


@dataclass(frozen=True)
class ServiceRecord:
    """A run's whole service record: every request and session break, and haproxy's lines
    (``lines``: (time, node, text)). The report draws it; its JSON keeps the counts and the
    lines, not the requests (1,000 a second)."""

    requests: tuple[Request, ...]
    breaks: tuple[SessionBreak, ...]
    lines: tuple[tuple[float, str, str], ...]

    @classmethod
    def of(cls, recording: Any) -> ServiceRecord:
        """From a :class:`lab.recording.Recording`."""
        return cls(
            tuple(recording.requests),
            tuple(recording.session_breaks),
            tuple((x.at, x.node, x.line) for x in recording.service_lines),
        )

    def as_json(self, t0: float) -> dict[str, object]:
        """Counts by outcome and server, the breaks and haproxy's lines, times in ms after
        ``t0``."""
        failed = [r for r in self.requests if not r.ok]
        return {
            "requests": len(self.requests),
            "ok": len(self.requests) - len(failed),
            "failed": dict(Counter(r.error or "failed" for r in failed)),
            "served_by": dict(Counter(r.served_by or "-" for r in self.requests if r.ok)),
            "sessions_broken": [
                {"slot": b.slot, "t_ms": round((b.at - t0) * 1000, 1), "how": b.how}
                for b in self.breaks
            ],
            "haproxy_log": [
                {"t_ms": round((at - t0) * 1000, 1), "node": node, "line": line}
                for at, node, line in self.lines
            ],
        }
