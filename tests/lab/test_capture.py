"""The fabric capture against tshark, and against the probes (issue 4 points 4 and 5).

The lab is the seed's topology on a plain bridge; VRRP adverts are crafted with scapy and sent
from the nodes, and the failover is emulated by moving the VIP (see ``test_probe``).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3

from lab import Lab
from lab.capture import ArpEvent, ProbePacket, VrrpAdvert, events, start_capture
from lab.capture_events import reply_gaps, transits, tshark
from lab.clock import now
from lab.pcapng import read_frames
from lab.probe import responders, start_probes
from lab.wait import wait_until
from tests.lab.test_probe import PLAIN_SEED, VIP, emulate_failover, send_frame, send_garp

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed"),
]


@pytest.fixture
def lab_scenario() -> str:
    """The seed's topology without SDN and routers. Function scope; no dependencies."""
    return PLAIN_SEED


def wait_frames(capture_path: Path, count: int) -> None:
    """Wait until the growing capture file holds ``count`` frames."""
    wait_until(
        lambda: sum(1 for _ in read_frames(capture_path)),
        timeout=5,
        what=f"{count} frames in {capture_path}",
        accept=lambda n: n >= count,
    )


def test_pcap_opens_in_tshark_and_frames_match(lab: Lab, tmp_path: Path) -> None:
    capture = start_capture(lab, tmp_path)
    lab.node("ha_first").run(f"ip addr add {VIP}/32 dev ens3")
    responders(lab, ["ha_first"])
    run = start_probes(lab, target=VIP, rate=1000)
    wait_until(lambda: len(run.results()), timeout=5, what="500 probes", accept=lambda n: n >= 500)
    run.stop()
    # The file is readable while it grows (up to its last flush).
    wait_frames(capture.path, 1000)
    path = capture.stop()
    assert path == tmp_path / f"{lab.id}.pcapng"
    assert capture.figures["drops"] == 0

    mine = list(read_frames(path))
    rows = tshark(
        path,
        "frame.number",
        "frame.time_epoch",
        "frame.interface_name",
        "frame.interface_description",
        "frame.packet_flags_direction",
    )
    assert len(rows) == len(mine) == capture.figures["frames"]
    taps = {p.tap: p.instance.name for p in lab.fabric.ports.values()}
    for row, frame in zip(rows, mine, strict=True):
        number, epoch, ifname, desc, direction = row
        assert int(number) == frame.index
        assert ifname == frame.tap and taps[ifname] == frame.instance
        assert f"instance={frame.instance}" in desc
        assert int(direction, 16) == {"in": 1, "out": 2}[frame.direction or "in"]
        assert float(epoch) == pytest.approx(frame.time, abs=2e-6)
    # Every probe request entered on the observer's tap and left on ha_first's: two copies,
    # folded into one transit each.
    probes = [e for e in events(path) if isinstance(e, ProbePacket)]
    requests = [p for p in probes if p.direction_kind == "request"]
    replies = [p for p in probes if p.direction_kind == "reply"]
    assert len(requests) >= 500 and len(replies) == len(requests)
    assert {(p.sender, p.receivers) for p in requests} == {("observer", ("ha_first",))}
    assert {(p.sender, p.responder, p.receivers) for p in replies} == {
        ("ha_first", "ha_first", ("observer",))
    }


def craft_adverts(lab: Lab) -> list[bytes]:
    """VRRP adverts of every flavour the reader decodes, from ha_first's and ha_second's MACs."""
    first, second = lab.node("ha_first"), lab.node("ha_second")
    v2 = (
        Ether(src=first.mac, dst="01:00:5e:00:00:12")
        / IP(src=str(first.ip), dst="224.0.0.18", ttl=255)
        / VRRP(vrid=1, priority=200, adv=1, addrlist=[VIP])
    )
    v3 = (
        Ether(src=second.mac, dst="01:00:5e:00:00:12")
        / IP(src=str(second.ip), dst="224.0.0.18", ttl=255)
        / VRRPv3(vrid=1, priority=100, adv=10, addrlist=[VIP])
    )
    unicast = (
        Ether(src=first.mac, dst=second.mac)
        / IP(src=str(first.ip), dst=str(second.ip), ttl=64)
        / VRRPv3(vrid=7, priority=150, adv=100, addrlist=[VIP])
    )
    v6 = (
        Ether(src="00:00:5e:00:02:03", dst="33:33:00:00:00:12")
        / IPv6(src="fe80::1", dst="ff02::12", hlim=255)
        / VRRPv3(vrid=3, priority=254, adv=5, addrlist=["fe80::10", "2001:db8::10"])
    )
    return [bytes(v2), bytes(v3), bytes(unicast), bytes(v6)]


def test_crafted_adverts_decode_alike_in_tshark_and_the_reader(lab: Lab, tmp_path: Path) -> None:
    capture = start_capture(lab, tmp_path / "adverts.pcapng")
    frames = craft_adverts(lab)
    senders = ["ha_first", "ha_second", "ha_first", "ha_second"]
    for sender, frame in zip(senders, frames, strict=True):
        send_frame(lab.node(sender), frame)
    # Delivered to the two other instances (multicast) or to the peer (unicast): 4 + 2*3 + 1.
    wait_frames(capture.path, 11)
    path = capture.stop()

    adverts = [e for e in events(path) if isinstance(e, VrrpAdvert)]
    rows = tshark(
        path,
        "frame.time_epoch",
        "eth.src",
        "ip.src",
        "ipv6.src",
        "ip.dst",
        "ipv6.dst",
        "ip.ttl",
        "ipv6.hlim",
        "vrrp.version",
        "vrrp.virt_rtr_id",
        "vrrp.prio",
        "vrrp.addr_count",
        # Not "icmp": ha_second answers the unicast advert with a protocol unreachable that
        # quotes it, which tshark dissects as VRRP too.
        display="vrrp && !icmp && frame.packet_flags_direction == 1",
    )
    assert len(rows) == len(adverts) == 4
    for row, ad, sender in zip(rows, adverts, senders, strict=True):
        epoch, src_mac, src4, src6, dst4, dst6, ttl, hlim, version, vrid, prio, count = row
        assert float(epoch) == pytest.approx(ad.time, abs=2e-6)
        assert ad.sender == sender and not ad.injected
        assert ad.src_mac == src_mac
        assert ad.src_ip == (src4 or src6) and ad.dst_ip == (dst4 or dst6)
        assert ad.ttl == int(ttl or hlim)
        assert (ad.version, ad.vrid, ad.priority, ad.count) == (
            int(version),
            int(vrid),
            int(prio),
            int(count),
        )
    v2, v3, unicast, v6 = adverts
    assert (v2.adver_int, v2.checksum_form, v2.addresses) == (1.0, "vrrp-only", (VIP,))
    assert (v3.adver_int, v3.checksum_form) == (0.1, "pseudo-header")
    assert set(v2.receivers) == {"ha_second", "observer"}
    assert unicast.receivers == ("ha_second",) and unicast.ttl == 64
    assert v6.addresses == ("fe80::10", "2001:db8::10") and v6.adver_int == 0.05
    # Without folding, every copy is an event, with its tap's direction.
    copies = [e for e in events(path, dedupe=False) if isinstance(e, VrrpAdvert)]
    assert len(copies) == 11
    assert sum(1 for c in copies if c.direction == "in") == 4


def test_frames_injected_by_the_fabric_are_marked(lab: Lab, tmp_path: Path) -> None:
    capture = start_capture(lab, tmp_path)
    observer_port = lab.port("observer")
    # As the SDN controller answers ARP: a reply written straight onto the observer's tap.
    reply = Ether(src="00:00:5e:00:01:01", dst=observer_port.mac) / ARP(
        op=2, hwsrc="00:00:5e:00:01:01", psrc=VIP, hwdst=observer_port.mac, pdst="10.200.51.34"
    )
    with lab.fabric.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((observer_port.tap, 0))
        sock.send(bytes(reply))
    send_garp(lab.node("ha_second"), VIP)
    # Read live: the GARP shows up while the capture runs.
    live = capture.wait_for(
        lambda e: isinstance(e, ArpEvent) and e.kind == "garp", timeout=5, what="the GARP"
    )
    assert live.sender == "ha_second"
    path = capture.stop()
    arps = [e for e in events(path) if isinstance(e, ArpEvent)]
    injected, garp = arps
    assert injected.injected and injected.sender == "fabric"
    assert injected.receivers == ("observer",) and injected.kind == "reply"
    assert (garp.kind, garp.sender, garp.sha, garp.spa) == (
        "garp",
        "ha_second",
        lab.node("ha_second").mac,
        VIP,
    )
    assert set(garp.receivers) == {"ha_first", "observer"}
    (tr,) = [t for t in transits(read_frames(path)) if t.injected]
    assert tr.ingress is None and tr.egress[0].tap == observer_port.tap


def test_catch_up_waits_for_the_frames_of_a_moment(lab: Lab, tmp_path: Path) -> None:
    """``Capture.catch_up(t)`` returns once the file holds what was on the wire at ``t`` (the
    runner calls it before judging a failover), and False on a quiet wire. An ARP reply whose
    sender IP equals its target IP, sent to one host (how a kernel answers a stranger's
    gratuitous request for an address it owns), is a reply, not an announcement."""
    capture = start_capture(lab, tmp_path)
    first, second = lab.node("ha_first"), lab.node("ha_second")
    sent = now()
    send_garp(second, VIP)
    answer = Ether(src=first.mac, dst=second.mac) / ARP(
        op=2, hwsrc=first.mac, psrc=VIP, hwdst=second.mac, pdst=VIP
    )
    send_frame(first, bytes(answer))
    # A generous deadline: this judges no time, only that the call returns once frames are in.
    assert capture.catch_up(sent, timeout=5)
    assert any(f.time >= sent for f in capture.frames()), "catch_up returned before the frame"
    wait_until(
        lambda: [e for e in capture.events(since=sent) if isinstance(e, ArpEvent)],
        accept=lambda arps: len(arps) == 2,
        timeout=5,
        what="the gratuitous request and the unicast answer in the capture",
    )
    arps = [e for e in capture.events(since=sent) if isinstance(e, ArpEvent)]
    assert [(e.sender, e.kind, e.op) for e in arps] == [
        ("ha_second", "garp", 1),
        ("ha_first", "reply", 2),
    ]
    quiet = max(f.time for f in capture.frames()) + 3600
    assert not capture.catch_up(quiet, timeout=4 * capture.flush)
    capture.stop()


@pytest.mark.timing
def test_probe_outage_agrees_with_the_capture_gap(lab: Lab, tmp_path: Path) -> None:
    """Issue 4 point 5: the outage from the probes and the gap in served packets seen in the
    capture agree within 2 probe intervals."""
    capture = start_capture(lab, tmp_path)
    lab.node("ha_first").run(f"ip addr add {VIP}/32 dev ens3")
    responders(lab, ["ha_first", "ha_second"])
    run = start_probes(lab, target=VIP, rate=1000)
    run.wait_served(by="ha_first", timeout=5)
    garp_at = emulate_failover(lab, run, lost=40)
    after = now()
    wait_until(
        lambda: run.served_by(since=after)["ha_second"],
        timeout=5,
        what="50 replies from ha_second",
        accept=lambda n: n >= 50,
    )
    results = run.stop()
    path = capture.stop()
    (outage,) = [o for o in results.outages() if o.start < garp_at < o.end]

    evs = events(path)
    # The capture's view: the gap in the replies on the wire, from ha_first to ha_second.
    (gap,) = [
        (a, b)
        for a, b in reply_gaps(evs, min_gap=10 * results.interval)
        if a.time < garp_at < b.time
    ]
    last_first, first_second = gap
    assert (last_first.responder, first_second.responder) == ("ha_first", "ha_second")
    assert (last_first.sender, first_second.sender) == ("ha_first", "ha_second")
    wire_gap = first_second.time - last_first.time
    print(f"outage: probes {outage.duration * 1000:.2f} ms, capture {wire_gap * 1000:.2f} ms")
    assert abs(wire_gap - outage.duration) <= 2 * results.interval
    assert (last_first.seq, first_second.seq) == (outage.last_before.seq, outage.first_after.seq)
    # The GARP that ended it is on the wire, from ha_second, between the two.
    (garp,) = [e for e in evs if isinstance(e, ArpEvent) and e.kind == "garp"]
    assert garp.sender == "ha_second" and garp.sha == lab.node("ha_second").mac
    assert last_first.time < garp.time < first_second.time
    assert garp.time >= garp_at
