"""The keyword tables: for each keepalived keyword, how to read it, what it sets, how to write it.

This is the grammar of the subset, declared as data after keepalived's ``install_keyword()``
tables (vrrp_parser.c): one :class:`Keyword` per spelling, grouped in a :class:`Table` per
block.  :mod:`.parser` walks a block with its table and :mod:`.render` writes a model back
in table order, so adding a keyword means adding its entry here and its field to
:mod:`.model` (with its domain in :mod:`.values`); neither walker changes.

Converters take the statement (:class:`~.lexer.Node`) and return the field's value or raise
:class:`ConfigError` without a location (the parser adds ``FILE:LINE``).  Ranges are not
written here: converters call the domain objects the model validates with.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .bfd import TrackBfd
from .errors import ConfigError
from .files import TrackFile
from .lexer import Node, split_quoted_escaped
from .model import (
    NOTIFY_KEYWORDS,
    Authentication,
    NotifyFifo,
    NotifyScript,
    TrackInterface,
    UnicastPeer,
    VirtualIP,
)
from .processes import TrackProcess
from .scripts import TrackScript
from .values import (
    ADVERT_INT,
    BARE_WORD,
    DEBUG,
    GARP_DELAY,
    GARP_INTERVAL,
    GARP_REFRESH,
    GARP_REPEAT,
    INSTANCE_GARP,
    PREEMPT_DELAY,
    PRIORITY,
    TRACK_WEIGHT,
    TRUE_WORDS,
    TTL,
    VERSION,
    VIP_FLAGS,
    VRID,
    IntRange,
    Milliseconds,
    Seconds,
    check_auth_type,
    check_ifname,
    check_state,
    check_word,
    coerce_interface,
    coerce_ip,
)

__all__ = [
    "AUTHENTICATION",
    "GLOBAL_DEFS",
    "TOP_LEVEL",
    "VRRP_INSTANCE",
    "Keyword",
    "Table",
]

Convert = Callable[[Node], Any]
"""A statement to a field's value (a tuple of values for a keyword setting several)."""
Show = Callable[..., list[str]]
"""A field's value(s) back to the block's lines, keyword included."""


@dataclass(frozen=True)
class Keyword:
    """One keyword: its spelling, converter, the model fields it sets, and how it renders."""

    name: str
    convert: Convert | None
    """Reads the statement; for ``entries`` keywords, each line of its block instead; for a
    ``table`` keyword nothing (the table's ``build`` makes the value)."""
    fields: tuple[str, ...] = ()
    """The model fields it sets; empty for a keyword parsed but not modelled (it is kept
    on the result as a :class:`~.model.Statement`)."""
    show: Show | None = None
    """Renders the fields (called with one argument per field); ``None`` for a spelling that
    is never written (``preempt``, ``no_accept``: the main spelling renders the field)."""
    always: bool = False
    """Render even when the first field is at its default."""
    keep_first: bool = False
    """On a repeat keep the first value (keepalived does so for notify scripts)."""
    entries: bool = False
    """A ``{ }`` block of entries, each converted and appended to the (list) field."""
    what: str = ""
    """What an ``entries`` block holds, for the message when the block is missing."""
    table: "Table | None" = None
    """A ``{ }`` block of keywords of its own (``authentication``)."""


@dataclass(frozen=True)
class Table:
    """The keywords of one kind of block."""

    keywords: tuple[Keyword, ...]
    """In render order."""
    what: str = ""
    """What the block holds, for the message when the block is missing."""
    unsupported: frozenset[str] = frozenset()
    """keepalived keywords of this block that are not modelled: reported as "unsupported"
    rather than "unknown", so a typo is still distinguishable from a real feature."""
    warn_repeats: bool = True
    build: Callable[[dict[str, Any]], Any] | None = None
    """For a nested block: its fields to the value of the keyword that opens it."""
    by_name: Mapping[str, Keyword] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {k.name: k for k in self.keywords})


# --- statement helpers -------------------------------------------------------------------


def no_block(node: Node) -> None:
    """Refuse a ``{ }`` block after a statement that takes none."""
    if node.children is not None:
        raise ConfigError(f"{node.tokens[0]}: expected no '{{ }}' block after it")


def words(node: Node, expected: str, low: int, high: int | None = None) -> list[str]:
    """The words after the keyword, checking there are low..high of them."""
    no_block(node)
    args = node.tokens[1:]
    high = low if high is None else high
    if not low <= len(args) <= high:
        got = "nothing" if not args else repr(" ".join(args))
        raise ConfigError(f"{node.tokens[0]}: expected {expected}, got {got}")
    return args


def renamed(generic: str, actual: str, build: Callable[[], Any]) -> Any:
    """Run a model constructor shared by several keywords, naming ``actual`` in its error."""
    try:
        return build()
    except ConfigError as exc:
        message = exc.message
        if re.match(re.escape(generic) + r"\b", message):
            message = actual + message[len(generic) :]
        raise ConfigError(message) from None


# --- converters --------------------------------------------------------------------------


def one(expected: str, read: Callable[[str, str], Any]) -> Convert:
    """A keyword with exactly one word, read by ``read(keyword, word)``."""
    return lambda node: read(node.tokens[0], words(node, expected, 1)[0])


def number(domain: IntRange, expected: str | None = None) -> Convert:
    """An integer in ``domain``; ``expected`` is what a wrong word count says."""
    return one(expected or domain.expected, domain.from_text)


def seconds(domain: Seconds) -> Convert:
    """A time in ``domain``."""
    return one("seconds", domain.from_text)


def flag(value: bool = True) -> Convert:
    """A keyword on its own, standing for ``value``."""

    def convert(node: Node) -> bool:
        words(node, "no value", 0)
        return value

    return convert


def opt_bool(node: Node) -> bool:
    """``keyword [on|off|true|false|yes|no]``; the bare keyword means on."""
    args = words(node, "nothing or one of on, off, true, false, yes, no", 0, 1)
    if not args:
        return True
    if args[0] not in TRUE_WORDS:
        raise ConfigError(
            f"{node.tokens[0]}: expected one of on, off, true, false, yes, no, got {args[0]!r}"
        )
    return TRUE_WORDS[args[0]]


def script(node: Node) -> NotifyScript:
    """``keyword SCRIPT [user [group]]`` re-read with quotes and escapes, as keepalived does."""
    no_block(node)
    keyword = node.tokens[0]
    try:
        parts = split_quoted_escaped(node.text)
    except ValueError as exc:
        raise ConfigError(f"{keyword}: expected a well-formed quoted command ({exc})") from None
    if not 2 <= len(parts) <= 4:
        raise ConfigError(
            f"{keyword}: expected a script (quote it if it has arguments)"
            " optionally followed by a user and a group"
        )
    command, *owner = parts[1:]
    return renamed("notify", keyword, lambda: NotifyScript(command, *owner))


def use_vmac(node: Node) -> bool | str:
    """``use_vmac [NAME]``: the macvlan's name, or True for keepalived's ``vrrp.VRID``."""
    args = words(node, "nothing or an interface name", 0, 1)
    return check_ifname("use_vmac", args[0]) if args else True


def unicast_src(node: Node) -> tuple[Any, str | None]:
    """``unicast_src_ip IP [dev IFACE]``: the address and the keepalived-1.3 device."""
    args = words(node, "an address optionally followed by 'dev IFACE'", 1, 3)
    address = coerce_ip("unicast_src_ip", args[0])
    if len(args) == 1:
        return address, None
    if len(args) != 3 or args[1] != "dev":
        raise ConfigError(
            "unicast_src_ip: expected an address optionally followed "
            f"by 'dev IFACE', got {' '.join(args)!r}"
        )
    return address, check_ifname("unicast_src_ip dev", args[2])


def peer(node: Node) -> UnicastPeer:
    """A ``unicast_peer`` line: ``IP [dev IFACE] [min_ttl N] [max_ttl N]``."""
    no_block(node)
    address = coerce_ip("unicast_peer", node.tokens[0])
    options: dict[str, Any] = {}
    rest = node.tokens[1:]
    if len(rest) % 2:
        raise ConfigError(
            f"unicast_peer: expected 'dev IFACE', 'min_ttl N' or "
            f"'max_ttl N' after the address, got {' '.join(rest)!r}"
        )
    for opt, val in zip(rest[::2], rest[1::2], strict=True):
        if opt in options or opt not in ("dev", "min_ttl", "max_ttl"):
            raise ConfigError(
                "unicast_peer: expected each of 'dev IFACE', 'min_ttl N', "
                f"'max_ttl N' at most once, got {opt!r}"
            )
        options[opt] = val if opt == "dev" else TTL.from_text(opt, val)
    return UnicastPeer(address, **options)


def vip(keyword: str) -> Convert:
    """A ``virtual_ipaddress[_excluded]`` line: ``ADDR[/PREFIX] [options] [flags]``."""

    def convert(node: Node) -> VirtualIP:
        no_block(node)
        address = coerce_interface(keyword, node.tokens[0])
        options: dict[str, Any] = {}
        flags: list[str] = []
        rest = node.tokens[1:]
        i = 0
        while i < len(rest):
            word = rest[i]
            if word in ("dev", "label", "scope", "brd", "broadcast"):
                key = "brd" if word == "broadcast" else word
                if i + 1 >= len(rest):
                    raise ConfigError(f"{keyword} {word}: expected a value after it")
                if key in options:
                    raise ConfigError(f"{keyword} {word}: expected it at most once")
                options[key] = rest[i + 1]
                i += 2
            elif word in VIP_FLAGS:
                flags.append(word)
                i += 1
            else:
                raise ConfigError(
                    f"{keyword}: expected an option (dev, label, scope, brd, "
                    f"{', '.join(VIP_FLAGS)}) after the address, got {word!r}"
                )
        return renamed(
            "virtual_ipaddress",
            keyword,
            lambda: VirtualIP(address, flags=tuple(flags), **options),
        )

    return convert


def track(node: Node) -> TrackInterface:
    """A ``track_interface`` line: ``IFACE [weight -253..253 [reverse|noreverse]]``."""
    no_block(node)
    name, *rest = node.tokens
    weight: int | None = None
    reverse = False
    if rest:
        if (
            rest[0] != "weight"
            or len(rest) not in (2, 3)
            or (len(rest) == 3 and rest[2] not in ("reverse", "noreverse"))
        ):
            raise ConfigError(
                "track_interface: expected IFACE [weight -253..253 "
                f"[reverse]], got {' '.join(node.tokens)!r}"
            )
        weight = TRACK_WEIGHT.from_text("track_interface weight", rest[1])
        reverse = len(rest) == 3 and rest[2] == "reverse"
    return TrackInterface(name, weight, reverse)


def weight_words(
    keyword: str, args: list[str], usage: str, domain: IntRange = TRACK_WEIGHT
) -> tuple[int, bool | None]:
    """``weight N [reverse|noreverse]`` (``args`` from ``weight``) as (weight, reverse)."""
    if (
        not args
        or args[0] != "weight"
        or len(args) not in (2, 3)
        or (len(args) == 3 and args[2] not in ("reverse", "noreverse"))
    ):
        raise ConfigError(f"{keyword}: expected {usage}, got {' '.join(args) or 'nothing'!r}")
    # A block's own "weight" line names itself; an entry's names its keyword too.
    weight = domain.from_text(keyword if keyword == "weight" else f"{keyword} weight", args[1])
    return weight, None if len(args) == 2 else args[2] == "reverse"


_Weighted = TypeVar("_Weighted", TrackBfd, TrackFile, TrackProcess)


def _weighted_entry(kind: type[_Weighted], node: Node) -> _Weighted:
    """A line ``NAME [weight W [reverse|noreverse]]`` of a ``kind`` entry, W in its range."""
    no_block(node)
    name, *rest = node.tokens
    if not rest:
        return kind(name)
    usage = f"NAME [weight {kind.weights.lo}..{kind.weights.hi} [reverse|noreverse]]"
    weight, reverse = weight_words(kind.keyword, rest, usage, kind.weights)
    return kind(name, weight, reverse)


def track_bfd(node: Node) -> TrackBfd:
    """A ``track_bfd`` line: ``NAME [weight -253..253 [reverse|noreverse]]``."""
    return _weighted_entry(TrackBfd, node)


def track_script(node: Node) -> TrackScript:
    """A ``track_script`` line: ``NAME [weight -253..253 [reverse]]``."""
    no_block(node)
    name, *rest = node.tokens
    if not rest:
        return TrackScript(name)
    weight, reverse = weight_words("track_script", rest, "NAME [weight -253..253 [reverse]]")
    if reverse is False:
        # keepalived's alloc_track_script knows only 'reverse' here.
        raise ConfigError(
            "track_script: expected 'reverse' or nothing after the weight, got 'noreverse'"
        )
    return TrackScript(name, weight, reverse)


def track_file(node: Node) -> TrackFile:
    """A ``track_file`` line: ``NAME [weight -254..254 [reverse|noreverse]]``."""
    return _weighted_entry(TrackFile, node)


def track_process(node: Node) -> TrackProcess:
    """A ``track_process`` line: ``NAME [weight -254..254 [reverse|noreverse]]``."""
    return _weighted_entry(TrackProcess, node)


def milliseconds(domain: Milliseconds) -> Convert:
    """A time the file writes in milliseconds (up to 3 decimals), in ``domain``."""
    return one(domain.expected, domain.from_text)


def build_authentication(values: dict[str, Any]) -> Authentication:
    """The ``authentication`` block's value from its keywords."""
    if "auth_pass" not in values:
        raise ConfigError("authentication: expected an auth_pass")
    return Authentication(values["auth_pass"])


# --- renderers ---------------------------------------------------------------------------


def line(name: str, text: Callable[[Any], str] = str) -> Show:
    """``name VALUE``."""
    return lambda value: [f"{name} {text(value)}"]


def bare(name: str) -> Show:
    """``name`` on its own when the value is true."""
    return lambda value: [name] if value else []


def block(name: str, text: Callable[[Any], str]) -> Show:
    """``name {``, one indented line per entry, ``}``."""
    return lambda values: [f"{name} {{", *(f"    {text(v)}" for v in values), "}"]


def quote_command(command: str) -> str:
    """A notify command as a single keepalived word."""
    # Bare when possible; otherwise double quotes, which keepalived's comment and
    # brace scanners both respect.  Only backslashes need escaping inside them
    # ('"' is refused by NotifyScript).
    if BARE_WORD.fullmatch(command):
        return command
    return '"' + command.replace("\\", "\\\\") + '"'


def script_line(name: str) -> Show:
    """``name COMMAND [user [group]]``."""

    def show(script: NotifyScript) -> list[str]:
        parts = [name, quote_command(script.command)]
        parts += [p for p in (script.user, script.group) if p is not None]
        return [" ".join(parts)]

    return show


def joined(name: str) -> Show:
    """``name A [B [C]]`` from the values that are set."""
    return lambda *values: [" ".join([name, *(str(v) for v in values if v is not None)])]


def vip_line(vip: VirtualIP) -> str:
    """One ``virtual_ipaddress`` entry; a host address is written bare, as keepalived's own
    configs (and the seed's) write it: keepalived reads a bare address as /32 or /128."""
    address = vip.address
    host = address.network.prefixlen == address.max_prefixlen
    parts = [str(address.ip) if host else str(address)]
    for name in ("dev", "label", "scope", "brd"):
        value = getattr(vip, name)
        if value is not None:
            parts += [name, value]
    parts += list(vip.flags)
    return " ".join(parts)


def peer_line(peer: UnicastPeer) -> str:
    """One ``unicast_peer`` entry."""
    parts = [str(peer.address)]
    for name in ("dev", "min_ttl", "max_ttl"):
        value = getattr(peer, name)
        if value is not None:
            parts += [name, str(value)]
    return " ".join(parts)


def weighted_entry_line(track: TrackBfd | TrackFile | TrackProcess) -> str:
    """One ``track_bfd``, ``track_file`` or ``track_process`` entry (each knows
    ``noreverse``)."""
    if track.weight is None:
        return track.name
    words = {None: "", True: " reverse", False: " noreverse"}
    return f"{track.name} weight {track.weight}{words[track.reverse]}"


def track_script_line(track: TrackScript) -> str:
    """One ``track_script`` entry."""
    if track.weight is None:
        return track.name
    return f"{track.name} weight {track.weight}" + (" reverse" if track.reverse else "")


def track_line(track: TrackInterface) -> str:
    """One ``track_interface`` entry."""
    if track.weight is None:
        return track.name
    return f"{track.name} weight {track.weight}" + (" reverse" if track.reverse else "")


def authentication_lines(auth: Authentication) -> list[str]:
    """The ``authentication`` block."""
    return [
        "authentication {",
        f"    auth_type {auth.auth_type}",
        f"    auth_pass {auth.auth_pass}",
        "}",
    ]


# --- the tables --------------------------------------------------------------------------

AUTHENTICATION = Table(
    (
        Keyword("auth_type", one("PASS", lambda _kw, word: check_auth_type(word)), ("auth_type",)),
        Keyword(
            "auth_pass",
            one("a password", lambda _kw, word: Authentication(word).auth_pass),
            ("auth_pass",),
        ),
    ),
    "auth_type and auth_pass",
    # keepalived takes the last of a repeated auth_type/auth_pass without a word.
    warn_repeats=False,
    build=build_authentication,
)
"""``authentication { ... }`` inside a ``vrrp_instance``."""


def _garp(name: str) -> Keyword:
    domain = INSTANCE_GARP[name]
    return Keyword(name, number(domain), (name,), line(name))


def flag_keyword(name: str) -> Keyword:
    return Keyword(name, flag(), (name,), bare(name))


def _entries(name: str, convert: Convert, text: Callable[[Any], str], what: str) -> Keyword:
    return Keyword(name, convert, (name,), block(name, text), entries=True, what=what)


VRRP_INSTANCE = Table(
    (
        Keyword(
            "interface",
            one("an interface name", check_ifname),
            ("interface",),
            line("interface"),
        ),
        Keyword(
            "state",
            one("MASTER or BACKUP", lambda _kw, word: check_state(word)),
            ("state",),
            line("state"),
        ),
        Keyword(
            "virtual_router_id",
            number(VRID),
            ("virtual_router_id",),
            line("virtual_router_id"),
        ),
        Keyword("priority", number(PRIORITY), ("priority",), line("priority")),
        Keyword(
            "advert_int",
            seconds(ADVERT_INT),
            ("advert_int",),
            line("advert_int", ADVERT_INT.format),
            always=True,
        ),
        Keyword("version", number(VERSION), ("version",), line("version")),
        Keyword("debug", number(DEBUG, "a level 0..4"), ("debug",), line("debug")),
        Keyword("nopreempt", flag(True), ("nopreempt",), bare("nopreempt")),
        # keepalived's backwards-compatible spelling of the default.
        Keyword("preempt", flag(False), ("nopreempt",)),
        Keyword(
            "preempt_delay",
            seconds(PREEMPT_DELAY),
            ("preempt_delay",),
            line("preempt_delay", PREEMPT_DELAY.format),
        ),
        Keyword(
            "use_vmac",
            use_vmac,
            ("use_vmac",),
            lambda v: ["use_vmac"] if v is True else [f"use_vmac {v}"],
        ),
        flag_keyword("vmac_xmit_base"),
        flag_keyword("check_unicast_src"),
        flag_keyword("dont_track_primary"),
        Keyword("accept", flag(True), ("accept",), lambda v: ["accept" if v else "no_accept"]),
        Keyword("no_accept", flag(False), ("accept",)),
        *(_garp(name) for name in INSTANCE_GARP),
        Keyword(
            "lower_prio_no_advert",
            opt_bool,
            ("lower_prio_no_advert",),
            lambda v: [f"lower_prio_no_advert {'true' if v else 'false'}"],
        ),
        Keyword(
            "skip_check_adv_addr",
            opt_bool,
            ("skip_check_adv_addr",),
            bare("skip_check_adv_addr"),
        ),
        # Parsed for compatibility, deliberately not modelled.
        Keyword("smtp_alert", lambda node: words(node, "nothing or a boolean", 0, 1)),
        Keyword(
            "authentication",
            None,
            ("authentication",),
            authentication_lines,
            table=AUTHENTICATION,
        ),
        Keyword(
            "unicast_src_ip",
            unicast_src,
            ("unicast_src_ip", "unicast_src_dev"),
            lambda ip, dev: [f"unicast_src_ip {ip}" + (f" dev {dev}" if dev else "")],
        ),
        _entries("unicast_peer", peer, peer_line, "peer addresses"),
        _entries("track_interface", track, track_line, "interface names"),
        _entries("track_bfd", track_bfd, weighted_entry_line, "BFD instance names"),
        _entries("track_script", track_script, track_script_line, "vrrp_script names"),
        _entries("track_file", track_file, weighted_entry_line, "track_file names"),
        _entries("track_process", track_process, weighted_entry_line, "vrrp_track_process names"),
        _entries("virtual_ipaddress", vip("virtual_ipaddress"), vip_line, "addresses"),
        _entries(
            "virtual_ipaddress_excluded", vip("virtual_ipaddress_excluded"), vip_line, "addresses"
        ),
        *(Keyword(n, script, (n,), script_line(n), keep_first=True) for n in NOTIFY_KEYWORDS),
    ),
    "instance settings",
    unsupported=frozenset(
        {
            "mcast_src_ip",
            "mcast_dst_ip",
            "track_src_ip",
            "use_vmac_addr",
            "use_ipvlan",
            "native_ipv6",
            "unicast_ttl",
            "unicast_fault_no_peer",
            "old_unicast_checksum",
            "garp_lower_prio_delay",
            "garp_extra_if",
            "vmac_garp_intvl",
            "down_timer_adverts",
            "higher_prio_send_advert",
            "strict_mode",
            "virtual_routes",
            "virtual_rules",
            "promote_secondaries",
            "notify_master_rx_lower_pri",
            "notify_deleted",
            "notify_priority_changes",
            "kernel_rx_buf_size",
            "linkbeat_use_polling",
            "vrf",
            "lvs_sync_daemon_interface",
        }
    ),
)
"""``vrrp_instance NAME { ... }``."""


def _owner(args: list[str]) -> tuple[str, str | None]:
    for word in args:
        check_word("script_user", word, "a user or group name")
    return args[0], args[1] if len(args) > 1 else None


def _global_count(name: str, domain: IntRange, expected: str) -> Keyword:
    return Keyword(name, number(domain, expected), (name,), line(name))


GLOBAL_DEFS = Table(
    (
        Keyword(
            "router_id",
            one("a router id", lambda kw, word: check_word(kw, word, "a router id")),
            ("router_id",),
            line("router_id"),
        ),
        Keyword(
            "vrrp_notify_fifo",
            lambda node: NotifyFifo(
                *words(node, "a FIFO path optionally followed by a user and a group", 1, 3)
            ),
            ("vrrp_notify_fifo",),
            lambda fifo: joined("vrrp_notify_fifo")(fifo.path, fifo.user, fifo.group),
        ),
        Keyword(
            "vrrp_notify_fifo_script",
            script,
            ("vrrp_notify_fifo_script",),
            script_line("vrrp_notify_fifo_script"),
        ),
        _global_count("vrrp_garp_master_delay", GARP_DELAY, "seconds"),
        _global_count("vrrp_garp_master_repeat", GARP_REPEAT, "a count"),
        _global_count("vrrp_garp_master_refresh", GARP_REFRESH, "seconds"),
        _global_count("vrrp_garp_master_refresh_repeat", GARP_REPEAT, "a count"),
        *(
            Keyword(n, seconds(GARP_INTERVAL), (n,), line(n, GARP_INTERVAL.format))
            for n in ("vrrp_garp_interval", "vrrp_gna_interval")
        ),
        Keyword("vrrp_version", number(VERSION), ("vrrp_version",), line("vrrp_version")),
        *(flag_keyword(n) for n in ("vrrp_strict", "enable_script_security", "dynamic_interfaces")),
        Keyword(
            "script_user",
            lambda node: _owner(
                words(node, "a user name optionally followed by a group name", 1, 2)
            ),
            ("script_user", "script_group"),
            joined("script_user"),
        ),
    ),
    "global settings",
    unsupported=frozenset(
        {
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_helo_name",
            "smtp_connect_timeout",
            "smtp_alert",
            "smtp_alert_vrrp",
            "lvs_id",
            "vrrp_mcast_group4",
            "vrrp_mcast_group6",
            "vrrp_skip_check_adv_addr",
            "vrrp_check_unicast_src",
            "vrrp_iptables",
            "vrrp_ipsets",
            "nftables",
            "nftables_priority",
            "nftables_ifindex",
            "nftables_counters",
            "vrrp_garp_lower_prio_delay",
            "vrrp_garp_lower_prio_repeat",
            "vrrp_lower_prio_no_advert",
            "vrrp_higher_prio_send_advert",
            "vrrp_min_garp",
            "vrrp_garp_extra_if",
            "vrrp_down_timer_adverts",
            "vrrp_priority",
            "vrrp_no_swap",
            "vrrp_rt_priority",
            "vrrp_cpu_affinity",
            "vrrp_rlimit_rttime",
            "vrrp_notify_priority_changes",
            "vrrp_startup_delay",
            "vrrp_rx_bufs_policy",
            "vrrp_rx_bufs_multiplier",
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs",
            "max_auto_priority",
            "notify_fifo",
            "notify_fifo_script",
            "lvs_notify_fifo",
            "lvs_notify_fifo_script",
            "fifo_write_vrrp_states_on_reload",
            "vmac_prefix",
            "vmac_addr_prefix",
            "default_interface",
            "process_names",
            "process_name",
            "vrrp_process_name",
            "enable_traps",
            "enable_dbus",
            "use_pid_dir",
            "linkbeat_use_polling",
            "script_security",
            "instance",
            "net_namespace",
        }
    ),
)
"""``global_defs { ... }`` (its VRRP part)."""


TOP_LEVEL = Table(
    (),
    unsupported=frozenset(
        {
            "track_group",
            "static_ipaddress",
            "static_routes",
            "static_rules",
            "garp_group",
            "linkbeat_interfaces",
            "virtual_server",
            "virtual_server_group",
            "interface_up_down_delays",
            "SSL",
            "net_namespace",
            "instance",
        }
    ),
)
"""The file level, apart from ``global_defs``, ``vrrp_instance`` and the blocks of
:mod:`.tracker_tables` (``bfd_instance``, ``vrrp_script``, ``track_file``, ``vrrp_track_process``,
``vrrp_sync_group``;
see :mod:`.parser`)."""
