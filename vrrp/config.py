"""keepalived.conf parser and renderer for the VRRP subset used by the lab.

The reference is keepalived 2.2.7.  The module reads and writes the part of
``keepalived.conf`` that concerns VRRP: ``global_defs`` (VRRP-related keys) and
``vrrp_instance`` blocks, with ``include``, comments and keepalived's rules for
braces and quoting.

Three entry points:

* :func:`parse` / :func:`load` turn text or a file into a :class:`Config`.
  Invalid values raise :class:`ConfigError` whose ``str`` is
  ``FILE:LINE: keyword: what was expected``; unknown keywords are collected as
  :class:`ConfigWarning` in ``Config.warnings`` (keepalived also carries on).
* :func:`render` turns a :class:`Config` back into text that this parser and
  keepalived 2.2.7 (``keepalived -t``) both accept, with
  ``parse(render(c)) == c``.
* The dataclasses themselves are meant to be built by hand, e.g.
  ``VrrpInstance("vi_1", "eth0", 51, priority=150, virtual_ipaddress=["10.0.0.10/24"])``;
  strings are accepted wherever an address or a sub-object is expected and are
  converted on construction.

Field names are the keepalived keywords, so the model reads like the file.  A
field left at ``None`` means "not configured": keepalived then derives the value
(from ``global_defs``, the state, the priority, ...), and the ``effective_*``
helpers compute what keepalived would use.

Deliberate differences from keepalived, all on the strict side because this
model drives a conformance lab and must not silently disagree with the daemon:

* Anything keepalived reports as a configuration error and then "fixes" (e.g.
  priority 300 -> 100, fractional VRRPv2 ``advert_int`` -> rounded, ``nopreempt``
  with state MASTER -> cleared) is a :class:`ConfigError` here.
* ``advert_int`` must be a whole number of centiseconds (the VRRPv3 wire unit).
* ``interface`` is required (keepalived lets unicast instances omit it), and
  extra words after a keyword's value are an error (keepalived ignores them),
  except the keepalived-1.3 ``dev IFACE`` after ``unicast_src_ip`` and peers,
  which is recorded.  Note that keepalived 2.2.7 warns ``invalid number`` about
  a peer's ``dev`` (it reads the peer options as ``name value`` pairs) but runs.
* A missing ``include`` file is an error (keepalived only logs it).
* The ``{ }`` block of an unknown keyword is skipped as a whole (keepalived
  would try to interpret its contents at the current level).
* Only the ``include`` form of the include directives is supported, and neither
  ``$DEFINITIONS``, ``@conditionals`` nor ``~SEQ``.
"""

import glob
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_interface,
)
from pathlib import Path
from typing import Any, Literal, TypeAlias

__all__ = [
    "Authentication",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "GlobalDefs",
    "IPAddress",
    "IPInterface",
    "NotifyFifo",
    "NotifyScript",
    "State",
    "TrackInterface",
    "UnicastPeer",
    "VirtualIP",
    "VrrpInstance",
    "load",
    "parse",
    "render",
]

IPAddress: TypeAlias = IPv4Address | IPv6Address
"""An IPv4 or IPv6 address."""

IPInterface: TypeAlias = IPv4Interface | IPv6Interface
"""An address with its prefix length, as configured on an interface."""

State: TypeAlias = Literal["MASTER", "BACKUP"]
"""The initial state of a VRRP instance."""

# --- keepalived constants (keepalived/include/vrrp.h, lib/timer.h) -----------

VRRP_PRIO_OWNER = 255
"""Priority of the address owner; keepalived's default priority for state MASTER."""
VRRP_PRIO_DFL = 100
"""keepalived's default priority when the state is BACKUP or unset."""
VRRP_MAX_VIPS = 255
"""The count field of a VRRP advertisement is 8 bits wide."""
_TIMER_MAX_SEC = 1000  # upper bound of preempt_delay
_UINT_MAX = 2**32 - 1
_INT_MAX = 2**31 - 1
_IFNAMSIZ = 16  # so interface names are at most 15 characters
_AUTH_PASS_MAX = 8  # VRRPv2 simple password field
_VIP_SCOPES = ("global", "site", "link", "host", "nowhere")
# Flag words accepted after an address (keepalived's alloc_ipaddress), in the
# order they are rendered; a canonical order keeps parse(render(x)) == x.
_VIP_FLAGS = ("home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "use_vmac")
_TRUE_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}

# A "bare word" can be written unquoted and survives keepalived's tokeniser
# unchanged: no whitespace, quotes, comment starters, braces or escapes.
_BARE_WORD = re.compile(r"""[^\s"'#!{}\\]+""")
_UINT = re.compile(r"[0-9]+")
_INT = re.compile(r"[-+]?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


class ConfigError(ValueError):
    """An invalid configuration.

    ``str(err)`` is ``FILE:LINE: message`` when the error comes from a file (the
    message names the keyword and what it expects), or just the message when it
    comes from a model built in Python.
    """

    def __init__(self, message: str, filename: str | None = None, line: int | None = None):
        self.message = message
        self.filename = filename
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        """``FILE:LINE: message``, ``FILE: message`` or ``message``."""
        if self.filename is not None and self.line is not None:
            return f"{self.filename}:{self.line}: {self.message}"
        if self.filename is not None:
            return f"{self.filename}: {self.message}"
        return self.message


@dataclass(frozen=True)
class ConfigWarning:
    """Something keepalived would accept but complain about (e.g. an unknown keyword).

    ``str(w)`` is ``FILE:LINE: message``.
    """

    message: str
    filename: str
    line: int

    def __str__(self) -> str:
        """``FILE:LINE: message``."""
        return f"{self.filename}:{self.line}: {self.message}"


# --- value checks shared by the model and the parser ------------------------
#
# Each check raises ConfigError with a message of the form
# "keyword: expected ..., got ...".  The parser re-raises it with FILE:LINE.


def _fail(keyword: str, expected: str, got: object = None) -> ConfigError:
    suffix = "" if got is None else f", got {got!r}"
    return ConfigError(f"{keyword}: expected {expected}{suffix}")


def _check_int(keyword: str, value: object, lo: int, hi: int) -> int:
    # bool is an int subclass; True as a priority is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(keyword, f"an integer {lo}..{hi}", value)
    return value


def _check_opt_int(keyword: str, value: object, lo: int, hi: int) -> int | None:
    return None if value is None else _check_int(keyword, value, lo, hi)


def _check_bool(keyword: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(keyword, "True or False", value)
    return value


def _check_opt_bool(keyword: str, value: object) -> bool | None:
    return None if value is None else _check_bool(keyword, value)


def _check_word(keyword: str, value: object, what: str = "a single word") -> str:
    if not isinstance(value, str) or not _BARE_WORD.fullmatch(value):
        raise _fail(keyword, f"{what} (no spaces, quotes, '#', '!', braces or backslashes)", value)
    return value


def _check_opt_word(keyword: str, value: object, what: str = "a single word") -> str | None:
    return None if value is None else _check_word(keyword, value, what)


def _check_ifname(keyword: str, value: object) -> str:
    # The kernel's dev_name_valid(): 1..15 chars, no '/', ':' or whitespace.
    name = _check_word(keyword, value, "an interface name")
    if len(name) >= _IFNAMSIZ or "/" in name or ":" in name or name in (".", ".."):
        raise _fail(keyword, "an interface name of 1..15 characters without '/' or ':'", value)
    return name


def _check_opt_ifname(keyword: str, value: object) -> str | None:
    return None if value is None else _check_ifname(keyword, value)


def _fixed_point(keyword: str, value: object, scale: int, lo: int, hi: int, unit: str) -> int:
    """Return ``value`` (seconds) as an integer count of 1/scale seconds, range-checked.

    Floats are accepted if they are within float noise of an exact multiple, so
    ``advert_int=0.1 * 3`` works; anything finer is refused rather than rounded
    because keepalived would silently round it differently.
    """
    expected = f"seconds {_format_fixed(lo, scale)}..{_format_fixed(hi, scale)} in steps of {unit}"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _fail(keyword, expected, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(keyword, expected, value)
    # repr() gives the shortest decimal that round-trips, i.e. what the user typed.
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    scaled = exact * scale
    ticks = int(scaled.to_integral_value())
    if abs(scaled - ticks) > Decimal("1e-6") or not lo <= ticks <= hi:
        raise _fail(keyword, expected, value)
    return ticks


def _format_fixed(ticks: int, scale: int) -> str:
    """Render ``ticks / scale`` seconds as the shortest exact decimal ("0.05", "1")."""
    text = format(Decimal(ticks) / Decimal(scale), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _coerce_ip(keyword: str, value: object) -> IPAddress:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str) and "%" not in value:
        try:
            return ip_address(value)
        except ValueError:
            pass
    raise _fail(keyword, "an IPv4 or IPv6 address", value)


def _family_name(version: int) -> str:
    return f"IPv{version}"


# --- model -------------------------------------------------------------------


@dataclass
class NotifyScript:
    """A notify script: ``notify_master "/path/script arg1 'arg 2'" [user [group]]``.

    ``command`` is the script with its arguments as one string (keepalived splits
    it shell-like, honouring quotes and backslash escapes; see :attr:`argv`).
    """

    command: str
    user: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, keyword: str = "notify") -> None:
        """Check the fields; raise :class:`ConfigError` naming ``keyword`` if invalid."""
        if not isinstance(self.command, str) or not self.command.strip():
            raise _fail(keyword, "a script path (with arguments in quotes)", self.command)
        # A '"' cannot be written inside keepalived's double-quoted strings (the
        # brace scanner does not honour escapes), and control characters would
        # not survive a round trip through the file.
        if '"' in self.command or any(ord(c) < 32 or ord(c) == 127 for c in self.command):
            raise _fail(keyword, "a command without '\"' or control characters", self.command)
        try:
            argv = _split_quoted_escaped(self.command)
        except ValueError as exc:
            raise _fail(keyword, f"a well-formed command ({exc})", self.command) from None
        if not argv:
            raise _fail(keyword, "a script path", self.command)
        _check_opt_word(keyword, self.user, "a user name")
        _check_opt_word(keyword, self.group, "a group name")
        if self.group is not None and self.user is None:
            raise _fail(keyword, "a user before the group", self.group)

    @property
    def argv(self) -> list[str]:
        """The argument vector keepalived will execute (before it appends its own)."""
        return _split_quoted_escaped(self.command)


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
        _check_word("vrrp_notify_fifo", self.path, "a FIFO path")
        _check_opt_word("vrrp_notify_fifo", self.user, "a user name")
        _check_opt_word("vrrp_notify_fifo", self.group, "a group name")
        if self.group is not None and self.user is None:
            raise _fail("vrrp_notify_fifo", "a user before the group", self.group)


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
        if self.auth_type != "PASS":
            raise _fail(
                "auth_type", "PASS (IPsec AH authentication is not supported)", self.auth_type
            )
        _check_word("auth_pass", self.auth_pass, "a password")
        # keepalived truncates longer passwords (and reports a config error).
        if len(self.auth_pass) > _AUTH_PASS_MAX:
            raise _fail("auth_pass", f"at most {_AUTH_PASS_MAX} characters", self.auth_pass)


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
        self.address = _coerce_ip("unicast_peer", self.address)
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        _coerce_ip("unicast_peer", self.address)
        _check_opt_ifname("unicast_peer dev", self.dev)
        _check_opt_int("min_ttl", self.min_ttl, 0, 255)
        _check_opt_int("max_ttl", self.max_ttl, 0, 255)
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
        self.address = _coerce_interface("virtual_ipaddress", self.address)
        if isinstance(self.brd, IPv4Address):
            self.brd = str(self.brd)
        if not isinstance(self.flags, str):
            # Canonical order, no duplicates, so the rendered text is stable; unknown
            # words are kept (at the end) for validate() to name them.
            given = tuple(self.flags)
            self.flags = tuple(f for f in _VIP_FLAGS if f in given) + tuple(
                f for f in given if f not in _VIP_FLAGS
            )
        self.validate()

    def validate(self, keyword: str = "virtual_ipaddress") -> None:
        """Check the fields; raise :class:`ConfigError` naming ``keyword`` if invalid."""
        addr = _coerce_interface(keyword, self.address)
        _check_opt_ifname(f"{keyword} dev", self.dev)
        if self.label is not None:
            _check_word(f"{keyword} label", self.label, "a label")
            if len(self.label) >= _IFNAMSIZ:
                raise _fail(f"{keyword} label", "a label of at most 15 characters", self.label)
        if self.scope is not None and self.scope not in _VIP_SCOPES:
            raise _fail(f"{keyword} scope", "one of " + ", ".join(_VIP_SCOPES), self.scope)
        if self.brd is not None and self.brd not in ("+", "-"):
            try:
                IPv4Address(self.brd)
            except ValueError:
                raise _fail(f"{keyword} brd", "an IPv4 address, '+' or '-'", self.brd) from None
        if isinstance(self.flags, str) or any(f not in _VIP_FLAGS for f in self.flags):
            raise _fail(f"{keyword} option", "one of " + ", ".join(_VIP_FLAGS), self.flags)
        if addr.version == 6:
            for name in ("label", "scope", "brd"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{keyword}: {name} is IPv4 only, got {name} on {addr}")
        elif self.brd in ("+", "-") and addr.network.prefixlen > 30:
            raise ConfigError(
                f"{keyword} brd: expected a prefix of /30 or shorter for "
                f"'brd {self.brd}', got {addr}"
            )


def _coerce_interface(keyword: str, value: object) -> IPInterface:
    if isinstance(value, IPv4Interface | IPv6Interface):
        return value
    if isinstance(value, IPv4Address | IPv6Address):
        return ip_interface(value)
    if isinstance(value, str):
        addr, slash, prefix = value.partition("/")
        # Only a numeric prefix length is keepalived syntax (no netmask form).
        if "%" not in addr and (not slash or _UINT.fullmatch(prefix)):
            try:
                return ip_interface(value)
            except ValueError:
                pass
    raise _fail(keyword, "an address ADDR[/PREFIX]", value)


@dataclass
class TrackInterface:
    """A ``track_interface`` entry: ``IFACE [weight -253..253 [reverse]]``.

    Without a weight, the instance goes to FAULT when the interface goes down.
    """

    name: str
    weight: int | None = None
    reverse: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        _check_ifname("track_interface", self.name)
        _check_opt_int("track_interface weight", self.weight, -253, 253)
        _check_bool("track_interface reverse", self.reverse)
        if self.reverse and self.weight is None:
            raise ConfigError("track_interface: expected a weight before 'reverse'")


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
                setattr(
                    self, name, _fixed_point(name, value, 10**6, 1, _UINT_MAX, "0.000001") / 10**6
                )
            else:
                setattr(self, name, 0.0)
        self.validate()

    def validate(self) -> None:
        """Check the fields; raise :class:`ConfigError` if invalid."""
        _check_opt_word("router_id", self.router_id, "a router id")
        if self.vrrp_notify_fifo is not None:
            if not isinstance(self.vrrp_notify_fifo, NotifyFifo):
                raise _fail("vrrp_notify_fifo", "a NotifyFifo", self.vrrp_notify_fifo)
            self.vrrp_notify_fifo.validate()
        if self.vrrp_notify_fifo_script is not None:
            if not isinstance(self.vrrp_notify_fifo_script, NotifyScript):
                raise _fail(
                    "vrrp_notify_fifo_script", "a NotifyScript", self.vrrp_notify_fifo_script
                )
            self.vrrp_notify_fifo_script.validate("vrrp_notify_fifo_script")
        _check_int("vrrp_garp_master_delay", self.vrrp_garp_master_delay, 0, _UINT_MAX // 10**6)
        _check_int("vrrp_garp_master_repeat", self.vrrp_garp_master_repeat, 1, _UINT_MAX)
        _check_int("vrrp_garp_master_refresh", self.vrrp_garp_master_refresh, 0, _UINT_MAX)
        _check_int(
            "vrrp_garp_master_refresh_repeat", self.vrrp_garp_master_refresh_repeat, 1, _UINT_MAX
        )
        for name in ("vrrp_garp_interval", "vrrp_gna_interval"):
            value = getattr(self, name)
            if value != 0:
                _fixed_point(name, value, 10**6, 1, _UINT_MAX, "0.000001")
        if self.vrrp_version not in (2, 3) or isinstance(self.vrrp_version, bool):
            raise _fail("vrrp_version", "2 or 3", self.vrrp_version)
        _check_bool("vrrp_strict", self.vrrp_strict)
        _check_bool("enable_script_security", self.enable_script_security)
        _check_opt_word("script_user", self.script_user, "a user name")
        _check_opt_word("script_user", self.script_group, "a group name")
        if self.script_group is not None and self.script_user is None:
            raise _fail("script_user", "a user before the group", self.script_group)
        _check_bool("dynamic_interfaces", self.dynamic_interfaces)


_NOTIFY_KEYWORDS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
_INSTANCE_GARP_LIMITS = {
    "garp_master_delay": (0, _UINT_MAX // 10**6),
    "garp_master_repeat": (1, _UINT_MAX),
    "garp_master_refresh": (0, _UINT_MAX),
    "garp_master_refresh_repeat": (1, _UINT_MAX),
    "garp_lower_prio_repeat": (0, _INT_MAX),
}


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
    notify_master: NotifyScript | None = None
    notify_backup: NotifyScript | None = None
    notify_fault: NotifyScript | None = None
    notify_stop: NotifyScript | None = None
    notify: NotifyScript | None = None

    def __post_init__(self) -> None:
        self.advert_int = (
            _fixed_point("advert_int", self.advert_int, 100, 1, 255 * 100, "0.01") / 100
        )
        if self.preempt_delay != 0:
            self.preempt_delay = (
                _fixed_point(
                    "preempt_delay",
                    self.preempt_delay,
                    10**6,
                    0,
                    _TIMER_MAX_SEC * 10**6,
                    "0.000001",
                )
                / 10**6
            )
        else:
            self.preempt_delay = 0.0
        if self.unicast_src_ip is not None:
            self.unicast_src_ip = _coerce_ip("unicast_src_ip", self.unicast_src_ip)
        if isinstance(self.authentication, str):
            self.authentication = Authentication(self.authentication)
        self.unicast_peer = [
            p if isinstance(p, UnicastPeer) else UnicastPeer(p) for p in _as_list(self.unicast_peer)
        ]
        self.virtual_ipaddress = [_coerce_vip(v) for v in _as_list(self.virtual_ipaddress)]
        self.virtual_ipaddress_excluded = [
            _coerce_vip(v) for v in _as_list(self.virtual_ipaddress_excluded)
        ]
        self.track_interface = [
            t if isinstance(t, TrackInterface) else TrackInterface(t)
            for t in _as_list(self.track_interface)
        ]
        for keyword in _NOTIFY_KEYWORDS:
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
        _check_word("vrrp_instance", self.name, "an instance name")
        _check_ifname("interface", self.interface)
        _check_int("virtual_router_id", self.virtual_router_id, 1, 255)
        if self.state not in (None, "MASTER", "BACKUP"):
            raise _fail("state", "MASTER or BACKUP", self.state)
        _check_opt_int("priority", self.priority, 1, 255)
        _fixed_point("advert_int", self.advert_int, 100, 1, 255 * 100, "0.01")
        if self.version is not None and (
            isinstance(self.version, bool) or self.version not in (2, 3)
        ):
            raise _fail("version", "2 or 3", self.version)
        _check_bool("nopreempt", self.nopreempt)
        _fixed_point(
            "preempt_delay", self.preempt_delay, 10**6, 0, _TIMER_MAX_SEC * 10**6, "0.000001"
        )
        if not isinstance(self.use_vmac, bool):
            _check_ifname("use_vmac", self.use_vmac)
        _check_bool("vmac_xmit_base", self.vmac_xmit_base)
        if self.unicast_src_ip is not None:
            _coerce_ip("unicast_src_ip", self.unicast_src_ip)
        _check_opt_ifname("unicast_src_ip dev", self.unicast_src_dev)
        if self.unicast_src_dev is not None and self.unicast_src_ip is None:
            raise _fail("unicast_src_ip", "an address for 'dev'", self.unicast_src_dev)
        for peer in self.unicast_peer:
            _check_type("unicast_peer", peer, UnicastPeer).validate()
        for vip in self.virtual_ipaddress:
            _check_type("virtual_ipaddress", vip, VirtualIP).validate("virtual_ipaddress")
        for vip in self.virtual_ipaddress_excluded:
            _check_type("virtual_ipaddress_excluded", vip, VirtualIP).validate(
                "virtual_ipaddress_excluded"
            )
        _check_opt_bool("accept", self.accept)
        for name, (lo, hi) in _INSTANCE_GARP_LIMITS.items():
            _check_opt_int(name, getattr(self, name), lo, hi)
        _check_opt_bool("lower_prio_no_advert", self.lower_prio_no_advert)
        _check_bool("skip_check_adv_addr", self.skip_check_adv_addr)
        _check_bool("dont_track_primary", self.dont_track_primary)
        _check_int("debug", self.debug, 0, 4)
        if self.authentication is not None:
            _check_type("authentication", self.authentication, Authentication).validate()
        for track in self.track_interface:
            _check_type("track_interface", track, TrackInterface).validate()
        for keyword in _NOTIFY_KEYWORDS:
            script = getattr(self, keyword)
            if script is not None:
                _check_type(keyword, script, NotifyScript).validate(keyword)

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
        return VirtualIP(_coerce_interface("virtual_ipaddress", value))
    raise _fail("virtual_ipaddress", "a VirtualIP or an address string", value)


def _check_type(keyword: str, value: object, kind: type) -> Any:
    if not isinstance(value, kind):
        raise _fail(keyword, f"a {kind.__name__}", value)
    return value


@dataclass
class _Problem:
    """A cross-field problem: ``key`` locates it (keyword, or (keyword, index))."""

    message: str
    key: object


def _instance_problems(inst: VrrpInstance, gd: GlobalDefs) -> tuple[list[_Problem], list[_Problem]]:
    """Errors and warnings that need several fields or ``global_defs`` (keepalived's
    vrrp_complete_instance), in a stable order."""
    errors: list[_Problem] = []
    warnings: list[_Problem] = []

    # One address family per instance.  keepalived takes the family from the
    # first address it sees; the VIPs are what the instance is about, so they
    # decide here, then the source address, then the peers.
    family = inst.family
    fam = _family_name(family)
    for i, vip in enumerate(inst.virtual_ipaddress):
        if vip.address.version != family:
            errors.append(
                _Problem(
                    f"virtual_ipaddress: expected {fam} addresses like the rest of the "
                    f"instance, got {vip.address} (an instance is one address family; put "
                    f"{_family_name(vip.address.version)} VIPs in their own vrrp_instance or in "
                    "virtual_ipaddress_excluded)",
                    ("virtual_ipaddress", i),
                )
            )
    if inst.unicast_src_ip is not None and inst.unicast_src_ip.version != family:
        errors.append(
            _Problem(
                f"unicast_src_ip: expected an {fam} address like the instance's "
                f"VIPs, got {inst.unicast_src_ip}",
                "unicast_src_ip",
            )
        )
    for i, peer in enumerate(inst.unicast_peer):
        if peer.address.version != family:
            errors.append(
                _Problem(
                    f"unicast_peer: expected an {fam} address like the rest of "
                    f"the instance, got {peer.address}",
                    ("unicast_peer", i),
                )
            )

    version = inst.effective_version(gd)
    if family == 6 and inst.version == 2:
        errors.append(
            _Problem(
                "version: expected 3 for an IPv6 instance (VRRPv2 is IPv4 only), got 2", "version"
            )
        )
    cs = inst.advert_int_cs
    if version == 2 and cs % 100:
        errors.append(
            _Problem(
                f"advert_int: expected whole seconds for VRRPv2, got {_format_fixed(cs, 100)} "
                "(set 'version 3' for sub-second intervals)",
                "advert_int",
            )
        )
    if version == 3 and cs > 4095:
        errors.append(
            _Problem(
                f"advert_int: expected at most 40.95 s for VRRPv3, got {_format_fixed(cs, 100)}",
                "advert_int",
            )
        )
    if inst.authentication is not None and version == 3:
        errors.append(
            _Problem(
                "authentication: expected no authentication block with VRRPv3 "
                "(RFC 5798 removed it)",
                "authentication",
            )
        )
    if not inst.virtual_ipaddress:
        if version == 3:
            errors.append(
                _Problem(
                    "virtual_ipaddress: expected at least one VIP for VRRPv3", "virtual_ipaddress"
                )
            )
        else:
            warnings.append(
                _Problem(
                    "virtual_ipaddress: no VIP specified; at least one is sensible",
                    "virtual_ipaddress",
                )
            )
    if len(inst.virtual_ipaddress) > VRRP_MAX_VIPS:
        errors.append(
            _Problem(
                f"virtual_ipaddress: expected at most {VRRP_MAX_VIPS} VIPs, got "
                f"{len(inst.virtual_ipaddress)} (use "
                "virtual_ipaddress_excluded for the rest)",
                "virtual_ipaddress",
            )
        )

    if inst.vmac_xmit_base and inst.use_vmac is False:
        errors.append(
            _Problem(
                "vmac_xmit_base: expected use_vmac as well (it only applies to a VMAC)",
                "vmac_xmit_base",
            )
        )
    if inst.use_vmac is not False and inst.is_unicast and not inst.vmac_xmit_base:
        errors.append(
            _Problem(
                "use_vmac: expected vmac_xmit_base as well when using unicast_peer", "use_vmac"
            )
        )
    if inst.nopreempt:
        if inst.effective_priority == VRRP_PRIO_OWNER:
            errors.append(
                _Problem(
                    "nopreempt: expected a priority below 255 (the address owner always preempts)",
                    "nopreempt",
                )
            )
        elif inst.effective_state == "MASTER":
            errors.append(
                _Problem(
                    "nopreempt: expected state BACKUP (nopreempt does not work "
                    "with initial state MASTER)",
                    "nopreempt",
                )
            )
    if inst.preempt_delay:
        if inst.effective_state == "MASTER":
            errors.append(
                _Problem(
                    "preempt_delay: expected state BACKUP (a preempt delay does "
                    "not work with initial state MASTER)",
                    "preempt_delay",
                )
            )
        elif inst.nopreempt:
            errors.append(
                _Problem(
                    "preempt_delay: expected no nopreempt (they are incompatible)", "preempt_delay"
                )
            )
    for i, track in enumerate(inst.track_interface):
        if track.name == inst.interface:
            errors.append(
                _Problem(
                    f"track_interface: expected an interface other than the "
                    f"instance's own ({track.name}, tracked already)",
                    ("track_interface", i),
                )
            )
        elif track.weight and inst.effective_priority == VRRP_PRIO_OWNER:
            # The owner's priority is fixed at 255, so keepalived drops weighted tracking.
            errors.append(
                _Problem(
                    f"track_interface: expected no weight on {track.name} for the "
                    "address owner (priority 255 cannot be adjusted)",
                    ("track_interface", i),
                )
            )
    return errors, warnings


def _same_vrid_problem(a: VrrpInstance, b: VrrpInstance) -> str | None:
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
        f"({_family_name(a.family)} on {a.interface}), got {b.virtual_router_id}"
    )


@dataclass
class Config:
    """A parsed or hand-built configuration: ``global_defs`` plus VRRP instances.

    ``warnings`` (not part of equality) lists what the parser complained about.
    """

    _: KW_ONLY
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    instances: list[VrrpInstance] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        self.instances = list(self.instances)
        self.validate()

    def validate(self) -> None:
        """Check the whole configuration; raise :class:`ConfigError` on the first problem."""
        _check_type("global_defs", self.global_defs, GlobalDefs).validate()
        seen: dict[str, VrrpInstance] = {}
        for inst in self.instances:
            _check_type("vrrp_instance", inst, VrrpInstance).validate()
            if inst.name in seen:
                raise ConfigError(f"vrrp_instance: expected a unique name, got {inst.name!r} twice")
            errors, _ = _instance_problems(inst, self.global_defs)
            if errors:
                raise ConfigError(f"vrrp_instance {inst.name}: {errors[0].message}")
            for other in seen.values():
                problem = _same_vrid_problem(other, inst)
                if problem:
                    raise ConfigError(f"vrrp_instance {inst.name}: {problem}")
            seen[inst.name] = inst

    def instance(self, name: str) -> VrrpInstance:
        """The instance called ``name`` (``KeyError`` if there is none)."""
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)


# --- lexer -------------------------------------------------------------------


@dataclass
class _Node:
    """One statement: its words, raw text (for notify re-parsing), location and block."""

    tokens: list[str]
    text: str
    filename: str
    line: int
    children: list["_Node"] | None = None


@dataclass
class _Item:
    kind: Literal["stmt", "{", "}"]
    filename: str
    line: int
    tokens: list[str] = field(default_factory=list)
    text: str = ""


_MAX_INCLUDE_DEPTH = 32


def _decomment(line: str, filename: str, lineno: int) -> str:
    """Strip a comment the way keepalived's decomment() does.

    '#' and '!' start a comment anywhere outside double quotes; "\\#" and "\\!"
    outside quotes stand for the character itself.
    """
    out: list[str] = []
    quote = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quote = not quote
        elif c == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            out.append(nxt if not quote and nxt in "#!" else c + nxt)
            i += 2
            continue
        elif not quote and c in "#!":
            break
        out.append(c)
        i += 1
    if quote:
        first = line.split()[0]
        raise ConfigError(
            f"{first}: expected a closing '\"' (unterminated quote)", filename, lineno
        )
    return "".join(out).strip()


def _split_braces(text: str) -> list[str]:
    """Split a line at '{' and '}' outside double quotes, like keepalived's read_line()."""
    pieces: list[str] = []
    start = 0
    quote = False
    for i, c in enumerate(text):
        if c == '"':
            quote = not quote
        elif not quote and c in "{}":
            pieces.extend([text[start:i].strip(), c])
            start = i + 1
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _split_words(text: str, filename: str, lineno: int) -> list[str]:
    """keepalived's alloc_strvec(): whitespace-separated words, "quoted strings" as one."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ConfigError("unterminated '\"' quote", filename, lineno)
            words.append(text[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] != '"':
                j += 1
            words.append(text[i:j])
            i = j


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def _split_quoted_escaped(text: str) -> list[str]:
    """keepalived's alloc_strvec_quoted_escaped(): shell-like words with '"', "'" and
    backslash escapes.  Used for notify scripts and their arguments."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i >= n:
                    raise ValueError("a backslash at the end")
                c = text[i]
                if c == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    j = i + 1
                    while j < n and text[j] in "0123456789abcdefABCDEF":
                        j += 1
                    word.append(chr(int(text[i + 1 : j], 16) & 0xFF))
                    i = j
                elif c == "c" and i + 1 < n:
                    word.append(chr(ord(text[i + 1]) & 0x1F))
                    i += 2
                elif c in "01234567":
                    j = i
                    while j < n and j < i + 3 and text[j] in "01234567":
                        j += 1
                    word.append(chr(int(text[i:j], 8) & 0xFF))
                    i = j
                else:
                    word.append(_ESCAPES.get(c, c))
                    i += 1
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
                i += 1
            elif c in "\"'":
                quote = c
                i += 1
            elif c.isspace():
                break
            else:
                word.append(c)
                i += 1
        if quote:
            raise ValueError(f"a missing closing {quote}")
        words.append("".join(word))


def _lex(text: str, filename: str, depth: int = 0) -> Iterator[_Item]:
    """Turn a file into statements and braces, expanding ``include`` lines in place."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _decomment(raw, filename, lineno)
        if not line:
            continue
        words = _split_words(line, filename, lineno)
        # keepalived recognises "include FILE" on a line of its own, at any level.
        if words and words[0] == "include":
            if len(words) != 2:
                raise ConfigError(
                    "include: expected exactly one file name or glob pattern", filename, lineno
                )
            yield from _include(words[1], filename, lineno, depth)
            continue
        for piece in _split_braces(line):
            if piece == "{":
                yield _Item("{", filename, lineno)
            elif piece == "}":
                yield _Item("}", filename, lineno)
            else:
                yield _Item("stmt", filename, lineno, _split_words(piece, filename, lineno), piece)


def _include(pattern: str, filename: str, lineno: int, depth: int) -> Iterator[_Item]:
    if depth >= _MAX_INCLUDE_DEPTH:
        raise ConfigError(
            f"include: expected at most {_MAX_INCLUDE_DEPTH} levels of nesting "
            f"(is {pattern!r} including itself?)",
            filename,
            lineno,
        )
    # Relative patterns are relative to the including file's directory: keepalived
    # chdir()s there while reading it.
    # For text without a file ("<string>") that is the current directory.
    base = "" if filename.startswith("<") else os.path.dirname(filename)
    # The directory is literal even if its name contains glob characters.
    full = os.path.join(glob.escape(base), pattern)
    matches = sorted(p for p in glob.glob(full) if not os.path.isdir(p))
    if not matches:
        raise ConfigError(
            f"include: expected {pattern!r} to match at least one file (looked for {full})",
            filename,
            lineno,
        )
    for path in matches:
        try:
            content = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(
                f"include: cannot read {path}: {exc.strerror}", filename, lineno
            ) from None
        yield from _lex(content, path, depth + 1)


def _tree(items: Iterable[_Item]) -> list[_Node]:
    """Attach each '{ ... }' block to the statement before it."""
    root: list[_Node] = []
    current = root
    stack: list[tuple[list[_Node], _Node]] = []
    last: _Node | None = None
    for item in items:
        if item.kind == "stmt":
            last = _Node(item.tokens, item.text, item.filename, item.line)
            current.append(last)
        elif item.kind == "{":
            if last is None or last.children is not None:
                raise ConfigError(
                    "unexpected '{': expected a keyword before it", item.filename, item.line
                )
            last.children = []
            stack.append((current, last))
            current = last.children
            last = None
        else:
            if not stack:
                raise ConfigError("unexpected '}': no block is open", item.filename, item.line)
            current, _opener = stack.pop()
            last = None
    if stack:
        opener = stack[-1][1]
        raise ConfigError(
            f"{opener.tokens[0]}: block is missing its closing '}}'", opener.filename, opener.line
        )
    return root


# --- parser ------------------------------------------------------------------

# keepalived keywords this module does not model: reported as "unsupported"
# rather than "unknown", so a typo is still distinguishable from a real feature.
_UNSUPPORTED_TOP = frozenset(
    {
        "vrrp_sync_group",
        "vrrp_script",
        "vrrp_track_file",
        "vrrp_track_process",
        "track_group",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "garp_group",
        "linkbeat_interfaces",
        "virtual_server",
        "virtual_server_group",
        "bfd_instance",
        "interface_up_down_delays",
        "SSL",
        "net_namespace",
        "instance",
    }
)
_UNSUPPORTED_GLOBAL = frozenset(
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
)
_UNSUPPORTED_INSTANCE = frozenset(
    {
        "mcast_src_ip",
        "mcast_dst_ip",
        "track_script",
        "track_file",
        "track_process",
        "track_bfd",
        "track_src_ip",
        "use_vmac_addr",
        "use_ipvlan",
        "native_ipv6",
        "check_unicast_src",
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
)


class _InstanceBuilder:
    """Collects one vrrp_instance's keyword values and where each came from."""

    def __init__(self, node: _Node, name: str):
        self.node = node
        self.name = name
        self.values: dict[str, Any] = {}
        self.where: dict[object, _Node] = {}
        self.peers: list[UnicastPeer] = []
        self.vips: list[VirtualIP] = []
        self.evips: list[VirtualIP] = []
        self.tracks: list[TrackInterface] = []


class _Parser:
    def __init__(self) -> None:
        self.warnings: list[ConfigWarning] = []
        self.global_values: dict[str, Any] = {}
        self.global_where: dict[str, _Node] = {}
        self.builders: list[_InstanceBuilder] = []

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def error(node: _Node, message: str) -> ConfigError:
        return ConfigError(message, node.filename, node.line)

    def warn(self, node: _Node, message: str) -> None:
        self.warnings.append(ConfigWarning(message, node.filename, node.line))

    def located(
        self, node: _Node, build: Callable[[], Any], rename: tuple[str, str] | None = None
    ) -> Any:
        """Run ``build`` (a model constructor/check); give its error this node's location.

        ``rename=(generic, actual)`` swaps the keyword at the start of the message,
        for models shared by several keywords (notify_*, virtual_ipaddress[_excluded]).
        """
        try:
            return build()
        except ConfigError as exc:
            message = exc.message
            if rename and re.match(re.escape(rename[0]) + r"\b", message):
                message = rename[1] + message[len(rename[0]) :]
            raise self.error(node, message) from None

    def no_block(self, node: _Node) -> None:
        if node.children is not None:
            raise self.error(node, f"{node.tokens[0]}: expected no '{{ }}' block after it")

    def block(self, node: _Node, what: str) -> list[_Node]:
        if node.children is None:
            raise self.error(node, f"{node.tokens[0]}: expected a '{{' block of {what}")
        return node.children

    def args(self, node: _Node, expected: str, low: int, high: int | None = None) -> list[str]:
        """The words after the keyword, checking there are low..high of them."""
        self.no_block(node)
        args = node.tokens[1:]
        high = low if high is None else high
        if not low <= len(args) <= high:
            got = "nothing" if not args else repr(" ".join(args))
            raise self.error(node, f"{node.tokens[0]}: expected {expected}, got {got}")
        return args

    def uint(self, node: _Node, keyword: str, text: str, lo: int, hi: int) -> int:
        if not _UINT.fullmatch(text) or not lo <= int(text) <= hi:
            expected = "2 or 3" if (lo, hi) == (2, 3) else f"an integer {lo}..{hi}"
            raise self.error(node, f"{keyword}: expected {expected}, got {text!r}")
        return int(text)

    def seconds(
        self, node: _Node, keyword: str, text: str, scale: int, lo: int, hi: int, unit: str
    ) -> float:
        if not _DECIMAL.fullmatch(text):
            raise self.error(
                node,
                f"{keyword}: expected seconds {_format_fixed(lo, scale)}.."
                f"{_format_fixed(hi, scale)} in steps of {unit}, got {text!r}",
            )
        try:
            ticks = _fixed_point(keyword, Decimal(text), scale, lo, hi, unit)
        except (ConfigError, InvalidOperation):
            raise self.error(
                node,
                f"{keyword}: expected seconds {_format_fixed(lo, scale)}.."
                f"{_format_fixed(hi, scale)} in steps of {unit}, "
                f"got {text!r}",
            ) from None
        return ticks / scale

    def flag(self, node: _Node) -> bool:
        self.args(node, "no value", 0)
        return True

    def opt_bool(self, node: _Node) -> bool:
        """``keyword [on|off|true|false|yes|no]``; the bare keyword means on."""
        args = self.args(node, "nothing or one of on, off, true, false, yes, no", 0, 1)
        if not args:
            return True
        if args[0] not in _TRUE_WORDS:
            raise self.error(
                node,
                f"{node.tokens[0]}: expected one of on, off, true, false, yes, no, got {args[0]!r}",
            )
        return _TRUE_WORDS[args[0]]

    def script(self, node: _Node) -> NotifyScript:
        """``keyword SCRIPT [user [group]]`` re-read with quotes and escapes, as keepalived does."""
        self.no_block(node)
        keyword = node.tokens[0]
        try:
            words = _split_quoted_escaped(node.text)
        except ValueError as exc:
            raise self.error(
                node, f"{keyword}: expected a well-formed quoted command ({exc})"
            ) from None
        if not 2 <= len(words) <= 4:
            raise self.error(
                node,
                f"{keyword}: expected a script (quote it if it has arguments)"
                " optionally followed by a user and a group",
            )
        command, *owner = words[1:]
        return self.located(node, lambda: NotifyScript(command, *owner), ("notify", keyword))

    def set_once(
        self,
        values: dict[str, Any],
        where: dict[Any, _Node],
        node: _Node,
        key: str,
        value: Any,
        keep_first: bool = False,
    ) -> None:
        """Record a value; a repeated keyword is a warning (keepalived uses the last one,
        except for notify scripts where it keeps the first)."""
        if key in where:
            prev = where[key]
            kept = "first" if keep_first else "last"
            self.warn(
                node,
                f"{node.tokens[0]} repeated (also at {prev.filename}:{prev.line}); "
                f"using the {kept}",
            )
            if keep_first:
                return
        values[key] = value
        where[key] = node

    def unknown(self, node: _Node, supported: frozenset[str]) -> None:
        keyword = node.tokens[0]
        # The unknown keyword's block (if any) is skipped whole; see module docstring.
        if keyword in supported:
            self.warn(node, f"unsupported keyword '{keyword}' ignored")
        else:
            self.warn(node, f"unknown keyword '{keyword}'")

    # -- top level ----------------------------------------------------------------

    def run(self, tree: list[_Node]) -> Config:
        for node in tree:
            keyword = node.tokens[0]
            if keyword == "global_defs":
                self.args_with_block(node, 0)
                for child in self.block(node, "global settings"):
                    self.global_keyword(child)
            elif keyword == "vrrp_instance":
                self.instance(node)
            else:
                self.unknown(node, _UNSUPPORTED_TOP)
        gd = self.located_global()
        instances = [self.finish_instance(b, gd) for b in self.builders]
        self.check_vrids(instances)
        config = Config(global_defs=gd, instances=instances)
        config.warnings = self.warnings
        return config

    def args_with_block(self, node: _Node, count: int) -> list[str]:
        args = node.tokens[1:]
        if len(args) != count:
            what = "a name" if count else "nothing"
            raise self.error(
                node,
                f"{node.tokens[0]}: expected {what} before '{{', got "
                f"{' '.join(args) or 'nothing'!r}",
            )
        return args

    # -- global_defs ----------------------------------------------------------------

    def global_keyword(self, node: _Node) -> None:
        kw = node.tokens[0]
        values, where = self.global_values, self.global_where
        if kw == "router_id":
            value: Any = self.args(node, "a router id", 1)[0]
            self.located(node, lambda: _check_word("router_id", value, "a router id"))
        elif kw == "vrrp_notify_fifo":
            args = self.args(node, "a FIFO path optionally followed by a user and a group", 1, 3)
            value = self.located(node, lambda: NotifyFifo(*args))
        elif kw == "vrrp_notify_fifo_script":
            value = self.script(node)
        elif kw in ("vrrp_garp_master_delay", "vrrp_garp_master_refresh"):
            hi = _UINT_MAX // 10**6 if kw == "vrrp_garp_master_delay" else _UINT_MAX
            value = self.uint(node, kw, self.args(node, "seconds", 1)[0], 0, hi)
        elif kw in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat"):
            value = self.uint(node, kw, self.args(node, "a count", 1)[0], 1, _UINT_MAX)
        elif kw in ("vrrp_garp_interval", "vrrp_gna_interval"):
            text = self.args(node, "seconds", 1)[0]
            value = self.seconds(node, kw, text, 10**6, 1, _UINT_MAX, "0.000001")
        elif kw == "vrrp_version":
            value = self.uint(node, kw, self.args(node, "2 or 3", 1)[0], 2, 3)
        elif kw in ("vrrp_strict", "enable_script_security", "dynamic_interfaces"):
            value = self.flag(node)
        elif kw == "script_user":
            args = self.args(node, "a user name optionally followed by a group name", 1, 2)
            self.located(
                node, lambda: [_check_word("script_user", a, "a user or group name") for a in args]
            )
            values["script_group"] = args[1] if len(args) > 1 else None
            value = args[0]
        else:
            self.unknown(node, _UNSUPPORTED_GLOBAL)
            return
        self.set_once(values, where, node, kw, value)

    def located_global(self) -> GlobalDefs:
        try:
            return GlobalDefs(**self.global_values)
        except ConfigError as exc:  # pragma: no cover - values were checked one by one
            node = next(iter(self.global_where.values()))
            raise self.error(node, exc.message) from None

    # -- vrrp_instance ----------------------------------------------------------------

    def instance(self, node: _Node) -> None:
        (name,) = self.args_with_block(node, 1)
        self.located(node, lambda: _check_word("vrrp_instance", name, "an instance name"))
        for other in self.builders:
            if other.name == name:
                raise self.error(
                    node,
                    f"vrrp_instance: expected a unique name, got {name!r} "
                    f"(already defined at {other.node.filename}:"
                    f"{other.node.line})",
                )
        b = _InstanceBuilder(node, name)
        self.builders.append(b)
        for child in self.block(node, "instance settings"):
            self.instance_keyword(b, child)

    def instance_keyword(self, b: _InstanceBuilder, node: _Node) -> None:
        kw = node.tokens[0]
        keep_first = False
        value: Any
        if kw == "interface":
            value = self.args(node, "an interface name", 1)[0]
            self.located(node, lambda: _check_ifname("interface", value))
        elif kw == "state":
            value = self.args(node, "MASTER or BACKUP", 1)[0]
            if value not in ("MASTER", "BACKUP"):
                raise self.error(node, f"state: expected MASTER or BACKUP, got {value!r}")
        elif kw in ("virtual_router_id", "priority"):
            value = self.uint(node, kw, self.args(node, "an integer 1..255", 1)[0], 1, 255)
        elif kw == "advert_int":
            text = self.args(node, "seconds", 1)[0]
            value = self.seconds(node, kw, text, 100, 1, 255 * 100, "0.01")
        elif kw == "version":
            value = self.uint(node, kw, self.args(node, "2 or 3", 1)[0], 2, 3)
        elif kw in ("nopreempt", "preempt"):
            # 'preempt' is keepalived's backwards-compatible spelling of the default.
            self.flag(node)
            kw, value = "nopreempt", kw == "nopreempt"
        elif kw == "preempt_delay":
            text = self.args(node, "seconds", 1)[0]
            value = self.seconds(node, kw, text, 10**6, 0, _TIMER_MAX_SEC * 10**6, "0.000001")
        elif kw == "use_vmac":
            args = self.args(node, "nothing or an interface name", 0, 1)
            value = args[0] if args else True
            if args:
                self.located(node, lambda: _check_ifname("use_vmac", value))
        elif kw in ("vmac_xmit_base", "dont_track_primary"):
            value = self.flag(node)
        elif kw == "unicast_src_ip":
            self.unicast_src(b, node)
            return
        elif kw == "unicast_peer":
            for child in self.block(node, "peer addresses"):
                b.where[("unicast_peer", len(b.peers))] = child
                b.peers.append(self.peer(child))
            b.where.setdefault("unicast_peer", node)
            return
        elif kw in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            target = b.vips if kw == "virtual_ipaddress" else b.evips
            for child in self.block(node, "addresses"):
                b.where[(kw, len(target))] = child
                target.append(self.vip(child, kw))
            b.where.setdefault(kw, node)
            return
        elif kw in ("accept", "no_accept"):
            self.flag(node)
            kw, value = "accept", kw == "accept"
        elif kw in _INSTANCE_GARP_LIMITS:
            lo, hi = _INSTANCE_GARP_LIMITS[kw]
            value = self.uint(node, kw, self.args(node, f"an integer {lo}..{hi}", 1)[0], lo, hi)
        elif kw in ("lower_prio_no_advert", "skip_check_adv_addr"):
            value = self.opt_bool(node)
        elif kw == "debug":
            value = self.uint(node, kw, self.args(node, "a level 0..4", 1)[0], 0, 4)
        elif kw == "smtp_alert":
            # Parsed for compatibility, deliberately not modelled.
            self.args(node, "nothing or a boolean", 0, 1)
            return
        elif kw == "authentication":
            value = self.authentication(node)
        elif kw == "track_interface":
            for child in self.block(node, "interface names"):
                b.where[("track_interface", len(b.tracks))] = child
                b.tracks.append(self.track(child))
            b.where.setdefault("track_interface", node)
            return
        elif kw in _NOTIFY_KEYWORDS:
            value = self.script(node)
            keep_first = True
        else:
            self.unknown(node, _UNSUPPORTED_INSTANCE)
            return
        self.set_once(b.values, b.where, node, kw, value, keep_first)

    def unicast_src(self, b: _InstanceBuilder, node: _Node) -> None:
        args = self.args(node, "an address optionally followed by 'dev IFACE'", 1, 3)
        address = self.located(node, lambda: _coerce_ip("unicast_src_ip", args[0]))
        dev = None
        if len(args) > 1:
            if len(args) != 3 or args[1] != "dev":
                raise self.error(
                    node,
                    "unicast_src_ip: expected an address optionally followed "
                    f"by 'dev IFACE', got {' '.join(args)!r}",
                )
            dev = self.located(node, lambda: _check_ifname("unicast_src_ip dev", args[2]))
        self.set_once(b.values, b.where, node, "unicast_src_ip", address)
        b.values["unicast_src_dev"] = dev

    def peer(self, node: _Node) -> UnicastPeer:
        self.no_block(node)
        address = self.located(node, lambda: _coerce_ip("unicast_peer", node.tokens[0]))
        options: dict[str, Any] = {}
        rest = node.tokens[1:]
        if len(rest) % 2:
            raise self.error(
                node,
                f"unicast_peer: expected 'dev IFACE', 'min_ttl N' or "
                f"'max_ttl N' after the address, got {' '.join(rest)!r}",
            )
        for opt, val in zip(rest[::2], rest[1::2], strict=True):
            if opt in options or opt not in ("dev", "min_ttl", "max_ttl"):
                raise self.error(
                    node,
                    "unicast_peer: expected each of 'dev IFACE', 'min_ttl N', "
                    f"'max_ttl N' at most once, got {opt!r}",
                )
            options[opt] = val if opt == "dev" else self.uint(node, opt, val, 0, 255)
        return self.located(node, lambda: UnicastPeer(address, **options))

    def vip(self, node: _Node, keyword: str) -> VirtualIP:
        self.no_block(node)
        address = self.located(node, lambda: _coerce_interface(keyword, node.tokens[0]))
        options: dict[str, Any] = {}
        flags: list[str] = []
        words = node.tokens[1:]
        i = 0
        while i < len(words):
            word = words[i]
            if word in ("dev", "label", "scope", "brd", "broadcast"):
                key = "brd" if word == "broadcast" else word
                if i + 1 >= len(words):
                    raise self.error(node, f"{keyword} {word}: expected a value after it")
                if key in options:
                    raise self.error(node, f"{keyword} {word}: expected it at most once")
                options[key] = words[i + 1]
                i += 2
            elif word in _VIP_FLAGS:
                flags.append(word)
                i += 1
            else:
                raise self.error(
                    node,
                    f"{keyword}: expected an option (dev, label, scope, brd, "
                    f"{', '.join(_VIP_FLAGS)}) after the address, "
                    f"got {word!r}",
                )
        return self.located(
            node,
            lambda: VirtualIP(address, flags=tuple(flags), **options),
            ("virtual_ipaddress", keyword),
        )

    def track(self, node: _Node) -> TrackInterface:
        self.no_block(node)
        name, *rest = node.tokens
        weight: int | None = None
        reverse = False
        if rest:
            if (
                rest[0] != "weight"
                or len(rest) not in (2, 3)
                or (len(rest) == 3 and rest[2] not in ("reverse", "noreverse"))
            ):
                raise self.error(
                    node,
                    "track_interface: expected IFACE [weight -253..253 "
                    f"[reverse]], got {' '.join(node.tokens)!r}",
                )
            if not _INT.fullmatch(rest[1]) or not -253 <= int(rest[1]) <= 253:
                raise self.error(
                    node, f"track_interface weight: expected an integer -253..253, got {rest[1]!r}"
                )
            weight = int(rest[1])
            reverse = len(rest) == 3 and rest[2] == "reverse"
        return self.located(node, lambda: TrackInterface(name, weight, reverse))

    def authentication(self, node: _Node) -> Authentication:
        values: dict[str, str] = {}
        for child in self.block(node, "auth_type and auth_pass"):
            kw = child.tokens[0]
            if kw == "auth_type":
                value = self.args(child, "PASS", 1)[0]
                if value == "AH":
                    raise self.error(
                        child,
                        "auth_type: expected PASS, got 'AH' (IPsec AH "
                        "authentication is not supported)",
                    )
                if value != "PASS":
                    raise self.error(child, f"auth_type: expected PASS, got {value!r}")
            elif kw == "auth_pass":
                value = self.args(child, "a password", 1)[0]
                self.located(child, partial(Authentication, value))
            else:
                self.unknown(child, frozenset())
                continue
            values[kw] = value
        if "auth_pass" not in values:
            raise self.error(node, "authentication: expected an auth_pass")
        return Authentication(values["auth_pass"])

    def finish_instance(self, b: _InstanceBuilder, gd: GlobalDefs) -> VrrpInstance:
        for required in ("interface", "virtual_router_id"):
            if required not in b.values:
                raise self.error(
                    b.node,
                    f"vrrp_instance {b.name}: missing '{required}' "
                    f"(expected {required} in every vrrp_instance)",
                )
        kwargs = dict(b.values)
        kwargs.update(
            unicast_peer=b.peers,
            virtual_ipaddress=b.vips,
            virtual_ipaddress_excluded=b.evips,
            track_interface=b.tracks,
        )
        interface = kwargs.pop("interface")
        vrid = kwargs.pop("virtual_router_id")
        inst = self.located(b.node, lambda: VrrpInstance(b.name, interface, vrid, **kwargs))
        errors, warnings = _instance_problems(inst, gd)
        for problem in warnings:
            self.warn(self.where(b, problem.key), f"vrrp_instance {b.name}: {problem.message}")
        if errors:
            raise self.error(self.where(b, errors[0].key), errors[0].message)
        return inst

    @staticmethod
    def where(b: _InstanceBuilder, key: object) -> _Node:
        node = b.where.get(key)
        if node is None and isinstance(key, tuple):
            node = b.where.get(key[0])
        return node or b.node

    def check_vrids(self, instances: list[VrrpInstance]) -> None:
        for i, inst in enumerate(instances):
            for other in instances[:i]:
                problem = _same_vrid_problem(other, inst)
                if problem:
                    raise self.error(self.where(self.builders[i], "virtual_router_id"), problem)


def parse(text: str, filename: str = "<string>") -> Config:
    """Parse keepalived.conf ``text``; ``filename`` is used in messages and to resolve
    relative ``include`` patterns (the current directory for ``"<string>"``).

    Raises :class:`ConfigError` (``FILE:LINE: ...``) for invalid configurations.
    Unknown keywords end up in ``Config.warnings``.
    """
    return _Parser().run(_tree(_lex(text, filename)))


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse the keepalived.conf at ``path`` (see :func:`parse`)."""
    return parse(Path(path).read_text(encoding="utf-8", errors="replace"), os.fspath(path))


# --- renderer ----------------------------------------------------------------


def _quote_command(command: str) -> str:
    # Bare when possible; otherwise double quotes, which keepalived's comment and
    # brace scanners both respect.  Only backslashes need escaping inside them
    # ('"' is refused by NotifyScript).
    if _BARE_WORD.fullmatch(command):
        return command
    return '"' + command.replace("\\", "\\\\") + '"'


def _script_line(keyword: str, script: NotifyScript) -> str:
    parts = [keyword, _quote_command(script.command)]
    parts += [p for p in (script.user, script.group) if p is not None]
    return " ".join(parts)


def _render_global(gd: GlobalDefs) -> list[str]:
    default = GlobalDefs()
    body: list[str] = []
    if gd.router_id is not None:
        body.append(f"router_id {gd.router_id}")
    if gd.vrrp_notify_fifo is not None:
        fifo = gd.vrrp_notify_fifo
        body.append(
            " ".join(
                p for p in ("vrrp_notify_fifo", fifo.path, fifo.user, fifo.group) if p is not None
            )
        )
    if gd.vrrp_notify_fifo_script is not None:
        body.append(_script_line("vrrp_notify_fifo_script", gd.vrrp_notify_fifo_script))
    for name in (
        "vrrp_garp_master_delay",
        "vrrp_garp_master_repeat",
        "vrrp_garp_master_refresh",
        "vrrp_garp_master_refresh_repeat",
    ):
        if getattr(gd, name) != getattr(default, name):
            body.append(f"{name} {getattr(gd, name)}")
    for name in ("vrrp_garp_interval", "vrrp_gna_interval"):
        if getattr(gd, name):
            body.append(f"{name} {_format_fixed(round(getattr(gd, name) * 10**6), 10**6)}")
    if gd.vrrp_version != default.vrrp_version:
        body.append(f"vrrp_version {gd.vrrp_version}")
    for name in ("vrrp_strict", "enable_script_security", "dynamic_interfaces"):
        if getattr(gd, name):
            body.append(name)
    if gd.script_user is not None:
        body.append(
            " ".join(p for p in ("script_user", gd.script_user, gd.script_group) if p is not None)
        )
    if not body:
        return []
    return ["global_defs {", *(f"    {line}" for line in body), "}", ""]


def _vip_line(vip: VirtualIP) -> str:
    parts = [str(vip.address)]
    for name in ("dev", "label", "scope", "brd"):
        value = getattr(vip, name)
        if value is not None:
            parts += [name, value]
    parts += list(vip.flags)
    return " ".join(parts)


def _peer_line(peer: UnicastPeer) -> str:
    parts = [str(peer.address)]
    for name in ("dev", "min_ttl", "max_ttl"):
        value = getattr(peer, name)
        if value is not None:
            parts += [name, str(value)]
    return " ".join(parts)


def _render_instance(inst: VrrpInstance) -> list[str]:
    body: list[str] = [f"interface {inst.interface}"]
    if inst.state is not None:
        body.append(f"state {inst.state}")
    body.append(f"virtual_router_id {inst.virtual_router_id}")
    if inst.priority is not None:
        body.append(f"priority {inst.priority}")
    body.append(f"advert_int {_format_fixed(inst.advert_int_cs, 100)}")
    if inst.version is not None:
        body.append(f"version {inst.version}")
    if inst.debug:
        body.append(f"debug {inst.debug}")
    if inst.nopreempt:
        body.append("nopreempt")
    if inst.preempt_delay:
        body.append(f"preempt_delay {_format_fixed(round(inst.preempt_delay * 10**6), 10**6)}")
    if inst.use_vmac is True:
        body.append("use_vmac")
    elif inst.use_vmac:
        body.append(f"use_vmac {inst.use_vmac}")
    if inst.vmac_xmit_base:
        body.append("vmac_xmit_base")
    if inst.dont_track_primary:
        body.append("dont_track_primary")
    if inst.accept is not None:
        body.append("accept" if inst.accept else "no_accept")
    for name in _INSTANCE_GARP_LIMITS:
        if getattr(inst, name) is not None:
            body.append(f"{name} {getattr(inst, name)}")
    if inst.lower_prio_no_advert is not None:
        body.append(f"lower_prio_no_advert {'true' if inst.lower_prio_no_advert else 'false'}")
    if inst.skip_check_adv_addr:
        body.append("skip_check_adv_addr")
    if inst.authentication is not None:
        body += [
            "authentication {",
            f"    auth_type {inst.authentication.auth_type}",
            f"    auth_pass {inst.authentication.auth_pass}",
            "}",
        ]
    if inst.unicast_src_ip is not None:
        dev = f" dev {inst.unicast_src_dev}" if inst.unicast_src_dev else ""
        body.append(f"unicast_src_ip {inst.unicast_src_ip}{dev}")
    if inst.unicast_peer:
        body += ["unicast_peer {", *(f"    {_peer_line(p)}" for p in inst.unicast_peer), "}"]
    if inst.track_interface:
        lines = []
        for track in inst.track_interface:
            line = track.name
            if track.weight is not None:
                line += f" weight {track.weight}" + (" reverse" if track.reverse else "")
            lines.append(f"    {line}")
        body += ["track_interface {", *lines, "}"]
    for name in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
        vips = getattr(inst, name)
        if vips:
            body += [f"{name} {{", *(f"    {_vip_line(v)}" for v in vips), "}"]
    for keyword in _NOTIFY_KEYWORDS:
        script = getattr(inst, keyword)
        if script is not None:
            body.append(_script_line(keyword, script))
    return [f"vrrp_instance {inst.name} {{", *(f"    {line}" for line in body), "}", ""]


def render(config: Config) -> str:
    """Render ``config`` as keepalived.conf text (validating it first).

    The result is accepted by :func:`parse` and by keepalived 2.2.7, and
    ``parse(render(config)) == config``.  Unset (``None``) fields are left out so
    keepalived applies its own defaults, exactly as the model describes.
    """
    config.validate()
    lines = ["# keepalived.conf rendered by vrrp.config", ""]
    lines += _render_global(config.global_defs)
    for inst in config.instances:
        lines += _render_instance(inst)
    return "\n".join(lines).rstrip("\n") + "\n"
