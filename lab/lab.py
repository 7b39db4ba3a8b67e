"""The :class:`Lab`: a scenario's topology brought to life, and torn down without a trace.

Build order: sandbox → keepers of the fabric and of every instance (started in parallel) →
bridges → veth pairs with addresses → the SDN → on IPv6 ports, the end of duplicate address
detection (what ``network-online.target`` waits for before an instance starts its services).
Every step registers its undo on a LIFO stack the moment it has succeeded (kselftest
``net/lib.sh``'s ``defer``), so a lab that fails half-way through its build unwinds exactly what
it had made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from lab.errors import LabError, UsageError
from lab.fabric import Fabric
from lab.node import Node
from lab.port import LabPort
from lab.registry import LabRecord
from lab.routers.group import Routers
from lab.sandbox import Sandbox
from lab.scenario import Scenario, load_scenario
from lab.wait import wait_until

log = logging.getLogger(__name__)

#: Seconds duplicate address detection may take on a lab's IPv6 ports: about 2 s by RFC 4862's
#: defaults, with room for a loaded host (nothing is judged by it).
DAD_SECONDS = 10.0
#: ``ifaddrmsg`` flags (linux/if_addr.h): still in duplicate address detection; failed it.
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08

#: Seconds the lab's own teardown may take once asked, without routers: its helper programs
#: (capture, prober, SDN controller, followers) end within a second or two of their stdin
#: closing, and the kernel takes the sandbox's processes at once.
TEARDOWN_BASE = 5.0


class Lab:
    """A running lab. Use it as a context manager::

        with Lab.from_scenario("scenarios/seed.yaml") as lab:
            lab.node("observer").run("ping -c1 10.200.51.32")

    Building the lab starts no VRRP daemon; routers are started by later, explicit steps.
    """

    def __init__(self, scenario: Scenario, *, label: str | None = None) -> None:
        self.scenario = scenario
        self.id = label or f"{scenario.name}-{secrets.token_hex(3)}"
        self.sandbox = Sandbox(self.id)
        self.fabric = Fabric(self.sandbox, scenario)
        self.nodes: dict[str, Node] = {
            inst.name: Node(self.sandbox, inst) for inst in scenario.instances
        }
        self.build_seconds: float | None = None
        self.record: LabRecord | None = None
        self._routers = Routers()
        self._deferred: list[tuple[str, Callable[[], Any]]] = []
        self._started = False
        self._teardown_bound = TEARDOWN_BASE

    @classmethod
    def from_scenario(cls, path: str | Path, **kwargs: Any) -> Lab:
        """A lab for the scenario file at ``path`` (not started: use ``with``)."""
        return cls(load_scenario(path), **kwargs)

    # -- lifecycle --------------------------------------------------------------------------

    def defer(self, what: str, undo: Callable[[], Any]) -> None:
        """Register ``undo`` to run at teardown, before everything registered earlier."""
        self._deferred.append((what, undo))

    def allow_teardown(self, seconds: float) -> None:
        """Let the teardown take ``seconds`` more than the lab's own (e.g. the longest graceful
        router stop of those that run side by side); ``vrrp-lab down`` waits that long."""
        self._teardown_bound = max(self._teardown_bound, TEARDOWN_BASE + seconds)
        if self.record is not None:
            self.record.teardown_bound = self._teardown_bound
            self.record.save()

    def start(self) -> Lab:
        """Build the topology. On failure, undo what was built and re-raise."""
        if self._started:
            raise LabError(f"lab {self.id} is already started")
        self._started = True
        began = time.perf_counter()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.perf_counter() - began
        return self

    def _build(self) -> None:
        self.sandbox.start()
        self.defer("sandbox", self.sandbox.close)
        namespaces = [self.fabric, *self.fabric.hypervisors.values(), *self.nodes.values()]
        for ns in namespaces:
            ns.spawn_keeper()
            self.defer(f"namespace {ns.name}", ns.close)
        for ns in namespaces:
            ns.await_keeper()
        self.fabric.build_bridges()
        for inst, port, ifname in self.scenario.ports():
            node = self.nodes[inst.name]
            node.ports.append(self.fabric.attach(inst, port, ifname, node))
        self.fabric.apply_sdn(self.defer)
        self._await_ipv6_addresses()
        self.record = LabRecord(
            id=self.id,
            scenario=self.scenario.name,
            runner_pid=os.getpid(),
            rootless=self.sandbox.rootless,
            nodes={ns.name: ns.pid for ns in namespaces},
            vips=[str(v.address) for v in self.scenario.vips],
            teardown_bound=self._teardown_bound,
        )
        self.record.save()
        self.defer("registry record", self.record.remove)

    def _await_ipv6_addresses(self) -> None:
        """Wait until no IPv6 address of an instance with an IPv6 port is tentative.

        An instance's services start once its network is online; with IPv6 that includes
        duplicate address detection of the link-local address (the lab's own addresses skip it),
        up to about 2 s after the port came up (RFC 4862 §5.4: a random delay of up to 1 s,
        then one RetransTimer of 1 s). A VRRP daemon started earlier cannot send from its
        link-local address (keepalived 2.2.7 then stays in FAULT). Labs with neither an IPv6
        port address nor an IPv6 VIP do not wait.
        """
        nodes = list(self.nodes.values())
        if not any(v.address.version == 6 for v in self.scenario.vips):
            nodes = [n for n in nodes if any(ip.version == 6 for p in n.ports for ip in p.ips)]
        if not nodes:
            return

        def tentative() -> list[str]:
            found = []
            for node in nodes:
                for msg in node.ipr.get_addr(family=socket.AF_INET6):
                    if msg["flags"] & IFA_F_DADFAILED:
                        raise LabError(
                            f"{node.name}: duplicate address detection failed for "
                            f"{msg.get_attr('IFA_ADDRESS')}: another host on its network holds it"
                        )
                    if msg["flags"] & IFA_F_TENTATIVE:
                        found.append(f"{node.name} {msg.get_attr('IFA_ADDRESS')}")
            return found

        wait_until(
            tentative,
            accept=lambda left: not left,
            timeout=DAD_SECONDS,
            what="the instances' IPv6 addresses to leave duplicate address detection",
        )

    def close(self) -> None:
        """Tear everything down, newest first. Every undo runs even when an earlier one fails."""
        errors: list[str] = []
        while self._deferred:
            what, undo = self._deferred.pop()
            try:
                undo()
            except Exception as exc:  # keep unwinding: a leak is worse than a lost message
                log.warning("teardown of %s failed: %s", what, exc)
                errors.append(f"{what}: {exc}")
        if errors:
            raise LabError(f"lab {self.id} teardown had errors: {'; '.join(errors)}")

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The body's exception is the story; a teardown error must not replace it.
        with contextlib.suppress(LabError):
            self.close()

    # -- access -----------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """The node (instance) called ``name``."""
        try:
            return self.nodes[name]
        except KeyError:
            raise UsageError(
                f"scenario {self.scenario.name} has no instance {name!r}; "
                f"its instances are: {', '.join(self.nodes)}"
            ) from None

    def port(self, name: str) -> LabPort:
        """A port, by instance name (its first port), port name, or port id (or id prefix)."""
        if name in self.nodes:
            return self.nodes[name].ports[0]
        ports = self.fabric.ports.values()
        matches = [p for p in ports if name in (p.port.name, p.id, p.tap) or p.id.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(f"{p.instance.name}:{p.id[:8]}" for p in ports)
        raise UsageError(f"no single port matches {name!r}; ports are: {known}")

    @property
    def routers(self) -> Routers:
        """The routers started or prepared in this lab, by node name
        (docs/architecture.md#contracts)."""
        return self._routers

    @property
    def running(self) -> bool:
        """True while the lab's sandbox is alive."""
        return self.sandbox.running

    def __repr__(self) -> str:
        return f"<Lab {self.id} nodes={list(self.nodes)}>"
