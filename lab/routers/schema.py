"""The ``routers:`` section of a scenario: the model of one router entry, and its checks.

Each entry puts one VRRP router in one node. Either the router's ``keepalived.conf`` is given
verbatim::

    routers:
      - node: ha_first
        config: seed/ha_first.conf        # relative to the scenario file, used byte for byte

or it is rendered from parameters, with defaults taken from the topology::

    routers:
      - node: ha_first
        priority: 200
        advert_int: 0.1                   # sub-second needs version 3 (the default)
        unicast: true                     # src = the node's IP, peers = the other routers' IPs
        use_vmac: true
        vmac_xmit_base: true
                                          # vips default to the scenario's vips on the node's
                                          # network, interface to the node's first (ens3)

A rendered router may run BFD to the other routers of its network, tracked by its instance::

        bfd: {min_rx: 0.05, min_tx: 0.05, multiplier: 3, track: weighted, weight: 20,
              takeover: true}

A rendered router may track health checks run in its node (keepalived's ``vrrp_script``)::

        checks:
          - {name: chk_service, script: "test ! -e /run/down", weight: -60, fall: 2}

or files in its node holding a number (keepalived's ``track_file``; the ``file-flag`` step
writes them)::

        files:
          - {name: maintenance, path: /run/maintenance, weight: 0, init: 0}

``impl`` pins an implementation for one router; without it the run's choice applies (``--impl``,
else ``keepalived``).

The schema imports no part of the lab above the topology model, so the scenario model can use
it; starting routers from it is :mod:`lab.routers.spec`'s work.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.routers.params import BfdParams, CheckParams, FileParams, RouterParams
from lab.topology import IPAddress, Topology
from vrrp.config import ConfigError, TrackInterface
from vrrp.config.values import (
    BFD_MULTIPLIER,
    PRIORITY,
    TRACK_WEIGHT,
    VERSION,
    VRID,
    IntRange,
)

#: An address of each family standing in for a VIP or peer not known before bring-up
#: (documentation ranges, RFC 5737 and RFC 3849).
_STAND_IN = {4: "192.0.2.1", 6: "2001:db8::1"}
#: The router's own address, standing in as a BFD session's source.
_STAND_IN_SOURCE = {4: "192.0.2.2", 6: "2001:db8::2"}


def _range(domain: IntRange) -> dict[str, int]:
    """A model range as JSON Schema bounds, for editors; only the model checks it."""
    return {"minimum": domain.lo, "maximum": domain.hi}


#: The fields that describe a rendered config; none of them may accompany ``config``.
RENDER_FIELDS = (
    "instance",
    "interface",
    "vrid",
    "priority",
    "advert_int",
    "version",
    "state",
    "vips",
    "unicast",
    "unicast_src_ip",
    "unicast_peers",
    "use_vmac",
    "vmac_xmit_base",
    "nopreempt",
    "check_unicast_src",
    "bfd",
    "checks",
    "files",
    "track_interface",
)


class BfdSpec(BaseModel):
    """BFD from a rendered router to each of the other routers on its network: one
    ``bfd_instance`` per peer (named after the peer's node, from the router's own address),
    tracked by the router's ``vrrp_instance``. Defaults are keepalived 2.2.7's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rx: float = Field(0.010, description="Required Min RX Interval, seconds (keepalived's ms).")
    min_tx: float = Field(0.010, description="Desired Min TX Interval while Up, seconds.")
    multiplier: int = Field(5, description="Detect Mult.", json_schema_extra=_range(BFD_MULTIPLIER))
    idle_tx: float = Field(1.0, description="Desired Min TX Interval until Up, seconds (>= 1).")
    track: Literal["unweighted", "weighted", "none"] = Field(
        "unweighted",
        description="What a session going down does: unweighted, the instance is FAULT while it "
        "is not Up (keepalived's meaning); weighted, the priority moves by `weight`; none, "
        "nothing (BFD only runs).",
    )
    weight: int = Field(
        0, description="With track: weighted.", json_schema_extra=_range(TRACK_WEIGHT)
    )
    takeover: bool = Field(
        False,
        description="bfd_takeover (bundled only; keepalived ignores it): the session to the "
        "master going Down ends the Master_Down_Timer at once.",
    )

    def params(self) -> BfdParams:
        """The same, as :class:`RouterParams` takes it."""
        return BfdParams(**self.model_dump())


class CheckSpec(BaseModel):
    """A health check a rendered router's instance tracks: keepalived's ``vrrp_script`` (run in
    the router's node every ``interval`` seconds) and a ``track_script`` naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The vrrp_script's name.")
    script: str = Field(description="The command, with its arguments (exit 0: healthy).")
    interval: int = Field(1, description="Seconds between runs (whole seconds, >= 1).")
    timeout: int | None = Field(None, description="Seconds a run may take; default: interval.")
    weight: int = Field(
        0,
        description="0: the instance is FAULT while the check fails; otherwise the priority "
        "moves by it (a negative weight while failing, a positive one while healthy).",
        json_schema_extra=_range(TRACK_WEIGHT),
    )
    rise: int = Field(1, description="Successes in a row that make a failed check healthy.")
    fall: int = Field(1, description="Failures in a row that make a healthy check fail.")
    init_fail: bool = Field(False, description="Failed until it first succeeds.")

    def params(self) -> CheckParams:
        """The same, as :class:`RouterParams` takes it."""
        return CheckParams(**self.model_dump())


class TrackedInterfaceSpec(BaseModel):
    """An interface of the router's node its instance tracks: keepalived's ``track_interface``
    (the ``interface-down`` step takes it down inside the node)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The interface, as the node names it (ens4 for a 2nd port).")
    weight: int | None = Field(
        None,
        description="None: the instance is in FAULT while the interface is down; otherwise the "
        "priority moves by it while the interface is down (negative) or up (positive).",
        json_schema_extra=_range(TRACK_WEIGHT),
    )
    reverse: bool = Field(False, description="Negate the weight (needs a weight).")

    @model_validator(mode="after")
    def _keepalived_reads_it(self) -> TrackedInterfaceSpec:
        # The model's own words, with this entry's path: keepalived's ranges and rules.
        try:
            self.params()
        except ConfigError as err:
            # "track_interface weight: ..." names the field "weight" of this entry.
            raise ValueError(err.message.removeprefix("track_interface").lstrip(": ")) from None
        return self

    def params(self) -> TrackInterface:
        """The same, as :class:`RouterParams` takes it."""
        return TrackInterface(self.name, self.weight, self.reverse)


class TrackedFileSpec(BaseModel):
    """A file a rendered router's instance tracks: keepalived's ``track_file`` (the file is in
    the router's node, and holds a number; the ``file-flag`` step writes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The track_file's name.")
    path: str = Field(description="The file, inside the node (its /run is its own).")
    weight: int = Field(
        1,
        description="0: the instance is FAULT while the file holds a non-zero number; otherwise "
        "the priority moves by number × weight (FAULT at -254 or less).",
        json_schema_extra={"minimum": -254, "maximum": 254},
    )
    reverse: bool = Field(False, description="Negate the weight (weight 0: FAULT while zero).")
    init: int | None = Field(None, description="Written at start when the file is missing.")

    def params(self) -> FileParams:
        """The same, as :class:`RouterParams` takes it."""
        return FileParams(**self.model_dump())


class RouterSpec(BaseModel):
    """One router of a scenario: a node, an implementation, and a verbatim or rendered config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(description="The instance the router runs in.")
    impl: str | None = Field(
        None, description="Implementation for this router only; default: the run's (keepalived)."
    )
    config: Path | None = Field(
        None, description="A keepalived.conf used verbatim, relative to the scenario file."
    )
    instance: str | None = Field(None, description="vrrp_instance name; default vrrp_<vrid>.")
    interface: str | None = Field(None, description="Default: the node's first interface.")
    # The ranges are shown in the JSON Schema for editors, and checked by the model alone.
    vrid: int = Field(1, description="virtual_router_id.", json_schema_extra=_range(VRID))
    priority: int = Field(100, json_schema_extra=_range(PRIORITY))
    advert_int: float = Field(
        1.0,
        description="Seconds, in whole centiseconds; sub-second needs version 3.",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    version: int = Field(3, json_schema_extra={"enum": [VERSION.lo, VERSION.hi]})
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    vips: list[str] | None = Field(
        None, description="Virtual IPs (IP or IP/prefix); default: the scenario's on this network."
    )
    unicast: bool = Field(False, description="Unicast adverts to the other routers of the lab.")
    unicast_src_ip: IPAddress | None = Field(None, description="Default: the node's IP.")
    unicast_peers: list[IPAddress] | None = Field(
        None, description="Default (with unicast): the other routers' IPs on this network."
    )
    use_vmac: bool = False
    vmac_xmit_base: bool = False
    nopreempt: bool = False
    check_unicast_src: bool = Field(
        False,
        description="Drop unicast adverts from addresses that are not a peer (keepalived "
        "accepts them without it; the bundled daemon always drops them).",
    )
    bfd: BfdSpec | None = Field(
        None, description="BFD to the other routers on this network, tracked by the instance."
    )
    checks: list[CheckSpec] = Field(
        default_factory=list, description="Health checks (vrrp_script) tracked by the instance."
    )
    files: list[TrackedFileSpec] = Field(
        default_factory=list, description="Files (track_file) tracked by the instance."
    )
    track_interface: list[TrackedInterfaceSpec] = Field(
        default_factory=list,
        description="Interfaces of the node (track_interface) tracked by the instance.",
    )

    @field_validator("vips")
    @classmethod
    def _vips(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for vip in value:
            try:
                out.append(str(ipaddress.ip_interface(str(vip))).removesuffix("/32"))
            except ValueError:
                raise ValueError(f"{vip!r} is not an IP address (or IP/prefix)") from None
        return out

    @model_validator(mode="after")
    def _consistent(self) -> RouterSpec:
        if self.config is not None:
            rendered = [f for f in RENDER_FIELDS if f in self.model_fields_set]
            if rendered:
                raise ValueError(
                    f"config: a verbatim config cannot be combined with {', '.join(rendered)}; "
                    "drop config or those fields"
                )
            return self
        # Building the parameters is the check: the model raises its first problem.
        self.stand_in_params()
        return self

    def stand_in_params(self) -> RouterParams:
        """This entry's :class:`RouterParams` with stand-ins for what the topology fills in
        at bring-up (the interface, the VIPs, the unicast peers), so that the model can judge
        the entry when the scenario is read (``ValueError``, ``field: problem``, if it is
        invalid). :func:`lab.routers.spec.router_params` builds the real one, and the model
        judges it again then (the VIPs' family, say)."""
        given = [*(self.vips or ()), self.unicast_src_ip, *(self.unicast_peers or ())]
        family = next((ipaddress.ip_interface(str(a)).version for a in given if a), 4)
        stand_in = _STAND_IN[family]
        peers = self.unicast_peers if self.unicast_peers is not None else []
        if self.unicast and not peers:
            peers = [stand_in]
        bfd = self.bfd.params() if self.bfd is not None else None
        return RouterParams(
            interface=self.interface or "eth0",
            priority=self.priority,
            vrid=self.vrid,
            vips=tuple(self.vips) if self.vips else (stand_in,),
            advert_int=self.advert_int,
            version=self.version,
            state=self.state,
            instance=self.instance or f"vrrp_{self.vrid}",
            unicast_src_ip=str(self.unicast_src_ip) if self.unicast_src_ip else None,
            unicast_peers=tuple(str(p) for p in peers),
            use_vmac=self.use_vmac,
            vmac_xmit_base=self.vmac_xmit_base,
            nopreempt=self.nopreempt,
            check_unicast_src=self.check_unicast_src,
            bfd=bfd,
            bfd_peers=(("peer", stand_in),) if bfd is not None else (),
            bfd_source=_STAND_IN_SOURCE[family] if bfd is not None else None,
            checks=tuple(check.params() for check in self.checks),
            files=tuple(tracked.params() for tracked in self.files),
            track_interface=tuple(t.params() for t in self.track_interface),
        )

    @property
    def rendered(self) -> bool:
        """True when the config is rendered from parameters rather than given verbatim."""
        return self.config is None

    @property
    def is_unicast(self) -> bool:
        """True when the rendered router advertises by unicast (``unicast`` or explicit peers)."""
        return self.unicast or bool(self.unicast_peers)


# --- checking specs against a topology --------------------------------------------------------


def check_router_specs(scenario: Topology, specs: list[RouterSpec]) -> None:
    """Raise ``ValueError("routers[i].field: ...")`` when ``specs`` do not fit ``scenario``.

    Meant for the Scenario model's validator: the message carries its own dotted path.
    """
    nodes = {inst.name for inst in scenario.instances}
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.node not in nodes:
            raise ValueError(
                f"routers[{i}].node: unknown instance {spec.node!r} "
                f"(expected one of: {', '.join(sorted(nodes))})"
            )
        if spec.node in seen:
            raise ValueError(f"routers[{i}].node: {spec.node!r} already has a router")
        seen.add(spec.node)
