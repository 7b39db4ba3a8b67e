"""Namespaces held by a keeper process, and the nodes (instances) built on them.

A :class:`Namespace` is a network, mount and UTS namespace created by a small keeper process
inside the lab's sandbox. The keeper mounts private ``/run``, ``/tmp`` (and ``/etc/keepalived``
where it exists), remounts ``/sys`` so that it shows this namespace's interfaces, sets the
hostname, then sleeps. Programs run in the namespace are started by the runner and enter the
keeper's namespaces before exec; netlink sockets are opened from the runner's own thread.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from lab import linux
from lab.errors import CommandFailed, LabError
from lab.port import LabPort
from lab.sandbox import Sandbox, read_ready
from lab.topology import Instance

# The keeper. `mount` failing is fatal (set -e): a node without a private /run would let two
# keepalived daemons fight over one pid file. /sys is remounted so that tools reading
# /sys/class/net (keepalived among them) see this namespace's interfaces. The arguments after
# the hostname are host directories under /tmp that must stay visible in the private /tmp (the
# lab's own code and interpreter, when a checkout or a virtualenv lives there): they are bound
# back, at the same path, from a view of the host's /tmp taken before it was covered.
_KEEPER = r"""
set -e
name=$1; shift
mount -t tmpfs -o mode=0755 lab-run /run
if [ $# -gt 0 ]; then mkdir /run/.host-tmp; mount --bind /tmp /run/.host-tmp; fi
mount -t tmpfs -o mode=1777 lab-tmp /tmp
for dir in "$@"; do
  mkdir -p "$dir"
  mount --bind "/run/.host-tmp/${dir#/tmp/}" "$dir"
done
if [ $# -gt 0 ]; then umount /run/.host-tmp; rmdir /run/.host-tmp; fi
mount -t sysfs lab-sys /sys
if [ -d /etc/keepalived ]; then mount -t tmpfs -o mode=0755 lab-etc /etc/keepalived; fi
hostname "$name"
echo ready
exec sleep infinity
"""


def host_dirs_under_tmp() -> list[str]:
    """The directories of the lab's code and interpreter that lie under the host's /tmp.

    Programs the lab starts in a node (the prober, the SDN controller, the bundled daemon) run
    this interpreter on this checkout; a node's private /tmp would hide them otherwise.
    """
    candidates = {
        Path(__file__).resolve().parent.parent,  # the checkout holding lab/ and vrrp/
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    under = sorted(str(p) for p in candidates if str(p).startswith("/tmp/"))
    # A directory inside another one already bound needs no bind of its own.
    return [d for d in under if not any(d.startswith(o + "/") for o in under if o != d)]


Command = str | Sequence[str]


def _argv(cmd: Command) -> list[str]:
    """A string is a shell command line; a sequence is an argv, run as is."""
    return ["sh", "-c", cmd] if isinstance(cmd, str) else [str(c) for c in cmd]


def link_index(ipr: IPRoute, ifname: str) -> int | None:
    """The index of the link ``ifname`` in ``ipr``'s namespace, or None when there is none.

    From a dump of the namespace's links, not pyroute2's ``link_lookup``: with pyroute2 0.9.7 a
    single link's request leaves the kernel's trailing ACK (about 2 KB) in the socket's root
    queue, which nothing reads, for as long as the socket is open, and a node's socket lives as
    long as the lab (docs/benchmarks.md, the soak's fix 2). A dump ends on its own queue and
    leaves nothing behind; a namespace here has a handful of links.
    """
    for link in ipr.get_links():
        if link.get_attr("IFLA_IFNAME") == ifname:
            return int(link["index"])
    return None


class Namespace:
    """A network + mount + UTS namespace held by a keeper process in the lab's sandbox."""

    def __init__(self, sandbox: Sandbox, name: str, hostname: str | None = None) -> None:
        self.name = name
        self.hostname = hostname or name
        self._sandbox = sandbox
        self._keeper: subprocess.Popen[bytes] | None = None
        self._fds: dict[str, int] = {}
        self._ipr: IPRoute | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def spawn_keeper(self) -> None:
        """Start the keeper; :meth:`await_keeper` ends the start, so keepers start in parallel."""
        self._keeper = self._sandbox.spawn(
            [
                "unshare",
                "--net",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _KEEPER,
                "keeper",
                self.hostname,
                *host_dirs_under_tmp(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def await_keeper(self, timeout: float = 10.0) -> None:
        """Wait for the keeper to be ready, then open its namespace descriptors."""
        assert self._keeper is not None, "spawn_keeper() first"
        read_ready(self._keeper, timeout, f"the namespace keeper of {self.name}")
        for stream in (self._keeper.stdout, self._keeper.stderr):
            assert stream is not None
            stream.close()
        for kind, _ in linux.NODE_NAMESPACES:
            self._fds[kind] = linux.open_namespace(self._keeper.pid, kind)
        lo = self.link_index("lo")
        assert lo is not None, "a new network namespace always has lo"
        self.ipr.link("set", index=lo, state="up")

    def close(self) -> None:
        """Release the descriptors and sockets that would keep the namespace alive."""
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()
            self._ipr = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # -- identity ---------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The keeper's pid, as the runner sees it: ``nsenter -t PID -n -m -u`` enters the node."""
        if self._keeper is None:
            raise LabError(f"{self.name} has not been started")
        return self._keeper.pid

    @property
    def netns_inode(self) -> int:
        """The network namespace's inode: the identity a leak check looks for."""
        return os.fstat(self._fds["net"]).st_ino

    def path(self, inside: str) -> Path:
        """A path of this namespace's private filesystem, reachable from the runner.

        ``node.path("/run/keepalived/notify.fifo")`` goes through ``/proc/KEEPER/root``, so files
        under the node's private ``/run`` and ``/tmp`` can be written and read without a shell.
        """
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def ns_fd(self, kind: str) -> int:
        """The open descriptor of this node's ``net``, ``uts`` or ``mnt`` namespace."""
        return self._fds[kind]

    # -- running programs -------------------------------------------------------------------

    def popen(self, cmd: Command, **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside this namespace; it dies with the lab at the latest."""
        if not self._fds:
            raise LabError(f"{self.name} is not running")
        enter = [(self._fds[kind], flag) for kind, flag in linux.NODE_NAMESPACES]
        return self._sandbox.spawn(_argv(cmd), enter=enter, **popen_kwargs)

    def run(
        self,
        cmd: Command,
        *,
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` to completion inside this namespace and return its output (text).

        With ``check``, a non-zero exit raises :class:`CommandFailed` carrying the output.
        """
        argv = _argv(cmd)
        proc = self.popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise CommandFailed(
                self.name, argv, -9, out, f"killed after {timeout:g}s; {err}"
            ) from None
        if check and proc.returncode != 0:
            raise CommandFailed(self.name, argv, proc.returncode, out, err)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    # -- netlink ----------------------------------------------------------------------------

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A socket of this namespace (AF_PACKET, raw IP, netlink, ...), opened from the runner."""
        return linux.socket_in_netns(self._fds["net"], family, kind, proto)

    @property
    def ipr(self) -> IPRoute:
        """A pyroute2 ``IPRoute`` bound to this namespace (opened once, closed with the lab)."""
        if self._ipr is None:
            sock = self.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
            self._ipr = IPRoute(use_socket=sock)
        return self._ipr

    def link_index(self, ifname: str) -> int | None:
        """The index of the link ``ifname`` in this namespace, or None (:func:`link_index`)."""
        return link_index(self.ipr, ifname)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name} pid={self._keeper.pid if self._keeper else None}>"
        )

    def shell_hint(self) -> str:
        """The command that runs a shell in this namespace from another terminal."""
        return f"vrrp-lab shell {shlex.quote(self.name)}"


class Node(Namespace):
    """An instance of the scenario: a namespace with its ports, named and addressed like the VM."""

    def __init__(self, sandbox: Sandbox, instance: Instance) -> None:
        super().__init__(sandbox, instance.name, instance.hostname)
        self.instance = instance
        self.ports: list[LabPort] = []

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The first fixed IP of the first port: the address the seed calls the instance by."""
        return self.ports[0].ips[0]

    @property
    def mac(self) -> str:
        """The MAC of the first port."""
        return self.ports[0].mac
