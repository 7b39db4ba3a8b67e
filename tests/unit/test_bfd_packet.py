"""Unit tests of the BFD Control packet codec (vrrp/bfd/packet.py): no privileges, no sockets.

Round trips, one test per RFC 5880 §6.8.6 discard reason, hand-built bytes from the §4.1
layout, and a cross-check against scapy's independent BFD layer (scapy.contrib.bfd).
"""

from __future__ import annotations

import dataclasses
import pickle
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.contrib.bfd import BFD, OptionalAuth

from vrrp.bfd.packet import (
    CONTROL_PORT,
    GTSM_TTL,
    SOURCE_PORTS,
    BfdError,
    Control,
    Counters,
    Diag,
    Discard,
    SessionState,
    decode,
    encode,
)

UP = SessionState.UP
DOWN = SessionState.DOWN


def control(**overrides: object) -> Control:
    """An acceptable Up packet, with overrides."""
    fields: dict[str, object] = {
        "state": UP,
        "detect_mult": 3,
        "my_discriminator": 0x01020304,
        "your_discriminator": 0x0A0B0C0D,
        "desired_min_tx_us": 50_000,
        "required_min_rx_us": 100_000,
    }
    fields.update(overrides)
    return Control(**fields)  # type: ignore[arg-type]


def discard_reason(data: bytes, **kwargs: object) -> Discard:
    with pytest.raises(BfdError) as info:
        decode(data, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


# --- constants and layout -----------------------------------------------------------------


def test_rfc5881_constants() -> None:
    assert CONTROL_PORT == 3784
    assert SOURCE_PORTS.start == 49152 and SOURCE_PORTS.stop == 65536
    assert 65535 in SOURCE_PORTS and 49151 not in SOURCE_PORTS
    assert GTSM_TTL == 255


def test_enum_values_are_the_rfc_codes() -> None:
    assert [int(d) for d in Diag] == list(range(9))
    assert Diag.CONTROL_DETECTION_EXPIRED == 1
    assert Diag.NEIGHBOR_DOWN == 3
    assert Diag.ADMIN_DOWN == 7
    assert [int(s) for s in SessionState] == [0, 1, 2, 3]
    assert SessionState.ADMIN_DOWN == 0 and SessionState.UP == 3


def test_encode_matches_hand_built_bytes() -> None:
    """The §4.1 layout built by hand: Vers(3) Diag(5) | Sta(2) P F C A D M | mult | len."""
    packet = control(diag=Diag.NEIGHBOR_DOWN, poll=True, control_plane_independent=True)
    expected = bytes([(1 << 5) | 3, (3 << 6) | 0x20 | 0x08, 3, 24]) + struct.pack(
        "!IIIII", 0x01020304, 0x0A0B0C0D, 50_000, 100_000, 0
    )
    assert encode(packet) == expected
    assert len(expected) == 24


@pytest.mark.parametrize(
    ("flag", "bit"),
    [
        ("poll", 0x20),
        ("final", 0x10),
        ("control_plane_independent", 0x08),
        ("auth_present", 0x04),
        ("demand", 0x02),
        ("multipoint", 0x01),
    ],
)
def test_each_flag_has_its_bit(flag: str, bit: int) -> None:
    assert encode(control(state=DOWN, **{flag: True}))[1] == (1 << 6) | bit


# --- round trips --------------------------------------------------------------------------


def test_round_trip() -> None:
    packet = control(diag=Diag.PATH_DOWN, final=True, demand=True, required_min_echo_rx_us=7)
    assert decode(encode(packet)) == packet


def test_reserved_diag_codes_decode_instead_of_failing() -> None:
    """Codes 9..31 are reserved in RFC 5880, not a reason to discard."""
    data = bytearray(encode(control()))
    data[0] = (1 << 5) | 31
    decoded = decode(bytes(data))
    assert decoded.diag == 31 and decoded.diag.name == "RESERVED_31"
    assert encode(decoded) == bytes(data)


def test_trailing_octets_beyond_length_are_ignored() -> None:
    packet = control()
    assert decode(encode(packet) + b"\0\0\0\0") == packet


def test_intervals_in_seconds() -> None:
    packet = control()
    assert packet.desired_min_tx == 0.05 and packet.required_min_rx == 0.1


@st.composite
def acceptable_controls(draw: st.DrawFn) -> Control:
    state = draw(st.sampled_from(SessionState))
    low_your = 0 if state in (SessionState.DOWN, SessionState.ADMIN_DOWN) else 1
    u32 = st.integers(0, 0xFFFF_FFFF)
    poll = draw(st.booleans())
    return Control(
        diag=draw(st.integers(0, 31)),  # type: ignore[arg-type]
        state=state,
        poll=poll,
        final=draw(st.booleans()) and not poll,
        control_plane_independent=draw(st.booleans()),
        demand=draw(st.booleans()),
        detect_mult=draw(st.integers(1, 255)),
        my_discriminator=draw(st.integers(1, 0xFFFF_FFFF)),
        your_discriminator=draw(st.integers(low_your, 0xFFFF_FFFF)),
        desired_min_tx_us=draw(u32),
        required_min_rx_us=draw(u32),
        required_min_echo_rx_us=draw(u32),
    )


@given(acceptable_controls())
def test_round_trip_property(packet: Control) -> None:
    data = encode(packet)
    assert len(data) == 24
    assert decode(data) == packet


@given(st.binary(max_size=40))
def test_decode_raises_only_bfd_error(data: bytes) -> None:
    try:
        decoded = decode(data)
    except BfdError:
        return
    assert encode(decoded) == data[:24]


# --- discards (RFC 5880 §6.8.6, RFC 5881 §5) -----------------------------------------------


def test_ttl_checked_when_given() -> None:
    data = encode(control())
    assert decode(data, ttl=255) == control()
    assert discard_reason(data, ttl=254) is Discard.TTL


def test_version_not_1() -> None:
    data = bytearray(encode(control()))
    data[0] = (2 << 5) | (data[0] & 0x1F)
    assert discard_reason(bytes(data)) is Discard.VERSION
    assert discard_reason(encode(control(version=0))) is Discard.VERSION


def test_length_below_24() -> None:
    assert discard_reason(encode(control(), length=23)) is Discard.LENGTH


def test_length_below_26_with_a_bit() -> None:
    packet = control(auth_present=True)
    # 25 octets carried, Length 25: long enough for the datagram, too short for the A bit.
    assert discard_reason(encode(packet, length=25) + b"\x01") is Discard.LENGTH


def test_length_beyond_datagram() -> None:
    assert discard_reason(encode(control(), length=30)) is Discard.TRUNCATED
    assert discard_reason(encode(control())[:23]) is Discard.TRUNCATED
    assert discard_reason(b"\x20\xc0") is Discard.TRUNCATED
    assert discard_reason(b"") is Discard.TRUNCATED


def test_detect_mult_zero() -> None:
    assert discard_reason(encode(control(detect_mult=0))) is Discard.DETECT_MULT


def test_multipoint_bit() -> None:
    assert discard_reason(encode(control(multipoint=True))) is Discard.MULTIPOINT


def test_my_discriminator_zero() -> None:
    assert discard_reason(encode(control(my_discriminator=0))) is Discard.MY_DISCRIMINATOR


@pytest.mark.parametrize("state", [SessionState.INIT, SessionState.UP])
def test_your_discriminator_zero_outside_down(state: SessionState) -> None:
    data = encode(control(state=state, your_discriminator=0))
    assert discard_reason(data) is Discard.YOUR_DISCRIMINATOR


@pytest.mark.parametrize("state", [SessionState.DOWN, SessionState.ADMIN_DOWN])
def test_your_discriminator_zero_allowed_in_down(state: SessionState) -> None:
    packet = control(state=state, your_discriminator=0)
    assert decode(encode(packet)) == packet


def test_a_bit_without_authentication() -> None:
    """A well-formed simple-password section (type 1, len 4, key id, 1 octet) still goes."""
    data = encode(control(auth_present=True), length=28) + bytes([1, 4, 1, ord("x")])
    assert discard_reason(data) is Discard.AUTH


def test_checks_run_in_rfc_order() -> None:
    """Version, Detect Mult, M, My Discriminator, Your Discriminator, A: fixing one failure
    at a time reveals the next, in §6.8.6 order."""
    current = control(
        version=3,
        detect_mult=0,
        multipoint=True,
        my_discriminator=0,
        your_discriminator=0,
        auth_present=True,
    )
    steps: list[tuple[dict[str, object], Discard | None]] = [
        ({}, Discard.VERSION),
        ({"version": 1}, Discard.DETECT_MULT),
        ({"detect_mult": 3}, Discard.MULTIPOINT),
        ({"multipoint": False}, Discard.MY_DISCRIMINATOR),
        ({"my_discriminator": 9}, Discard.YOUR_DISCRIMINATOR),
        ({"your_discriminator": 9}, Discard.AUTH),
        ({"auth_present": False}, None),
    ]
    for change, reason in steps:
        current = dataclasses.replace(current, **change)  # type: ignore[arg-type]
        data = encode(current, length=26) + b"\0\0"
        if reason is None:
            assert decode(data) == current
        else:
            assert discard_reason(data) is reason, change


def test_error_text_and_pickling() -> None:
    with pytest.raises(BfdError) as info:
        decode(encode(control(detect_mult=0)))
    assert str(info.value).startswith("detect_mult: ")
    clone = pickle.loads(pickle.dumps(info.value))
    assert clone.reason is Discard.DETECT_MULT


def test_counters_tally_by_reason() -> None:
    counters = Counters()
    decode(encode(control()), counters=counters)
    for bad in (encode(control(detect_mult=0)), encode(control(detect_mult=0)), b""):
        with pytest.raises(BfdError):
            decode(bad, counters=counters)
    counters.count(Discard.NO_SESSION)
    assert counters.received == 4 and counters.accepted == 1
    assert counters[Discard.DETECT_MULT] == 2 and counters[Discard.TRUNCATED] == 1
    assert counters.discarded == 4
    snapshot = counters.as_dict()
    assert snapshot["reasons"] == {
        **dict.fromkeys((r.value for r in Discard), 0),
        "detect_mult": 2,
        "truncated": 1,
        "no_session": 1,
    }
    assert "detect_mult" in repr(counters)


# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", 8),
        ("diag", 32),
        ("state", 4),
        ("detect_mult", 256),
        ("my_discriminator", 1 << 32),
        ("required_min_rx_us", -1),
    ],
)
def test_unencodable_values_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError):
        control(**{field: value})


def test_types_are_checked() -> None:
    with pytest.raises(TypeError):
        control(my_discriminator=True)
    with pytest.raises(TypeError):
        control(poll=1)
    with pytest.raises(TypeError):
        control(desired_min_tx_us=1.5)


def test_ints_are_normalised_to_enums() -> None:
    packet = control(diag=7, state=0)
    assert packet.diag is Diag.ADMIN_DOWN and packet.state is SessionState.ADMIN_DOWN


# --- scapy cross-check ----------------------------------------------------------------------


def _scapy(packet: Control) -> BFD:
    flags = "".join(
        letter
        for letter, on in (
            ("P", packet.poll),
            ("F", packet.final),
            ("C", packet.control_plane_independent),
            ("D", packet.demand),
        )
        if on
    )
    return BFD(
        version=packet.version,
        diag=int(packet.diag),
        sta=int(packet.state),
        flags=flags,
        detect_mult=packet.detect_mult,
        my_discriminator=packet.my_discriminator,
        your_discriminator=packet.your_discriminator,
        min_tx_interval=packet.desired_min_tx_us,
        min_rx_interval=packet.required_min_rx_us,
        echo_rx_interval=packet.required_min_echo_rx_us,
    )


@given(acceptable_controls())
def test_encode_agrees_with_scapy(packet: Control) -> None:
    assert encode(packet) == bytes(_scapy(packet))


@given(acceptable_controls())
def test_scapy_parses_our_bytes(packet: Control) -> None:
    parsed = BFD(encode(packet))
    assert parsed.version == 1
    assert parsed.diag == packet.diag and parsed.sta == packet.state
    flags = parsed.flags
    assert [bool(getattr(flags, letter)) for letter in "PFCADM"] == [
        packet.poll,
        packet.final,
        packet.control_plane_independent,
        False,
        packet.demand,
        False,
    ]
    assert parsed.detect_mult == packet.detect_mult and parsed.len == 24
    assert parsed.my_discriminator == packet.my_discriminator
    assert parsed.your_discriminator == packet.your_discriminator
    assert parsed.min_tx_interval == packet.desired_min_tx_us
    assert parsed.min_rx_interval == packet.required_min_rx_us
    assert parsed.echo_rx_interval == packet.required_min_echo_rx_us


def test_scapy_built_m_and_a_packets_are_discarded() -> None:
    """The two flags a receiver must discard on, set through scapy (A with a real simple
    password section, so scapy computes a Length of 24 + 3 + 6)."""
    multipoint = bytes(BFD(sta=1, flags="M", my_discriminator=1, your_discriminator=0))
    assert multipoint[1] == encode(control(state=DOWN, multipoint=True))[1]
    assert discard_reason(multipoint) is Discard.MULTIPOINT
    auth = bytes(
        BFD(
            sta=3,
            flags="A",
            my_discriminator=1,
            your_discriminator=2,
            optional_auth=OptionalAuth(auth_type=1, auth_key=b"secret"),
        )
    )
    assert auth[3] == len(auth) == 33
    assert discard_reason(auth) is Discard.AUTH
    assert discard_reason(auth[:-1]) is Discard.TRUNCATED
