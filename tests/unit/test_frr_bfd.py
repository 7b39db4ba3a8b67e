"""The FRR driver's BFD translation (no lab): ``bfd_instance`` → a bfdd peer, ``track_bfd``
refused (vrrpd has no BFD client)."""

from __future__ import annotations

import pytest

from lab.routers.frr import (
    TRACK_BFD_REFUSAL,
    FrrBfdPeer,
    UnsupportedConfig,
    translate,
    unsupported_reason,
)

VRRP = """
vrrp_instance vrrp_1 {
    interface ens3
    virtual_router_id 1
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100
    }
    %s
}
"""


def bfd(body: str, name: str = "peer") -> str:
    return f"bfd_instance {name} {{\n{body}\n}}\n"


def test_bfd_instance_becomes_a_bfdd_peer() -> None:
    plan = translate(
        VRRP % ""
        + bfd("neighbor_ip 192.0.2.14\nsource_ip 192.0.2.11\nmin_rx 50\nmin_tx 40\nmultiplier 3")
    )
    assert plan.bfd_peers == (
        FrrBfdPeer("peer", "192.0.2.14", "192.0.2.11", 50, 40, 3, passive=False),
    )
    assert plan.bfd_peers[0].commands("ens3", "192.0.2.11") == [
        "peer 192.0.2.14 interface ens3 local-address 192.0.2.11",
        " receive-interval 50",
        " transmit-interval 40",
        " detect-multiplier 3",
    ]
    assert plan.ignored == ()


def test_keepalived_defaults_and_ipv6_passive() -> None:
    plan = translate(VRRP % "" + bfd("neighbour_ip 2001:db8::e\npassive"))
    (peer,) = plan.bfd_peers
    # keepalived's defaults: 10 ms both ways, multiplier 5; no source_ip: found at start.
    assert (peer.peer, peer.local, peer.receive_ms, peer.transmit_ms, peer.multiplier) == (
        "2001:db8::e", None, 10, 10, 5,
    )  # fmt: skip
    assert peer.commands("ens3", "2001:db8::b")[-1] == " passive-mode"


def test_no_bfd_no_peers() -> None:
    assert translate(VRRP % "").bfd_peers == ()


def test_track_bfd_is_refused() -> None:
    # keepalived reads a track_bfd only of a bfd_instance defined before the vrrp_instance.
    text = bfd("neighbor_ip 192.0.2.14") + VRRP % "track_bfd {\n        peer\n    }"
    with pytest.raises(UnsupportedConfig, match=r"vrrpd 8\.4 has no BFD client"):
        translate(text, "r.conf")
    reason = unsupported_reason(text)
    assert reason is not None and reason.endswith(TRACK_BFD_REFUSAL)
    assert "vrrp_instance vrrp_1" in reason


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("min_rx 5", "min_rx 5 ms: bfdd takes whole milliseconds 10..60000"),
        ("min_tx 12.5", "min_tx 12.5 ms: bfdd takes whole milliseconds"),
        ("multiplier 1", "multiplier 1: bfdd takes 2..255"),
    ],
)
def test_what_bfdd_cannot_express(body: str, message: str) -> None:
    with pytest.raises(UnsupportedConfig, match=message):
        translate(VRRP % "" + bfd(f"neighbor_ip 192.0.2.14\n{body}"))


def test_what_bfdd_has_no_knob_for_is_ignored_and_listed() -> None:
    plan = translate(
        VRRP % "" + bfd("neighbor_ip 192.0.2.14\nidle_tx 2000\nttl 64\nmax_hops 2\nweight 10")
    )
    assert plan.ignored == (
        "bfd_instance peer: idle_tx (bfdd has no such setting)",
        "bfd_instance peer: ttl/hoplimit (bfdd has no such setting)",
        "bfd_instance peer: max_hops (bfdd has no such setting)",
        "bfd_instance peer: weight (bfdd has no such setting)",
    )
    assert "! ignored: bfd_instance peer: idle_tx" in plan.config_text()
