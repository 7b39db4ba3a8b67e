"""The VRRP advertisement codec: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798, RFC 9568).

This module turns an :class:`Advert` into the bytes of a VRRP message (the IP payload, never
the IP header) and back. Decoding is the receive-side validation of RFC 3768 §7.1 and
RFC 5798/9568 §7.1: every way a message can be unacceptable is a :class:`Reason`, raised as
an :class:`AdvertError` and tallied in :class:`Counters`, because a daemon and the lab's
observer both need to say *why* an advert was discarded (conformance rows P02, P04-P07).

Wire layout (RFC 5798 §5.1; VRRPv2 differs only where noted)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |(rsvd) |     Max Adver Int     |          Checksum             |   v3
    |   Auth Type   |   Adver Int   |          Checksum             |   v2
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                   IPvX Address(es), Count of them               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Authentication Data, 8 octets (v2 only)               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Everything here is pure computation: no sockets, no privileges, and nothing from ``lab/``.
"""

from __future__ import annotations

import enum
import socket
import struct
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Literal, NamedTuple

from vrrp.counters import DiscardCounters

__all__ = [
    "ADVERTISEMENT",
    "AUTH_DATA_LEN",
    "VRRP_GROUP_V4",
    "VRRP_GROUP_V6",
    "VRRP_PROTO",
    "VRRP_TTL",
    "Advert",
    "AdvertError",
    "Auth",
    "ChecksumForm",
    "Counters",
    "IPAddress",
    "IPv4Datagram",
    "Reason",
    "compute_checksum",
    "decode",
    "encode",
    "parse_ipv4_datagram",
    "vmac",
]

IPAddress = IPv4Address | IPv6Address
"""Either address family; VRRPv3 carries one family per message, VRRPv2 only IPv4."""

VRRP_PROTO = 112
"""IP protocol number (IPv4 ``protocol`` / IPv6 ``next header``) assigned to VRRP."""

VRRP_TTL = 255
"""Required IPv4 TTL / IPv6 Hop Limit on every advert (P01, P02): proves it stayed on-link."""

VRRP_GROUP_V4 = IPv4Address("224.0.0.18")
"""The IPv4 multicast group adverts are sent to (RFC 5798 §5.1.1.2)."""

VRRP_GROUP_V6 = IPv6Address("ff02::12")
"""The IPv6 link-local multicast group adverts are sent to (RFC 5798 §5.1.2.2)."""

ADVERTISEMENT = 1
"""The only VRRP message type defined; any other type MUST be discarded."""

AUTH_DATA_LEN = 8
"""Length of the VRRPv2 Authentication Data trailer (RFC 3768 §5.3.10)."""

_HEADER_LEN = 8
_NO_AUTH = bytes(AUTH_DATA_LEN)
_V3_MAX_INTERVAL_CS = 0x0FFF  # 12-bit field
_V2_MAX_INTERVAL_S = 0xFF  # 8-bit field
_IPV4_MIN_HEADER = 20


class ChecksumForm(enum.StrEnum):
    """Which bytes a VRRP checksum covers.

    The string values are stable and meant for JSON reports (row P05).
    """

    RFC5798 = "rfc5798"
    """VRRPv3 including a pseudo-header, for IPv4 as well as IPv6.

    RFC 5798 §5.2.8 sums "the entire VRRP message starting with the version field and a
    'pseudo-header' as defined in Section 8.1 of [RFC2460]" without exempting IPv4, so
    keepalived, FRR and scapy all prepend the IPv4 pseudo-header (src, dst, zero, protocol
    112, VRRP length). This is the form that interoperates with the deployed base.
    """

    RFC9568 = "rfc9568"
    """VRRPv3 as RFC 9568 §5.2.8 defines it: no pseudo-header for IPv4.

    For IPv6 RFC 9568 keeps the pseudo-header, so on IPv6 this is the same sum as RFC5798.
    """

    RFC3768 = "rfc3768"
    """VRRPv2: the VRRP message only, including the Authentication Data (RFC 3768 §5.3.8)."""


class Reason(enum.StrEnum):
    """Why a received advert was discarded. Values are stable keys for counters and reports."""

    TTL = "ttl"
    """IPv4 TTL / IPv6 Hop Limit was not 255 (P02)."""
    VERSION = "version"
    """Version is not 2 or 3, is not the expected one, or is VRRPv2 over IPv6 (P04)."""
    TYPE = "type"
    """Type is not 1 (ADVERTISEMENT) (P04)."""
    LENGTH = "length"
    """Shorter than the fixed header, or not a whole number of addresses (P06)."""
    CHECKSUM = "checksum"
    """The checksum matches none of the forms allowed for this version and family (P05)."""
    VRID = "vrid"
    """VRID 0 (never valid), or a VRID not in the receiver's configured set."""
    ADDRESS_COUNT = "address_count"
    """Count IPvX Addrs is 0, or disagrees with the addresses the payload carries (P06)."""
    INTERVAL_ZERO = "interval_zero"
    """The advertisement interval is 0 (P07; RFC 9568 §7.1 erratum 8301)."""
    AUTH = "auth"
    """VRRPv2 Auth Type, or simple-text Authentication Data, differs from what is expected."""


class AdvertError(Exception):
    """A VRRP message (or the IPv4 datagram around it) was rejected.

    This is the only exception the decoding functions raise for bad *bytes*: a daemon feeds
    them untrusted input and must be able to catch one type and count it. Bad *arguments*
    (a programming error such as mixing address families) raise ValueError/TypeError.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        """Record the machine-readable ``reason`` and a human-readable ``detail``."""
        # Passing both to Exception keeps the error picklable (multiprocessing, xdist).
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        """Render as ``reason: detail``, the form logs and reports use."""
        return f"{self.reason.value}: {self.detail}"


class Auth(NamedTuple):
    """A VRRPv2 receiver's configured authentication (RFC 3768 §5.3.6)."""

    type: int
    """Auth Type: 0 none, 1 simple text password, 2 IP Authentication Header."""
    data: bytes = _NO_AUTH
    """The 8-octet password, compared only for type 1 (types 0 and 2 ignore the field)."""


@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP ADVERTISEMENT, version 2 or 3, for either address family.

    The interval is held once, in centiseconds, whatever the version: ``interval_cs`` is the
    VRRPv3 Max Adver Int field verbatim, and for VRRPv2 it is the Adver Int field (whole
    seconds) times 100, so it must be a multiple of 100. Use :attr:`adver_int` for the raw
    field value and :attr:`interval_s` for seconds.

    The dataclass accepts anything that can be *encoded*, including values a receiver must
    reject (type other than 1, interval 0, no addresses, non-zero reserved bits): the lab
    crafts exactly those to test other implementations. :func:`decode` is where acceptability
    is enforced.

    ``checksum`` and ``checksum_form`` are filled in by :func:`decode` only and are left out
    of equality, so a decoded advert compares equal to the one that was encoded.
    """

    vrid: int
    """Virtual Router Identifier, 1..255."""
    priority: int
    """0 (master resigning) .. 255 (address owner)."""
    addresses: tuple[IPAddress, ...]
    """The virtual addresses, all of one family (IPv4 only for VRRPv2)."""
    version: Literal[2, 3] = 3
    """VRRP version: 2 (RFC 3768, IPv4 only) or 3 (RFC 5798 / RFC 9568)."""
    interval_cs: int = 100
    """Advertisement interval in centiseconds (v3: 0..4095; v2: 0..25500 in steps of 100)."""
    type: int = ADVERTISEMENT
    """Message type, a 4-bit field; only 1 (ADVERTISEMENT) is valid on receive."""
    auth_type: int = 0
    """VRRPv2 Auth Type octet; must stay 0 for VRRPv3, which has no such field."""
    auth_data: bytes = _NO_AUTH
    """VRRPv2 Authentication Data, exactly 8 octets; must stay zero for VRRPv3."""
    reserved: int = 0
    """VRRPv3 4-bit reserved field: sent as 0, ignored on receive but kept for P04 reports."""
    checksum: int | None = field(default=None, compare=False)
    """The checksum as received; None for an advert built locally."""
    checksum_form: ChecksumForm | None = field(default=None, compare=False)
    """Which checksum form matched on receive; None for an advert built locally.

    For VRRPv3 over IPv6 both RFCs define the same sum and this reads RFC5798; only
    VRRPv3 over IPv4 tells the two forms apart.
    """

    def __post_init__(self) -> None:
        """Reject values that cannot be put on the wire at all."""
        if self.version not in (2, 3):
            raise ValueError(f"version must be 2 or 3, not {self.version!r}")
        _check_range("vrid", self.vrid, 1, 255)
        _check_range("priority", self.priority, 0, 255)
        _check_range("type", self.type, 0, 0x0F)
        if not isinstance(self.addresses, tuple):
            raise TypeError("addresses must be a tuple of IPv4Address/IPv6Address")
        if len(self.addresses) > 255:
            raise ValueError(
                f"at most 255 addresses fit the count field, got {len(self.addresses)}"
            )
        families = {type(a) for a in self.addresses}
        if not families <= {IPv4Address, IPv6Address}:
            raise TypeError("addresses must be IPv4Address or IPv6Address objects")
        if len(families) > 1:
            raise ValueError("addresses must all be of one family")
        if self.version == 3:
            _check_range("interval_cs", self.interval_cs, 0, _V3_MAX_INTERVAL_CS)
            _check_range("reserved", self.reserved, 0, 0x0F)
            # v3 dropped authentication (RFC 5798 §9); a non-default value here would be
            # silently lost on encode, so refuse it instead.
            if self.auth_type != 0 or self.auth_data != _NO_AUTH:
                raise ValueError("VRRPv3 has no authentication fields")
        else:
            _check_range("interval_cs", self.interval_cs, 0, _V2_MAX_INTERVAL_S * 100)
            if self.interval_cs % 100:
                raise ValueError("VRRPv2 Adver Int is whole seconds: interval_cs % 100 must be 0")
            if families == {IPv6Address}:
                raise ValueError("VRRPv2 is IPv4 only (RFC 3768)")
            if self.reserved != 0:
                raise ValueError("VRRPv2 has no reserved field")
            _check_range("auth_type", self.auth_type, 0, 255)
            if not isinstance(self.auth_data, bytes) or len(self.auth_data) != AUTH_DATA_LEN:
                raise ValueError(f"auth_data must be {AUTH_DATA_LEN} bytes")

    @classmethod
    def v3(
        cls,
        vrid: int,
        priority: int,
        addresses: Iterable[str | IPAddress],
        *,
        interval_cs: int = 100,
    ) -> Advert:
        """Build a VRRPv3 advert; addresses may be strings."""
        return cls(
            vrid=vrid,
            priority=priority,
            addresses=_addresses(addresses),
            version=3,
            interval_cs=interval_cs,
        )

    @classmethod
    def v2(
        cls,
        vrid: int,
        priority: int,
        addresses: Iterable[str | IPAddress],
        *,
        interval_s: int = 1,
        auth: Auth | None = None,
    ) -> Advert:
        """Build a VRRPv2 advert with the interval in whole seconds; addresses may be strings.

        A simple-text password shorter than 8 octets is zero-padded, as RFC 3768 §5.3.10
        (and keepalived) do.
        """
        auth = auth or Auth(0)
        return cls(
            vrid=vrid,
            priority=priority,
            addresses=_addresses(addresses),
            version=2,
            interval_cs=interval_s * 100,
            auth_type=auth.type,
            auth_data=auth.data.ljust(AUTH_DATA_LEN, b"\0"),
        )

    @property
    def family(self) -> Literal[4, 6] | None:
        """The address family of ``addresses`` (4 or 6), or None when there are none."""
        if not self.addresses:
            return None
        return 4 if isinstance(self.addresses[0], IPv4Address) else 6

    @property
    def adver_int(self) -> int:
        """The raw interval field: centiseconds for v3, whole seconds for v2."""
        return self.interval_cs if self.version == 3 else self.interval_cs // 100

    @property
    def interval_s(self) -> float:
        """The advertisement interval in seconds."""
        return self.interval_cs / 100


def _check_range(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; True as a VRID is certainly a bug, so refuse it.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")


def _addresses(items: Iterable[str | IPAddress]) -> tuple[IPAddress, ...]:
    return tuple(ip_address(a) if isinstance(a, str) else a for a in items)


def _as_ip(value: str | IPAddress, name: str) -> IPAddress:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str):
        return ip_address(value)
    raise TypeError(f"{name} must be an IP address, not {type(value).__name__}")


def _endpoints(src: str | IPAddress, dst: str | IPAddress) -> tuple[IPAddress, IPAddress]:
    s, d = _as_ip(src, "src"), _as_ip(dst, "dst")
    if s.version != d.version:
        raise ValueError(f"src {s} and dst {d} are of different address families")
    return s, d


# --- checksums --------------------------------------------------------------------------


def _ones_complement_sum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit big-endian words, folded to 16 bits."""
    if len(data) % 2:
        data += b"\0"  # RFC 1071: an odd trailing octet is padded with a zero octet.
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    if isinstance(src, IPv4Address):
        # The IPv4 pseudo-header of RFC 768/793 (src, dst, zero, protocol, length), which is
        # what keepalived, FRR and scapy prepend for VRRPv3 over IPv4. Its word sum equals
        # that of an RFC 2460 §8.1 layout filled with IPv4 addresses, so the choice of layout
        # does not change the checksum.
        return src.packed + dst.packed + struct.pack("!BBH", 0, VRRP_PROTO, length)
    # RFC 8200 §8.1: src, dst, 32-bit upper-layer length, 3 zero octets, next header.
    return src.packed + dst.packed + struct.pack("!I3xB", length, VRRP_PROTO)


def _sum_covered(
    message: bytes, src: IPAddress, dst: IPAddress, version: int, form: ChecksumForm
) -> int:
    """One's-complement sum over exactly the bytes ``form`` says the checksum covers."""
    if version == 2:
        # RFC 3768 §5.3.8: "the entire VRRP message starting with the version field"; there
        # is no pseudo-header in VRRPv2, whatever form was asked for.
        return _ones_complement_sum(message)
    if isinstance(src, IPv6Address) or form is ChecksumForm.RFC5798:
        return _ones_complement_sum(_pseudo_header(src, dst, len(message)) + message)
    # RFC 9568 §5.2.8: "For the IPv4 address family, the checksum calculation only includes
    # the VRRP message starting with the Version field and ending after the last IPv4
    # address (refer to Section 5.2)." and "For the IPv6 address family, the checksum
    # calculation also includes a prepended 'pseudo-header', as defined in Section 8.1 of
    # [RFC8200]." (https://www.rfc-editor.org/rfc/rfc9568#section-5.2.8)
    return _ones_complement_sum(message)


def compute_checksum(
    message: bytes,
    *,
    src: str | IPAddress,
    dst: str | IPAddress,
    version: Literal[2, 3],
    form: ChecksumForm = ChecksumForm.RFC5798,
) -> int:
    """The checksum ``message`` should carry, treating its checksum field (octets 6-7) as 0.

    ``form`` matters only for VRRPv3 over IPv4 (see :class:`ChecksumForm`). Useful to craft
    deliberately malformed adverts: edit the bytes, then recompute the checksum so only the
    intended defect remains.
    """
    if len(message) < _HEADER_LEN:
        raise ValueError(f"a VRRP message is at least {_HEADER_LEN} octets")
    if version == 3 and form is ChecksumForm.RFC3768:
        raise ValueError("ChecksumForm.RFC3768 is VRRPv2's; use RFC9568 for message-only v3")
    s, d = _endpoints(src, dst)
    zeroed = message[:6] + b"\0\0" + message[8:]
    return ~_sum_covered(zeroed, s, d, version, form) & 0xFFFF


# --- encode -----------------------------------------------------------------------------


def encode(
    advert: Advert,
    *,
    src: str | IPAddress,
    dst: str | IPAddress,
    checksum_form: ChecksumForm = ChecksumForm.RFC5798,
    checksum: int | None = None,
) -> bytes:
    """Serialise ``advert`` to the VRRP message (the IP payload, without the IP header).

    ``src``/``dst`` are the IP header's addresses; they enter the checksum through the
    pseudo-header. ``checksum_form`` selects the VRRPv3-over-IPv4 checksum: RFC5798
    (default, with the IPv4 pseudo-header, what keepalived/FRR/scapy send) or RFC9568
    (message only). IPv6 always includes the pseudo-header, and VRRPv2 never does, so for
    those the argument is ignored. ``checksum``, if given, is written verbatim instead of
    the computed value, for crafting bad-checksum adverts (P05).
    """
    s, d = _endpoints(src, dst)
    family = advert.family
    if family is not None and family != s.version:
        raise ValueError(f"IPv{family} addresses cannot be sent from IPv{s.version} {s}")
    if advert.version == 2 and s.version == 6:
        raise ValueError("VRRPv2 is IPv4 only (RFC 3768)")
    if advert.version == 3 and checksum_form is ChecksumForm.RFC3768:
        raise ValueError("ChecksumForm.RFC3768 is VRRPv2's; use RFC9568 for message-only v3")
    if checksum is not None:
        _check_range("checksum", checksum, 0, 0xFFFF)

    if advert.version == 3:
        second = (advert.reserved << 12) | advert.interval_cs
    else:
        second = (advert.auth_type << 8) | advert.adver_int
    header = struct.pack(
        "!BBBBHH",
        (advert.version << 4) | advert.type,
        advert.vrid,
        advert.priority,
        len(advert.addresses),
        second,
        0,  # checksum placeholder: the sum is computed with this field zero
    )
    body = b"".join(a.packed for a in advert.addresses)
    if advert.version == 2:
        body += advert.auth_data
    message = header + body
    if checksum is None:
        checksum = ~_sum_covered(message, s, d, advert.version, checksum_form) & 0xFFFF
    return message[:6] + struct.pack("!H", checksum) + message[8:]


# --- decode -----------------------------------------------------------------------------


def decode(
    payload: bytes,
    *,
    src: str | IPAddress,
    dst: str | IPAddress,
    ttl: int,
    version: Literal[2, 3] | None = None,
    vrids: Container[int] | None = None,
    auth: Auth | None = None,
    counters: Counters | None = None,
) -> Advert:
    """Validate and parse a received VRRP message; raise :class:`AdvertError` if unacceptable.

    ``payload`` is the IP payload, ``src``/``dst`` the IP addresses it came with and ``ttl``
    the IPv4 TTL or IPv6 Hop Limit. The optional receiver configuration narrows what is
    accepted: ``version`` (RFC 5798 §7.1 "MUST verify that the VRRP version is 3"), ``vrids``
    (the VRIDs configured on the receiving interface), ``auth`` (VRRPv2 only). With
    ``counters``, the outcome is tallied there (received, then accepted or the reason).

    Checks run in RFC §7.1 order so the reported reason is the one a conforming receiver
    would log first: TTL, length, version, type, address count, checksum, VRID, interval,
    authentication. For VRRPv3 over IPv4 either checksum form is accepted and the one that
    matched is recorded in :attr:`Advert.checksum_form` (RFC5798 is tried first, so in the
    unlikely case both match it wins).
    """
    s, d = _endpoints(src, dst)
    if counters is not None:
        counters.received += 1
    try:
        advert = _decode(bytes(payload), s, d, ttl, version, vrids, auth)
    except AdvertError as err:
        if counters is not None:
            counters.count(err.reason)
        raise
    if counters is not None:
        counters.accepted += 1
    return advert


def _decode(
    data: bytes,
    src: IPAddress,
    dst: IPAddress,
    ttl: int,
    want_version: int | None,
    vrids: Container[int] | None,
    auth: Auth | None,
) -> Advert:
    if ttl != VRRP_TTL:
        raise AdvertError(Reason.TTL, f"TTL/hop limit {ttl}, must be {VRRP_TTL}")
    if len(data) < _HEADER_LEN:
        raise AdvertError(Reason.LENGTH, f"{len(data)} octets, shorter than the 8-octet header")

    ver_type, vrid, priority, count, second, checksum = struct.unpack_from("!BBBBHH", data)
    ver, msg_type = ver_type >> 4, ver_type & 0x0F
    if ver not in (2, 3):
        raise AdvertError(Reason.VERSION, f"unknown version {ver}")
    if want_version is not None and ver != want_version:
        raise AdvertError(Reason.VERSION, f"version {ver}, configured for {want_version}")
    if ver == 2 and src.version == 6:
        raise AdvertError(Reason.VERSION, "VRRPv2 over IPv6 does not exist")
    if msg_type != ADVERTISEMENT:
        raise AdvertError(Reason.TYPE, f"unknown type {msg_type}")
    known_ver: Literal[2, 3] = 2 if ver == 2 else 3  # narrowed for the type checker

    # Length versus count. A payload that is not a whole number of addresses is a framing
    # error (LENGTH); a whole number that disagrees with the count field is ADDRESS_COUNT.
    addr_len = 4 if src.version == 4 else 16
    trailer = AUTH_DATA_LEN if ver == 2 else 0
    body = len(data) - _HEADER_LEN - trailer
    if body < 0 or body % addr_len:
        raise AdvertError(
            Reason.LENGTH,
            f"{len(data)} octets is not an 8-octet header, whole {addr_len}-octet addresses"
            + (" and 8 octets of authentication data" if trailer else ""),
        )
    if count == 0:
        raise AdvertError(Reason.ADDRESS_COUNT, "Count IPvX Addrs is 0")
    if body // addr_len != count:
        raise AdvertError(
            Reason.ADDRESS_COUNT,
            f"count field says {count} addresses, payload carries {body // addr_len}",
        )

    form = _verify_checksum(data, src, dst, ver)

    if vrid == 0:
        # VRID 0 is outside the protocol's range (1..255), configured or not.
        raise AdvertError(Reason.VRID, "VRID 0 is not valid")
    if vrids is not None and vrid not in vrids:
        raise AdvertError(Reason.VRID, f"VRID {vrid} is not configured on this interface")

    if ver == 3:
        reserved, interval_cs = second >> 12, second & _V3_MAX_INTERVAL_CS
        auth_type, auth_data = 0, _NO_AUTH
    else:
        reserved, interval_cs = 0, (second & 0xFF) * 100
        auth_type, auth_data = second >> 8, data[-AUTH_DATA_LEN:]
    if interval_cs == 0:
        # RFC 9568 §7.1 (erratum 8301) for v3. RFC 3768 is silent for v2, but an Adver Int of
        # 0 makes Master_Down_Interval just the skew, so no sane receiver can act on it.
        raise AdvertError(Reason.INTERVAL_ZERO, "advertisement interval is 0")

    if ver == 2 and auth is not None:
        if auth_type != auth.type:
            raise AdvertError(Reason.AUTH, f"Auth Type {auth_type}, configured for {auth.type}")
        # Only simple-text authentication carries a secret in this field (RFC 3768
        # §5.3.6.1/§5.3.10); for types 0 and 2 it is ignored on receive.
        if auth_type == 1 and auth_data != auth.data.ljust(AUTH_DATA_LEN, b"\0"):
            raise AdvertError(Reason.AUTH, "simple-text Authentication Data does not match")

    start = _HEADER_LEN
    addresses: tuple[IPAddress, ...]
    if addr_len == 4:
        addresses = tuple(IPv4Address(data[i : i + 4]) for i in range(start, start + count * 4, 4))
    else:
        addresses = tuple(
            IPv6Address(data[i : i + 16]) for i in range(start, start + count * 16, 16)
        )
    return Advert(
        vrid=vrid,
        priority=priority,
        addresses=addresses,
        version=known_ver,
        interval_cs=interval_cs,
        type=msg_type,
        auth_type=auth_type,
        auth_data=auth_data,
        reserved=reserved,
        checksum=checksum,
        checksum_form=form,
    )


def _verify_checksum(data: bytes, src: IPAddress, dst: IPAddress, ver: int) -> ChecksumForm:
    # Summing the message *with* its checksum field yields 0xFFFF exactly when it is valid
    # (RFC 1071 §1), which accepts both encodings of zero instead of recomputing and
    # comparing.
    if ver == 2:
        candidates = (ChecksumForm.RFC3768,)
    elif src.version == 6:
        candidates = (ChecksumForm.RFC5798,)  # both RFCs: pseudo-header
    else:
        # Deployed base first (keepalived, FRR), then the RFC 9568 message-only form.
        candidates = (ChecksumForm.RFC5798, ChecksumForm.RFC9568)
    for form in candidates:
        if _sum_covered(data, src, dst, ver, form) == 0xFFFF:
            return form
    names = " or ".join(f.value for f in candidates)
    received = struct.unpack_from("!H", data, 6)[0]
    raise AdvertError(Reason.CHECKSUM, f"checksum {received:#06x} is valid in no form ({names})")


# --- counters ---------------------------------------------------------------------------


class Counters(DiscardCounters[Reason]):
    """Receive statistics: totals plus one counter per discard :class:`Reason`.

    Pass an instance to :func:`decode` to have it maintained, or call :meth:`count` for
    discards found elsewhere (e.g. :func:`parse_ipv4_datagram`).
    """

    def __init__(self) -> None:
        """Every :class:`Reason` at zero."""
        super().__init__(Reason)


# --- IPv4 datagrams and link-layer helpers ----------------------------------------------


class IPv4Datagram(NamedTuple):
    """The parts of an IPv4 datagram a VRRP receiver needs."""

    src: IPv4Address
    """Source address: the sender's primary address for an advert (P09)."""
    dst: IPv4Address
    """Destination: 224.0.0.18, or a unicast peer (P03)."""
    ttl: int
    """Time to live, which must be 255 for VRRP (P02)."""
    proto: int
    """IP protocol number; 112 for VRRP."""
    payload: bytes
    """The bytes after the header (options skipped), cut at the header's Total Length."""


def parse_ipv4_datagram(data: bytes) -> IPv4Datagram:
    """Split an IPv4 datagram as a Linux raw socket delivers it (header included).

    Header options (IHL > 5) are skipped, and the payload is cut at Total Length so link
    padding never reaches the VRRP length checks. Anything that is not a complete,
    unfragmented IPv4 datagram raises :class:`AdvertError` with :attr:`Reason.LENGTH`. The
    header checksum is not verified: the kernel has already dropped datagrams whose header
    checksum is wrong before any raw socket sees them.
    """
    data = bytes(data)
    if len(data) < _IPV4_MIN_HEADER:
        raise AdvertError(Reason.LENGTH, f"{len(data)} octets, shorter than an IPv4 header")
    ver_ihl, _tos, total_len, _ident, frag, ttl, proto = struct.unpack_from("!BBHHHBB", data)
    if ver_ihl >> 4 != 4:
        raise AdvertError(Reason.LENGTH, f"IP version {ver_ihl >> 4}, not an IPv4 datagram")
    header_len = (ver_ihl & 0x0F) * 4
    if header_len < _IPV4_MIN_HEADER:
        raise AdvertError(Reason.LENGTH, f"IHL {header_len // 4} is below the minimum of 5")
    if not header_len <= total_len <= len(data):
        raise AdvertError(
            Reason.LENGTH,
            f"Total Length {total_len} outside {header_len}..{len(data)} (header..received)",
        )
    # More-fragments set or a non-zero offset: only part of the message is here. The
    # kernel reassembles before raw delivery, so this only happens with crafted input.
    if frag & 0x3FFF:
        raise AdvertError(Reason.LENGTH, "a fragment, not a whole datagram")
    return IPv4Datagram(
        src=IPv4Address(data[12:16]),
        dst=IPv4Address(data[16:20]),
        ttl=ttl,
        proto=proto,
        payload=data[header_len:total_len],
    )


def vmac(vrid: int, family: int) -> str:
    """The virtual router MAC address, lower-case and colon-separated (P08).

    ``family`` is 4 or 6 (or ``socket.AF_INET``/``AF_INET6``): 00:00:5e:00:01:{vrid} for
    IPv4 and 00:00:5e:00:02:{vrid} for IPv6 (RFC 5798 §7.3).
    """
    _check_range("vrid", vrid, 1, 255)
    if family in (4, socket.AF_INET):
        kind = 1
    elif family in (6, socket.AF_INET6):
        kind = 2
    else:
        raise ValueError(f"family must be 4, 6, AF_INET or AF_INET6, not {family!r}")
    return f"00:00:5e:00:{kind:02x}:{vrid:02x}"
