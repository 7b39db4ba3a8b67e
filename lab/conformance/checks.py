"""One check per conformance row: set up the IUT on a bench, provoke, observe, judge.

Every check observes the IUT from outside only: the adverts, ARP and ICMP it puts on the wire
(the bench's capture, kernel-stamped), and the states it reports on its notify FIFO. Windows
and tolerances derive from the configured timers:

* ``tolerance(Adv)`` = Adv/5 (20 ms at the bench's 0.1 s) for measured timers;
* CONTROL window = Master_Down_Interval + tolerance: an IUT that did not hear the tester's valid
  adverts would have become master by then, so a control case proves the adverts are heard;
* DISCARD window = 2·Master_Down_Interval + tolerance after the switch to broken adverts: an
  IUT that discards them becomes master one Master_Down_Interval after the last valid one;
  one that still is backup twice that long later has accepted them;
* AT_ONCE = Adv/4: the tester injects at mid-period of the IUT's adverts, so an answer sent
  "at once" comes well before Adv/4 and the regular advert only after Adv/2.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from lab import clock
from lab.capture import ArpEvent, VrrpAdvert
from lab.conformance.bench import (
    ADV,
    GROUP4,
    GROUP6,
    GROUP6_MAC,
    IUT_PRIO,
    LOWER_IP,
    TESTER_PRIO,
    VIP,
    VIP2,
    VIP6,
    Bench,
    Icmp,
    Iut,
    Nd,
    Seen,
    tolerance,
    vrrp_reserved,
)
from lab.conformance.rows import ROWS
from lab.conformance.verdict import Findings, Verdict
from lab.errors import UsageError
from lab.routers import RouterParams
from vrrp.packet import Advert, ChecksumForm, compute_checksum, encode, vmac

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
    """Run the check of ``row`` against ``iut`` in a fresh bench; the verdict it reaches.

    A check that cannot run (the IUT does not start, the bench breaks) gives ``n/a`` with the
    error, never an exception: the matrix always completes.
    """
    began = time.monotonic()
    findings = Findings()
    pcap = None
    try:
        with Bench(iut, row, pcap_dir) as bench:
            pcap = bench.pcap
            try:
                CHECKS[row](bench, findings)
            finally:
                bench.stop_iut()
        verdict = findings.verdict(row, iut.name)
    except UsageError as exc:  # the driver cannot express the row's configuration
        verdict = Verdict(
            row,
            iut.name,
            "n/a",
            f"cannot be configured for this row: {exc}".splitlines()[0],
            findings.evidence,
            findings.frames,
        )
    except Exception as exc:  # a broken run is reported, not raised: the matrix goes on
        verdict = Verdict(
            row,
            iut.name,
            "n/a",
            f"check could not run: {exc}".splitlines()[0],
            findings.evidence,
            findings.frames,
        )
    verdict.pcap = pcap
    verdict.seconds = round(time.monotonic() - began, 2)
    return verdict


# --- shared procedures --------------------------------------------------------------------


def mdi(params: RouterParams, adv: float | None = None) -> float:
    """Master_Down_Interval of the IUT as backup (with ``adv`` as Master_Adver_Interval)."""
    from lab.routers import master_down_interval

    return master_down_interval(params.priority, adv or params.advert_int, params.version)


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


def ipv6_sample(b: Bench, f: Findings, n: int = 3, **overrides: object) -> list[Seen]:
    """``n`` adverts of the IUT as sole master of an IPv6 VIP (VRRPv3 over IPv6)."""
    b.stop_iut()
    b.await_link_local()
    return master_sample(b, f, b.params(vips=(VIP6,), **overrides), n=n)


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
        if b.wait_master(down + tol, since=started) is not None:
            f.na(f"{label}: control failed: the IUT became master under valid adverts")
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
        f.check(
            False,
            "",
            f"{label}: accepted (the IUT stayed backup {2 * down + tol:.3f}s "
            f"after the switch to broken adverts)",
        )
        return
    reply = b.wait_iut_advert(master.at - 0.1, 1.0, lambda a: a.priority == params.priority)
    if reply is not None:
        f.frame(f"{label}: IUT's first advert as master", reply.number)
    last_good = goods[-1].time if goods else switched
    took = (reply.time if reply is not None else master.at) - last_good
    f.evidence[f"{label}: master after last valid advert (s)"] = round(took, 4)
    # Discarded means ignored: the IUT times out exactly as if the broken adverts were never
    # sent. Taking over sooner (or later) means it acted on them, e.g. adopted an interval 0.
    f.check(
        abs(took - down) <= tol,
        f"{label}: discarded (master {took:.3f}s after the last "
        f"valid advert; Master_Down_Interval {down:.3f}s)",
        f"{label}: acted on (master {took:.3f}s after the last valid advert, not after "
        f"Master_Down_Interval {down:.3f}s ± {tol:.3f}: the broken adverts were not ignored)",
    )


def wrong_checksum(b: Bench, priority: int) -> int:
    """A checksum that is right in neither form (RFC 5798 or 9568) for the tester's advert, so
    the row tests "bad" whichever form the IUT expects."""
    advert = Advert.v3(1, priority, (VIP,), interval_cs=round(ADV * 100))
    msg = encode(advert, src=b.ip("tester"), dst=GROUP4)
    forms = {
        compute_checksum(msg, src=b.ip("tester"), dst=GROUP4, version=3, form=form)
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
) -> list[float]:
    """Inject ``frame`` at mid-period of the IUT's adverts ``tries`` times; the delays from
    each injection to the IUT's next advert (a conformant "at once" reply is << Adv/2)."""
    delays = []
    adv = params.advert_int
    for i in range(tries):
        recent = b.adverts()
        if len(recent) < 2:
            b.wait_iut_advert(clock.now(), 3 * adv)
            recent = b.adverts()
        last = recent[-1].time
        # The IUT's own period (its clock drifts a little from the configured one), from its
        # recent adverts; then the next mid-period instant at least 0.15 s ahead (the capture
        # lags that much).
        gaps = [b.time - a.time for a, b in itertools.pairwise(recent[-6:])]
        period = statistics.median(gaps) if gaps else adv
        at = last + period / 2
        while at < clock.now() + 0.15:
            at += period
        sent = b.send_at(frame(), at)
        reply = b.wait_iut_advert(sent - 0.005, 1.0)
        injected = b.wait_seen(
            lambda s: s.sender == "tester",
            since=sent - 0.005,
            timeout=1.0,
            what="the injected advert",
        )
        if reply is None or injected is None:
            f.na(f"{label}: no advert from the IUT after injection {i + 1}")
            return delays
        delays.append(round(reply.time - injected.time, 4))
        f.frame(f"{label} {i + 1}: injected", injected.number)
        f.frame(f"{label} {i + 1}: IUT's next advert", reply.number)
    return delays


# --- transmission -------------------------------------------------------------------------


@check("P01")
def p01(b: Bench, f: Findings) -> None:
    """Every advert leaves with TTL 255."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    bad = _all(sample, lambda a: a.ttl == 255)
    f.evidence["ttl"] = sorted({s.event.ttl for s in sample})
    f.frame("first advert", sample[0].number)
    if bad is not None:
        f.frame("advert with TTL != 255", bad.number)
    f.check(
        bad is None,
        f"{len(sample)} adverts, all TTL 255",
        f"TTL {bad.event.ttl if bad else ''} (frame {bad.number if bad else ''})",
    )
    six = ipv6_sample(b, f)
    if not six:
        return
    bad = _all(six, lambda a: a.ttl == 255)
    f.evidence["IPv6 hop limit"] = sorted({s.event.ttl for s in six})
    f.frame("first IPv6 advert", six[0].number)
    f.check(
        bad is None,
        f"IPv6: {len(six)} adverts, all hop limit 255",
        f"IPv6: hop limit {bad.event.ttl if bad else ''} (frame {bad.number if bad else ''})",
    )


@check("P03")
def p03(b: Bench, f: Findings) -> None:
    """Multicast adverts go to 224.0.0.18 (MAC 01:00:5e:00:00:12), IP protocol 112."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    bad = _all(sample, lambda a: a.dst_ip == GROUP4 and a.dst_mac == "01:00:5e:00:00:12")
    f.evidence["dst"] = sorted({f"{s.event.dst_ip} {s.event.dst_mac}" for s in sample})
    f.frame("first advert", sample[0].number)
    f.check(
        bad is None,
        f"{len(sample)} adverts to {GROUP4}, protocol 112",
        f"advert to {bad.event.dst_ip if bad else ''} (frame {bad.number if bad else ''})",
    )
    six = ipv6_sample(b, f)
    if not six:
        return
    bad = _all(six, lambda a: a.dst_ip == GROUP6 and a.dst_mac == GROUP6_MAC)
    f.evidence["IPv6 dst"] = sorted({f"{s.event.dst_ip} {s.event.dst_mac}" for s in six})
    f.frame("first IPv6 advert", six[0].number)
    f.check(
        bad is None,
        f"IPv6: {len(six)} adverts to {GROUP6}, next header 112",
        f"IPv6: advert to {bad.event.dst_ip if bad else ''} (frame {bad.number if bad else ''})",
    )


@check("P04")
def p04(b: Bench, f: Findings) -> None:
    """Sent: version 3, type 1, reserved 0. Received: type 2 and version 4 discarded."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    bad = _all(sample, lambda a: a.version == 3 and a.type == 1)
    reserved = sorted({vrrp_reserved(s.data) for s in sample}, key=str)
    f.evidence["sent version/type/reserved"] = [
        sorted({s.event.version for s in sample}),
        sorted({s.event.type for s in sample}),
        reserved,
    ]
    f.frame("first advert", sample[0].number)
    f.check(
        bad is None and reserved == [0],
        "sent: version 3, type 1, reserved 0",
        f"sent: version/type/reserved {f.evidence['sent version/type/reserved']}",
    )
    b.stop_iut()
    discard_case(b, f, "type 2", lambda: b.frame(TESTER_PRIO, kind=2))
    b.stop_iut()
    discard_case(b, f, "version 4", lambda: b.frame(TESTER_PRIO, version=4))


@check("P05")
def p05(b: Bench, f: Findings) -> None:
    """The sent checksum is valid in the mode's form; a bad checksum is discarded."""
    want = "vrrp-only" if b.iut.rfc9568 else "pseudo-header"
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    forms = sorted({s.event.checksum_form for s in sample})
    f.evidence["sent checksum forms"] = forms
    f.frame("first advert", sample[0].number)
    f.check(
        forms == [want],
        f"sent: valid, {want} form ({'RFC 9568' if b.iut.rfc9568 else 'RFC 5798'})",
        f"sent: checksum form {forms}, the {'RFC 9568' if b.iut.rfc9568 else 'RFC 5798'} "
        f"mode wants {want}",
    )
    b.stop_iut()
    bad = wrong_checksum(b, TESTER_PRIO)
    discard_case(b, f, "bad checksum", lambda: b.frame(TESTER_PRIO, checksum=bad))


@check("P06")
def p06(b: Bench, f: Findings) -> None:
    """A truncated advert and one whose count disagrees with its addresses are discarded."""
    discard_case(b, f, "truncated (10 of 12 octets)", lambda: b.frame(TESTER_PRIO, truncate=10))
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
    f.evidence["configured / sent interval (s)"] = [params.advert_int, sent]
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
    want = vmac(1, 4)
    for label, use_vmac in (("default config", False), ("use_vmac", True)):
        sample = master_sample(b, f, b.params(use_vmac=use_vmac), n=3)
        if not sample:
            return
        macs = sorted({s.event.src_mac for s in sample})
        f.evidence[f"{label}: source MAC"] = macs
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
    six = ipv6_sample(b, f, use_vmac=True)
    if not six:
        return
    want6 = vmac(1, 6)
    macs = sorted({s.event.src_mac for s in six})
    f.evidence["IPv6 use_vmac: source MAC"] = macs
    f.frame("IPv6 use_vmac: first advert", six[0].number)
    f.check(
        macs == [want6],
        f"IPv6 use_vmac: from the VMAC {want6}",
        f"IPv6 use_vmac: from {macs}, not the VMAC {want6}",
    )


@check("P09")
def p09(b: Bench, f: Findings) -> None:
    """Adverts leave from the interface's primary IPv4 address."""
    sample = master_sample(b, f, b.params())
    if not sample:
        return
    srcs = sorted({s.event.src_ip for s in sample})
    f.evidence["source IP"] = srcs
    f.frame("first advert", sample[0].number)
    f.check(
        srcs == [b.ip("iut")],
        f"from the primary address {b.ip('iut')}",
        f"from {srcs}, not the primary address {b.ip('iut')}",
    )
    six = ipv6_sample(b, f)
    if not six:
        return
    mine = b.link_locals()
    srcs = sorted({s.event.src_ip for s in six})
    f.evidence["IPv6 source / IUT link-locals"] = [srcs, sorted(mine)]
    f.frame("first IPv6 advert", six[0].number)
    f.check(
        len(srcs) == 1 and srcs[0] in mine,
        f"IPv6: from its link-local {srcs[0]}",
        f"IPv6: from {srcs}, not one of its link-local addresses {sorted(mine)}",
    )


# --- timers -----------------------------------------------------------------------------


def _takeover_after_silence(
    b: Bench, f: Findings, label: str, params: RouterParams, interval: float
) -> float | None:
    """Tester master (priority 200, ``interval``), then silent: the IUT's takeover delay,
    from the tester's last advert to the IUT's first, on the capture."""
    with b.advertise(lambda: b.frame(TESTER_PRIO, interval=interval), interval) as adv:
        started = b.start_iut(params)
        if b.wait_master(mdi(params, interval) + tolerance(interval), since=started):
            f.na(f"{label}: control failed: the IUT became master under valid adverts")
            return None
        stopped = adv.stop()
    first = b.wait_iut_advert(
        stopped, 3 * mdi(params, interval) + 0.5, lambda a: a.priority == params.priority
    )
    last = b.adverts("tester")
    if first is None or not last:
        f.check(False, "", f"{label}: the IUT never took over after the master fell silent")
        return None
    f.frame(f"{label}: master's last advert", last[-1].number)
    f.frame(f"{label}: IUT's first advert", first.number)
    return first.time - last[-1].time


@check("T01")
def t01(b: Bench, f: Findings) -> None:
    """The backup takes over Master_Down_Interval = 3·Adv + Skew_Time after the last advert."""
    params = b.params()
    want, tol = mdi(params), tolerance(params.advert_int)
    took = _takeover_after_silence(b, f, "takeover", params, params.advert_int)
    if took is None:
        return
    f.evidence["Master_Down_Interval: theory / measured (s)"] = [round(want, 4), round(took, 4)]
    f.check(
        abs(took - want) <= tol,
        f"took over after {took:.4f}s; Master_Down_Interval {want:.4f}s ± {tol:.3f}",
        f"took over after {took:.4f}s, Master_Down_Interval is {want:.4f}s ± {tol:.3f}",
    )


@check("T02")
def t02(b: Bench, f: Findings) -> None:
    """v3: a backup configured for 0.1 s adopts a 0.2 s master's interval; v2: a backup
    discards adverts whose interval differs from its own."""
    params = b.params()
    master_int = 2 * params.advert_int
    took = _takeover_after_silence(b, f, "v3", params, master_int)
    if took is not None:
        # RFC 5798 recomputes Master_Down_Interval with the master's interval but leaves
        # Skew_Time as configured (§6.4.2); RFC 9568 recomputes Skew_Time too. Either adopts.
        low = 3 * master_int + (256 - params.priority) * params.advert_int / 256
        high = 3 * master_int + (256 - params.priority) * master_int / 256
        own = mdi(params)
        tol = tolerance(master_int)
        f.evidence["v3: takeover (s); adopted 5798..9568 / own interval"] = [
            round(took, 4),
            [round(low, 4), round(high, 4)],
            round(own, 4),
        ]
        f.check(
            low - tol <= took <= high + tol,
            f"v3: adopted the master's {master_int:g}s (took over after {took:.4f}s, "
            f"{low:.4f}..{high:.4f}s)",
            f"v3: took over after {took:.4f}s; adopting the master's {master_int:g}s gives "
            f"{low:.4f}..{high:.4f}s, keeping its own {own:.4f}s",
        )
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


@check("T03")
def t03(b: Bench, f: Findings) -> None:
    """Adverts every Advertisement_Interval: mean within 1 %, each within Adv/5."""
    params = b.params()
    sample = master_sample(b, f, params, n=31)
    if len(sample) < 2:
        return
    gaps = [b.time - a.time for a, b in itertools.pairwise(sample)]
    mean = statistics.fmean(gaps)
    worst = max(abs(g - params.advert_int) for g in gaps)
    tol = tolerance(params.advert_int)
    f.evidence["period mean / worst deviation (s)"] = [round(mean, 5), round(worst, 5)]
    f.frame("first advert", sample[0].number)
    f.frame("last advert", sample[-1].number)
    ok = abs(mean - params.advert_int) <= params.advert_int / 100 and worst <= tol
    f.check(
        ok,
        f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms (≤ {tol * 1000:.0f})",
        f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms; want mean ±1 % and every period within ±{tol * 1000:.0f} ms",
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
        f.evidence[f"state {state}: first advert after the first report (s)"] = round(took, 4)
        f.check(
            took <= params.advert_int / 2,
            f"state {state}: first advert {took:.3f}s after start-up",
            f"state {state}: first advert {took:.3f}s after start-up; an owner goes "
            f"master at once, not after Master_Down_Interval {mdi(params):.3f}s",
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
        if b.wait_master(mdi(params) + tol, since=started):
            f.na("control failed: the IUT became master under valid adverts")
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
        f.check(False, "", "the backup never took over after the master's priority 0")
        return
    took = took_iut.time - resign.time
    f.frame("master's priority-0 advert", resign.number)
    f.frame("IUT's first advert", took_iut.number)
    f.evidence["Skew_Time: theory / measured (s)"] = [round(skew, 4), round(took, 4)]
    f.check(
        abs(took - skew) <= tol,
        f"took over {took:.4f}s after priority 0 (Skew_Time {skew:.4f}s)",
        f"took over {took:.4f}s after priority 0; Skew_Time is {skew:.4f}s ± {tol:.3f}",
    )


@check("F03")
def f03(b: Bench, f: Findings) -> None:
    """A master that hears priority 0 sends an advert at once (and stays master)."""
    params = b.params()
    if become_master(b, f, params) is None:
        return
    at_once = params.advert_int / 4
    delays = mid_period_reply(b, f, "priority 0", lambda: b.frame(0), params)
    if not delays:
        return
    f.evidence["reply delays (s); at once ≤"] = [delays, at_once]
    f.check(
        max(delays) <= at_once and b.state() == "MASTER",
        f"answered at once ({max(delays) * 1000:.1f} ms at worst)",
        f"answered after {delays} s (state {b.state()}); at once is ≤ {at_once:.3f}s, "
        f"the regular advert comes at {params.advert_int / 2:.3f}s",
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
            f.evidence[f"{label}: master after start (s)"] = round(master.at - started, 4)
        if nopreempt:
            f.check(
                master is None,
                f"nopreempt: stayed backup for {2 * window:.3f}s",
                f"nopreempt: took over after {master.at - started if master else 0:.3f}s",
            )
        else:
            f.check(
                master is not None and master.at - started <= window,
                f"preempt: took over {master.at - started if master else 0:.3f}s after "
                f"start (≤ Master_Down_Interval {window:.3f}s)",
                f"preempt: did not take over from a lower-priority master within {2 * window:.3f}s",
            )
        b.stop_iut()


@check("F05")
def f05(b: Bench, f: Findings) -> None:
    """Equal priority: a master yields to a higher primary IP, not to a lower one."""
    params = b.params()
    window = mdi(params) + tolerance(params.advert_int)
    for label, src, yields in (("higher IP", b.ip("tester"), True), ("lower IP", LOWER_IP, False)):
        if become_master(b, f, params) is None:
            return
        # Stamped before the first equal-priority advert: advertise() sends it at once, and a
        # conformant IUT yields to it within a millisecond.
        began = clock.now()
        with b.advertise(lambda src=src: b.frame(IUT_PRIO, src=src)) as adv:
            backup = b.wait_backup(window, since=began)
            adv.stop()
        b.catch_up()
        mine = b.adverts("tester", since=began)
        if mine:
            f.frame(f"{label}: first equal-priority advert ({src})", mine[0].number)
        if yields:
            # From the first equal-priority advert on the wire to the IUT's BACKUP report.
            start = mine[0].time if mine else began
            took = backup.at - start if backup else 0.0
            f.evidence[f"{label}: yielded after (s)"] = round(took, 4)
            f.check(
                backup is not None,
                f"{label}: yielded to {src} ({took * 1000:.1f} ms after its first advert)",
                f"{label}: stayed master although {src} > {b.ip('iut')}",
            )
        else:
            f.check(
                backup is None,
                f"{label}: stayed master against {src}",
                f"{label}: yielded to {src} < {b.ip('iut')}",
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
    delays = mid_period_reply(b, f, "priority 50", lambda: b.frame(50), params)
    if not delays:
        return
    answered = [d <= at_once for d in delays]
    f.evidence["delays to next advert (s); at once ≤"] = [delays, at_once]
    stayed = b.state() == "MASTER"
    if b.iut.rfc9568:
        f.check(
            all(answered) and stayed,
            "RFC 9568: answered each losing advert at once",
            f"RFC 9568 mode: next adverts after {delays}s (at once is ≤ {at_once:.3f}s)",
        )
    else:
        f.check(
            not any(answered) and stayed,
            f"RFC 5798: discarded (next advert on schedule, {min(delays) * 1000:.0f} ms after)",
            f"RFC 5798: answered the losing advert at once ({delays}s; RFC 5798 §6.4.3 "
            "discards it; RFC 9568 behaviour)"
            if stayed
            else "left the master state",
        )


# --- ARP ----------------------------------------------------------------------------------


@check("A01")
def a01(b: Bench, f: Findings) -> None:
    """On becoming master: a gratuitous ARP for each VIP, from and with sha = the VMAC."""
    params = b.params(vips=(VIP, VIP2))
    first = become_master(b, f, params)
    if first is None:
        return
    want = vmac(1, 4)
    # The first batch goes out with the transition; allow two advert intervals for it.
    window = 2 * params.advert_int
    for vip in (VIP, VIP2):
        garp = b.wait_seen(
            lambda s, vip=vip: (
                s.sender == "iut"
                and isinstance(s.event, ArpEvent)
                and s.event.kind == "garp"
                and s.event.spa == vip
            ),
            since=first.time - window,
            timeout=window,
            what=f"a GARP for {vip}",
        )
        if garp is None:
            f.check(False, "", f"no GARP for {vip} within {window:.2f}s of the first advert")
            continue
        ev = garp.event
        f.frame(f"GARP {vip}", garp.number)
        f.evidence[f"GARP {vip}: eth src / sha"] = [ev.src_mac, ev.sha]
        f.check(
            ev.sha == want and ev.src_mac == want,
            f"GARP {vip} from {want}",
            f"GARP {vip} eth src {ev.src_mac}, sha {ev.sha}; want the VMAC {want}",
        )
    # IPv6: an unsolicited Neighbor Advertisement for the VIP, from and naming the IPv6 VMAC.
    six = ipv6_sample(b, f, n=1)
    if not six:
        return
    want6 = vmac(1, 6)
    na = b.wait_seen(
        lambda s: (
            s.sender == "iut"
            and isinstance(s.event, Nd)
            and s.event.kind == "na"
            and s.event.target == VIP6
        ),
        since=six[0].time - window,
        timeout=window,
        what=f"an unsolicited NA for {VIP6}",
    )
    if na is None:
        f.check(False, "", f"no unsolicited NA for {VIP6} within {window:.2f}s of the first advert")
        return
    ev6 = na.event
    f.frame(f"NA {VIP6}", na.number)
    f.evidence[f"NA {VIP6}: eth src / target link-layer / O,S"] = [
        ev6.src_mac,
        ev6.lladdr,
        [ev6.override, ev6.solicited],
    ]
    f.check(
        ev6.src_mac == want6 and ev6.lladdr == want6 and not ev6.solicited,
        f"NA {VIP6} from {want6}",
        f"NA {VIP6} eth src {ev6.src_mac}, target link-layer {ev6.lladdr}, solicited "
        f"{ev6.solicited}; want the VMAC {want6}, unsolicited",
    )


@check("A02")
def a02(b: Bench, f: Findings) -> None:
    """The backup does not answer ARP for a VIP; the master answers with the VMAC."""
    params = b.params()
    window = mdi(params)  # a host answers ARP in microseconds; silence for a whole MDI
    with b.advertise(lambda: b.frame(TESTER_PRIO)) as adv:
        started = b.start_iut(params)
        if b.wait_master(mdi(params) + tolerance(params.advert_int), since=started):
            f.na("control failed: the IUT became master under valid adverts")
            return
        asked = b.send(b.arp_request(VIP))
        reply = b.wait_seen(
            lambda s: (
                s.sender == "iut" and isinstance(s.event, ArpEvent) and s.event.kind == "reply"
            ),
            since=asked,
            timeout=window,
            what="an ARP reply from the backup",
        )
        request = b.wait_seen(
            lambda s: s.sender == "tester" and isinstance(s.event, ArpEvent),
            since=asked - 0.005,
            timeout=1.0,
            what="the tester's request",
        )
        adv.stop()
    f.frame("request to the backup", request.number if request else None)
    if reply is not None:
        f.frame("backup's ARP reply", reply.number)
    f.check(
        reply is None,
        f"backup silent to ARP for {window:.3f}s",
        f"backup answered ARP for {VIP} with {reply.event.sha if reply else ''}",
    )
    master = b.wait_master(2 * mdi(params) + 0.5, since=asked)
    if master is None:
        f.na("the IUT did not become master after the tester fell silent")
        return
    asked = b.send(b.arp_request(VIP))
    reply = b.wait_seen(
        lambda s: s.sender == "iut" and isinstance(s.event, ArpEvent) and s.event.kind == "reply",
        since=asked,
        timeout=window,
        what="an ARP reply from the master",
    )
    if reply is None:
        f.check(False, "", f"master did not answer ARP for {VIP} within {window:.3f}s")
        return
    f.frame("master's ARP reply", reply.number)
    f.evidence["master's reply: eth src / sha"] = [reply.event.src_mac, reply.event.sha]
    want = vmac(1, 4)
    f.check(
        reply.event.sha == want,
        f"master answered with the VMAC {want}",
        f"master answered with sha {reply.event.sha}, not the VMAC {want}",
    )
    b.stop_iut()
    a02_ipv6(b, f)


def a02_ipv6(b: Bench, f: Findings) -> None:
    """A02 on IPv6: the backup ignores a Neighbor Solicitation for the VIP; the master
    answers with the IPv6 VMAC as target link-layer address."""
    b.await_link_local()
    # Taken here: the advertiser thread may not use this thread's netlink socket.
    mine = min(b.await_link_local("tester"))
    params = b.params(vips=(VIP6,))
    window = mdi(params)

    def answer(since: float, what: str) -> Seen | None:
        return b.wait_seen(
            lambda s: (
                s.sender == "iut"
                and isinstance(s.event, Nd)
                and s.event.kind == "na"
                and s.event.target == VIP6
                and s.event.solicited
            ),
            since=since,
            timeout=window,
            what=what,
        )

    with b.advertise(lambda: b.frame6(TESTER_PRIO, mine)) as adv:
        started = b.start_iut(params)
        if b.wait_master(mdi(params) + tolerance(params.advert_int), since=started):
            f.na("IPv6 control failed: the IUT became master under valid adverts")
            return
        asked = b.send(b.neighbor_solicitation(VIP6, mine))
        reply = answer(asked, "an NA from the backup")
        adv.stop()
    if reply is not None:
        f.frame("IPv6: backup's NA", reply.number)
    f.check(
        reply is None,
        f"IPv6: backup silent to NS for {window:.3f}s",
        f"IPv6: backup answered NS for {VIP6} with {reply.event.lladdr if reply else ''}",
    )
    if b.wait_master(2 * mdi(params) + 0.5, since=asked) is None:
        f.na("IPv6: the IUT did not become master after the tester fell silent")
        return
    asked = b.send(b.neighbor_solicitation(VIP6, mine))
    reply = answer(asked, "an NA from the master")
    if reply is None:
        f.check(False, "", f"IPv6: master did not answer NS for {VIP6} within {window:.3f}s")
        return
    want6 = vmac(1, 6)
    f.frame("IPv6: master's NA", reply.number)
    f.evidence["IPv6 master's NA: eth src / target link-layer"] = [
        reply.event.src_mac,
        reply.event.lladdr,
    ]
    f.check(
        reply.event.lladdr == want6,
        f"IPv6: master answered with the VMAC {want6}",
        f"IPv6: master answered with {reply.event.lladdr}, not the VMAC {want6}",
    )


@check("A03")
def a03(b: Bench, f: Findings) -> None:
    """Accept_Mode False (``no_accept``): the master drops an echo to the VIP; the RFC
    default is False, so the implementation's default is reported too."""
    window = mdi(b.params())  # an echo reply comes in microseconds; wait a whole MDI
    want = vmac(1, 4)
    for label, extra in (("no_accept", ("no_accept",)), ("default config", ())):
        params = b.params()
        if become_master(b, f, params, extra) is None:
            return
        asked = b.send(b.echo_request(VIP, want))
        reply = b.wait_seen(
            lambda s: isinstance(s.event, Icmp) and s.event.type == 0 and s.event.src_ip == VIP,
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
        f.frame(f"{label}: echo request to {VIP}", request.number if request else None)
        if reply is not None:
            f.frame(f"{label}: echo reply", reply.number)
        f.evidence[f"{label}: VIP answers echo"] = reply is not None
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
    peer, me = b.ip("peer"), b.ip("iut")
    params = b.params(use_vmac=False, unicast_src_ip=me, unicast_peers=(peer,))
    sample = master_sample(b, f, params, n=3)
    if not sample:
        return
    dsts = sorted({s.event.dst_ip for s in sample})
    ttls = sorted({s.event.ttl for s in sample})
    f.evidence["sent: dst / ttl"] = [dsts, ttls]
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
