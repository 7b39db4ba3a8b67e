"""Applying the SDN to a lab's fabric: nft table, static FDB, state file and controller.

:meth:`FabricSdn.apply` runs once the bridges and every port exist. It loads the whole
``bridge vrrp_lab`` table in one ``nft -f`` (atomic: no frame ever sees half a ruleset),
pins port MACs where a network asks for a static FDB, writes the pairs' state file, and starts
the controller when some network needs it (an ARP mode other than ``flood``, or GARP not
simply flooded).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lab.errors import CommandFailed, EnvironmentMissing, LabError
from lab.node import Namespace
from lab.port import LabPort
from lab.sdn.client import ControllerClient, Event
from lab.sdn.ports import (
    STATE_PATH,
    change_pairs,
    initial_state,
    locked_state,
    pin_first_listers,
    read_state,
    write_state,
)
from lab.sdn.profiles import Knobs
from lab.sdn.ruleset import NFLOG_GROUP, TABLE, NetworkSpec, Pair, PortSpec, render_table
from lab.topology import AllowedAddressPair, Topology

log = logging.getLogger(__name__)

CONTROLLER_CONFIG = "/run/vrrp-lab-sdn/controller.json"
CONTROLLER_STDERR = "/run/vrrp-lab-sdn/controller.log"
#: The controller's source, run as a script (importing it here would make ``python -m
#: lab.sdn.controller`` find itself already imported).
CONTROLLER_SCRIPT = Path(__file__).with_name("controller.py")


def port_spec(port: LabPort) -> PortSpec:
    """The ruleset's view of a lab port."""
    return PortSpec(
        id=port.id,
        instance=port.instance.name,
        network=port.network.name,
        tap=port.tap,
        mac=port.mac,
        fixed_ips=tuple(str(ip) for ip in port.ips),
        security=port.port.port_security_enabled,
    )


def pairs_of(port: LabPort) -> list[Pair]:
    """A lab port's current allowed address pairs as ruleset pairs."""
    return [Pair(str(p.ip_address), p.mac_address) for p in port.allowed_address_pairs]


def controller_interpreter() -> str:
    """A Python 3 this process may execute, for the controller (it needs the stdlib only).

    Normally the runner's own interpreter. A rootless lab started by an unprivileged user may
    run an interpreter that user cannot execute (imported before dropping privileges, e.g. a
    venv under /root): then the system's ``python3`` serves.
    """
    candidates = [sys.executable, shutil.which("python3"), "/usr/bin/python3"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EnvironmentMissing(
        "the SDN controller needs a Python 3 interpreter this user can execute "
        f"(tried {', '.join(c for c in candidates if c)}); install python3 "
        "(apt-get install python3-minimal)"
    )


def needs_nft(knobs: Knobs) -> bool:
    """False for a bare bridge (``l2-plain``): then no table is loaded at all."""
    return (
        knobs.port_security != "off"
        or knobs.broadcast != "forward"
        or knobs.multicast != "forward"
        or knobs.controller_needed
    )


class FabricSdn:
    """The SDN layer of one fabric. Reached as ``lab.fabric.sdn``.

    Built from the fabric's namespace, the topology and the fabric's port table, which it reads
    live: ports attached after it is built are the ones :meth:`apply` programs.
    """

    def __init__(
        self, namespace: Namespace, topology: Topology, ports: Mapping[str, LabPort]
    ) -> None:
        self.namespace = namespace
        """The fabric's namespace, where nft, the bridges and the controller run."""
        self.topology = topology
        self.ports = ports
        """The fabric's ports by id."""
        self.controller: ControllerClient | None = None
        """The controller's client, when some network runs one."""
        self.networks: list[NetworkSpec] = []

    @property
    def state_path(self) -> Path:
        """The pairs' state file, as the runner reaches it."""
        return self.namespace.path(STATE_PATH)

    def table(self) -> str:
        """The nft table text as it was loaded at build."""
        return render_table(self.networks, {p.id: pairs_of(p) for p in self.ports.values()})

    # -- build --------------------------------------------------------------------------------

    def apply(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Start the controller, load the table, program static FDBs, write the state."""
        # Networks on engine ovn are the real OVN's (lab.ovn.fabric): no nft, no controller,
        # no FDB here. Their ports still get a state entry (mode off), which lab.ovn extends.
        emulated = [net for net in self.topology.networks if net.sdn.engine == "emulated"]
        ports = [p for p in self.ports.values() if p.network.sdn.engine == "emulated"]
        self.networks = [
            NetworkSpec(
                net.name,
                net.sdn.resolve(),
                tuple(port_spec(p) for p in ports if p.network.name == net.name),
            )
            for net in emulated
        ]
        if any(n.knobs.controller_needed for n in self.networks):
            # Started first: its interpreter boots while nft loads the table.
            self._start_controller()
            defer("sdn controller", self.close)
        if any(needs_nft(n.knobs) for n in self.networks):
            if shutil.which("nft") is None:
                raise EnvironmentMissing(
                    "nft is not installed, and this scenario's SDN profile needs it; install "
                    "nftables (apt-get install nftables)"
                )
            self.namespace.run(["nft", "-f", "-"], input=self.table())
        knobs = {n.name: n.knobs for n in self.networks}
        for port in ports:
            if knobs[port.network.name].fdb in ("static", "static-first"):
                self._static_fdb(port, learning=knobs[port.network.name].fdb == "static")
        # A port of an ovn network has no knobs: "off" loads no nft element for its pairs.
        write_state(
            self.state_path,
            initial_state(
                (
                    port_spec(p),
                    knobs[p.network.name].port_security if p.network.name in knobs else "off",
                    knobs[p.network.name].fdb if p.network.name in knobs else "learning",
                    pairs_of(p),
                )
                for p in self.ports.values()
            ),
        )
        if any(k.fdb == "static-first" for k in knobs.values()):
            with locked_state(self.state_path) as state:
                pin_first_listers(state, lambda argv, stdin: self.namespace.run(argv, input=stdin))
        if self.controller is not None:
            ready = self.controller.wait_ready()
            log.info("SDN controller pid %s serves %s", ready["pid"], ", ".join(ready["networks"]))

    def _static_fdb(self, port: LabPort, *, learning: bool) -> None:
        # The port's own MAC is pinned to its tap and unknown unicast is not flooded. With
        # `static`, learning stays on for the MACs of allowed pairs: port security (prerouting)
        # has vetted every source the bridge can learn, so a VMAC is bound to whichever allowed
        # port last sent from it. With `static-first` it is off: a pair's MAC is pinned to the
        # first port that lists it (lab.sdn.ports.pin_first_listers), as the real OVN does.
        self.namespace.run(
            [
                "bridge",
                "link",
                "set",
                "dev",
                port.tap,
                "learning",
                "on" if learning else "off",
                "flood",
                "off",
            ]
        )
        self.namespace.run(
            ["bridge", "fdb", "replace", port.mac, "dev", port.tap, "master", "static"]
        )

    def _start_controller(self) -> None:
        config = {
            "group": NFLOG_GROUP,
            "state": STATE_PATH,
            "networks": {
                n.name: {
                    "knobs": n.knobs.model_dump(mode="json"),
                    "ports": [p.to_json() for p in n.ports],
                }
                for n in self.networks
                if n.knobs.controller_needed
            },
        }
        config_path = self.namespace.path(CONTROLLER_CONFIG)
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config, indent=1))
        stderr_path = self.namespace.path(CONTROLLER_STDERR)
        with stderr_path.open("w") as stderr:
            # Run the module as a script, isolated and without site-packages: it needs only the
            # standard library, so it starts fast and never pulls in the lab package.
            proc = self.namespace.popen(
                [
                    controller_interpreter(),
                    "-I",
                    "-S",
                    str(CONTROLLER_SCRIPT),
                    CONTROLLER_CONFIG,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )
        self.controller = ControllerClient(proc, stderr_path, on_death=self._fail_closed)

    def _fail_closed(self, why: str) -> None:
        """The controller died: drop every frame, so nothing carries on as plain L2."""
        self.namespace.run(
            [
                "nft",
                "insert",
                "rule",
                "bridge",
                TABLE,
                "prerouting",
                "drop",
                "comment",
                '"SDN controller died"',
            ],
        )

    def close(self) -> None:
        """Stop the controller; raise :class:`LabError` if it died during the run."""
        if self.controller is not None:
            self.controller.close()

    # -- run time -----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`LabError` if the controller died: call it from waits and steps."""
        if self.controller is not None:
            self.controller.check()

    def _run(self, argv: list[str], stdin: str | None) -> None:
        self.namespace.run(argv, input=stdin)

    def change(
        self,
        port: LabPort,
        *,
        add: Iterable[Pair] = (),
        remove: Iterable[Pair] = (),
        clear: bool = False,
    ) -> list[Pair]:
        """Change ``port``'s allowed address pairs (one nft transaction); return the new list."""
        self.check()
        try:
            pairs = change_pairs(
                self.state_path, port.id, self._run, add=add, remove=remove, clear=clear
            )
        except CommandFailed as exc:
            raise LabError(f"port set on {port.instance.name}: {exc}") from None
        port.allowed_address_pairs = [
            AllowedAddressPair(ip_address=p.ip, mac_address=p.mac) for p in pairs
        ]
        if port.network.sdn.engine == "ovn":
            port.install_seconds = read_state(self.state_path)["ports"][port.id].get(
                "install_seconds"
            )
        return pairs

    def arp_cache(self, network: str | None = None) -> list[Event]:
        """The controller's bindings (empty when no network runs a controller)."""
        if self.controller is None:
            return []
        return self.controller.arp_cache(network)

    def flush(self, network: str | None = None) -> int:
        """Forget the controller's learned bindings; return how many went."""
        if self.controller is None:
            return 0
        return self.controller.flush(network)
