"""The ARP and ND rows, A01–A03: a GARP or unsolicited NA per VIP on becoming master, who
answers ARP and NS for the VIPs, and Accept_Mode False.
"""

from __future__ import annotations

from lab.capture_events import ArpEvent
from lab.conformance.bench import TESTER_PRIO, Bench, Icmp, Nd, Seen, tolerance
from lab.conformance.procedures import become_master, mdi
from lab.conformance.registry import check
from lab.conformance.verdict import Findings


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
    # The question holds only while the IUT is a backup. Should the tester's adverts have
    # lapsed for a Master_Down_Interval (its thread held up), the IUT rightly took over and
    # answers as master: that is a failed control, never the backup answering (seen beside
    # scripts/neighbour-labs.sh: no tester advert for 0.5 s, the IUT master 0.2 s before the
    # ARP). Its MASTER report reaches the bench within a tolerance of the transition.
    tol = tolerance(params.advert_int)
    early = b.wait_master(tol, since=started)
    if early is not None:
        f.control(
            "control failed: the IUT became master under valid adverts",
            window=(started, early.at),
            tolerance=tol,
        )
        return
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
