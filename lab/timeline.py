"""One ordered timeline on the lab clock, merged from every event stream of a run.

Streams and their adapters:

========================  ==================================  ===========================
stream                    adapter                             ``source`` / ``kind``
========================  ==================================  ===========================
probe results             :func:`from_probes`                 ``probe`` / ``served``,
                                                              ``last-served``, ``outage``,
                                                              ``send-error``
capture events            :func:`from_capture`                ``capture`` / ``advert``,
                                                              ``garp``, ``arp-request``,
                                                              ``arp-reply``, ``arp-probe``,
                                                              (``probe-served``)
router transitions        :func:`from_router`                 the tuple's source / kind
routers' BFD events       :func:`from_bfd`                    the router / ``bfd-session``,
                                                              ``bfd-expired``,
                                                              ``bfd-received``,
                                                              ``bfd-tracked``
SDN controller JSON       :func:`from_sdn`                    ``sdn`` / the JSON's event
neighbour changes         :func:`from_neighbours`             ``neigh:<node>`` /
                                                              ``neighbour``
========================  ==================================  ===========================

Router drivers give ``(time, source, kind, detail)`` tuples; :func:`merge` takes those as they
are, as well as :class:`TimelineEvent` objects. Every event keeps the record it came from in
``data``, so a metric can go back from a line to the packet, probe or transition behind it.

Probes are summarised (1,000 a second would drown everything else): one ``served`` event when
a responder starts answering, one ``last-served`` when it stops, and one ``outage`` per gap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.capture_events import Event as CaptureEvent
    from lab.neighbours import NeighbourChange
    from lab.probe import ProbeResults
    from lab.routers.events import BfdEvent


@dataclass(frozen=True)
class TimelineEvent:
    """One event: when (lab clock, seconds), from which stream, what kind, and a readable line."""

    time: float
    source: str
    kind: str
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The record the event came from (fields of a packet, probe, transition, SDN event)."""

    def as_dict(self, t0: float | None = None) -> dict[str, Any]:
        """A JSON-ready dict; with ``t0``, also ``t_ms``: milliseconds since ``t0``."""
        out: dict[str, Any] = {
            "time": self.time,
            "source": self.source,
            "kind": self.kind,
            "detail": self.detail,
        }
        if t0 is not None:
            out["t_ms"] = round((self.time - t0) * 1000.0, 3)
        return out


RouterTuple = tuple[float, str, str, str]


def _coerce(item: TimelineEvent | RouterTuple) -> TimelineEvent:
    if isinstance(item, TimelineEvent):
        return item
    time, source, kind, detail = item
    return TimelineEvent(float(time), str(source), str(kind), str(detail))


class Timeline(Sequence[TimelineEvent]):
    """Events in time order; events at the same instant keep the order they were merged in."""

    def __init__(self, events: Iterable[TimelineEvent] = ()) -> None:
        # sorted() is stable: ties keep the order of the streams given to merge().
        self.events: list[TimelineEvent] = sorted(events, key=lambda e: e.time)

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: Any) -> Any:
        return self.events[index]

    def __iter__(self) -> Iterator[TimelineEvent]:
        return iter(self.events)

    def select(
        self,
        *,
        kind: str | Iterable[str] | None = None,
        source: str | Iterable[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        where: Callable[[TimelineEvent], bool] | None = None,
    ) -> Timeline:
        """The events of these kinds and sources, in ``[start, end)``, for which ``where`` holds."""
        kinds = {kind} if isinstance(kind, str) else (set(kind) if kind is not None else None)
        sources = (
            {source} if isinstance(source, str) else (set(source) if source is not None else None)
        )
        return Timeline(
            e
            for e in self.events
            if (kinds is None or e.kind in kinds)
            and (sources is None or e.source in sources)
            and (start is None or e.time >= start)
            and (end is None or e.time < end)
            and (where is None or where(e))
        )

    def first(self, **criteria: Any) -> TimelineEvent | None:
        """The earliest event matching :meth:`select`'s criteria, or None."""
        found = self.select(**criteria)
        return found.events[0] if found.events else None

    def last(self, **criteria: Any) -> TimelineEvent | None:
        """The latest event matching :meth:`select`'s criteria, or None."""
        found = self.select(**criteria)
        return found.events[-1] if found.events else None

    def render(self, t0: float | None = None) -> str:
        """One line per event: milliseconds since ``t0`` (default: the first event), source,
        kind and detail."""
        if not self.events:
            return ""
        origin = self.events[0].time if t0 is None else t0
        width = max(len(e.source) for e in self.events)
        kwidth = max(len(e.kind) for e in self.events)
        return "\n".join(
            f"{(e.time - origin) * 1000.0:+11.3f} ms  {e.source:<{width}}  {e.kind:<{kwidth}}  "
            f"{e.detail}"
            for e in self.events
        )

    def as_json(self, t0: float | None = None) -> list[dict[str, Any]]:
        """The events as JSON-ready dicts (see :meth:`TimelineEvent.as_dict`)."""
        return [e.as_dict(t0) for e in self.events]


def merge(*streams: Iterable[TimelineEvent | RouterTuple]) -> Timeline:
    """Merge event streams into one :class:`Timeline`; router tuples are accepted as they are."""
    return Timeline(_coerce(item) for stream in streams for item in stream)


# -- adapters ---------------------------------------------------------------------------------


def from_probes(results: ProbeResults, source: str = "probe") -> list[TimelineEvent]:
    """Who served, and when not: ``served`` / ``last-served`` per run of one responder's replies,
    ``outage`` per gap (at the last reply before it; ``data`` has the figures), and
    ``send-error`` for the first of each run of failed sends."""
    out: list[TimelineEvent] = []
    for who, first, last in results.segments():
        assert first.received is not None and last.received is not None
        out.append(
            TimelineEvent(
                first.received,
                source,
                "served",
                f"{who} answers (seq {first.seq})",
                {"responder": who, "seq": first.seq, "sent": first.sent},
            )
        )
        out.append(
            TimelineEvent(
                last.received,
                source,
                "last-served",
                f"{who} answers for the last time (seq {last.seq})",
                {"responder": who, "seq": last.seq, "sent": last.sent},
            )
        )
    for outage in results.outages():
        out.append(
            TimelineEvent(
                outage.start,
                source,
                "outage",
                f"{outage.lost} probes lost over {outage.duration * 1000:.1f} ms "
                f"({outage.old} -> {outage.new})",
                {
                    "duration": outage.duration,
                    "lost": outage.lost,
                    "old": outage.old,
                    "new": outage.new,
                    "end": outage.end,
                },
            )
        )
    previous_failed = False
    for r in results:
        if r.error and not previous_failed:
            out.append(TimelineEvent(r.sent, source, "send-error", f"seq {r.seq}: {r.error}", {}))
        previous_failed = r.error is not None
    return out


_ARP_KINDS = {
    "garp": "garp",
    "probe": "arp-probe",
    "request": "arp-request",
    "reply": "arp-reply",
}


def from_capture(
    events: Iterable[CaptureEvent], source: str = "capture", *, probes: bool = False
) -> list[TimelineEvent]:
    """VRRP adverts, ARP packets and BFD state changes (``bfd``: the first packet of a sender
    to a peer that carries a new session state) of a capture; with ``probes``, also
    ``probe-served`` events where the responder of the captured probe replies changes."""
    from lab.capture_events import ArpEvent, BfdControl, ProbePacket, VrrpAdvert

    out: list[TimelineEvent] = []
    serving: str | None = None
    bfd_state: dict[tuple[str, str], str] = {}
    for ev in events:
        where = f"{ev.sender}" + (" (injected)" if ev.injected else "")
        if isinstance(ev, VrrpAdvert):
            detail = (
                f"VRRPv{ev.version} vrid {ev.vrid} prio {ev.priority} from {where} "
                f"{ev.src_ip} ({ev.src_mac}) -> {ev.dst_ip} ttl {ev.ttl}"
            )
            out.append(TimelineEvent(ev.time, source, "advert", detail, vars(ev)))
        elif isinstance(ev, ArpEvent):
            detail = f"{ev.spa} is-at {ev.sha} from {where} (tpa {ev.tpa})"
            if ev.kind == "request":
                detail = f"who-has {ev.tpa} tell {ev.spa} ({ev.sha}) from {where}"
            out.append(TimelineEvent(ev.time, source, _ARP_KINDS[ev.kind], detail, vars(ev)))
        elif isinstance(ev, BfdControl):
            # One packet every few ms while a session runs: only a change of state is news.
            flow = (ev.src_ip, ev.dst_ip)
            if bfd_state.get(flow) != ev.state:
                was = bfd_state.get(flow, "nothing")
                bfd_state[flow] = ev.state
                detail = (
                    f"BFD {ev.src_ip} -> {ev.dst_ip} says {ev.state} (was {was}, diag {ev.diag})"
                    f" from {where}"
                )
                out.append(TimelineEvent(ev.time, source, "bfd", detail, vars(ev)))
        elif (
            probes
            and isinstance(ev, ProbePacket)
            and ev.direction_kind == "reply"
            and ev.responder != serving
        ):
            serving = ev.responder
            out.append(
                TimelineEvent(
                    ev.time,
                    source,
                    "probe-served",
                    f"{ev.responder} replies on the wire (seq {ev.seq})",
                    vars(ev),
                )
            )
    return out


def from_router(
    transitions: Iterable[RouterTuple | TimelineEvent],
) -> list[TimelineEvent]:
    """Router transitions from the drivers, given as ``(time, source, kind, detail)``."""
    return [_coerce(t) for t in transitions]


def from_bfd(events: Iterable[BfdEvent]) -> list[TimelineEvent]:
    """The BFD events the routers' daemons logged: session state changes (``bfd-session``),
    detection timers firing (``bfd-expired``), the VRRP side told (``bfd-received``) and
    tracked sessions acting on an instance (``bfd-tracked``); the source is the router."""
    return [TimelineEvent(e.at, e.router, f"bfd-{e.kind}", e.describe(), vars(e)) for e in events]


_TIME_KEYS = ("time", "ts", "t", "timestamp")
_KIND_KEYS = ("event", "kind", "type")


def from_sdn(
    records: str | os.PathLike[str] | Iterable[str | Mapping[str, Any]], source: str = "sdn"
) -> list[TimelineEvent]:
    """SDN controller events: a JSON-lines file, its lines, or decoded dicts.

    The time is the first of ``time``/``ts``/``t``/``timestamp`` (lab-clock seconds), the kind
    the first of ``event``/``kind``/``type``; the other keys make the detail (``key=value``).
    Records without a time are skipped.
    """
    if isinstance(records, str | os.PathLike) and not (
        isinstance(records, str) and records.lstrip().startswith("{")
    ):
        lines: Iterable[str | Mapping[str, Any]] = Path(records).read_text().splitlines()
    elif isinstance(records, str):
        lines = records.splitlines()
    else:
        lines = records
    out: list[TimelineEvent] = []
    for item in lines:
        if isinstance(item, str):
            if not item.strip():
                continue
            record: Mapping[str, Any] = json.loads(item)
        else:
            record = item
        when = next((record[k] for k in _TIME_KEYS if k in record), None)
        if when is None:
            continue
        kind_key = next((k for k in _KIND_KEYS if k in record), None)
        kind = str(record[kind_key]) if kind_key else "event"
        rest = {k: v for k, v in record.items() if k not in _TIME_KEYS and k != kind_key}
        detail = " ".join(f"{k}={v}" for k, v in rest.items())
        out.append(TimelineEvent(float(when), source, kind, detail, dict(record)))
    return out


def from_neighbours(
    changes: Iterable[NeighbourChange], node: str = "observer", *, dumps: bool = False
) -> list[TimelineEvent]:
    """Neighbour-table changes of ``node``; the initial dump is left out unless ``dumps``."""
    out: list[TimelineEvent] = []
    for c in changes:
        if c.event == "dump" and not dumps:
            continue
        what = "deleted" if c.event == "del" else (f"lladdr {c.mac}" if c.mac else "no lladdr")
        out.append(
            TimelineEvent(c.time, f"neigh:{node}", "neighbour", f"{c.ip} {what} {c.state}", vars(c))
        )
    return out
