"""The ``inject`` step and its frames (issue 17): the model's checks, and the frames a node
would put on the wire, decoded back by the capture's and the codec's own decoders (no
namespaces)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab.capture_events import ArpEvent, VrrpAdvert, decode_frame
from lab.crafting import BROADCAST, group_mac, vrrp_message
from lab.errors import UsageError
from lab.inject import Sender, frames_of
from lab.steps import Inject, Step
from vrrp.packet import AdvertError, Reason, decode

MALLORY = Sender(
    "mallory", "ens3", "fa:16:3e:66:6d:61", "10.200.51.35", None, "fe80::f816:3eff:fe66:6d61"
)
PORTS = {"10.200.51.32": "fa:16:3e:8d:dc:bb", "10.200.51.33": "fa:16:3e:f3:a9:a3"}
VIPS = ["10.200.51.10"]


def _frames(**spec: object) -> list[bytes]:
    return frames_of(Inject.model_validate(spec), MALLORY, vips=VIPS, mac_of=PORTS.get)()


def test_an_inject_step_takes_exactly_one_kind() -> None:
    step = Step.model_validate({"inject": {"node": "mallory", "advert": {"priority": 254}}})
    assert step.is_fault and step.action == "inject"
    assert "VRRPv3 adverts VRID 1 priority 254" in step.title()
    with pytest.raises(ValidationError, match="exactly one of advert, garp, arp-reply, na"):
        Inject.model_validate({"node": "m", "advert": {}, "garp": {"ip": "10.0.0.1"}})
    with pytest.raises(ValidationError, match="exactly one of"):
        Inject.model_validate({"node": "m"})
    with pytest.raises(ValidationError, match="not a MAC address"):
        Inject.model_validate({"node": "m", "garp": {"ip": "10.0.0.1", "mac": "nope"}})
    with pytest.raises(ValidationError, match="less than or equal to 20000"):
        Inject.model_validate({"node": "m", "advert": {}, "rate": 1e6})


def test_unicast_adverts_go_to_each_port_with_the_fields_asked_for() -> None:
    frames = _frames(
        node="mallory",
        advert={"priority": 255, "interval": 1.0, "to": ["10.200.51.32", "10.200.51.33"]},
    )
    decoded = [decode_frame(f) for f in frames]
    assert [d["class"] for d in decoded if d] == [VrrpAdvert, VrrpAdvert]
    first, second = decoded
    assert first is not None and second is not None
    assert (first["dst_ip"], first["dst_mac"]) == ("10.200.51.32", "fa:16:3e:8d:dc:bb")
    assert second["dst_ip"] == "10.200.51.33"
    assert first["src_ip"] == "10.200.51.35" and first["src_mac"] == MALLORY.mac
    assert (first["priority"], first["adver_int"], first["version"]) == (255, 1.0, 3)
    assert first["addresses"] == ("10.200.51.10",)
    assert first["checksum_form"] == "pseudo-header"


def test_a_spoofed_group_advert_with_a_bad_checksum() -> None:
    (frame,) = _frames(
        node="mallory",
        src_mac="fa:16:3e:f3:a9:a3",
        advert={"src": "10.200.51.33", "checksum": "bad", "ttl": 64, "version": 2},
    )
    d = decode_frame(frame)
    assert d is not None and d["class"] is VrrpAdvert
    assert (d["src_ip"], d["src_mac"]) == ("10.200.51.33", "fa:16:3e:f3:a9:a3")
    assert (d["dst_ip"], d["dst_mac"]) == ("224.0.0.18", "01:00:5e:00:00:12")
    assert d["ttl"] == 64 and d["version"] == 2 and d["checksum_form"] == "bad"


def test_a_unicast_advert_to_an_address_no_port_has_is_refused() -> None:
    with pytest.raises(UsageError, match=r"no port of the lab has 10\.200\.51\.99"):
        _frames(node="mallory", advert={"to": ["10.200.51.99"]})


@pytest.mark.parametrize(
    ("patch", "reason"),
    [({"vrid": 0}, Reason.VRID), ({"version": 7}, Reason.VERSION), ({"count": 3}, None)],
)
def test_patched_fields_are_the_only_defect(patch: dict[str, int], reason: Reason | None) -> None:
    """A field the codec will not build is patched in with the checksum fixed up: the codec then
    rejects the message for that field alone."""
    src, dst = "10.0.0.1", "224.0.0.18"
    message = vrrp_message(200, src=src, dst=dst, addresses=["10.0.0.10"], **patch)
    with pytest.raises(AdvertError) as caught:
        decode(message, src=src, dst=dst, ttl=255)
    # A count that disagrees with the addresses is the address-count check's.
    assert caught.value.reason is (reason or Reason.ADDRESS_COUNT)
    good = vrrp_message(200, src=src, dst=dst, addresses=["10.0.0.10"])
    assert decode(good, src=src, dst=dst, ttl=255).priority == 200


def test_garp_churn_draws_a_new_mac_per_frame_and_replays_with_the_seed() -> None:
    spec = {"node": "mallory", "garp": {"ip": "10.200.51.10", "mac": "random"}, "seed": 7}
    make = frames_of(Inject.model_validate(spec), MALLORY, vips=VIPS, mac_of=PORTS.get)
    frames = [make()[0] for _ in range(5)]
    macs = []
    for frame in frames:
        d = decode_frame(frame)
        assert d is not None and d["class"] is ArpEvent and d["kind"] == "garp"
        assert d["spa"] == d["tpa"] == "10.200.51.10"
        assert d["src_mac"] == d["sha"]  # announced as a host announces itself
        macs.append(d["sha"])
    assert len(set(macs)) == 5 and all(int(m[:2], 16) & 0x02 for m in macs)
    again = frames_of(Inject.model_validate(spec), MALLORY, vips=VIPS, mac_of=PORTS.get)
    assert [again()[0] for _ in range(5)] == frames


def test_group_macs_follow_rfc_1112_and_2464() -> None:
    assert group_mac("224.0.0.18") == "01:00:5e:00:00:12"
    assert group_mac("ff02::12") == "33:33:00:00:00:12"
    assert group_mac("10.0.0.1") is None


def test_arp_replies_and_nas_claim_the_address_at_the_mac_given() -> None:
    (reply,) = _frames(node="mallory", arp_reply={"ip": "10.200.51.10", "mac": "02:00:00:00:00:01"})
    d = decode_frame(reply)
    assert d is not None and d["class"] is ArpEvent and d["op"] == 2
    assert (d["sha"], d["spa"], d["dst_mac"]) == ("02:00:00:00:00:01", "10.200.51.10", BROADCAST)
    (na,) = _frames(node="mallory", na={"ip": "2001:db8::10"})
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    packet = Ether(na)
    assert packet[IPv6].src == MALLORY.link_local and packet[IPv6].hlim == 255
    assert packet[ICMPv6ND_NA].tgt == "2001:db8::10" and packet[ICMPv6ND_NA].O == 1
    assert packet[ICMPv6NDOptDstLLAddr].lladdr == MALLORY.mac
    with pytest.raises(UsageError, match="an ARP claims an IPv4 address"):
        _frames(node="mallory", garp={"ip": "2001:db8::10"})
