"""Every probe of a run accounted for: served (by whom), or lost, and in which interval.

Pure functions over plain records (the prober's results, failover windows, the run's merged
timeline), so they are unit-tested without namespaces.

A probe is **served** when its reply came back within ``late`` seconds (0.1 s, as
:meth:`lab.probe.ProbeResults.outages`); otherwise it is **lost**, in one of three ways:

- ``late``: a reply came, but after ``late``. In this lab that is a probe the observer's kernel
  held in the queue of an INCOMPLETE neighbour entry (nobody answered ARP for the VIP) and sent
  when the entry resolved: its reply says when the path came back, not that the service was up;
- ``send_error``: ``sendto`` failed (``EAGAIN`` once the held probes fill the socket's send
  buffer, ``EHOSTUNREACH`` after a FAILED entry): the probe never left the observer;
- ``unanswered``: it left and nothing came back.

Sequence numbers the prober skipped (it was descheduled; see ``--max-lag``) were never sent and
are counted as ``skipped``, apart from the lost ones.

Consecutive lost probes form a loss interval. Each is placed in a window:

- **startup**: before the service first came up, i.e. before the first probe served that was sent
  after the first MASTER transition (or, without transitions, the first probe served). Probes
  sent while the VIP had no owner yet are the expected price of starting the prober first;
- **failover N**: from the fault step's start (less :data:`IN_FLIGHT`) to the first probe served
  after the failover's outage (to the next fault, or the end, when the service never came back);
- none: an **unexplained loss**, reported as its own finding with the events inside it.

A loss interval that straddles a window's edge is split there: a failover's outage cannot hide a
loss that began before the fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.timeline import TimelineEvent

#: A reply slower than this (seconds) is a loss: the probe sat in a kernel queue.
LATE = 0.1
#: A probe sent this long (seconds) before a fault step began still counts as the fault's: its
#: reply was in flight. RTTs here are well under 1 ms at rest and a few ms under load.
IN_FLIGHT = 0.01
#: Timeline sources left out of a loss interval's events: the probes themselves.
_PROBE_SOURCES = ("probe",)


class ProbeLike(Protocol):
    """What the accounting needs of a probe (``lab.probe.ProbeResult`` has it)."""

    @property
    def seq(self) -> int: ...

    @property
    def sent(self) -> float: ...

    @property
    def received(self) -> float | None: ...

    @property
    def responder(self) -> str | None: ...


@dataclass(frozen=True)
class Window:
    """A span of send times in which lost probes are explained, and what explains them."""

    label: str
    start: float
    end: float

    def holds(self, t: float) -> bool:
        """True when a probe sent at ``t`` falls in the window."""
        return self.start <= t <= self.end


def classify(probe: ProbeLike, late: float = LATE) -> str:
    """``served``, ``late``, ``send_error`` or ``unanswered``."""
    if getattr(probe, "error", None):
        return "send_error"
    if probe.received is None:
        return "unanswered"
    return "served" if probe.received - probe.sent <= late else "late"


@dataclass
class LossInterval:
    """A run of consecutive lost probes inside one window (or outside all of them)."""

    first_seq: int
    last_seq: int
    start: float
    """Send time of the first lost probe."""
    end: float
    """Send time of the last lost probe."""
    opened: float | None = None
    """When the last probe served before it was sent (None: none was)."""
    closed: float | None = None
    """When the reply to the first probe served after it arrived (None: none was)."""
    counts: Counter[str] = field(default_factory=Counter)
    """Lost probes by kind: ``unanswered``, ``late``, ``send_error``."""
    skipped: int = 0
    """Sequence numbers inside the interval the prober never sent."""
    window: str | None = None
    """The window that explains it (``startup``, ``failover 1``, ...), or None: unexplained."""
    events: list[TimelineEvent] = field(default_factory=list)
    """The run's events from ``opened`` to ``closed`` (probe summaries left out)."""

    @property
    def probes(self) -> int:
        """How many probes were lost in it."""
        return sum(self.counts.values())

    @property
    def explained(self) -> bool:
        """True when a window explains it."""
        return self.window is not None

    def as_json(self, t0: float) -> dict[str, Any]:
        """The interval as JSON: times in ms since ``t0``, counts, and its events."""

        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - t0) * 1000, 1)

        return {
            "start_ms": ms(self.start),
            "end_ms": ms(self.end),
            "duration_ms": round((self.end - self.start) * 1000, 1),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "probes": self.probes,
            "unanswered": self.counts["unanswered"],
            "late": self.counts["late"],
            "send_error": self.counts["send_error"],
            "skipped": self.skipped,
            "window": self.window,
            "last_served_before_ms": ms(self.opened),
            "first_served_after_ms": ms(self.closed),
            "events": [e.as_dict(t0) for e in self.events],
        }


@dataclass
class Accounting:
    """Where every probe of a run went."""

    sent: int
    """Probes the prober sent or tried to send (send errors included)."""
    served: Counter[str]
    """Probes served in time, by responder."""
    lost: Counter[str]
    """Probes lost, by kind (``unanswered``, ``late``, ``send_error``)."""
    late_by: Counter[str]
    """The late replies, by responder (they are in ``lost["late"]``)."""
    skipped: int
    """Sequence numbers never sent (the prober was descheduled)."""
    service_up: float | None
    """Send time of the first probe of the service (the end of the startup window)."""
    intervals: list[LossInterval]

    @property
    def unexplained(self) -> list[LossInterval]:
        """The loss intervals outside every window."""
        return [i for i in self.intervals if not i.explained]

    def in_window(self, label: str) -> list[LossInterval]:
        """The loss intervals a given window explains."""
        return [i for i in self.intervals if i.window == label]

    def as_json(self, t0: float) -> dict[str, Any]:
        """The accounting as JSON (the intervals' times in ms since ``t0``)."""
        return {
            "sent": self.sent,
            "served": dict(self.served),
            "lost": {k: self.lost[k] for k in ("unanswered", "late", "send_error")},
            "late_by": dict(self.late_by),
            "skipped": self.skipped,
            "service_up_ms": None
            if self.service_up is None
            else round((self.service_up - t0) * 1000, 1),
            "loss_intervals": [i.as_json(t0) for i in self.intervals],
        }


def service_up(
    probes: Sequence[ProbeLike], first_master: float | None, late: float = LATE
) -> float | None:
    """Send time of the first probe served that was sent at or after ``first_master``."""
    for p in probes:
        if (first_master is None or p.sent >= first_master) and classify(p, late) == "served":
            return p.sent
    return None


def failover_window(
    label: str, began: float, restored: float | None, until: float, in_flight: float = IN_FLIGHT
) -> Window:
    """A failover's window: from its fault step's start (less ``in_flight``) to ``restored``
    (the arrival of the first reply after its outage), or to ``until`` when never restored."""
    return Window(label, began - in_flight, until if restored is None else max(restored, began))


def account(
    probes: Iterable[ProbeLike],
    windows: Sequence[Window],
    events: Iterable[TimelineEvent] = (),
    *,
    first_master: float | None = None,
    late: float = LATE,
) -> Accounting:
    """Account for every probe: served by whom, or lost in which interval (and window).

    ``windows`` are the failover windows; the startup window is derived here, from
    ``first_master`` (the first MASTER transition, lab clock) and the probes themselves.
    """
    ordered = sorted(probes, key=lambda p: p.seq)
    timeline = sorted((e for e in events if e.source not in _PROBE_SOURCES), key=lambda e: e.time)
    up = service_up(ordered, first_master, late)
    all_windows = list(windows)
    if ordered:
        startup_end = up if up is not None else ordered[-1].sent + 1e-9
        # A service that never came up does not make the faults' losses "startup".
        startup_end = min([startup_end, *(w.start for w in windows)])
        # Strictly before the first probe of the service: it is served, not startup.
        all_windows.insert(0, Window("startup", ordered[0].sent, startup_end - 1e-9))

    served: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    late_by: Counter[str] = Counter()
    skipped = 0
    intervals: list[LossInterval] = []
    current: LossInterval | None = None
    last_served_sent: float | None = None
    previous_seq: int | None = None
    for p in ordered:
        gap = 0 if previous_seq is None else max(0, p.seq - previous_seq - 1)
        skipped += gap
        previous_seq = p.seq
        kind = classify(p, late)
        if kind == "served":
            served[p.responder or "?"] += 1
            if current is not None:
                current.closed = p.received
                current = None
            last_served_sent = p.sent
            continue
        lost[kind] += 1
        if kind == "late":
            late_by[p.responder or "?"] += 1
        label = _window_of(p.sent, all_windows)
        if current is not None and current.window == label:
            current.skipped += gap
        else:
            if current is not None:
                # Split at a window's edge: the next part opens where this one stopped.
                current.closed = None
            current = LossInterval(
                p.seq, p.seq, p.sent, p.sent, opened=last_served_sent, window=label
            )
            intervals.append(current)
        current.last_seq, current.end = p.seq, p.sent
        current.counts[kind] += 1
    for interval in intervals:
        lo = interval.opened if interval.opened is not None else interval.start
        hi = interval.closed if interval.closed is not None else interval.end + late
        interval.events = [e for e in timeline if lo <= e.time <= hi]
    return Accounting(len(ordered), served, lost, late_by, skipped, up, intervals)


def _window_of(t: float, windows: Sequence[Window]) -> str | None:
    for w in windows:
        if w.holds(t):
            return w.label
    return None


def steady_for(
    probes: Sequence[ProbeLike], now: float, *, late: float = LATE, horizon: float | None = None
) -> tuple[float, str]:
    """How long (seconds) the service has been steady at ``now``, and what broke it last.

    Only decided probes count: those sent at least ``late`` ago (a younger unanswered one may
    still be answered in time) and the ones already served. Steady means every decided probe
    sent since the last loss was served; the streak is measured up to ``now - late``. Returns
    (0, why) when the latest decided probe is lost, or no probe was served yet. ``horizon``
    (default ``now - late``) moves the decided edge back, for records that leave out unanswered
    probes younger than it (``ProbeRun.results()`` while running, its ``linger``).
    """
    horizon = now - late if horizon is None else min(horizon, now - late)
    last_loss: ProbeLike | None = None
    first: ProbeLike | None = None
    for p in sorted(probes, key=lambda p: p.seq):
        kind = classify(p, late)
        if kind == "served":
            if first is None:
                first = p
            continue
        if kind == "unanswered" and p.sent > horizon:
            continue  # still in flight
        last_loss, first = p, None
    if first is None:
        if last_loss is None:
            return 0.0, "no probe served yet"
        return 0.0, f"probe {last_loss.seq} lost ({classify(last_loss, late)})"
    since = first.sent
    why = (
        f"last loss: probe {last_loss.seq} ({classify(last_loss, late)})"
        if last_loss is not None
        else "no probe lost"
    )
    return max(0.0, horizon - since), why


def steady_window(advert_ints: Iterable[float], floor: float = 0.2) -> float:
    """The default steadiness window (seconds) before a fault: three advert intervals.

    Three adverts are the span of a backup's Master_Down_Interval (3·Adv + Skew): a service that
    lost nothing for that long has settled since its last change, every backup has heard the
    master since, and the neighbour entries the master's GARPs set are in use. ``floor`` keeps a
    window of at least 200 probes at 1,000/s for very short timers.
    """
    ints = list(advert_ints)
    return max(floor, 3 * max(ints)) if ints else floor


def steady_deadline(window: float, advert_ints: Iterable[float], regarp: float = 0.0) -> float:
    """How long to wait for a steady ``window`` (seconds): the window, the probe horizon,
    three Master_Down_Intervals (about 3·(3·Adv + Adv)) for the routers to settle, and
    ``regarp``: the longest ``garp_master_delay`` of a router with ``use_vmac``. On a learning
    switch an old master that still holds the VIP can answer the new master's GARPs from the
    shared VMAC, and only the new master's second GARP batch, that long after its first, takes
    the VMAC back (docs/scenarios.md, "The service behind the VIP")."""
    ints = list(advert_ints)
    adv = max(ints) if ints else 1.0
    return window + LATE + 3 * 4 * adv + regarp
