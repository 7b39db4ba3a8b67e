"""The ``routers:`` section of a scenario, and starting the routers of a lab from it.

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
"""

from __future__ import annotations

import ipaddress
import weakref
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.errors import ScenarioError, UsageError
from lab.routers import DEFAULT_IMPL
from lab.routers.base import Router, RouterParams, make_router
from lab.topology import IPAddress

if TYPE_CHECKING:
    # Only for annotations: lab.scenario will import this module to model `routers:`.
    from lab.lab import Lab
    from lab.scenario import Scenario

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


def check_router_specs(scenario: Scenario, specs: list[RouterSpec]) -> None:
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


def parse_router_specs(
    data: Any, source: str = "<scenario>", text: str | None = None
) -> list[RouterSpec]:
    """Validate the ``routers:`` value of a scenario document; one-line :class:`ScenarioError`.

    ``text`` (the YAML source) lets the error name the line.
    """
    try:
        return _RoutersDoc.model_validate({"routers": data or []}).routers
    except ValidationError as exc:
        from lab.scenario import _first_error  # the scenario loader's line-aware formatter

        tree = yaml.compose(text) if text is not None else None
        raise _first_error(exc, source, tree) from None


class _RoutersDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    routers: list[RouterSpec] = Field(default_factory=list)


def load_scenario_with_routers(path: str | Path) -> tuple[Scenario, list[RouterSpec]]:
    """A scenario file and its ``routers:`` section, whether or not ``Scenario`` models it yet.

    Until the Scenario model grows a ``routers`` field, the section is split off here and
    validated with :class:`RouterSpec`; afterwards the model's own field is used.
    """
    from lab.scenario import Scenario, _display, load_scenario, parse_scenario

    path = Path(path)
    if "routers" in Scenario.model_fields:
        scenario = load_scenario(path)
        return scenario, list(getattr(scenario, "routers", []) or [])
    source = _display(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(source, "", f"cannot read it: {exc}") from None
    routers = data.pop("routers", []) if isinstance(data, dict) else []
    specs = parse_router_specs(routers, source, text)
    scenario = parse_scenario(yaml.safe_dump(data, sort_keys=False), source, base_dir=path.parent)
    try:
        check_router_specs(scenario, specs)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ScenarioError(source, field, message) from None
    return scenario, specs


# --- from specs to routers ------------------------------------------------------------------


#: Seconds a router's graceful stop may take at lab teardown before it is SIGKILLed. Routers
#: stop side by side, so a lab's teardown is allowed one such stop (:meth:`Lab.allow_teardown`).
STOP_TIMEOUT = 10.0


class Routers(dict[str, Router]):
    """The started routers of a lab, by node name, with a few questions about them all."""

    def masters(self, instance: str | None = None) -> list[str]:
        """The nodes whose router reports MASTER (of ``instance`` when given)."""
        return [name for name, r in self.items() if r.state(instance) == "MASTER"]

    def states(self, instance: str | None = None) -> dict[str, str]:
        """Every router's current state, by node."""
        return {name: r.state(instance) for name, r in self.items()}

    def stop_all(self, *, timeout: float = 10.0) -> None:
        """Stop every running router gracefully, newest first."""
        for router in reversed(list(self.values())):
            router.close(timeout=timeout)

    def close_together(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every router gracefully at once: the teardown of a lab.

        A graceful stop waits for the daemon to exit, and keepalived takes about a second to
        remove its VMAC interface; stopping the routers side by side costs one such wait, not
        one per router. Every router is stopped even if another's stop fails.
        """
        routers = list(self.values())
        if not routers:
            return
        with ThreadPoolExecutor(max_workers=len(routers)) as pool:
            futures = [pool.submit(router.close, timeout=timeout) for router in routers]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]


_LAB_ROUTERS: weakref.WeakKeyDictionary[Lab, Routers] = weakref.WeakKeyDictionary()


def routers_of(lab: Lab) -> Routers:
    """The routers started in ``lab`` so far (empty before :func:`start_routers`)."""
    return _LAB_ROUTERS.setdefault(lab, Routers())


def router_of(lab: Lab, node: str | Router) -> Router:
    """The router running in ``node`` (a node name), or ``node`` itself when it is a router."""
    if isinstance(node, Router):
        return node
    routers = routers_of(lab)
    try:
        return routers[node]
    except KeyError:
        known = ", ".join(routers) or "none started"
        raise UsageError(f"no router runs in {node!r}; routers: {known}") from None


def router_params(lab: Lab, spec: RouterSpec, specs: list[RouterSpec]) -> RouterParams:
    """Render-ready parameters for ``spec``, its defaults filled in from the lab's topology."""
    node = lab.node(spec.node)
    port = node.ports[0]
    interface = spec.interface or port.ifname
    if spec.vips is not None:
        vips = tuple(spec.vips)
    else:
        vips = tuple(str(v.address) for v in lab.scenario.vips if v.network == port.network.name)
    if not vips:
        raise ScenarioError(
            lab.scenario.name,
            f"routers[{specs.index(spec)}].vips",
            f"no virtual IP given and the scenario has none on network {port.network.name}",
        )
    # keepalived also takes unicast_src_ip as the source of multicast adverts.
    src = str(spec.unicast_src_ip) if spec.unicast_src_ip is not None else None
    peers: tuple[str, ...] = ()
    if spec.is_unicast:
        src = src or str(port.ips[0])
        if spec.unicast_peers is not None:
            peers = tuple(str(p) for p in spec.unicast_peers)
        else:
            # The other routers of this VRID (a verbatim config's VRID is not known: included).
            peers = tuple(
                str(lab.node(other.node).ports[0].ips[0])
                for other in specs
                if other is not spec and (other.config is not None or other.vrid == spec.vrid)
            )
    return RouterParams(
        interface=interface,
        priority=spec.priority,
        vrid=spec.vrid,
        vips=vips,
        advert_int=spec.advert_int,
        version=spec.version,
        state=spec.state,
        instance=spec.instance or f"vrrp_{spec.vrid}",
        unicast_src_ip=src,
        unicast_peers=peers,
        use_vmac=spec.use_vmac,
        vmac_xmit_base=spec.vmac_xmit_base,
        nopreempt=spec.nopreempt,
    )


def build_router(
    lab: Lab, spec: RouterSpec, specs: list[RouterSpec], impl_override: str | None = None
) -> Router:
    """The (not started) router of ``spec``: implementation chosen, config read or rendered."""
    from lab.scenario import scenario_base_dir

    impl = spec.impl or impl_override or DEFAULT_IMPL
    node = lab.node(spec.node)
    if spec.config is not None:
        path = spec.config
        if not path.is_absolute():
            path = scenario_base_dir(lab.scenario) / path
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(
                lab.scenario.name,
                f"routers[{specs.index(spec)}].config",
                f"cannot read {path}: {exc.strerror or exc}",
            ) from None
        return make_router(impl, node, text, source=str(path))
    return make_router(impl, node, router_params(lab, spec, specs))


def prepare_routers(
    lab: Lab,
    specs: list[RouterSpec],
    impl_override: str | None = None,
) -> Routers:
    """Build the routers of ``specs`` in ``lab`` without starting them; return them by node.

    For runs whose steps start routers themselves. Their teardown (graceful stops, side by side,
    of those running by then) is registered with ``lab.defer``, and the routers join
    :func:`routers_of`.
    ``impl_override`` is as for :func:`start_routers`.
    """
    try:
        check_router_specs(lab.scenario, specs)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ScenarioError(lab.scenario.name, field, message) from None
    routers = routers_of(lab)
    for spec in specs:
        if spec.node in routers:
            raise UsageError(f"a router already runs in {spec.node}")
    prepared = Routers()
    lab.defer(f"routers on {', '.join(s.node for s in specs)}", prepared.close_together)
    lab.allow_teardown(STOP_TIMEOUT)
    for spec in specs:
        router = build_router(lab, spec, specs, impl_override)
        routers[spec.node] = router
        prepared[spec.node] = router
    return prepared


def start_routers(
    lab: Lab,
    specs: list[RouterSpec],
    impl_override: str | None = None,
    *,
    timeout: float = 10.0,
) -> Routers:
    """Start the routers of ``specs`` in ``lab``, in order; return them by node name.

    ``impl_override`` is the run's implementation (``--impl``): it applies to every router
    whose spec does not pin ``impl``. The routers' graceful stops are registered with
    ``lab.defer`` before any starts, so teardown stops every daemon (SIGTERM, priority 0) before
    the sandbox dies, and a failed start unwinds the routers already running.
    """
    routers = prepare_routers(lab, specs, impl_override)
    for router in routers.values():
        router.start(timeout=timeout)
    return routers
