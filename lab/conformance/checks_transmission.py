"""The transmission rows, P01 and P03–P09: what the IUT's adverts carry (TTL, destination,
header, checksum, interval, source MAC and IP), and for P04–P07 the discard of the same fields
received broken.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.capture_events import VrrpAdvert
from lab.conformance.bench import TESTER_PRIO, Bench, Seen, vrrp_reserved
from lab.conformance.procedures import discard_case, hears, master_sample, wrong_checksum
from lab.conformance.registry import check
from lab.conformance.verdict import Findings
from vrrp.packet import ChecksumForm


def _all(sample: list[Seen], pred: Callable[[VrrpAdvert], bool]) -> Seen | None:
    """The first advert of ``sample`` that breaks ``pred``, or None."""
    return next((s for s in sample if not pred(s.event)), None)


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
