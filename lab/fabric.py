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
from dataclasses import dataclass, field

from lab.node import Namespace
from lab.sandbox import Sandbox
from lab.topology import (
    AllowedAddressPair,
    Instance,
    Network,
    Port,
    Topology,
    bridge_name,
    tap_name,
)


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
    """The current pairs: starts as the scenario's, changed at run time by ``port set``."""

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
