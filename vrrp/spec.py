"""From a parsed ``keepalived.conf`` to what the daemon runs: one :class:`InstanceSpec` each.

:mod:`vrrp.config` models the file as keepalived reads it; this module resolves it into the
values the daemon needs, applying keepalived's defaults (``effective_*``), the global GARP
settings, the VMAC name and MAC, and the RFC 9568 switch. It is pure: no sockets, no
interface lookups (the primary address is found at run time), so it is unit-tested alone.

RFC 9568 mode is not a keepalived keyword, so :mod:`vrrp.config` reports it as unknown (a
warning, which keepalived would also only log) and keeps it on ``Config.unused`` with its
scope, whatever file it came from (an ``include`` or text given as a string). It is read from
those kept statements here:

``vrrp_rfc9568`` in ``global_defs``, optionally followed by ``behaviour`` or ``checksum``:
    every VRRPv3 instance follows RFC 9568. ``behaviour`` switches the state machine only (a
    Master re-advertises at once when it hears a losing advert; a Backup recomputes Skew_Time
    when it adopts an interval); ``checksum`` switches the transmitted IPv4 checksum only (no
    pseudo-header, RFC 9568 §5.2.8); without an argument, both. Received adverts are accepted
    in either checksum form whatever the setting. VRRPv2 instances ignore it.

``rfc9568 [behaviour|checksum]`` inside a ``vrrp_instance``: the same for that instance.

``bfd_takeover`` inside a ``vrrp_instance`` (ours, not keepalived's, which warns about it and
ignores it): the opt-in fast takeover of the VRRP-BFD drafts. A tracked BFD session to the
address the current master advertises from going Down ends the Master_Down_Timer of that
instance at once, instead of waiting for Master_Down_Interval; such a session never puts the
instance in FAULT (see :mod:`vrrp.tracking`).

Two keepalived ``global_defs`` keywords the parser does not model are read the same way:
``vrrp_rt_priority N`` (SCHED_RR priority 1..99) and ``vrrp_priority N`` (nice -20..19).
These keywords are read only in the scope named; elsewhere they stay unknown-keyword
warnings.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any, TypeVar

from vrrp.config import (
    BfdInstance,
    Config,
    NotifyScript,
    Statement,
    SyncGroup,
    TrackedProcess,
    VrrpInstance,
    VrrpScript,
)
from vrrp.config.tracked import TrackEntry
from vrrp.packet import Auth, ChecksumForm, IPAddress, vmac

__all__ = [
    "BfdSpec",
    "DaemonSpec",
    "FileSpec",
    "GarpSpec",
    "InstanceSpec",
    "ProcessSpec",
    "Rfc9568",
    "ScriptSpec",
    "SyncGroupSpec",
    "TrackBfdSpec",
    "TrackFileSpec",
    "TrackProcessSpec",
    "TrackScriptSpec",
    "TrackSpec",
    "VipSpec",
    "build",
]


class Rfc9568(enum.Flag):
    """Which RFC 9568 differences an instance follows."""

    NONE = 0
    BEHAVIOUR = enum.auto()
    """State machine: re-advertise on a losing advert, recompute Skew_Time on adoption."""
    CHECKSUM = enum.auto()
    """Transmit the VRRPv3-over-IPv4 checksum without the pseudo-header."""
    ALL = BEHAVIOUR | CHECKSUM


_RFC9568_WORDS = {
    "": Rfc9568.ALL,
    "behaviour": Rfc9568.BEHAVIOUR,
    "behavior": Rfc9568.BEHAVIOUR,
    "checksum": Rfc9568.CHECKSUM,
    "all": Rfc9568.ALL,
}


@dataclass(frozen=True, slots=True)
class VipSpec:
    """One virtual address and the interface it is installed on."""

    address: IPv4Interface | IPv6Interface
    """The address with its prefix (/32 or /128 when the file gives none, as keepalived)."""
    dev: str
    """The VMAC interface with ``use_vmac``, else the instance's interface, unless ``dev``."""


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """A ``track_interface`` entry."""

    name: str
    weight: int | None = None
    """None: the instance goes to FAULT while the interface is down. Otherwise the priority
    changes by ``weight`` while it is down (while it is up with ``reverse``)."""
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class TrackBfdSpec:
    """A ``track_bfd`` entry, with the ``bfd_instance``'s default weight resolved."""

    name: str
    """The ``bfd_instance`` tracked."""
    weight: int = 0
    """0: the instance is in FAULT while the session is not Up (while it is Up with
    ``reverse``). Otherwise the priority changes by ``weight`` while the session is Up if the
    weight is positive, while it is not Up if negative; ``reverse`` negates the change (as
    keepalived's ``initialise_track_bfd_state`` and ``vrrp_handle_bfd_event`` do)."""
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """One ``vrrp_script``: a check the daemon runs every ``interval`` seconds."""

    name: str
    argv: tuple[str, ...]
    interval: float = 1.0
    time_limit: float = 1.0
    """How long a run may take before it is terminated (and counts as a failure)."""
    rise: int = 1
    """Successes in a row that make a failed script good."""
    fall: int = 1
    """Failures in a row that make a good script fail."""
    init_fail: bool = False
    """Failed until it first succeeds, rather than undecided until its first result."""
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class TrackScriptSpec:
    """A ``track_script`` entry, with the ``vrrp_script``'s default weight resolved."""

    name: str
    """The ``vrrp_script`` tracked."""
    weight: int = 0
    """0: the instance is in FAULT while the script fails (while it succeeds with
    ``reverse``), and waits in INIT until it first reports. Otherwise the priority changes by
    ``weight`` while the script succeeds if the weight is positive, while it fails if
    negative; ``reverse`` negates the change (keepalived's
    ``process_script_update_priority``)."""
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One ``track_file``: a file holding a number, which the daemon watches."""

    name: str
    path: str
    init_value: int | None = None
    """Written at start when the file is missing (or always, with ``init_overwrite``)."""
    init_overwrite: bool = False


@dataclass(frozen=True, slots=True)
class TrackFileSpec:
    """A ``track_file`` entry, with the block's default weight resolved."""

    name: str
    """The ``track_file`` block tracked."""
    weight: int = 1
    """0: the instance is in FAULT while the file holds a non-zero number (zero with
    ``reverse``). Otherwise the priority changes by the number × ``weight`` (negated with
    ``reverse``), and a change of -254 or less is FAULT (keepalived's
    ``process_update_vrrp_track_file_status``)."""
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One ``vrrp_track_process``: which processes to count, and the count that is up."""

    name: str
    process: str
    """``/proc/PID/comm``, or with ``full_command`` the command line's first word, exactly."""
    parameters: tuple[str, ...] = ()
    match: str | None = None
    """How the rest of the command line is matched: None (not at all), ``exact``, ``partial``
    (the parameters are its first words) or ``initial`` (the last may be a prefix)."""
    full_command: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    """None: no maximum."""
    fork_delay: float = 0.0
    """How long a change a process start causes waits before it applies (0: at once)."""
    terminate_delay: float = 0.0
    """How long a change a process exit causes waits before it applies (0: at once)."""


@dataclass(frozen=True, slots=True)
class TrackProcessSpec:
    """A ``track_process`` entry, with the block's default weight resolved."""

    name: str
    """The ``vrrp_track_process`` tracked."""
    weight: int = 0
    """0: the instance is in FAULT while the process has no quorum (while it has with
    ``reverse``). Otherwise the priority changes by ``weight`` while it has quorum if the
    weight is positive, while it has not if negative; ``reverse`` negates the change
    (keepalived's ``initialise_process_tracking_priorities``,
    ``process_update_track_process_status``)."""
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class BfdSpec:
    """One ``bfd_instance``: a single-hop BFD session (RFC 5880, RFC 5881) to run."""

    name: str
    neighbor: IPAddress
    source: IPAddress | None = None
    """The address to send from (and to bind to); None: the kernel's choice for the route."""
    min_rx: float = 0.010
    """bfd.RequiredMinRxInterval, seconds."""
    min_tx: float = 0.010
    """bfd.DesiredMinTxInterval while Up, seconds."""
    idle_tx: float = 1.0
    """bfd.DesiredMinTxInterval while not Up, seconds (at least 1 s, RFC 5880 §6.8.3)."""
    multiplier: int = 5
    passive: bool = False
    ttl: int = 255
    """The TTL / hop limit sent, and the reference of the receive check: 255 unless configured
    (for IPv6 too, unlike keepalived's 64: RFC 5881 §5)."""
    max_hops: int = 0
    """Received packets need TTL + max_hops >= ttl; 255 disables the check (keepalived)."""
    notifies_vrrp: bool = True
    """Whether VRRP instances hear its events (keepalived's ``vrrp`` / ``checker`` flags)."""

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.neighbor.version

    def identity(self) -> tuple[object, ...]:
        """What a reload cannot change without a new session: the peer and the local end."""
        return (self.neighbor, self.source)

    def accepts_ttl(self, ttl: int) -> bool:
        """keepalived's ``bfd_check_packet_ttl``: a packet needs TTL + max_hops >= ttl."""
        return self.max_hops == 255 or ttl + self.max_hops >= self.ttl


@dataclass(frozen=True, slots=True)
class GarpSpec:
    """Gratuitous ARP / unsolicited NA timing on becoming Master (keepalived's meaning)."""

    delay: int = 5
    """Seconds after the transition before the second batch (0: no second batch)."""
    repeat: int = 5
    """Messages per VIP in each batch."""
    refresh: int = 0
    """Seconds between refresh batches while Master (0: none)."""
    refresh_repeat: int = 1
    """Messages per VIP in each refresh batch."""
    lower_prio_repeat: int = 5
    """Messages per VIP a Master sends at once when it hears an advert that loses to it
    (keepalived's ``garp_lower_prio_repeat``): a router that wrongly took over has taught
    learning bridges the VMAC on its port, and only a GARP from the Master teaches it back."""
    lower_prio_delay: int = 5
    """Seconds after that before a second such batch (keepalived's ``garp_lower_prio_delay``;
    0: none): the loser's own GARPs may follow the advert that drew the first batch."""


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything the daemon needs to run one ``vrrp_instance``."""

    name: str
    interface: str
    """The base interface: adverts are received here."""
    vrid: int
    family: int
    """4 or 6."""
    version: int
    """2 or 3."""
    priority: int
    advert_int_cs: int
    preempt: bool = True
    preempt_delay: float = 0.0
    accept: bool = True
    rfc9568: Rfc9568 = Rfc9568.NONE
    vmac_name: str | None = None
    """The macvlan's name with ``use_vmac`` (``vrrp.VRID`` unless named), else None."""
    vmac_xmit_base: bool = False
    unicast_src: IPAddress | None = None
    peers: tuple[IPAddress, ...] = ()
    peer_ttl: tuple[tuple[IPAddress, int, int], ...] = ()
    """Per peer, the (min, max) TTL / hop limit its adverts may arrive with.

    keepalived checks a unicast advert's TTL only when the peer has ``min_ttl``/``max_ttl``
    (and 2.2.7 itself sends IPv6 unicast adverts with hop limit 64), so a peer without them
    gets (0, 255); with one of them the other defaults to its end of the range."""
    vips: tuple[VipSpec, ...] = ()
    auth: Auth | None = None
    """VRRPv2 simple-text authentication; None means Auth Type 0."""
    garp: GarpSpec = field(default_factory=GarpSpec)
    notify_master: tuple[str, ...] | None = None
    notify_backup: tuple[str, ...] | None = None
    notify_fault: tuple[str, ...] | None = None
    notify_stop: tuple[str, ...] | None = None
    notify: tuple[str, ...] | None = None
    """The generic script: keepalived appends ``INSTANCE NAME STATE PRIORITY``."""
    track_interfaces: tuple[TrackSpec, ...] = ()
    track_bfds: tuple[TrackBfdSpec, ...] = ()
    track_scripts: tuple[TrackScriptSpec, ...] = ()
    track_files: tuple[TrackFileSpec, ...] = ()
    track_processes: tuple[TrackProcessSpec, ...] = ()
    bfd_takeover: bool = False
    """Ours: a tracked session to the current master going Down ends the Master_Down_Timer."""
    debug: int = 0
    sync_group: str | None = None
    """The ``vrrp_sync_group`` it is a member of. Its trackers are in the ``track_*`` above,
    after the instance's own, as keepalived adds them to every member."""

    @property
    def vmac_address(self) -> str:
        """The virtual router MAC: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6)."""
        return vmac(self.vrid, self.family)

    @property
    def tx_interface(self) -> str:
        """Where adverts leave: the VMAC unless ``vmac_xmit_base`` (or no VMAC)."""
        if self.vmac_name and not self.vmac_xmit_base:
            return self.vmac_name
        return self.interface

    @property
    def rx_interface(self) -> str:
        """Where adverts are received: the VMAC for a multicast instance with ``use_vmac``.

        A private-mode macvlan takes every multicast frame whose *source* MAC is its own MAC
        (the kernel assumes it looped back) and hands it to the macvlan alone: a peer sending
        from the same VMAC is heard on the VMAC, never on the base. Frames from any other MAC
        reach the VMAC too (as a copy), so the VMAC hears every peer. Unicast adverts are
        addressed to the base's MAC and only ever reach the base, and unicast requires
        ``vmac_xmit_base`` anyway.
        """
        if self.vmac_name and not self.is_unicast:
            return self.vmac_name
        return self.interface

    @property
    def garp_mac_is_vmac(self) -> bool:
        """GARPs carry the VMAC with ``use_vmac`` (with or without ``vmac_xmit_base``)."""
        return self.vmac_name is not None

    @property
    def checksum_form(self) -> ChecksumForm:
        """The checksum form put on transmitted adverts."""
        if self.version == 2:
            return ChecksumForm.RFC3768
        if Rfc9568.CHECKSUM in self.rfc9568:
            return ChecksumForm.RFC9568
        return ChecksumForm.RFC5798

    @property
    def is_unicast(self) -> bool:
        """Whether adverts go to ``peers`` rather than the multicast group."""
        return bool(self.peers)

    def identity(self) -> tuple[object, ...]:
        """What cannot change on a reload without restarting the instance."""
        return (
            self.vrid,
            self.interface,
            self.family,
            self.version,
            self.vmac_name,
            self.vmac_xmit_base,
            self.unicast_src,
        )


@dataclass(frozen=True, slots=True)
class SyncGroupSpec:
    """One ``vrrp_sync_group``: its members and the scripts its transitions run."""

    name: str
    members: tuple[str, ...]
    notify_master: tuple[str, ...] | None = None
    notify_backup: tuple[str, ...] | None = None
    notify_fault: tuple[str, ...] | None = None
    notify_stop: tuple[str, ...] | None = None
    notify: tuple[str, ...] | None = None
    """The generic script: keepalived appends ``GROUP NAME STATE 0``."""


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """The whole configuration, resolved."""

    instances: tuple[InstanceSpec, ...]
    bfds: tuple[BfdSpec, ...] = ()
    scripts: tuple[ScriptSpec, ...] = ()
    files: tuple[FileSpec, ...] = ()
    processes: tuple[ProcessSpec, ...] = ()
    sync_groups: tuple[SyncGroupSpec, ...] = ()
    notify_fifo: str | None = None
    notify_fifo_script: tuple[str, ...] | None = None
    router_id: str | None = None
    rt_priority: int | None = None
    """keepalived's ``vrrp_rt_priority``: run with SCHED_RR at this priority (1..99)."""
    nice: int | None = None
    """keepalived's ``vrrp_priority``: the process's nice value (-20..19)."""
    warnings: tuple[str, ...] = ()


def _argv(script: NotifyScript | None) -> tuple[str, ...] | None:
    return tuple(script.argv) if script is not None else None


def _mode(statement: Statement) -> Rfc9568:
    """The mode an ``[vrrp_]rfc9568 [WORD]`` statement asks for (all, unless the word says)."""
    word = statement.args[0] if statement.args else ""
    return _RFC9568_WORDS.get(word.lower(), Rfc9568.ALL)


def _rfc9568_modes(config: Config) -> tuple[Rfc9568, dict[str, Rfc9568]]:
    """The ``global_defs`` RFC 9568 mode, and each instance's own, from the kept statements."""
    global_mode = Rfc9568.NONE
    for statement in config.statements("vrrp_rfc9568", "global_defs"):
        global_mode |= _mode(statement)
    by_instance: dict[str, Rfc9568] = {}
    for statement in config.statements("rfc9568"):
        name = statement.instance
        if name is not None:
            by_instance[name] = by_instance.get(name, Rfc9568.NONE) | _mode(statement)
    return global_mode, by_instance


_SIGNED = re.compile(r"-?[0-9]+")


def _int_setting(
    config: Config, keyword: str, low: int, high: int
) -> tuple[int | None, list[Statement]]:
    """The last valid ``keyword N`` of global_defs (a bad value is ignored, as a warning),
    and the statements read."""
    value = None
    statements = config.statements(keyword, "global_defs")
    for statement in statements:
        args = statement.args
        if len(args) == 1 and _SIGNED.fullmatch(args[0]) and low <= int(args[0]) <= high:
            value = int(args[0])
    return value, statements


def _garp(inst: VrrpInstance, config: Config) -> GarpSpec:
    values = inst.effective_garp(config.global_defs)
    return GarpSpec(
        delay=values["garp_master_delay"],
        repeat=values["garp_master_repeat"],
        refresh=values["garp_master_refresh"],
        refresh_repeat=values["garp_master_refresh_repeat"],
        lower_prio_repeat=inst.effective_garp_lower_prio_repeat(config.global_defs),
        # keepalived's default is the global vrrp_garp_master_delay (vrrp.c), not the
        # instance's own garp_master_delay.
        lower_prio_delay=0
        if config.global_defs.vrrp_strict
        else config.global_defs.vrrp_garp_master_delay,
    )


def build_bfd(bfd: BfdInstance) -> BfdSpec:
    """Resolve one ``bfd_instance`` (the bundled daemon's hop limit: 255 unless configured)."""
    return BfdSpec(
        name=bfd.name,
        neighbor=bfd.neighbor_ip,
        source=bfd.source_ip,
        min_rx=bfd.min_rx,
        min_tx=bfd.min_tx,
        idle_tx=bfd.idle_tx,
        multiplier=bfd.multiplier,
        passive=bfd.passive,
        ttl=bfd.effective_ttl,
        max_hops=bfd.effective_max_hops,
        notifies_vrrp=bfd.notifies_vrrp,
    )


_Tracked = TypeVar("_Tracked", TrackBfdSpec, TrackScriptSpec, TrackFileSpec, TrackProcessSpec)


def _resolved(
    entries: Sequence[TrackEntry], block: Callable[[str], Any], spec: type[_Tracked]
) -> tuple[_Tracked, ...]:
    """An instance's entries naming tracked blocks, each with the weight and ``reverse`` in
    force (the block's where the entry says none)."""
    return tuple(spec(e.name, *e.resolve(block(e.name))) for e in entries)


def build_script(script: VrrpScript) -> ScriptSpec:
    """Resolve one ``vrrp_script``."""
    return ScriptSpec(
        name=script.name,
        argv=tuple(script.argv),
        interval=float(script.interval),
        time_limit=float(script.time_limit),
        rise=script.rise,
        fall=script.fall,
        init_fail=script.init_fail,
        user=script.user,
        group=script.group,
    )


def build_process(process: TrackedProcess) -> ProcessSpec:
    """Resolve one ``vrrp_track_process``."""
    return ProcessSpec(
        name=process.name,
        process=process.process,
        parameters=process.parameters,
        match=process.match,
        full_command=process.matches_command,
        quorum=process.effective_quorum,
        quorum_max=process.effective_quorum_max,
        fork_delay=process.fork_delay or 0.0,
        terminate_delay=process.terminate_delay or 0.0,
    )


def build_instance(
    inst: VrrpInstance,
    config: Config,
    rfc9568: Rfc9568 = Rfc9568.NONE,
    *,
    bfd_takeover: bool = False,
) -> InstanceSpec:
    """Resolve one instance with keepalived's defaults; a sync group member tracks its group's
    interfaces, scripts, files and BFD sessions too (vrrp.c ``sync_group_tracking_init``)."""
    group = config.sync_group_of(inst.name)
    tracked = _GroupTrackers(inst, group)
    version = inst.effective_version(config.global_defs)
    vmac_name = inst.vmac_interface
    vip_dev_default = vmac_name or inst.interface
    vips = tuple(VipSpec(v.address, v.dev or vip_dev_default) for v in inst.virtual_ipaddress)
    auth = None
    if version == 2 and inst.authentication is not None:
        auth = Auth(1, inst.authentication.auth_pass.encode())
    return InstanceSpec(
        name=inst.name,
        interface=inst.interface,
        vrid=inst.virtual_router_id,
        family=inst.family,
        version=version,
        priority=inst.effective_priority,
        advert_int_cs=inst.advert_int_cs,
        preempt=not inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        accept=inst.effective_accept(config.global_defs),
        rfc9568=rfc9568 if version == 3 else Rfc9568.NONE,
        vmac_name=vmac_name,
        vmac_xmit_base=inst.vmac_xmit_base,
        unicast_src=inst.unicast_src_ip,
        peers=tuple(p.address for p in inst.unicast_peer),
        peer_ttl=tuple(
            (p.address, p.min_ttl or 0, 255 if p.max_ttl is None else p.max_ttl)
            for p in inst.unicast_peer
        ),
        vips=vips,
        auth=auth,
        garp=_garp(inst, config),
        notify_master=_argv(inst.notify_master),
        notify_backup=_argv(inst.notify_backup),
        notify_fault=_argv(inst.notify_fault),
        notify_stop=_argv(inst.notify_stop),
        notify=_argv(inst.notify),
        track_interfaces=tuple(
            TrackSpec(t.name, t.weight, t.reverse) for t in tracked.entries("track_interface")
        ),
        track_bfds=_resolved(tracked.entries("track_bfd"), config.bfd_instance, TrackBfdSpec),
        track_scripts=_resolved(
            tracked.entries("track_script"), config.vrrp_script, TrackScriptSpec
        ),
        track_files=_resolved(
            tracked.entries("track_file"), config.track_file_block, TrackFileSpec
        ),
        track_processes=_resolved(
            tracked.entries("track_process"), config.track_process_block, TrackProcessSpec
        ),
        bfd_takeover=bfd_takeover,
        debug=inst.debug,
        sync_group=group.name if group is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _GroupTrackers:
    """An instance's tracker entries, its group's after its own."""

    inst: VrrpInstance
    group: SyncGroup | None

    def entries(self, keyword: str) -> list[Any]:
        own = list(getattr(self.inst, keyword))
        return own + (list(getattr(self.group, keyword)) if self.group is not None else [])


def build_sync_group(group: SyncGroup) -> SyncGroupSpec:
    """Resolve one ``vrrp_sync_group``."""
    return SyncGroupSpec(
        name=group.name,
        members=tuple(group.group),
        notify_master=_argv(group.notify_master),
        notify_backup=_argv(group.notify_backup),
        notify_fault=_argv(group.notify_fault),
        notify_stop=_argv(group.notify_stop),
        notify=_argv(group.notify),
    )


def build(config: Config, *, rfc9568: Rfc9568 = Rfc9568.NONE) -> DaemonSpec:
    """Resolve a whole configuration; ``rfc9568`` is a command-line override for all."""
    global_mode, by_instance = _rfc9568_modes(config)
    takeovers = [s for s in config.statements("bfd_takeover") if s.instance is not None]
    instances = tuple(
        build_instance(
            inst,
            config,
            rfc9568 | global_mode | by_instance.get(inst.name, Rfc9568.NONE),
            bfd_takeover=any(s.instance == inst.name for s in takeovers),
        )
        for inst in config.instances
    )
    gd = config.global_defs
    rt_priority, rt_statements = _int_setting(config, "vrrp_rt_priority", 1, 99)
    nice, nice_statements = _int_setting(config, "vrrp_priority", -20, 19)
    # The keywords read here are ours: the parser's "unknown keyword" about them is not news.
    read = [
        *config.statements("vrrp_rfc9568", "global_defs"),
        *(s for s in config.statements("rfc9568") if s.instance is not None),
        *takeovers,
        *rt_statements,
        *nice_statements,
    ]
    consumed = {s.warning for s in read if s.warning is not None}
    return DaemonSpec(
        instances=instances,
        bfds=tuple(build_bfd(bfd) for bfd in config.bfd_instances),
        scripts=tuple(build_script(script) for script in config.vrrp_scripts),
        files=tuple(
            FileSpec(f.name, f.file, f.init_value, f.init_overwrite) for f in config.track_files
        ),
        processes=tuple(build_process(p) for p in config.track_processes),
        sync_groups=tuple(build_sync_group(group) for group in config.sync_groups),
        notify_fifo=gd.vrrp_notify_fifo.path if gd.vrrp_notify_fifo else None,
        notify_fifo_script=_argv(gd.vrrp_notify_fifo_script),
        router_id=gd.router_id,
        rt_priority=rt_priority,
        nice=nice,
        warnings=tuple(str(w) for w in config.warnings if w not in consumed),
    )
