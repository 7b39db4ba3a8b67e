"""SDN knobs, the named profiles that set them, and the scenario's per-network ``sdn:`` block.

A network's ``sdn:`` block names a profile and may override any knob::

    networks:
      - name: ha_lab
        sdn: {profile: arp-caching, update: ttl=2}

:meth:`SdnConfig.resolve` merges the two into :class:`Knobs`, the only thing the ruleset
renderer and the controller look at. ``docs/sdn-profiles.md`` says which real system each
profile models and where each value comes from.

This module is imported by :mod:`lab.topology`, so it depends on pydantic alone.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ProfileName = Literal[
    "l2-plain", "neutron-ovs-hybrid", "neutron-ovs-ofw", "ovn", "arp-caching", "cloud-l3"
]
Forwarding = Literal["forward", "drop"]
MulticastPolicy = Literal["forward", "drop", "vrrp-only"]
PortSecurity = Literal["off", "strict-pair", "separate", "ip-only"]
ArpMode = Literal["flood", "responder-static", "proxy-learning"]
LearnSource = Literal["garp", "arp-reply", "ip"]
ArpMiss = Literal["relay", "drop"]
GarpDelivery = Literal["flooded", "trapped", "dropped"]
FdbMode = Literal["learning", "static", "static-first"]
#: ``emulated``: a Linux bridge with nft and the lab's controller (the profiles below);
#: ``ovn``: the real OVS userspace datapath and OVN (:mod:`lab.ovn`).
Engine = Literal["emulated", "ovn"]

_TTL = re.compile(r"^ttl=(\d+(?:\.\d+)?)s?$")


def parse_update(value: str) -> float | None:
    """The TTL in seconds of an ``update`` value: None for ``sticky`` / ``on-garp``.

    Raises ValueError for anything but ``sticky``, ``on-garp`` or ``ttl=N`` (N > 0, seconds).
    """
    if value in ("sticky", "on-garp"):
        return None
    match = _TTL.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"{value!r} is not an update policy (expected sticky, on-garp or ttl=N with N > 0 "
            "seconds, e.g. ttl=2.5)"
        )
    return float(match.group(1))


class Knobs(BaseModel):
    """Every knob of the emulated SDN, fully resolved. One set per network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broadcast: Forwarding = Field(
        description="Non-ARP broadcast frames (ff:ff:ff:ff:ff:ff): forward or drop. ARP is "
        "governed by `arp` and `garp`."
    )
    multicast: MulticastPolicy = Field(
        description="Multicast frames: forward, drop, or vrrp-only (drop IPv4 link-local "
        "224.0.0.0/24 except IP protocol 112, as a security group allowing VRRP does)."
    )
    port_security: PortSecurity = Field(
        description="What the fabric checks on frames an instance sends: off, strict-pair (MAC "
        "and IP must match one allowed pair), separate (MAC in the MAC set, IP in the IP set), "
        "ip-only (only the IP)."
    )
    check_arp_sha: bool = Field(
        description="Also check the ARP sender hardware address (sha), not only the Ethernet "
        "source. Ignored with ip-only and off."
    )
    arp: ArpMode = Field(
        description="flood (the bridge floods ARP), responder-static (the controller answers "
        "for fixed IPs, the rest floods), proxy-learning (the controller answers every request "
        "from its binding cache; no request reaches another instance through the bridge)."
    )
    learn_from: tuple[LearnSource, ...] = Field(
        description="proxy-learning: what creates a binding (garp, arp-reply, ip). Empty: "
        "fixed bindings only."
    )
    update: str = Field(
        description="proxy-learning: when a learned binding may change: sticky (never, until "
        "flushed), on-garp (a GARP replaces it), ttl=N (it expires N seconds after learning)."
    )
    arp_miss: ArpMiss = Field(
        description="proxy-learning: a request for an IP with no binding is relayed by the "
        "controller to the network's other ports (so the reply can be learned), or dropped."
    )
    garp: GarpDelivery = Field(
        description="Gratuitous ARP: flooded to the network, trapped (seen by the controller "
        "only), or dropped."
    )
    fdb: FdbMode = Field(
        description="learning (the kernel bridge learns, 300 s ageing), static (port MACs "
        "pinned, unknown unicast dropped; a pair's MAC is bound to the allowed port that last "
        "sent from it) or static-first (as static, but a pair's MAC is pinned to the first "
        "port that lists it and never moves while that port lists it: OVN 23.03 with Neutron's "
        "mapping, docs/sdn-profiles.md#engine-ovn)."
    )
    bind_pairs: bool = Field(
        description="The controller also answers for allowed-pair host addresses, each bound "
        "to the first port (in scenario order) that lists it, with the pair's MAC: a cloud's "
        "secondary private IPs, which move only through the API. Needs an ARP mode other than "
        "flood."
    )

    @field_validator("update")
    @classmethod
    def _update(cls, value: str) -> str:
        parse_update(value)
        return value

    @property
    def ttl(self) -> float | None:
        """The TTL of learned bindings in seconds, when ``update`` is ``ttl=N``."""
        return parse_update(self.update)

    @property
    def controller_needed(self) -> bool:
        """True when some frame must be seen or answered by the controller process.

        Any GARP policy but ``flooded`` traps every ARP request (see :attr:`traps_requests`),
        and a trapped request needs the controller to relay it, even in ``flood`` mode.
        """
        return self.arp != "flood" or self.garp != "flooded"

    @property
    def traps_requests(self) -> bool:
        """True when every ARP request is taken off the bridge and handed to the controller.

        proxy-learning does it by definition; responder-static does when it answers for pair
        addresses too (they change at run time, so no nft set lists them); flood and
        responder-static need it when GARP is not flooded, because a GARP can only be told
        apart from a request (sender IP equal to target IP) by looking at it, which nft cannot
        do with two packet fields.
        """
        return (
            self.arp == "proxy-learning"
            or self.garp != "flooded"
            or (self.arp == "responder-static" and self.bind_pairs)
        )


_BASE: dict[str, Any] = {
    "broadcast": "forward",
    "multicast": "forward",
    "port_security": "off",
    "check_arp_sha": False,
    "arp": "flood",
    "learn_from": (),
    "update": "sticky",
    "arp_miss": "relay",
    "garp": "flooded",
    "fdb": "learning",
    "bind_pairs": False,
}

#: The starting knob values of every profile (docs/architecture.md#fabric-and-sdn), refined
#: from the systems' docs and code: see docs/sdn-profiles.md for the source of each value.
PROFILES: dict[str, Knobs] = {
    "l2-plain": Knobs(**_BASE),
    "neutron-ovs-hybrid": Knobs(
        **{
            **_BASE,
            "multicast": "vrrp-only",
            "port_security": "separate",
            "arp": "responder-static",
        }
    ),
    "neutron-ovs-ofw": Knobs(
        **{**_BASE, "port_security": "strict-pair", "arp": "responder-static"}
    ),
    "ovn": Knobs(
        **{
            **_BASE,
            "port_security": "strict-pair",
            "check_arp_sha": True,
            "arp": "responder-static",
            "fdb": "static-first",
        }
    ),
    "arp-caching": Knobs(
        **{
            **_BASE,
            "broadcast": "drop",
            "multicast": "drop",
            "port_security": "ip-only",
            "arp": "proxy-learning",
            "learn_from": ("arp-reply",),
            "update": "sticky",
            "arp_miss": "relay",
            "garp": "trapped",
        }
    ),
    "cloud-l3": Knobs(
        **{
            **_BASE,
            "broadcast": "drop",
            "multicast": "drop",
            "port_security": "strict-pair",
            "check_arp_sha": True,
            "arp": "proxy-learning",
            "learn_from": (),
            "arp_miss": "drop",
            "garp": "dropped",
            "fdb": "static",
            "bind_pairs": True,
        }
    ),
}


def _doc(knob: str) -> str:
    """An override's description: the knob's, plus what leaving it out means."""
    return f"{Knobs.model_fields[knob].description} Default: the profile's value."


class SdnConfig(BaseModel):
    """A network's ``sdn:`` block: a profile, plus any knob overridden for this network.

    ``engine: ovn`` makes the network a real OVN logical switch (:mod:`lab.ovn`): what the
    fabric does with a frame then follows from the ports, as Neutron maps them
    (``port_security_enabled``, ``allowed_address_pairs``), and from OVN itself. Every knob
    of the emulation is meaningless there (port security, ARP responder, broadcast and
    multicast policy, FDB, GARP delivery are OVN's own), and so is ``profile``: combining any
    of them with ``engine: ovn`` is an error rather than silently ignored. On such a network
    :meth:`resolve` gives ``l2-plain``'s knobs, and the emulated layer loads nothing for it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Engine = Field(
        "emulated",
        description="emulated: a Linux bridge with the profile's nft rules and controller. ovn: "
        "the real Open vSwitch (userspace datapath) and OVN, private to the lab, with the "
        "ports mapped as Neutron's OVN driver maps them; takes no profile and no knob "
        "(docs/sdn-profiles.md#engine-ovn).",
    )
    profile: ProfileName = Field(
        "l2-plain", description="The named profile whose knob values are the starting point."
    )
    broadcast: Forwarding | None = Field(None, description=_doc("broadcast"))
    multicast: MulticastPolicy | None = Field(None, description=_doc("multicast"))
    port_security: PortSecurity | None = Field(None, description=_doc("port_security"))
    check_arp_sha: bool | None = Field(None, description=_doc("check_arp_sha"))
    arp: ArpMode | None = Field(None, description=_doc("arp"))
    learn_from: list[LearnSource] | None = Field(None, description=_doc("learn_from"))
    update: str | None = Field(None, description=_doc("update"))
    arp_miss: ArpMiss | None = Field(None, description=_doc("arp_miss"))
    garp: GarpDelivery | None = Field(None, description=_doc("garp"))
    fdb: FdbMode | None = Field(None, description=_doc("fdb"))
    bind_pairs: bool | None = Field(None, description=_doc("bind_pairs"))

    @field_validator("update")
    @classmethod
    def _update(cls, value: str | None) -> str | None:
        if value is not None:
            parse_update(value)
        return value

    @field_validator("learn_from", mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        # `learn_from: garp` is a natural way to write a single source.
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _coherent(self) -> SdnConfig:
        if self.engine == "ovn":
            emulated = sorted(
                name for name in self.model_fields_set if name != "engine" and name in _EMULATED
            )
            if emulated:
                raise ValueError(
                    f"{', '.join(emulated)}: only applies to engine: emulated; with engine: ovn "
                    "the real OVN decides from the ports (port_security_enabled, "
                    "allowed_address_pairs): drop it, or use engine: emulated"
                )
            return self
        knobs = self.resolve()
        if knobs.arp != "proxy-learning":
            for name in ("learn_from", "update", "arp_miss"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name}: only applies with arp: proxy-learning, and profile "
                        f"{self.profile} resolves arp to {knobs.arp}; drop {name} or set "
                        "arp: proxy-learning"
                    )
        if self.bind_pairs and knobs.arp == "flood":
            raise ValueError(
                "bind_pairs: needs the controller to answer ARP, but arp is flood; set arp: "
                "responder-static or proxy-learning"
            )
        if knobs.arp == "proxy-learning" and knobs.update == "on-garp" and knobs.garp == "dropped":
            raise ValueError(
                "update: on-garp needs the controller to see GARPs, but garp is dropped; set "
                "garp: trapped or flooded"
            )
        return self

    def overrides(self) -> dict[str, Any]:
        """The knobs this block sets explicitly."""
        return {
            name: (tuple(value) if isinstance(value, list) else value)
            for name, value in self.model_dump(exclude={"profile", "engine"}).items()
            if value is not None
        }

    def resolve(self) -> Knobs:
        """The profile's knobs with this block's overrides applied."""
        base = PROFILES[self.profile]
        return base.model_copy(update=self.overrides()) if self.overrides() else base


#: The fields of an ``sdn:`` block that only the emulated engine reads.
_EMULATED = frozenset(SdnConfig.model_fields) - {"engine"}
