"""Open vSwitch and OVN, run inside one lab's fabric namespace: ``sdn: {engine: ovn}``.

The central part (the NB and SB databases, ``ovn-northd``) and the first "hypervisor" (the
Open_vSwitch database and ``ovs-vswitchd --disable-system``, the userspace datapath: this
kernel may have no openvswitch module, with a ``netdev`` br-int, and ``ovn-controller``) run in
the fabric; a lab whose instances name a second host runs that chassis in a namespace of its
own (:mod:`lab.ovn.hypervisor`), with the same tools (:mod:`lab.ovn.daemons`). Each runs in the
foreground as a child of the lab's sandbox (``Namespace.popen``), so the kernel takes it with
the sandbox even when the runner is SIGKILLed; and every file (databases, sockets, pid files,
logs, control sockets) lives in :data:`RUN_DIR` of its namespace's private ``/run``, a tmpfs
of the keeper's mount namespace, which goes when the keeper goes. Parallel labs therefore
share no path, and nothing is started in, or written to, the root namespace.

The processes are stopped in reverse order on the lab's ``defer`` stack (SIGTERM, then
SIGKILL after :data:`STOP_SECONDS`). Waits poll real conditions against deadlines
(:func:`lab.wait.wait_until`). Where OVS or OVN cannot start, :class:`EnvironmentMissing`
says in one line what is missing and how to get it; ``engine: ovn`` tests skip with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab.errors import EnvironmentMissing, LabError, WaitTimeout
from lab.node import Namespace
from lab.ovn.daemons import (
    BRIDGE,
    DEFAULT_CHASSIS,
    INSTALL_HINT,
    PROGRAMS,
    SB_PORT,
    SCHEMAS,
    START_SECONDS,
    STOP_SECONDS,
    Daemon,
    DaemonGroup,
    missing,
    not_started,
    vsctl,
)
from lab.ovn.nb import NB_DB, RUN_DIR, SB_DB, env_argv
from lab.wait import wait_until

#: The daemons' tools live in :mod:`lab.ovn.daemons`; importable from here as before.
__all__ = [
    "BRIDGE",
    "DEFAULT_CHASSIS",
    "INSTALL_HINT",
    "PROGRAMS",
    "SB_PORT",
    "SCHEMAS",
    "START_SECONDS",
    "STOP_SECONDS",
    "Daemon",
    "DaemonGroup",
    "OvnEngine",
    "missing",
    "not_started",
    "vsctl",
]


class OvnEngine(DaemonGroup):
    """The central part (NB, SB, northd) and the first chassis, in the fabric namespace.

    :meth:`start` once; :meth:`close` on the defer stack.
    """

    def __init__(self, namespace: Namespace) -> None:
        super().__init__(namespace)
        self.start_seconds: float | None = None
        """How long :meth:`start` took, databases to a connected ovn-controller."""

    def start(
        self,
        defer: Callable[[str, Callable[[], Any]], None],
        *,
        system_id: str = DEFAULT_CHASSIS,
        encap_ip: str = "127.0.0.1",
    ) -> None:
        """Create the databases and start every daemon; register :meth:`close` on ``defer``.

        ``encap_ip`` is the chassis's Geneve endpoint: loopback is all a lone chassis needs to
        be complete (no tunnel is ever made to itself). Raises :class:`EnvironmentMissing` (one
        line: what, and how to fix it) when a program is missing or a daemon does not come up.
        """
        reason = missing()
        if reason:
            raise EnvironmentMissing(reason)
        began = time.perf_counter()
        self.path("").mkdir(mode=0o700, parents=True, exist_ok=True)
        defer("ovn engine", self.close)
        try:
            self._start(system_id, encap_ip)
        except (LabError, WaitTimeout) as exc:
            raise not_started(exc, self.namespace.name) from None
        self.start_seconds = time.perf_counter() - began

    def _start(self, system_id: str, encap_ip: str) -> None:
        for db in ("nb.db", "sb.db"):
            schema, _ = SCHEMAS[db]
            self.run(env_argv(["ovsdb-tool", "create", f"{RUN_DIR}/{db}", schema]))
        servers = [
            (self.start_ovs_db(), "db.sock"),
            (self._spawn_server("ovsdb-server-nb", "nb.db", "nb.sock"), "nb.sock"),
            (self._spawn_server("ovsdb-server-sb", "sb.db", "sb.sock"), "sb.sock"),
        ]
        for daemon, sock in servers:
            self._await_socket(daemon, sock)
        self.start_switch(system_id, encap_ip, SB_DB)
        northd = self._spawn(
            "ovn-northd",
            [
                "ovn-northd",
                f"--ovnnb-db={NB_DB}",
                f"--ovnsb-db={SB_DB}",
                f"--pidfile={RUN_DIR}/ovn-northd.pid",
                f"--unixctl={RUN_DIR}/ovn-northd.ctl",
            ],
        )
        self._await_socket(northd, "ovn-northd.ctl")
        self.spawn_controller()
        self.await_controller("ovn-controller to connect to the SB database")

    def serve_sb(self, address: str) -> None:
        """Let the SB database also listen on TCP ``address`` (the underlay), for the
        chassis in other namespaces: a unix socket of the fabric's private /run is out of
        their reach."""
        self.run(
            env_argv(
                [
                    "ovs-appctl",
                    "-t",
                    f"{RUN_DIR}/ovsdb-server-sb.ctl",
                    "ovsdb-server/add-remote",
                    f"ptcp:{SB_PORT}:{address}",
                ]
            )
        )

    def chassis(self) -> list[str]:
        """The names of the chassis registered in the SB."""
        out = self.run(
            env_argv(["ovn-sbctl", f"--db={SB_DB}", "--bare", "--columns=name", "list", "Chassis"])
        )
        return sorted(out.split())

    def chassis_ids(self) -> dict[str, str]:
        """Each registered chassis's row UUID → its name."""
        out = self.run(
            env_argv(
                [
                    "ovn-sbctl",
                    f"--db={SB_DB}",
                    "--format=csv",
                    "--no-headings",
                    "--columns=_uuid,name",
                    "list",
                    "Chassis",
                ]
            )
        )
        rows = (line.split(",", 1) for line in out.splitlines() if "," in line)
        return {uuid: name.strip('"') for uuid, name in rows}

    def await_chassis(self, names: list[str]) -> None:
        """Wait until every chassis of ``names`` is registered in the SB."""
        wait_until(
            self.chassis,
            accept=lambda seen: set(names) <= set(seen),
            timeout=START_SECONDS,
            what=f"the chassis {', '.join(names)} to register in the SB database",
        )

    def port_chassis(self, port_id: str) -> str | None:
        """The chassis a logical port is bound to now (its name), or None when unbound."""
        uuid = self.run(
            env_argv(
                [
                    "ovn-sbctl",
                    f"--db={SB_DB}",
                    "--bare",
                    "--columns=chassis",
                    "find",
                    "Port_Binding",
                    f"logical_port={port_id}",
                ]
            )
        ).strip()
        if not uuid:
            return None
        return (
            self.run(env_argv(["ovn-sbctl", f"--db={SB_DB}", "get", "Chassis", uuid, "name"]))
            .strip()
            .strip('"')
        )
