"""The procedures the conformance checks share: the IUT's timers, bringing it up as master and
sampling its adverts, the discard case, and the injection at mid-period of its adverts.

Windows and tolerances derive from the configured timers:

* ``tolerance(Adv)`` = Adv/5 (20 ms at the bench's 0.1 s) for measured timers;
* CONTROL window = Master_Down_Interval + tolerance: an IUT that did not hear the tester's valid
  adverts would have become master by then, so a control case proves the adverts are heard;
* DISCARD window = 2·Master_Down_Interval + tolerance after the switch to broken adverts: an
  IUT that discards them becomes master one Master_Down_Interval after the last valid one;
  one that still is backup twice that long later has accepted them; one that takes over
  sooner, or late enough that a broken advert restarted its timer, acted on them
  (:func:`discard_timing`);
* AT_ONCE = Adv/4: the tester injects at mid-period of the IUT's adverts, so an answer sent
  "at once" comes well before Adv/4 and the regular advert only after Adv/2.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from typing import Literal

from lab import clock
from lab.capture_events import VrrpAdvert
from lab.conformance.bench import ADV, TESTER_PRIO, Bench, Seen, tolerance
from lab.conformance.verdict import Findings
from lab.routers import RouterParams
from lab.stalls import takeover_netlink
from vrrp.packet import Advert, ChecksumForm, compute_checksum, encode
from vrrp.timers import Rfc, Timers, centiseconds

#: How many adverts a transmission row inspects (1 s of adverts at the bench's interval).
SAMPLE = 10


def timers_of(params: RouterParams, adv: float | None = None) -> Timers:
    """The RFC timers of the IUT as backup, timing a master by ``adv`` (default: its own
    interval), with Skew_Time computed from that interval too."""
    return Timers.of(params.version, params.priority, adv or params.advert_int)


def mdi(params: RouterParams, adv: float | None = None) -> float:
    """Master_Down_Interval of the IUT as backup (with ``adv`` as Master_Adver_Interval)."""
    return timers_of(params, adv).master_down_interval


def adoption_window(params: RouterParams, master_int: float) -> tuple[float, float]:
    """The Master_Down_Interval of a v3 IUT after it adopts ``master_int`` (§6.4.2): from RFC
    5798's, whose Skew_Time keeps the IUT's own interval, to RFC 9568's, which recomputes it."""
    own, adopted = centiseconds(params.advert_int), centiseconds(master_int)
    low, high = (
        Timers(rfc, params.priority, own).adopt(adopted).master_down_interval
        for rfc in (Rfc.RFC5798, Rfc.RFC9568)
    )
    return min(low, high), max(low, high)


def become_master(
    b: Bench, f: Findings, params: RouterParams, extra: tuple[str, ...] = ()
) -> Seen | None:
    """Start the IUT alone and wait for its first advert as master; None (and n/a) if none."""
    b.start_iut(params, extra)
    # Alone on the segment, it is master one Master_Down_Interval after it starts; the wait
    # allows twice that plus a second for a daemon's own start-up.
    first = b.wait_iut_advert(
        b.launched, 2 * mdi(params) + 1.0, lambda a: a.priority == params.priority
    )
    if first is None:
        f.na(f"the IUT never advertised as master (state {b.state()})")
    return first


def master_sample(
    b: Bench, f: Findings, params: RouterParams, extra: tuple[str, ...] = (), n: int = SAMPLE
) -> list[Seen]:
    """``n`` consecutive adverts of the IUT as sole master."""
    first = become_master(b, f, params, extra)
    if first is None:
        return []
    last = b.wait_seen(
        lambda s: len(b.adverts(since=first.time)) >= n,
        since=first.time,
        timeout=(n + 2) * params.advert_int + 0.5,
        what=f"{n} adverts from the IUT",
    )
    sample = b.adverts(since=first.time)[:n]
    if last is None or len(sample) < n:
        f.na(f"the IUT sent {len(sample)} adverts where {n} were awaited")
    return sample


def discard_timing(
    took: float, *, down: float, tol: float, first_bad: float, restart_down: float
) -> Literal["on time", "late", "acted on"]:
    """Judge a backup's takeover ``took`` seconds after the tester's last valid advert, the
    tester having sent broken adverts from ``first_bad`` seconds after it.

    Discarded means ignored: the IUT times out one Master_Down_Interval ``down`` (± ``tol``)
    after the last valid advert, as if the broken adverts were never sent. Sooner means it
    acted on them (e.g. adopted an interval 0). Later means it acted on them only where a
    broken advert could have restarted its timer: that takeover comes ``restart_down`` (the
    Master_Down_Interval for the interval the broken advert carries) after the first broken
    advert at the earliest. Later than the tolerance but before that is the IUT's own lateness
    (a loaded CPU), which T01 judges: "late", not a reaction.
    """
    if took < down - tol:
        return "acted on"
    if took <= down + tol:
        return "on time"
    return "late" if took < first_bad + restart_down - tol else "acted on"


def discard_case(
    b: Bench,
    f: Findings,
    label: str,
    bad: Callable[[], bytes],
    params: RouterParams | None = None,
    good: Callable[[], bytes] | None = None,
    interval: float | None = None,
) -> None:
    """The IUT backup under valid adverts (control), then under broken ones: a conformant IUT
    ignores the broken ones and becomes master one Master_Down_Interval after the last valid."""
    params = params or b.params()
    interval = interval or params.advert_int
    good = good or (lambda: b.frame(TESTER_PRIO, interval=interval))
    down = mdi(params, interval)
    tol = tolerance(interval)
    with b.advertise(good, interval) as adv:
        started = b.start_iut(params)
        control = b.wait_master(down + tol, since=started)
        if control is not None:
            f.control(
                f"{label}: control failed: the IUT became master under valid adverts",
                window=(started, control.at),
                tolerance=tol,
            )
            return
        switched = adv.switch(bad)
        master = b.wait_master(2 * down + tol, since=switched)
    b.catch_up()
    goods = [s for s in b.adverts("tester", until=switched)]
    bads = b.adverts("tester", since=switched)
    if goods:
        f.frame(f"{label}: last valid advert", goods[-1].number)
    if bads:
        f.frame(f"{label}: first broken advert", bads[0].number)
    last_good = goods[-1].time if goods else switched
    if master is None:
        f.timing(
            False,
            "",
            f"{label}: accepted (the IUT stayed backup {2 * down + tol:.3f}s "
            f"after the switch to broken adverts)",
            window=(switched, switched + 2 * down + tol),
            tolerance=tol,
            what=f"{label}: discard window",
            # A conformant IUT was master by Master_Down_Interval + tolerance after the last
            # valid advert: only stalls adding up to the rest of the window can hide that.
            late_by=(switched + 2 * down + tol) - (last_good + down + tol),
            # The RTNL lock held it back only from when it would have taken over, adding
            # its VIPs.
            rtnl_within=(last_good + down, switched + 2 * down + tol),
        )
        return
    reply = b.wait_iut_advert(master.at - 0.1, 1.0, lambda a: a.priority == params.priority)
    if reply is not None:
        f.frame(f"{label}: IUT's first advert as master", reply.number)
    # When the IUT decided is what tells whether it ignored the broken adverts: its first
    # advert as master on the wire, or its own MASTER report where that came first. An IUT
    # that loses its first advert as master (FRR on IPv6, see T01) still decided on time; T01,
    # T02 and F02 judge what the wire shows, this row judges the decision.
    decided = min(master.at, reply.time) if reply is not None else master.at
    took = decided - last_good
    f.measure(f"{label}: master after last valid advert (s)", round(took, 4))
    if reply is not None:
        f.measure(
            f"{label}: first advert as master after last valid (s)",
            round(reply.time - last_good, 4),
        )
    first_bad = bads[0] if bads else None
    carried = getattr(first_bad.event, "adver_int", interval) if first_bad else interval
    since_bad = (first_bad.time if first_bad else switched) - last_good
    restart_down = mdi(params, min(carried, interval)) if carried > 0 else 0.0
    timing = discard_timing(
        took, down=down, tol=tol, first_bad=since_bad, restart_down=restart_down
    )
    if timing == "late":
        f.measure(
            f"{label}: late, before any broken advert could restart the timer (s)",
            round(took - down, 4),
        )
    f.timing(
        timing != "acted on",
        f"{label}: discarded (master {took:.3f}s after the last "
        f"valid advert; Master_Down_Interval {down:.3f}s)",
        f"{label}: acted on (master {took:.3f}s after the last valid advert, not after "
        f"Master_Down_Interval {down:.3f}s ± {tol:.3f}"
        + (
            f" nor before {since_bad + restart_down - tol:.3f}s, when a broken advert could "
            "have restarted its timer"
            if took > down
            else ""
        )
        + ": the broken adverts were not ignored)",
        window=(last_good, decided),
        tolerance=tol,
        what=f"{label}: takeover after the last valid advert",
        rtnl_within=takeover_netlink(decided, tol),
    )


def hears(b: Bench, advert: Callable[[], bytes]) -> bool:
    """Whether the IUT, started as backup under the tester's ``advert`` (priority 200) every
    Adv, stays backup a Master_Down_Interval (+ tolerance): it takes them as valid."""
    params = b.params()
    with b.advertise(advert):
        started = b.start_iut(params)
        master = b.wait_master(mdi(params) + tolerance(params.advert_int), since=started)
    b.stop_iut()
    return master is None


def wrong_checksum(b: Bench, priority: int) -> int:
    """A checksum that is right in neither form (RFC 5798 or 9568) for the tester's advert, so
    the row tests "bad" whichever form the IUT expects."""
    src, dst = b.ip("tester"), b.group
    msg = encode(Advert.v3(1, priority, (b.vip,), interval_cs=round(ADV * 100)), src=src, dst=dst)
    forms = {
        compute_checksum(msg, src=src, dst=dst, version=3, form=form)
        for form in (ChecksumForm.RFC5798, ChecksumForm.RFC9568)
    }
    value = 0x1234
    while value in forms:
        value += 1
    return value


def mid_period_reply(
    b: Bench,
    f: Findings,
    label: str,
    frame: Callable[[], bytes],
    params: RouterParams,
    tries: int = 3,
) -> tuple[list[float], tuple[float, float], list[tuple[float, float]]]:
    """Inject ``frame`` at mid-period of the IUT's adverts ``tries`` times; the delays from
    each injection to the IUT's next advert (a conformant "at once" reply is << Adv/2), the
    window they span on the lab clock (first injection to last reply), and each injection's
    and reply's wire times.

    An injection counts only if it reached the wire at least Adv/4 + tolerance/2 before the
    IUT's next scheduled advert: one that the tester's own scheduling delayed towards the end
    of the period would make a scheduled advert look like an answer. Such an injection is
    placed again (at most :data:`PLACEMENTS` times), and the slack of each is evidence.
    """
    delays: list[float] = []
    pairs: list[tuple[float, float]] = []
    adv = params.advert_int
    enough = adv / 4 + tolerance(adv) / 2
    slacks: list[float] = []
    began = clock.now()
    window = (began, began)
    for i in range(tries):
        for _placement in range(PLACEMENTS):
            recent = b.adverts()
            if len(recent) < 2:
                b.wait_iut_advert(clock.now(), 3 * adv)
                recent = b.adverts()
            last = recent[-1].time
            # The IUT's own period (its clock drifts a little from the configured one), from
            # its recent adverts; then the next mid-period instant at least 0.15 s ahead (the
            # capture lags that much).
            gaps = [b.time - a.time for a, b in itertools.pairwise(recent[-6:])]
            period = statistics.median(gaps) if gaps else adv
            at = last + period / 2
            while at < clock.now() + 0.15:
                at += period
            sent = b.send_at(frame(), at)
            injected = b.wait_seen(
                lambda s: s.sender == "tester",
                since=sent - 0.005,
                timeout=1.0,
                what="the injected advert",
            )
            # The IUT's first advert after the injection on the wire (frame order, not only
            # time: one sent in the same instant must not count as the answer).
            reply = (
                b.wait_seen(
                    lambda s, after=injected.number: (
                        s.sender == "iut" and isinstance(s.event, VrrpAdvert) and s.number > after
                    ),
                    since=injected.time,
                    timeout=1.0,
                    what="the IUT's next advert",
                )
                if injected is not None
                else None
            )
            if reply is None or injected is None:
                f.na(f"{label}: no advert from the IUT after injection {i + 1}")
                return delays, window, pairs
            before = [a for a in b.adverts(until=injected.time) if a.number < injected.number]
            slack = before[-1].time + period - injected.time if before else period / 2
            slacks.append(round(slack, 4))
            if slack >= enough:
                break
        else:
            f.measure(f"{label}: slack before the next scheduled advert (s)", slacks)
            # The tester's own scheduling places the injections: a stall may be why.
            f.control(
                f"{label}: injection {i + 1} never reached the wire {enough:.3f}s before the "
                f"IUT's next scheduled advert in {PLACEMENTS} placements",
                window=(began, clock.now()),
                tolerance=tolerance(adv),
            )
            return delays, window, pairs
        delays.append(round(reply.time - injected.time, 4))
        pairs.append((injected.time, reply.time))
        window = (injected.time if not delays[:-1] else window[0], reply.time)
        f.frame(f"{label} {i + 1}: injected", injected.number)
        f.frame(f"{label} {i + 1}: IUT's next advert", reply.number)
    f.measure(f"{label}: slack before the next scheduled advert (s)", slacks)
    return delays, window, pairs


#: How often an injection that landed too late in the IUT's period is placed again.
PLACEMENTS = 4
