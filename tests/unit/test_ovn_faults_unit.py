"""lab.ovn.faults's pure part: how an instance's IPv6 source is told from its MAC."""

from __future__ import annotations

import ipaddress

from lab.ovn.faults import link_local


def test_link_local_is_the_kernels_eui64_address() -> None:
    # RFC 4291 appendix A: ff:fe in the middle, the universal/local bit (0x02) flipped.
    assert link_local("fa:16:3e:8d:dc:bb") == ipaddress.IPv6Address("fe80::f816:3eff:fe8d:dcbb")
    # The universal/local bit flips both ways.
    assert link_local("00:00:5e:00:01:01") == ipaddress.IPv6Address("fe80::200:5eff:fe00:101")
