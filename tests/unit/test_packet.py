"""Tests for vrrp.packet: the VRRP advertisement codec.

Interoperability is checked against scapy's independent VRRP layers in both directions; the
receive checks are checked one Reason at a time; the decoder is fuzzed to prove that only
AdvertError ever escapes from untrusted bytes.
"""

from __future__ import annotations

import json
import pickle
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.utils import checksum as scapy_checksum

from vrrp.packet import (
    ADVERTISEMENT,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_PROTO,
    VRRP_TTL,
    Advert,
    AdvertError,
    Auth,
    ChecksumForm,
    Counters,
    IPAddress,
    Reason,
    compute_checksum,
    decode,
    encode,
    parse_ipv4_datagram,
    vmac,
)

# Scapy's first build is slow (lazy layer loading), so no per-example deadline; the example
# counts keep the whole file to a few seconds.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipv4s = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6s = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def adverts(
    draw: st.DrawFn, versions: tuple[int, ...] = (2, 3)
) -> tuple[Advert, IPAddress, IPAddress]:
    """A valid advert plus the src/dst it travels with (dst: the group or a unicast peer)."""
    version = draw(st.sampled_from(versions))
    family = 4 if version == 2 else draw(st.sampled_from((4, 6)))
    addrs = ipv4s if family == 4 else ipv6s
    group = VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6
    addresses = tuple(draw(st.lists(addrs, min_size=1, max_size=20)))
    common: dict[str, Any] = {
        "vrid": draw(st.integers(1, 255)),
        "priority": draw(st.integers(0, 255)),
        "addresses": addresses,
    }
    if version == 3:
        advert = Advert(version=3, interval_cs=draw(st.integers(1, 4095)), **common)
    else:
        advert = Advert(
            version=2,
            interval_cs=draw(st.integers(1, 255)) * 100,
            auth_type=draw(st.sampled_from((0, 1, 2))),
            auth_data=draw(st.binary(min_size=8, max_size=8)),
            **common,
        )
    src = draw(addrs)
    dst = draw(st.one_of(st.just(group), addrs))
    return advert, src, dst


def scapy_packet(advert: Advert, src: IPAddress, dst: IPAddress) -> Any:
    """The same advert built by scapy inside its IP header, scapy computing the checksum."""
    addrlist = [str(a) for a in advert.addresses]
    if advert.version == 2:
        layer = VRRP(
            version=2,
            type=advert.type,
            vrid=advert.vrid,
            priority=advert.priority,
            authtype=advert.auth_type,
            adv=advert.adver_int,
            addrlist=addrlist,
            auth1=int.from_bytes(advert.auth_data[:4], "big"),
            auth2=int.from_bytes(advert.auth_data[4:], "big"),
        )
    else:
        layer = VRRPv3(
            vrid=advert.vrid, priority=advert.priority, adv=advert.interval_cs, addrlist=addrlist
        )
    if isinstance(src, IPv4Address):
        return IP(src=str(src), dst=str(dst), ttl=255, proto=VRRP_PROTO) / layer
    return IPv6(src=str(src), dst=str(dst), hlim=255, nh=VRRP_PROTO) / layer


def ip_payload(wire: bytes, src: IPAddress) -> bytes:
    """Strip the (option-less) IP header scapy put in front."""
    return wire[20:] if isinstance(src, IPv4Address) else wire[40:]


def wrap(payload: bytes, src: IPAddress, dst: IPAddress) -> Any:
    """Put our payload behind a scapy-built IP header and let scapy dissect it."""
    if isinstance(src, IPv4Address):
        raw = bytes(IP(src=str(src), dst=str(dst), ttl=255, proto=VRRP_PROTO) / payload)
        return IP(raw)
    raw = bytes(IPv6(src=str(src), dst=str(dst), hlim=255, nh=VRRP_PROTO) / payload)
    return IPv6(raw)


# --- interoperability with scapy ---------------------------------------------------------


@FAST
@given(adverts())
def test_our_encoding_is_scapys_and_scapy_decodes_it(case: tuple[Advert, Any, Any]) -> None:
    """Default (RFC5798) encoding: byte-identical to scapy, checksum included."""
    advert, src, dst = case
    ours = encode(advert, src=src, dst=dst)
    assert ours == ip_payload(bytes(scapy_packet(advert, src, dst)), src)

    layer = wrap(ours, src, dst)[VRRP if advert.version == 2 else VRRPv3]
    assert layer.version == advert.version
    assert layer.type == ADVERTISEMENT
    assert layer.vrid == advert.vrid
    assert layer.priority == advert.priority
    assert layer.ipcount == len(advert.addresses)
    assert layer.adv == advert.adver_int
    assert [ip_address(a) for a in layer.addrlist] == list(advert.addresses)
    assert layer.chksum == struct.unpack("!H", ours[6:8])[0]
    if advert.version == 2:
        assert layer.authtype == advert.auth_type
        assert struct.pack("!II", layer.auth1, layer.auth2) == advert.auth_data


@FAST
@given(adverts())
def test_we_decode_what_scapy_builds(case: tuple[Advert, Any, Any]) -> None:
    """Scapy builds the datagram; we parse the IP header (IPv4) and decode the advert."""
    advert, src, dst = case
    wire = bytes(scapy_packet(advert, src, dst))
    if isinstance(src, IPv4Address):
        src_, dst_, ttl, proto, payload = parse_ipv4_datagram(wire)
        assert (src_, dst_, ttl, proto) == (src, dst, 255, VRRP_PROTO)
    else:
        payload, ttl = wire[40:], 255
    counters = Counters()
    got = decode(payload, src=src, dst=dst, ttl=ttl, counters=counters)
    assert got == advert
    assert got.checksum == struct.unpack("!H", payload[6:8])[0]
    expected_form = ChecksumForm.RFC3768 if advert.version == 2 else ChecksumForm.RFC5798
    assert got.checksum_form is expected_form
    assert counters.as_dict()["accepted"] == 1


@FAST
@given(adverts(versions=(3,)))
def test_rfc9568_form_is_the_plain_message_checksum_on_ipv4(case: tuple[Advert, Any, Any]) -> None:
    """RFC9568 on IPv4 equals scapy's bare checksum(); on IPv6 it equals the RFC5798 form."""
    advert, src, dst = case
    ours = encode(advert, src=src, dst=dst, checksum_form=ChecksumForm.RFC9568)
    value = struct.unpack("!H", ours[6:8])[0]
    if isinstance(src, IPv4Address):
        zeroed = ours[:6] + b"\0\0" + ours[8:]
        assert value == scapy_checksum(zeroed)
        # RFC 9568 RECEIVERS see it as such; a pseudo-header sum would not match it.
        assert decode(ours, src=src, dst=dst, ttl=255).checksum_form is ChecksumForm.RFC9568
    else:
        assert ours == encode(advert, src=src, dst=dst)
    assert value == compute_checksum(ours, src=src, dst=dst, version=3, form=ChecksumForm.RFC9568)


@FAST
@given(adverts())
def test_round_trip(case: tuple[Advert, Any, Any]) -> None:
    """decode(encode(a)) == a in every form, and records the form that was used."""
    advert, src, dst = case
    for form in (ChecksumForm.RFC5798, ChecksumForm.RFC9568):
        got = decode(
            encode(advert, src=src, dst=dst, checksum_form=form), src=src, dst=dst, ttl=255
        )
        assert got == advert
        if advert.version == 2:
            assert got.checksum_form is ChecksumForm.RFC3768
        elif isinstance(src, IPv4Address):
            assert got.checksum_form is form
        else:
            assert got.checksum_form is ChecksumForm.RFC5798  # the forms coincide on IPv6


# --- known answers -----------------------------------------------------------------------

# keepalived-style VRRPv3 over IPv4, unicast peer: VRID 1, priority 200, 100 cs, 10.200.51.10,
# from 10.200.51.32 to 10.200.51.33. Laid out by hand from RFC 5798 §5.1:
#   31            version 3, type 1
#   01 c8 01      VRID 1, priority 200, one address
#   0 064         reserved 0, Max Adver Int 100
#   ....          checksum
#   0a c8 33 0a   10.200.51.10
# Words of the message (checksum 0): 3101+c801+0064+0ac8+330a = 0x13738.
# IPv4 pseudo-header: 0ac8+3320 (src) + 0ac8+3321 (dst) + 0070 (proto 112) + 000c (len 12)
#   = 0x7c4d.
# RFC 5798 form: 0x13738+0x7c4d = 0x1b385 -> fold 0xb386 -> complement 0x4c79.
# RFC 9568 form: 0x13738 -> fold 0x3739 -> complement 0xc8c6.
KAT_SRC, KAT_DST = IPv4Address("10.200.51.32"), IPv4Address("10.200.51.33")
KAT_ADVERT = Advert.v3(1, 200, ["10.200.51.10"], interval_cs=100)
KAT_RFC5798 = bytes.fromhex("31 01 c8 01 00 64 4c 79 0a c8 33 0a")
KAT_RFC9568 = bytes.fromhex("31 01 c8 01 00 64 c8 c6 0a c8 33 0a")


def test_known_answer_rfc5798() -> None:
    """The hand-computed RFC 5798 encoding, which scapy also produces."""
    assert encode(KAT_ADVERT, src=KAT_SRC, dst=KAT_DST) == KAT_RFC5798
    assert ip_payload(bytes(scapy_packet(KAT_ADVERT, KAT_SRC, KAT_DST)), KAT_SRC) == KAT_RFC5798
    got = decode(KAT_RFC5798, src=KAT_SRC, dst=KAT_DST, ttl=255)
    assert got == KAT_ADVERT
    assert (got.checksum, got.checksum_form) == (0x4C79, ChecksumForm.RFC5798)


def test_known_answer_rfc9568() -> None:
    """The hand-computed RFC 9568 encoding; decode tells the two forms apart."""
    enc = encode(KAT_ADVERT, src=KAT_SRC, dst=KAT_DST, checksum_form=ChecksumForm.RFC9568)
    assert enc == KAT_RFC9568
    got = decode(KAT_RFC9568, src=KAT_SRC, dst=KAT_DST, ttl=255)
    assert (got.checksum, got.checksum_form) == (0xC8C6, ChecksumForm.RFC9568)


def test_known_answer_checksum_depends_on_pseudo_header() -> None:
    """The RFC5798 checksum binds the IP addresses; the RFC9568 one does not."""
    other = IPv4Address("10.200.51.34")
    with pytest.raises(AdvertError) as err:
        decode(KAT_RFC5798, src=KAT_SRC, dst=other, ttl=255)
    assert err.value.reason is Reason.CHECKSUM
    assert decode(KAT_RFC9568, src=KAT_SRC, dst=other, ttl=255).checksum_form is (
        ChecksumForm.RFC9568
    )


# --- one test per Reason -----------------------------------------------------------------

V4_SRC, V4_DST = IPv4Address("192.0.2.2"), VRRP_GROUP_V4
V6_SRC, V6_DST = IPv6Address("fe80::2"), VRRP_GROUP_V6
GOOD_V3 = Advert.v3(7, 100, ["192.0.2.1", "192.0.2.100"])
GOOD_V2 = Advert.v2(7, 100, ["192.0.2.1"], auth=Auth(1, b"secret"))


def fix_checksum(message: bytes, version: Literal[2, 3] = 3) -> bytes:
    """Recompute the checksum after editing bytes, so only the intended defect remains."""
    value = compute_checksum(message, src=V4_SRC, dst=V4_DST, version=version)
    return message[:6] + struct.pack("!H", value) + message[8:]


def edit(message: bytes, offset: int, value: int, version: Literal[2, 3] = 3) -> bytes:
    """Overwrite one octet and fix the checksum."""
    return fix_checksum(message[:offset] + bytes([value]) + message[offset + 1 :], version)


def v4(advert: Advert = GOOD_V3) -> bytes:
    """A good encoding from V4_SRC to the IPv4 group."""
    return encode(advert, src=V4_SRC, dst=V4_DST)


Case = tuple[bytes, dict[str, Any]]
BAD_INPUTS: dict[Reason, list[Callable[[], Case]]] = {
    Reason.TTL: [
        lambda: (v4(), {"ttl": 254}),
        lambda: (v4(), {"ttl": 1}),
    ],
    Reason.VERSION: [
        lambda: (edit(v4(), 0, 0x41), {}),  # version 4
        lambda: (edit(v4(), 0, 0x11), {}),  # version 1
        lambda: (v4(), {"version": 2}),  # a v3 advert at a v2-only receiver
        lambda: (v4(GOOD_V2), {"version": 3}),
        # a v2 header over IPv6: RFC 3768 is IPv4 only
        lambda: (bytes([0x21, 7, 100, 1, 0, 1, 0, 0]) + bytes(24), {"src": V6_SRC, "dst": V6_DST}),
    ],
    Reason.TYPE: [
        lambda: (edit(v4(), 0, 0x32), {}),
        lambda: (edit(v4(), 0, 0x30), {}),
    ],
    Reason.LENGTH: [
        lambda: (b"", {}),
        lambda: (v4()[:7], {}),
        lambda: (v4()[:-1], {}),  # truncated mid-address
        lambda: (v4() + b"\0", {}),  # one octet too many
        lambda: (v4(GOOD_V2)[:-3], {}),  # v2 authentication data cut short
        lambda: (
            encode(Advert.v3(7, 100, ["2001:db8::1"]), src=V6_SRC, dst=V6_DST)[:-4],
            {
                "src": V6_SRC,
                "dst": V6_DST,
            },
        ),
    ],
    Reason.CHECKSUM: [
        lambda: (v4()[:6] + bytes([v4()[6] ^ 0x01]) + v4()[7:], {}),
        lambda: (encode(GOOD_V3, src=V4_SRC, dst=V4_DST, checksum=0), {}),
        lambda: (v4(GOOD_V2)[:-1] + b"x", {}),  # v2 checksum covers authentication data
        lambda: (v4(), {"src": IPv4Address("192.0.2.3")}),  # pseudo-header binds src
    ],
    Reason.VRID: [
        lambda: (v4(), {"vrids": {1, 2, 3}}),
        lambda: (v4(), {"vrids": frozenset()}),
        lambda: (edit(v4(), 1, 0), {}),  # VRID 0, even with no configured set
    ],
    Reason.ADDRESS_COUNT: [
        lambda: (edit(v4(), 3, 3), {}),  # count 3, two addresses present
        lambda: (edit(v4(), 3, 1), {}),  # count 1, two addresses present
        lambda: (encode(Advert(vrid=7, priority=100, addresses=()), src=V4_SRC, dst=V4_DST), {}),
        lambda: (edit(v4(GOOD_V2), 3, 2, version=2), {}),
    ],
    Reason.INTERVAL_ZERO: [
        lambda: (v4(Advert.v3(7, 100, ["192.0.2.1"], interval_cs=0)), {}),
        lambda: (v4(Advert.v2(7, 100, ["192.0.2.1"], interval_s=0)), {}),
        # reserved bits set do not disguise a zero interval
        lambda: (fix_checksum(v4()[:4] + bytes([0xF0, 0x00]) + v4()[6:]), {}),
    ],
    Reason.AUTH: [
        lambda: (v4(GOOD_V2), {"auth": Auth(1, b"other")}),
        lambda: (v4(GOOD_V2), {"auth": Auth(0)}),
        lambda: (v4(Advert.v2(7, 100, ["192.0.2.1"])), {"auth": Auth(1, b"secret")}),
        lambda: (v4(Advert.v2(7, 100, ["192.0.2.1"], auth=Auth(2))), {"auth": Auth(1, b"x")}),
    ],
}


def test_every_reason_has_a_bad_input() -> None:
    """Adding a Reason without a test case fails here."""
    assert set(BAD_INPUTS) == set(Reason)


@pytest.mark.parametrize(
    ("reason", "index"),
    [(r, i) for r, makers in BAD_INPUTS.items() for i in range(len(makers))],
    ids=lambda v: v.value if isinstance(v, Reason) else str(v),
)
def test_bad_input_is_rejected_with_its_reason_and_counted(reason: Reason, index: int) -> None:
    """Each crafted defect raises its own Reason and increments only that counter."""
    payload, overrides = BAD_INPUTS[reason][index]()
    kwargs: dict[str, Any] = {"src": V4_SRC, "dst": V4_DST, "ttl": VRRP_TTL, **overrides}
    counters = Counters()
    with pytest.raises(AdvertError) as err:
        decode(payload, counters=counters, **kwargs)
    assert err.value.reason is reason, err.value
    assert counters[reason] == 1
    assert counters.received == 1
    assert counters.accepted == 0
    assert counters.discarded == 1


def test_the_good_inputs_behind_the_bad_ones_are_accepted() -> None:
    """Guard against the cases above failing for a reason other than their defect."""
    counters = Counters()
    decode(v4(), src=V4_SRC, dst=V4_DST, ttl=255, vrids={7}, version=3, counters=counters)
    decode(
        v4(GOOD_V2),
        src=V4_SRC,
        dst=V4_DST,
        ttl=255,
        auth=Auth(1, b"secret"),
        version=2,
        counters=counters,
    )
    # Auth type 0 and 2 ignore the data field.
    no_auth = Advert(
        vrid=7, priority=100, addresses=GOOD_V2.addresses, version=2, auth_data=b"garbage!"
    )
    decode(v4(no_auth), src=V4_SRC, dst=V4_DST, ttl=255, auth=Auth(0), counters=counters)
    assert counters.as_dict()["accepted"] == 3
    assert counters.discarded == 0


def test_reserved_bits_are_ignored_on_receive_but_reported() -> None:
    """RFC 5798 §5.2.5: reserved MUST be ignored on receipt; we still record it (P04)."""
    got = decode(edit(v4(), 4, 0xA0), src=V4_SRC, dst=V4_DST, ttl=255)
    assert (got.reserved, got.interval_cs) == (0xA, 100)  # 100 = 0x064: octet 4 was 0x00
    advert = Advert(vrid=7, priority=1, addresses=GOOD_V3.addresses, reserved=5, interval_cs=3)
    assert decode(v4(advert), src=V4_SRC, dst=V4_DST, ttl=255).reserved == 5


def test_counters_are_json_ready_and_keep_every_reason() -> None:
    """as_dict() lists every reason, even at zero, and serialises to JSON."""
    counters = Counters()
    assert counters.count(Reason.TTL) == 1
    assert counters.count(Reason.TTL) == 2
    snapshot = counters.as_dict()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["reasons"] == {r.value: (2 if r is Reason.TTL else 0) for r in Reason}
    assert snapshot["discarded"] == 2
    assert "ttl" in repr(counters)


def test_advert_error_is_informative_and_picklable() -> None:
    """The reason is machine-readable and survives pickling (worker processes)."""
    err = AdvertError(Reason.CHECKSUM, "bad")
    assert str(err) == "checksum: bad"
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.detail) == (Reason.CHECKSUM, "bad")


# --- robustness: untrusted bytes only ever raise AdvertError ---------------------------


@FUZZ
@given(
    payload=st.binary(max_size=96),
    family=st.sampled_from((4, 6)),
    ttl=st.sampled_from((255, 255, 255, 64, 0)),
    version=st.sampled_from((None, 2, 3)),
    vrids=st.one_of(st.none(), st.frozensets(st.integers(0, 255), max_size=4)),
    auth=st.one_of(st.none(), st.builds(Auth, st.integers(0, 3), st.binary(max_size=8))),
)
def test_fuzz_decode_raises_only_advert_error(
    payload: bytes, family: int, ttl: int, version: Any, vrids: Any, auth: Any
) -> None:
    """Arbitrary bytes: either an Advert or an AdvertError, never anything else."""
    src, dst = (V4_SRC, V4_DST) if family == 4 else (V6_SRC, V6_DST)
    try:
        advert = decode(payload, src=src, dst=dst, ttl=ttl, version=version, vrids=vrids, auth=auth)
    except AdvertError as err:
        assert isinstance(err.reason, Reason)
    else:
        assert isinstance(advert, Advert)


@FUZZ
@given(
    case=adverts(),
    # Mostly header edits and no length change, so the later checks get exercised too.
    edits=st.lists(
        st.tuples(st.integers(0, 7) | st.integers(0, 400), st.integers(0, 255)), max_size=3
    ),
    cut=st.just(0) | st.integers(-12, 12),
    refix=st.booleans(),
)
def test_fuzz_mutated_adverts_raise_only_advert_error(
    case: tuple[Advert, Any, Any], edits: list[tuple[int, int]], cut: int, refix: bool
) -> None:
    """Near-valid input reaches the deep checks; re-fixing the checksum gets past CHECKSUM."""
    advert, src, dst = case
    data = bytearray(encode(advert, src=src, dst=dst))
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    data = data[:cut] if cut < 0 else data + bytes(cut)
    if refix and len(data) >= 8:
        value = compute_checksum(bytes(data), src=src, dst=dst, version=advert.version)
        data[6:8] = struct.pack("!H", value)
    try:
        decode(bytes(data), src=src, dst=dst, ttl=255)
    except AdvertError as err:
        assert isinstance(err.reason, Reason)
        event(err.reason.value)  # --hypothesis-show-statistics shows which checks were hit
    else:
        event("accepted")


@FUZZ
@given(st.binary(max_size=80))
def test_fuzz_parse_ipv4_datagram_raises_only_advert_error(data: bytes) -> None:
    """Arbitrary bytes into the IPv4 parser: a datagram or AdvertError(LENGTH)."""
    try:
        parse_ipv4_datagram(data)
    except AdvertError as err:
        assert err.reason is Reason.LENGTH


@FUZZ
@given(st.binary(min_size=20, max_size=80))
def test_fuzz_ipv4_header_shaped_bytes(data: bytes) -> None:
    """Force version 4 so the IHL/length/fragment paths are the ones fuzzed."""
    data = bytes([0x40 | (data[0] & 0x0F)]) + data[1:]
    try:
        parsed = parse_ipv4_datagram(data)
    except AdvertError as err:
        assert err.reason is Reason.LENGTH
    else:
        assert len(parsed.payload) <= len(data) - 20


# --- the IPv4 datagram parser ------------------------------------------------------------


def ipv4_header(payload: bytes, *, options: bytes = b"", ttl: int = 255, frag: int = 0) -> bytes:
    """A hand-built IPv4 header (checksum left 0: the parser does not read it)."""
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    return (
        struct.pack("!BBHHHBBH", 0x40 | ihl, 0, total, 1, frag, ttl, VRRP_PROTO, 0)
        + V4_SRC.packed
        + V4_DST.packed
        + options
    )


def test_parse_ipv4_datagram_plain() -> None:
    """Addresses, TTL, protocol and payload come back as a named tuple."""
    payload = v4()
    got = parse_ipv4_datagram(ipv4_header(payload, ttl=254) + payload)
    assert got == (V4_SRC, V4_DST, 254, VRRP_PROTO, payload)
    assert got.src == V4_SRC and got.proto == VRRP_PROTO


def test_parse_ipv4_datagram_skips_options_and_trims_padding() -> None:
    """IHL > 5 options are skipped; link-layer padding past Total Length is dropped."""
    payload = v4()
    options = bytes([0x94, 0x04, 0, 0]) + bytes([1, 1, 1, 0])  # Router Alert, NOP, NOP, EOL
    got = parse_ipv4_datagram(ipv4_header(payload, options=options) + payload + bytes(6))
    assert got.payload == payload
    assert decode(got.payload, src=got.src, dst=got.dst, ttl=got.ttl) == GOOD_V3


def test_parse_ipv4_datagram_agrees_with_scapy_options() -> None:
    """A scapy-built datagram with IP options parses the same way."""
    from scapy.layers.inet import IPOption_Router_Alert

    payload = v4()
    wire = bytes(
        IP(src=str(V4_SRC), dst=str(V4_DST), ttl=255, proto=112, options=[IPOption_Router_Alert()])
        / payload
    )
    assert wire[0] & 0x0F == 6
    assert parse_ipv4_datagram(wire).payload == payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(19),
        ipv4_header(b"")[:19],
        bytes([0x60]) + ipv4_header(b"")[1:],  # IPv6 version nibble
        bytes([0x44]) + ipv4_header(b"")[1:],  # IHL 4
        bytes([0x46]) + ipv4_header(b"")[1:],  # IHL 6 but only 20 octets
        ipv4_header(b"x" * 10) + b"x" * 9,  # Total Length beyond what was received
        ipv4_header(b"x" * 4)[:2] + struct.pack("!H", 12) + ipv4_header(b"x" * 4)[4:] + b"x" * 4,
        ipv4_header(b"x", frag=0x2000) + b"x",  # more fragments
        ipv4_header(b"x", frag=0x0001) + b"x",  # non-zero offset
    ],
    ids=[
        "empty",
        "19-zeros",
        "short",
        "v6",
        "ihl4",
        "ihl6-short",
        "total-long",
        "total-short",
        "mf",
        "offset",
    ],
)
def test_parse_ipv4_datagram_rejects_garbage(data: bytes) -> None:
    """Anything but a whole IPv4 datagram is AdvertError(LENGTH)."""
    with pytest.raises(AdvertError) as err:
        parse_ipv4_datagram(data)
    assert err.value.reason is Reason.LENGTH


def test_parse_ipv4_datagram_allows_dont_fragment() -> None:
    """DF (0x4000) is not a fragment."""
    got = parse_ipv4_datagram(ipv4_header(b"x", frag=0x4000) + b"x")
    assert got.payload == b"x"


# --- constants, helpers, construction ----------------------------------------------------


def test_constants() -> None:
    """Protocol number, groups and TTL from RFC 5798 §5.1."""
    assert VRRP_PROTO == 112
    assert str(VRRP_GROUP_V4) == "224.0.0.18"
    assert str(VRRP_GROUP_V6) == "ff02::12"
    assert VRRP_TTL == 255
    assert ADVERTISEMENT == 1


@pytest.mark.parametrize(
    ("vrid", "family", "mac"),
    [
        (1, 4, "00:00:5e:00:01:01"),
        (255, 4, "00:00:5e:00:01:ff"),
        (51, socket.AF_INET, "00:00:5e:00:01:33"),
        (1, 6, "00:00:5e:00:02:01"),
        (16, socket.AF_INET6, "00:00:5e:00:02:10"),
    ],
)
def test_vmac(vrid: int, family: int, mac: str) -> None:
    """00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6 (P08)."""
    assert vmac(vrid, family) == mac


@pytest.mark.parametrize(("vrid", "family"), [(0, 4), (256, 6), (1, 5), (1, socket.AF_UNIX)])
def test_vmac_rejects_bad_arguments(vrid: int, family: int) -> None:
    """VRID outside 1..255 or an unknown family is a programming error."""
    with pytest.raises(ValueError, match=r"vrid|family"):
        vmac(vrid, family)


def test_interval_accessors() -> None:
    """interval_cs is always centiseconds; adver_int is the raw field."""
    v3 = Advert.v3(1, 100, ["10.0.0.1"], interval_cs=250)
    assert (v3.interval_cs, v3.adver_int, v3.interval_s, v3.family) == (250, 250, 2.5, 4)
    v2 = Advert.v2(1, 100, ["10.0.0.1"], interval_s=3)
    assert (v2.interval_cs, v2.adver_int, v2.interval_s) == (300, 3, 3.0)
    assert encode(v2, src=V4_SRC, dst=V4_DST)[5] == 3
    assert Advert(vrid=1, priority=1, addresses=()).family is None


def test_v2_simple_password_is_zero_padded() -> None:
    """Short passwords are padded to 8 octets, on both sides of the comparison."""
    advert = Advert.v2(1, 100, ["10.0.0.1"], auth=Auth(1, b"pw"))
    assert advert.auth_data == b"pw" + bytes(6)
    decode(v4(advert), src=V4_SRC, dst=V4_DST, ttl=255, auth=Auth(1, b"pw"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vrid": 0},
        {"vrid": 256},
        {"vrid": True},
        {"priority": 256},
        {"priority": -1},
        {"version": 4},
        {"type": 16},
        {"interval_cs": 4096},
        {"reserved": 16},
        {"addresses": ["10.0.0.1"]},  # a list, not a tuple
        {"addresses": ("10.0.0.1",)},  # strings, not address objects
        {"addresses": (IPv4Address("10.0.0.1"), IPv6Address("::1"))},
        {"addresses": (IPv4Address("10.0.0.1"),) * 256},
        {"auth_type": 1},  # v3 has no authentication
        {"version": 2, "interval_cs": 150},
        {"version": 2, "interval_cs": 25600},
        {"version": 2, "addresses": (IPv6Address("::1"),)},
        {"version": 2, "auth_data": b"short"},
        {"version": 2, "reserved": 1},
    ],
)
def test_advert_rejects_unencodable_values(kwargs: dict[str, Any]) -> None:
    """Construction refuses anything that cannot be put on the wire."""
    base: dict[str, Any] = {"vrid": 1, "priority": 100, "addresses": (IPv4Address("10.0.0.1"),)}
    with pytest.raises((ValueError, TypeError)):
        Advert(**{**base, **kwargs})


def test_encode_rejects_mismatched_families() -> None:
    """Addresses, src and dst must agree; v2 cannot go over IPv6."""
    with pytest.raises(ValueError, match="families"):
        encode(GOOD_V3, src=V4_SRC, dst=V6_DST)
    with pytest.raises(ValueError, match="IPv4"):
        encode(GOOD_V3, src=V6_SRC, dst=V6_DST)
    with pytest.raises(ValueError, match="IPv4 only"):
        encode(Advert(vrid=1, priority=1, addresses=(), version=2), src=V6_SRC, dst=V6_DST)
    with pytest.raises(ValueError, match="RFC3768"):
        encode(GOOD_V3, src=V4_SRC, dst=V4_DST, checksum_form=ChecksumForm.RFC3768)
    with pytest.raises(ValueError, match="checksum"):
        encode(GOOD_V3, src=V4_SRC, dst=V4_DST, checksum=0x10000)


def test_encode_accepts_string_endpoints() -> None:
    """src/dst may be given as strings."""
    assert encode(GOOD_V3, src="192.0.2.2", dst="224.0.0.18") == v4()
    assert decode(v4(), src="192.0.2.2", dst="224.0.0.18", ttl=255) == GOOD_V3


def test_v2_ignores_the_v3_checksum_form() -> None:
    """VRRPv2 has exactly one checksum form, the message alone."""
    a = encode(GOOD_V2, src=V4_SRC, dst=V4_DST, checksum_form=ChecksumForm.RFC5798)
    b = encode(GOOD_V2, src=V4_SRC, dst=V4_DST, checksum_form=ChecksumForm.RFC9568)
    assert a == b
    assert struct.unpack("!H", a[6:8])[0] == scapy_checksum(a[:6] + b"\0\0" + a[8:])
