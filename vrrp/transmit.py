"""What an instance puts on the wire: its adverts and its GARP / unsolicited NA batches.

An advert is encoded once per (priority, interval) and kept on the instance, then sent to the
group or to each ``unicast_peer`` from ``unicast_src_ip`` or the interface's primary address.
GARPs (IPv4) and unsolicited NAs (IPv6) carry the VMAC or the interface's MAC and leave from
the base interface. When they are sent (now, after ``garp_master_delay``, every
``garp_master_refresh``) is the daemon's timer heap's business, not this module's.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address, ip_address

from vrrp.instance import Instance
from vrrp.netio import FrameSender, Links, garp_frame, unsolicited_na_frame
from vrrp.packet import Advert, encode
from vrrp.state import State

__all__ = ["garp_mac", "send_advert", "send_garps", "send_lower_prio_garps"]

log = logging.getLogger("vrrp")


def send_advert(inst: Instance, priority: int, interval_cs: int) -> None:
    """Send ``inst``'s advert with ``priority`` and ``interval_cs`` to each destination."""
    key = (priority, interval_cs)
    packets = inst.advert_cache.get(key)
    if packets is None:
        spec = inst.spec
        addresses = tuple(v.address.ip for v in spec.vips)
        if spec.version == 2:
            auth = spec.auth
            advert = Advert(
                vrid=spec.vrid,
                priority=priority,
                addresses=addresses,
                version=2,
                interval_cs=interval_cs,
                auth_type=auth.type if auth else 0,
                auth_data=auth.data.ljust(8, b"\0") if auth else bytes(8),
            )
        else:
            advert = Advert(
                vrid=spec.vrid,
                priority=priority,
                addresses=addresses,
                version=3,
                interval_cs=interval_cs,
            )
        packets = [
            (
                encode(advert, src=inst.primary_ip, dst=dst, checksum_form=spec.checksum_form),
                dst,
            )
            for dst in inst.destinations()
        ]
        inst.advert_cache[key] = packets
    for payload, dst in packets:
        if inst.tx.send(payload, inst.primary_ip, dst):
            inst.adverts_sent += 1
        else:
            inst.send_errors += 1
            if inst.send_errors == 1:  # once: a lost advert every period must not flood
                log.warning(
                    "(%s) cannot send adverts from %s on %s to %s (see status)",
                    inst.name,
                    inst.primary_ip,
                    inst.tx.ifname,
                    dst,
                )


def garp_mac(inst: Instance, links: Links | None) -> str | None:
    """The source MAC of ``inst``'s GARPs: the VMAC, or the interface's own MAC."""
    if inst.spec.garp_mac_is_vmac:
        return inst.spec.vmac_address
    assert links is not None
    return links.mac(inst.spec.interface)


def send_garps(frames: FrameSender, inst: Instance, vips: tuple[str, ...], repeat: int) -> None:
    """Send ``repeat`` GARPs (IPv4) or unsolicited NAs (IPv6) for each of ``vips``."""
    mac = inst.garp_mac
    if mac is None:
        return
    batch = []
    for vip in vips:
        addr = ip_address(vip)
        if isinstance(addr, IPv4Address):
            batch.append(garp_frame(addr, mac))
        elif isinstance(addr, IPv6Address):
            batch.append(unsolicited_na_frame(addr, mac))
    # GARPs leave from the base interface carrying the VMAC, as keepalived sends them.
    for _ in range(repeat):
        for frame in batch:
            if frames.send(inst.spec.interface, frame):
                inst.garps_sent += 1


def send_lower_prio_garps(frames: FrameSender, inst: Instance) -> bool:
    """A Master that heard an advert losing to it announces its VIPs again, with
    ``garp_lower_prio_repeat`` GARPs / NAs per VIP, as keepalived 2.2.7 does (vrrp.c,
    ``vrrp_state_master_rx``).

    The loser took over by mistake (a BFD false positive, a partition that healed), and its
    own GARPs taught every learning bridge the VMAC on its port; the Master's adverts may
    leave from its base MAC (``vmac_xmit_base``), so only a GARP teaches the VMAC back. RFC
    5798 §6.4.3 discards the losing advert: no advert answers it here (RFC 9568 mode does,
    in the state machine), only the announcement. The loser may announce after this batch
    (its GARPs follow its first advert): keepalived sends another batch
    ``garp_lower_prio_delay`` later, and the caller schedules it when this returns True.
    """
    garp = inst.spec.garp
    if inst.machine.state is not State.MASTER or not garp.lower_prio_repeat:
        return False
    send_garps(frames, inst, inst.machine.params.vips, garp.lower_prio_repeat)
    return garp.lower_prio_delay > 0
