"""The fabric: the emulated cloud network, one namespace holding a bridge per network.

Every instance port is a veth pair: ``tap<port id>`` on a bridge in the fabric namespace, and
``ens3`` (with the port's MAC, IP and the network's MTU) inside the instance. The pair is
created in the fabric with its peer placed straight into the instance's namespace, so no
interface ever exists in the root namespace, even for an instant.

This module is the plain L2 data plane. The SDN behaviour (port security, broadcast policy,
the ARP-caching controller) is layered on the same bridge by ``lab.sdn``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError
from lab.node import Namespace
from lab.sandbox import Sandbox
from lab.sdn.client import Event
from lab.sdn.fabric_sdn import FabricSdn
from lab.sdn.ports import parse_pair
from lab.topology import (
    AllowedAddressPair,
    Instance,
    IPAddress,
    IPNetwork,
    Network,
    Port,
    Topology,
    bridge_name,
    tap_name,
)

IPLike = IPAddress | IPNetwork


@dataclass
class LabPort:
    """A port of a running lab: the model's port plus where it lives in the fabric and the node."""

    port: Port
    instance: Instance
    network: Network
    ifname: str
    """The interface inside the instance (``ens3``)."""
    tap: str
    """The fabric-side device (``tap`` + port id)."""
    allowed_address_pairs: list[AllowedAddressPair] = field(default_factory=list)
    """The current pairs: starts as the scenario's, changed at run time by ``port set``.

    Changes made from another terminal (``vrrp-lab port-set``) are in the fabric's state file,
    not here; :meth:`set_allowed_address` and friends refresh this list from it.
    """
    sdn: FabricSdn | None = field(default=None, repr=False, compare=False)
    """The fabric's SDN layer, which applies pair changes (set by :meth:`Fabric.apply_sdn`)."""

    @property
    def id(self) -> str:
        """The port id (a UUID, as Neutron's)."""
        assert self.port.id is not None
        return self.port.id

    @property
    def mac(self) -> str:
        """The port's MAC address."""
        assert self.port.mac_address is not None
        return self.port.mac_address

    @property
    def ips(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """The port's fixed IPs."""
        return [f.ip_address for f in self.port.fixed_ips]

    def set_allowed_address(self, ip: str | IPLike, mac: str | None = None) -> None:
        """Add an allowed address pair, like ``openstack port set --allowed-address
        ip-address=IP[,mac-address=MAC]``. ``ip`` may be a CIDR; no ``mac`` means the port's MAC.

        One nft transaction: it holds for the very next packet, and pairs already allowed never
        see a gap.
        """
        self._sdn().change(self, add=[parse_pair(str(ip), mac)])

    def unset_allowed_address(self, ip: str | IPLike, mac: str | None = None) -> None:
        """Remove an allowed address pair (``openstack port unset --allowed-address``).

        Without ``mac``, every pair for ``ip`` goes. Removing a pair the port lacks raises
        :class:`~lab.errors.UsageError`.
        """
        self._sdn().change(self, remove=[parse_pair(str(ip), mac)])

    def clear_allowed_addresses(self) -> None:
        """Remove every allowed address pair (``openstack port set --no-allowed-address``)."""
        self._sdn().change(self, clear=True)

    def _sdn(self) -> FabricSdn:
        if self.sdn is None:
            raise LabError(f"port {self.tap} is not part of a running lab's fabric")
        return self.sdn

    def interfaces(self) -> list[tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, str]]:
        """Each fixed IP with its subnet prefix, as configured on the instance's interface."""
        out = []
        for fixed in self.port.fixed_ips:
            subnet = self.network.subnet_for(fixed.ip_address)
            assert subnet is not None  # the topology validator guarantees it
            iface = ipaddress.ip_interface(f"{fixed.ip_address}/{subnet.cidr.prefixlen}")
            out.append((iface, str(subnet.cidr)))
        return out


class Fabric(Namespace):
    """The cloud network's namespace: bridges and tap ports. Extended by the SDN layer."""

    def __init__(self, sandbox: Sandbox, topology: Topology) -> None:
        super().__init__(sandbox, "fabric")
        self.topology = topology
        self.ports: dict[str, LabPort] = {}
        self.sdn = FabricSdn(self)
        """Port security, broadcast policy and the ARP controller (``lab.sdn``)."""

    def apply_sdn(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Apply every network's SDN profile; call once the bridges and all ports exist.

        ``defer`` registers the controller's teardown on the lab's LIFO stack.
        """
        for port in self.ports.values():
            port.sdn = self.sdn
        self.sdn.apply(defer)

    def check(self) -> None:
        """Raise :class:`~lab.errors.LabError` if the SDN controller has died.

        Waits and steps call it so that a lab whose controller is gone fails at once instead of
        carrying on as plain L2.
        """
        self.sdn.check()

    def arp_cache(self, network: str | None = None) -> list[Event]:
        """The SDN controller's ARP bindings: ``[{network, ip, mac, source, port, age, fixed}]``."""
        return self.sdn.arp_cache(network)

    def flush_arp_cache(self, network: str | None = None) -> int:
        """Forget the controller's learned bindings (fixed ones stay); return how many went."""
        return self.sdn.flush(network)

    def build_bridges(self) -> None:
        """One bridge per network: no STP delay, multicast flooded like a plain switch."""
        for net in self.topology.networks:
            name = bridge_name(net.name)
            self.ipr.link(
                "add",
                ifname=name,
                kind="bridge",
                mtu=net.mtu,
                br_stp_state=0,
                br_forward_delay=0,
                br_mcast_snooping=0,
            )
            self.ipr.link("set", index=self.bridge_index(net.name), state="up")

    def bridge_index(self, network: str) -> int:
        """The ifindex of a network's bridge."""
        return self.ipr.link_lookup(ifname=bridge_name(network))[0]

    def attach(self, instance: Instance, port: Port, ifname: str, node: Namespace) -> LabPort:
        """Create the veth pair of ``port``: tap on the bridge here, ``ifname`` inside ``node``."""
        net = self.topology.network(port.network)
        assert port.id is not None and port.mac_address is not None
        lab_port = LabPort(
            port, instance, net, ifname, tap_name(port.id), list(port.allowed_address_pairs)
        )
        self.ipr.link(
            "add",
            ifname=lab_port.tap,
            kind="veth",
            mtu=net.mtu,
            peer={
                "ifname": ifname,
                "address": port.mac_address,
                "mtu": net.mtu,
                "net_ns_fd": node.ns_fd("net"),
            },
        )
        tap_index = self.ipr.link_lookup(ifname=lab_port.tap)[0]
        self.ipr.link("set", index=tap_index, master=self.bridge_index(net.name), state="up")
        inner = node.ipr.link_lookup(ifname=ifname)[0]
        for iface, _ in lab_port.interfaces():
            # IPv6 addresses skip duplicate address detection: nothing else in the lab owns them,
            # and DAD would delay the first packet by a second.
            extra = {"flags": 0x80} if iface.version == 6 else {}  # IFA_F_NODAD
            node.ipr.addr(
                "add",
                index=inner,
                address=str(iface.ip),
                prefixlen=iface.network.prefixlen,
                **extra,
            )
        node.ipr.link("set", index=inner, state="up")
        self.ports[lab_port.id] = lab_port
        return lab_port
