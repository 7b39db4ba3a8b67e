"""Scenario steps: what a scenario does after the lab is built, one action or expectation each.

A step is a mapping with exactly one action key (plus an optional ``name``)::

    - start: [ha_first, ha_second]                 # start routers (or `all`)
    - expect: {master: ha_first, within: 5}        # poll until it holds, or fail the step
    - port-set: {port: ha_first, ip_address: 10.200.51.10}
    - stop: ha_first                               # a fault; opens a failover
    - observe: 2                                   # let the probes run for 2 s
    - expect: {steady: 0.3, within: 2}             # no probe lost for the last 0.3 s
    - expect: {failover: {outage_ms: {max: 3000}}}
    - bfd-loss: {a: ha_first, b: ha_second}        # the fabric drops BFD alone
    - expect: {failover: {new_master: ha_second}}
      impl: bundled                                # played only when every router is bundled

Durations are seconds. Keys are spelled as docs/architecture.md#faults names the faults
(``host-down``, ``advert-loss``, ``link-flap``); ``_`` works too.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.topology import normalise_mac

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Bound(_Model):
    """Bounds on a measured figure, in its unit (ms for ``*_ms`` metrics)."""

    min: float | None = None
    max: float | None = None

    def check(self, value: float | None) -> bool:
        """True when ``value`` exists and lies within the bounds."""
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        if self.min is not None and self.max is not None:
            return f"in [{self.min:g}, {self.max:g}]"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


class FailoverExpectation(_Model):
    """Bounds on the most recent failover's metrics (docs/architecture.md#metrics)."""

    outage_ms: Bound | None = None
    detection_ms: Bound | None = None
    stale_arp_ms: Bound | None = None
    lost_probes: Bound | None = None
    new_master: str | None = None
    split_brain: bool | None = None
    detection_within_theory_ms: float | None = Field(
        None,
        description="Pass when |detection − theory| is at most this many ms.",
    )
    bfd_detection_ms: Bound | None = Field(
        None,
        description="The BFD component: from the fault to the surviving router's BFD session "
        "Down, as its daemon logged it.",
    )
    detection_within_bfd_ms: float | None = Field(
        None,
        description="Pass when detection is at most the BFD session's detection time (as "
        "negotiated on the wire) plus this many ms.",
    )
    service_outage_ms: Bound | None = Field(
        None,
        description="The outage the HTTP clients saw: first failed request to first success.",
    )
    no_master_ms: Bound | None = Field(
        None, description="How long in the window no router reported MASTER."
    )
    two_masters_ms: Bound | None = Field(
        None, description="How long in the window two or more routers reported MASTER at once."
    )
    blackhole_ms: Bound | None = Field(
        None,
        description="How long in the window the observer's probes to the VIP went unanswered, "
        "every gap summed.",
    )
    old_master_silence_ms: Bound | None = Field(
        None,
        description="The longest gap between two adverts of the old master in the window, on "
        "the wire (a master that falls silent while it still says MASTER).",
    )
    foreign_adverts: Bound | None = Field(
        None,
        description="How many adverts in the window came from nodes that run no router of the "
        "lab (an inject, a stranger on the subnet).",
    )
    service_within_theory_ms: float | None = Field(
        None,
        description="After a service-down or service-hang: pass when the service outage lies in "
        "the window the old master's check (interval × fall, plus its timeout when hung) and "
        "the peer's takeover allow, ± this many ms.",
    )


class NeighbourExpectation(_Model):
    """The observer's kernel neighbour entry for ``ip``."""

    ip: IPAddress
    mac: str | None = None
    state: str | None = Field(None, description="e.g. REACHABLE, STALE, FAILED, INCOMPLETE")
    node: str | None = Field(None, description="Whose neighbour table; default: the observer.")


class BfdSessionExpectation(_Model):
    """A router's BFD session is in a state, as its daemon last logged it."""

    node: str = Field(description="The router whose session it is.")
    session: str | None = Field(
        None, description="The bfd_instance name; default: every session the router logged."
    )
    state: Literal["Up", "Down"] = Field("Up", description="Up or Down.")


class Expect(_Model):
    """One expectation; exactly one of the condition keys is set."""

    master: str | None = Field(None, description="This node's router is MASTER, the others not.")
    backup: str | None = Field(None, description="This node's router is BACKUP.")
    fault: str | None = Field(
        None, description="This node's router is in FAULT (a tracker says it must not serve)."
    )
    masters: list[str] | None = Field(None, description="Exactly these routers are MASTER.")
    is_master: str | None = Field(
        None,
        description="This node's router is MASTER, whatever the others say (after a host-down "
        "the old master's daemon may still say MASTER behind its dead link, or FAULT).",
    )
    reachable: IPAddress | None = Field(None, description="The observer's probes get answers.")
    unreachable: IPAddress | None = Field(
        None, description="No probe to it is answered during `during` seconds."
    )
    served_by: str | None = Field(None, description="Probes to the VIP are answered by this node.")
    http_served_by: str | None = Field(
        None, description="HTTP requests to the VIP succeed, through this node's haproxy."
    )
    neighbour: NeighbourExpectation | None = None
    bfd: BfdSessionExpectation | None = Field(
        None, description="A router's BFD session is Up (or Down), as its daemon logged it."
    )
    failover: FailoverExpectation | None = None
    split_brain: bool | None = Field(
        None,
        description="true: two routers advertise one VRID at once (waits up to `within`); "
        "false: that never happened so far in the run.",
    )
    steady: float | None = Field(
        None,
        gt=0,
        description="No probe to the VIP was lost for this many seconds (waits up to `within`).",
    )
    instance: str | None = Field(
        None,
        description="For master, backup, fault, masters and is_master: the vrrp_instance whose "
        "state is judged, where a router runs several (a sync group's members); default: the "
        "state the router reported last.",
    )
    within: float = Field(10.0, gt=0, description="Seconds to wait for the condition to hold.")
    during: float = Field(2.0, gt=0, description="Seconds observed, for `unreachable`.")

    @model_validator(mode="after")
    def _one(self) -> Expect:
        keys = [k for k in _EXPECT_KEYS if getattr(self, k) is not None]
        if len(keys) != 1:
            raise ValueError(
                f"an expectation takes exactly one of {', '.join(_EXPECT_KEYS)}; got "
                f"{', '.join(keys) or 'none'}"
            )
        if self.instance is not None and keys[0] not in STATE_KEYS:
            raise ValueError(
                f"instance: judges a router's state, not {keys[0]}; use it with "
                f"{', '.join(STATE_KEYS)}"
            )
        return self

    @property
    def kind(self) -> str:
        """The condition key that is set."""
        return next(k for k in _EXPECT_KEYS if getattr(self, k) is not None)


#: The expectations about router states, which ``instance`` narrows to one vrrp_instance.
STATE_KEYS = ("master", "backup", "fault", "masters", "is_master")
_EXPECT_KEYS = (
    "master",
    "backup",
    "masters",
    "is_master",
    "fault",
    "reachable",
    "unreachable",
    "served_by",
    "http_served_by",
    "neighbour",
    "bfd",
    "failover",
    "split_brain",
    "steady",
)


class PortChange(_Model):
    """``openstack port set/unset --allowed-address ip-address=IP[,mac-address=MAC]``."""

    port: str
    ip_address: str
    mac_address: str | None = None


class Partition(_Model):
    """The fabric drops everything between two instances."""

    a: str
    b: str


class AdvertLoss(_Model):
    """The fabric drops this share of VRRP adverts (nft ``numgen random``)."""

    percent: float = Field(gt=0, le=100)


class BfdLoss(_Model):
    """The fabric drops BFD between two instances, both ways (``bfd-loss: all``: between every
    pair)."""

    a: str
    b: str


class LinkFlap(_Model):
    """An instance's fabric port goes down, then up again."""

    node: str
    down_for: float = Field(0.5, gt=0)


class FileFlag(_Model):
    """A file in an instance is written with a number, or removed (a tracked file's flag)."""

    node: str
    path: str = Field(description="An absolute path inside the node (its /run is its own).")
    value: int | None = Field(1, description="The number written; null: remove the file.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "\n" in value:
            raise ValueError(f"expected an absolute path inside the node, got {value!r}")
        return value


class InterfaceChange(_Model):
    """An interface inside an instance goes down or up (``ip link set dev IFACE down``)."""

    node: str
    interface: str = Field(description="The interface as the node names it (ens3, ens4, ...).")


class ServiceFlap(_Model):
    """A proxy's haproxy is killed and restarted, ``times`` times over."""

    node: str
    times: int = Field(3, ge=1, le=100, description="How many times haproxy goes down.")
    down_for: float = Field(0.5, gt=0, description="Seconds down each time.")
    up_for: float = Field(0.5, gt=0, description="Seconds up between two downs.")


class InjectedAdvert(_Model):
    """A crafted VRRP advert (``inject: {advert: ...}``): every field may be anything the wire
    can carry, valid or not. What is left out is the lab's: the first VIP's VRID-1 advert."""

    vrid: int = Field(1, ge=0, le=255, description="Virtual Rtr ID (0 is never valid).")
    priority: int = Field(255, ge=0, le=255, description="Priority (0: the master leaves).")
    interval: float = Field(
        1.0,
        ge=0,
        le=40.95,
        description="Max Adver Int, seconds: centiseconds in VRRPv3, whole seconds in VRRPv2. "
        "A backup that accepts the advert adopts it, and waits three of them.",
    )
    version: int = Field(3, ge=0, le=15, description="2 or 3; any other value is sent as is.")
    type: int = Field(1, ge=0, le=15, description="1 (ADVERTISEMENT); any other is sent as is.")
    addresses: list[IPAddress] | None = Field(
        None, description="The addresses it claims; default: the scenario's VIPs."
    )
    ttl: int = Field(255, ge=0, le=255, description="IPv4 TTL / IPv6 hop limit (RFC: 255).")
    checksum: Literal["valid", "bad"] = Field(
        "valid", description="bad: the valid checksum with every bit flipped."
    )
    src: IPAddress | None = Field(
        None,
        description="The IP source; default: the sender's own address. Another's address is a "
        "spoof, which a port-security SDN drops.",
    )
    to: list[IPAddress] | Literal["group"] = Field(
        "group",
        description="Unicast destinations, each sent every period; `group`: the VRRP group "
        "(224.0.0.18 / ff02::12).",
    )


class InjectedNeighbour(_Model):
    """A crafted ARP (IPv4) or Neighbor Advertisement (IPv6) claiming ``ip`` at ``mac``."""

    ip: IPAddress = Field(description="The address claimed (the VIP, a peer's, anything).")
    mac: str | None = Field(
        None,
        description="The MAC it is claimed at; default: the sender's own; `random`: a new "
        "locally administered MAC in every frame (ARP churn).",
    )

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        return value if value in (None, "random") else normalise_mac(value)


class Inject(_Model):
    """``inject``: a node puts crafted frames on its port at ``rate`` per second for
    ``duration`` seconds: hostile neighbours, as any instance on a cloud subnet can be. Exactly
    one of ``advert``, ``garp``, ``arp_reply`` and ``na`` says what it sends."""

    node: str = Field(description="The instance that sends (its first port).")
    advert: InjectedAdvert | None = None
    garp: InjectedNeighbour | None = Field(
        None, description="Gratuitous ARP requests (sender and target IP both `ip`), broadcast."
    )
    arp_reply: InjectedNeighbour | None = Field(
        None,
        validation_alias=AliasChoices("arp-reply", "arp_reply"),
        description="Unsolicited ARP replies, broadcast (how some stacks announce).",
    )
    na: InjectedNeighbour | None = Field(
        None, description="Unsolicited Neighbor Advertisements, Override set, to ff02::1."
    )
    rate: float = Field(10.0, gt=0, le=20000, description="Periods per second.")
    duration: float = Field(1.0, ge=0, le=3600, description="Seconds; 0 sends a single period.")
    src_mac: str | None = Field(
        None,
        description="The Ethernet source (another's is a spoof); default: the sender's port MAC "
        "for adverts, the claimed MAC for ARP and NA (as a host announcing itself sends).",
    )
    seed: int = Field(0, description="Seeds `random` MACs, so a run can be replayed.")

    @model_validator(mode="after")
    def _one_kind(self) -> Inject:
        kinds = [k for k in INJECT_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            spelled = ", ".join(k.replace("_", "-") for k in INJECT_KINDS)
            raise ValueError(
                f"inject takes exactly one of {spelled}; got {', '.join(kinds) or 'none'}"
            )
        return self

    @field_validator("src_mac")
    @classmethod
    def _src_mac(cls, value: str | None) -> str | None:
        return None if value is None else normalise_mac(value)

    @property
    def kind(self) -> str:
        """What is sent: ``advert``, ``garp``, ``arp_reply`` or ``na``."""
        return next(k for k in INJECT_KINDS if getattr(self, k) is not None)

    def describe(self) -> str:
        """What is sent, in a line for the timeline and the report."""
        rate = f"{self.rate:g}/s for {self.duration:g} s" if self.duration else "once"
        if self.advert is not None:
            a = self.advert
            to = "the group" if a.to == "group" else ", ".join(str(ip) for ip in a.to)
            odd = [
                f"{k} {v}"
                for k, v, usual in (
                    ("TTL", a.ttl, 255),
                    ("type", a.type, 1),
                    ("checksum", a.checksum, "valid"),
                )
                if v != usual
            ]
            src = f" from {a.src}" if a.src is not None else ""
            return (
                f"VRRPv{a.version} adverts VRID {a.vrid} priority {a.priority} interval "
                f"{a.interval:g} s{src} to {to}{''.join(', ' + o for o in odd)}, {rate}"
            )
        kind = {"garp": "gratuitous ARPs", "arp_reply": "ARP replies", "na": "NAs"}[self.kind]
        claim = self.garp or self.arp_reply or self.na
        assert claim is not None
        return f"{kind} claiming {claim.ip} at {claim.mac or 'its own MAC'}, {rate}"


#: What an ``inject`` step may send.
INJECT_KINDS = ("advert", "garp", "arp_reply", "na")


FAULT_KEYS = (
    "stop",
    "crash",
    "host_down",
    "freeze",
    "thaw",
    "partition",
    "heal",
    "advert_loss",
    "link_flap",
    "bfd_loss",
    "bfd_restore",
    "file_flag",
    "interface_down",
    "interface_up",
    "service_down",
    "service_hang",
    "service_up",
    "service_flap",
    "inject",
)

#: The actions that open a measured failover.
FAILOVER_FAULTS = (
    "stop",
    "crash",
    "host_down",
    "freeze",
    "partition",
    "link_flap",
    "bfd_loss",
    "interface_down",
    "service_down",
    "service_hang",
    "service_flap",
    "file_flag",
    "inject",
)
#: The actions on a proxy's haproxy (the scenario's ``service:``).
SERVICE_ACTIONS = ("service_down", "service_hang", "service_up", "service_flap")


class Step(_Model):
    """One scenario step: exactly one action key, and an optional name for the report."""

    name: str | None = None
    start: list[str] | Literal["all"] | None = None
    expect: Expect | None = None
    port_set: PortChange | None = Field(None, validation_alias=AliasChoices("port-set", "port_set"))
    port_unset: PortChange | None = Field(
        None, validation_alias=AliasChoices("port-unset", "port_unset")
    )
    observe: float | None = Field(None, gt=0, description="Let the probes run for N seconds.")
    stop: str | None = Field(None, description="SIGTERM the router (graceful: priority 0).")
    crash: str | None = Field(None, description="SIGKILL the router; VIP and VMAC stay.")
    host_down: str | None = Field(
        None,
        validation_alias=AliasChoices("host-down", "host_down"),
        description="The instance's fabric port goes down.",
    )
    freeze: str | None = Field(None, description="SIGSTOP the router.")
    thaw: str | None = Field(None, description="SIGCONT the router.")
    partition: Partition | None = None
    heal: Partition | None = Field(None, description="Undo a partition.")
    advert_loss: AdvertLoss | None = Field(
        None, validation_alias=AliasChoices("advert-loss", "advert_loss")
    )
    link_flap: LinkFlap | None = Field(
        None, validation_alias=AliasChoices("link-flap", "link_flap")
    )
    bfd_loss: BfdLoss | Literal["all"] | None = Field(
        None,
        validation_alias=AliasChoices("bfd-loss", "bfd_loss"),
        description="The fabric drops BFD (UDP 3784/3785) between a and b, VRRP untouched.",
    )
    bfd_restore: BfdLoss | Literal["all"] | None = Field(
        None,
        validation_alias=AliasChoices("bfd-restore", "bfd_restore"),
        description="Undo a bfd-loss.",
    )
    file_flag: FileFlag | None = Field(
        None,
        validation_alias=AliasChoices("file-flag", "file_flag"),
        description="Write a number to a file in a node, or remove it (a router's track_file).",
    )
    interface_down: InterfaceChange | None = Field(
        None,
        validation_alias=AliasChoices("interface-down", "interface_down"),
        description="An interface inside the node goes down (what track_interface watches); "
        "the node's fabric port stays up.",
    )
    interface_up: InterfaceChange | None = Field(
        None,
        validation_alias=AliasChoices("interface-up", "interface_up"),
        description="Undo an interface-down.",
    )
    service_down: str | None = Field(
        None,
        validation_alias=AliasChoices("service-down", "service_down"),
        description="SIGKILL the node's haproxy (its health check then fails: refused).",
    )
    service_hang: str | None = Field(
        None,
        validation_alias=AliasChoices("service-hang", "service_hang"),
        description="SIGSTOP the node's haproxy (its health check then times out).",
    )
    service_up: str | None = Field(
        None,
        validation_alias=AliasChoices("service-up", "service_up"),
        description="The node's haproxy again: SIGCONT a hung one, start a killed one.",
    )
    service_flap: ServiceFlap | None = Field(
        None,
        validation_alias=AliasChoices("service-flap", "service_flap"),
        description="Kill and restart the node's haproxy `times` times (an intermittent "
        "service, against the check's rise and fall).",
    )
    inject: Inject | None = Field(
        None,
        description="A node sends crafted frames (VRRP adverts, GARPs, ARP replies, NAs) at a "
        "rate for a duration: a hostile or broken neighbour. Opens a measured window.",
    )
    impl: list[str] | None = Field(
        None,
        description="Play this step only when every router of the run is one of these "
        "implementations (what holds for one implementation only); otherwise it is skipped.",
    )
    steady: float | Literal[False] | None = Field(
        None,
        description="On a fault step: the service must have lost no probe for this many seconds "
        "before the fault is injected (default: three advert intervals; false: inject at once).",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_action(cls, data: Any) -> Any:
        if isinstance(data, dict):
            actions = [k for k in data if k not in ("name", "steady", "impl")]
            if len(actions) != 1:
                raise ValueError(
                    f"a step takes exactly one action ({', '.join(ACTIONS)}); got "
                    f"{', '.join(actions) or 'none'}"
                )
        return data

    @property
    def action(self) -> str:
        """The action key that is set, with ``_`` spelling."""
        return next(k for k in ACTIONS_UNDERSCORE if getattr(self, k) is not None)

    @property
    def is_fault(self) -> bool:
        """True for the actions that open a measured failover."""
        return self.action in FAILOVER_FAULTS

    def applies_to(self, impls: set[str]) -> bool:
        """True when the step is played for a run whose routers are ``impls``."""
        return self.impl is None or impls <= set(self.impl)

    @field_validator("impl", mode="before")
    @classmethod
    def _impl_list(cls, value: Any) -> Any:
        # One implementation may be given alone: `impl: bundled`.
        return [value] if isinstance(value, str) else value

    @field_validator("steady", mode="before")
    @classmethod
    def _steady_seconds(cls, value: Any) -> Any:
        # `true` would otherwise pass as 1.0 s: say what the key takes instead.
        if value is True or (
            not isinstance(value, bool) and isinstance(value, int | float) and value <= 0
        ):
            raise ValueError("`steady` takes a window in seconds (> 0), or false")
        return value

    @model_validator(mode="after")
    def _steady_on_faults(self) -> Step:
        if self.steady is not None and not self.is_fault:
            raise ValueError(
                f"`steady` applies to fault steps only, not to {self.action.replace('_', '-')}; "
                "use `expect: {steady: SECONDS}` elsewhere"
            )
        return self

    def title(self) -> str:
        """The step's name, or a readable rendering of its action."""
        if self.name:
            return self.name
        if self.inject is not None:
            return f"inject from {self.inject.node}: {self.inject.describe()}"
        value = getattr(self, self.action)
        if isinstance(value, BaseModel):
            value = ", ".join(f"{k}={v}" for k, v in value.model_dump(exclude_none=True).items())
        elif isinstance(value, list):
            value = ", ".join(value)
        return f"{self.action.replace('_', '-')} {value}"


ACTIONS_UNDERSCORE = ("start", "expect", "port_set", "port_unset", "observe", *FAULT_KEYS)
ACTIONS = tuple(a.replace("_", "-") for a in ACTIONS_UNDERSCORE)
