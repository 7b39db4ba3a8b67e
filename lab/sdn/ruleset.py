"""The fabric's nftables ``bridge`` table, rendered as text, and set-element changes. Pure.

One table, ``bridge vrrp_lab``, filters every frame an instance sends. Port security sits at
the bridge's **prerouting** hook, which runs in ``br_handle_frame`` before
``br_handle_frame_finish``, where the bridge learns the source MAC: a spoofed frame dropped
there never teaches the bridge a spoofed MAC (a forward-hook drop would:
docs/architecture.md#fabric-and-sdn).

Layout::

    chain prerouting      iifname vmap { tap… : goto port_<port> }      (policy accept)
    chain port_<port>     port security: good frames goto net_<network>, the rest drop
    chain net_<network>   copies to the controller: trapped ARP and frames to learn from
    chain forward         iifname vmap { tap… : goto fwd_<network> }
    chain fwd_<network>   trapped ARP dropped, then the broadcast / multicast policy

Port security drops before learning; policy drops after it. A trapped GARP thus reaches no
instance, yet the bridge learns that its source MAC (a VRRP VMAC) now lives on the new
master's port, as the MAC table of a real switch or vRouter would.

Allowed address pairs live in named sets, one group per port, so that ``port set
--allowed-address`` is a single ``nft -f`` transaction of ``add element`` / ``delete element``:
the kernel swaps generations at commit, so the next packet sees the new pairs and no packet
sees a half-applied change (no reload, no flush of the table).

The controller receives frames through NFLOG (``log group``): only frames that passed port
security reach it, which keeps spoofed ARP out of its cache. The prefix says why a frame was
sent: ``trap`` (taken off the bridge for the controller to handle), ``learn`` (forwarded as
usual, copied for learning), ``drop <port>`` (refused by port security).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lab.sdn.profiles import Knobs

TABLE = "vrrp_lab"
#: The NFLOG group the controller listens on (per network namespace, so labs never share it).
NFLOG_GROUP = 7
#: How much of a learned IP packet is copied to the controller: the IP header is enough.
LEARN_SNAPLEN = 64

LOG_TRAP = "trap"
LOG_LEARN = "learn"
LOG_DROP = "drop"


@dataclass(frozen=True)
class Pair:
    """An allowed address pair: an address or network, and a MAC (None: the port's own)."""

    ip: str
    mac: str | None = None

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The pair's address as a network (a host address is a /32 or /128)."""
        return ipaddress.ip_network(self.ip, strict=False)

    def with_mac(self, port_mac: str) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """(MAC, network), the MAC defaulting to ``port_mac`` as Neutron does."""
        return (self.mac or port_mac).lower(), self.network()

    def as_dict(self) -> dict[str, str]:
        """The Neutron spelling: ``{ip_address, mac_address}`` (mac only when set)."""
        out = {"ip_address": self.ip}
        if self.mac:
            out["mac_address"] = self.mac
        return out


@dataclass(frozen=True)
class PortSpec:
    """What the ruleset needs to know about one port."""

    id: str
    instance: str
    network: str
    tap: str
    mac: str
    fixed_ips: tuple[str, ...]
    security: bool = True
    """Neutron's ``port_security_enabled``: False exempts the port from every check."""

    @property
    def key(self) -> str:
        """The port's short identifier in chain and set names (nft names take no '-')."""
        return "p" + self.id.replace("-", "")[:12]

    def to_json(self) -> dict[str, object]:
        """A JSON-able form, for the state file and the controller's config."""
        return {
            "id": self.id,
            "instance": self.instance,
            "network": self.network,
            "tap": self.tap,
            "mac": self.mac,
            "fixed_ips": list(self.fixed_ips),
            "security": self.security,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PortSpec:
        """The inverse of :meth:`to_json`."""
        fixed = data["fixed_ips"]
        assert isinstance(fixed, list)
        return cls(
            id=str(data["id"]),
            instance=str(data["instance"]),
            network=str(data["network"]),
            tap=str(data["tap"]),
            mac=str(data["mac"]),
            fixed_ips=tuple(str(ip) for ip in fixed),
            security=bool(data["security"]),
        )


@dataclass(frozen=True)
class NetworkSpec:
    """A network's name, its resolved knobs and its ports."""

    name: str
    knobs: Knobs
    ports: tuple[PortSpec, ...] = field(default=())

    @property
    def key(self) -> str:
        """The network's identifier in chain and set names."""
        return "n_" + self.name.replace("-", "_")


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 IPv6 link-local address the kernel derives from ``mac`` (RFC 4291 App. A).

    Neutron adds it to a port's allowed addresses for the port MAC and every pair MAC, so
    IPv6 neighbour discovery keeps working under port security.
    """
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui)


def _collapse(
    nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Merge overlapping and adjacent networks: nft interval sets refuse overlapping elements."""
    every = list(nets)  # a generator would be exhausted by the first pass
    v4 = [n for n in every if n.version == 4]
    v6 = [n for n in every if n.version == 6]
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for group in (v4, v6):
        out.extend(ipaddress.collapse_addresses(group))  # type: ignore[arg-type]
    return out


def _element(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def set_elements(mode: str, port: PortSpec, pairs: Iterable[Pair]) -> dict[str, set[str]]:
    """The elements of each of ``port``'s sets under port-security ``mode``, given its pairs.

    The port's fixed IPs with its own MAC are always allowed, and so is the IPv6 link-local
    address of every allowed MAC. Set names are ``<port key>_<kind>``.
    """
    owned: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = [
        (port.mac, ipaddress.ip_network(ip)) for ip in port.fixed_ips
    ]
    owned += [pair.with_mac(port.mac) for pair in pairs]
    macs = sorted({port.mac} | {mac for mac, _ in owned})
    owned += [(mac, ipaddress.ip_network(link_local(mac))) for mac in macs]
    k = port.key
    if mode == "strict-pair":
        out: dict[str, set[str]] = {f"{k}_mac": set(macs), f"{k}_p4": set(), f"{k}_p6": set()}
        for mac in macs:
            for net in _collapse(n for m, n in owned if m == mac):
                out[f"{k}_p{net.version}"].add(f"{mac} . {_element(net)}")
        return out
    nets = _collapse(n for _, n in owned)
    out = {f"{k}_ip4": set(), f"{k}_ip6": set()}
    for net in nets:
        out[f"{k}_ip{net.version}"].add(_element(net))
    if mode == "separate":
        out[f"{k}_mac"] = set(macs)
    return out


_SET_TYPES = {
    "fixed": ("ipv4_addr", False),
    "mac": ("ether_addr", False),
    "p4": ("ether_addr . ipv4_addr", True),
    "p6": ("ether_addr . ipv6_addr", True),
    "ip4": ("ipv4_addr", True),
    "ip6": ("ipv6_addr", True),
}


def _set_decl(name: str, elements: set[str]) -> list[str]:
    kind = name.rsplit("_", 1)[1]
    type_, interval = _SET_TYPES[kind]
    lines = [f"\tset {name} {{", f"\t\ttype {type_}"]
    if interval:
        lines.append("\t\tflags interval")
    if elements:
        lines.append(f"\t\telements = {{ {', '.join(sorted(elements))} }}")
    lines.append("\t}")
    return lines


def _log(prefix: str, *, snaplen: int | None = None) -> str:
    snap = f" snaplen {snaplen}" if snaplen else ""
    return f'log prefix "{prefix}" group {NFLOG_GROUP}{snap}'


def _port_rules(knobs: Knobs, port: PortSpec, net_chain: str, logging: bool) -> list[str]:
    """The port-security chain body: accepted frames go on to the network chain."""
    k, ok = port.key, f"goto {net_chain}"
    mode = knobs.port_security
    other = "ether type != { ip, ip6, arp }"
    # IPv6 duplicate address detection sends from :: before any address is usable.
    dad = f"ether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit {ok}"
    if mode == "strict-pair":
        sha = f" arp saddr ether . arp saddr ip @{k}_p4" if knobs.check_arp_sha else ""
        rules = [
            f"ether type ip ether saddr . ip saddr @{k}_p4 {ok}",
            f"ether type ip6 ether saddr . ip6 saddr @{k}_p6 {ok}",
            f"ether saddr @{k}_mac {dad}",
            f"ether type arp ether saddr . arp saddr ip @{k}_p4{sha} {ok}",
            f"{other} ether saddr @{k}_mac {ok}",
        ]
    elif mode == "separate":
        rules = [f"ether saddr != @{k}_mac {_drop(port, logging)}"]
        if knobs.check_arp_sha:
            rules.append(f"ether type arp arp saddr ether != @{k}_mac {_drop(port, logging)}")
        rules += [
            f"ether type ip ip saddr @{k}_ip4 {ok}",
            f"ether type ip6 ip6 saddr @{k}_ip6 {ok}",
            dad,
            f"ether type arp arp saddr ip @{k}_ip4 {ok}",
            f"{other} {ok}",
        ]
    elif mode == "ip-only":
        rules = [
            f"ether type ip ip saddr @{k}_ip4 {ok}",
            f"ether type ip6 ip6 saddr @{k}_ip6 {ok}",
            dad,
            f"ether type arp arp saddr ip @{k}_ip4 {ok}",
            f"{other} {ok}",
        ]
    else:
        raise ValueError(f"port security mode {mode!r} has no port chain")
    return [*rules, _drop(port, logging)]


def _drop(port: PortSpec, logging: bool) -> str:
    return f"{_log(f'{LOG_DROP} {port.tap}')} drop" if logging else "drop"


def _traps(net: NetworkSpec) -> list[str]:
    """Matches of the ARP frames taken off the bridge and handed to the controller."""
    knobs = net.knobs
    arp = "ether type arp"
    traps: list[str] = []
    if knobs.traps_requests:
        traps.append(f"{arp} arp operation request")
    elif knobs.arp == "responder-static":
        # Only requests for fixed IPs go to the responder; the rest floods.
        traps.append(f"{arp} arp operation request arp daddr ip @{net.key}_fixed")
    if knobs.garp != "flooded":
        # A gratuitous ARP *reply* is broadcast; an ordinary reply is unicast.
        traps.append(f"{arp} arp operation reply ether daddr ff:ff:ff:ff:ff:ff")
    return traps


def _network_copies(net: NetworkSpec) -> list[str]:
    """Prerouting, after port security: copy trapped and learnable frames to the controller.

    Trapped frames are *accepted* here and dropped at the forward hook instead, so that the
    bridge still learns where their (legitimate) source MAC lives, as a switch would from a
    GARP: a VRRP VMAC moves to the new master's port although the GARP itself reaches nobody.
    The copy is made here, once: the forward hook runs once per output port of a flood.
    """
    knobs = net.knobs
    rules = [f"{match} {_log(LOG_TRAP)} accept" for match in _traps(net)]
    if knobs.arp == "proxy-learning" and "arp-reply" in knobs.learn_from:
        rules.append(f"ether type arp arp operation reply {_log(LOG_LEARN)}")
    if knobs.arp == "proxy-learning" and "ip" in knobs.learn_from:
        rules.append(f"ether type ip {_log(LOG_LEARN, snaplen=LEARN_SNAPLEN)}")
    rules.append("accept")
    return rules


def _network_policy(net: NetworkSpec) -> list[str]:
    """Forward hook: trapped frames go nowhere; then the broadcast/multicast policy."""
    knobs = net.knobs
    rules = [f"{match} drop" for match in _traps(net)]
    rules.append("ether type arp accept")  # ARP is governed by the ARP mode, not the policy
    if knobs.broadcast == "drop":
        rules.append("ether daddr ff:ff:ff:ff:ff:ff drop")
    if knobs.multicast == "drop":
        rules.append("ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop")
    elif knobs.multicast == "vrrp-only":
        rules.append("ether type ip ip daddr 224.0.0.0/24 ip protocol != 112 drop")
    rules.append("accept")
    return rules


def render_table(networks: Iterable[NetworkSpec], pairs: Mapping[str, Iterable[Pair]]) -> str:
    """The whole ``bridge vrrp_lab`` table, for one atomic ``nft -f``.

    ``pairs`` maps port id to its current allowed address pairs. The script creates the table
    (so loading it twice fails loudly rather than doubling rules).
    """
    lines = [f"add table bridge {TABLE}", f"table bridge {TABLE} {{"]
    vmap: list[str] = []
    forward_vmap: list[str] = []
    chains: list[str] = []
    for net in networks:
        knobs = net.knobs
        net_chain = f"net_{net.key}"
        logging = knobs.controller_needed
        if knobs.arp == "responder-static" and not knobs.traps_requests:
            fixed = {ip for p in net.ports for ip in p.fixed_ips if ":" not in ip}
            lines += _set_decl(f"{net.key}_fixed", fixed)
        chains += [f"\tchain {net_chain} {{", *(f"\t\t{r}" for r in _network_copies(net)), "\t}"]
        policy_chain = f"fwd_{net.key}"
        chains += [
            f"\tchain {policy_chain} {{",
            *(f"\t\t{r}" for r in _network_policy(net)),
            "\t}",
        ]
        for port in net.ports:
            forward_vmap.append(f'"{port.tap}" : goto {policy_chain}')
            secured = port.security and knobs.port_security != "off"
            if not secured:
                vmap.append(f'"{port.tap}" : goto {net_chain}')
                continue
            for name, elements in set_elements(
                knobs.port_security, port, pairs.get(port.id, ())
            ).items():
                lines += _set_decl(name, elements)
            body = _port_rules(knobs, port, net_chain, logging)
            chains += [f"\tchain port_{port.key} {{", *(f"\t\t{r}" for r in body), "\t}"]
            vmap.append(f'"{port.tap}" : goto port_{port.key}')
    lines += chains
    lines += [
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority -200; policy accept;",
    ]
    if vmap:
        lines.append(f"\t\tiifname vmap {{ {', '.join(vmap)} }}")
    lines += [
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority -200; policy accept;",
    ]
    if forward_vmap:
        lines.append(f"\t\tiifname vmap {{ {', '.join(forward_vmap)} }}")
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def element_changes(old: Mapping[str, set[str]], new: Mapping[str, set[str]]) -> str:
    """An ``nft -f`` script turning sets ``old`` into ``new``: deletions first, then additions.

    Deleting first lets a wider network replace a narrower one in an interval set within the
    same transaction. Unchanged elements are not touched, so traffic they allow never pauses.
    Returns "" when nothing changes.
    """
    lines = []
    for name in sorted(set(old) | set(new)):
        gone = old.get(name, set()) - new.get(name, set())
        if gone:
            lines.append(f"delete element bridge {TABLE} {name} {{ {', '.join(sorted(gone))} }}")
    for name in sorted(set(old) | set(new)):
        added = new.get(name, set()) - old.get(name, set())
        if added:
            lines.append(f"add element bridge {TABLE} {name} {{ {', '.join(sorted(added))} }}")
    return "\n".join(lines) + "\n" if lines else ""
