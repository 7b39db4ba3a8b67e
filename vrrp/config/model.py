"""The keepalived model: dataclasses for ``global_defs`` and ``vrrp_instance``, and their checks.

Every check of a configuration is here (single fields through :mod:`.values`' domains, and
the cross-field and cross-instance rules of keepalived's vrrp_complete_instance), so a model
built in Python and one parsed from a file are held to the same rules.  The keyword table
(:mod:`.keywords`) converts a file's words with the same domain objects.

At about 845 lines the module is a little over the project's ~800, on purpose: the model and
every rule it is held to are one idea, and split apart a rule could be skipped by one way of
building a model. The tracked blocks and their rules live in :mod:`.bfd`, :mod:`.scripts`,
:mod:`.tracked` and :mod:`.processes`, the sync groups in :mod:`.sync_groups`, the commands in
:mod:`.commands`, the domains in :mod:`.values`.
"""

from collections.abc import Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, Literal

from .bfd import BfdInstance, TrackBfd, check_bfd_instances, track_bfd_problems
from .commands import NotifyScript
from .errors import ConfigError, ConfigWarning, Problem
from .files import TrackedFile, TrackFile, check_tracked_files, track_file_problems
from .processes import (
    TrackedProcess,
    TrackProcess,
    check_tracked_processes,
    track_process_problems,
)
from .scripts import TrackScript, VrrpScript, check_vrrp_scripts, track_script_problems
from .sync_groups import SyncGroup, check_sync_groups
from .tracked import TrackInterface, entries_of
from .values import (
    ADVERT_INT,
    AUTH_PASS_MAX,
    DEBUG,
    GARP_INTERVAL,
    GLOBAL_GARP,
    IFNAMSIZ,
    INSTANCE_GARP,
    PREEMPT_DELAY,
    PRIORITY,
    TTL,
    VERSION,
    VIP_FLAGS,
    VIP_SCOPES,
    VRID,
    VRRP_MAX_VIPS,
    VRRP_PRIO_DFL,
    VRRP_PRIO_OWNER,
    IPAddress,
    IPInterface,
    State,
    check_auth_type,
    check_bool,
    check_ifname,
    check_opt_bool,
    check_opt_ifname,
    check_opt_word,
    check_state,
    check_type,
    check_word,
    coerce_interface,
    coerce_ip,
    fail,
    family_name,
    format_fixed,
)

# --- model -------------------------------------------------------------------


@dataclass
class NotifyFifo:
    """``vrrp_notify_fifo PATH [user [group]]``: a FIFO receiving state changes."""

    path: str
    user: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        check_word("vrrp_notify_fifo", self.path, "a FIFO path")
        check_opt_word("vrrp_notify_fifo", self.user, "a user name")
        check_opt_word("vrrp_notify_fifo", self.group, "a group name")
        if self.group is not None and self.user is None:
            raise fail("vrrp_notify_fifo", "a user before the group", self.group)


@dataclass
class Authentication:
    """``authentication { auth_type PASS; auth_pass SECRET }`` (VRRPv2 only).

    Only simple password authentication is modelled; ``AH`` is refused.
    """

    auth_pass: str
    auth_type: Literal["PASS"] = "PASS"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        check_auth_type(self.auth_type)
        check_word("auth_pass", self.auth_pass, "a password")
        # keepalived truncates longer passwords (and reports a config error).
        if len(self.auth_pass) > AUTH_PASS_MAX:
            raise fail("auth_pass", f"at most {AUTH_PASS_MAX} characters", self.auth_pass)


@dataclass
class UnicastPeer:
    """One ``unicast_peer`` entry: ``IP [dev IFACE] [min_ttl N] [max_ttl N]``.

    ``dev`` is keepalived 1.3 syntax (2.2.7 parses it but warns ``invalid number``);
    ``min_ttl``/``max_ttl`` are 2.x options (setting either enables source checks).
    """

    address: IPAddress
    dev: str | None = None
    min_ttl: int | None = None
    max_ttl: int | None = None

    def __post_init__(self) -> None:
        self.address = coerce_ip("unicast_peer", self.address)
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        coerce_ip("unicast_peer", self.address)
        check_opt_ifname("unicast_peer dev", self.dev)
        TTL.check_opt("min_ttl", self.min_ttl)
        TTL.check_opt("max_ttl", self.max_ttl)
        low = 0 if self.min_ttl is None else self.min_ttl
        high = 255 if self.max_ttl is None else self.max_ttl
        if low > high:
            raise ConfigError(
                f"unicast_peer: expected min_ttl <= max_ttl, got min_ttl {low} > "
                f"max_ttl {high} (every advert would be discarded)"
            )


@dataclass
class VirtualIP:
    """A ``virtual_ipaddress`` entry: ``ADDR[/PREFIX] [dev IFACE] [label L] [scope S] [brd B]``.

    ``address`` keeps the prefix; without one keepalived uses /32 or /128.
    ``brd`` is an IPv4 address, ``"+"`` or ``"-"``; ``label`` and ``scope`` are
    IPv4 only; ``flags`` holds option words such as ``no_track``.
    """

    address: IPInterface
    dev: str | None = None
    label: str | None = None
    scope: str | None = None
    brd: str | None = None
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.address = coerce_interface("virtual_ipaddress", self.address)
        if isinstance(self.brd, IPv4Address):
            self.brd = str(self.brd)
        if not isinstance(self.flags, str):
            # Canonical order, no duplicates, so the rendered text is stable; unknown
            # words are kept (at the end) for validate() to name them.
            given = tuple(self.flags)
            self.flags = tuple(f for f in VIP_FLAGS if f in given) + tuple(
                f for f in given if f not in VIP_FLAGS
            )
        self.validate()

    def validate(self, keyword: str = "virtual_ipaddress") -> None:
        """Check the fields; raise :class:`ConfigError` naming ``keyword`` if invalid."""
        addr = coerce_interface(keyword, self.address)
        check_opt_ifname(f"{keyword} dev", self.dev)
        if self.label is not None:
            check_word(f"{keyword} label", self.label, "a label")
            if len(self.label) >= IFNAMSIZ:
                raise fail(f"{keyword} label", "a label of at most 15 characters", self.label)
        if self.scope is not None and self.scope not in VIP_SCOPES:
            raise fail(f"{keyword} scope", "one of " + ", ".join(VIP_SCOPES), self.scope)
        if self.brd is not None and self.brd not in ("+", "-"):
            try:
                IPv4Address(self.brd)
            except ValueError:
                raise fail(f"{keyword} brd", "an IPv4 address, '+' or '-'", self.brd) from None
        if isinstance(self.flags, str) or any(f not in VIP_FLAGS for f in self.flags):
            raise fail(f"{keyword} option", "one of " + ", ".join(VIP_FLAGS), self.flags)
        if addr.version == 6:
            for name in ("label", "scope", "brd"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{keyword}: {name} is IPv4 only, got {name} on {addr}")
        elif self.brd in ("+", "-") and addr.network.prefixlen > 30:
            raise ConfigError(
                f"{keyword} brd: expected a prefix of /30 or shorter for "
                f"'brd {self.brd}', got {addr}"
            )


@dataclass
class GlobalDefs:
    """The VRRP part of ``global_defs``; defaults are keepalived 2.2.7's.

    ``router_id`` defaults (in keepalived) to the host name.  Timer values are in
    seconds; ``vrrp_garp_interval``/``vrrp_gna_interval`` have microsecond
    resolution.  ``dynamic_interfaces`` lets keepalived accept interfaces that do
    not exist yet (handy when a lab creates them later).
    """

    _: KW_ONLY
    router_id: str | None = None
    vrrp_notify_fifo: NotifyFifo | None = None
    vrrp_notify_fifo_script: NotifyScript | None = None
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_version: int = 2
    vrrp_strict: bool = False
    enable_script_security: bool = False
    script_user: str | None = None
    script_group: str | None = None
    dynamic_interfaces: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.vrrp_notify_fifo, str):
            self.vrrp_notify_fifo = NotifyFifo(self.vrrp_notify_fifo)
        if isinstance(self.vrrp_notify_fifo_script, str):
            self.vrrp_notify_fifo_script = NotifyScript(self.vrrp_notify_fifo_script)
        for name in ("vrrp_garp_interval", "vrrp_gna_interval"):
            value = getattr(self, name)
            if value != 0:
                setattr(self, name, GARP_INTERVAL.seconds(name, value))
            else:
                setattr(self, name, 0.0)
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        check_opt_word("router_id", self.router_id, "a router id")
        if self.vrrp_notify_fifo is not None:
            if not isinstance(self.vrrp_notify_fifo, NotifyFifo):
                raise fail("vrrp_notify_fifo", "a NotifyFifo", self.vrrp_notify_fifo)
            self.vrrp_notify_fifo.validate()
        if self.vrrp_notify_fifo_script is not None:
            if not isinstance(self.vrrp_notify_fifo_script, NotifyScript):
                raise fail(
                    "vrrp_notify_fifo_script", "a NotifyScript", self.vrrp_notify_fifo_script
                )
            self.vrrp_notify_fifo_script.validate("vrrp_notify_fifo_script")
        for name, domain in GLOBAL_GARP.items():
            domain.check(name, getattr(self, name))
        for name in ("vrrp_garp_interval", "vrrp_gna_interval"):
            value = getattr(self, name)
            if value != 0:
                GARP_INTERVAL.ticks(name, value)
        VERSION.check("vrrp_version", self.vrrp_version)
        check_bool("vrrp_strict", self.vrrp_strict)
        check_bool("enable_script_security", self.enable_script_security)
        check_opt_word("script_user", self.script_user, "a user name")
        check_opt_word("script_user", self.script_group, "a group name")
        if self.script_group is not None and self.script_user is None:
            raise fail("script_user", "a user before the group", self.script_group)
        check_bool("dynamic_interfaces", self.dynamic_interfaces)


NOTIFY_KEYWORDS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
"""The notify script fields of a ``vrrp_instance``, in the order they are rendered."""


@dataclass
class VrrpInstance:
    """A ``vrrp_instance NAME { ... }`` block; defaults are keepalived 2.2.7's.

    ``name``, ``interface`` and ``virtual_router_id`` are required (positional);
    everything else is keyword-only.  ``None`` means "not configured" (see the
    ``effective_*`` helpers).  ``advert_int`` is seconds, a whole number of
    centiseconds (:attr:`advert_int_cs`); sub-second values need VRRPv3.
    ``use_vmac`` is ``False``, ``True`` (keepalived names the macvlan, normally
    ``vrrp.VRID``) or the macvlan's name.  ``unicast_src_dev`` records the
    keepalived-1.3 ``unicast_src_ip IP dev IFACE`` spelling.  Strings are
    accepted for addresses, VIPs, peers, tracked interfaces and notify scripts.
    """

    name: str
    interface: str
    virtual_router_id: int
    _: KW_ONLY
    state: State | None = None
    priority: int | None = None
    advert_int: float = 1.0
    version: int | None = None
    nopreempt: bool = False
    preempt_delay: float = 0.0
    use_vmac: bool | str = False
    vmac_xmit_base: bool = False
    check_unicast_src: bool = False
    """Drop unicast adverts from addresses that are not a ``unicast_peer`` (keepalived accepts
    them by default; the bundled daemon always drops them: see docs/vrrp-daemon.md)."""
    unicast_src_ip: IPAddress | None = None
    unicast_src_dev: str | None = None
    unicast_peer: list[UnicastPeer] = field(default_factory=list)
    virtual_ipaddress: list[VirtualIP] = field(default_factory=list)
    virtual_ipaddress_excluded: list[VirtualIP] = field(default_factory=list)
    accept: bool | None = None
    garp_master_delay: int | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: int | None = None
    garp_master_refresh_repeat: int | None = None
    garp_lower_prio_repeat: int | None = None
    lower_prio_no_advert: bool | None = None
    skip_check_adv_addr: bool = False
    dont_track_primary: bool = False
    debug: int = 0
    authentication: Authentication | None = None
    track_interface: list[TrackInterface] = field(default_factory=list)
    track_bfd: list[TrackBfd] = field(default_factory=list)
    track_script: list[TrackScript] = field(default_factory=list)
    track_file: list[TrackFile] = field(default_factory=list)
    track_process: list[TrackProcess] = field(default_factory=list)
    notify_master: NotifyScript | None = None
    notify_backup: NotifyScript | None = None
    notify_fault: NotifyScript | None = None
    notify_stop: NotifyScript | None = None
    notify: NotifyScript | None = None

    def __post_init__(self) -> None:
        self.advert_int = ADVERT_INT.seconds("advert_int", self.advert_int)
        if self.preempt_delay != 0:
            self.preempt_delay = PREEMPT_DELAY.seconds("preempt_delay", self.preempt_delay)
        else:
            self.preempt_delay = 0.0
        if self.unicast_src_ip is not None:
            self.unicast_src_ip = coerce_ip("unicast_src_ip", self.unicast_src_ip)
        if isinstance(self.authentication, str):
            self.authentication = Authentication(self.authentication)
        self.unicast_peer = [
            p if isinstance(p, UnicastPeer) else UnicastPeer(p) for p in _as_list(self.unicast_peer)
        ]
        self.virtual_ipaddress = [_coerce_vip(v) for v in _as_list(self.virtual_ipaddress)]
        self.virtual_ipaddress_excluded = [
            _coerce_vip(v) for v in _as_list(self.virtual_ipaddress_excluded)
        ]
        self.track_interface = entries_of(self.track_interface, TrackInterface)
        self.track_script = entries_of(self.track_script, TrackScript)
        self.track_file = entries_of(self.track_file, TrackFile)
        self.track_bfd = entries_of(self.track_bfd, TrackBfd)
        self.track_process = entries_of(self.track_process, TrackProcess)
        for keyword in NOTIFY_KEYWORDS:
            value = getattr(self, keyword)
            if isinstance(value, str):
                setattr(self, keyword, NotifyScript(value))
        self.validate()

    # -- checks ---------------------------------------------------------------

    def validate(self) -> None:
        """Check each field on its own; raise :class:`ConfigError` if one is invalid.

        Checks that need ``global_defs`` or combine fields (address families,
        VRRP version, state/preempt conflicts) are in :meth:`Config.validate`.
        """
        check_word("vrrp_instance", self.name, "an instance name")
        check_ifname("interface", self.interface)
        VRID.check("virtual_router_id", self.virtual_router_id)
        check_state(self.state)
        PRIORITY.check_opt("priority", self.priority)
        ADVERT_INT.ticks("advert_int", self.advert_int)
        VERSION.check_opt("version", self.version)
        check_bool("nopreempt", self.nopreempt)
        PREEMPT_DELAY.ticks("preempt_delay", self.preempt_delay)
        if not isinstance(self.use_vmac, bool):
            check_ifname("use_vmac", self.use_vmac)
        check_bool("vmac_xmit_base", self.vmac_xmit_base)
        check_bool("check_unicast_src", self.check_unicast_src)
        if self.unicast_src_ip is not None:
            coerce_ip("unicast_src_ip", self.unicast_src_ip)
        check_opt_ifname("unicast_src_ip dev", self.unicast_src_dev)
        if self.unicast_src_dev is not None and self.unicast_src_ip is None:
            raise fail("unicast_src_ip", "an address for 'dev'", self.unicast_src_dev)
        for peer in self.unicast_peer:
            check_type("unicast_peer", peer, UnicastPeer).validate()
        for vip in self.virtual_ipaddress:
            check_type("virtual_ipaddress", vip, VirtualIP).validate("virtual_ipaddress")
        for vip in self.virtual_ipaddress_excluded:
            check_type("virtual_ipaddress_excluded", vip, VirtualIP).validate(
                "virtual_ipaddress_excluded"
            )
        check_opt_bool("accept", self.accept)
        for name, domain in INSTANCE_GARP.items():
            domain.check_opt(name, getattr(self, name))
        check_opt_bool("lower_prio_no_advert", self.lower_prio_no_advert)
        check_bool("skip_check_adv_addr", self.skip_check_adv_addr)
        check_bool("dont_track_primary", self.dont_track_primary)
        DEBUG.check("debug", self.debug)
        if self.authentication is not None:
            check_type("authentication", self.authentication, Authentication).validate()
        for track in self.track_interface:
            check_type("track_interface", track, TrackInterface).validate()
        for tracked in self.track_bfd:
            check_type("track_bfd", tracked, TrackBfd).validate()
        for script in self.track_script:
            check_type("track_script", script, TrackScript).validate()
        for tracked in self.track_file:
            check_type("track_file", tracked, TrackFile).validate()
        for process in self.track_process:
            check_type("track_process", process, TrackProcess).validate()
        for keyword in NOTIFY_KEYWORDS:
            script = getattr(self, keyword)
            if script is not None:
                check_type(keyword, script, NotifyScript).validate(keyword)

    def cautions(self, global_defs: GlobalDefs | None = None) -> list[str]:
        """What keepalived would accept in this instance but warn about, one message each."""
        _, warnings = instance_problems(self, global_defs or GlobalDefs())
        return [w.message for w in warnings]

    # -- derived values ---------------------------------------------------------

    @property
    def advert_int_cs(self) -> int:
        """``advert_int`` in centiseconds, the unit of the VRRPv3 header."""
        return round(self.advert_int * 100)

    @property
    def family(self) -> int:
        """4 or 6: the address family of the instance (keepalived defaults to IPv4)."""
        for addr in self._family_sources():
            return addr.version
        return 4

    def _family_sources(self) -> Iterator[IPAddress | IPInterface]:
        yield from (vip.address for vip in self.virtual_ipaddress)
        if self.unicast_src_ip is not None:
            yield self.unicast_src_ip
        yield from (peer.address for peer in self.unicast_peer)

    @property
    def is_unicast(self) -> bool:
        """Whether adverts go to ``unicast_peer`` addresses instead of the multicast group."""
        return bool(self.unicast_peer)

    @property
    def effective_priority(self) -> int:
        """The configured priority, or keepalived's: 255 for state MASTER, else 100."""
        if self.priority is not None:
            return self.priority
        return VRRP_PRIO_OWNER if self.state == "MASTER" else VRRP_PRIO_DFL

    @property
    def effective_state(self) -> State:
        """The configured state, or keepalived's: MASTER for priority 255, else BACKUP."""
        if self.state is not None:
            return self.state
        return "MASTER" if self.priority == VRRP_PRIO_OWNER else "BACKUP"

    @property
    def vmac_interface(self) -> str | None:
        """The macvlan's name if ``use_vmac`` is on (keepalived's default is ``vrrp.VRID``)."""
        if self.use_vmac is False:
            return None
        if self.use_vmac is True:
            return f"vrrp.{self.virtual_router_id}"
        return self.use_vmac

    def effective_version(self, global_defs: GlobalDefs | None = None) -> int:
        """The VRRP version keepalived runs: ``version``, else 3 for IPv6, else ``vrrp_version``."""
        if self.version is not None:
            return self.version
        if self.family == 6:
            return 3
        return (global_defs or GlobalDefs()).vrrp_version

    def effective_garp_lower_prio_repeat(self, global_defs: GlobalDefs | None = None) -> int:
        """GARPs / NAs per VIP a master sends when it hears a losing advert: configured, else
        the global ``vrrp_garp_master_repeat`` (keepalived 2.2.7's default, vrrp.c), and none
        in strict mode."""
        gd = global_defs or GlobalDefs()
        if gd.vrrp_strict:
            return 0
        if self.garp_lower_prio_repeat is not None:
            return self.garp_lower_prio_repeat
        return gd.vrrp_garp_master_repeat

    def effective_accept(self, global_defs: GlobalDefs | None = None) -> bool:
        """Accept mode: configured, else on unless strict mode (where only the owner accepts)."""
        if self.accept is not None:
            return self.accept
        strict = (global_defs or GlobalDefs()).vrrp_strict
        return self.effective_priority == VRRP_PRIO_OWNER or not strict

    def effective_garp(self, global_defs: GlobalDefs | None = None) -> dict[str, int]:
        """The four ``garp_master_*`` values in force, falling back to ``global_defs``."""
        gd = global_defs or GlobalDefs()
        names = (
            "garp_master_delay",
            "garp_master_repeat",
            "garp_master_refresh",
            "garp_master_refresh_repeat",
        )
        return {
            n: v if (v := getattr(self, n)) is not None else getattr(gd, f"vrrp_{n}") for n in names
        }


def _as_list(value: object) -> list[Any]:
    """A list from a list/tuple/iterable, or a one-item list from a single value
    (so ``virtual_ipaddress="10.0.0.1/24"`` does not iterate over characters)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _coerce_vip(value: object) -> VirtualIP:
    if isinstance(value, VirtualIP):
        return value
    if isinstance(value, str | IPv4Interface | IPv6Interface | IPv4Address | IPv6Address):
        return VirtualIP(coerce_interface("virtual_ipaddress", value))
    raise fail("virtual_ipaddress", "a VirtualIP or an address string", value)


def instance_problems(inst: VrrpInstance, gd: GlobalDefs) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings that need several fields or ``global_defs`` (keepalived's
    vrrp_complete_instance), in a stable order."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    # One address family per instance.  keepalived takes the family from the
    # first address it sees; the VIPs are what the instance is about, so they
    # decide here, then the source address, then the peers.
    family = inst.family
    fam = family_name(family)
    for i, vip in enumerate(inst.virtual_ipaddress):
        if vip.address.version != family:
            errors.append(
                Problem(
                    f"virtual_ipaddress: expected {fam} addresses like the rest of the "
                    f"instance, got {vip.address} (an instance is one address family; put "
                    f"{family_name(vip.address.version)} VIPs in their own vrrp_instance or in "
                    "virtual_ipaddress_excluded)",
                    ("virtual_ipaddress", i),
                )
            )
    if inst.unicast_src_ip is not None and inst.unicast_src_ip.version != family:
        errors.append(
            Problem(
                f"unicast_src_ip: expected an {fam} address like the instance's "
                f"VIPs, got {inst.unicast_src_ip}",
                "unicast_src_ip",
            )
        )
    for i, peer in enumerate(inst.unicast_peer):
        if peer.address.version != family:
            errors.append(
                Problem(
                    f"unicast_peer: expected an {fam} address like the rest of "
                    f"the instance, got {peer.address}",
                    ("unicast_peer", i),
                )
            )

    version = inst.effective_version(gd)
    if family == 6 and inst.version == 2:
        errors.append(
            Problem(
                "version: expected 3 for an IPv6 instance (VRRPv2 is IPv4 only), got 2", "version"
            )
        )
    cs = inst.advert_int_cs
    if version == 2 and cs % 100:
        errors.append(
            Problem(
                f"advert_int: expected whole seconds for VRRPv2, got {format_fixed(cs, 100)} "
                "(a sub-second interval needs version 3)",
                "advert_int",
            )
        )
    if version == 3 and cs > 4095:
        errors.append(
            Problem(
                f"advert_int: expected at most 40.95 s for VRRPv3, got {format_fixed(cs, 100)}",
                "advert_int",
            )
        )
    if inst.authentication is not None and version == 3:
        errors.append(
            Problem(
                "authentication: expected no authentication block with VRRPv3 "
                "(RFC 5798 removed it)",
                "authentication",
            )
        )
    if not inst.virtual_ipaddress:
        if version == 3:
            errors.append(
                Problem(
                    "virtual_ipaddress: expected at least one VIP for VRRPv3", "virtual_ipaddress"
                )
            )
        else:
            warnings.append(
                Problem(
                    "virtual_ipaddress: no VIP specified; at least one is sensible",
                    "virtual_ipaddress",
                )
            )
    if len(inst.virtual_ipaddress) > VRRP_MAX_VIPS:
        errors.append(
            Problem(
                f"virtual_ipaddress: expected at most {VRRP_MAX_VIPS} VIPs, got "
                f"{len(inst.virtual_ipaddress)} (use "
                "virtual_ipaddress_excluded for the rest)",
                "virtual_ipaddress",
            )
        )

    if inst.vmac_xmit_base and inst.use_vmac is False:
        errors.append(
            Problem(
                "vmac_xmit_base: expected use_vmac as well (it needs use_vmac: it only "
                "applies to a VMAC)",
                "vmac_xmit_base",
            )
        )
    if inst.use_vmac is not False and inst.is_unicast and not inst.vmac_xmit_base:
        errors.append(
            Problem("use_vmac: expected vmac_xmit_base as well when using unicast_peer", "use_vmac")
        )
    if inst.nopreempt:
        if inst.effective_priority == VRRP_PRIO_OWNER:
            errors.append(
                Problem(
                    "nopreempt: expected a priority below 255 (the address owner always preempts)",
                    "nopreempt",
                )
            )
        elif inst.effective_state == "MASTER":
            errors.append(
                Problem(
                    "nopreempt: expected state BACKUP (nopreempt does not work "
                    "with initial state MASTER)",
                    "nopreempt",
                )
            )
    if inst.preempt_delay:
        if inst.effective_state == "MASTER":
            errors.append(
                Problem(
                    "preempt_delay: expected state BACKUP (a preempt delay does "
                    "not work with initial state MASTER)",
                    "preempt_delay",
                )
            )
        elif inst.nopreempt:
            errors.append(
                Problem(
                    "preempt_delay: expected no nopreempt (they are incompatible)", "preempt_delay"
                )
            )
    for i, track in enumerate(inst.track_interface):
        if track.name == inst.interface:
            errors.append(
                Problem(
                    f"track_interface: expected an interface other than the "
                    f"instance's own ({track.name}, tracked already)",
                    ("track_interface", i),
                )
            )
        elif track.weight and inst.effective_priority == VRRP_PRIO_OWNER:
            # The owner's priority is fixed at 255, so keepalived drops weighted tracking.
            errors.append(
                Problem(
                    f"track_interface: expected no weight on {track.name} for the "
                    "address owner (priority 255 cannot be adjusted)",
                    ("track_interface", i),
                )
            )
    return errors, warnings


def same_vrid_problem(a: VrrpInstance, b: VrrpInstance) -> str | None:
    """keepalived refuses two instances sharing VRID, interface and family, unless
    they use unicast with disjoint peers (or one is unicast, one multicast)."""
    if (a.virtual_router_id, a.interface, a.family) != (b.virtual_router_id, b.interface, b.family):
        return None
    if a.is_unicast != b.is_unicast:
        return None
    if a.is_unicast and not (
        {p.address for p in a.unicast_peer} & {p.address for p in b.unicast_peer}
    ):
        return None
    return (
        f"virtual_router_id: expected a VRID not used by vrrp_instance {a.name} "
        f"({family_name(a.family)} on {a.interface}), got {b.virtual_router_id}"
    )


TOP = "top"
"""The scope of a statement outside every block."""


@dataclass(frozen=True)
class Statement:
    """A statement the parser read but does not model, kept with where it was.

    keepalived keywords outside the modelled subset, unknown keywords, and keywords that
    only the bundled daemon reads (``vrrp_rfc9568``, ``vrrp_priority``, ...) end up here, so
    that nothing needs to read the file a second time.
    """

    keyword: str
    args: tuple[str, ...]
    """The words after the keyword, unquoted as keepalived's tokeniser does."""
    filename: str
    """The file it was read from (an ``include``d file, if so), or ``"<string>"`` for text."""
    line: int
    scope: str
    """Where it is: :data:`TOP`, ``"global_defs"``, ``"vrrp_instance NAME"``, and for a
    statement inside a nested block the enclosing scopes joined by ``/``, e.g.
    ``"vrrp_instance vi_1/authentication"``."""
    block: tuple["Statement", ...] | None = None
    """The statements of its ``{ }`` block, if it has one (scoped under this statement)."""
    warning: ConfigWarning | None = field(default=None, compare=False)
    """What the parser said about it (``None`` for keywords accepted silently)."""

    @property
    def instance(self) -> str | None:
        """The name of the ``vrrp_instance`` it is directly in, else ``None``."""
        kind, _, name = self.scope.partition(" ")
        return name if kind == "vrrp_instance" and "/" not in name else None


@dataclass
class Config:
    """A parsed or hand-built configuration: ``global_defs``, BFD instances, VRRP scripts,
    tracked files and processes, VRRP instances and sync groups.

    ``warnings`` (not part of equality) lists what the parser complained about;
    ``unused`` (not part of equality, not rendered) the statements it did not model.
    """

    _: KW_ONLY
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    instances: list[VrrpInstance] = field(default_factory=list)
    bfd_instances: list[BfdInstance] = field(default_factory=list)
    vrrp_scripts: list[VrrpScript] = field(default_factory=list)
    track_files: list[TrackedFile] = field(default_factory=list)
    track_processes: list[TrackedProcess] = field(default_factory=list)
    sync_groups: list[SyncGroup] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list, compare=False)
    unused: list[Statement] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        self.instances = list(self.instances)
        self.bfd_instances = list(self.bfd_instances)
        self.vrrp_scripts = list(self.vrrp_scripts)
        self.track_files = list(self.track_files)
        self.track_processes = list(self.track_processes)
        self.sync_groups = list(self.sync_groups)
        self.validate()

    def validate(self) -> None:
        """Check the whole configuration; raise :class:`ConfigError` on the first problem."""
        check_type("global_defs", self.global_defs, GlobalDefs).validate()
        bfds = check_bfd_instances(self.bfd_instances)
        scripts = check_vrrp_scripts(self.vrrp_scripts)
        files = check_tracked_files(self.track_files)
        processes = check_tracked_processes(self.track_processes)
        seen: dict[str, VrrpInstance] = {}
        for inst in self.instances:
            check_type("vrrp_instance", inst, VrrpInstance).validate()
            if inst.name in seen:
                raise ConfigError(f"vrrp_instance: expected a unique name, got {inst.name!r} twice")
            errors, _ = instance_problems(inst, self.global_defs)
            errors += track_bfd_problems(inst.track_bfd, inst.effective_priority, bfds)
            errors += track_script_problems(inst.track_script, inst.effective_priority, scripts)
            errors += track_file_problems(inst.track_file, inst.effective_priority, files)
            errors += track_process_problems(inst.track_process, inst.effective_priority, processes)
            if errors:
                raise ConfigError(f"vrrp_instance {inst.name}: {errors[0].message}")
            for other in seen.values():
                problem = same_vrid_problem(other, inst)
                if problem:
                    raise ConfigError(f"vrrp_instance {inst.name}: {problem}")
            seen[inst.name] = inst
        check_sync_groups(self.sync_groups, seen, scripts, files, bfds, processes)

    def bfd_instance(self, name: str) -> BfdInstance:
        """The ``bfd_instance`` called ``name`` (``KeyError`` if there is none)."""
        for bfd in self.bfd_instances:
            if bfd.name == name:
                return bfd
        raise KeyError(name)

    def vrrp_script(self, name: str) -> VrrpScript:
        """The ``vrrp_script`` called ``name`` (``KeyError`` if there is none)."""
        for script in self.vrrp_scripts:
            if script.name == name:
                return script
        raise KeyError(name)

    def track_file_block(self, name: str) -> TrackedFile:
        """The ``track_file`` block called ``name`` (``KeyError`` if there is none)."""
        for tracked in self.track_files:
            if tracked.name == name:
                return tracked
        raise KeyError(name)

    def track_process_block(self, name: str) -> TrackedProcess:
        """The ``vrrp_track_process`` block called ``name`` (``KeyError`` if there is none)."""
        for process in self.track_processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def sync_group_of(self, name: str) -> SyncGroup | None:
        """The ``vrrp_sync_group`` instance ``name`` is a member of, or None."""
        return next((g for g in self.sync_groups if name in g.group), None)

    def instance(self, name: str) -> VrrpInstance:
        """The instance called ``name`` (``KeyError`` if there is none)."""
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def statements(self, keyword: str, scope: str | None = None) -> list[Statement]:
        """The unused statements called ``keyword`` (in ``scope`` if given), in file order."""
        return [
            s for s in self.unused if s.keyword == keyword and (scope is None or s.scope == scope)
        ]
