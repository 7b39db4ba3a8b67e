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

``impl`` pins an implementation for one router; without it the run's choice applies (``--impl``,
else ``keepalived``).

The schema imports no part of the lab above the topology model, so the scenario model can use
it; starting routers from it is :mod:`lab.routers.spec`'s work.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.topology import IPAddress, Topology

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
)


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
    vrid: int = Field(1, ge=1, le=255, description="virtual_router_id.")
    priority: int = Field(100, ge=1, le=255)
    advert_int: float = Field(1.0, gt=0, description="Seconds; sub-second needs version 3.")
    version: Literal[2, 3] = 3
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

    @field_validator("advert_int")
    @classmethod
    def _advert_int(cls, value: float) -> float:
        centis = Decimal(str(value)) * 100
        if centis != centis.to_integral_value() or not 1 <= centis <= 4095:
            raise ValueError(
                f"{value:g} is not a whole number of centiseconds between 0.01 and 40.95"
            )
        return value

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
        if self.version == 2 and self.advert_int != int(self.advert_int):
            raise ValueError(
                f"advert_int: {self.advert_int:g}s needs version 3 (VRRPv2 counts whole seconds)"
            )
        if self.vmac_xmit_base and not self.use_vmac:
            raise ValueError("vmac_xmit_base: needs use_vmac: true")
        if self.nopreempt and self.state == "MASTER":
            raise ValueError("nopreempt: keepalived ignores it with state MASTER; use BACKUP")
        return self

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
