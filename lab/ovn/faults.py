"""The fault catalogue's traffic faults on ``engine: ovn`` networks: ``table netdev lab_faults``.

:mod:`lab.faults` drops ``partition``, ``advert-loss`` and ``bfd-loss`` traffic in a ``table
bridge`` whose chain hooks the Linux bridge's forward path. An ``engine: ovn`` network has no
Linux bridge: its taps are ports of OVS's br-int, whose userspace datapath reads and writes them
through AF_PACKET sockets, so the bridge hook never sees a frame and those faults did nothing
(``tests/lab/test_ovn_faults.py`` shows it fails without this module). Nor does a netdev
*ingress* hook on the sender's tap help: AF_PACKET taps see a received frame before it.

What every frame to an instance does cross is its tap's transmit path: OVS hands the frame to
``dev_queue_xmit`` (or, with PACKET_QDISC_BYPASS, to the direct path, which runs the same hook),
where the netdev family's ``egress`` hook runs. So the faults drop there, on the way into the
receiving instance, in a chain bound to every ovn tap: ``oifname`` is the victim's tap, as with
the bridge. The sender, which the bridge told by ``iifname``, is known here only by what the
frame carries:

* ``partition`` and ``bfd-loss`` drop a frame whose Ethernet source is one of the sender's port
  MACs *or* whose IP source is one of its addresses (its fixed IPs and the EUI-64 link-local of
  its MAC): a frame sent from a MAC shared with the victim's peer (a VRRP virtual MAC) is still
  caught by its IP source, which keepalived's adverts and BFD take from the interface's own
  address (RFC 5798 §5.1.1.1). Frames sent from a shared MAC *and* a shared address (traffic of
  the VIP from a VMAC) are dropped toward whichever instance is cut from the one using them.
* ``advert-loss`` tells the source by IP source only, one rule per packet, so that a packet
  never takes two random draws.

The table is part of :mod:`lab.faults`'s one ``nft -f`` transaction in the fabric, so a change
of the bridge and of the netdev rules is atomic, as before; it is deleted with the bridge table.
Taps on a second chassis (``instances[].host``, :mod:`lab.ovn.hypervisor`) are in that
hypervisor's namespace: it gets the same table in a transaction of its own, committed in the
same stretch (:func:`tables`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.node import Namespace
    from lab.port import LabPort

#: The nftables family of the ovn half of the fault table.
FAMILY = "netdev"


def ovn_ports(lab: Lab, node: str | None = None) -> list[LabPort]:
    """The ports (of ``node``, or of every node) on ``engine: ovn`` networks."""
    ovn = lab.fabric.ovn
    if ovn is None:
        return []
    ports = lab.node(node).ports if node is not None else list(lab.fabric.ports.values())
    return [p for p in ports if ovn.has(p.network.name)]


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 link-local address the kernel derives from ``mac`` (RFC 4291 appendix A)."""
    octets = bytearray(int(x, 16) for x in mac.split(":"))
    octets[0] ^= 0x02
    eui = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui)


def _set(values: Iterable[object]) -> str:
    """An anonymous nft set of addresses (MACs, IPs)."""
    return "{ " + ", ".join(sorted({str(v) for v in values})) + " }"


def _names(names: Iterable[str]) -> str:
    """An anonymous nft set of interface names, quoted."""
    return "{ " + ", ".join(sorted({f'"{n}"' for n in names})) + " }"


def _by_ip(lab: Lab, node: str) -> list[tuple[str, str]]:
    """(match, VRRP protocol match's prefix) telling an IP packet sent by ``node``, per family."""
    ports = ovn_ports(lab, node)
    if not ports:
        return []
    v4 = [ip for p in ports for ip in p.ips if ip.version == 4]
    v6 = [ip for p in ports for ip in p.ips if ip.version == 6] + [link_local(p.mac) for p in ports]
    out = [(f"ip saddr {_set(v4)} ", "ip protocol")] if v4 else []
    return [*out, (f"ip6 saddr {_set(v6)} ", "ip6 nexthdr")]


def _sources(lab: Lab, node: str) -> list[str]:
    """The matches that tell any frame sent by ``node``: its MACs, or its IP sources."""
    ports = ovn_ports(lab, node)
    if not ports:
        return []
    return [f"ether saddr {_set(p.mac for p in ports)} ", *(m for m, _ in _by_ip(lab, node))]


def _toward(lab: Lab, node: str) -> str:
    return f"oifname {_names(p.tap for p in ovn_ports(lab, node))} "


def _paths(lab: Lab, a: str, b: str) -> list[str]:
    """The matches of every frame between ``a`` and ``b``, both ways (by MAC or by IP)."""
    out = []
    for src, dst in ((a, b), (b, a)):
        if ovn_ports(lab, dst):
            out += [_toward(lab, dst) + m for m in _sources(lab, src)]
    return out


def rules(
    lab: Lab,
    partitions: Iterable[tuple[str, str]],
    advert_loss: Mapping[str, float],
    bfd_loss: Iterable[tuple[str, str]],
    *,
    vrrp_proto: int,
    bfd_ports: Sequence[int],
) -> list[str]:
    """The egress chain's rules for the active faults (same comments as the bridge's rules,
    so counters and listings read alike)."""
    out: list[str] = []
    # Drops first: advert-loss's counters then count only adverts that no other fault took.
    for a, b in sorted(partitions):
        out += [f'{path}counter drop comment "partition {a}<->{b}"' for path in _paths(lab, a, b)]
    ports = "{ " + ", ".join(str(p) for p in bfd_ports) + " }"
    for a, b in sorted(bfd_loss):
        paths = [""] if a == "*" else _paths(lab, a, b)
        out += [
            f'{path}{proto} udp udp dport {ports} counter drop comment "bfd-loss {a}<->{b}"'
            for path in paths
            for proto in ("meta protocol ip ip protocol", "meta protocol ip6 ip6 nexthdr")
        ]
    for source, percent in sorted(advert_loss.items()):
        tag = f'comment "advert-loss {source}"'
        draw = "" if percent >= 100 else f"numgen random mod 10000 < {round(percent * 100)} "
        if source == "*":
            matches = [("meta protocol ip ", "ip protocol"), ("meta protocol ip6 ", "ip6 nexthdr")]
        else:
            matches = _by_ip(lab, source)
        for match, proto in matches:
            out.append(f"{match}{proto} {vrrp_proto} counter {draw}counter drop {tag}")
    return out


def namespaces(lab: Lab) -> dict[Namespace, list[LabPort]]:
    """The namespaces holding ovn taps (the fabric, and a second chassis's), with their ports."""
    out: dict[Namespace, list[LabPort]] = {}
    for port in ovn_ports(lab):
        out.setdefault(lab.fabric.tap_namespace(port), []).append(port)
    return out


def tables(lab: Lab, name: str, body: list[str]) -> dict[Namespace, str]:
    """Per namespace holding ovn taps, the netdev table ``name`` replacing any previous one
    (none when the lab has no ovn network). Its egress chain is bound to that namespace's
    taps, before anything else (priority -10). Every namespace gets the same rules: they name
    taps by ``oifname``, a string, which a namespace without that tap never matches."""
    rules_text = "\n".join(f"        {rule}" for rule in body)
    return {
        ns: (
            f"table {FAMILY} {name}\n"
            f"delete table {FAMILY} {name}\n"
            f"table {FAMILY} {name} {{\n"
            "    chain egress {\n"
            f"        type filter hook egress devices = {_names(p.tap for p in ports)} "
            "priority -10; policy accept;\n"
            f"{rules_text}\n"
            "    }\n"
            "}\n"
        )
        for ns, ports in namespaces(lab).items()
    }
