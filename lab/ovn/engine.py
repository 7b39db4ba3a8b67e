"""Open vSwitch and OVN, run inside one lab's fabric namespace: ``sdn: {engine: ovn}``.

One "hypervisor" per lab: the Open_vSwitch database and ``ovs-vswitchd --disable-system``
(the userspace datapath: this kernel may have no openvswitch module) with a ``netdev`` br-int,
the NB and SB databases, ``ovn-northd`` and ``ovn-controller``. Each runs in the foreground as
a child of the lab's sandbox (``Namespace.popen``), so the kernel takes it with the sandbox
even when the runner is SIGKILLed; and every file (databases, sockets, pid files, logs, control
sockets) lives in :data:`RUN_DIR` of the fabric's private ``/run``, a tmpfs of the keeper's mount
namespace, which goes when the keeper goes. Parallel labs therefore share no path, and nothing
is started in, or written to, the root namespace.

The processes are stopped in reverse order on the lab's ``defer`` stack (SIGTERM, then
SIGKILL after :data:`STOP_SECONDS`). Waits poll real conditions against deadlines
(:func:`lab.wait.wait_until`). Where OVS or OVN cannot start, :class:`EnvironmentMissing`
says in one line what is missing and how to get it; ``engine: ovn`` tests skip with it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import CommandFailed, EnvironmentMissing, LabError, WaitTimeout
from lab.node import Namespace
from lab.ovn.nb import NB_DB, OVS_DB, RUN_DIR, SB_DB, env_argv
from lab.wait import wait_until

log = logging.getLogger(__name__)

#: The integration bridge, as in every OVN deployment.
BRIDGE = "br-int"
#: How long a daemon gets to exit on SIGTERM before SIGKILL.
STOP_SECONDS = 3.0
#: How long a start may take before the engine gives up (about 0.4 s here, unloaded).
START_SECONDS = 20.0

PROGRAMS = {
    "ovsdb-server": "openvswitch-switch",
    "ovsdb-tool": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovs-vsctl": "openvswitch-switch",
    "ovn-northd": "ovn-central",
    "ovn-nbctl": "ovn-central",
    "ovn-sbctl": "ovn-central",
    "ovn-controller": "ovn-host",
}
SCHEMAS = {
    "conf.db": ("/usr/share/openvswitch/vswitch.ovsschema", "openvswitch-switch"),
    "nb.db": ("/usr/share/ovn/ovn-nb.ovsschema", "ovn-central"),
    "sb.db": ("/usr/share/ovn/ovn-sb.ovsschema", "ovn-central"),
}
INSTALL_HINT = "install openvswitch-switch ovn-central ovn-host (make system)"


def missing() -> str | None:
    """Why OVS/OVN cannot run on this machine (one line), or None when the programs are there."""
    absent = sorted({pkg for prog, pkg in PROGRAMS.items() if shutil.which(prog) is None})
    absent += sorted({pkg for path, pkg in SCHEMAS.values() if not Path(path).exists()} - {*absent})
    if absent:
        return f"engine: ovn needs {', '.join(absent)}, not installed; {INSTALL_HINT}"
    return None


def vsctl(*args: str, no_wait: bool = False) -> list[str]:
    """An ``ovs-vsctl`` command line against the lab's Open_vSwitch database."""
    return env_argv(
        [
            "ovs-vsctl",
            f"--db={OVS_DB}",
            f"--timeout={int(START_SECONDS)}",
            *(["--no-wait"] if no_wait else []),
            *args,
        ]
    )


@dataclass
class Daemon:
    """One of the engine's processes and its log file (a path inside the fabric)."""

    name: str
    proc: subprocess.Popen[Any]
    log: str


class OvnEngine:
    """OVS + OVN in a fabric namespace. :meth:`start` once; :meth:`close` on the defer stack."""

    def __init__(self, namespace: Namespace) -> None:
        self.namespace = namespace
        self.daemons: list[Daemon] = []
        self.start_seconds: float | None = None
        """How long :meth:`start` took, databases to a running ovn-controller."""
        self.restarts: list[str] = []
        """Daemons restarted during the build, and why (see :meth:`restart_controller`)."""

    # -- helpers ------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A file of the engine's private directory, as the runner reaches it."""
        return self.namespace.path(f"{RUN_DIR}/{name}")

    def run(self, argv: list[str], *, timeout: float = START_SECONDS + 5) -> str:
        """Run an OVS/OVN tool in the fabric; raise :class:`LabError` naming it on failure."""
        self.check()
        try:
            return self.namespace.run(argv, timeout=timeout).stdout
        except CommandFailed as exc:
            tool = next((a for a in argv if not a.startswith(("env", "OVS_", "OVN_"))), argv[0])
            raise LabError(f"engine ovn: {tool} failed: {exc}") from None

    def log_tail(self, daemon: Daemon, lines: int = 3) -> str:
        """The last lines of a daemon's log, for an error message."""
        try:
            text = self.path(Path(daemon.log).name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "(empty log)"

    def check(self) -> None:
        """Raise :class:`LabError` if one of the engine's daemons has died."""
        for daemon in self.daemons:
            code = daemon.proc.poll()
            if code is not None:
                raise LabError(
                    f"engine ovn: {daemon.name} exited with {code}: {self.log_tail(daemon)}"
                )

    def _spawn(self, name: str, argv: list[str]) -> Daemon:
        log_name = f"{name}.log"
        stderr = self.path(f"{name}.stderr").open("w")
        with stderr:
            proc = self.namespace.popen(
                env_argv([*argv, f"--log-file={RUN_DIR}/{log_name}", "--no-chdir"]),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        daemon = Daemon(name, proc, f"{RUN_DIR}/{log_name}")
        self.daemons.append(daemon)
        return daemon

    def _await_socket(self, daemon: Daemon, sock: str) -> None:
        def ready() -> str:
            self.check()
            return "listening" if self.path(sock).is_socket() else "no socket yet"

        wait_until(
            ready,
            timeout=START_SECONDS,
            what=f"{daemon.name} to listen on {RUN_DIR}/{sock}",
            accept=lambda seen: seen == "listening",
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, defer: Callable[[str, Callable[[], Any]], None]) -> None:
        """Create the databases and start every daemon; register :meth:`close` on ``defer``.

        Raises :class:`EnvironmentMissing` (one line: what, and how to fix it) when a program is
        missing or a daemon does not come up.
        """
        reason = missing()
        if reason:
            raise EnvironmentMissing(reason)
        began = time.perf_counter()
        self.path("").mkdir(mode=0o700, parents=True, exist_ok=True)
        defer("ovn engine", self.close)
        try:
            self._start()
        except (LabError, WaitTimeout) as exc:
            raise EnvironmentMissing(
                f"engine ovn did not start: {exc}; logs in the fabric's {RUN_DIR} "
                f"(vrrp-lab shell fabric); {INSTALL_HINT} and check that ovs-vswitchd "
                "--disable-system runs here"
            ) from None
        self.start_seconds = time.perf_counter() - began

    def _start(self) -> None:
        for db, (schema, _) in SCHEMAS.items():
            self.run(env_argv(["ovsdb-tool", "create", f"{RUN_DIR}/{db}", schema]))
        servers = []
        for name, db, sock in (
            ("ovsdb-server", "conf.db", "db.sock"),
            ("ovsdb-server-nb", "nb.db", "nb.sock"),
            ("ovsdb-server-sb", "sb.db", "sb.sock"),
        ):
            daemon = self._spawn(
                name,
                [
                    "ovsdb-server",
                    f"{RUN_DIR}/{db}",
                    f"--remote=punix:{RUN_DIR}/{sock}",
                    f"--pidfile={RUN_DIR}/{name}.pid",
                    f"--unixctl={RUN_DIR}/{name}.ctl",
                ],
            )
            servers.append((daemon, sock))
        for daemon, sock in servers:
            self._await_socket(daemon, sock)
        self.run(
            vsctl(
                "init",
                "--",
                "set",
                "Open_vSwitch",
                ".",
                # The chassis: one per lab, named after the fabric; Geneve on loopback is what a
                # single chassis needs to be complete (no tunnel is ever made to itself).
                "external_ids:system-id=vrrp-lab-hv1",
                f"external_ids:ovn-remote={SB_DB}",
                "external_ids:ovn-encap-type=geneve",
                "external_ids:ovn-encap-ip=127.0.0.1",
                "external_ids:ovn-bridge-datapath-type=netdev",
                no_wait=True,
            )
        )
        vswitchd = self._spawn(
            "ovs-vswitchd",
            [
                "ovs-vswitchd",
                OVS_DB,
                "--disable-system",
                f"--pidfile={RUN_DIR}/ovs-vswitchd.pid",
                f"--unixctl={RUN_DIR}/ovs-vswitchd.ctl",
            ],
        )
        self._await_socket(vswitchd, "ovs-vswitchd.ctl")
        # ovs-vsctl waits for ovs-vswitchd to apply the bridge (it bumps next_cfg).
        self.run(
            vsctl(
                "add-br",
                BRIDGE,
                "--",
                "set",
                "Bridge",
                BRIDGE,
                "datapath_type=netdev",
                "fail-mode=secure",
                "other-config:disable-in-band=true",
            )
        )
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
        self._spawn_controller()
        # The chassis is registered in the SB once ovn-controller has connected to both DBs.
        wait_until(
            self._chassis,
            timeout=START_SECONDS,
            what="ovn-controller to register its chassis in the SB database",
        )

    def _spawn_controller(self) -> Daemon:
        # ovn-controller has no --unixctl: its control socket is OVN_RUNDIR/ovn-controller.PID.ctl.
        return self._spawn(
            "ovn-controller",
            ["ovn-controller", OVS_DB, f"--pidfile={RUN_DIR}/ovn-controller.pid"],
        )

    def controller_crashed(self) -> bool:
        """True when ovn-controller has died of a signal (SIGSEGV, say)."""
        return any(d.name == "ovn-controller" and (d.proc.poll() or 0) < 0 for d in self.daemons)

    def restart_controller(self) -> None:
        """Start a new ovn-controller in place of one that died, and wait for its chassis.

        Used once, during a build: ovn-controller 23.03 was seen to die of SIGSEGV right after
        connecting to br-int, once in about a hundred builds (its log ends at "OVS OpenFlow
        connection reconnected, force recompute"). The crash is logged, not hidden.
        """
        dead = next(d for d in self.daemons if d.name == "ovn-controller")
        log.warning(
            "engine ovn: ovn-controller died (%s): %s; starting it again",
            dead.proc.returncode,
            self.log_tail(dead),
        )
        self.daemons.remove(dead)
        self.restarts.append(f"ovn-controller exited with {dead.proc.returncode}")
        self._spawn_controller()
        wait_until(
            self._chassis,
            timeout=START_SECONDS,
            what="the restarted ovn-controller to register its chassis",
        )

    def _chassis(self) -> str:
        self.check()
        return self.run(
            env_argv(["ovn-sbctl", f"--db={SB_DB}", "--bare", "--columns=name", "list", "Chassis"])
        ).strip()

    def close(self) -> None:
        """Stop the daemons newest first (SIGTERM, then SIGKILL); the sandbox reaps the rest."""
        for daemon in reversed(self.daemons):
            proc = daemon.proc
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    log.warning("engine ovn: %s ignored SIGTERM; killing it", daemon.name)
                    proc.kill()
                    proc.wait()
        self.daemons.clear()
