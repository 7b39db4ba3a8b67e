"""The BFD Control packet codec of RFC 5880 §4.1, with the session-free checks of §6.8.6.

This module turns a :class:`Control` into the 24 bytes of a BFD Control packet (the UDP
payload, never the UDP or IP header) and back. Decoding performs every reception check of
RFC 5880 §6.8.6 that needs no session state; each way a packet can be unacceptable is a
:class:`Discard` reason, raised as a :class:`BfdError` and tallied in :class:`Counters`.
Selecting the session by discriminator (the rest of §6.8.6's preamble) is
:class:`vrrp.bfd.session.Demux`'s job.

Authentication (§4.2-§4.4, §6.7) is not implemented: a packet with the A bit set is
discarded, as §6.8.6 requires of a session whose bfd.AuthType is zero.

Wire layout (RFC 5880 §4.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       My Discriminator                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                      Your Discriminator                       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Desired Min TX Interval                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                   Required Min RX Interval                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Required Min Echo RX Interval                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Auth Type   |   Auth Len    |    Authentication Data...     |  only with the A bit
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The three intervals are in microseconds. RFC 5881 carries the packet in UDP to port 3784
from a source port in 49152..65535, with TTL / Hop Limit 255 when unauthenticated.

Everything here is pure computation: no sockets, no privileges, and nothing from ``lab/``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from vrrp.counters import DiscardCounters

__all__ = [
    "CONTROL_PORT",
    "ECHO_PORT",
    "GTSM_TTL",
    "MAX_INTERVAL_US",
    "MIN_LENGTH",
    "MIN_LENGTH_AUTH",
    "SOURCE_PORTS",
    "VERSION",
    "BfdError",
    "Control",
    "Counters",
    "Diag",
    "Discard",
    "SessionState",
    "decode",
    "encode",
]

CONTROL_PORT = 3784
"""RFC 5881 §4: the UDP destination port of single-hop BFD Control packets."""

ECHO_PORT = 3785
"""RFC 5881 §4: the UDP destination port of BFD Echo packets (not implemented here)."""

SOURCE_PORTS = range(49152, 65536)
"""RFC 5881 §4: the source port MUST be in 49152..65535, the same for a session's lifetime."""

GTSM_TTL = 255
"""RFC 5881 §5: without authentication, Control packets are sent with TTL / Hop Limit 255,
and a received one with any other value MUST be discarded (the GTSM of RFC 5082)."""

VERSION = 1
"""RFC 5880 §4.1: the protocol version this codec speaks, and the only one it accepts."""

MIN_LENGTH = 24
"""RFC 5880 §6.8.6: the smallest acceptable Length with the A bit clear (the fixed part)."""

MIN_LENGTH_AUTH = 26
"""RFC 5880 §6.8.6: the smallest acceptable Length with the A bit set (Auth Type and Len)."""

MAX_INTERVAL_US = 0xFFFF_FFFF
"""The intervals are 32-bit microsecond fields (RFC 5880 §4.1): a little over 71 minutes."""

_FIXED = struct.Struct("!BBBBIIIII")
_MAX_U32 = 0xFFFF_FFFF

# The six flag bits of the second octet (RFC 5880 §4.1), most significant first: P F C A D M.
_P, _F, _C, _A, _D, _M = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


class Diag(enum.IntEnum):
    """The Diagnostic field of RFC 5880 §4.1: why the sender's session last changed state.

    Codes 9..31 are "reserved for future use" in RFC 5880 (IANA has since assigned some);
    a receiver must not discard a packet for carrying one, so ``Diag(n)`` for such a code
    returns a pseudo-member named ``RESERVED_<n>`` that compares equal to ``n`` (it is not a
    singleton: compare with ``==``, not ``is``).
    """

    NONE = 0
    """No Diagnostic."""
    CONTROL_DETECTION_EXPIRED = 1
    """Control Detection Time Expired (§6.8.4)."""
    ECHO_FAILED = 2
    """Echo Function Failed."""
    NEIGHBOR_DOWN = 3
    """Neighbor Signaled Session Down (§6.8.6)."""
    FORWARDING_PLANE_RESET = 4
    """Forwarding Plane Reset."""
    PATH_DOWN = 5
    """Path Down (§6.8.16: an outside signal that the underlying path failed)."""
    CONCATENATED_PATH_DOWN = 6
    """Concatenated Path Down."""
    ADMIN_DOWN = 7
    """Administratively Down (§6.8.16)."""
    REVERSE_CONCATENATED_PATH_DOWN = 8
    """Reverse Concatenated Path Down."""

    @classmethod
    def _missing_(cls, value: object) -> Diag | None:
        """Accept the reserved 5-bit codes as pseudo-members instead of failing to decode."""
        if isinstance(value, int) and not isinstance(value, bool) and 9 <= value <= 31:
            member = int.__new__(cls, value)
            member._name_ = f"RESERVED_{value}"
            member._value_ = value
            return member
        return None


class SessionState(enum.IntEnum):
    """The State (Sta) field of RFC 5880 §4.1, and bfd.SessionState (§6.2, §6.8.1)."""

    ADMIN_DOWN = 0
    """Held down administratively (§6.8.16); the remote end goes (and stays) Down."""
    DOWN = 1
    """Down, or just created (§6.8.1: the initial state)."""
    INIT = 2
    """The remote end has been heard, but it does not yet hear us (§6.2)."""
    UP = 3
    """Both ends hear each other (§6.2)."""


class Discard(enum.StrEnum):
    """Why a received Control packet was discarded. Values are stable counter names."""

    TTL = "ttl"
    """RFC 5881 §5: the TTL / Hop Limit was not 255 (checked only when the caller passes it)."""
    TRUNCATED = "truncated"
    """§6.8.6: the Length field exceeds the datagram, or the datagram is too short to hold
    even the 4-octet header carrying the Length field."""
    VERSION = "version"
    """§6.8.6: the version is not 1."""
    LENGTH = "length"
    """§6.8.6: the Length field is below 24 (A bit clear) or 26 (A bit set)."""
    DETECT_MULT = "detect_mult"
    """§6.8.6: Detect Mult is zero."""
    MULTIPOINT = "multipoint"
    """§6.8.6: the Multipoint (M) bit is set."""
    MY_DISCRIMINATOR = "my_discriminator"
    """§6.8.6: My Discriminator is zero."""
    YOUR_DISCRIMINATOR = "your_discriminator"
    """§6.8.6: Your Discriminator is zero while State is neither Down nor AdminDown."""
    AUTH = "auth"
    """§6.8.6: the A bit is set, and this implementation uses no authentication."""
    NO_SESSION = "no_session"
    """§6.8.6 demultiplexing: no session matches (see :class:`vrrp.bfd.session.Demux`)."""
    BINDING = "binding"
    """RFC 5881 §3: Your Discriminator names a session bound to another peer or interface."""


class BfdError(Exception):
    """A BFD Control packet was rejected.

    This is the only exception :func:`decode` raises for bad *bytes*: a receiver feeds it
    untrusted input and must be able to catch one type and count it. Bad *arguments* (a
    field out of range when building a :class:`Control`) raise ValueError/TypeError.
    """

    def __init__(self, reason: Discard, detail: str) -> None:
        """Record the machine-readable ``reason`` and a human-readable ``detail``."""
        # Passing both to Exception keeps the error picklable (multiprocessing, xdist).
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        """Render as ``reason: detail``, the form logs and reports use."""
        return f"{self.reason.value}: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """One BFD Control packet (RFC 5880 §4.1), without an authentication section.

    Intervals are the wire values, in microseconds. The dataclass accepts anything that can
    be *encoded*, including values a receiver must discard (version 2, Detect Mult 0, the M
    or A bit, a zero discriminator): a tester crafts exactly those. :func:`decode` is where
    acceptability is enforced. ``diag`` and ``state`` may be given as plain ints and are
    normalised to their enums.
    """

    version: int = VERSION
    """Protocol version, a 3-bit field; only 1 is acceptable on receive."""
    diag: Diag = Diag.NONE
    """bfd.LocalDiag of the sender (§6.8.1)."""
    state: SessionState = SessionState.DOWN
    """bfd.SessionState of the sender."""
    poll: bool = False
    """P: the sender is running a Poll Sequence (§6.5) and asks for a Final."""
    final: bool = False
    """F: this packet answers a Poll (§6.5). Never set together with P (§6.5)."""
    control_plane_independent: bool = False
    """C: the sender's BFD does not share fate with its control plane (§6.8.7)."""
    auth_present: bool = False
    """A: an authentication section follows; this codec discards such packets on receive."""
    demand: bool = False
    """D: the sender wants to operate in Demand mode (§6.6)."""
    multipoint: bool = False
    """M: reserved for point-to-multipoint extensions; MUST be zero (§4.1)."""
    detect_mult: int = 3
    """Detect Mult: the sender's bfd.DetectMult, 1..255 on an acceptable packet."""
    my_discriminator: int
    """My Discriminator: the sender's bfd.LocalDiscr, never 0 on an acceptable packet."""
    your_discriminator: int = 0
    """Your Discriminator: the sender's bfd.RemoteDiscr, 0 while it has not heard us."""
    desired_min_tx_us: int = 1_000_000
    """Desired Min TX Interval (µs): the sender's bfd.DesiredMinTxInterval; 0 is reserved."""
    required_min_rx_us: int = 1_000_000
    """Required Min RX Interval (µs): 0 means "send me no periodic packets" (§6.8.7)."""
    required_min_echo_rx_us: int = 0
    """Required Min Echo RX Interval (µs): 0, as this implementation has no Echo function."""

    def __post_init__(self) -> None:
        """Reject values that cannot be put on the wire; normalise the enums."""
        _check_range("version", self.version, 0, 7)
        _check_range("diag", self.diag, 0, 31)
        _check_range("state", self.state, 0, 3)
        # Enum members are ints, so a caller may pass either; store the enum so that repr
        # and comparisons read well.
        object.__setattr__(self, "diag", Diag(self.diag))
        object.__setattr__(self, "state", SessionState(self.state))
        for name in (
            "poll",
            "final",
            "control_plane_independent",
            "auth_present",
            "demand",
            "multipoint",
        ):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        _check_range("detect_mult", self.detect_mult, 0, 255)
        for name in (
            "my_discriminator",
            "your_discriminator",
            "desired_min_tx_us",
            "required_min_rx_us",
            "required_min_echo_rx_us",
        ):
            _check_range(name, getattr(self, name), 0, _MAX_U32)

    @property
    def desired_min_tx(self) -> float:
        """Desired Min TX Interval in seconds."""
        return self.desired_min_tx_us / 1e6

    @property
    def required_min_rx(self) -> float:
        """Required Min RX Interval in seconds."""
        return self.required_min_rx_us / 1e6


def _check_range(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; True as a discriminator is certainly a bug, so refuse it.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")


# --- encode -----------------------------------------------------------------------------


def encode(control: Control, *, length: int | None = None) -> bytes:
    """The 24 bytes of ``control``, big-endian as RFC 5880 §4.1 lays them out.

    ``length`` overrides the Length field (default 24), to craft packets a receiver must
    discard; the bytes returned are always the 24-octet fixed part, so a tester appends any
    authentication section itself.
    """
    if length is None:
        length = MIN_LENGTH
    _check_range("length", length, 0, 255)
    flags = (
        (_P if control.poll else 0)
        | (_F if control.final else 0)
        | (_C if control.control_plane_independent else 0)
        | (_A if control.auth_present else 0)
        | (_D if control.demand else 0)
        | (_M if control.multipoint else 0)
    )
    return _FIXED.pack(
        (control.version << 5) | int(control.diag),
        (int(control.state) << 6) | flags,
        control.detect_mult,
        length,
        control.my_discriminator,
        control.your_discriminator,
        control.desired_min_tx_us,
        control.required_min_rx_us,
        control.required_min_echo_rx_us,
    )


# --- decode -----------------------------------------------------------------------------


def decode(data: bytes, *, ttl: int | None = None, counters: Counters | None = None) -> Control:
    """Validate and parse a received BFD Control packet; raise :class:`BfdError` if unacceptable.

    ``data`` is the UDP payload. With ``ttl`` (the IPv4 TTL or IPv6 Hop Limit it arrived
    with) the RFC 5881 §5 check runs first. With ``counters``, the outcome is tallied there
    (received, then accepted or the reason).

    The checks run in RFC 5880 §6.8.6 order, so the reported reason is the first one a
    conforming receiver would hit: version, Length (minimum, then against the datagram),
    Detect Mult, M bit, My Discriminator, Your Discriminator versus State, A bit. §6.8.6
    selects the session between the Your Discriminator checks and the A bit check; that
    step needs a session table, so a packet that fails both the A bit check and the session
    lookup is reported here as :attr:`Discard.AUTH`. Octets beyond the Length field are
    ignored (link padding); octets beyond 24 within it are the authentication section,
    which only a packet with the A bit may carry, and that one is discarded.
    """
    if counters is not None:
        counters.received += 1
    try:
        control = _decode(bytes(data), ttl)
    except BfdError as err:
        if counters is not None:
            counters.count(err.reason)
        raise
    if counters is not None:
        counters.accepted += 1
    return control


def _decode(data: bytes, ttl: int | None) -> Control:
    if ttl is not None and ttl != GTSM_TTL:
        raise BfdError(Discard.TTL, f"TTL/hop limit {ttl}, must be {GTSM_TTL}")
    if len(data) < 4:
        # Not even the Length field arrived: the datagram is shorter than anything the
        # header could claim, which is the "Length greater than the payload" case.
        raise BfdError(Discard.TRUNCATED, f"{len(data)} octets, shorter than the 4-octet header")
    version = data[0] >> 5
    if version != VERSION:
        raise BfdError(Discard.VERSION, f"version {version}, must be {VERSION}")
    flags = data[1] & 0x3F
    auth = bool(flags & _A)
    length = data[3]
    minimum = MIN_LENGTH_AUTH if auth else MIN_LENGTH
    if length < minimum:
        raise BfdError(
            Discard.LENGTH,
            f"Length {length} is below {minimum} (A bit {'set' if auth else 'clear'})",
        )
    if length > len(data):
        raise BfdError(Discard.TRUNCATED, f"Length {length} exceeds the {len(data)}-octet payload")
    (
        vers_diag,
        sta_flags,
        detect_mult,
        _length,
        my_disc,
        your_disc,
        desired_tx,
        required_rx,
        required_echo_rx,
    ) = _FIXED.unpack_from(data)
    state = SessionState(sta_flags >> 6)
    if detect_mult == 0:
        raise BfdError(Discard.DETECT_MULT, "Detect Mult is 0")
    if flags & _M:
        raise BfdError(Discard.MULTIPOINT, "the Multipoint (M) bit is set")
    if my_disc == 0:
        raise BfdError(Discard.MY_DISCRIMINATOR, "My Discriminator is 0")
    if your_disc == 0 and state not in (SessionState.DOWN, SessionState.ADMIN_DOWN):
        raise BfdError(
            Discard.YOUR_DISCRIMINATOR,
            f"Your Discriminator is 0 in state {state.name}: only Down or AdminDown may omit it",
        )
    if auth:
        raise BfdError(Discard.AUTH, "the A bit is set and no authentication is configured")
    return Control(
        version=version,
        diag=Diag(vers_diag & 0x1F),
        state=state,
        poll=bool(flags & _P),
        final=bool(flags & _F),
        control_plane_independent=bool(flags & _C),
        auth_present=auth,
        demand=bool(flags & _D),
        multipoint=False,
        detect_mult=detect_mult,
        my_discriminator=my_disc,
        your_discriminator=your_disc,
        desired_min_tx_us=desired_tx,
        required_min_rx_us=required_rx,
        required_min_echo_rx_us=required_echo_rx,
    )


# --- counters ---------------------------------------------------------------------------


class Counters(DiscardCounters[Discard]):
    """Receive statistics: totals plus one counter per :class:`Discard` reason.

    Pass an instance to :func:`decode` to have it maintained, and call :meth:`count` for
    discards found after decoding (the reason :meth:`vrrp.bfd.session.Demux.lookup`
    returns, say). Such a packet counts as both accepted (by the codec) and discarded, so
    ``received == accepted + discarded`` holds only for the codec's own checks.
    """

    def __init__(self) -> None:
        """Every :class:`Discard` reason at zero."""
        super().__init__(Discard)
