"""The timer rows, T01–T03: Master_Down_Interval, a backup adopting the master's interval (v3)
or discarding a mismatch (v2), and the advert period and its jitter.
"""

from __future__ import annotations

import itertools
import statistics

from lab import clock
from lab.conformance.bench import TESTER_PRIO, Bench, tolerance
from lab.conformance.procedures import adoption_window, discard_case, master_sample, mdi
from lab.conformance.registry import check
from lab.conformance.verdict import Findings
from lab.routers import RouterParams
from lab.stalls import takeover_netlink


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
        rtnl_within=takeover_netlink(window[1], tol),
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
            rtnl_within=takeover_netlink(window[1], tol),
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
    period within Adv/5; host stalls are weighed period by period (:meth:`Findings.periods`).

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
    f.periods(
        [s.time for s in sample],
        params.advert_int,
        tol,
        drift,
        what="advert periods",
        passed=f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms (≤ {tol * 1000:.0f})",
        failed=f"{len(gaps)} periods: mean {mean * 1000:.2f} ms, worst deviation "
        f"{worst * 1000:.2f} ms; want the mean within ±{drift * 1000:g} ms of "
        f"{params.advert_int * 1000:g} ms and every period within ±{tol * 1000:.0f} ms",
        # The takeover's link and address changes (VIPs, FRR's protodown) are done by the
        # second advert; after it the master only sends.
        rtnl_within=(sample[0].time, sample[1].time),
    )
