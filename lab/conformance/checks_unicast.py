"""The unicast row, U01: adverts to the configured peer (keepalived's ``unicast_peer``; unicast
is outside RFC 5798), and adverts from a non-peer or by multicast ignored.
"""

from __future__ import annotations

from lab.conformance.bench import TESTER_PRIO, Bench
from lab.conformance.procedures import discard_case, master_sample
from lab.conformance.registry import check
from lab.conformance.verdict import Findings


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
