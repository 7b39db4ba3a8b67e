"""Starting the routers of a lab from its scenario's ``routers:`` entries.

The entries are modelled by :class:`lab.routers.schema.RouterSpec`, and the started routers are
held by the lab (:attr:`lab.lab.Lab.routers`, a :class:`~lab.routers.group.Routers`). This
module sits above both the lab and the scenario: it fills in a router's defaults from the lab's
topology, builds each driver and registers the routers' teardown. The schema's names stay
importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import ScenarioError, UsageError
from lab.lab import Lab
from lab.routers import DEFAULT_IMPL
from lab.routers.base import Router, make_router
from lab.routers.group import STOP_TIMEOUT, Routers
from lab.routers.params import RouterParams
from lab.routers.schema import RENDER_FIELDS, RouterSpec, check_router_specs
from lab.scenario import Scenario, first_error, load_scenario, scenario_base_dir

__all__ = [
    "RENDER_FIELDS",
    "STOP_TIMEOUT",
    "RouterSpec",
    "Routers",
    "build_router",
    "check_router_specs",
    "load_scenario_with_routers",
    "parse_router_specs",
    "prepare_routers",
    "router_of",
    "router_params",
    "routers_of",
    "start_routers",
]


# --- the routers: section of a document -------------------------------------------------------


def parse_router_specs(
    data: Any, source: str = "<scenario>", text: str | None = None
) -> list[RouterSpec]:
    """Validate the ``routers:`` value of a scenario document; one-line :class:`ScenarioError`.

    ``text`` (the YAML source) lets the error name the line.
    """
    try:
        return _RoutersDoc.model_validate({"routers": data or []}).routers
    except ValidationError as exc:
        tree = yaml.compose(text) if text is not None else None
        raise first_error(exc, source, tree) from None


class _RoutersDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    routers: list[RouterSpec] = Field(default_factory=list)


def load_scenario_with_routers(path: str | Path) -> tuple[Scenario, list[RouterSpec]]:
    """A scenario file and its ``routers:`` section: ``load_scenario(path)`` and a copy of its
    ``routers``, kept for the tests that load them this way."""
    scenario = load_scenario(path)
    return scenario, list(scenario.routers)


# --- from specs to routers ------------------------------------------------------------------


def routers_of(lab: Lab) -> Routers:
    """The routers started in ``lab`` so far (empty before :func:`start_routers`).

    The same object as ``lab.routers``, which holds them.
    """
    return lab.routers


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
    bfd_peers: tuple[tuple[str, str], ...] = ()
    if spec.bfd is not None:
        # Every other router on this network, whatever its VRID: BFD watches the path to it.
        bfd_peers = tuple(
            (other.node, str(lab.node(other.node).ports[0].ips[0]))
            for other in specs
            if other is not spec and lab.node(other.node).ports[0].network is port.network
        )
    try:
        return _params(spec, interface, vips, src, peers, bfd_peers, str(port.ips[0]))
    except ValueError as err:
        # What only the topology's defaults reveal (an IPv6 VIP under version 2, say).
        field, _, message = str(err).partition(": ")
        raise ScenarioError(
            lab.scenario.name, f"routers[{specs.index(spec)}].{field}", message
        ) from None


def _params(
    spec: RouterSpec,
    interface: str,
    vips: tuple[str, ...],
    src: str | None,
    peers: tuple[str, ...],
    bfd_peers: tuple[tuple[str, str], ...] = (),
    bfd_source: str | None = None,
) -> RouterParams:
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
        check_unicast_src=spec.check_unicast_src,
        bfd=spec.bfd.params() if spec.bfd is not None else None,
        bfd_peers=bfd_peers,
        bfd_source=bfd_source if spec.bfd is not None else None,
        checks=tuple(check.params() for check in spec.checks),
        files=tuple(tracked.params() for tracked in spec.files),
        track_interface=tuple(t.params() for t in spec.track_interface),
    )


def build_router(
    lab: Lab, spec: RouterSpec, specs: list[RouterSpec], impl_override: str | None = None
) -> Router:
    """The (not started) router of ``spec``: implementation chosen, config read or rendered."""
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
