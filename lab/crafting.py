"""Crafted frames: VRRP adverts with any field, valid or not, and the ARP and NA frames a
neighbour announces itself with. The conformance tester (:mod:`lab.conformance.bench`) and the
``inject`` fault (:mod:`lab.inject`) both put these on the wire.

The VRRP message comes from :func:`vrrp.packet.encode`, the lab's one codec; a field the codec
refuses to build (a version other than 2 or 3, VRID 0, a count that disagrees with the
addresses) is patched into its bytes afterwards, with the checksum recomputed, so that the one
defect asked for is the only one. scapy frames the rest: the IP header's length and IPv4
header checksum follow the message, so only the VRRP fields carry a defect.

Pure: no I/O, no clock. scapy is imported when a frame is first built, not when the lab is.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

from vrrp.packet import Advert, ChecksumForm, compute_checksum, encode

__all__ = [
    "BROADCAST",
    "arp_frame",
    "checksum_form_of",
    "group_mac",
    "na_frame",
    "vrrp_frame",
    "vrrp_message",
]

#: The Ethernet broadcast address.
BROADCAST = "ff:ff:ff:ff:ff:ff"


def checksum_form_of(version: int) -> ChecksumForm:
    """The checksum form a deployed router sends for ``version``: VRRPv2's message-only sum,
    or VRRPv3's with the pseudo-header (RFC 5798, what keepalived and FRR send)."""
    return ChecksumForm.RFC3768 if version == 2 else ChecksumForm.RFC5798


def vrrp_message(
    priority: int,
    *,
    src: str,
    dst: str,
    addresses: Sequence[str],
    vrid: int = 1,
    interval: float = 1.0,
    version: int = 3,
    kind: int = 1,
    form: ChecksumForm | None = None,
    checksum: int | None = None,
    bad_checksum: bool = False,
    count: int | None = None,
    truncate: int | None = None,
) -> bytes:
    """A VRRP message (the IP payload) with exactly the defects asked for.

    ``version`` other than 2 or 3, ``vrid`` 0 and ``count`` are patched in after encoding, the
    checksum recomputed; ``checksum`` forces the field's value, ``bad_checksum`` writes the
    valid one with every bit flipped; ``truncate`` cuts the message to that many octets;
    ``interval`` is seconds (whole seconds for VRRPv2). ``form`` defaults to what a router of
    that version sends (:func:`checksum_form_of`).
    """
    wire_version = version if version in (2, 3) else 3
    form = form or checksum_form_of(wire_version)
    wire_vrid = vrid or 1
    ips = tuple(ipaddress.ip_address(a) for a in addresses)
    if wire_version == 2:
        advert = Advert.v2(wire_vrid, priority, ips, interval_s=int(interval))
    else:
        advert = Advert(
            vrid=wire_vrid,
            priority=priority,
            addresses=ips,
            version=3,
            interval_cs=round(interval * 100),
            type=kind,
        )
    message = bytearray(encode(advert, src=src, dst=dst, checksum_form=form))
    patched = False
    if version != wire_version:
        message[0] = (version << 4) | (message[0] & 0x0F)
        patched = True
    if vrid != wire_vrid:
        message[1] = vrid
        patched = True
    if count is not None:
        message[3] = count
        patched = True
    if patched:
        # Summed as the wire version: the checksum stays right, so the patch is the defect.
        fixed = compute_checksum(bytes(message), src=src, dst=dst, version=wire_version, form=form)
        message[6:8] = struct.pack("!H", fixed)
    if checksum is not None:
        message[6:8] = struct.pack("!H", checksum)
    elif bad_checksum:
        message[6:8] = struct.pack("!H", ~struct.unpack("!H", message[6:8])[0] & 0xFFFF)
    out = bytes(message)
    return out if truncate is None else out[:truncate]


def group_mac(dst: str) -> str | None:
    """The Ethernet multicast address of an IP multicast ``dst`` (RFC 1112 §6.4, RFC 2464
    §7), or None for a unicast address."""
    ip = ipaddress.ip_address(dst)
    if not ip.is_multicast:
        return None
    if ip.version == 4:
        low = ip.packed[1:]
        return "01:00:5e:" + bytes([low[0] & 0x7F, low[1], low[2]]).hex(":")
    return "33:33:" + ip.packed[-4:].hex(":")


def vrrp_frame(
    message: bytes, *, src: str, dst: str, src_mac: str, dst_mac: str, ttl: int = 255
) -> bytes:
    """An Ethernet frame carrying the VRRP ``message`` from ``src`` to ``dst``, TTL (hop limit)
    ``ttl``, traffic class 0xc0 as routers send it."""
    from scapy.layers.inet import IP  # scapy is heavy: imported when a frame is built
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    l3 = (
        IP(src=src, dst=dst, ttl=ttl, proto=112, tos=0xC0)
        if ipaddress.ip_address(src).version == 4
        else IPv6(src=src, dst=dst, hlim=ttl, nh=112, tc=0xC0)
    )
    return bytes(Ether(dst=dst_mac, src=src_mac) / l3 / Raw(message))


def arp_frame(
    op: int,
    *,
    sender_mac: str,
    sender_ip: str,
    target_ip: str,
    target_mac: str = "00:00:00:00:00:00",
    src_mac: str | None = None,
    dst_mac: str = BROADCAST,
) -> bytes:
    """An ARP request (``op`` 1) or reply (2); a gratuitous one has ``target_ip`` =
    ``sender_ip``. ``src_mac`` is the Ethernet source (default: the sender's MAC)."""
    from scapy.layers.l2 import ARP, Ether

    return bytes(
        Ether(dst=dst_mac, src=src_mac or sender_mac)
        / ARP(op=op, hwsrc=sender_mac, psrc=sender_ip, hwdst=target_mac, pdst=target_ip)
    )


def na_frame(*, target: str, mac: str, src: str, src_mac: str | None = None) -> bytes:
    """An unsolicited Neighbor Advertisement for ``target`` at ``mac``, Override set, from
    ``src`` to all nodes (ff02::1), hop limit 255 (RFC 4861 §4.4, §7.2.6)."""
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    return bytes(
        Ether(dst="33:33:00:00:00:01", src=src_mac or mac)
        / IPv6(src=src, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt=target, R=0, S=0, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )
