"""lab.ovn's pure parts: how faults tell an instance's IPv6 source, and a window's vport claims."""

from __future__ import annotations

import ipaddress

from lab.ovn.faults import link_local


def test_link_local_is_the_kernels_eui64_address() -> None:
    # RFC 4291 appendix A: ff:fe in the middle, the universal/local bit (0x02) flipped.
    assert link_local("fa:16:3e:8d:dc:bb") == ipaddress.IPv6Address("fe80::f816:3eff:fe8d:dcbb")
    # The universal/local bit flips both ways.
    assert link_local("00:00:5e:00:01:01") == ipaddress.IPv6Address("fe80::200:5eff:fe00:101")


def test_claims_between_lists_the_bind_vport_claims_of_a_window() -> None:
    from lab.ovn.events import claims_between

    events = [
        {"t": 10.0, "event": "bind-vport", "port": "vip 10.0.0.10", "parent": "first"},
        {"t": 10.5, "event": "port-binding", "port": "first", "chassis": "bound", "up": True},
        {"t": 11.25, "event": "bind-vport", "port": "vip 10.0.0.10", "parent": "second"},
        {"t": 12.0, "event": "bind-vport", "port": "vip 10.0.0.10", "parent": "first"},
    ]
    assert claims_between(events, 11.0, 12.0) == [
        (250.0, "OVN binds virtual port vip 10.0.0.10 to second")
    ]
    assert [text[-5:] for _, text in claims_between(events, 10.0)] == ["first", "econd", "first"]
