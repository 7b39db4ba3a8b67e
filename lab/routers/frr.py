"""The ``frr`` driver: FRR's vrrpd (Debian's frr 8.4.4) with its own zebra, inside a node.

FRR has neither a ``keepalived.conf`` nor a notify FIFO, so this driver translates:

* **Config.** The router's ``keepalived.conf`` (verbatim or rendered) is parsed with
  :func:`vrrp.config.parse` and mapped onto FRR's interface commands (:func:`translate`)::

      vrrp_instance vrrp_1 {            interface ens3
          interface ens3                 vrrp 1 version 3
          virtual_router_id 1      →     vrrp 1 priority 200
          priority 200                   vrrp 1 advertisement-interval 100
          advert_int 0.1                 vrrp 1 ip 10.200.51.10
          version 3
          virtual_ipaddress { 10.200.51.10 }
      }

  vrrpd is multicast only and always sends from, and answers on, a macvlan per VRID and family
  that the operator creates (FRR's docs, "System Configuration"): bridge mode, the VMAC
  ``00:00:5e:00:01:VRID`` (``…:02:VRID`` for IPv6, with ``addrgenmode random`` and no DAD),
  the VIPs on it and not on the parent. The driver creates them at :meth:`FrrRouter.start`, named as
  ifupdown2 does (``vrrp4-IFINDEX-VRID``), with ``protodown on`` so that no VIP answers before
  vrrpd has decided (vrrpd itself keeps a backup's macvlan in protodown). What FRR cannot
  express raises :class:`UnsupportedConfig` (a :class:`~lab.errors.UsageError`): unicast
  peers, authentication, priority 255 (FRR 8.4 has no way to be an address owner at all: see
  :data:`OWNER_REFUSAL`), IPv6 with VRRPv2, two instances on one interface and VRID whose
  parameters differ. Settings FRR has no knob for (``state``, ``use_vmac`` — FRR always uses
  the VMAC —, garp, tracking, notify scripts, ``preempt_delay``) are ignored and listed as
  comments in the generated ``vrrpd.conf``.

* **Processes.** ``zebra`` (vrrpd needs it for interfaces and protodown) and ``vrrpd`` run in
  the foreground (no ``-d``) with their config, pid files, vty sockets and zserv socket in the
  node's private ``/run/vrrp-lab/router/frr``, owned by the ``frr`` user the daemons drop to
  (FRR refuses ``-u root``: root is not in the ``frrvty`` group). vrrpd is the router's main
  process: stop, kill, freeze and thaw act on it as on keepalived's VRRP child; zebra is a
  helper, stopped after vrrpd (or SIGKILLed with it by :meth:`FrrRouter.kill`), never frozen.
  FRR also writes a crash-log directory under ``/var/tmp/frr`` and vtysh a history file in
  ``$HOME``: the node gets a private ``/var/tmp`` and vtysh runs with ``-H /dev/null``, so
  nothing lands on the host.

* **Events.** vrrpd logs every state change at level ``info`` (``[CORE] [VRID 1] [IPv4]
  Backup -> Master``); it runs with ``--log stdout``, the base class reads its output through
  a pipe (:attr:`~lab.routers.base.Router.events_from_output`) and each line becomes a
  :class:`~lab.routers.base.Transition` stamped on the lab clock when it arrives. There is no
  polling, so there is no poll interval: the stamp lags vrrpd's write by the pipe's latency
  (well under a millisecond). Against the capture, a new master's first advert lies between
  4 ms before and 0.6 ms after its ``MASTER`` stamp (vrrpd logs the change around the send).
  ``Initialize`` maps to ``INIT``, or to ``STOP`` once vrrpd said it is terminating
  (keepalived's word for a clean shutdown). The priority reported is the configured one (FRR
  does not log it). :meth:`FrrRouter.status` returns ``show vrrp json``.

* **Reload.** vrrpd's SIGHUP only re-reads its file on top of the running config (nothing is
  ever removed), so :meth:`FrrRouter.reload` computes the difference between the running and
  the new translation and applies it with ``vtysh`` (``no vrrp N ip X``, a new priority, ...):
  a reload that changes nothing keeps the master, as keepalived's does.

* **BFD.** vrrpd has no BFD client (:data:`TRACK_BFD_REFUSAL`), so ``track_bfd`` is refused;
  ``bfd_instance`` blocks make FRR a BFD *peer*: ``bfdd`` runs beside zebra with a ``bfd`` /
  ``peer A interface IF local-address L`` block per instance (:class:`FrrBfdPeer`), its control
  socket in the same private directory. :meth:`FrrRouter.bfd_peers` returns ``show bfd peers
  json``. bfdd is a helper as zebra is: stopped after vrrpd, SIGKILLed with it, never frozen.

On SIGTERM vrrpd shuts every virtual router down as RFC 5798 §6.4.3 says: a master sends one
advert with priority 0, then it goes to Initialize and its macvlan to ``protodown on``. The
macvlans stay (FRR never owns them); :meth:`FrrRouter.start` recreates them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import pwd
import re
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lab import clock
from lab.errors import EnvironmentMissing, Unsupported, UsageError
from lab.routers.base import (
    RUN_DIR,
    Router,
    RouterError,
    Transition,
    process_tree,
    register_driver,
)
from lab.routers.params import RouterParams
from lab.wait import wait_until
from vrrp import config as kconf

if TYPE_CHECKING:
    from lab.node import Node

#: Where Debian's frr package installs the daemons.
FRR_DIR = Path("/usr/lib/frr")
#: The directory of FRR's files inside the node (the node's private /run).
FRR_RUN = f"{RUN_DIR}/frr"

# `[CORE] [VRID 1] [IPv4] Backup -> Master` (vrrp.c, vrrp_change_state).
_STATE_LINE = re.compile(
    r"\[VRID (?P<vrid>\d+)\] \[IPv(?P<family>[46])\] (?P<old>[A-Za-z]+) -> (?P<new>[A-Za-z]+)"
)
# Logged by FRR's signal handler before it shuts the virtual routers down.
_TERMINATING = "Terminating on signal"
_FRR_STATES = {"Initialize": "INIT", "Backup": "BACKUP", "Master": "MASTER"}

#: Why priority 255 (RFC 5798's address owner) is refused: FRR 8.4.4's vrrpd cannot be made an
#: owner by any configuration. vrrp_startup() (vrrpd/vrrp.c) sets the effective priority to 255
#: and goes master at once only if ``r->vr->priority == VRRP_PRIO_MASTER ||
#: vrrp_is_owner(...)``, but the configured priority is limited to 1..254 by the CLI
#: (vrrpd/vrrp_vty.c: ``vrrp (1-255)$vrid priority (1-254)``, also ``vrrp default priority``)
#: and by the model (yang/frr-vrrpd.yang, leaf priority, range "1..254"), and vrrp_is_owner()
#: is ``return false;`` with the address check under ``#if 0`` ("for now we're disabling this
#: and forcing the user to configure priority 255"). FRR's docs agree: "Priority value 255 is
#: reserved for the acting Master router", and the VIP "must not be present on the parent
#: interface". Measured on 8.4.4: with the VIP also on ens3, vrrpd starts as Backup with
#: effective priority 200 and becomes Master only when Master_Down_Timer expires; vtysh answers
#: ``vrrp 1 priority 255`` with "% Unknown command" (test_frr_has_no_address_owner).
OWNER_REFUSAL = (
    "priority 255: FRR vrrpd 8.4 cannot be an address owner: priorities are 1..254 "
    "(vrrpd/vrrp_vty.c vrrp_priority_cmd, yang/frr-vrrpd.yang) and ownership by address is "
    "disabled (vrrpd/vrrp.c vrrp_is_owner() returns false); use 254 or less"
)


#: Why ``track_bfd`` is refused: vrrpd cannot follow a BFD session. In FRR 8.4.4 the BFD
#: clients (users of lib/bfd.c's bfd_sess_new) are bgpd, ospfd, ospf6d, isisd and pimd;
#: vrrpd/ has no BFD code at all (``git grep -i bfd frr-8.4.4 -- vrrpd/`` finds nothing), and
#: doc/user/vrrp.rst has no BFD command.
TRACK_BFD_REFUSAL = (
    "track_bfd: FRR vrrpd 8.4 has no BFD client (nothing in vrrpd/ uses lib/bfd.c; BFD clients "
    "are bgpd, ospfd, ospf6d, isisd and pimd), so no VRRP instance can follow a session; FRR "
    "runs a bfd_instance as a BFD peer (bfdd) only: drop track_bfd"
)
#: bfdd's interval range, whole milliseconds (bfdd/bfdd_cli.c: ``receive-interval (10-60000)``).
BFDD_INTERVAL_MS = range(10, 60001)


class UnsupportedConfig(Unsupported):
    """The router's ``keepalived.conf`` asks for something FRR's vrrpd cannot do."""


# --- translation ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrrVrouter:
    """One FRR virtual router (``interface IF`` / ``vrrp VRID ...``), with its two families."""

    interface: str
    vrid: int
    version: int
    priority: int
    advert_ms: int
    preempt: bool
    v4: tuple[ipaddress.IPv4Interface, ...]
    v6: tuple[ipaddress.IPv6Interface, ...]
    instances: tuple[tuple[int, str], ...]
    """``(family, keepalived instance name)`` pairs this virtual router stands for."""

    def commands(self) -> list[str]:
        """The ``vrrp`` lines of this router under its ``interface``, addresses last."""
        n = self.vrid
        lines = [
            f"vrrp {n} version {self.version}",
            f"vrrp {n} priority {self.priority}",
            f"vrrp {n} advertisement-interval {self.advert_ms}",
            f"vrrp {n} preempt" if self.preempt else f"no vrrp {n} preempt",
        ]
        # The first address starts the router (FRR docs), so it comes after the parameters.
        lines += [f"vrrp {n} ip {vip.ip}" for vip in self.v4]
        lines += [f"vrrp {n} ipv6 {vip.ip}" for vip in self.v6]
        return lines


@dataclasses.dataclass(frozen=True)
class FrrBfdPeer:
    """One bfdd single-hop peer (``bfd`` / ``peer A ...``), from a ``bfd_instance``."""

    name: str
    peer: str
    local: str | None
    """``source_ip``; bfdd needs a local address for IPv6, found at start when not given."""
    receive_ms: int
    transmit_ms: int
    multiplier: int
    passive: bool

    def commands(self, interface: str, local: str) -> list[str]:
        """The ``peer`` block under ``bfd``, on ``interface`` from ``local``."""
        lines = [
            f"peer {self.peer} interface {interface} local-address {local}",
            f" receive-interval {self.receive_ms}",
            f" transmit-interval {self.transmit_ms}",
            f" detect-multiplier {self.multiplier}",
        ]
        return [*lines, " passive-mode"] if self.passive else lines


@dataclasses.dataclass(frozen=True)
class FrrPlan:
    """A ``keepalived.conf`` translated for FRR: virtual routers, BFD peers, what was ignored."""

    vrouters: tuple[FrrVrouter, ...]
    ignored: tuple[str, ...]
    bfd_peers: tuple[FrrBfdPeer, ...] = ()

    def config_text(self) -> str:
        """The ``vrrpd.conf`` vrrpd starts with."""
        lines = ["! Written by vrrp-lab from the router's keepalived.conf."]
        lines += [f"! ignored: {note}" for note in self.ignored]
        lines += ["log stdout informational", "!"]
        for vr in self.vrouters:
            lines.append(f"interface {vr.interface}")
            lines += [f" {cmd}" for cmd in vr.commands()]
            lines.append("exit")
            lines.append("!")
        return "\n".join(lines) + "\n"

    def instance_name(self, vrid: int, family: int) -> str:
        """The keepalived instance behind FRR's ``[VRID n] [IPvF]`` (``vrrp_N`` if unknown)."""
        for vr in self.vrouters:
            if vr.vrid == vrid:
                for fam, name in vr.instances:
                    if fam == family:
                        return name
        return f"vrrp_{vrid}"

    def priority(self, vrid: int) -> int | None:
        """The configured priority of VRID ``vrid`` (the first interface's), if any."""
        return next((vr.priority for vr in self.vrouters if vr.vrid == vrid), None)


def translate(text: str, source: str = "<config>") -> FrrPlan:
    """Map a ``keepalived.conf`` onto FRR virtual routers; :class:`UnsupportedConfig` if FRR
    cannot run it. The message names the instance, the keyword and what to do instead."""
    try:
        parsed = kconf.parse(text, source)
    except kconf.ConfigError as exc:
        raise UsageError(f"{source}: {exc}") from None
    ignored: list[str] = []
    if parsed.sync_groups:
        # vrrpd runs each virtual router alone: ignoring the group would let its members split.
        raise UnsupportedConfig(
            f"{source}: vrrp_sync_group {parsed.sync_groups[0].name}: FRR vrrpd has no sync "
            "groups (members moving together); use keepalived or bundled"
        )
    groups: dict[tuple[str, int], list[kconf.VrrpInstance]] = {}
    for inst in parsed.instances:
        where = f"{source}: vrrp_instance {inst.name}"
        if inst.track_bfd:
            raise UnsupportedConfig(f"{where}: {TRACK_BFD_REFUSAL}")
        for keyword, what in (
            ("track_script", "health checks"),
            ("track_file", "tracked files"),
            ("track_process", "process tracking"),
        ):
            if getattr(inst, keyword):
                # Ignoring it would let FRR stay master where the config says it must not.
                raise UnsupportedConfig(
                    f"{where}: {keyword}: FRR vrrpd has no {what}; use keepalived or bundled"
                )
        if inst.is_unicast:
            raise UnsupportedConfig(
                f"{where}: unicast_peer: FRR vrrpd is multicast only (224.0.0.18/ff02::12); "
                "use multicast (unicast: false) or another implementation"
            )
        if inst.authentication is not None:
            raise UnsupportedConfig(
                f"{where}: authentication: FRR vrrpd implements no VRRPv2 authentication; drop it"
            )
        if inst.effective_priority == kconf.VRRP_PRIO_OWNER:
            # No mapping exists: neither a priority nor an address makes vrrpd 8.4 the owner.
            raise UnsupportedConfig(f"{where}: {OWNER_REFUSAL}")
        version = inst.effective_version(parsed.global_defs)
        if inst.family == 6 and version == 2:
            raise UnsupportedConfig(f"{where}: version 2: FRR runs IPv6 with VRRPv3 only")
        if not inst.virtual_ipaddress:
            raise UnsupportedConfig(f"{where}: virtual_ipaddress: FRR needs at least one VIP")
        for vip in inst.virtual_ipaddress:
            if vip.dev is not None and vip.dev != inst.interface:
                raise UnsupportedConfig(
                    f"{where}: virtual_ipaddress {vip.address} dev {vip.dev}: FRR puts VIPs "
                    "on the instance's macvlan only"
                )
        for keyword, value in (
            ("state", inst.state),
            ("use_vmac", inst.use_vmac or None),
            ("vmac_xmit_base", inst.vmac_xmit_base or None),
            ("unicast_src_ip", inst.unicast_src_ip),
            ("preempt_delay", inst.preempt_delay or None),
            ("track_interface", inst.track_interface or None),
            ("virtual_ipaddress_excluded", inst.virtual_ipaddress_excluded or None),
            ("garp_master_delay", inst.garp_master_delay),
            ("garp_master_refresh", inst.garp_master_refresh),
            (
                "notify",
                inst.notify
                or inst.notify_master
                or inst.notify_backup
                or inst.notify_fault
                or inst.notify_stop,
            ),
            # FRR 8.4 has no accept command; its `show vrrp` reports acceptMode true, and its
            # docs say Accept_Mode is not implemented.
            ("accept", inst.accept),
        ):
            if value is not None:
                ignored.append(f"{inst.name}: {keyword} (FRR has no such setting)")
        groups.setdefault((inst.interface, inst.virtual_router_id), []).append(inst)

    vrouters = []
    for (interface, vrid), insts in groups.items():
        first = insts[0]
        params = {
            (
                i.effective_version(parsed.global_defs),
                i.effective_priority,
                i.advert_int_cs,
                i.nopreempt,
            )
            for i in insts
        }
        families = [i.family for i in insts]
        if len(params) > 1 or len(set(families)) != len(families):
            raise UnsupportedConfig(
                f"{source}: vrrp_instance {', '.join(i.name for i in insts)}: FRR keeps one "
                f"priority, interval, version and preempt per interface and VRID ({interface}, "
                f"{vrid}) and one instance per family; make them equal or use other VRIDs"
            )
        vips = [v.address for i in insts for v in i.virtual_ipaddress]
        vrouters.append(
            FrrVrouter(
                interface=interface,
                vrid=vrid,
                version=first.effective_version(parsed.global_defs),
                priority=first.effective_priority,
                # FRR counts milliseconds (multiples of 10) where VRRPv3 counts centiseconds.
                advert_ms=first.advert_int_cs * 10,
                preempt=not first.nopreempt,
                v4=tuple(v for v in vips if isinstance(v, ipaddress.IPv4Interface)),
                v6=tuple(v for v in vips if isinstance(v, ipaddress.IPv6Interface)),
                instances=tuple((i.family, i.name) for i in insts),
            )
        )
    peers = tuple(_bfd_peer(bfd, f"{source}: bfd_instance {bfd.name}", ignored)
                  for bfd in parsed.bfd_instances)  # fmt: skip
    return FrrPlan(vrouters=tuple(vrouters), ignored=tuple(ignored), bfd_peers=peers)


def _bfd_peer(bfd: kconf.BfdInstance, where: str, ignored: list[str]) -> FrrBfdPeer:
    """A ``bfd_instance`` as a bfdd peer; what bfdd cannot express raises or is ignored."""
    ms = {}
    for keyword in ("min_rx", "min_tx"):
        value = round(getattr(bfd, keyword) * 1e6) / 1000  # keepalived keeps microseconds
        if value not in BFDD_INTERVAL_MS:
            raise UnsupportedConfig(
                f"{where}: {keyword} {value:g} ms: bfdd takes whole milliseconds "
                f"{BFDD_INTERVAL_MS.start}..{BFDD_INTERVAL_MS.stop - 1}"
            )
        ms[keyword] = int(value)
    if bfd.multiplier < 2:
        raise UnsupportedConfig(f"{where}: multiplier {bfd.multiplier}: bfdd takes 2..255")
    # bfdd has no knob for these: its slow rate is 1 s, a single-hop session sends and
    # expects TTL 255 (bfdd/bfd_packet.c), and weight, vrrp and checker are keepalived's own.
    for keyword, value in (
        ("idle_tx", bfd.idle_tx != 1.0),
        ("ttl/hoplimit", bfd.ttl not in (None, 255)),
        ("max_hops", bfd.max_hops != 0),
        ("weight", bfd.weight != 0),
        ("vrrp/checker", bfd.vrrp or bfd.checker),
    ):
        if value:
            ignored.append(f"bfd_instance {bfd.name}: {keyword} (bfdd has no such setting)")
    return FrrBfdPeer(
        name=bfd.name,
        peer=str(bfd.neighbor_ip),
        local=None if bfd.source_ip is None else str(bfd.source_ip),
        receive_ms=ms["min_rx"],
        transmit_ms=ms["min_tx"],
        multiplier=bfd.multiplier,
        passive=bfd.passive,
    )


def unsupported_reason(config: str | RouterParams) -> str | None:
    """Why FRR cannot run ``config`` (one line), or None when it can: for n/a verdicts."""
    text = config.render() if isinstance(config, RouterParams) else config
    try:
        translate(text)
    except UnsupportedConfig as exc:
        return str(exc)
    return None


def reload_commands(old: FrrPlan, new: FrrPlan) -> list[str]:
    """The vtysh ``configure`` lines that turn FRR running ``old`` into running ``new``."""
    out: list[str] = []
    before = {(vr.interface, vr.vrid): vr for vr in old.vrouters}
    after = {(vr.interface, vr.vrid): vr for vr in new.vrouters}
    interfaces = dict.fromkeys([*(k[0] for k in before), *(k[0] for k in after)])
    for interface in interfaces:
        lines: list[str] = []
        for key, vr in before.items():
            if key[0] == interface and key not in after:
                lines.append(f"no vrrp {vr.vrid}")
        for key, vr in after.items():
            if key[0] != interface:
                continue
            was = before.get(key)
            if was is None:
                lines += vr.commands()
                continue
            # Parameters first, then new addresses, then removed ones: a router never drops to
            # zero addresses in between (that would shut it down, priority 0).
            lines += [c for c in vr.commands() if " ip" not in c and c not in was.commands()]
            lines += [c for c in vr.commands() if " ip" in c and c not in was.commands()]
            lines += [f"no {c}" for c in was.commands() if " ip" in c and c not in vr.commands()]
        if lines:
            out += [f"interface {interface}", *lines, "exit"]
    return out


def macvlan_name(family: int, ifindex: int, vrid: int) -> str:
    """ifupdown2's (and FRR's docs') name for the macvlan of a VRID: ``vrrp4-2-1``."""
    return f"vrrp{family}-{ifindex}-{vrid}"


def vmac(family: int, vrid: int) -> str:
    """The RFC 5798 §7.3 virtual MAC: 00-00-5E-00-01-{VRID}, 02 for IPv6."""
    return f"00:00:5e:00:0{1 if family == 4 else 2}:{vrid:02x}"


# --- the driver --------------------------------------------------------------------------


@register_driver
class FrrRouter(Router):
    """FRR's vrrpd plus zebra (and bfdd for BFD peers), driven from a ``keepalived.conf``
    (see the module docstring)."""

    impl: ClassVar[str] = "frr"
    program: ClassVar[str] = str(FRR_DIR / "vrrpd")
    install_hint: ClassVar[str] = (
        "install Debian's frr package without starting its service (docs/frr.md)"
    )
    events_from_output: ClassVar[bool] = True
    unicast: ClassVar[bool] = False  # vrrpd sends to 224.0.0.18 / ff02::12 only

    def __init__(
        self, node: Node, config: str | RouterParams, *, source: str | None = None
    ) -> None:
        """Translate ``config`` at once, so an unsupported one fails before anything runs."""
        super().__init__(node, config, source=source)
        self.plan = translate(self.config_text, self.source)
        self._running_plan: FrrPlan | None = None
        # zebra, then bfdd when the config has BFD peers: started before vrrpd, ended after.
        self._helpers: dict[str, subprocess.Popen[bytes]] = {}
        self._terminating = False

    # -- files -------------------------------------------------------------------------------

    @property
    def frr_dir(self) -> str:
        """FRR's config, pid files and sockets, inside the node."""
        return FRR_RUN

    @property
    def vrrpd_config_path(self) -> str:
        """The generated ``vrrpd.conf``, inside the node."""
        return f"{FRR_RUN}/vrrpd.conf"

    @property
    def zebra_log_path(self) -> str:
        """zebra's captured output, inside the node."""
        return self.helper_log_path("zebra")

    def helper_log_path(self, name: str) -> str:
        """The captured output of helper daemon ``name`` (zebra, bfdd), inside the node."""
        return f"{RUN_DIR}/{name}.log"

    @property
    def _zebra(self) -> subprocess.Popen[bytes] | None:
        """zebra's process while it runs (None before start and after stop)."""
        return self._helpers.get("zebra")

    def _daemon_flags(self, name: str) -> list[str]:
        return [
            "-f",
            f"{FRR_RUN}/{name}.conf",
            "-i",
            f"{FRR_RUN}/{name}.pid",
            "-z",
            f"{FRR_RUN}/zserv.api",
            "--vty_socket",
            FRR_RUN,
            "--log",
            "stdout",
            "--log-level",
            "info",
        ]

    def command(self) -> list[str]:
        """``vrrpd`` in the foreground, logging to stdout, with the node's private files."""
        return [self.program, *self._daemon_flags("vrrpd")]

    def _prepare_files(self) -> None:
        # The keepalived.conf (kept for reference and for the conformance report) and FRR's.
        super()._prepare_files()
        frr = self.node.path(FRR_RUN)
        frr.mkdir(parents=True, exist_ok=True)
        # The daemons drop to the frr user (root is refused: it is not in the frrvty group)
        # and then write their pid files and sockets here.
        try:
            user = pwd.getpwnam("frr")
        except KeyError:
            raise EnvironmentMissing(f"there is no frr user; {self.install_hint}") from None
        os.chown(frr, user.pw_uid, user.pw_gid)
        self.node.path(f"{FRR_RUN}/zebra.conf").write_text(
            "! Written by vrrp-lab: zebra only serves vrrpd here.\nlog stdout informational\n"
        )
        self.node.path(self.vrrpd_config_path).write_text(self.plan.config_text())
        if self.plan.bfd_peers:
            self.node.path(f"{FRR_RUN}/bfdd.conf").write_text(self._bfdd_config())

    def _bfdd_config(self) -> str:
        """``bfdd.conf``: a ``peer`` per ``bfd_instance``, on the interface that reaches it."""
        lines = ["! Written by vrrp-lab from the router's bfd_instance blocks.",
                 "log stdout informational", "bfd"]  # fmt: skip
        for peer in self.plan.bfd_peers:
            interface, local = self._route_to(peer.peer, peer.local)
            lines += [f" {line}" for line in peer.commands(interface, local)] + [" exit"]
        return "\n".join([*lines, "exit"]) + "\n"

    def _route_to(self, peer: str, local: str | None) -> tuple[str, str]:
        """(interface, local address) this node reaches ``peer`` by: a single-hop peer is on
        a link of the node, and bfdd wants both named (the address is mandatory for IPv6)."""
        argv = ["ip", "-j", "route", "get", peer, *(["from", local] if local else [])]
        routes = json.loads(self.node.run(argv).stdout)
        if not routes or "dev" not in routes[0]:
            raise RouterError(f"{self.name} has no route to its BFD peer {peer}")
        return routes[0]["dev"], local or routes[0]["prefsrc"]

    @property
    def ignored(self) -> tuple[str, ...]:
        """The settings of the config FRR runs without (the translation's list)."""
        return self.plan.ignored

    def set_config(self, config: str | RouterParams) -> None:
        """Replace the config (translated at once); it applies at :meth:`start`/:meth:`reload`."""
        text = config.render() if isinstance(config, RouterParams) else config
        plan = translate(text, self.source)
        super().set_config(config)
        self.plan = plan

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, timeout: float = 10.0) -> float:
        """Create the macvlans, start zebra, then vrrpd; return the time of its first report."""
        with self._lock:
            if self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is already running")
            self._terminating = False
            self._prepare_files()
            self._private_var_tmp()
            self._make_macvlans()
            try:
                self._start_helper("zebra", [], "zserv.api", timeout)
                if self.plan.bfd_peers:
                    # bfdd learns the interfaces from zebra; its control socket is private too.
                    bfdctl = ["--bfdctl", f"{FRR_RUN}/bfdd.sock"]
                    self._start_helper("bfdd", bfdctl, "bfdd.vty", timeout)
                at = super().start(timeout=timeout)
            except BaseException:
                if self.running:
                    self._kill_tree()
                    self._save_log()
                self._end_helpers(graceful=False)
                raise
            self._running_plan = self.plan
            return at

    def daemon_pids(self) -> list[int]:
        """vrrpd's processes and its helpers' (zebra, bfdd)."""
        helpers = [p for p in self._helpers.values() if p.poll() is None]
        return self.pids() + [pid for p in helpers for pid in process_tree(p.pid)]

    def stop(self, *, timeout: float = 10.0) -> float:
        """SIGTERM vrrpd (priority-0 advert from a master), then stop bfdd and zebra."""
        with self._lock:
            try:
                return super().stop(timeout=timeout)
            finally:
                self._end_helpers(graceful=True, timeout=timeout)

    def kill(self) -> float:
        """SIGKILL vrrpd, then bfdd and zebra: no priority 0, no BFD Down (the peer detects
        the silence), the master's macvlan stays up with the VIP."""
        with self._lock:
            try:
                return super().kill()
            finally:
                self._end_helpers(graceful=False)

    def close(self, *, timeout: float = 10.0) -> None:
        """As :meth:`Router.close`, and the helpers go too (even when vrrpd died on its own)."""
        try:
            super().close(timeout=timeout)
        finally:
            self._end_helpers(graceful=True, timeout=timeout)

    def reload(self) -> float:
        """Apply the difference between the running and the current config with ``vtysh``.

        Returns the lab-clock time just before the commands were sent. The new ``vrrpd.conf``
        is written too, so a later :meth:`start` runs the same config. New VRIDs get their
        macvlans first; macvlans of removed VRIDs stay, in protodown.
        """
        with self._lock:
            if not self.running:
                raise RouterError(f"router {self.name} ({self.impl}) is not running")
            old = self._running_plan or self.plan
            commands = reload_commands(old, self.plan)
            self._prepare_files()
            self._make_macvlans(only_missing=True)
            at = clock.now()
            if commands:
                self.vtysh("configure terminal", *commands)
            self._running_plan = self.plan
            return at

    # -- FRR's own interface ----------------------------------------------------------------

    def vtysh(self, *commands: str, timeout: float = 10.0, daemon: str = "vrrpd") -> str:
        """Run ``commands`` in vtysh against this router's ``daemon``; return their output.

        vtysh reports a rejected command on stdout with exit status 0 in some versions, so
        both the status and FRR's ``%`` error lines count as failures.
        """
        # -H: vtysh appends every command to ~/.history_frr, the host's home otherwise.
        argv = ["vtysh", "--vty_socket", FRR_RUN, "-H", "/dev/null", "-d", daemon]
        for cmd in commands:
            argv += ["-c", cmd]
        result = self.node.run(argv, check=False, timeout=timeout)
        errors = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("%") or "Unknown command" in line
        ]
        if result.returncode != 0 or errors:
            raise RouterError(
                f"vtysh on {self.name} failed (exit {result.returncode}) on "
                f"{' / '.join(commands)}: {' | '.join(errors) or result.stderr.strip()}"
            )
        return result.stdout

    def status(self) -> list[dict[str, Any]]:
        """``show vrrp json``: one object per virtual router, with ``v4``/``v6`` state,
        timers (milliseconds) and counters (adverts, GARPs/NAs, transitions)."""
        if not self.running:
            raise RouterError(f"router {self.name} ({self.impl}) is not running")
        data: list[dict[str, Any]] = json.loads(self.vtysh("show vrrp json"))
        return data

    def bfd_peers(self) -> list[dict[str, Any]]:
        """``show bfd peers json``: one object per session (``peer``, ``status`` up/down/init/
        shutdown, ``id``/``remote-id``, intervals in ms, ``detect-multiplier``, diagnostics)."""
        if "bfdd" not in self._helpers:
            raise RouterError(f"router {self.name} ({self.impl}) runs no bfdd")
        data: list[dict[str, Any]] = json.loads(self.vtysh("show bfd peers json", daemon="bfdd"))
        return data

    def macvlans(self) -> dict[str, tuple[int, int]]:
        """The macvlans this router's config needs: name → (family, VRID)."""
        out: dict[str, tuple[int, int]] = {}
        for vr in self.plan.vrouters:
            ifindex = self._ifindex(vr.interface)
            for family, vips in ((4, vr.v4), (6, vr.v6)):
                if vips:
                    out[macvlan_name(family, ifindex, vr.vrid)] = (family, vr.vrid)
        return out

    # -- events ------------------------------------------------------------------------------

    def parse_output_line(self, line: str, at: float) -> Transition | None:
        """vrrpd's ``[VRID n] [IPvF] Old -> New`` log line as a transition (None otherwise)."""
        if _TERMINATING in line:
            self._terminating = True
            return None
        match = _STATE_LINE.search(line)
        if match is None:
            return None
        vrid, family = int(match.group("vrid")), int(match.group("family"))
        new = match.group("new")
        state = _FRR_STATES.get(new, new.upper())
        if state == "INIT" and self._terminating:
            state = "STOP"
        return Transition(
            at=at,
            router=self.name,
            instance=self.plan.instance_name(vrid, family),
            state=state,
            priority=self.plan.priority(vrid),
        )

    # -- internals ---------------------------------------------------------------------------

    def _ifindex(self, ifname: str) -> int:
        # Not link_lookup: it strands a netlink ACK on the node's lab-long socket (see
        # Namespace.link_index).
        found = self.node.link_index(ifname)
        if found is None:
            raise RouterError(f"{self.name} has no interface {ifname!r} for FRR's VRRP")
        return found

    def _make_macvlans(self, *, only_missing: bool = False) -> None:
        """Create each VRID's macvlan as FRR's docs require, in protodown until vrrpd decides.

        An existing one (left by a previous run of the daemon) is recreated, so every start
        begins from the documented state; ``only_missing`` keeps existing ones (reload).
        """
        for vr in self.plan.vrouters:
            ifindex = self._ifindex(vr.interface)
            for family, addrs in ((4, vr.v4), (6, vr.v6)):
                if not addrs:
                    continue
                name = macvlan_name(family, ifindex, vr.vrid)
                exists = self.node.link_index(name) is not None
                if exists and only_missing:
                    continue
                if exists:
                    self.node.run(["ip", "link", "del", name])
                mac = vmac(family, vr.vrid)
                add = ["ip", "link", "add", name, "link", vr.interface, "address", mac]
                self.node.run([*add, "type", "macvlan", "mode", "bridge"])
                if family == 6:
                    # The link-local must not be EUI-64 from the shared VMAC: both routers
                    # would advertise from the same source and both win the election.
                    self.node.run(["ip", "link", "set", name, "addrgenmode", "random"])
                    # Every router holds the same VIPs on the same VMAC, and vrrpd sends from
                    # the macvlan's link-local: no duplicate detection (a tentative source
                    # cannot send, and the VIP is duplicated by design), as keepalived's nodad.
                    self.node.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.accept_dad=0"])
                # protodown before up: a backup must never answer for the VIP, not even while
                # vrrpd starts (vrrpd/zebra lift it when this router becomes master).
                # ARP sysctls (arp_ignore, arp_announce) are deliberately left at the kernel's
                # defaults: FRR's VRRP docs ("System Configuration", doc/user/vrrp.rst) prescribe
                # only the macvlan (bridge mode, VMAC, addrgenmode random, VIP not on the
                # parent); their one sysctl, ignore_routes_with_linkdown=1 under
                # "Troubleshooting", is for forwarding and does not change who answers ARP
                # (measured). So the parent still answers ARP for a backup's VIP (RFC 5798
                # §6.4.2, conformance row A02; FRRouting/frr#18379, #16696, #16995).
                self.node.run(["ip", "link", "set", name, "protodown", "on"])
                for vip in addrs:
                    self.node.run(["ip", "addr", "add", str(vip), "dev", name])
                self.node.run(["ip", "link", "set", name, "up"])

    def _private_var_tmp(self) -> None:
        """Give the node its own ``/var/tmp``: FRR's daemons write a crash-log directory
        ``/var/tmp/frr/DAEMON.PID`` there (a compiled-in path), which would land on the host."""
        node = self.node
        if node.run(["mountpoint", "-q", "/var/tmp"], check=False).returncode != 0:
            # The node's mount namespace has private propagation: the host never sees this.
            node.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "lab-var-tmp", "/var/tmp"])

    def _start_helper(self, name: str, extra: list[str], ready: str, timeout: float) -> None:
        """Start helper daemon ``name`` and wait for its ``ready`` file (a socket) to appear."""
        # Sockets and pid files of a previous run would make it look ready before it is.
        for leftover in (ready, f"{name}.vty", f"{name}.pid", "vrrpd.vty", "vrrpd.pid"):
            self.node.path(f"{FRR_RUN}/{leftover}").unlink(missing_ok=True)
        log = open(self.node.path(self.helper_log_path(name)), "ab")  # noqa: SIM115 (handed over)
        try:
            proc = self.node.popen(
                self.launch([str(FRR_DIR / name), *self._daemon_flags(name), *extra]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._helpers[name] = proc
        path = self.node.path(f"{FRR_RUN}/{ready}")
        wait_until(
            lambda: path.exists() or proc.poll() is not None,
            timeout=timeout,
            what=f"{name} on {self.name} to open {FRR_RUN}/{ready}",
        )
        if proc.poll() is not None:
            del self._helpers[name]
            raise RouterError(
                f"{name} on {self.name} exited {proc.returncode}; log tail:\n"
                f"{self._helper_log_tail(name)}"
            )

    def _end_helpers(self, *, graceful: bool, timeout: float = 10.0) -> None:
        """End the helpers, the last started first (bfdd before the zebra it talks to)."""
        for name in reversed(list(self._helpers)):
            proc = self._helpers.pop(name)
            if proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _helper_log_tail(self, name: str, lines: int = 10) -> str:
        with contextlib.suppress(OSError):
            text = self.node.path(self.helper_log_path(name)).read_text(errors="replace")
            return "\n".join(text.rstrip().splitlines()[-lines:])
        return ""


__all__ = [
    "OWNER_REFUSAL",
    "TRACK_BFD_REFUSAL",
    "FrrBfdPeer",
    "FrrPlan",
    "FrrRouter",
    "FrrVrouter",
    "UnsupportedConfig",
    "macvlan_name",
    "reload_commands",
    "translate",
    "unsupported_reason",
    "vmac",
]
