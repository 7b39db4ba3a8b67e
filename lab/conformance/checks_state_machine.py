"""The state-machine rows, F01–F06: the owner's start-up, priority 0 sent and heard,
preemption, the tie on the primary address, and a losing advert heard by the master.
"""

from __future__ import annotations

import ipaddress

from lab import clock
from lab.conformance.bench import HIGHER_IP, IUT_PRIO, LOWER_IP, TESTER_PRIO, Bench, tolerance
from lab.conformance.procedures import become_master, mdi, mid_period_reply
from lab.conformance.registry import check
from lab.conformance.verdict import Findings
from lab.stalls import takeover_netlink


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
    resign = b.wait_advert("tester", sent - 0.005, 1.0, lambda a: a.priority == 0)
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
        rtnl_within=takeover_netlink(took_iut.time, tol),
    )


@check("F03")
def f03(b: Bench, f: Findings) -> None:
    """A master that hears priority 0 sends an advert at once (and stays master)."""
    params = b.params()
    if become_master(b, f, params) is None:
        return
    at_once = params.advert_int / 4
    delays, window, pairs = mid_period_reply(b, f, "priority 0", lambda: b.frame(0), params)
    if not delays:
        return
    f.measure("reply delays (s); at once ≤", [delays, at_once])
    f.check(b.state() == "MASTER", "stayed master", f"left the master state ({b.state()})")
    # Only a stall still on when a reply went out can have delayed it (Findings.replies).
    f.replies(
        pairs,
        at_once,
        prompt=True,
        passed=f"answered at once ({max(delays) * 1000:.1f} ms at worst)",
        failed=f"answered after {delays} s; at once is ≤ {at_once:.3f}s, "
        f"the regular advert comes at {params.advert_int / 2:.3f}s",
        what="answer at once to priority 0",
        # A steady master answers with an advert and changes no link or address.
        rtnl_within=(window[0], window[0]),
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
                # The lock can delay the IUT, never make it take over.
                rtnl_within=(span[0], span[0]),
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
                # Never master: the window ran a whole Master_Down_Interval past the bound.
                late_by=(master.at if master is not None else span[1]) - started - window,
                # The preempting IUT adds its VIPs as it takes over, at the window's end.
                rtnl_within=takeover_netlink(span[1], tol),
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
                # A yielding master removes its VIPs as it goes, at the window's end.
                rtnl_within=takeover_netlink(
                    backup.at if backup else began + window, tolerance(params.advert_int)
                ),
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
    delays, window, pairs = mid_period_reply(b, f, "priority 50", lambda: b.frame(50), params)
    if not delays:
        return
    f.measure("delays to next advert (s); at once ≤", [delays, at_once])
    f.check(b.state() == "MASTER", "stayed master", f"left the master state ({b.state()})")
    # Only a stall still on when the next advert went out can have delayed it: an answer at
    # once may then look late, never a late advert early (Findings.replies).
    timed = {
        "what": "next advert after a lower priority",
        # A steady master answers with an advert and changes no link or address.
        "rtnl_within": (window[0], window[0]),
    }
    if b.iut.rfc9568:
        f.replies(
            pairs,
            at_once,
            prompt=True,
            passed="RFC 9568: answered each losing advert at once",
            failed=f"RFC 9568 mode: next adverts after {delays}s (at once is ≤ {at_once:.3f}s)",
            **timed,
        )
    else:
        f.replies(
            pairs,
            at_once,
            prompt=False,
            passed=f"RFC 5798: discarded (next advert on schedule, {min(delays) * 1000:.0f} ms "
            "after)",
            failed=f"RFC 5798: answered the losing advert at once ({delays}s; RFC 5798 §6.4.3 "
            "discards it; RFC 9568 behaviour)",
            **timed,
        )
