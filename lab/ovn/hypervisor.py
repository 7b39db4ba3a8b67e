"""A second compute host for ``engine: ovn``: a chassis in a namespace of its own, and Geneve.

A scenario places instances with ``instances[].host`` (Nova's ``OS-EXT-SRV-ATTR:host``). The
first host is the fabric's chassis (:class:`lab.ovn.engine.OvnEngine`); each further one is a
:class:`Hypervisor`: a network namespace (named ``hv-<host>``, a keeper in the lab's sandbox
like every node, so parallel labs never meet) running its own Open_vSwitch database,
``ovs-vswitchd --disable-system`` with a netdev br-int, and ``ovn-controller``, every file in
that namespace's private /run (the same :data:`~lab.ovn.nb.RUN_DIR` path, another tmpfs).
Its instances' taps are created there and plugged into its br-int.

The chassis meet over an underlay: a veth pair from the fabric to each hypervisor, each end a
port of a netdev ``br-phy`` bridge whose internal port holds the chassis's tunnel address in
:data:`UNDERLAY` (RFC 2544's benchmarking range, which nothing else in a lab uses). The
address must be on an OVS bridge: the userspace datapath sends a tunnel's packets where its
own router (``ovs-router``, learnt from the kernel routes of its namespace) says, and only a
route through one of its own bridges can carry them; a kernel-only device there cannot. The
fabric's br-phy is a learning switch (standalone) joining every underlay veth. The
hypervisor's ovn-controller reaches the SB over TCP on the fabric's tunnel address, since the
SB's unix socket is in the fabric's private /run.

The underlay veths keep their TX checksum offload (unlike the instances' ports,
:func:`lab.ovn.fabric.disable_tx_checksum`): only OVS writes to them, through AF_PACKET, with
finished checksums, and the kernel's own traffic (the SB's TCP) leaves through br-phy's
internal port, a tap whose checksums the kernel finishes.

Everything here runs in the main thread (the namespaces' pyroute2 sockets are its own).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from lab.errors import LabError, WaitTimeout
from lab.node import Namespace
from lab.ovn.daemons import DaemonGroup, not_started, vsctl
from lab.ovn.nb import RUN_DIR, env_argv
from lab.wait import wait_until

#: The underlay's network; the fabric's chassis is ``.1``, the n-th hypervisor ``.(n+1)``.
UNDERLAY = ipaddress.IPv4Network("198.18.0.0/24")
#: The bridge that carries a chassis's tunnel address and its underlay port.
PHY_BRIDGE = "br-phy"
#: The underlay veth's name inside a hypervisor (the fabric's end is ``ul-<n>``).
UNDERLAY_PORT = "ul0"
#: Room for Geneve's outer headers (about 60 bytes) above any instance network's MTU.
UNDERLAY_MTU = 9000
#: How long the kernel may take to show a bridge's internal port once OVS created it.
PORT_SECONDS = 10.0


def tunnel_ip(index: int) -> ipaddress.IPv4Address:
    """Chassis ``index``'s (0: the fabric's) Geneve endpoint on the underlay."""
    return UNDERLAY[index + 1]


def tunnel_mac(address: ipaddress.IPv4Address) -> str:
    """The MAC of the br-phy holding ``address``: fixed (locally administered, from the
    address) rather than the one OVS would pick from the bridge's ports, so that the peers'
    neighbour caches can be told it before any frame (:func:`introduce`)."""
    return "02:00:" + ":".join(f"{b:02x}" for b in address.packed)


def plug_underlay(group: DaemonGroup, ports: list[str], address: ipaddress.IPv4Address) -> None:
    """Give ``group``'s chassis a netdev br-phy with ``ports`` and ``address`` on its internal
    port (its ovs-vswitchd must run)."""
    group.run(
        vsctl(
            "add-br",
            PHY_BRIDGE,
            "--",
            "set",
            "Bridge",
            PHY_BRIDGE,
            "datapath_type=netdev",
            "other-config:disable-in-band=true",
            f"other-config:hwaddr={tunnel_mac(address)}",
            *(a for port in ports for a in ("--", "add-port", PHY_BRIDGE, port)),
        )
    )
    ns = group.namespace

    def internal_port() -> int | None:
        group.check()
        return ns.link_index(PHY_BRIDGE)

    index = wait_until(
        internal_port,
        accept=lambda seen: seen is not None,
        timeout=PORT_SECONDS,
        what=f"{ns.name}: the internal port of {PHY_BRIDGE} to appear",
    )
    assert index is not None
    ns.ipr.addr("add", index=index, address=str(address), prefixlen=UNDERLAY.prefixlen)
    ns.ipr.link("set", index=index, state="up", mtu=UNDERLAY_MTU)


def introduce(
    a: DaemonGroup, a_ip: ipaddress.IPv4Address, b: DaemonGroup, b_ip: ipaddress.IPv4Address
) -> None:
    """Tell each chassis's tunnel neighbour cache the other's MAC (``tnl/neigh/set``).

    The userspace datapath learns a tunnel peer's MAC by snooping ARP replies on its bridge.
    The fabric's chassis had forwarded only the hypervisor's ARP request (for the SB
    connection), never a reply from it, and the first packet from the fabric to the
    hypervisor was lost (1 of 3 pings) while it resolved the peer. A chassis whose peers are
    known from the start loses nothing.
    """
    for group, peer_ip in ((a, b_ip), (b, a_ip)):
        group.run(
            env_argv(
                [
                    "ovs-appctl",
                    "-t",
                    f"{RUN_DIR}/ovs-vswitchd.ctl",
                    "tnl/neigh/set",
                    PHY_BRIDGE,
                    str(peer_ip),
                    tunnel_mac(peer_ip),
                ]
            )
        )


def connect(fabric: Namespace, hypervisor: Namespace, index: int) -> str:
    """Create the underlay veth between the fabric (``ul-<index>``) and ``hypervisor``
    (:data:`UNDERLAY_PORT`), both ends up; return the fabric's end."""
    name = f"ul-{index}"
    fabric.ipr.link(
        "add",
        ifname=name,
        kind="veth",
        mtu=UNDERLAY_MTU,
        peer={"ifname": UNDERLAY_PORT, "mtu": UNDERLAY_MTU, "net_ns_fd": hypervisor.ns_fd("net")},
    )
    for ns, ifname in ((fabric, name), (hypervisor, UNDERLAY_PORT)):
        link = ns.link_index(ifname)
        if link is None:
            raise LabError(f"{ns.name} has no link {ifname!r}, just created")
        ns.ipr.link("set", index=link, state="up")
    return name


class Hypervisor(DaemonGroup):
    """A compute host's chassis in its own namespace. :meth:`start` once, after the fabric's
    engine; :meth:`close` on the defer stack (registered by :meth:`start`)."""

    def __init__(self, namespace: Namespace, host: str, index: int) -> None:
        super().__init__(namespace, f"engine ovn, host {host}")
        self.host = host
        self.index = index
        """Its place among the chassis: 0 is the fabric's, so a hypervisor's is at least 1."""

    @property
    def address(self) -> ipaddress.IPv4Address:
        """Its Geneve endpoint."""
        return tunnel_ip(self.index)

    def start(self, defer: Callable[[str, Callable[[], Any]], None], sb_remote: str) -> None:
        """Start the Open_vSwitch database, ovs-vswitchd with br-int and br-phy, and
        ovn-controller (its connection is awaited by :meth:`await_controller`)."""
        self.path("").mkdir(mode=0o700, parents=True, exist_ok=True)
        defer(f"ovn chassis {self.host}", self.close)
        try:
            db = self.start_ovs_db()
            self._await_socket(db, "db.sock")
            self.start_switch(self.host, str(self.address), sb_remote)
            plug_underlay(self, [UNDERLAY_PORT], self.address)
            self.spawn_controller()
        except (LabError, WaitTimeout) as exc:
            raise not_started(exc, self.namespace.name) from None
