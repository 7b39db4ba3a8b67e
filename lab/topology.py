"""The topology model, in OpenStack's nouns: networks, subnets, ports and instances.

A scenario file is validated into these models. Field names follow Neutron's API
(``fixed_ips``, ``allowed_address_pairs``, ``port_security_enabled``, ``allocation_pools``) so
that a user can copy values from ``openstack port show`` and ``openstack subnet show``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.sdn.profiles import SdnConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
#: Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
IFNAMSIZ = 15
#: How many compute hosts (OVN chassis) ``instances[].host`` may name: two are built and
#: tested (lab.ovn.hypervisor); the underlay is a switch, so more would need only testing.
MAX_HOSTS = 2


def hypervisor_name(host: str) -> str:
    """The namespace (``vrrp-lab shell`` name) of a compute host's chassis, past the first."""
    return f"hv-{host}"


class Model(BaseModel):
    """Base of every scenario model: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_mac(value: str) -> str:
    """Lower-case a MAC written with ``:`` or ``-`` separators; reject anything else."""
    mac = str(value).strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ValueError(
            f"{value!r} is not a MAC address (expected six hex pairs, e.g. fa:16:3e:8d:dc:bb)"
        )
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast MAC; a port needs a unicast MAC")
    return mac


def check_name(value: str, what: str) -> str:
    """Names become parts of interface names and hostnames: keep them short and plain."""
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what} name (expected a letter, then up to 31 letters, "
            "digits, '_' or '-')"
        )
    return value


class AllocationPool(Model):
    """A DHCP allocation range of a subnet, as ``openstack subnet show`` prints it."""

    start: IPAddress
    end: IPAddress

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return ip.version == self.start.version and self.start <= ip <= self.end

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


class Subnet(Model):
    """A Neutron subnet: CIDR, gateway and allocation pools. Addresses are assigned statically."""

    name: str | None = None
    cidr: IPNetwork
    gateway_ip: IPAddress | None = None
    allocation_pools: list[AllocationPool] = Field(default_factory=list)
    enable_dhcp: bool = Field(
        True, description="Accepted for fidelity; the lab assigns statically."
    )
    dns_nameservers: list[IPAddress] = Field(
        default_factory=list, description="Accepted for fidelity; no traffic leaves the lab."
    )

    @field_validator("cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        try:
            return ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network address in CIDR form ({exc})") from None

    @model_validator(mode="after")
    def _inside(self) -> Subnet:
        if self.gateway_ip is not None and self.gateway_ip not in self.cidr:
            raise ValueError(f"gateway_ip: {self.gateway_ip} is outside cidr {self.cidr}")
        for pool in self.allocation_pools:
            if pool.start not in self.cidr or pool.end not in self.cidr:
                raise ValueError(f"allocation_pools: {pool} is not inside cidr {self.cidr}")
            if pool.start > pool.end:
                raise ValueError(f"allocation_pools: {pool} ends before it starts")
        return self

    def pool_holding(self, ip: IPAddress) -> AllocationPool | None:
        """The allocation pool that contains ``ip``, if any."""
        return next((pool for pool in self.allocation_pools if ip in pool), None)


class Network(Model):
    """A Neutron network: one L2 segment (a bridge in the fabric) with its subnets."""

    name: str
    mtu: int = Field(1500, ge=68, le=9000)
    subnets: list[Subnet] = Field(min_length=1)
    sdn: SdnConfig = Field(
        default_factory=SdnConfig,
        description="The emulated SDN of this network: a profile plus knob overrides "
        "(docs/sdn-profiles.md). Default: l2-plain, a bare bridge.",
    )

    _check_name = field_validator("name")(lambda cls, v: check_name(v, "network"))

    def subnet_for(self, ip: IPAddress) -> Subnet | None:
        """The subnet whose CIDR holds ``ip``."""
        return next((s for s in self.subnets if ip in s.cidr), None)


class FixedIP(Model):
    """One fixed IP of a port. A bare string in YAML means ``{ip_address: ...}``."""

    ip_address: IPAddress
    subnet: str | None = None


class AllowedAddressPair(Model):
    """A Neutron allowed address pair: an IP or CIDR, and a MAC that defaults to the port's."""

    ip_address: IPAddress | IPNetwork
    mac_address: str | None = None

    @field_validator("ip_address", mode="before")
    @classmethod
    def _ip_or_cidr(cls, value: Any) -> Any:
        text = str(value)
        try:
            return (
                ipaddress.ip_network(text, strict=False)
                if "/" in text
                else ipaddress.ip_address(text)
            )
        except ValueError:
            raise ValueError(f"{value!r} is neither an IP address nor a CIDR") from None

    @field_validator("mac_address")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return None if value is None else normalise_mac(value)


class Port(Model):
    """A Neutron port: the instance's attachment to a network, with its port-security settings."""

    id: str | None = Field(
        None, description="Port UUID; generated from the instance name if left out."
    )
    name: str | None = None
    network: str
    mac_address: str | None = Field(None, description="Generated in fa:16:3e:xx:xx:xx if left out.")
    fixed_ips: list[FixedIP] = Field(min_length=1)
    port_security_enabled: bool = True
    allowed_address_pairs: list[AllowedAddressPair] = Field(default_factory=list)

    @field_validator("fixed_ips", mode="before")
    @classmethod
    def _bare_ips(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"ip_address": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("mac_address")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return None if value is None else normalise_mac(value)


class Instance(Model):
    """A Nova instance: one lab node (network, mount and UTS namespace) with its ports."""

    name: str
    ports: list[Port] = Field(min_length=1)
    interface: str = Field(
        "ens3", description="Name of the first port's interface inside the node."
    )
    host: str | None = Field(
        None,
        description=(
            "The compute host the instance runs on (Nova's OS-EXT-SRV-ATTR:host). Only "
            "engine: ovn reads it: each distinct host is an OVN chassis (its own "
            "ovs-vswitchd and ovn-controller, joined to the others by Geneve), at most "
            f"{MAX_HOSTS}; an instance without host runs on the first. The emulated fabric is "
            "one bridge, so an instance whose ports are all on engine: emulated networks may "
            "not name a host (docs/sdn-profiles.md#two-chassis)."
        ),
    )

    _check_name = field_validator("name")(lambda cls, v: check_name(v, "instance"))

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", value):
            raise ValueError(
                f"{value!r} is not a host name (letters, digits, '.' and '-', at most 63)"
            )
        return value

    @field_validator("interface")
    @classmethod
    def _ifname(cls, value: str) -> str:
        if not value or len(value) > IFNAMSIZ or "/" in value or value.strip() != value:
            raise ValueError(
                f"{value!r} is not a valid interface name (at most {IFNAMSIZ} characters)"
            )
        return value

    @property
    def hostname(self) -> str:
        """The node's hostname: the instance name with '_' turned into '-', as Nova does."""
        return self.name.replace("_", "-")

    def interface_names(self) -> list[str]:
        """Interface name per port: ``ens3``, ``ens4``, ... counting up from ``interface``."""
        match = re.match(r"^(.*?)(\d+)$", self.interface)
        if not match:
            return [self.interface] + [f"{self.interface}{i}" for i in range(1, len(self.ports))]
        stem, first = match.group(1), int(match.group(2))
        return [f"{stem}{first + i}" for i in range(len(self.ports))]


class ReservedPort(Model):
    """A Neutron port that only reserves an address, bound to no instance: what operators
    create for keepalived's VIP (``openstack port create --fixed-ip ip-address=VIP``)."""

    id: str | None = Field(None, description="Port UUID; generated from the VIP if left out.")
    mac_address: str | None = Field(None, description="Generated in fa:16:3e:xx:xx:xx if left out.")

    @field_validator("mac_address")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return None if value is None else normalise_mac(value)


class VirtualIP(Model):
    """A virtual IP shared by VRRP routers. It must lie outside every allocation pool."""

    address: IPAddress
    network: str
    port: ReservedPort | None = Field(
        None,
        description="Reserve the VIP with a Neutron port of its own (`port: {}` generates its "
        "id and MAC). On engine: ovn the routers' allowed address pairs then make it a "
        "type=virtual port that OVN binds to whichever parent sends from the VIP. The "
        "emulated engine models no port for it.",
    )

    @property
    def port_id(self) -> str:
        """The reserved port's id (given, or stable from the address)."""
        given = self.port.id if self.port is not None else None
        return given or str(uuid.uuid5(uuid.NAMESPACE_URL, f"vrrp-lab:vip/{self.address}"))

    @property
    def port_mac(self) -> str:
        """The reserved port's MAC (given, or stable from the address)."""
        given = self.port.mac_address if self.port is not None else None
        return given or generated_mac(f"vip/{self.address}")


class Topology(Model):
    """Networks, instances and virtual IPs: everything the lab builds before any step runs."""

    networks: list[Network] = Field(min_length=1)
    instances: list[Instance] = Field(min_length=1)
    vips: list[VirtualIP] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        _unique([n.name for n in self.networks], "networks", "name")
        _unique([i.name for i in self.instances], "instances", "name")
        networks = {n.name: n for n in self.networks}
        seen_ips: dict[IPAddress, str] = {}
        seen_macs: dict[str, str] = {}
        seen_ids: dict[str, str] = {}
        for i, inst in enumerate(self.instances):
            for j, port in enumerate(inst.ports):
                where = f"instances[{i}].ports[{j}]"
                net = networks.get(port.network)
                if net is None:
                    raise ValueError(
                        f"{where}.network: unknown network {port.network!r} "
                        f"(expected one of: {', '.join(networks)})"
                    )
                for k, fixed in enumerate(port.fixed_ips):
                    subnet = net.subnet_for(fixed.ip_address)
                    if subnet is None:
                        raise ValueError(
                            f"{where}.fixed_ips[{k}]: {fixed.ip_address} is in no subnet of "
                            f"network {net.name} ({', '.join(str(s.cidr) for s in net.subnets)})"
                        )
                    if fixed.ip_address in seen_ips:
                        raise ValueError(
                            f"{where}.fixed_ips[{k}]: {fixed.ip_address} is already the fixed IP "
                            f"of {seen_ips[fixed.ip_address]}"
                        )
                    seen_ips[fixed.ip_address] = inst.name
        for inst in self.instances:
            for port in _resolved_ports(inst):
                if port.mac_address in seen_macs:
                    raise ValueError(
                        f"instances: MAC {port.mac_address} of {inst.name} is already used by "
                        f"{seen_macs[port.mac_address]}"
                    )
                seen_macs[port.mac_address or ""] = inst.name
                if port.id in seen_ids:
                    raise ValueError(
                        f"instances: port id {port.id} of {inst.name} is already used by "
                        f"{seen_ids[port.id or '']}"
                    )
                seen_ids[port.id or ""] = inst.name
        self._placement(networks)
        for v, vip in enumerate(self.vips):
            where = f"vips[{v}]"
            net = networks.get(vip.network)
            if net is None:
                raise ValueError(f"{where}.network: unknown network {vip.network!r}")
            subnet = net.subnet_for(vip.address)
            if subnet is None:
                raise ValueError(f"{where}.address: {vip.address} is in no subnet of {net.name}")
            pool = subnet.pool_holding(vip.address)
            if pool is not None:
                raise ValueError(
                    f"{where}.address: {vip.address} lies in allocation pool {pool}, so Neutron "
                    "may hand it to an instance; pick an address outside the pools"
                )
            if vip.address in seen_ips:
                raise ValueError(
                    f"{where}.address: {vip.address} is the fixed IP of {seen_ips[vip.address]}"
                )
        return self

    def _placement(self, networks: dict[str, Network]) -> None:
        """``host`` only where it means something (an ovn port), and no more hosts than
        chassis the OVN engine runs."""
        for i, inst in enumerate(self.instances):
            if inst.host is not None and not any(
                networks[p.network].sdn.engine == "ovn" for p in inst.ports
            ):
                raise ValueError(
                    f"instances[{i}].host: {inst.name} has no port on an sdn: {{engine: ovn}} "
                    "network, and the emulated fabric is one bridge with no hosts: drop host, "
                    "or put the network on engine: ovn"
                )
        hosts = self.hosts()
        names = {i.name for i in self.instances}
        for host in hosts[1:]:
            if hypervisor_name(host) in names:
                raise ValueError(
                    f"instances: host {host}'s namespace would be called {hypervisor_name(host)}, "
                    "the name of an instance: rename the instance or the host"
                )
        if len(hosts) > MAX_HOSTS:
            raise ValueError(
                f"instances: {len(hosts)} hosts ({', '.join(hosts)}), but engine: ovn runs at "
                f"most {MAX_HOSTS} chassis: place the instances on {MAX_HOSTS} hosts"
            )

    def hosts(self) -> list[str]:
        """The compute hosts the instances name, in order of first mention; [] when none does.

        On ``engine: ovn`` each is a chassis; the first also runs every instance without host.
        """
        return list(dict.fromkeys(i.host for i in self.instances if i.host is not None))

    def network(self, name: str) -> Network:
        """The network called ``name``."""
        for net in self.networks:
            if net.name == name:
                return net
        raise KeyError(name)

    def instance(self, name: str) -> Instance:
        """The instance called ``name``."""
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def ports(self) -> list[tuple[Instance, Port, str]]:
        """Every port with its owning instance and its interface name inside the node.

        Ports come back with ``id`` and ``mac_address`` filled in, generated where the scenario
        left them out.
        """
        out = []
        for inst in self.instances:
            for port, ifname in zip(_resolved_ports(inst), inst.interface_names(), strict=True):
                out.append((inst, port, ifname))
        return out


def _unique(values: list[str], field: str, key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{field}[{i}].{key}: {value!r} appears twice; names must be unique")
        seen.add(value)


def _resolved_ports(inst: Instance) -> list[Port]:
    """Fill in generated ids and MACs, stable across runs so reports compare."""
    out = []
    for n, port in enumerate(inst.ports):
        seed = f"{inst.name}/{n}"
        port_id = port.id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"vrrp-lab:{seed}"))
        mac = port.mac_address or generated_mac(seed)
        out.append(port.model_copy(update={"id": port_id, "mac_address": mac}))
    return out


def generated_mac(seed: str) -> str:
    """A stable Neutron-style MAC (fa:16:3e:xx:xx:xx) derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in digest[:3])


def tap_name(port_id: str) -> str:
    """Neutron's name for a port's fabric-side device: ``tap`` plus the port id's first 11 chars."""
    return ("tap" + port_id)[: IFNAMSIZ - 1]


def bridge_name(network: str) -> str:
    """The fabric bridge of a network."""
    return ("br-" + network)[:IFNAMSIZ]
