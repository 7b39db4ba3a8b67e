"""Value domains and checks shared by the model and the keyword table.

Every range, choice and word rule of a field is declared here or in :mod:`.model` exactly
once, as a domain object (:class:`IntRange`, :class:`Seconds`) or a check function.  The model
calls it on the Python value; the keyword table calls the same object on the file's text, so
a range is checked in one place and the message names what the user wrote.

Each check raises :class:`ConfigError` with a message of the form
``keyword: expected ..., got ...`` and no location; the parser adds ``FILE:LINE``.
"""

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_interface,
)
from typing import Literal, TypeAlias, TypeVar

from .errors import ConfigError

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
TIMER_MAX_SEC = 1000
"""Upper bound of ``preempt_delay``, in seconds."""
UINT_MAX = 2**32 - 1
"""keepalived reads counts into an unsigned int."""
INT_MAX = 2**31 - 1
"""keepalived reads some counts into a signed int."""
IFNAMSIZ = 16
"""The kernel's interface name buffer, so interface names are at most 15 characters."""
AUTH_PASS_MAX = 8
"""The VRRPv2 simple password field."""
VIP_SCOPES = ("global", "site", "link", "host", "nowhere")
"""The ``scope`` words of a virtual address."""
VIP_FLAGS = ("home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "use_vmac")
"""Flag words accepted after an address (keepalived's alloc_ipaddress), in the order they are
rendered; a canonical order keeps ``parse(render(x)) == x``."""
TRUE_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
"""The words keepalived's get_value_from_str() reads as a boolean."""

BARE_WORD = re.compile(r"""[^\s"'#!{}\\]+""")
"""A word that can be written unquoted and survives keepalived's tokeniser unchanged: no
whitespace, quotes, comment starters, braces or escapes."""
UINT = re.compile(r"[0-9]+")
"""An unsigned decimal integer as keepalived's read_unsigned() takes it."""
INT = re.compile(r"[-+]?[0-9]+")
"""A signed decimal integer as keepalived's read_int() takes it."""
DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
"""A non-negative decimal number, the form of keepalived's timer values."""


def fail(keyword: str, expected: str, got: object = None) -> ConfigError:
    """The error ``keyword: expected EXPECTED[, got GOT]``."""
    suffix = "" if got is None else f", got {got!r}"
    return ConfigError(f"{keyword}: expected {expected}{suffix}")


@dataclass(frozen=True)
class IntRange:
    """An integer field's range, e.g. ``priority`` 1..255."""

    lo: int
    hi: int

    @property
    def expected(self) -> str:
        """What the messages say is expected."""
        return "2 or 3" if (self.lo, self.hi) == (2, 3) else f"an integer {self.lo}..{self.hi}"

    def check(self, keyword: str, value: object, shown: object = None) -> int:
        """``value`` if it is an int in range; the error shows ``shown`` (default: value)."""
        # bool is an int subclass; True as a priority is certainly a mistake.
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise fail(keyword, self.expected, value if shown is None else shown)
        return value

    def check_opt(self, keyword: str, value: object) -> int | None:
        """Like :meth:`check`, with ``None`` meaning "not configured"."""
        return None if value is None else self.check(keyword, value)

    def from_text(self, keyword: str, text: str) -> int:
        """The integer a file's word stands for (signed only if the range is)."""
        if not (INT if self.lo < 0 else UINT).fullmatch(text):
            raise fail(keyword, self.expected, text)
        return self.check(keyword, int(text), text)


@dataclass(frozen=True)
class Seconds:
    """A time field held as a whole number of ``1/scale`` seconds in ``lo..hi``."""

    scale: int
    lo: int
    hi: int
    unit: str
    """The step as the messages write it, e.g. ``0.01``."""
    step_name: str = ""
    """The step's name, when it has one the user knows it by (``centiseconds``)."""

    @property
    def expected(self) -> str:
        """What the messages say is expected."""
        lo, hi = format_fixed(self.lo, self.scale), format_fixed(self.hi, self.scale)
        named = f" (whole {self.step_name})" if self.step_name else ""
        return f"seconds {lo}..{hi} in steps of {self.unit}{named}"

    def ticks(self, keyword: str, value: object, shown: object = None) -> int:
        """``value`` (seconds) as an integer count of 1/scale seconds, range-checked.

        Floats are accepted if they are within float noise of an exact multiple, so
        ``advert_int=0.1 * 3`` works; anything finer is refused rather than rounded
        because keepalived would silently round it differently.
        """
        got = value if shown is None else shown
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise fail(keyword, self.expected, got)
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(keyword, self.expected, got)
        # repr() gives the shortest decimal that round-trips, i.e. what the user typed.
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        scaled = exact * self.scale
        try:
            ticks = int(scaled.to_integral_value())
        except (InvalidOperation, OverflowError):
            raise fail(keyword, self.expected, got) from None
        if abs(scaled - ticks) > Decimal("1e-6") or not self.lo <= ticks <= self.hi:
            raise fail(keyword, self.expected, got)
        return ticks

    def seconds(self, keyword: str, value: object) -> float:
        """``value`` checked and normalised to a float of whole ticks."""
        return self.ticks(keyword, value) / self.scale

    def from_text(self, keyword: str, text: str) -> float:
        """The seconds a file's word stands for."""
        if not DECIMAL.fullmatch(text):
            raise fail(keyword, self.expected, text)
        return self.ticks(keyword, Decimal(text), text) / self.scale

    def format(self, value: float) -> str:
        """``value`` as the file writes it (the shortest exact decimal)."""
        return format_fixed(round(value * self.scale), self.scale)


@dataclass(frozen=True)
class Milliseconds:
    """A time field that the file writes in milliseconds with up to three decimals (keepalived's
    ``read_decimal_unsigned_strvec(..., 3)``: microsecond resolution), held in seconds in the
    model, as every other time is."""

    lo_us: int
    hi_us: int

    @property
    def expected(self) -> str:
        """What the messages say is expected."""
        lo, hi = format_fixed(self.lo_us, 1000), format_fixed(self.hi_us, 1000)
        return f"milliseconds {lo}..{hi} with at most 3 decimals"

    def ticks(self, keyword: str, value: object, shown: object = None) -> int:
        """``value`` (seconds) as whole microseconds, range-checked (see :meth:`Seconds.ticks`)."""
        micro = Seconds(10**6, self.lo_us, self.hi_us, "0.000001")
        try:
            return micro.ticks(keyword, value, shown)
        except ConfigError:
            raise fail(keyword, self.expected, value if shown is None else shown) from None

    def seconds(self, keyword: str, value: object) -> float:
        """``value`` (seconds) checked and normalised to a float of whole microseconds."""
        return self.ticks(keyword, value) / 10**6

    def from_text(self, keyword: str, text: str) -> float:
        """The seconds a file's word (milliseconds) stands for."""
        if not DECIMAL.fullmatch(text) or len(text.partition(".")[2]) > 3:
            raise fail(keyword, self.expected, text)
        return self.ticks(keyword, Decimal(text) / 1000, text) / 10**6

    def format(self, value: float) -> str:
        """``value`` (seconds) as the file writes it: milliseconds, shortest exact decimal."""
        return format_fixed(round(value * 10**6), 1000)


# --- field domains: each range and choice is declared once, here -------------------

VRID = IntRange(1, 255)
"""``virtual_router_id``."""
PRIORITY = IntRange(1, 255)
"""``priority``."""
VERSION = IntRange(2, 3)
"""``version`` and ``vrrp_version``."""
DEBUG = IntRange(0, 4)
"""``debug``."""
TTL = IntRange(0, 255)
"""A unicast peer's ``min_ttl`` and ``max_ttl``."""
TRACK_WEIGHT = IntRange(-253, 253)
"""A ``track_interface`` weight."""
GARP_DELAY = IntRange(0, UINT_MAX // 10**6)
"""``[vrrp_]garp_master_delay``: seconds, kept in microseconds by keepalived."""
GARP_REPEAT = IntRange(1, UINT_MAX)
"""``[vrrp_]garp_master_repeat`` and ``[vrrp_]garp_master_refresh_repeat``."""
GARP_REFRESH = IntRange(0, UINT_MAX)
"""``[vrrp_]garp_master_refresh``."""
GARP_LOWER_PRIO_REPEAT = IntRange(0, INT_MAX)
"""``garp_lower_prio_repeat``."""
ADVERT_INT = Seconds(100, 1, 255 * 100, "0.01", "centiseconds")
"""``advert_int``: centiseconds, the VRRPv3 wire unit."""
PREEMPT_DELAY = Seconds(10**6, 0, TIMER_MAX_SEC * 10**6, "0.000001")
"""``preempt_delay``."""
GARP_INTERVAL = Seconds(10**6, 1, UINT_MAX, "0.000001")
"""``vrrp_garp_interval`` and ``vrrp_gna_interval`` (0, the default, means none)."""
INSTANCE_GARP = {
    "garp_master_delay": GARP_DELAY,
    "garp_master_repeat": GARP_REPEAT,
    "garp_master_refresh": GARP_REFRESH,
    "garp_master_refresh_repeat": GARP_REPEAT,
    "garp_lower_prio_repeat": GARP_LOWER_PRIO_REPEAT,
}
"""The GARP counts of a ``vrrp_instance`` and their domains (``None``: use global_defs)."""
GLOBAL_GARP = {
    "vrrp_garp_master_delay": GARP_DELAY,
    "vrrp_garp_master_repeat": GARP_REPEAT,
    "vrrp_garp_master_refresh": GARP_REFRESH,
    "vrrp_garp_master_refresh_repeat": GARP_REPEAT,
}
"""The GARP counts of ``global_defs`` and their domains."""
BFD_INTERVAL = Milliseconds(1_000, UINT_MAX // 1000 * 1000)
"""A ``bfd_instance``'s ``min_rx`` and ``min_tx``: 1 ms .. UINT32_MAX/1000 ms (bfd.h)."""
BFD_IDLE_TX = Milliseconds(1_000_000, UINT_MAX // 1000 * 1000)
"""A ``bfd_instance``'s ``idle_tx``: at least 1000 ms (RFC 5880 §6.8.3's slow rate)."""
BFD_MULTIPLIER = IntRange(1, 255)
"""A ``bfd_instance``'s ``multiplier`` (Detect Mult)."""
BFD_TTL = IntRange(1, 255)
"""A ``bfd_instance``'s ``ttl`` / ``hoplimit``."""
BFD_MAX_HOPS = IntRange(-1, 255)
"""A ``bfd_instance``'s ``max_hops`` (-1, kept by keepalived in a uint8, means 255: no check)."""
BFD_NAME_MAX = 31
"""keepalived's ``BFD_INAME_MAX`` (32) less the terminating NUL."""
STATES = ("MASTER", "BACKUP")
"""The ``state`` words."""


def check_state(value: object) -> State | None:
    """``value`` if it is a ``state`` (or ``None``, not configured)."""
    if value not in (None, *STATES):
        raise fail("state", "MASTER or BACKUP", value)
    return value  # type: ignore[return-value]


def check_auth_type(value: object) -> Literal["PASS"]:
    """``value`` if it is the one ``auth_type`` modelled."""
    if value != "PASS":
        note = " (IPsec AH authentication is not supported)" if value == "AH" else ""
        raise ConfigError(f"{fail('auth_type', 'PASS', value).message}{note}")
    return "PASS"


def format_fixed(ticks: int, scale: int) -> str:
    """Render ``ticks / scale`` seconds as the shortest exact decimal ("0.05", "1")."""
    text = format(Decimal(ticks) / Decimal(scale), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def check_bool(keyword: str, value: object) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise fail(keyword, "True or False", value)
    return value


def check_opt_bool(keyword: str, value: object) -> bool | None:
    """Like :func:`check_bool`, with ``None`` meaning "not configured"."""
    return None if value is None else check_bool(keyword, value)


def check_word(keyword: str, value: object, what: str = "a single word") -> str:
    """``value`` if it is a word that needs no quoting (:data:`BARE_WORD`)."""
    if not isinstance(value, str) or not BARE_WORD.fullmatch(value):
        raise fail(keyword, f"{what} (no spaces, quotes, '#', '!', braces or backslashes)", value)
    return value


def check_opt_word(keyword: str, value: object, what: str = "a single word") -> str | None:
    """Like :func:`check_word`, with ``None`` meaning "not configured"."""
    return None if value is None else check_word(keyword, value, what)


def check_ifname(keyword: str, value: object) -> str:
    """``value`` if the kernel would take it as an interface name."""
    # The kernel's dev_name_valid(): 1..15 chars, no '/', ':' or whitespace.
    name = check_word(keyword, value, "an interface name")
    if len(name) >= IFNAMSIZ or "/" in name or ":" in name or name in (".", ".."):
        raise fail(keyword, "an interface name of 1..15 characters without '/' or ':'", value)
    return name


def check_opt_ifname(keyword: str, value: object) -> str | None:
    """Like :func:`check_ifname`, with ``None`` meaning "not configured"."""
    return None if value is None else check_ifname(keyword, value)


_T = TypeVar("_T")


def check_type(keyword: str, value: object, kind: type[_T]) -> _T:
    """``value`` if it is a ``kind``."""
    if not isinstance(value, kind):
        raise fail(keyword, f"a {kind.__name__}", value)
    return value


def coerce_ip(keyword: str, value: object) -> IPAddress:
    """An address from an address or its text (no ``%zone``)."""
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str) and "%" not in value:
        try:
            return ip_address(value)
        except ValueError:
            pass
    raise fail(keyword, "an IPv4 or IPv6 address", value)


def coerce_interface(keyword: str, value: object) -> IPInterface:
    """An address with prefix from an interface, an address or ``ADDR[/PREFIX]`` text."""
    if isinstance(value, IPv4Interface | IPv6Interface):
        return value
    if isinstance(value, IPv4Address | IPv6Address):
        return ip_interface(value)
    if isinstance(value, str):
        addr, slash, prefix = value.partition("/")
        # Only a numeric prefix length is keepalived syntax (no netmask form).
        if "%" not in addr and (not slash or UINT.fullmatch(prefix)):
            try:
                return ip_interface(value)
            except ValueError:
                pass
    raise fail(keyword, "an address ADDR[/PREFIX]", value)


def family_name(version: int) -> str:
    """``IPv4`` or ``IPv6``."""
    return f"IPv{version}"
