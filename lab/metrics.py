"""Failover metrics, computed from what the lab recorded, all on the lab clock.

Their definitions: docs/architecture.md#metrics.

Pure functions over plain records, so they are unit-tested without namespaces:

- **outage**: from the last probe answered before the fault to the first answered after it;
- **detection**: from the fault to the new master's first advert in the capture (or, without a
  capture, its MASTER notification);
- **theory**: the RFC figure for that fault: Master_Down_Interval = 3·Adv + Skew for a crash,
  host-down or freeze; Skew alone after a priority-0 advert (stop). Skew = (256 − prio)·Adv/256
  for VRRPv3 (RFC 5798), (256 − prio)/256 s for VRRPv2 (RFC 3768): :mod:`vrrp.timers`;
- **stale ARP**: how long, after the new master took over, the observer's neighbour entry for
  the VIP still named a MAC the new master does not receive on;
- **split brain**: intervals where two sources advertise the same VRID;
- **service outage** (:mod:`lab.service_metrics`): the outage HTTP clients saw, with its
  health-check and takeover components, for scenarios with a ``service:``;
- **mastership** (:func:`mastership`): how long, in a window, no router said MASTER, and how long
  two or more did at once, from the routers' own reports;
- **blackhole** (:func:`blackhole_seconds`): how long, in a window, the observer's probes to the
  VIP went unanswered, every gap summed (the outage is the longest one);
- **foreign adverts** (:func:`foreign_adverts`): adverts on the wire from a node that runs no
  router of the lab (an ``inject``, or a stranger on the subnet), summarised by source;
- **BFD detection** (:func:`bfd_detection`): from the fault to a surviving router's BFD session
  going Down, as its daemon logged it, beside what the capture shows of the same session: the
  dead side's last packet and the survivor's first Down packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol

from vrrp.timers import Timers

if TYPE_CHECKING:
    from lab.service_metrics import ServiceOutage

#: Faults after which the backup waits for Master_Down_Interval; after `stop` it waits Skew.
SILENT_FAULTS = ("crash", "host_down", "freeze", "partition", "link_flap")
#: Faults after which VRRP has nothing to detect, so the RFC gives no figure: BFD is lost while
#: every advert still arrives (what a backup does then is the implementation's BFD policy); a
#: service fault is detected by a health check, whose window lab.service_metrics gives; what an
#: interface-down does is the tracker's (FAULT and priority 0, or a lowered priority), and so is
#: what a flagged file does (a track_file, or a check that tests for it).
NO_RFC_FIGURE = (
    "bfd_loss",
    "interface_down",
    "service_down",
    "service_hang",
    "service_flap",
    "file_flag",
    "inject",
)


class StateReport(Protocol):
    """What :func:`mastership` reads of a router's report (``lab.routers.events.Transition``)."""

    @property
    def at(self) -> float: ...
    @property
    def router(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def is_state(self) -> bool: ...


@dataclass(frozen=True)
class Probe:
    """One probe: when it was sent, who answered (None: lost) and when the answer came."""

    seq: int
    sent: float
    responder: str | None
    received: float | None = None

    @property
    def seen(self) -> float:
        """When the observer saw the service: the answer's arrival, else the send."""
        return self.received if self.received is not None else self.sent


@dataclass(frozen=True)
class AdvertSeen:
    """A VRRP advert in the capture."""

    at: float
    src_mac: str
    src_ip: str
    vrid: int
    priority: int
    node: str | None = None
    """The instance whose port sent it, when the capture knows."""
    interval: float | None = None
    """Its Max Adver Int, seconds (None where the recording did not keep it)."""
    version: int | None = None
    """Its VRRP version (None where the recording did not keep it)."""


@dataclass(frozen=True)
class NeighbourChange:
    """The observer's neighbour entry for the VIP at one moment."""

    at: float
    mac: str | None
    state: str


@dataclass
class Failover:
    """The measured story of one fault. Times are lab-clock seconds, figures in ms."""

    fault: str
    node: str
    at: float
    old_master: str | None = None
    new_master: str | None = None
    outage_ms: float | None = None
    detection_ms: float | None = None
    detection_source: str = "capture"
    theory_ms: float | None = None
    lost_probes: int = 0
    stale_arp_ms: float | None = None
    last_served_before: float | None = None
    first_served_after: float | None = None
    first_advert_after: float | None = None
    last_advert_of_old_master: float | None = None
    first_garp_after: float | None = None
    garps_after: int = 0
    neighbour_change_after: float | None = None
    neighbour_mac_after: str | None = None
    sdn_answer_after: float | None = None
    """When the SDN controller first answered an ARP request for the VIP after the fault."""
    sdn_answer_mac: str | None = None
    theory_min_ms: float | None = None
    """For silent faults the RFC window is [Master_Down_Interval − Adv, Master_Down_Interval]:
    the fault may strike anywhere between two adverts."""
    split_brain: list[tuple[float, float]] = field(default_factory=list)
    vip_holders_at_end: list[str] = field(default_factory=list)
    """The nodes that held the VIP when the failover's window closed: two is a split brain
    even when one of them no longer advertises (a crashed daemon leaves its VIP and VMAC)."""
    bfd: BfdDetection | None = None
    """The BFD component, when a router's BFD session went Down in the window."""
    service: ServiceOutage | None = None
    """The outage HTTP clients saw, with its components (scenarios with a ``service:``)."""
    vmac_answered_back_at: float | None = None
    """When the old master, still holding the VIP, answered the new master's GARP from the
    shared virtual MAC and the fabric learnt that MAC on its port again
    (:func:`vmac_answered_back`); None when it did not."""
    vmac_astray_at: float | None = None
    """The first frame for the VIP the fabric then delivered to the old master."""
    vmac_regarp_at: float | None = None
    """The new master's first GARP after that: when the fabric learns the VMAC back."""
    no_master_ms: float | None = None
    """How long in the window no router reported MASTER (:func:`mastership`)."""
    two_masters_ms: float | None = None
    """How long in the window two or more routers reported MASTER at once."""
    blackhole_ms: float | None = None
    """How long in the window the observer's probes went unanswered, every gap summed."""
    foreign: list[ForeignAdverts] = field(default_factory=list)
    """Adverts in the window from nodes that run no router of the lab, by source."""
    left_master: tuple[str, str, float] | None = None
    """The first router in the window to report leaving MASTER: (router, its new state, when)."""
    old_master_silence_ms: float | None = None
    """The longest gap between two adverts of the old master in the window, on the wire: a
    master that falls silent while it says MASTER (:func:`longest_silence`)."""

    @property
    def duplicated_vip(self) -> bool:
        """True when more than one node held the VIP at the end of the window."""
        return len(self.vip_holders_at_end) > 1

    def as_json(self) -> dict[str, object]:
        """The failover record of the JSON report (docs/architecture.md#contracts), plus the extra
        fields (kept under their own keys)."""
        return {
            "fault": self.fault.replace("_", "-"),
            "node": self.node,
            "old_master": self.old_master,
            "new_master": self.new_master,
            "outage_ms": _round(self.outage_ms),
            "detection_ms": _round(self.detection_ms),
            "detection_source": self.detection_source,
            "theory_ms": _round(self.theory_ms),
            "theory_min_ms": _round(self.theory_min_ms),
            "lost_probes": self.lost_probes,
            "stale_arp_ms": _round(self.stale_arp_ms),
            "split_brain_ms": [
                [_round((a - self.at) * 1000), _round((b - self.at) * 1000)]
                for a, b in self.split_brain
            ],
            "vip_holders_at_end": self.vip_holders_at_end,
            "no_master_ms": _round(self.no_master_ms),
            "two_masters_ms": _round(self.two_masters_ms),
            "blackhole_ms": _round(self.blackhole_ms),
            "foreign_adverts": [x.as_json(self.at) for x in self.foreign],
            "old_master_silence_ms": _round(self.old_master_silence_ms),
            "left_master": None
            if self.left_master is None
            else {
                "router": self.left_master[0],
                "state": self.left_master[1],
                "at_ms": _round((self.left_master[2] - self.at) * 1000),
            },
            "bfd": self.bfd.as_json(self.at) if self.bfd is not None else None,
            "service": self._service_json(),
            "vmac_answered_back": None
            if self.vmac_answered_back_at is None
            else {
                "answered_ms": _round((self.vmac_answered_back_at - self.at) * 1000),
                "astray_ms": _round(((self.vmac_astray_at or self.at) - self.at) * 1000),
                "regarp_ms": None
                if self.vmac_regarp_at is None
                else _round((self.vmac_regarp_at - self.at) * 1000),
            },
        }

    def _service_json(self) -> dict[str, object] | None:
        """The service's record, with ``vmac_relearned_by_old_master_ms`` (since the first
        failed request), which it has carried since before the VMAC answer became every
        failover's (``vmac_answered_back``)."""
        if self.service is None:
            return None
        record = self.service.as_json()
        first_failed = self.service.first_failed
        record["vmac_relearned_by_old_master_ms"] = (
            None
            if self.vmac_answered_back_at is None or first_failed is None
            else _round((self.vmac_answered_back_at - first_failed) * 1000)
        )
        return record


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(frozen=True)
class ForeignAdverts:
    """The adverts one source that runs no router of the lab sent in a window."""

    node: str | None
    """The instance whose port sent them (None: the capture could not tell)."""
    src_ip: str
    count: int
    first: float
    last: float
    vrids: tuple[int, ...]
    priorities: tuple[int, ...]
    intervals: tuple[float, ...]
    """The Max Adver Int values they carried, seconds, in order of first use."""

    def __str__(self) -> str:
        who = f"{self.node} ({self.src_ip})" if self.node else self.src_ip
        plural = "s" if self.count != 1 else ""
        return (
            f"{self.count} advert{plural} from {who}: VRID {_listed(self.vrids)}, priority "
            f"{_listed(self.priorities)}, interval {_listed(self.intervals, 's')}"
        )

    def as_json(self, since: float) -> dict[str, object]:
        """The JSON record, times in ms since ``since`` (the fault)."""
        return {
            "node": self.node,
            "src_ip": self.src_ip,
            "count": self.count,
            "first_ms": _round((self.first - since) * 1000),
            "last_ms": _round((self.last - since) * 1000),
            "vrids": list(self.vrids),
            "priorities": list(self.priorities),
            "intervals_s": list(self.intervals),
        }


def _listed(values: Sequence[float], unit: str = "") -> str:
    return "/".join(f"{v:g}{unit}" for v in values) or "?"


def foreign_adverts(
    adverts: Iterable[AdvertSeen], routers: Iterable[str], start: float, end: float
) -> list[ForeignAdverts]:
    """The adverts in [start, end) from nodes outside ``routers``, one record per source."""
    mine = set(routers)
    by_source: dict[tuple[str | None, str], list[AdvertSeen]] = {}
    for a in sorted(adverts, key=lambda a: a.at):
        if start <= a.at < end and a.node not in mine:
            by_source.setdefault((a.node, a.src_ip), []).append(a)
    out = []
    for (node, src), seen in by_source.items():
        intervals = [a.interval for a in seen if a.interval is not None]
        out.append(
            ForeignAdverts(
                node,
                src,
                len(seen),
                seen[0].at,
                seen[-1].at,
                tuple(dict.fromkeys(a.vrid for a in seen)),
                tuple(dict.fromkeys(a.priority for a in seen)),
                tuple(dict.fromkeys(intervals)),
            )
        )
    return out


def mastership(transitions: Iterable[StateReport], start: float, end: float) -> tuple[float, float]:
    """Seconds in [start, end] with no router in MASTER, and with two or more, as the routers
    reported their states (``INSTANCE`` lines; a router is master while any of its instances
    is). Before its first report in the window a router is in the state it last reported."""
    state: dict[tuple[str, str], bool] = {}
    changes: list[tuple[float, tuple[str, str], bool]] = []
    for t in sorted(transitions, key=lambda t: t.at):
        if t.kind != "INSTANCE" or not t.is_state:
            continue
        key = (t.router, t.instance)
        if t.at <= start:
            state[key] = t.state == "MASTER"
        elif t.at < end:
            changes.append((t.at, key, t.state == "MASTER"))

    def masters() -> int:
        return len({router for (router, _), on in state.items() if on})

    none = several = 0.0
    now = start
    for at, key, on in [*changes, (end, ("", ""), False)]:
        count = masters()
        if count == 0:
            none += at - now
        elif count > 1:
            several += at - now
        now = at
        if key != ("", ""):
            state[key] = on
    return none, several


def first_to_leave_master(
    transitions: Iterable[StateReport], start: float, end: float
) -> tuple[str, str, float] | None:
    """The first router that reported leaving MASTER in [start, end): (router, the state it
    reported, when); None when none did."""
    master: dict[tuple[str, str], bool] = {}
    for t in sorted(transitions, key=lambda t: t.at):
        if t.kind != "INSTANCE" or not t.is_state or t.at >= end:
            continue
        key = (t.router, t.instance)
        if t.at >= start and master.get(key) and t.state != "MASTER":
            return t.router, t.state, t.at
        master[key] = t.state == "MASTER"
    return None


def longest_silence(
    adverts: Iterable[AdvertSeen], node: str, start: float, end: float
) -> float | None:
    """The longest gap (s) between consecutive adverts with priority > 0 that ``node`` sent in
    [start, end); None with fewer than two."""
    times = sorted(a.at for a in adverts if a.node == node and a.priority and start <= a.at < end)
    return max((b - a for a, b in pairwise(times)), default=None)


def blackhole_seconds(probes: Sequence[Probe], start: float, end: float) -> float:
    """Seconds in [start, end] the observer's probes went unanswered: each run of lost probes
    counts from the last answer before it (or ``start``) to the first answer after it (or
    ``end``), clipped to the window. Zero when every probe was answered."""
    window = sorted((p for p in probes if start <= p.sent < end), key=lambda p: p.sent)
    total = 0.0
    gap_from: float | None = None
    last_seen = start
    for p in window:
        if p.responder is None:
            if gap_from is None:
                gap_from = last_seen
            continue
        if gap_from is not None:
            total += min(p.seen, end) - max(gap_from, start)
            gap_from = None
        last_seen = p.seen
    if gap_from is not None:
        total += end - max(gap_from, start)
    return total


def vmac_answered_back(
    arps: Sequence[tuple[float, str, str]],
    to_vip: Sequence[tuple[float, tuple[str, ...]]],
    old_master: str,
    new_master: str,
    vmac: str,
    new_masters_garp: float,
    within: float,
) -> tuple[float, float] | None:
    """(When the old master answered the new master's GARP from the shared virtual MAC, when
    the fabric then delivered a frame for the VIP to it and not to the new master), or None
    when that did not happen.

    ``arps`` are the capture's ARP replies as (time, sender, source MAC), ``to_vip`` its probes
    to the VIP as (time, receivers). Both routers own ``vmac`` (``use_vmac``). A handover where
    the old master stays up (a weighted check lowered it) leaves it holding the VIP until it
    hears the new master's first advert, sent with its first GARPs; if a GARP request reaches
    it before that, its kernel answers it, from the VMAC, and a learning switch moves the MAC
    back to its port. Frames to the VIP then reach a node that no longer holds it, until the
    new master sends from the VMAC again: its next GARP, ``garp_master_delay`` later.

    Both are looked for within ``within`` seconds (the old master's advert interval: by then it
    has heard an advert and let the VIP go, so a later reply or delivery is another story, a
    preemption back say). An answer the fabric did not learn from (an SDN that filters it)
    delivers nothing astray, and is not reported; nor is a frame flooded to both.
    """
    answered = next(
        (
            at
            for at, sender, src in sorted(arps)
            if new_masters_garp <= at < new_masters_garp + within
            and sender == old_master
            and src == vmac
        ),
        None,
    )
    if answered is None:
        return None
    astray = next(
        (
            at
            for at, receivers in sorted(to_vip)
            if answered <= at < answered + within
            and old_master in receivers
            and new_master not in receivers
        ),
        None,
    )
    return None if astray is None else (answered, astray)


def skew_time(priority: int, advert_int: float, version: int = 3) -> float:
    """§6.1 Skew_Time in seconds, of VRRP ``version`` (:mod:`vrrp.timers`): RFC 5798's
    ((256 − Priority) · Master_Adver_Interval) / 256 for v3, RFC 3768's (256 − Priority) / 256
    for v2."""
    return Timers.of(version, priority, advert_int).skew_time


def theory_seconds(fault: str, backup_priority: int, advert_int: float, version: int = 3) -> float:
    """The RFC's detection figure for ``fault``, for a VRRP ``version`` backup of
    ``backup_priority``: Skew_Time after a stop (its priority-0 advert), else
    Master_Down_Interval."""
    return Timers.of(version, backup_priority, advert_int).detection(fault == "stop")


def theory_window(
    fault: str, backup_priority: int, advert_int: float, version: int = 3
) -> tuple[float | None, float]:
    """The RFC's detection window for ``fault`` in seconds, as (earliest, latest).

    After a silent fault the master's last advert came up to one interval earlier, so the
    window is [Master_Down_Interval − Adv, Master_Down_Interval]. After a stop there is one
    figure, Skew_Time, and the earliest is None.
    """
    timers = Timers.of(version, backup_priority, advert_int)
    if fault == "stop":
        return None, timers.skew_time
    return timers.silent_failure_window()


def who_served(probes: Sequence[Probe], before: float) -> str | None:
    """The node that answered the last answered probe sent before ``before``."""
    last = [p for p in probes if p.sent < before and p.responder]
    return last[-1].responder if last else None


def outage(
    probes: Sequence[Probe], at: float, until: float | None = None
) -> tuple[float | None, float | None, int, str | None]:
    """The service gap a fault at ``at`` caused, in the probes sent before ``until``.

    Returns (arrival of the last answer before the gap, arrival of the first answer after it,
    probes lost in it, who answered after it): the outage as the observer lived it, and as
    the capture shows it on the wire. The gap is the longest run of unanswered
    probes that ends after ``at``: an old master often still answers for a moment after the
    fault (a SIGTERMed daemon removes its VIP only on its way out), so "the first probe
    answered after the fault" would measure nothing. A gap that never closes runs to the end
    of the window; no gap at all is an outage of zero.
    """
    window = [p for p in probes if until is None or p.sent < until]
    best: tuple[float, int, int] | None = None  # (duration, index of first lost, count lost)
    i = 0
    while i < len(window):
        if window[i].responder is not None:
            i += 1
            continue
        j = i
        while j < len(window) and window[j].responder is None:
            j += 1
        closes_after_fault = j == len(window) or window[j].sent > at
        if closes_after_fault:
            start = window[i - 1].sent if i > 0 else window[i].sent
            end = window[j].sent if j < len(window) else window[-1].sent
            if best is None or end - start > best[0]:
                best = (end - start, i, j - i)
        i = j
    if best is None:
        served = [p for p in window if p.sent >= at and p.responder]
        return at, at, 0, served[0].responder if served else None
    _, first_lost, lost = best
    after = first_lost + lost
    last_before = window[first_lost - 1].seen if first_lost > 0 else None
    first_after = window[after].seen if after < len(window) else None
    return last_before, first_after, lost, window[after].responder if first_after else None


def first_advert_from(
    adverts: Iterable[AdvertSeen], node: str, after: float, vrid: int | None = None
) -> AdvertSeen | None:
    """The first advert with priority > 0 that ``node`` sent at or after ``after``."""
    for advert in sorted(adverts, key=lambda a: a.at):
        mine = advert.node == node and (vrid is None or advert.vrid == vrid)
        if mine and advert.at >= after and advert.priority > 0:
            return advert
    return None


def split_brain_intervals(
    adverts: Sequence[AdvertSeen],
    advert_int: float,
    start: float,
    end: float,
    *,
    stopped: Mapping[str, Sequence[float]] | None = None,
) -> list[tuple[float, float]]:
    """Intervals in [start, end] where two sources advertised one VRID with priority > 0.

    A source counts as advertising from each of its adverts until 1.5 advert intervals later:
    long enough to bridge the gap between its adverts, short enough not to merge a handover.
    ``stopped`` gives, by node, when a source is known to have stopped advertising before
    that: its router left MASTER, or a fault silenced it (a host that died sends nothing more).
    An advert's hold ends there; a later advert of the same source starts a new run. Without
    it, a takeover sooner than 1.5 intervals after the old master's last advert (BFD's) would
    count as two advertisers. A hold also ends at a higher-priority advert of another source
    that the source did not answer with an advert of its own: a master hearing a better one
    steps down (a weighted check's handover, where the old master stays up), and the few
    milliseconds its daemon takes to say so are no split brain.
    """
    hold = 1.5 * advert_int
    # Per source, its runs as [start, end, last advert's time, last advert's priority].
    spans: dict[tuple[int, str], list[list[float]]] = {}
    mine = sorted((a for a in adverts if start <= a.at <= end), key=lambda a: a.at)
    for a in mine:
        key = (a.vrid, a.src_ip)
        runs = spans.setdefault(key, [])
        if a.priority == 0:
            # A priority-0 advert is a resignation (RFC 5798 §6.4.3): the source stops being a
            # master right there, so a backup taking over Skew_Time later is a handover.
            if runs and runs[-1][1] > a.at:
                runs[-1][1] = a.at
            continue
        # This advert's hold ends early where its node is known to have stopped since.
        ends = (stopped or {}).get(a.node or "", ())
        reach = min([a.at + hold, *(t for t in ends if a.at <= t < a.at + hold)])
        if runs and a.at <= runs[-1][1]:
            runs[-1][1:] = [max(runs[-1][1], reach), a.at, a.priority]
        else:
            runs.append([a.at, reach, a.at, a.priority])
    # A master hearing a better advert steps down (RFC 5798 §6.4.3): a source that sent nothing
    # after a higher-priority advert of its VRID was done by then, whenever its daemon said so.
    for (vrid, src), runs in spans.items():
        for run in runs:
            better = next(
                (
                    b.at
                    for b in mine
                    if b.vrid == vrid
                    and b.src_ip != src
                    and run[2] < b.at < run[1]
                    and b.priority > run[3]
                ),
                None,
            )
            if better is not None:
                run[1] = better
    out: list[tuple[float, float]] = []
    keys = list(spans)
    for i, ka in enumerate(keys):
        for kb in keys[i + 1 :]:
            if ka[0] != kb[0]:
                continue
            for a0, a1, *_ in spans[ka]:
                for b0, b1, *_ in spans[kb]:
                    lo, hi = max(a0, b0), min(a1, b1, end)
                    if hi > lo:
                        out.append((lo, hi))
    return _merge(out)


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def stale_arp_seconds(
    changes: Sequence[NeighbourChange], good_macs: set[str], takeover: float, end: float
) -> float | None:
    """Total time in [takeover, end] during which the neighbour entry named a wrong MAC.

    A MAC is wrong when the new master does not receive on it (``good_macs``). An entry without
    a MAC (INCOMPLETE, FAILED) is not stale: the observer is asking, not misdirected. None when
    the observer never had an entry.
    """
    if not changes:
        return None
    mac: str | None = None
    for change in changes:
        if change.at <= takeover:
            mac = change.mac
    total, since = 0.0, takeover
    for change in changes:
        if change.at <= takeover:
            continue
        if change.at >= end:
            break
        if mac is not None and mac not in good_macs:
            total += change.at - since
        since, mac = change.at, change.mac
    if mac is not None and mac not in good_macs:
        total += end - since
    return total


# --- BFD ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BfdChange:
    """A BFD session's state change, as a router's daemon logged it."""

    at: float
    router: str
    session: str
    state: str
    """``Up``, ``Down``, ``Init`` or ``AdminDown``."""
    diag: int | None = None
    """The local diagnostic of a change to Down (1: Control Detection Time Expired)."""


@dataclass(frozen=True)
class BfdPacket:
    """A BFD Control packet in the capture, with what the detection time is made of."""

    at: float
    sender: str
    """The instance whose port sent it."""
    src_ip: str
    dst_ip: str
    state: str
    diag: int
    detect_mult: int
    desired_min_tx: float
    """Seconds."""
    required_min_rx: float
    """Seconds."""
    receivers: tuple[str, ...] = ()
    """The instances the fabric delivered it to (none when a fault dropped it)."""


#: RFC 5880 §4.1 diagnostic 1: the session went Down because its detection timer expired.
DIAG_EXPIRED = 1


@dataclass
class BfdDetection:
    """The BFD component of one failover: a surviving router's session to the failed side went
    Down. Times are lab-clock seconds, figures ms."""

    router: str
    """The router whose session went Down (the new master's when it has one)."""
    session: str
    """Its ``bfd_instance`` name."""
    down_at: float
    """When its daemon logged the session Down."""
    detection_ms: float
    """From the fault to ``down_at``."""
    diag: int | None = None
    """The diagnostic of the Down (1: Control Detection Time Expired)."""
    peer: str | None = None
    """The node at the other end of the session, as the capture names it."""
    detect_time_ms: float | None = None
    """The detection time the survivor ran with, from the last packets before the Down:
    the peer's Detect Mult × max(the survivor's Required Min RX, the peer's Desired Min TX)
    (RFC 5880 §6.8.4)."""
    configured_detect_time_ms: float | None = None
    """The same product from the two routers' ``bfd_instance`` configs."""
    last_packet_from_peer: float | None = None
    """The peer's last BFD packet to the survivor before the Down (often before the fault)."""
    first_down_packet: float | None = None
    """The survivor's first Down packet with diag 1 after the fault."""

    @property
    def silence_ms(self) -> float | None:
        """On the wire: from the peer's last packet to the survivor's first Down packet."""
        if self.last_packet_from_peer is None or self.first_down_packet is None:
            return None
        return (self.first_down_packet - self.last_packet_from_peer) * 1000

    def as_json(self, fault_at: float) -> dict[str, object]:
        """The ``failovers[i].bfd`` record of the JSON report; times are ms after the fault."""

        def rel(t: float | None) -> float | None:
            return None if t is None else _round((t - fault_at) * 1000)

        return {
            "router": self.router,
            "session": self.session,
            "peer": self.peer,
            "detection_ms": _round(self.detection_ms),
            "diag": self.diag,
            "detect_time_ms": _round(self.detect_time_ms),
            "configured_detect_time_ms": _round(self.configured_detect_time_ms),
            "last_packet_from_peer_ms": rel(self.last_packet_from_peer),
            "first_down_packet_ms": rel(self.first_down_packet),
            "silence_ms": _round(self.silence_ms),
        }


def bfd_detection(
    changes: Sequence[BfdChange],
    packets: Sequence[BfdPacket],
    at: float,
    until: float,
    *,
    node: str = "",
    new_master: str | None = None,
    configured: Mapping[tuple[str, str], float] | None = None,
) -> BfdDetection | None:
    """The BFD component of the failover of a fault at ``at`` on ``node``, in [at, until).

    The session Down that counts is the new master's (its own detection is what could have
    hastened the takeover), else a router's other than ``node``, else the first. The wire
    figures follow that router's packets: its first Down packet with diag 1 after the fault,
    and the last packet it was delivered from that packet's destination before it (a packet a
    fault dropped in the fabric is in the capture, but was never heard). ``configured``
    gives the configured detection time (seconds) by (router, session). None when no session
    went Down in the window.
    """
    downs = [c for c in changes if at <= c.at < until and c.state in ("Down", "AdminDown")]
    if not downs:
        return None
    down = min(downs, key=lambda c: (c.router != new_master, c.router == node, c.at))
    found = BfdDetection(down.router, down.session, down.at, (down.at - at) * 1000, diag=down.diag)
    if configured and (down.router, down.session) in configured:
        found.configured_detect_time_ms = configured[down.router, down.session] * 1000
    mine = sorted((p for p in packets if p.sender == down.router), key=lambda p: p.at)
    first_down = next(
        (p for p in mine if at <= p.at < until and p.state == "Down" and p.diag == DIAG_EXPIRED),
        None,
    )
    if first_down is None:
        return found
    found.first_down_packet = first_down.at
    peer_ip, my_ip = first_down.dst_ip, first_down.src_ip
    heard = [
        p
        for p in packets
        if p.src_ip == peer_ip
        and p.dst_ip == my_ip
        and p.at < first_down.at
        and down.router in p.receivers
    ]
    if not heard:
        return found
    last = max(heard, key=lambda p: p.at)
    found.peer, found.last_packet_from_peer = last.sender, last.at
    said = [p for p in mine if p.dst_ip == peer_ip and p.at <= last.at]
    if said:
        # RFC 5880 §6.8.4: the remote's Detect Mult times the agreed receive interval.
        agreed = max(said[-1].required_min_rx, last.desired_min_tx)
        found.detect_time_ms = last.detect_mult * agreed * 1000
    return found
