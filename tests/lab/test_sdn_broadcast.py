"""Broadcast, multicast and GARP policy per network (issue 3, "what it must show" 3).

``cloud-l3`` must never deliver a frame to 224.0.0.18 (a VRRP advert) to another instance;
``l2-plain`` delivers everything; ``neutron-ovs-hybrid`` lets VRRP through the link-local
multicast block and nothing else. A unicast sentinel sent last proves the fabric was given
the time to deliver what it would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from lab import Lab
from lab.node import Node
from lab.sdn.probe import FrameSink, fast_neighbour_timers, marker, resolve, send_frames

pytestmark = pytest.mark.lab

VIP = "10.0.0.10"

SCENARIO = """
name: bcast
networks:
  - name: net
    subnets:
      - cidr: 10.0.0.0/24
        allocation_pools: [{{start: 10.0.0.100, end: 10.0.0.200}}]
    sdn: {sdn}
instances:
  - name: sender
    ports:
      - network: net
        fixed_ips: [10.0.0.101]
        allowed_address_pairs: [{{ip_address: {vip}}}]
  - name: peer
    ports: [{{network: net, fixed_ips: [10.0.0.102]}}]
  - name: observer
    ports: [{{network: net, fixed_ips: [10.0.0.103]}}]
vips: [{{address: {vip}, network: net}}]
"""


def frames(sender: Node, target: Node) -> dict[str, bytes]:
    """Broadcast, multicast and GARP frames from ``sender``; sentinels go to ``target``."""
    src, ip = sender.mac, str(sender.ip)
    return {
        "vrrp_224.0.0.18": bytes(
            Ether(src=src, dst="01:00:5e:00:00:12")
            / IP(src=ip, dst="224.0.0.18", ttl=255, proto=112)
            / marker("vrrp_224.0.0.18")
        ),
        "mdns_224.0.0.251": bytes(
            Ether(src=src, dst="01:00:5e:00:00:fb")
            / IP(src=ip, dst="224.0.0.251", ttl=255)
            / UDP(sport=5353, dport=5353)
            / marker("mdns_224.0.0.251")
        ),
        "udp_broadcast": bytes(
            Ether(src=src, dst="ff:ff:ff:ff:ff:ff")
            / IP(src=ip, dst="255.255.255.255")
            / UDP(sport=4000, dport=9)
            / marker("udp_broadcast")
        ),
        "garp": bytes(
            Ether(src=src, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=src, psrc=VIP, hwdst="00:00:00:00:00:00", pdst=VIP)
        )
        + marker("garp"),
    }


def sentinel(sender: Node, target: Node) -> bytes:
    """A unicast frame that every profile delivers."""
    return bytes(
        Ether(src=sender.mac, dst=target.mac)
        / IP(src=str(sender.ip), dst=str(target.ip))
        / UDP(sport=4000, dport=9)
        / marker("sentinel")
    )


EVERYTHING = {"vrrp_224.0.0.18", "mdns_224.0.0.251", "udp_broadcast", "garp"}

#: sdn block → the frames it delivers to other instances
DELIVERED = {
    "{profile: l2-plain}": EVERYTHING,
    "{profile: l2-plain, garp: dropped}": EVERYTHING - {"garp"},
    "{profile: l2-plain, garp: trapped}": EVERYTHING - {"garp"},
    "{profile: neutron-ovs-hybrid}": {"vrrp_224.0.0.18", "udp_broadcast", "garp"},
    "{profile: arp-caching}": set(),
    "{profile: cloud-l3}": set(),
}


@pytest.mark.parametrize("sdn", list(DELIVERED))
def test_broadcast_and_multicast_policy(make_lab: Callable[..., Lab], sdn: str) -> None:
    lab = make_lab(SCENARIO.format(sdn=sdn, vip=VIP))
    sender, peer, observer = lab.node("sender"), lab.node("peer"), lab.node("observer")
    batch = frames(sender, peer)
    with FrameSink(peer) as at_peer, FrameSink(observer) as at_observer:
        send_frames(sender, [*batch.values(), sentinel(sender, peer), sentinel(sender, observer)])
        want = {*DELIVERED[sdn], "sentinel"}
        seen_peer = at_peer.wait_for(want) - {"sentinel"}
        seen_observer = at_observer.wait_for(want) - {"sentinel"}
    assert seen_peer == DELIVERED[sdn], f"{sdn}: peer got {sorted(seen_peer)}"
    assert seen_observer == DELIVERED[sdn], f"{sdn}: observer got {sorted(seen_observer)}"
    # Whatever happens to GARP and broadcast, ordinary ARP still resolves.
    assert resolve(observer, str(peer.ip)) == peer.mac


def test_cloud_l3_arp_is_static_and_the_vip_moves_only_through_the_api(
    make_lab: Callable[..., Lab],
) -> None:
    """AWS-like: the fabric answers ARP for fixed IPs and for pair addresses (secondary IPs),
    each bound to the first port listing it; GARPs change nothing; unknown IPs never resolve."""
    lab = make_lab(SCENARIO.format(sdn="{profile: cloud-l3}", vip=VIP))
    sender, peer, observer = lab.node("sender"), lab.node("peer"), lab.node("observer")
    fast_neighbour_timers(observer)
    for node in (sender, peer):
        index = node.ipr.link_lookup(ifname="ens3")[0]
        node.ipr.addr("add", index=index, address=VIP, prefixlen=32)
    lab.port("peer").set_allowed_address(VIP)  # both list the VIP; the sender came first
    ctl = lab.fabric.sdn.controller
    assert ctl is not None
    mark = ctl.mark()
    send_frames(peer, [frames(peer, observer)["garp"]])
    ctl.wait_for(
        lambda e: e["event"] == "dropped" and e.get("reason") == "garp-dropped",
        timeout=2,
        what="the controller to drop the GARP",
        since=mark,
    )
    assert resolve(observer, str(sender.ip)) == sender.mac
    assert resolve(observer, VIP) == sender.mac, "a GARP must not move the VIP"
    assert resolve(observer, "10.0.0.11") is None  # nobody lists it: no answer, no flood
    lab.port("sender").unset_allowed_address(VIP)  # the API call that moves a secondary IP
    assert resolve(observer, VIP) == peer.mac
    assert not [e for e in ctl.events if e["event"] in ("learned", "relayed")]
