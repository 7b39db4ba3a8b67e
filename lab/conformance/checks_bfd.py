"""The BFD rows, B01–B09: RFC 5880 asynchronous mode over RFC 5881 single hop.

Each check runs the IUT's ``bfd_instance`` towards the tester (:mod:`lab.conformance.bfd_bench`)
and judges what the IUT puts on the wire, as the capture shows it (state, diagnostic,
discriminators, flags, intervals, TTL, and when), citing frame numbers. The tester is an
honest session unless a row scripts it.

Receiving rules (B01's GTSM half, B08, B09) are asked the one way the wire can answer: the
tester injects a *Down* packet broken in one way into a session that is Up. A receiver that
accepts it goes Down at once (RFC 5880 §6.8.6: Up and a received Down → Down, diagnostic 3),
which its next packets show; one that discards it stays Up. The same Down unbroken must take
the session Down (the control, last: a bench whose Down is not heard cannot ask the question).

The IUT changes no link or address during a row (``bfd_bench.VRRP_QUIET``), so a stall of the
kernel's RTNL lock cannot hold it back: the timing cases say so (``NO_NETLINK``).

Windows and tolerances derive from the configured intervals (:func:`bfd_bench.tolerance`: a
fifth of the interval, at least 10 ms); periodic transmission is judged against RFC 5880
§6.8.7's jitter (75–100 % of the negotiated interval). Timing cases go through
:meth:`Findings.timing` / :meth:`Findings.periods`, so a host stall makes them inconclusive.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from lab import clock
from lab.capture_events import BfdControl
from lab.conformance.bench import Bench, Seen
from lab.conformance.bfd_bench import (
    IUT_BFD,
    BfdTester,
    bfd_seen,
    payload,
    start_bfd_iut,
    tester,
    tolerance,
    wait_bfd,
)
from lab.conformance.registry import check
from lab.conformance.verdict import Findings
from lab.stalls import NO_NETLINK
from vrrp.bfd.packet import Diag, SessionState, encode

#: How long a session may take to come Up: two packets at the slow rate each way (RFC 5880
#: §6.8.3: at least 1 s while not Up), and a daemon's start.
UP_WITHIN = 6.0
#: RFC 5880 §6.8.3: the Desired Min TX while not Up, and the slowest packet rate before Up.
SLOW = 1.0
#: RFC 5880 §6.8.7: a periodic packet goes out after 75–100 % of the negotiated interval.
JITTER_LOW = 0.75
#: Time after the tester's packet before the IUT's next one counts as its answer: a packet it
#: had already sent when the tester's arrived is not (the capture orders them by frame).
SETTLE = 0.005


def _describe(s: Seen) -> str:
    e: BfdControl = s.event
    flags = "".join(x for x, on in (("P", e.poll), ("F", e.final)) if on)
    return f"{e.state} diag {e.diag}{' ' + flags if flags else ''} (frame {s.number})"


def bring_up(b: Bench, f: Findings, t: BfdTester) -> bool:
    """Start the IUT and the tester's honest session; whether it came Up (else n/a)."""
    start_bfd_iut(b)
    t.start()
    if t.wait_up(UP_WITHIN):
        return True
    b.catch_up()
    last = bfd_seen(b, "iut")
    f.na(
        f"the session never came Up within {UP_WITHIN:g}s "
        f"(the IUT's last packet: {_describe(last[-1]) if last else 'none'})"
    )
    return False


def iut_interval(t: BfdTester) -> float:
    """The IUT's negotiated transmit interval while Up: max(its Desired Min TX, the tester's
    Required Min RX) (RFC 5880 §6.8.7)."""
    return max(IUT_BFD.min_tx, t.params.required_min_rx)


def injected(b: Bench, data: bytes, at: float) -> Seen | None:
    """The tester's packet carrying ``data``, injected at ``at``, as captured."""
    return b.wait_seen(
        lambda s: s.sender == "tester" and isinstance(s.event, BfdControl) and payload(s) == data,
        since=at - SETTLE,
        timeout=1.0,
        what="the tester's injected BFD packet",
    )


def down_packet(t: BfdTester, **changes: object) -> bytes:
    """A valid Down packet of the tester's session (diagnostic 0), with ``changes``."""
    return encode(t.control(state=SessionState.DOWN, diag=Diag.NONE, **changes))


def ignored(b: Bench, f: Findings, t: BfdTester, label: str, data: bytes, ttl: int = 255) -> None:
    """The tester injects ``data`` (a broken Down) into the Up session: a conformant IUT
    discards it and stays Up; one that accepts it goes Down (diagnostic 3)."""
    if not t.wait_up(UP_WITHIN):
        f.na(f"{label}: not asked (the session was not Up again)")
        return
    interval = iut_interval(t)
    window = max(4 * interval, 0.25)
    at = t.inject(data, ttl)
    sent = injected(b, data, at)
    if sent is None:
        f.na(f"{label}: the injected packet is not in the capture")
        return
    f.frame(f"{label}: injected", sent.number)
    b.catch_up(sent.time + window)
    after = [s for s in bfd_seen(b, "iut", sent.time, sent.time + window) if s.number > sent.number]
    broke = next(
        (
            s
            for s in after
            if s.event.state != "Up" or s.event.your_discriminator != t.discriminator
        ),
        None,
    )
    if broke is not None and broke.event.diag == Diag.CONTROL_DETECTION_EXPIRED:
        # Not the injected packet's doing (that would be diagnostic 3): the tester's own
        # packets stopped reaching the IUT, which only a stall of the measuring process does.
        f.control(
            f"{label}: the session timed out around the injection ({_describe(broke)})",
            window=(sent.time - 1.0, broke.time),
            tolerance=interval,
        )
        return
    if broke is not None:
        f.frame(f"{label}: IUT's reset", broke.number)
        f.check(False, "", f"{label}: accepted (the IUT went {_describe(broke)})")
        return
    if len(after) < 2:
        f.timing(
            False,
            "",
            f"{label}: the IUT fell silent ({len(after)} packets in {window:.3f}s)",
            window=(sent.time, sent.time + window),
            tolerance=interval,
            what=f"{label}: the IUT's packets after the injection",
            rtnl_within=NO_NETLINK,
        )
        return
    f.check(True, f"{label}: discarded (still Up, {len(after)} packets after it)", "")


def heard(b: Bench, f: Findings, t: BfdTester) -> None:
    """The control of the receiving rows: the tester's Down, unbroken, takes the session Down
    with diagnostic 3 (Neighbor Signaled Session Down); if not, the rows cannot be asked."""
    if not t.wait_up(UP_WITHIN):
        f.na("control: not asked (the session was not Up again)")
        return
    data = down_packet(t)
    at = t.inject(data)
    sent = injected(b, data, at)
    if sent is None:
        f.na("control: the tester's Down is not in the capture")
        return
    interval = iut_interval(t)
    down = wait_bfd(
        b, lambda e: e.state != "Up", since=sent.time, timeout=4 * interval + 0.2, after=sent.number
    )
    f.frame("control: the tester's valid Down", sent.number)
    if down is None or down.event.diag != Diag.NEIGHBOR_DOWN:
        f.control(
            "control failed: the tester's valid Down did not take the session Down with "
            f"diagnostic 3 (the IUT's next: {_describe(down) if down else 'still Up'})",
            window=(sent.time, sent.time + 4 * interval),
            tolerance=interval,
        )
        return
    f.frame("control: IUT's Down", down.number)


def next_packet(b: Bench, sent: Seen, timeout: float = SLOW + 0.5) -> Seen | None:
    """The IUT's first packet captured after the tester's ``sent`` (by more than
    :data:`SETTLE`)."""
    return wait_bfd(b, lambda e: True, since=sent.time + SETTLE, timeout=timeout, after=sent.number)


# --- B01 --------------------------------------------------------------------------------------


@check("B01")
def b01(b: Bench, f: Findings) -> None:
    """Sent: every packet with TTL / hop limit 255. Received: one with 254 is discarded
    (RFC 5881 §5, the GTSM of RFC 5082)."""
    with tester(b) as t:
        if not bring_up(b, f, t):
            return
        time.sleep(0.5)
        b.catch_up()
        sent = bfd_seen(b, "iut", b.launched)
        ttl = "TTL" if b.family == 4 else "hop limit"
        bad = next((s for s in sent if s.event.ttl != 255), None)
        f.measure(f"sent {ttl}", sorted({s.event.ttl for s in sent}))
        f.frame("first packet", sent[0].number if sent else None)
        if bad is not None:
            f.frame(f"packet with {ttl} {bad.event.ttl}", bad.number)
        f.check(
            bad is None,
            f"sent: {len(sent)} packets, all {ttl} 255",
            f"sent: {ttl} {bad.event.ttl if bad else ''} (frame {bad.number if bad else ''})",
        )
        ignored(b, f, t, f"{ttl} 254", down_packet(t), ttl=254)
        heard(b, f, t)


# --- B02 --------------------------------------------------------------------------------------


@check("B02")
def b02(b: Bench, f: Findings) -> None:
    """The three-way handshake (RFC 5880 §6.2, §6.8.6): the IUT starts Down with Your
    Discriminator 0; an Up from a peer it has not heard leaves it Down; a Down takes it to
    Init; an Init to Up. The tester scripts each packet."""
    with tester(b) as t:
        start_bfd_iut(b)
        first = wait_bfd(b, lambda e: True, since=b.launched, timeout=SLOW + 2.0)
        if first is None:
            f.na("the IUT sent no BFD packet")
            return
        f.frame("IUT's first packet", first.number)
        if not f.check(
            first.event.state == "Down" and first.event.your_discriminator == 0,
            "starts Down, Your Discriminator 0",
            f"starts {_describe(first)} with Your Discriminator {first.event.your_discriminator}",
        ):
            return
        mine = first.event.my_discriminator
        steps = (
            (SessionState.UP, "Down", "Up while Down: stays Down"),
            (SessionState.DOWN, "Init", "Down while Down: Init"),
            (SessionState.INIT, "Up", "Init while Init: Up"),
        )
        for theirs, want, label in steps:
            data = encode(t.control(state=theirs, your_discriminator=mine))
            at = t.inject(data)
            sent = injected(b, data, at)
            reply = next_packet(b, sent) if sent is not None else None
            if sent is None or reply is None:
                f.na(f"{label}: no packet from the IUT after the tester's {theirs.name}")
                return
            f.frame(f"{label}: tester's {theirs.name}", sent.number)
            f.frame(f"{label}: IUT's next", reply.number)
            names = reply.event.your_discriminator == t.discriminator
            if not f.check(
                reply.event.state == want and names,
                label,
                f"{label}: the IUT answered {_describe(reply)}"
                + ("" if names else f", Your Discriminator {reply.event.your_discriminator}"),
            ):
                return


# --- B03 --------------------------------------------------------------------------------------


def rate_case(b: Bench, f: Findings, t: BfdTester, label: str, n: int = 12) -> None:
    """The IUT's next ``n`` periodic Up packets come every 75–100 % of its negotiated
    interval, max(its Desired Min TX, the tester's Required Min RX), within the tolerance."""
    interval = iut_interval(t)
    tol = tolerance(interval)
    since = clock.now() + 0.05
    b.wait_seen(
        lambda s: len(_periodic(bfd_seen(b, "iut", since))) >= n,
        since=since,
        timeout=n * interval + 1.0,
        what=f"{n} periodic packets from the IUT",
    )
    sample = _periodic(bfd_seen(b, "iut", since))[:n]
    if len(sample) < n:
        f.na(f"{label}: the IUT sent {len(sample)} periodic packets where {n} were awaited")
        return
    times = [s.time for s in sample]
    gaps = [round((y - x) * 1000, 1) for x, y in itertools.pairwise(times)]
    f.measure(f"{label}: periods (ms)", gaps)
    f.measure(f"{label}: negotiated interval (ms)", round(interval * 1000, 1))
    f.frame(f"{label}: first packet", sample[0].number)
    low, high = JITTER_LOW * interval, interval
    f.periods(
        times,
        (low + high) / 2,
        (high - low) / 2 + tol,
        (high - low) / 2 + tol / 2,
        what=f"{label}: periods",
        passed=f"{label}: every {min(gaps):.0f}–{max(gaps):.0f} ms (interval "
        f"{interval * 1000:.0f} ms)",
        failed=f"{label}: periods {min(gaps):.1f}–{max(gaps):.1f} ms, not "
        f"{low * 1000:.1f}–{high * 1000:.1f} ms ± {tol * 1000:.0f}",
        rtnl_within=NO_NETLINK,
    )


def _periodic(seen: list[Seen]) -> list[Seen]:
    """The periodic Up packets: a Final answers a Poll outside the schedule (RFC 5880 §6.5)."""
    return [s for s in seen if s.event.state == "Up" and not s.event.final]


@check("B03")
def b03(b: Bench, f: Findings) -> None:
    """The IUT transmits every max(its Desired Min TX, the peer's Required Min RX) (RFC 5880
    §6.8.2, §6.8.7), both ways: the tester asks for 150 ms (above the IUT's 50 ms), then, by a
    Poll Sequence, for 20 ms (below it)."""
    with tester(b, required_min_rx=0.15) as t:
        if not bring_up(b, f, t):
            return
        rate_case(b, f, t, "tester's Required Min RX 150 ms")
        t.set_params(required_min_rx=0.02)
        if not t.wait_up(UP_WITHIN):
            f.na("the session did not stay Up through the tester's Poll Sequence")
            return
        rate_case(b, f, t, "tester's Required Min RX 20 ms")


# --- B04 --------------------------------------------------------------------------------------


@check("B04")
def b04(b: Bench, f: Findings) -> None:
    """Poll/Final (RFC 5880 §6.5, §6.8.3, §6.8.7). Coming Up, the IUT's Desired Min TX drops
    from 1 s to 50 ms, which it announces with a Poll (the tester polls for nothing, sending at
    1 s); and a Poll from the tester is answered with a Final at once, not at the next periodic
    packet (the tester asks for 200 ms, so those are 150–200 ms apart)."""
    with tester(b, desired_min_tx=SLOW, required_min_rx=0.2) as t:
        if not bring_up(b, f, t):
            return
        b.catch_up()
        ups = [s for s in bfd_seen(b, "iut", b.launched) if s.event.state == "Up"]
        poll = next((s for s in ups if s.event.poll), None)
        if poll is None:
            f.measure("first Up packets", [_describe(s) for s in ups[:5]])
            f.check(False, "", "coming Up: no Poll announced the new Desired Min TX")
        else:
            f.frame("IUT's Poll coming Up", poll.number)
            final = next((s for s in bfd_seen(b, "tester", poll.time) if s.event.final), None)
            later = [
                s
                for s in bfd_seen(b, "iut", final.time + SETTLE if final else poll.time)
                if final is not None and s.number > final.number
            ]
            still = next((s for s in later[:3] if s.event.poll), None)
            if final is not None:
                f.frame("tester's Final", final.number)
            f.check(
                final is not None and later and still is None,
                f"coming Up: Poll (frame {poll.number}), ended by the tester's Final",
                "coming Up: the Poll did not end after the tester's Final"
                + (f" ({_describe(still)})" if still else ""),
            )
        interval = iut_interval(t)
        at_once = tolerance(interval)
        delays = []
        for i in range(3):
            heard_at = t.wait_heard(lambda c: c.state is SessionState.UP, timeout=1.0)
            if heard_at is None:
                f.na("no packet from the IUT to place the Poll after")
                return
            data = encode(t.control(poll=True))
            at = t.inject(data)
            sent = injected(b, data, at)
            reply = (
                wait_bfd(b, lambda e: e.final, since=sent.time, timeout=1.0, after=sent.number)
                if sent is not None
                else None
            )
            if sent is None:
                f.na("the tester's Poll is not in the capture")
                return
            f.frame(f"Poll {i + 1}: tester's", sent.number)
            if reply is None:
                f.check(False, "", f"Poll {i + 1}: no Final within 1 s")
                return
            f.frame(f"Poll {i + 1}: IUT's Final", reply.number)
            if reply.event.poll:
                f.check(False, "", f"Poll {i + 1}: the Final also carries P ({_describe(reply)})")
            delays.append(reply.time - sent.time)
            window = (sent.time, reply.time)
        f.measure("Final after the tester's Poll (ms)", [round(d * 1000, 2) for d in delays])
        late = max(delays)
        f.timing(
            late <= at_once,
            f"a Poll answered at once (Final after {late * 1000:.1f} ms at most)",
            f"a Poll answered after {late * 1000:.1f} ms, not at once (≤ {at_once * 1000:.0f} "
            f"ms; periodic packets are {JITTER_LOW * interval * 1000:.0f}–"
            f"{interval * 1000:.0f} ms apart)",
            window=window,
            tolerance=at_once,
            what="the Final after the tester's Poll",
            wire=True,
            late_by=late - at_once,
            rtnl_within=NO_NETLINK,
        )


# --- B05 --------------------------------------------------------------------------------------


@check("B05")
def b05(b: Bench, f: Findings) -> None:
    """Detection Time (RFC 5880 §6.8.4): the tester's Detect Mult (4) × max(the IUT's Required
    Min RX 50 ms, the tester's Desired Min TX 80 ms) = 320 ms after the tester's last packet,
    the IUT goes Down with diagnostic 1 (Control Detection Time Expired). Its own multiplier
    (3) or Required Min RX would give 240 or 200 ms."""
    tester_tx, mult = 0.08, 4
    with tester(b, desired_min_tx=tester_tx, detect_mult=mult) as t:
        if not bring_up(b, f, t):
            return
        time.sleep(0.3)
        silenced = t.silence()
        detection = mult * max(IUT_BFD.min_rx, tester_tx)
        interval = iut_interval(t)
        tol = tolerance(tester_tx)
        since = silenced - 1.0
        down = wait_bfd(b, lambda e: e.state != "Up", since=silenced, timeout=detection + 1.5)
        if down is None:
            f.check(False, "", f"still Up {detection + 1.5:.2f}s after the tester fell silent")
            return
        last = [s for s in bfd_seen(b, "tester", since) if s.number < down.number]
        if not last:
            f.na("no packet of the tester's before the IUT's Down")
            return
        took = down.time - last[-1].time
        f.frame("tester's last packet", last[-1].number)
        f.frame("IUT's Down", down.number)
        f.measure("Down after the tester's last packet (s)", round(took, 4))
        f.measure("Detection Time (s)", detection)
        f.check(
            down.event.diag == Diag.CONTROL_DETECTION_EXPIRED,
            "diagnostic 1 (Control Detection Time Expired)",
            f"went {_describe(down)}, not diagnostic 1",
        )
        # The IUT sends its Down at the periodic packet already scheduled (one interval at
        # most after the expiry) or at once.
        high = detection + interval + tol
        f.timing(
            detection - tol <= took <= high,
            f"Down {took * 1000:.1f} ms after the tester's last packet (Detection Time "
            f"{detection * 1000:.0f} ms)",
            f"Down {took * 1000:.1f} ms after the tester's last packet, not "
            f"{detection * 1000:.0f} ms (+ one {interval * 1000:.0f} ms interval) ± "
            f"{tol * 1000:.0f}",
            window=(last[-1].time, down.time),
            tolerance=tol,
            what="the Detection Time",
            wire=True,
            late_by=took - high,
            rtnl_within=NO_NETLINK,
        )


# --- B06 --------------------------------------------------------------------------------------


def slow_case(b: Bench, f: Findings, label: str, seen: list[Seen], state: str) -> None:
    """Every packet of ``seen`` in ``state`` advertises a Desired Min TX of at least 1 s, and
    consecutive ones are at least 75 % of a second apart (RFC 5880 §6.8.3, §6.8.7)."""
    mine = [s for s in seen if s.event.state == state]
    if len(mine) < 2:
        f.na(f"{label}: {len(mine)} {state} packets from the IUT, 2 needed")
        return
    tol = tolerance(SLOW)
    fast = next((s for s in mine if s.event.desired_min_tx < SLOW), None)
    gaps = [y.time - x.time for x, y in itertools.pairwise(mine)]
    f.measure(f"{label}: periods (s)", [round(g, 3) for g in gaps])
    f.measure(f"{label}: Desired Min TX (s)", sorted({s.event.desired_min_tx for s in mine}))
    f.frame(f"{label}: first {state}", mine[0].number)
    f.check(
        fast is None,
        f"{label}: Desired Min TX ≥ 1 s",
        f"{label}: Desired Min TX {fast.event.desired_min_tx if fast else 0:g} s "
        f"(frame {fast.number if fast else ''})",
    )
    short = min(gaps)
    f.timing(
        short >= JITTER_LOW * SLOW - tol,
        f"{label}: {len(mine)} packets ≥ {short:.3f}s apart",
        f"{label}: packets {short * 1000:.0f} ms apart, not ≥ "
        f"{(JITTER_LOW * SLOW - tol) * 1000:.0f} ms",
        window=(mine[0].time, mine[-1].time),
        tolerance=tol,
        what=f"{label}: periods",
        wire=True,
        rtnl_within=NO_NETLINK,
    )


@check("B06")
def b06(b: Bench, f: Findings) -> None:
    """Slow rate until Up (RFC 5880 §6.8.3): Down while the peer is silent, then Init while
    the peer says Down (asking for 10 ms), the IUT advertises and keeps ≥ 1 s."""
    with tester(b) as t:
        start_bfd_iut(b)
        began = b.launched
        # Two packets at most a second apart (75-100 % of it, §6.8.7) are out by 2 s.
        time.sleep(2.0)
        b.catch_up()
        slow_case(b, f, "silent peer", bfd_seen(b, "iut", began), "Down")
        init_from = clock.now()
        for _ in range(3):
            t.send(
                t.control(
                    state=SessionState.DOWN,
                    your_discriminator=t.iut_discriminator,
                    desired_min_tx_us=1_000_000,
                    required_min_rx_us=10_000,
                )
            )
            time.sleep(0.75)
        b.catch_up()
        slow_case(b, f, "peer Down", bfd_seen(b, "iut", init_from), "Init")


# --- B07 --------------------------------------------------------------------------------------


@check("B07")
def b07(b: Bench, f: Findings) -> None:
    """AdminDown (RFC 5880 §6.8.6, §6.8.16): the tester signals AdminDown; the IUT goes Down
    with diagnostic 3 (Neighbor Signaled Session Down) on receipt, not by a Detection Time
    expiring (diagnostic 1, after the tester's 5 × 100 ms)."""
    with tester(b) as t:
        if not bring_up(b, f, t):
            return
        time.sleep(0.2)
        at = t.admin_down()
        admin = wait_bfd(b, lambda e: e.state == "AdminDown", since=at - SETTLE, timeout=1.0,
                         sender="tester")  # fmt: skip
        if admin is None:
            f.na("the tester's AdminDown is not in the capture")
            return
        detection = t.params.detect_mult * max(IUT_BFD.min_rx, t.params.desired_min_tx)
        interval = iut_interval(t)
        down = wait_bfd(
            b, lambda e: e.state != "Up", since=admin.time, timeout=detection + 1.0,
            after=admin.number,
        )  # fmt: skip
        f.frame("tester's AdminDown", admin.number)
        if down is None:
            f.check(False, "", f"still Up {detection + 1.0:.1f}s after the tester's AdminDown")
            return
        f.frame("IUT's Down", down.number)
        took = down.time - admin.time
        f.measure("Down after the tester's AdminDown (s)", round(took, 4))
        if not f.check(
            down.event.state == "Down" and down.event.diag == Diag.NEIGHBOR_DOWN,
            "Down with diagnostic 3 (Neighbor Signaled Session Down)",
            f"went {_describe(down)}"
            + (
                ": treated as a detection failure"
                if down.event.diag == Diag.CONTROL_DETECTION_EXPIRED
                else ", not Down with diagnostic 3"
            ),
        ):
            return
        tol = tolerance(interval)
        f.timing(
            took <= detection - tol,
            f"on receipt ({took * 1000:.1f} ms, Detection Time {detection * 1000:.0f} ms)",
            f"only after {took * 1000:.1f} ms, as a Detection Time ({detection * 1000:.0f} ms)",
            window=(admin.time, down.time),
            tolerance=tol,
            what="Down after the tester's AdminDown",
            wire=True,
            rtnl_within=NO_NETLINK,
        )


# --- B08, B09 -------------------------------------------------------------------------------


@check("B08")
def b08(b: Bench, f: Findings) -> None:
    """Demultiplexing (RFC 5880 §6.8.6): a Down whose Your Discriminator names no session of
    the IUT (from the right peer, with the right My Discriminator) is discarded."""
    with tester(b) as t:
        if not bring_up(b, f, t):
            return
        wrong = t.iut_discriminator ^ 0x5A5A_A5A5 or 1
        ignored(b, f, t, "wrong Your Discriminator", down_packet(t, your_discriminator=wrong))
        heard(b, f, t)


#: B09's broken Downs: each breaks one §6.8.6 reception check of RFC 5880.
MALFORMED: dict[str, Callable[[BfdTester], bytes]] = {
    "version 0": lambda t: _patch(down_packet(t), 0, lambda octet: octet & 0x1F),
    "Length 20": lambda t: encode(t.control(state=SessionState.DOWN, diag=Diag.NONE), length=20),
    "Length 30 beyond the packet": lambda t: encode(
        t.control(state=SessionState.DOWN, diag=Diag.NONE), length=30
    ),
    "Detect Mult 0": lambda t: down_packet(t, detect_mult=0),
    "My Discriminator 0": lambda t: down_packet(t, my_discriminator=0),
    # A simple-password section (RFC 5880 §4.2: type 1, length 4, key 1, one octet), so only
    # the A bit, not the Length, makes it unacceptable to a session without authentication.
    "A bit without authentication": lambda t: (
        encode(t.control(state=SessionState.DOWN, diag=Diag.NONE, auth_present=True), length=28)
        + b"\x01\x04\x01x"
    ),
}


def _patch(data: bytes, index: int, change: Callable[[int], int]) -> bytes:
    """``data`` with the octet at ``index`` changed."""
    return data[:index] + bytes([change(data[index])]) + data[index + 1 :]


@check("B09")
def b09(b: Bench, f: Findings) -> None:
    """Malformed packets are discarded (RFC 5880 §6.8.6): version, Length, Detect Mult 0, My
    Discriminator 0, the A bit without authentication. Each is a Down: accepted, it would take
    the session Down."""
    with tester(b) as t:
        if not bring_up(b, f, t):
            return
        for label, make in MALFORMED.items():
            ignored(b, f, t, label, make(t))
        heard(b, f, t)
