"""BFD Control packets in a capture: decoded as they are on the wire, with why a receiver would
drop one, and their state changes on the timeline."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from lab.capture_events import BfdControl, CaptureEvent, decode_frame, describe
from lab.timeline import from_capture
from vrrp.bfd.packet import Control, Diag, SessionState, encode

MACS = {"src": "fa:16:3e:00:00:0b", "dst": "fa:16:3e:00:00:0c"}


def frame(control: bytes, *, ttl: int = 255, v6: bool = False, dport: int = 3784) -> bytes:
    l3 = (
        IPv6(src="fe80::b", dst="fe80::c", hlim=ttl)
        if v6
        else IP(src="192.0.2.11", dst="192.0.2.12", ttl=ttl)
    )
    return bytes(Ether(**MACS) / l3 / UDP(sport=49152, dport=dport) / control)


def up(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "state": SessionState.UP,
        "my_discriminator": 0x11,
        "your_discriminator": 0x22,
        "detect_mult": 3,
        "desired_min_tx_us": 50_000,
        "required_min_rx_us": 50_000,
        "poll": True,
    }
    values.update(overrides)
    return encode(Control(**values))  # type: ignore[arg-type]


def test_a_bfd_control_packet_is_decoded_with_its_fields() -> None:
    fields = decode_frame(frame(up()))
    assert fields is not None and fields.pop("class") is BfdControl
    assert fields["state"] == "Up" and fields["poll"] and not fields["final"]
    assert (fields["src_port"], fields["dst_port"], fields["ttl"]) == (49152, 3784, 255)
    assert (fields["my_discriminator"], fields["your_discriminator"]) == (0x11, 0x22)
    assert fields["desired_min_tx"] == fields["required_min_rx"] == 0.05
    assert fields["detect_mult"] == 3 and fields["discard"] is None


def test_over_ipv6_and_multihop() -> None:
    fields = decode_frame(frame(up(), v6=True, dport=4784))
    assert fields is not None and fields["class"] is BfdControl
    assert fields["src_ip"] == "fe80::b" and fields["dst_port"] == 4784


def test_what_a_receiver_would_drop_is_kept_and_says_why() -> None:
    low_ttl = decode_frame(frame(up(), ttl=64))
    assert low_ttl is not None and low_ttl["discard"] == "ttl" and low_ttl["state"] == "Up"
    bad = bytearray(up())
    bad[0] = (0 << 5) | (bad[0] & 0x1F)  # version 0
    version = decode_frame(frame(bytes(bad)))
    assert version is not None and version["version"] == 0 and version["discard"] == "version"
    zero = decode_frame(frame(up(your_discriminator=0)))  # Up but no Your Discriminator
    assert zero is not None and zero["discard"] == "your_discriminator"


def test_short_or_other_udp_is_not_bfd() -> None:
    assert decode_frame(frame(up()[:20])) is None
    other = decode_frame(frame(up(), dport=3785))
    assert other is None or other["class"] is not BfdControl


def event(at: float, src: str, state: SessionState, diag: Diag = Diag.NONE) -> BfdControl:
    fields = decode_frame(frame(up(state=state, diag=diag, poll=False)))
    assert fields is not None
    fields.pop("class")
    fields["src_ip"] = src
    return BfdControl(time=at, sender=src, **fields)


def test_the_timeline_shows_each_change_of_state_once() -> None:
    evs: list[CaptureEvent] = [
        event(1.00, "192.0.2.11", SessionState.DOWN),
        event(1.05, "192.0.2.11", SessionState.DOWN),
        event(1.10, "192.0.2.11", SessionState.UP),
        event(1.15, "192.0.2.11", SessionState.UP),
        event(1.20, "192.0.2.11", SessionState.DOWN, Diag.CONTROL_DETECTION_EXPIRED),
    ]
    line = from_capture(evs)  # type: ignore[arg-type]
    assert [(e.time, e.kind) for e in line] == [(1.00, "bfd"), (1.10, "bfd"), (1.20, "bfd")]
    assert "says Down (was Up, diag 1)" in line[-1].detail
    assert "BFD Down diag=1" in describe(evs[-1])  # type: ignore[arg-type]
