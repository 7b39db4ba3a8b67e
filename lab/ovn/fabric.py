"""The OVN half of a lab's fabric: its networks as logical switches, its taps on br-int.

:class:`OvnFabric` is built by :class:`lab.fabric.Fabric` when some network has
``sdn: {engine: ovn}``. At :meth:`OvnFabric.apply` (all veth pairs exist) it starts the
engine, adds every tap of those networks to br-int with ``external_ids:iface-id=<port id>``
(how Nova's os-vif plugs a VIF for OVN), creates each logical switch with its ports as
:mod:`lab.ovn.neutron` maps them, and waits with ``--wait=hv`` until ovn-controller has
installed it all and every bound port is up. The pairs' state file then records each port's
mapping inputs, so that ``port-set`` (step or CLI) changes the NB the same way
(:func:`lab.sdn.ports.change_pairs`).
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from lab.errors import LabError, UsageError
from lab.node import Namespace
from lab.ovn.engine import BRIDGE, DEFAULT_CHASSIS, SB_PORT, DaemonGroup, OvnEngine, vsctl
from lab.ovn.events import BindingWatch
from lab.ovn.hypervisor import Hypervisor, connect, introduce, plug_underlay, tunnel_ip
from lab.ovn.nb import INSTALL_SECONDS, join, nbctl, neutron_json, row_commands, switch_name
from lab.ovn.neutron import NeutronPort, bound_virtual_ports, lsp_rows
from lab.port import LabPort
from lab.sdn.ports import locked_state
from lab.topology import Network, Topology, VirtualIP

#: ``SIOCETHTOOL`` and ``ETHTOOL_STXCSUM`` (linux/sockios.h, linux/ethtool.h).
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def disable_tx_checksum(node: Namespace, ifname: str) -> None:
    """Turn off ``ifname``'s TX checksum offload inside ``node`` (``ethtool -K IF tx off``).

    A veth hands its peer a UDP or TCP datagram whose checksum is left for the NIC to finish
    (CHECKSUM_PARTIAL). The kernel bridge passes that state along; OVS's userspace datapath
    reads the frame through AF_PACKET and sends it on as bytes, so the receiver sees a wrong
    checksum and drops the datagram (ICMP, checksummed in software, passes: pings work while
    UDP probes die). A VM's virtio NIC finishes the checksum before OVS sees the frame; doing
    it in the instance's kernel is the equivalent here.
    """
    value = array.array("I", [ETHTOOL_STXCSUM, 0])
    request = struct.pack("16sP", ifname.encode(), value.buffer_info()[0])
    with node.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)


def neutron_port(port: LabPort) -> NeutronPort:
    """A lab port as the mapping sees it (pairs as they stand now)."""
    return NeutronPort(
        id=port.id,
        mac=port.mac,
        fixed_ips=tuple(str(ip) for ip in port.ips),
        subnets=tuple(cidr for _, cidr in port.interfaces()),
        port_security=port.port.port_security_enabled,
        allowed_address_pairs=tuple(
            (str(p.ip_address), p.mac_address) for p in port.allowed_address_pairs
        ),
        dhcp=any(
            s.enable_dhcp
            for f in port.port.fixed_ips
            for s in port.network.subnets
            if f.ip_address in s.cidr
        ),
    )


def reserved_port(vip: VirtualIP, network: Network) -> NeutronPort:
    """The port a ``vips:`` entry with ``port:`` reserves: unbound, holding only the VIP."""
    assert vip.port is not None
    subnet = network.subnet_for(vip.address)
    assert subnet is not None  # the topology validator guarantees it
    return NeutronPort(
        id=vip.port_id,
        mac=vip.port_mac,
        fixed_ips=(str(vip.address),),
        subnets=(str(subnet.cidr),),
        port_security=True,
        dhcp=subnet.enable_dhcp,
        bound=False,
    )


class OvnFabric:
    """The networks of a fabric that run on the real OVN (``lab.fabric.ovn``)."""

    def __init__(
        self,
        namespace: Namespace,
        topology: Topology,
        ports: Mapping[str, LabPort],
        hypervisors: Mapping[str, Namespace],
        tap_namespace: Callable[[LabPort], Namespace],
    ) -> None:
        self.namespace = namespace
        self.topology = topology
        self.ports = ports
        self.networks = [n for n in topology.networks if n.sdn.engine == "ovn"]
        self.engine = OvnEngine(namespace)
        self.hypervisors = [
            Hypervisor(ns, host, index) for index, (host, ns) in enumerate(hypervisors.items(), 1)
        ]
        """The chassis past the fabric's, one per further compute host."""
        self.tap_namespace = tap_namespace
        hosts = topology.hosts()
        self.chassis_names = [*hosts[:1], *(h.host for h in self.hypervisors)] or [DEFAULT_CHASSIS]
        """Every chassis's name (its system-id: the host's name), the fabric's first."""
        self.install_seconds: float | None = None
        """How long the build's NB transaction took to be installed (``--wait=hv``)."""
        self.bindings: BindingWatch | None = None
        """OVN's Port_Binding changes and virtual-port claims, from the end of the build."""

    def has(self, network: str) -> bool:
        """True when ``network`` runs on OVN."""
        return any(n.name == network for n in self.networks)

    def network_ports(self, network: str) -> list[NeutronPort]:
        """The Neutron ports of ``network``: the instances' and the reserved ones."""
        ports = [neutron_port(p) for p in self.ports.values() if p.network.name == network]
        net = self.topology.network(network)
        ports += [
            reserved_port(v, net)
            for v in self.topology.vips
            if v.network == network and v.port is not None
        ]
        return ports

    def apply(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Start OVS/OVN, plug the taps, create the switches and ports, wait until installed."""
        switches: dict[str, list[NeutronPort]] = {}
        for net in self.networks:
            switches[net.name] = ports = self.network_ports(net.name)
            for port_id, vip, parents in bound_virtual_ports(ports):
                raise UsageError(
                    f"network {net.name}: port {port_id} is bound to an instance, but its fixed "
                    f"IP {vip} is an allowed address pair of {', '.join(parents)}: Neutron's OVN "
                    "driver refuses to bind a port that would be virtual; reserve the VIP with "
                    "vips: [{address: ..., port: {}}] instead"
                )
        self._start_chassis(defer)
        taps = [p for p in self.ports.values() if self.has(p.network.name)]
        for group in self.groups():
            mine = [p for p in taps if self.tap_namespace(p) is group.namespace]
            if mine:
                # --may-exist: the command may be run again after a restart of ovn-controller.
                self._restarting(lambda g=group, m=mine: g.run(vsctl(*plug_commands(m))))
        commands: list[list[str]] = []
        for net in self.networks:
            ls = switch_name(net.name)
            commands.append(["ls-add", ls])
            commands += [row_commands(r, create=ls) for r in lsp_rows(switches[net.name])]
        began = time.perf_counter()
        # Run again only when the engine's check refused to run it (a dead ovn-controller is
        # found before the command, and the command does not involve ovn-controller).
        self._restarting(lambda: self.engine.run(nbctl(join(commands))))
        self._restarting(lambda: self._await_installed(taps))
        self.install_seconds = time.perf_counter() - began
        names = {p.id: p.instance.name for p in taps}
        names.update(
            {v.port_id: f"vip {v.address}" for v in self.topology.vips if v.port is not None}
        )
        self.bindings = BindingWatch(self.namespace, names, self.engine.chassis_ids())
        defer("ovn binding watch", self.bindings.close)

    def groups(self) -> list[DaemonGroup]:
        """Every chassis's daemons, the fabric's (with the central part) first."""
        return [self.engine, *self.hypervisors]

    def _start_chassis(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Start the engine and every further chassis; wait until each is in the SB."""
        if not self.hypervisors:
            self.engine.start(defer, system_id=self.chassis_names[0])
            self.engine.await_chassis(self.chassis_names)
            return
        hub = tunnel_ip(0)
        self.engine.start(defer, system_id=self.chassis_names[0], encap_ip=str(hub))
        ends = [connect(self.namespace, h.namespace, h.index) for h in self.hypervisors]
        plug_underlay(self.engine, ends, hub)
        self.engine.serve_sb(str(hub))
        for hypervisor in self.hypervisors:
            hypervisor.start(defer, f"tcp:{hub}:{SB_PORT}")
            introduce(self.engine, hub, hypervisor, hypervisor.address)
        for hypervisor in self.hypervisors:
            hypervisor.await_controller(f"{hypervisor.label}: ovn-controller to connect to the SB")
        self.engine.await_chassis(self.chassis_names)

    def port_chassis(self, port_id: str) -> str | None:
        """The chassis (its host's name) a logical port is bound to now, or None."""
        return self.engine.port_chassis(port_id)

    def _restarting(self, action: Callable[[], Any]) -> None:
        """Run a build step; if an ovn-controller died of a signal meanwhile, restart it (once
        per chassis and build, :meth:`DaemonGroup.restart_controller`) and run the step again.
        The crash was seen during the install wait and, once (2026-12-07), before the taps
        were added (the engine's check refused the add-port), so every step after the
        engine's start is covered."""
        try:
            action()
        except LabError:
            crashed = [g for g in self.groups() if g.controller_crashed()]
            if not crashed or any(g.restarts for g in crashed):
                raise
            for group in crashed:
                group.restart_controller()
            action()

    def events(self) -> list[dict[str, Any]]:
        """OVN's events so far (``bind-vport``, ``port-binding``), on the lab clock."""
        return self.bindings.snapshot() if self.bindings is not None else []

    def _await_installed(self, taps: list[LabPort]) -> None:
        # --wait=hv says ovn-controller has caught up with the NB; `up` says it has also
        # claimed each bound port (its Port_Binding is this chassis's).
        self.engine.run(nbctl(["sync"], wait=True), timeout=INSTALL_SECONDS + 5)
        self.engine.run(
            nbctl(join(["wait-until", "Logical_Switch_Port", p.id, "up=true"] for p in taps)),
            timeout=INSTALL_SECONDS + 5,
        )

    def record_state(self, state_path: Any) -> None:
        """Mark the ovn ports in the pairs' state file and add the reserved ports."""
        with locked_state(state_path) as state:
            for port in self.ports.values():
                if self.has(port.network.name):
                    entry = state["ports"][port.id]
                    entry["engine"] = "ovn"
                    entry["neutron"] = neutron_json(neutron_port(port))
            state["ovn_reserved"] = {
                net.name: [neutron_json(p) for p in self.network_ports(net.name) if not p.bound]
                for net in self.networks
            }

    def check(self) -> None:
        """Raise :class:`~lab.errors.LabError` if an OVS/OVN daemon has died."""
        for group in self.groups():
            group.check()


def plug_commands(ports: list[LabPort]) -> list[str]:
    """``ovs-vsctl`` arguments adding each port's tap to br-int with its ``iface-id``, as
    os-vif plugs a VIF for OVN."""
    return join(
        [
            "--may-exist",
            "add-port",
            BRIDGE,
            p.tap,
            "--",
            "set",
            "Interface",
            p.tap,
            f"external_ids:iface-id={p.id}",
        ]
        for p in ports
    )
