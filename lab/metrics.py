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
- **split brain**: intervals where two sources advertise the same VRID.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vrrp.timers import Timers

#: Faults after which the backup waits for Master_Down_Interval; after `stop` it waits Skew.
SILENT_FAULTS = ("crash", "host_down", "freeze", "partition", "link_flap")


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
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


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
    adverts: Sequence[AdvertSeen], advert_int: float, start: float, end: float
) -> list[tuple[float, float]]:
    """Intervals in [start, end] where two sources advertised one VRID with priority > 0.

    A source counts as advertising from each of its adverts until 1.5 advert intervals later:
    long enough to bridge the gap between its adverts, short enough not to merge a handover.
    """
    hold = 1.5 * advert_int
    spans: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for a in sorted(adverts, key=lambda a: a.at):
        if not start <= a.at <= end:
            continue
        key = (a.vrid, a.src_ip)
        runs = spans.setdefault(key, [])
        if a.priority == 0:
            # A priority-0 advert is a resignation (RFC 5798 §6.4.3): the source stops being a
            # master right there, so a backup taking over Skew_Time later is a handover.
            if runs and runs[-1][1] > a.at:
                runs[-1] = (runs[-1][0], a.at)
            continue
        if runs and a.at <= runs[-1][1]:
            runs[-1] = (runs[-1][0], a.at + hold)
        else:
            runs.append((a.at, a.at + hold))
    out: list[tuple[float, float]] = []
    keys = list(spans)
    for i, ka in enumerate(keys):
        for kb in keys[i + 1 :]:
            if ka[0] != kb[0]:
                continue
            for a0, a1 in spans[ka]:
                for b0, b1 in spans[kb]:
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
