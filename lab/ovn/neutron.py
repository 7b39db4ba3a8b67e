"""Neutron ports → OVN ``Logical_Switch_Port`` rows, the way Neutron's OVN driver maps them.

Pure: no privileges, no process. What is followed, in ``openstack/neutron``:

- ``neutron/plugins/ml2/drivers/ovn/mech_driver/ovsdb/ovn_client.py``,
  ``OVNClient._get_port_options``: ``addresses`` holds ``"MAC IP..."`` (the port's MAC and
  fixed IPs) whenever the port has port security, a type, or DHCP options, followed by the
  bare MACs of allowed pairs whose MAC differs from the port's ("new_macs"); ``unknown`` is
  appended when the port has neither port security nor a type.
- the same file, ``OVNClient._get_allowed_addresses_from_port``: with port security off,
  ``port_security`` is empty; otherwise one entry ``"MAC IP... PAIR_IP..."`` where every pair
  with the port's own MAC adds its address, plus one ``"PAIR_MAC PAIR_IP"`` entry per pair with
  another MAC. This is the form before commit 57f481c8c8 ("[OVN] Make ML2/OVN compatible with
  AAP with IP+MAC", 2026), which writes ``"VRRPv3 MAC VMAC IP"`` entries that only OVN 26.03
  parses; Debian 12's OVN is 23.03.
- ``neutron/common/ovn/utils.py``, ``get_port_type_virtual_and_parents`` and
  ``get_virtual_port_parents``: a port whose fixed IP is the ``ip_address`` of other ports'
  allowed address pairs, those ports having a fixed IP in the same subnet, becomes
  ``type=virtual`` with ``options:virtual-ip`` (that IP) and ``options:virtual-parents`` (the
  parents' ids, comma-separated). ``OVNClient._set_unset_virtual_port_type`` does the same from
  the parent's side when its pairs change, for ports that are not bound (``VIF_TYPE_UNBOUND``):
  a port that only reserves an address, as operators create one for keepalived's VIP. A bound
  port cannot be virtual: ``utils.validate_port_binding_and_virtual_port`` (commit 68ecae5ff9,
  bug #2018529) refuses to bind it, so :func:`lsp_row` types only unbound ports and
  :func:`bound_virtual_ports` names the bound ones a build must refuse.
  Neutron's filter compares the stored pair string; the lab treats ``IP`` and ``IP/32`` (or
  ``/128``) as the same host pair, which is what a user writing either means.
- An allowed pair without a MAC takes the port's MAC (Neutron fills ``mac_address`` in on
  create: ``neutron/db/allowedaddresspairs_db.py``).

Orders inside a row follow the port's (fixed IPs, then pairs in the order given); OVN treats
``addresses`` and ``port_security`` as sets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: ``ovn_const.UNKNOWN_ADDR``: the address that lets a port send from and receive for any MAC.
UNKNOWN = "unknown"
#: ``ovn_const.LSP_TYPE_VIRTUAL``.
VIRTUAL = "virtual"


@dataclass(frozen=True)
class NeutronPort:
    """What the mapping needs of one Neutron port (``openstack port show``'s fields)."""

    id: str
    mac: str
    fixed_ips: tuple[str, ...]
    """The fixed IPs, as addresses."""
    subnets: tuple[str, ...]
    """The CIDR of each fixed IP's subnet, in the same order."""
    port_security: bool = True
    allowed_address_pairs: tuple[tuple[str, str | None], ...] = ()
    """``(ip_address, mac_address)``: an address or CIDR, and a MAC (None: the port's own)."""
    dhcp: bool = False
    """Some fixed IP's subnet has DHCP enabled, so Neutron gives the port DHCP options."""
    bound: bool = True
    """False for a port bound to no instance, that only reserves its fixed IP (a VIP)."""

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs with their MAC filled in, as Neutron stores them."""
        return [(ip, (mac or self.mac).lower()) for ip, mac in self.allowed_address_pairs]


@dataclass(frozen=True)
class LspRow:
    """The ``Logical_Switch_Port`` columns the lab sets: name, addresses, port_security, type,
    options."""

    name: str
    addresses: tuple[str, ...]
    port_security: tuple[str, ...]
    type: str = ""
    options: tuple[tuple[str, str], ...] = field(default=())

    def option(self, key: str) -> str | None:
        """An option's value, or None."""
        return dict(self.options).get(key)


def _host(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of a host pair (``IP``, ``IP/32`` or ``IP/128``); None for a wider CIDR."""
    net = ipaddress.ip_network(text, strict=False)
    return net.network_address if net.num_addresses == 1 else None


def port_security_of(port: NeutronPort) -> tuple[list[str], list[str]]:
    """``(port_security, new_macs)`` as ``_get_allowed_addresses_from_port`` computes them."""
    if not port.port_security:
        return [], []
    own = " ".join([port.mac.lower(), *port.fixed_ips])
    others: list[str] = []
    new_macs: list[str] = []
    for ip, mac in port.pairs():
        if mac == port.mac.lower():
            own += " " + ip
            continue
        entry = f"{mac} {ip}"
        if entry not in others:
            others.append(entry)
        if mac not in new_macs:
            new_macs.append(mac)
    return [own, *others], new_macs


def virtual_parents(port: NeutronPort, ports: Iterable[NeutronPort]) -> tuple[str, list[str]]:
    """``(virtual_ip, parent ids)`` for ``port``: its first fixed IP that other ports list as
    a host allowed pair while having a fixed IP in that IP's subnet. ``("", [])`` if none."""
    others = [p for p in ports if p.id != port.id]
    for ip, cidr in zip(port.fixed_ips, port.subnets, strict=True):
        vip = ipaddress.ip_address(ip)
        subnet = ipaddress.ip_network(cidr)
        parents = [
            p.id
            for p in others
            if any(_host(pair_ip) == vip for pair_ip, _ in p.allowed_address_pairs)
            and any(ipaddress.ip_address(f) in subnet for f in p.fixed_ips)
        ]
        if parents:
            return ip, parents
    return "", []


def lsp_row(port: NeutronPort, ports: Sequence[NeutronPort]) -> LspRow:
    """The row of ``port``, given every port of its network (for the virtual-port rule)."""
    vip, parents = virtual_parents(port, ports)
    # A bound port with parents is refused by Neutron (validate_port_binding_and_virtual_port);
    # the update path only ever types unbound ones (``_set_unset_virtual_port_type``).
    port_type = VIRTUAL if parents and not port.bound else ""
    options = (("virtual-ip", vip), ("virtual-parents", ",".join(parents))) if port_type else ()
    security, new_macs = port_security_of(port)
    addresses: list[str] = []
    if security or port_type or port.dhcp:
        addresses.append(" ".join([port.mac.lower(), *port.fixed_ips]))
        addresses.extend(new_macs)
    if not security and not port_type:
        addresses.append(UNKNOWN)
    return LspRow(port.id, tuple(addresses), tuple(security), port_type, options)


def lsp_rows(ports: Sequence[NeutronPort]) -> list[LspRow]:
    """Every port's row, in the ports' order: one logical switch's ports."""
    return [lsp_row(p, ports) for p in ports]


def bound_virtual_ports(ports: Sequence[NeutronPort]) -> list[tuple[str, str, list[str]]]:
    """``(port id, virtual IP, parents)`` of every bound port that other ports' pairs would
    make virtual: Neutron refuses to bind such a port
    (``validate_port_binding_and_virtual_port``)."""
    out = []
    for port in ports:
        if port.bound:
            vip, parents = virtual_parents(port, ports)
            if parents:
                out.append((port.id, vip, parents))
    return out
