"""OVS/OVN daemons in one lab namespace: the programs, their files, start, watch and stop.

:class:`DaemonGroup` is what the fabric's engine (:mod:`lab.ovn.engine`, the central part and
the first chassis) and a further compute host's chassis (:mod:`lab.ovn.hypervisor`) share:
every daemon runs in the foreground as a child of the lab's sandbox (``Namespace.popen``), its
files (database, sockets, pid file, log, control socket) in :data:`~lab.ovn.nb.RUN_DIR` of
its namespace's private ``/run``, and stops newest first on the lab's ``defer`` stack
(SIGTERM, then SIGKILL after :data:`STOP_SECONDS`). A chassis's half (the Open_vSwitch
database, ``ovs-vswitchd --disable-system`` with a netdev br-int, ``ovn-controller``) is here
too, since every chassis starts it the same way.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import CommandFailed, EnvironmentMissing, LabError
from lab.node import Namespace
from lab.ovn.nb import OVS_DB, RUN_DIR, env_argv
from lab.wait import wait_until

log = logging.getLogger(__name__)

#: The integration bridge, as in every OVN deployment.
BRIDGE = "br-int"
#: The chassis of a lab whose instances name no host.
DEFAULT_CHASSIS = "vrrp-lab-hv1"
#: The SB's TCP port on the underlay, for chassis outside the fabric (OVN's usual one).
SB_PORT = 6642
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
    "ovn-appctl": "ovn-host",
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


class DaemonGroup:
    """OVS/OVN daemons in one namespace, their files in its :data:`RUN_DIR`: the tools to
    start, watch and stop them, and a chassis's half (:meth:`start_switch`,
    :meth:`spawn_controller`). :meth:`close` on the defer stack."""

    def __init__(self, namespace: Namespace, label: str = "engine ovn") -> None:
        self.namespace = namespace
        self.label = label
        """How errors name this group (``engine ovn``, ``engine ovn, host compute-2``)."""
        self.daemons: list[Daemon] = []
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
            raise LabError(f"{self.label}: {tool} failed: {exc}") from None

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
                    f"{self.label}: {daemon.name} exited with {code}: {self.log_tail(daemon)}"
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

    # -- a chassis's half ---------------------------------------------------------------------

    def start_ovs_db(self) -> Daemon:
        """Create the Open_vSwitch database and start its server (not awaited)."""
        schema, _ = SCHEMAS["conf.db"]
        self.run(env_argv(["ovsdb-tool", "create", f"{RUN_DIR}/conf.db", schema]))
        return self._spawn_server("ovsdb-server", "conf.db", "db.sock")

    def _spawn_server(self, name: str, db: str, sock: str) -> Daemon:
        return self._spawn(
            name,
            [
                "ovsdb-server",
                f"{RUN_DIR}/{db}",
                f"--remote=punix:{RUN_DIR}/{sock}",
                f"--pidfile={RUN_DIR}/{name}.pid",
                f"--unixctl={RUN_DIR}/{name}.ctl",
            ],
        )

    def start_switch(self, system_id: str, encap_ip: str, sb_remote: str) -> None:
        """Name the chassis in the Open_vSwitch database (running), start ovs-vswitchd and
        create br-int: what ovn-controller needs before it starts."""
        self.run(
            vsctl(
                "init",
                "--",
                "set",
                "Open_vSwitch",
                ".",
                f"external_ids:system-id={system_id}",
                f"external_ids:ovn-remote={sb_remote}",
                "external_ids:ovn-encap-type=geneve",
                f"external_ids:ovn-encap-ip={encap_ip}",
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

    def spawn_controller(self) -> Daemon:
        """Start ovn-controller (not awaited: :meth:`controller_status`)."""
        # ovn-controller has no --unixctl: its control socket is OVN_RUNDIR/ovn-controller.PID.ctl,
        # PID as the sandbox's PID namespace numbers it (the pid file's, not Popen's).
        return self._spawn(
            "ovn-controller",
            ["ovn-controller", OVS_DB, f"--pidfile={RUN_DIR}/ovn-controller.pid"],
        )

    def controller_status(self) -> str:
        """The running ovn-controller's SB connection (``connected``, ``not connected``), or
        why it cannot be asked yet. Asks the process the pid file names, over its control
        socket: a controller that died leaves its pid file and socket file behind, and its
        Chassis row in the SB, but nothing answers on that socket."""
        self.check()
        try:
            pid = self.path("ovn-controller.pid").read_text().strip()
        except OSError:
            return "no pid file yet"
        ctl = f"{RUN_DIR}/ovn-controller.{pid}.ctl"
        if not pid or not self.path(Path(ctl).name).is_socket():
            return f"no control socket {ctl} yet"
        try:
            out = self.namespace.run(
                env_argv(["ovn-appctl", "-t", ctl, "connection-status"]), timeout=START_SECONDS
            ).stdout
        except CommandFailed as exc:
            return f"ovn-appctl -t {ctl} failed: {exc}"
        return out.strip()

    def await_controller(self, what: str) -> None:
        """Wait until ovn-controller (the one now running) is connected to the SB."""
        wait_until(
            self.controller_status,
            accept=lambda seen: seen == "connected",
            timeout=START_SECONDS,
            what=what,
        )

    def controller_crashed(self) -> bool:
        """True when ovn-controller has died of a signal (SIGSEGV, say)."""
        return any(d.name == "ovn-controller" and (d.proc.poll() or 0) < 0 for d in self.daemons)

    def restart_controller(self) -> None:
        """Start a new ovn-controller in place of one that died, and wait until it is connected.

        Used once, during a build: ovn-controller 23.03 was seen to die of SIGSEGV right after
        connecting to br-int, once in about a hundred builds (its log ends at "OVS OpenFlow
        connection reconnected, force recompute"). The crash is logged, not hidden. The wait is
        on the new process's own connection: the dead one's Chassis row stays in the SB, so
        the row says nothing.
        """
        dead = next(d for d in self.daemons if d.name == "ovn-controller")
        log.warning(
            "%s: ovn-controller died (%s): %s; starting it again",
            self.label,
            dead.proc.returncode,
            self.log_tail(dead),
        )
        self.daemons.remove(dead)
        self.restarts.append(f"ovn-controller exited with {dead.proc.returncode}")
        self.spawn_controller()
        self.await_controller("the restarted ovn-controller to connect to the SB")

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
                    log.warning("%s: %s ignored SIGTERM; killing it", self.label, daemon.name)
                    proc.kill()
                    proc.wait()
        self.daemons.clear()


def not_started(exc: Exception, where: str) -> EnvironmentMissing:
    """The one-line error of a chassis or engine that did not come up, with where its logs are
    (``where``: the namespace's name, as ``vrrp-lab shell`` takes it)."""
    return EnvironmentMissing(
        f"engine ovn did not start: {exc}; logs in {where}'s {RUN_DIR} "
        f"(vrrp-lab shell {where}); {INSTALL_HINT} and check that ovs-vswitchd "
        "--disable-system runs here"
    )
