"""A port of a running lab: the scenario's port, where it lives, and its allowed address pairs.

The model sits below both the nodes that hold ports and the fabric that attaches them, so that
neither has to import the other to name a port. The SDN layer that applies pair changes is
reached through :class:`PairChanger`, which the fabric's SDN layer satisfies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from lab.errors import LabError
from lab.sdn.ports import parse_pair
from lab.sdn.ruleset import Pair
from lab.topology import AllowedAddressPair, Instance, IPAddress, IPNetwork, Network, Port

IPLike = IPAddress | IPNetwork


class PairChanger(Protocol):
    """What a port needs of its fabric's SDN layer: one change to its allowed address pairs."""

    def change(
        self,
        port: LabPort,
        *,
        add: Iterable[Pair] = (),
        remove: Iterable[Pair] = (),
        clear: bool = False,
    ) -> list[Pair]:
        """Apply the change to ``port`` in one transaction; return its new pairs."""
        ...


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
    install_seconds: float | None = field(default=None, compare=False)
    """On an ``engine: ovn`` network: how long the last pair change took to be installed
    (``ovn-nbctl --wait=hv``); None on the emulated engine, whose nft change is synchronous."""
    sdn: PairChanger | None = field(default=None, repr=False, compare=False)
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

    def _sdn(self) -> PairChanger:
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
