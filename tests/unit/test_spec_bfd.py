"""``bfd_instance``, ``track_bfd`` and ``bfd_takeover`` resolved into what the daemon runs
(:mod:`vrrp.spec`): keepalived's defaults and weight inheritance, our hop limit, our keyword."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from vrrp import config, spec
from vrrp.spec import BfdSpec, TrackBfdSpec

TEXT = """\
bfd_instance peer {
    neighbor_ip 10.0.0.2
    source_ip 10.0.0.1
    min_rx 50
    min_tx 40
    multiplier 3
    weight 20 reverse
}
bfd_instance six {
    neighbour_ip 2001:db8::2
    max_hops 2
}
bfd_instance checks {
    neighbor_ip 10.0.0.3
    checker
}
vrrp_instance vi_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.10
    }
    bfd_takeover
    track_bfd {
        peer
        six weight -7
    }
}
vrrp_instance vi_2 {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        10.0.0.11
    }
    track_bfd {
        peer weight 5 noreverse
    }
}
"""


def test_bfd_instances_resolve_with_keepalived_defaults_and_our_hop_limit() -> None:
    resolved = spec.build(config.parse(TEXT))
    peer, six, checks = resolved.bfds
    assert peer == BfdSpec(
        "peer",
        IPv4Address("10.0.0.2"),
        IPv4Address("10.0.0.1"),
        min_rx=0.05,
        min_tx=0.04,
        idle_tx=1.0,
        multiplier=3,
        ttl=255,
        max_hops=0,
    )
    # keepalived would send and expect 64 on IPv6; RFC 5881 §5 (and FRR) want 255.
    assert (six.neighbor, six.family, six.ttl, six.max_hops) == (
        IPv6Address("2001:db8::2"),
        6,
        255,
        2,
    )
    assert (six.min_rx, six.min_tx, six.multiplier) == (0.01, 0.01, 5)
    assert not checks.notifies_vrrp and peer.notifies_vrrp
    assert peer.identity() == (IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1"))


def test_gtsm_check_is_keepalived_s() -> None:
    strict = BfdSpec("p", IPv4Address("10.0.0.2"))
    assert strict.accepts_ttl(255) and not strict.accepts_ttl(254)
    loose = BfdSpec("p", IPv4Address("10.0.0.2"), ttl=64, max_hops=2)
    assert loose.accepts_ttl(62) and not loose.accepts_ttl(61)
    assert BfdSpec("p", IPv4Address("10.0.0.2"), max_hops=255).accepts_ttl(1)


def test_track_bfd_weights_inherit_and_bfd_takeover_is_read() -> None:
    resolved = spec.build(config.parse(TEXT, "t.conf"))
    vi_1, vi_2 = resolved.instances
    assert vi_1.track_bfds == (TrackBfdSpec("peer", 20, True), TrackBfdSpec("six", -7, False))
    assert vi_2.track_bfds == (TrackBfdSpec("peer", 5, False),)
    assert vi_1.bfd_takeover and not vi_2.bfd_takeover
    # The keyword is ours: its "unknown keyword" warning is consumed, not logged.
    assert resolved.warnings == ()


def test_without_bfd_nothing_changes() -> None:
    text = TEXT[TEXT.index("vrrp_instance vi_2") :].replace("track_bfd", "track_interface")
    resolved = spec.build(config.parse(text.replace("peer weight 5 noreverse", "eth1")))
    assert resolved.bfds == ()
    assert resolved.instances[0].track_bfds == () and not resolved.instances[0].bfd_takeover
