"""Which instance a received datagram is for, and the accounting of those no instance takes.

:func:`accept` is the whole receive path up to the state machine: the instance, keepalived's
unicast TTL rule, the advert's validation and the instance's counters. Inside it, a datagram
read from the socket of one (interface, family) ``key`` is matched by :func:`candidates_for`
to the instances it may be for (by the VRID byte, read before any validation). One of them
takes it, or :func:`count_stray` validates it anyway: malformed input is counted under its real
reason, a well-formed advert for no VRID of ours as a VRID mismatch, and one for our VRID from
a stranger or to the wrong address as ``unknown-peer`` or ``unicast-to-multicast`` on each
instance it missed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from vrrp.instance import Instance
from vrrp.netio import Received
from vrrp.packet import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_TTL,
    Advert,
    AdvertError,
    Auth,
    Counters,
    decode,
)

__all__ = ["accept", "candidates_for", "count_stray"]

log = logging.getLogger("vrrp")


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


def accept(
    instances: Mapping[str, Instance],
    key: tuple[str, int],
    received: Received,
    counters: Counters,
) -> tuple[Instance, Advert] | None:
    """The instance a datagram read from socket ``key`` is for, and its validated advert; None
    when no instance takes it or it is invalid (counted either way, on the instance it was for
    or by :func:`count_stray`). Records the source of an advert with a priority above 0 as the
    instance's ``last_master``.
    """
    candidates = candidates_for(instances, key, received)
    multicast = received.dst in (VRRP_GROUP_V4, VRRP_GROUP_V6)
    inst: Instance | None = None
    for cand in candidates:
        if cand.spec.is_unicast:
            # U01: a unicast instance listens to its peers only, never to the group.
            if not multicast and received.src in cand.spec.peers:
                inst = cand
                break
        elif multicast:
            inst = cand
            break
    if inst is None:
        count_stray(instances, key, received, counters, candidates)
        return None
    spec = inst.spec
    ttl = received.ttl
    if spec.is_unicast:
        # keepalived's unicast rule, not RFC 5798 §7.1's: the TTL is checked against the
        # peer's min_ttl/max_ttl only (keepalived 2.2.7 sends IPv6 unicast with hop limit
        # 64). What came in is still shown in the status.
        low, high = next((lo, hi) for peer, lo, hi in spec.peer_ttl if peer == received.src)
        if low <= ttl <= high:
            if ttl != VRRP_TTL:
                inst.unicast_ttls[ttl] = inst.unicast_ttls.get(ttl, 0) + 1
            ttl = VRRP_TTL
    try:
        advert = decode(
            received.payload,
            src=received.src,
            dst=received.dst,
            ttl=ttl,
            version=2 if spec.version == 2 else 3,
            # RFC 3768 §7.1: the Auth Type must match ours, type 0 when none is configured.
            auth=(spec.auth or Auth(0)) if spec.version == 2 else None,
            counters=counters,
        )
    except AdvertError as err:
        inst.counters.received += 1
        inst.counters.count(err.reason)
        if spec.debug or log.isEnabledFor(logging.DEBUG):
            log.debug("(%s) discarded advert from %s: %s", inst.name, received.src, err)
        return None
    inst.counters.received += 1
    inst.counters.accepted += 1
    form = str(advert.checksum_form)
    inst.checksum_forms[form] = inst.checksum_forms.get(form, 0) + 1
    if advert.priority > 0:
        inst.last_master = str(received.src)
    return inst, advert
