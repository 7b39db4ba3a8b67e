"""The fabric: the emulated cloud network, one namespace holding a bridge per network.

Every instance port is a veth pair: ``tap<port id>`` on a bridge in the fabric namespace, and
``ens3`` (with the port's MAC, IP and the network's MTU) inside the instance. The pair is
created in the fabric with its peer placed straight into the instance's namespace, so no
interface ever exists in the root namespace, even for an instant.

This module is the plain L2 data plane. The SDN behaviour (port security, broadcast policy,
the ARP-caching controller) is layered on the same bridge by ``lab.sdn``. A network with
``sdn: {engine: ovn}`` gets no bridge: its taps are plugged into the real OVS/OVN's br-int by
``lab.ovn.fabric`` instead. An instance placed on a further compute host
(``instances[].host``) has the taps of its ovn ports in that host's hypervisor namespace
(``lab.ovn.hypervisor``); :meth:`Fabric.tap_namespace` says where any port's tap lives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.errors import LabError
from lab.node import Namespace
from lab.ovn.fabric import OvnFabric, disable_tx_checksum
from lab.port import LabPort
from lab.sandbox import Sandbox
from lab.sdn.client import Event
from lab.sdn.fabric_sdn import FabricSdn
from lab.topology import Instance, Port, Topology, bridge_name, hypervisor_name, tap_name

#: ``LabPort`` stays importable from here; the model lives in :mod:`lab.port`, below the nodes.
__all__ = ["Fabric", "LabPort"]


class Fabric(Namespace):
    """The cloud network's namespace: bridges and tap ports. Extended by the SDN layer."""

    def __init__(self, sandbox: Sandbox, topology: Topology) -> None:
        super().__init__(sandbox, "fabric")
        self.topology = topology
        self.ports: dict[str, LabPort] = {}
        self._bridges: dict[str, int] = {}
        """Each network's bridge index, by network name (engine ``emulated`` only)."""
        self.sdn = FabricSdn(self, topology, self.ports)
        """Port security, broadcast policy and the ARP controller (``lab.sdn``)."""
        on_ovn = any(n.sdn.engine == "ovn" for n in topology.networks)
        self.hypervisors: dict[str, Namespace] = (
            {h: Namespace(sandbox, hypervisor_name(h), h) for h in topology.hosts()[1:]}
            if on_ovn
            else {}
        )
        """The namespaces of the compute hosts past the first (``instances[].host``), by host:
        each runs an OVN chassis (:mod:`lab.ovn.hypervisor`); the first host's is this one."""
        self.ovn: OvnFabric | None = (
            OvnFabric(self, topology, self.ports, self.hypervisors, self.tap_namespace)
            if on_ovn
            else None
        )
        """The networks on the real OVS/OVN (``sdn: {engine: ovn}``), when there are any."""

    def tap_namespace(self, port: LabPort) -> Namespace:
        """The namespace ``port``'s tap lives in: the hypervisor's of its instance's host for a
        port on an ``engine: ovn`` network, else the fabric. Everything that reaches a tap
        (capture, traffic and link faults, the OVS plugging) asks here."""
        host = port.instance.host
        if port.network.sdn.engine == "ovn" and host in self.hypervisors:
            return self.hypervisors[host]
        return self

    def tap_namespaces(self) -> dict[Namespace, list[LabPort]]:
        """Every namespace holding taps, the fabric first, with its ports."""
        out: dict[Namespace, list[LabPort]] = {self: []}
        for port in self.ports.values():
            out.setdefault(self.tap_namespace(port), []).append(port)
        return out

    def apply_sdn(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Apply every network's SDN profile; call once the bridges and all ports exist.

        ``defer`` registers the controller's teardown on the lab's LIFO stack.
        """
        for port in self.ports.values():
            port.sdn = self.sdn
        if self.ovn is not None:
            self.ovn.apply(defer)
        self.sdn.apply(defer)
        if self.ovn is not None:
            self.ovn.record_state(self.sdn.state_path)

    def check(self) -> None:
        """Raise :class:`~lab.errors.LabError` if the SDN controller has died.

        Waits and steps call it so that a lab whose controller is gone fails at once instead of
        carrying on as plain L2. The same holds for the OVS/OVN daemons of engine ovn.
        """
        self.sdn.check()
        if self.ovn is not None:
            self.ovn.check()

    def arp_cache(self, network: str | None = None) -> list[Event]:
        """The SDN controller's ARP bindings: ``[{network, ip, mac, source, port, age, fixed}]``."""
        return self.sdn.arp_cache(network)

    def flush_arp_cache(self, network: str | None = None) -> int:
        """Forget the controller's learned bindings (fixed ones stay); return how many went."""
        return self.sdn.flush(network)

    def build_bridges(self) -> None:
        """One bridge per network: no STP delay, multicast flooded like a plain switch."""
        for net in self.topology.networks:
            if net.sdn.engine == "ovn":
                continue  # br-int of lab.ovn carries it
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
            self._bridges[net.name] = self._index(name)
            self.ipr.link("set", index=self._bridges[net.name], state="up")

    def bridge_index(self, network: str) -> int:
        """The ifindex of a network's bridge."""
        return self._bridges[network]

    def _index(self, ifname: str, node: Namespace | None = None) -> int:
        """The index of a link the lab just made, here or in ``node`` (never stranding a
        netlink ACK on a lab-long socket: :func:`lab.node.link_index`)."""
        where = node or self
        index = where.link_index(ifname)
        if index is None:
            raise LabError(f"{where.name} has no link {ifname!r}, just created")
        return index

    def attach(self, instance: Instance, port: Port, ifname: str, node: Namespace) -> LabPort:
        """Create the veth pair of ``port``: tap on the bridge here, ``ifname`` inside ``node``."""
        net = self.topology.network(port.network)
        assert port.id is not None and port.mac_address is not None
        lab_port = LabPort(
            port, instance, net, ifname, tap_name(port.id), list(port.allowed_address_pairs)
        )
        where = self.tap_namespace(lab_port)
        where.ipr.link(
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
        tap_index = self._index(lab_port.tap, where)
        if net.sdn.engine == "ovn":
            # Plugged into br-int by lab.ovn.fabric once every port exists (one transaction).
            where.ipr.link("set", index=tap_index, state="up")
        else:
            self.ipr.link("set", index=tap_index, master=self.bridge_index(net.name), state="up")
        inner = self._index(ifname, node)
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
        if net.sdn.engine == "ovn":
            disable_tx_checksum(node, ifname)
        node.ipr.link("set", index=inner, state="up")
        self.ports[lab_port.id] = lab_port
        return lab_port
