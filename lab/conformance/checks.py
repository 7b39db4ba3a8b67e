"""One check per conformance row: set up the IUT on a bench, provoke, observe, judge.

Every check observes the IUT from outside only: the adverts, ARP, ND and ICMP it puts on the
wire (the bench's capture, kernel-stamped), and the states it reports on its notify FIFO. A
check is written once and asked in each address family its row applies to (IPv4, then IPv6 on
the same bench): the bench's VIPs, group, VMAC and crafted frames follow :attr:`Bench.family`.
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

import ipaddress
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from lab import clock
from lab.capture_events import ArpEvent, VrrpAdvert
from lab.conformance.bench import (
    ADV,
    HIGHER_IP,
    IUT_PRIO,
    LOWER_IP,
    TESTER_PRIO,
    Bench,
    Icmp,
    Iut,
    Nd,
    Seen,
    tolerance,
    vrrp_reserved,
)
from lab.conformance.rows import ROWS
from lab.conformance.verdict import Findings, Verdict, combine
from lab.routers import RouterParams
from vrrp.packet import Advert, ChecksumForm, compute_checksum, encode
from vrrp.timers import Rfc, Timers, centiseconds

Check = Callable[[Bench, Findings], None]
CHECKS: dict[str, Check] = {}

#: How many adverts a transmission row inspects (1 s of adverts at the bench's interval).
SAMPLE = 10


def check(row: str) -> Callable[[Check], Check]:
    """Register a function as the check of ``row``."""

    def register(fn: Check) -> Check:
        CHECKS[row] = fn
        return fn

    return register


def run_row(iut: Iut, row: str, pcap_dir: Path) -> Verdict:
    """Run the check of ``row`` against ``iut`` in a fresh bench, once per address family the
    row applies to; the verdict it reaches.

    Nothing is raised (but Ctrl-C): the matrix always completes, and the other family still
    counts. A family whose configuration the driver cannot express
    (:class:`lab.errors.Unsupported`) is ``n/a`` with the driver's reason; any other exception,
    of a check or of the bench's bring-up or teardown, is the harness's own and makes the verdict
    ``error``, with its traceback in the evidence (:meth:`Findings.raised`,
    :meth:`Verdict.broke`). A fail already found stands, and the error is told beside it.
    """
    began = time.monotonic()
    parts: list[Findings] = []
    pcap = None
    try:
        with Bench(iut, row, pcap_dir) as bench:
            pcap = bench.pcap
            for family in ROWS[row].families:
                findings = Findings(family, bench.witness)
                parts.append(findings)
                try:
                    bench.use_family(family)
                    CHECKS[row](bench, findings)
                except Exception as exc:  # reported in the verdict (n/a or error), not raised
                    findings.raised(exc)
        verdict = combine(row, iut.name, parts)
        verdict.stalls.update(bench.witness.summary())
        verdict.stalls["stalls"] = [s.as_dict() for s in bench.witness.stalls()]
    except Exception as exc:  # the bench itself did not come up (or down)
        verdict = combine(row, iut.name, parts)
        verdict.broke(exc)
    verdict.pcap = pcap
    verdict.seconds = round(time.monotonic() - began, 2)
    return verdict


# --- shared procedures --------------------------------------------------------------------


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
    if master is None:
        f.timing(
            False,
            "",
            f"{label}: accepted (the IUT stayed backup {2 * down + tol:.3f}s "
            f"after the switch to broken adverts)",
            window=(switched, switched + 2 * down + tol),
            tolerance=tol,
            what=f"{label}: discard window",
        )
        return
    reply = b.wait_iut_advert(master.at - 0.1, 1.0, lambda a: a.priority == params.priority)
    if reply is not None:
        f.frame(f"{label}: IUT's first advert as master", reply.number)
    last_good = goods[-1].time if goods else switched
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


def _all(sample: list[Seen], pred: Callable[[VrrpAdvert], bool]) -> Seen | None:
    """The first advert of ``sample`` that breaks ``pred``, or None."""
    return next((s for s in sample if not pred(s.event)), None)


def mid_period_reply(
    b: Bench,
    f: Findings,
    label: str,
    frame: Callable[[], bytes],
    params: RouterParams,
    tries: int = 3,
) -> tuple[list[float], tuple[float, float]]:
    """Inject ``frame`` at mid-period of the IUT's adverts ``tries`` times; the delays from
    each injection to the IUT's next advert (a conformant "at once" reply is << Adv/2), and
    the window they span on the lab clock (first injection to last reply).

    An injection counts only if it reached the wire at least Adv/4 + tolerance/2 before the
    IUT's next scheduled advert: one that the tester's own scheduling delayed towards the end
    of the period would make a scheduled advert look like an answer. Such an injection is
    placed again (at most :data:`PLACEMENTS` times), and the slack of each is evidence.
    """
    delays: list[float] = []
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
                return delays, window
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
            return delays, window
        delays.append(round(reply.time - injected.time, 4))
        window = (injected.time if not delays[:-1] else window[0], reply.time)
        f.frame(f"{label} {i + 1}: injected", injected.number)
        f.frame(f"{label} {i + 1}: IUT's next advert", reply.number)
    f.measure(f"{label}: slack before the next scheduled advert (s)", slacks)
    return delays, window


#: How often an injection that landed too late in the IUT's period is placed again.
PLACEMENTS = 4


# --- transmission -------------------------------------------------------------------------


@check("P01")
def p01(b: Bench, f: Findings) -> None:
    """Every advert leaves with TTL (IPv6: hop limit) 255."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    ttl = "TTL" if b.family == 4 else "hop limit"
    bad = _all(sample, lambda a: a.ttl == 255)
    f.measure(ttl, sorted({s.event.ttl for s in sample}))
    f.frame("first advert", sample[0].number)
    if bad is not None:
        f.frame(f"advert with {ttl} != 255", bad.number)
    f.check(
        bad is None,
        f"{len(sample)} adverts, all {ttl} 255",
        f"{ttl} {bad.event.ttl if bad else ''} (frame {bad.number if bad else ''})",
    )


@check("P03")
def p03(b: Bench, f: Findings) -> None:
    """Multicast adverts go to 224.0.0.18 / ff02::12 (and its MAC), IP protocol 112."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    bad = _all(sample, lambda a: a.dst_ip == b.group and a.dst_mac == b.group_mac)
    f.measure("dst", sorted({f"{s.event.dst_ip} {s.event.dst_mac}" for s in sample}))
    f.frame("first advert", sample[0].number)
    f.check(
        bad is None,
        f"{len(sample)} adverts to {b.group}, protocol 112",
        f"advert to {bad.event.dst_ip if bad else ''} {bad.event.dst_mac if bad else ''} "
        f"(frame {bad.number if bad else ''}); want {b.group} {b.group_mac}",
    )


@check("P04")
def p04(b: Bench, f: Findings) -> None:
    """Sent: version 3, type 1, reserved 0. Received: type 2, version 4 and another VRID
    discarded."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    bad = _all(sample, lambda a: a.version == 3 and a.type == 1)
    sent = [
        sorted({s.event.version for s in sample}),
        sorted({s.event.type for s in sample}),
        sorted({vrrp_reserved(s.data) for s in sample}, key=str),
    ]
    f.measure("sent version/type/reserved", sent)
    f.frame("first advert", sample[0].number)
    f.check(
        bad is None and sent[2] == [0],
        "sent: version 3, type 1, reserved 0",
        f"sent: version/type/reserved {sent}",
    )
    b.stop_iut()
    discard_case(b, f, "type 2", lambda: b.frame(TESTER_PRIO, kind=2))
    b.stop_iut()
    discard_case(b, f, "version 4", lambda: b.frame(TESTER_PRIO, version=4))
    b.stop_iut()
    # Another virtual router's adverts on the same segment (RFC 5798 §7.1: the VRID must be
    # one configured on the interface).
    discard_case(b, f, "VRID 2", lambda: b.frame(TESTER_PRIO, vrid=2))


@check("P05")
def p05(b: Bench, f: Findings) -> None:
    """The sent checksum is valid in the mode's form; a bad checksum is discarded.

    The forms differ on IPv4 only: RFC 9568 dropped the IPv4 pseudo-header and kept IPv6's.
    """
    mode = "RFC 9568" if b.iut.rfc9568 else "RFC 5798"
    want = "vrrp-only" if b.iut.rfc9568 and b.family == 4 else "pseudo-header"
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    forms = sorted({s.event.checksum_form for s in sample})
    f.measure("sent checksum forms", forms)
    f.frame("first advert", sample[0].number)
    f.check(
        forms == [want],
        f"sent: valid, {want} form ({mode})",
        f"sent: checksum form {forms}, the {mode} mode wants {want}",
    )
    b.stop_iut()
    bad = wrong_checksum(b, TESTER_PRIO)
    discard_case(b, f, "bad checksum", lambda: b.frame(TESTER_PRIO, checksum=bad))
    if b.family == 4:
        # Which the IUT makes of the other mode's form is reported, not judged: RFC 9568
        # changed the IPv4 form, and an implementation may accept both to interoperate.
        other = ChecksumForm.RFC5798 if b.iut.rfc9568 else ChecksumForm.RFC9568
        name = "RFC 5798 (pseudo-header)" if b.iut.rfc9568 else "RFC 9568 (message only)"
        b.stop_iut()
        heard = hears(b, lambda: b.frame(TESTER_PRIO, form=other))
        f.measure("accepts the other checksum form", heard)
        f.note(f"{'accepts' if heard else 'discards'} adverts with the {name} checksum")


@check("P06")
def p06(b: Bench, f: Findings) -> None:
    """A truncated advert and one whose count disagrees with its addresses are discarded."""
    size = 8 + (4 if b.family == 4 else 16)  # the header and one address
    discard_case(
        b,
        f,
        f"truncated ({size - 2} of {size} octets)",
        lambda: b.frame(TESTER_PRIO, truncate=size - 2),
    )
    b.stop_iut()
    discard_case(b, f, "count 2 with 1 address", lambda: b.frame(TESTER_PRIO, count=2))


@check("P07")
def p07(b: Bench, f: Findings) -> None:
    """Max Adver Int sent as configured; an advert with interval 0 is discarded."""
    params = b.params()
    sample = master_sample(b, f, params)
    if not sample:
        return
    sent = sorted({s.event.adver_int for s in sample})
    f.measure("configured / sent interval (s)", [params.advert_int, sent])
    f.frame("first advert", sample[0].number)
    f.check(
        sent == [params.advert_int],
        f"sent Max Adver Int {params.advert_int:g}s as configured",
        f"sent Max Adver Int {sent} where {params.advert_int:g}s is configured",
    )
    b.stop_iut()
    discard_case(b, f, "interval 0", lambda: b.frame(TESTER_PRIO, interval=0))


@check("P08")
def p08(b: Bench, f: Findings) -> None:
    """Adverts leave from the VMAC, with the implementation's default config and with VMAC."""
    want = b.vmac
    for label, use_vmac in (("default config", False), ("use_vmac", True)):
        sample = master_sample(b, f, b.params(use_vmac=use_vmac), n=3)
        if not sample:
            return
        macs = sorted({s.event.src_mac for s in sample})
        f.measure(f"{label}: source MAC", macs)
        f.frame(f"{label}: first advert", sample[0].number)
        what = (
            "the VMAC"
            if macs == [want]
            else ("the physical MAC" if macs == [b.mac("iut")] else str(macs))
        )
        f.check(
            macs == [want],
            f"{label}: from the VMAC {want}",
            f"{label}: from {what} {macs[0]}, not the VMAC {want}",
        )
        b.stop_iut()


@check("P09")
def p09(b: Bench, f: Findings) -> None:
    """Adverts leave from the interface's primary IPv4 address, or (IPv6) from a link-local
    address of the interface that sends them (the IUT's port, or its VMAC interface)."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    srcs = sorted({s.event.src_ip for s in sample})
    mine = {b.ip("iut")} if b.family == 4 else b.link_locals()
    what = "the primary address" if b.family == 4 else "a link-local address"
    f.measure("source IP", srcs)
    f.measure("the IUT's addresses", sorted(mine))
    f.frame("first advert", sample[0].number)
    f.check(
        len(srcs) == 1 and srcs[0] in mine,
        f"from {what} {srcs[0]}",
        f"from {srcs}, not {what} of the IUT {sorted(mine)}",
    )


# --- timers -----------------------------------------------------------------------------


def _takeover_after_silence(
    b: Bench, f: Findings, label: str, params: RouterParams, interval: float
) -> tuple[float, tuple[float, float]] | None:
    """Tester master (priority 200, ``interval``), then silent: the IUT's takeover delay,
    from the tester's last advert to the IUT's first, on the capture, and that window."""
    with b.advertise(lambda: b.frame(TESTER_PRIO, interval=interval), interval) as adv:
        started = b.start_iut(params)
        control = b.wait_master(mdi(params, interval) + tolerance(interval), since=started)
        if control:
            f.control(
                f"{label}: control failed: the IUT became master under valid adverts",
                window=(started, control.at),
                tolerance=tolerance(interval),
            )
            return None
        stopped = adv.stop()
    first = b.wait_iut_advert(
        stopped, 3 * mdi(params, interval) + 0.5, lambda a: a.priority == params.priority
    )
    last = b.adverts("tester")
    if first is None or not last:
        f.timing(
            False,
            "",
            f"{label}: the IUT never took over after the master fell silent",
            window=(stopped, clock.now()),
            tolerance=tolerance(interval),
            what=f"{label}: takeover",
        )
        return None
    f.frame(f"{label}: master's last advert", last[-1].number)
    f.frame(f"{label}: IUT's first advert", first.number)
    return first.time - last[-1].time, (last[-1].time, first.time)


@check("T01")
def t01(b: Bench, f: Findings) -> None:
    """The backup takes over Master_Down_Interval = 3·Adv + Skew_Time after the last advert."""
    params = b.params()
    want, tol = mdi(params), tolerance(params.advert_int)
    taken = _takeover_after_silence(b, f, "takeover", params, params.advert_int)
    if taken is None:
        return
    took, window = taken
    f.measure("Master_Down_Interval: theory / measured (s)", [round(want, 4), round(took, 4)])
    f.timing(
        abs(took - want) <= tol,
        f"took over after {took:.4f}s; Master_Down_Interval {want:.4f}s ± {tol:.3f}",
        f"took over after {took:.4f}s, Master_Down_Interval is {want:.4f}s ± {tol:.3f}",
        window=window,
        tolerance=tol,
        what="takeover after Master_Down_Interval",
        wire=True,
        late_by=took - want - tol,
    )


@check("T02")
def t02(b: Bench, f: Findings) -> None:
    """v3: a backup configured for 0.1 s adopts a 0.2 s master's interval; v2 (IPv4 only): a
    backup discards adverts whose interval differs from its own."""
    params = b.params()
    master_int = 2 * params.advert_int
    taken = _takeover_after_silence(b, f, "v3", params, master_int)
    if taken is not None:
        took, window = taken
        # RFC 5798 recomputes Master_Down_Interval with the master's interval but leaves
        # Skew_Time as configured (§6.4.2); RFC 9568 recomputes Skew_Time too. Either adopts.
        low, high = adoption_window(params, master_int)
        own = mdi(params)
        tol = tolerance(master_int)
        f.measure(
            "v3: takeover (s); adopted 5798..9568 / own interval",
            [round(took, 4), [round(low, 4), round(high, 4)], round(own, 4)],
        )
        f.timing(
            low - tol <= took <= high + tol,
            f"v3: adopted the master's {master_int:g}s (took over after {took:.4f}s, "
            f"{low:.4f}..{high:.4f}s)",
            f"v3: took over after {took:.4f}s; adopting the master's {master_int:g}s gives "
            f"{low:.4f}..{high:.4f}s, keeping its own {own:.4f}s",
            window=window,
            tolerance=tol,
            what="v3: takeover with the master's interval",
            wire=True,
        )
    if b.family != 4:
        return  # VRRPv2 is IPv4 only (RFC 3768)
    b.stop_iut()
    v2 = b.params(version=2, advert_int=1.0)
    discard_case(
        b,
        f,
        "v2 interval 2s vs 1s",
        lambda: b.frame(TESTER_PRIO, version=2, interval=2.0),
        params=v2,
        good=lambda: b.frame(TESTER_PRIO, version=2, interval=1.0),
        interval=1.0,
    )


#: The resolution of Max Adver Int in VRRPv3: centiseconds (RFC 5798 §5.2.7).
CENTISECOND = 0.01


@check("T03")
def t03(b: Bench, f: Findings) -> None:
    """Adverts every Advertisement_Interval: the mean period within half a centisecond, each
    period within Adv/5.

    The mean's bound is half the resolution of the interval field: any other interval an
    implementation could be using differs by a centisecond at least, while one that re-arms
    its Adver_Timer after each send (RFC 5798 §6.4.3) drifts only by its wake-up latency, a
    fraction of a millisecond (measured: 0.3 to 0.9 ms for keepalived and FRR on a busy
    machine). The per-period bound catches jitter.
    """
    params = b.params()
    sample = master_sample(b, f, params, n=31)
    if len(sample) < 2:
        return
    gaps = [b.time - a.time for a, b in itertools.pairwise(sample)]
    mean = statistics.fmean(gaps)
    worst = max(abs(g - params.advert_int) for g in gaps)
    tol = tolerance(params.advert_int)
    drift = CENTISECOND / 2
    f.measure("period mean / worst deviation (s)", [round(mean, 5), round(worst, 5)])
    f.frame("first advert", sample[0].number)
    f.frame("last advert", sample[-1].number)
    ok = abs(mean - params.advert_int) <= drift and worst <= tol
    f.timing(
        ok,
        f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms (≤ {tol * 1000:.0f})",
        f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms; want the mean within ±{drift * 1000:g} ms of "
        f"{params.advert_int * 1000:g} ms and every period within ±{tol * 1000:.0f} ms",
        window=(sample[0].time, sample[-1].time),
        tolerance=tol,
        what="advert periods",
        wire=True,
    )


# --- state machine ----------------------------------------------------------------------


@check("F01")
def f01(b: Bench, f: Findings) -> None:
    """The address owner (priority 255) advertises at once, without Master_Down_Interval.

    Asked twice: with keepalived's ``state BACKUP`` (the RFC has no initial-state knob: an
    owner goes master at once whatever else is configured) and with ``state MASTER``.
    """
    for state in ("BACKUP", "MASTER"):
        # A 1 s interval makes the difference plain: at once (< Adv/2) vs 3 s.
        params = b.params(priority=255, advert_int=1.0, state=state)
        started = b.start_iut(params)
        first = b.wait_iut_advert(b.launched, 2 * mdi(params) + 1.0, lambda a: a.priority == 255)
        if first is None:
            f.check(False, "", f"state {state}: the owner never advertised")
            continue
        took = first.time - started
        f.frame(f"state {state}: owner's first advert", first.number)
        f.measure(f"state {state}: first advert after the first report (s)", round(took, 4))
        f.timing(
            took <= params.advert_int / 2,
            f"state {state}: first advert {took:.3f}s after start-up",
            f"state {state}: first advert {took:.3f}s after start-up; an owner goes "
            f"master at once, not after Master_Down_Interval {mdi(params):.3f}s",
            window=(started, first.time),
            tolerance=tolerance(params.advert_int),
            what=f"state {state}: first advert",
        )
        b.stop_iut()


@check("F02")
def f02(b: Bench, f: Findings) -> None:
    """A master shutting down sends priority 0; a backup hearing it takes over after Skew."""
    params = b.params()
    first = become_master(b, f, params)
    if first is None:
        return
    stopped = b.stop_iut()
    assert stopped is not None
    zero = b.wait_iut_advert(stopped - 0.01, 1.0, lambda a: a.priority == 0)
    if zero is not None:
        f.frame("IUT's priority-0 advert", zero.number)
    f.check(
        zero is not None,
        "sends priority 0 on shutdown",
        "no priority-0 advert on shutdown (SIGTERM)",
    )
    skew, tol = params.skew_time, tolerance(params.advert_int)
    with b.advertise(lambda: b.frame(TESTER_PRIO)) as adv:
        started = b.start_iut(params)
        control = b.wait_master(mdi(params) + tol, since=started)
        if control:
            f.control(
                "control failed: the IUT became master under valid adverts",
                window=(started, control.at),
                tolerance=tol,
            )
            return
        adv.stop()
        sent = b.send(b.frame(0))
    took_iut = b.wait_iut_advert(
        sent - 0.005, 2 * mdi(params), lambda a: a.priority == params.priority
    )
    resign = b.wait_seen(
        lambda s: s.sender == "tester" and s.event.priority == 0,
        since=sent - 0.005,
        timeout=1.0,
        what="the tester's priority 0",
    )
    if took_iut is None or resign is None:
        f.timing(
            False,
            "",
            "the backup never took over after the master's priority 0",
            window=(sent, clock.now()),
            tolerance=tol,
            what="takeover after priority 0",
        )
        return
    took = took_iut.time - resign.time
    f.frame("master's priority-0 advert", resign.number)
    f.frame("IUT's first advert", took_iut.number)
    f.measure("Skew_Time: theory / measured (s)", [round(skew, 4), round(took, 4)])
    f.timing(
        abs(took - skew) <= tol,
        f"took over {took:.4f}s after priority 0 (Skew_Time {skew:.4f}s)",
        f"took over {took:.4f}s after priority 0; Skew_Time is {skew:.4f}s ± {tol:.3f}",
        window=(resign.time, took_iut.time),
        tolerance=tol,
        what="takeover after Skew_Time",
        wire=True,
        late_by=took - skew - tol,
    )


@check("F03")
def f03(b: Bench, f: Findings) -> None:
    """A master that hears priority 0 sends an advert at once (and stays master)."""
    params = b.params()
    if become_master(b, f, params) is None:
        return
    at_once = params.advert_int / 4
    delays, window = mid_period_reply(b, f, "priority 0", lambda: b.frame(0), params)
    if not delays:
        return
    f.measure("reply delays (s); at once ≤", [delays, at_once])
    # A stall within the tolerance keeps an at-once answer (~1 ms) under Adv/4 and the
    # scheduled advert (Adv/2) over it; a longer one could move either across.
    f.timing(
        max(delays) <= at_once and b.state() == "MASTER",
        f"answered at once ({max(delays) * 1000:.1f} ms at worst)",
        f"answered after {delays} s (state {b.state()}); at once is ≤ {at_once:.3f}s, "
        f"the regular advert comes at {params.advert_int / 2:.3f}s",
        window=window,
        tolerance=tolerance(params.advert_int),
        what="answer at once to priority 0",
        wire=True,
    )


@check("F04")
def f04(b: Bench, f: Findings) -> None:
    """Preempt: a priority-200 backup takes over from a priority-100 master; nopreempt: not."""
    for label, nopreempt in (("preempt", False), ("nopreempt", True)):
        params = b.params(priority=TESTER_PRIO, nopreempt=nopreempt)
        window = mdi(params) + tolerance(params.advert_int)
        with b.advertise(lambda: b.frame(IUT_PRIO)):
            started = b.start_iut(params)
            master = b.wait_master(2 * window, since=started)
        if master is not None:
            took = b.wait_iut_advert(b.launched, 1.0, lambda a: a.priority == TESTER_PRIO)
            if took is not None:
                f.frame(f"{label}: IUT's first advert as master", took.number)
            f.measure(f"{label}: master after start (s)", round(master.at - started, 4))
        # A stall can hold back the tester's adverts (a nopreempt IUT then takes over) or the
        # IUT's timer (a preempting one takes over late).
        span = (started, master.at if master is not None else started + 2 * window)
        tol = tolerance(params.advert_int)
        if nopreempt:
            f.timing(
                master is None,
                f"nopreempt: stayed backup for {2 * window:.3f}s",
                f"nopreempt: took over after {master.at - started if master else 0:.3f}s",
                window=span,
                tolerance=tol,
                what="nopreempt: stayed backup",
            )
        else:
            f.timing(
                master is not None and master.at - started <= window,
                f"preempt: took over {master.at - started if master else 0:.3f}s after "
                f"start (≤ Master_Down_Interval {window:.3f}s)",
                f"preempt: did not take over from a lower-priority master within {2 * window:.3f}s",
                window=span,
                tolerance=tol,
                what="preempt: takeover",
                late_by=master.at - started - window if master is not None else None,
            )
        b.stop_iut()


@check("F05")
def f05(b: Bench, f: Findings) -> None:
    """Equal priority: a master yields to a higher primary IP, not to a lower one.

    The IUT's primary address is the source of its own adverts (on IPv6 a link-local, which
    an implementation may take from its VMAC interface), so the tester's addresses are chosen
    around what the IUT is seen to send from.
    """
    params = b.params()
    window = mdi(params) + tolerance(params.advert_int)
    for label, src, yields in (
        ("higher IP", HIGHER_IP[b.family], True),
        ("lower IP", LOWER_IP[b.family], False),
    ):
        first = become_master(b, f, params)
        if first is None:
            return
        mine = first.event.src_ip
        if (ipaddress.ip_address(src) > ipaddress.ip_address(mine)) != yields:
            f.na(f"{label}: the IUT sends from {mine}, which the tester's {src} does not bound")
            return
        # Stamped before the first equal-priority advert: advertise() sends it at once, and a
        # conformant IUT yields to it within a millisecond.
        began = clock.now()
        with b.advertise(lambda src=src: b.frame(IUT_PRIO, src=src)) as adv:
            backup = b.wait_backup(window, since=began)
            adv.stop()
        b.catch_up()
        theirs = b.adverts("tester", since=began)
        if theirs:
            f.frame(f"{label}: first equal-priority advert ({src})", theirs[0].number)
        if yields:
            # From the first equal-priority advert on the wire to the IUT's BACKUP report.
            start = theirs[0].time if theirs else began
            took = backup.at - start if backup else 0.0
            f.measure(f"{label}: yielded after (s)", round(took, 4))
            f.timing(
                backup is not None,
                f"{label}: yielded to {src} ({took * 1000:.1f} ms after its first advert)",
                f"{label}: stayed master although {src} > {mine}",
                window=(start, backup.at if backup else began + window),
                tolerance=tolerance(params.advert_int),
                what=f"{label}: yield",
            )
        else:
            f.check(
                backup is None,
                f"{label}: stayed master against {src}",
                f"{label}: yielded to {src} < {mine}",
            )
        b.stop_iut()


@check("F06")
def f06(b: Bench, f: Findings) -> None:
    """A master hearing a lower priority: RFC 5798 discards it (next advert on schedule),
    RFC 9568 answers at once with its own advert."""
    params = b.params()
    if become_master(b, f, params) is None:
        return
    at_once = params.advert_int / 4
    delays, window = mid_period_reply(b, f, "priority 50", lambda: b.frame(50), params)
    if not delays:
        return
    answered = [d <= at_once for d in delays]
    f.measure("delays to next advert (s); at once ≤", [delays, at_once])
    stayed = b.state() == "MASTER"
    timed = {
        "window": window,
        "tolerance": tolerance(params.advert_int),
        "what": "next advert after a lower priority",
        "wire": True,
    }
    if b.iut.rfc9568:
        f.timing(
            all(answered) and stayed,
            "RFC 9568: answered each losing advert at once",
            f"RFC 9568 mode: next adverts after {delays}s (at once is ≤ {at_once:.3f}s)",
            **timed,
        )
    else:
        f.timing(
            not any(answered) and stayed,
            f"RFC 5798: discarded (next advert on schedule, {min(delays) * 1000:.0f} ms after)",
            f"RFC 5798: answered the losing advert at once ({delays}s; RFC 5798 §6.4.3 "
            "discards it; RFC 9568 behaviour)"
            if stayed
            else "left the master state",
            **timed,
        )


# --- ARP and ND ----------------------------------------------------------------------------


def advertises(b: Bench, s: Seen, vip: str, *, solicited: bool) -> bool:
    """``s`` is the IUT telling the segment which link-layer address ``vip`` has: unsolicited,
    a gratuitous ARP (IPv4) or an unsolicited Neighbor Advertisement (IPv6, RFC 5798 §8.2.2);
    solicited, an ARP reply or a solicited Neighbor Advertisement."""
    if s.sender != "iut":
        return False
    if b.family == 4:
        kind = "reply" if solicited else "garp"
        return isinstance(s.event, ArpEvent) and s.event.kind == kind and s.event.spa == vip
    return (
        isinstance(s.event, Nd)
        and s.event.kind == "na"
        and s.event.target == vip
        and s.event.solicited == solicited
    )


def hardware(s: Seen) -> tuple[str, str | None]:
    """The Ethernet source of an ARP or ND frame and the link-layer address it announces
    (ARP's sender hardware address, ND's target link-layer option)."""
    if isinstance(s.event, ArpEvent):
        return s.event.src_mac, s.event.sha
    return s.event.src_mac, s.event.lladdr


@check("A01")
def a01(b: Bench, f: Findings) -> None:
    """On becoming master: a gratuitous ARP (IPv6: an unsolicited NA) for each VIP, from and
    naming the VMAC."""
    params = b.params(vips=(b.vip, b.vip2))
    first = become_master(b, f, params)
    if first is None:
        return
    kind = "GARP" if b.family == 4 else "unsolicited NA"
    # The first batch goes out with the transition; allow two advert intervals for it.
    window = 2 * params.advert_int
    for vip in (b.vip, b.vip2):
        sent = b.wait_seen(
            lambda s, vip=vip: advertises(b, s, vip, solicited=False),
            since=first.time - window,
            timeout=window,
            what=f"a {kind} for {vip}",
        )
        if sent is None:
            f.check(False, "", f"no {kind} for {vip} within {window:.2f}s of the first advert")
            continue
        src, named = hardware(sent)
        f.frame(f"{kind} {vip}", sent.number)
        f.measure(f"{kind} {vip}: eth src / announced MAC", [src, named])
        f.check(
            src == named == b.vmac,
            f"{kind} {vip} from {b.vmac}",
            f"{kind} {vip} eth src {src}, announcing {named}; want the VMAC {b.vmac}",
        )


@check("A02")
def a02(b: Bench, f: Findings) -> None:
    """The backup does not answer ARP (IPv6: NS) for a VIP; the master answers with the
    VMAC."""
    params = b.params()
    window = mdi(params)  # a host answers ARP in microseconds; silence for a whole MDI
    ask = "ARP" if b.family == 4 else "NS"
    with b.advertise(lambda: b.frame(TESTER_PRIO)) as adv:
        started = b.start_iut(params)
        control = b.wait_master(mdi(params) + tolerance(params.advert_int), since=started)
        if control:
            f.control(
                "control failed: the IUT became master under valid adverts",
                window=(started, control.at),
                tolerance=tolerance(params.advert_int),
            )
            return
        asked = b.send(b.solicit(b.vip))
        reply = b.wait_seen(
            lambda s: advertises(b, s, b.vip, solicited=True),
            since=asked,
            timeout=window,
            what=f"an answer to {ask} from the backup",
        )
        request = b.wait_seen(
            lambda s: s.sender == "tester" and isinstance(s.event, ArpEvent | Nd),
            since=asked - 0.005,
            timeout=1.0,
            what=f"the tester's {ask}",
        )
        adv.stop()
    f.frame(f"{ask} to the backup", request.number if request else None)
    if reply is not None:
        f.frame("backup's answer", reply.number)
    f.check(
        reply is None,
        f"backup silent to {ask} for {window:.3f}s",
        f"backup answered {ask} for {b.vip} with {hardware(reply)[1] if reply else ''}",
    )
    master = b.wait_master(2 * mdi(params) + 0.5, since=asked)
    # Asked once it acts as master on the wire, not at its report: an implementation may
    # report first and bring its VMAC interface up after (FRR lifts its macvlan's protodown
    # through zebra), and the row is about the master, not that instant.
    acting = (
        b.wait_iut_advert(master.at - 0.1, 1.0, lambda a: a.priority == params.priority)
        if master is not None
        else None
    )
    if acting is None:
        f.na("the IUT did not become master, advertising, after the tester fell silent")
        return
    f.frame("master's first advert", acting.number)
    asked = b.send(b.solicit(b.vip))
    reply = b.wait_seen(
        lambda s: advertises(b, s, b.vip, solicited=True),
        since=asked,
        timeout=window,
        what=f"an answer to {ask} from the master",
    )
    if reply is None:
        f.check(False, "", f"master did not answer {ask} for {b.vip} within {window:.3f}s")
        return
    src, named = hardware(reply)
    f.frame("master's answer", reply.number)
    f.measure("master's answer: eth src / announced MAC", [src, named])
    f.check(
        named == b.vmac,
        f"master answered with the VMAC {b.vmac}",
        f"master answered with {named}, not the VMAC {b.vmac}",
    )


@check("A03")
def a03(b: Bench, f: Findings) -> None:
    """Accept_Mode False (``no_accept``): the master drops an echo to the VIP; the RFC
    default is False, so the implementation's default is reported too."""
    window = mdi(b.params())  # an echo reply comes in microseconds; wait a whole MDI
    for label, extra in (("no_accept", ("no_accept",)), ("default config", ())):
        params = b.params()
        if become_master(b, f, params, extra) is None:
            return
        asked = b.send(b.echo_request(b.vip, b.vmac))
        reply = b.wait_seen(
            lambda s: isinstance(s.event, Icmp) and s.event.type == 0 and s.event.src_ip == b.vip,
            since=asked,
            timeout=window,
            what="an echo reply from the VIP",
        )
        request = b.wait_seen(
            lambda s: isinstance(s.event, Icmp) and s.event.type == 8,
            since=asked - 0.005,
            timeout=1.0,
            what="the echo request",
        )
        f.frame(f"{label}: echo request to {b.vip}", request.number if request else None)
        if reply is not None:
            f.frame(f"{label}: echo reply", reply.number)
        f.measure(f"{label}: VIP answers echo", reply is not None)
        if extra:
            f.check(
                reply is None,
                "no_accept: echo to the VIP dropped",
                "no_accept: the master answered an echo to the VIP",
            )
        elif reply is not None:
            f.note("its default accepts traffic to the VIPs (RFC default Accept_Mode is False)")
        b.stop_iut()


# --- unicast ------------------------------------------------------------------------------


@check("U01")
def u01(b: Bench, f: Findings) -> None:
    """Unicast: adverts to the peer with TTL 255; adverts from a non-peer, or multicast,
    ignored."""
    peer, me = b.unicast_ip("peer"), b.unicast_ip("iut")
    params = b.params(use_vmac=False, unicast_src_ip=me, unicast_peers=(peer,))
    sample = master_sample(b, f, params, n=3)
    if not sample:
        return
    dsts = sorted({s.event.dst_ip for s in sample})
    ttls = sorted({s.event.ttl for s in sample})
    f.measure("sent: dst / TTL", [dsts, ttls])
    f.frame("first unicast advert", sample[0].number)
    f.check(
        dsts == [peer] and ttls == [255],
        f"sent to the peer {peer}, TTL 255",
        f"sent to {dsts} with TTL {ttls}; want {peer}, TTL 255",
    )
    b.stop_iut()
    good = lambda: b.frame(TESTER_PRIO, src=peer, dst=me)  # noqa: E731 (the tester as the peer)
    discard_case(
        b, f, "from a non-peer", lambda: b.frame(TESTER_PRIO, dst=me), params=params, good=good
    )
    b.stop_iut()
    discard_case(
        b,
        f,
        "multicast from the peer",
        lambda: b.frame(TESTER_PRIO, src=peer),
        params=params,
        good=good,
    )


# --- P02 last: the plain discard row ------------------------------------------------------


@check("P02")
def p02(b: Bench, f: Findings) -> None:
    """An advert with TTL 254 is discarded."""
    discard_case(b, f, "TTL 254", lambda: b.frame(TESTER_PRIO, ttl=254))


assert set(CHECKS) == set(ROWS), set(ROWS) ^ set(CHECKS)
