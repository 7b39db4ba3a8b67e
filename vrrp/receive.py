"""Which instance a received datagram is for, and the accounting of those no instance takes.

The daemon reads a datagram from the socket of one (interface, family) ``key`` and asks
:func:`candidates_for` which instances it may be for (by the VRID byte, read before any
validation). One of them takes it, or :func:`count_stray` validates it anyway: malformed input
is counted under its real reason, a well-formed advert for no VRID of ours as a VRID mismatch,
and one for our VRID from a stranger or to the wrong address as ``unknown-peer`` or
``unicast-to-multicast`` on each instance it missed.
"""

from __future__ import annotations

from collections.abc import Mapping

from vrrp.instance import Instance
from vrrp.netio import Received
from vrrp.packet import AdvertError, Counters, decode

__all__ = ["candidates_for", "count_stray"]


def candidates_for(
    instances: Mapping[str, Instance], key: tuple[str, int], received: Received
) -> list[Instance]:
    """The instances listening on socket ``key`` with the datagram's VRID."""
    if len(received.payload) < 2:
        return []
    vrid = received.payload[1]
    out = []
    for inst in instances.values():
        spec = inst.spec
        if spec.vrid != vrid or (spec.rx_interface, spec.family) != key:
            continue
        out.append(inst)
    return out


def count_stray(
    instances: Mapping[str, Instance],
    key: tuple[str, int],
    received: Received,
    counters: Counters,
    candidates: list[Instance],
) -> None:
    """Count a datagram that none of its ``candidates`` took (there may be none)."""
    # Validate anyway, so that malformed input is counted under its real reason; a
    # well-formed advert for no instance of ours counts as a VRID mismatch.
    vrids = {
        c.spec.vrid
        for c in instances.values()
        if (c.spec.rx_interface, c.spec.family) == key and not candidates
    }
    try:
        decode(
            received.payload,
            src=received.src,
            dst=received.dst,
            ttl=received.ttl,
            vrids=vrids if not candidates else None,
            counters=counters,
        )
    except AdvertError:
        return
    if candidates:
        # Valid, for one of our VRIDs, but from a stranger or to the wrong address.
        for cand in candidates:
            reason = "unknown-peer" if cand.spec.is_unicast else "unicast-to-multicast"
            cand.discards[reason] = cand.discards.get(reason, 0) + 1
