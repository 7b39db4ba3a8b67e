"""Pure parsing, without privileges: frame decoding, pcapng writing and reading, the folding of
captured copies, probe payloads and results, and timeline merging."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw

from lab.capture_events import ArpEvent, ProbePacket, VrrpAdvert, decode_frame, events, transits
from lab.neighbours import NeighbourChange, nud_name, parse_neighbour_messages
from lab.pcapng import (
    Frame,
    Interface,
    PcapngReader,
    epb_flags,
    interface_block,
    packet_block,
    read_frames,
    section_header,
)
from lab.probe import ProbeResult, ProbeResults
from lab.prober import decode_payload, encode_echo_request, encode_reply, encode_request
from lab.timeline import from_capture, from_neighbours, from_probes, from_sdn, merge

A_MAC, B_MAC = "fa:16:3e:8d:dc:bb", "fa:16:3e:f3:a9:a3"
VIP = "10.200.51.10"


# -- decoding ---------------------------------------------------------------------------------


def test_vrrp_v2_advert() -> None:
    frame = (
        Ether(src=A_MAC, dst="01:00:5e:00:00:12")
        / IP(src="10.200.51.32", dst="224.0.0.18", ttl=255)
        / VRRP(vrid=1, priority=200, adv=1, addrlist=[VIP])
    )
    fields = decode_frame(bytes(frame))
    assert fields is not None and fields.pop("class") is VrrpAdvert
    assert fields == {
        "dst_mac": "01:00:5e:00:00:12",
        "src_mac": A_MAC,
        "src_ip": "10.200.51.32",
        "dst_ip": "224.0.0.18",
        "ttl": 255,
        "version": 2,
        "type": 1,
        "vrid": 1,
        "priority": 200,
        "count": 1,
        "adver_int": 1.0,
        "addresses": (VIP,),
        "checksum": Ether(bytes(frame))[VRRP].chksum,
        "checksum_form": "vrrp-only",
    }


def test_vrrp_v3_checksum_forms() -> None:
    base = Ether(src=A_MAC) / IP(src="10.200.51.32", dst="10.200.51.33", ttl=255)
    good = base / VRRPv3(vrid=1, priority=100, adv=10, addrlist=[VIP])
    fields = decode_frame(bytes(good))
    assert fields is not None
    assert (fields["version"], fields["adver_int"], fields["checksum_form"]) == (
        3,
        0.1,
        "pseudo-header",
    )
    # RFC 9568 allows the IPv4 checksum over the VRRP message alone.
    zero = base / VRRPv3(vrid=1, priority=100, adv=10, addrlist=[VIP], chksum=0)
    msg = bytes(zero)[14 + 20 :]
    total = sum(struct.unpack(f"!{len(msg) // 2}H", msg))
    while total >> 16:
        total = (total >> 16) + (total & 0xFFFF)
    alone = base / VRRPv3(vrid=1, priority=100, adv=10, addrlist=[VIP], chksum=~total & 0xFFFF)
    assert decode_frame(bytes(alone))["checksum_form"] == "vrrp-only"  # type: ignore[index]
    bad = base / VRRPv3(vrid=1, priority=100, adv=10, addrlist=[VIP], chksum=0x1234)
    assert decode_frame(bytes(bad))["checksum_form"] == "bad"  # type: ignore[index]


def test_vrrp_v3_over_ipv6_and_vlan() -> None:
    frame = (
        Ether(src="00:00:5e:00:02:03", dst="33:33:00:00:00:12")
        / Dot1Q(vlan=5)
        / IPv6(src="fe80::1", dst="ff02::12", hlim=255)
        / VRRPv3(vrid=3, priority=254, adv=5, addrlist=["fe80::10", "2001:db8::10"])
    )
    fields = decode_frame(bytes(frame))
    assert fields is not None
    assert fields["ttl"] == 255 and fields["addresses"] == ("fe80::10", "2001:db8::10")
    assert (fields["vrid"], fields["checksum_form"]) == (3, "pseudo-header")


@pytest.mark.parametrize(
    ("op", "spa", "tpa", "dst", "kind"),
    [
        (1, VIP, VIP, "ff:ff:ff:ff:ff:ff", "garp"),
        (2, VIP, VIP, "ff:ff:ff:ff:ff:ff", "garp"),
        (1, "0.0.0.0", VIP, "ff:ff:ff:ff:ff:ff", "probe"),
        (1, "10.200.51.34", VIP, "ff:ff:ff:ff:ff:ff", "request"),
        (2, VIP, "10.200.51.34", "02:00:00:00:00:34", "reply"),
        # The owner's kernel answering a stranger's gratuitous request for the owner's address:
        # sender IP = target IP, but sent to the stranger alone, so not an announcement.
        (2, VIP, VIP, "02:00:00:00:00:34", "reply"),
    ],
)
def test_arp_kinds(op: int, spa: str, tpa: str, dst: str, kind: str) -> None:
    frame = Ether(src=A_MAC, dst=dst) / ARP(op=op, hwsrc=A_MAC, psrc=spa, pdst=tpa)
    fields = decode_frame(bytes(frame))
    assert fields is not None and fields["class"] is ArpEvent
    assert (fields["kind"], fields["op"], fields["sha"], fields["spa"], fields["tpa"]) == (
        kind,
        op,
        A_MAC,
        spa,
        tpa,
    )


def test_probe_packets() -> None:
    ip = IP(src="10.200.51.34", dst=VIP)
    request = Ether() / ip / UDP(sport=4000, dport=50051) / Raw(encode_request(7))
    reply = Ether() / IP(src=VIP, dst="10.200.51.34") / UDP() / Raw(encode_reply(7, "ha_first"))
    echo = Ether() / IP(src="10.200.51.34", dst=VIP, proto=1) / Raw(encode_echo_request(99, 70000))
    echo_reply = Ether() / IP(src=VIP, dst="10.200.51.34") / ICMP(type=0, id=99, seq=70000 & 0xFFFF)
    echo_reply = echo_reply / Raw(encode_request(70000))
    got = [decode_frame(bytes(f)) for f in (request, reply, echo, echo_reply)]
    assert [(g["proto"], g["direction_kind"], g["seq"], g["responder"]) for g in got] == [  # type: ignore[index]
        ("udp", "request", 7, None),
        ("udp", "reply", 7, "ha_first"),
        ("icmp", "request", 70000, None),
        ("icmp", "reply", 70000, None),
    ]
    # The crafted echo request is a valid ICMP message.
    assert (
        ICMP(encode_echo_request(99, 70000)).chksum
        == ICMP(bytes(ICMP(encode_echo_request(99, 70000)))).chksum
    )


def test_foreign_and_short_frames_are_ignored() -> None:
    assert decode_frame(b"") is None
    assert decode_frame(bytes(Ether() / IP() / UDP() / Raw(b"not a probe at all"))) is None
    assert decode_frame(bytes(Ether() / IP(proto=112) / Raw(b"\x31"))) is None
    assert decode_frame(bytes(Ether(type=0x88CC) / Raw(b"lldp"))) is None


# -- pcapng -----------------------------------------------------------------------------------


def write_pcapng(
    path: Path, taps: list[tuple[str, str]], frames: list[tuple[int, int, bytes, int]]
):
    """Write a capture as the recorder does: (interface, time_ns, data, pkttype) per frame."""
    with open(path, "wb") as f:
        f.write(section_header("test"))
        for name, desc in taps:
            f.write(interface_block(name, desc))
        for ifid, t, data, pkttype in frames:
            f.write(packet_block(ifid, t, data, epb_flags(pkttype)))


TAPS = [("tapA", "instance=ha_first ifname=ens3"), ("tapB", "instance=observer ifname=ens3")]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),
            st.integers(0, 2**63 - 1),
            st.binary(min_size=0, max_size=200),
            st.sampled_from([0, 1, 2, 3, 4]),
        ),
        max_size=20,
    )
)
def test_pcapng_round_trip(tmp_path_factory: pytest.TempPathFactory, frames: list) -> None:
    path = tmp_path_factory.mktemp("rt") / "x.pcapng"
    write_pcapng(path, TAPS, frames)
    got = list(read_frames(path))
    assert [(TAPS.index((f.tap, f.interface.description)), f.time_ns, f.data) for f in got] == [
        (i, t, d) for i, t, d, _ in frames
    ]
    assert [f.direction for f in got] == ["out" if p == 4 else "in" for *_, p in frames]
    assert [f.index for f in got] == list(range(1, len(frames) + 1))
    assert all(f.instance in ("ha_first", "observer") for f in got)


def test_truncated_capture_reads_up_to_the_last_whole_block(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    write_pcapng(path, TAPS, [(0, 10**18, b"a" * 60, 0), (1, 10**18 + 5, b"b" * 60, 4)])
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    assert [f.data for f in read_frames(path)] == [b"a" * 60]


def test_tshark_reads_what_we_write(tmp_path: Path) -> None:
    path = tmp_path / "w.pcapng"
    frame = bytes(Ether(src=A_MAC) / ARP(op=1, hwsrc=A_MAC, psrc=VIP, pdst=VIP))
    write_pcapng(path, TAPS, [(1, 1_700_000_000_123_456_789, frame, 1)])
    try:
        out = subprocess.run(
            [
                "tshark",
                "-r",
                str(path),
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-e",
                "frame.interface_name",
                "-e",
                "arp.src.proto_ipv4",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except FileNotFoundError:
        pytest.skip("tshark is not installed")
    assert out.split() == ["1700000000.123456789", "tapB", VIP]


def test_a_growing_capture_is_read_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "g.pcapng"
    write_pcapng(path, TAPS, [(0, 1, b"a" * 60, 0)])
    reader = PcapngReader(path)
    assert [f.data for f in reader.read()] == [b"a" * 60]
    assert reader.read() == []
    block = packet_block(1, 2, b"b" * 61, epb_flags(4))
    with open(path, "ab") as f:
        f.write(block[:30])  # half a block: not yet
    assert reader.read() == []
    with open(path, "ab") as f:
        f.write(block[30:])
    (frame,) = reader.read()
    assert (frame.data, frame.tap, frame.direction, frame.index) == (b"b" * 61, "tapB", "out", 2)


def test_a_read_ends_at_the_size_the_file_had_when_it_began(tmp_path: Path) -> None:
    """A writer that appends while a read parses must not keep the read going: with a writer
    faster than the parser (a busy capture on a loaded host) it would never return, and a
    runner waiting on the capture would spin for good (seen in a CI rehearsal)."""
    path = tmp_path / "busy.pcapng"
    write_pcapng(path, TAPS, [(0, t, b"a" * 60, 0) for t in range(3)])
    reader = PcapngReader(path)
    parse = reader.parse

    appended = []

    def parse_while_the_writer_appends(f: BinaryIO) -> Iterator[Frame]:
        for frame in parse(f):
            if len(appended) < 50:  # one more frame for every frame parsed, 50 at most
                with open(path, "ab") as out:
                    out.write(packet_block(1, 10 + frame.index, b"b" * 60, epb_flags(4)))
                appended.append(frame.index)
            yield frame

    reader.parse = parse_while_the_writer_appends  # type: ignore[method-assign]
    assert [f.data for f in reader.read()] == [b"a" * 60] * 3
    reader.parse = parse  # type: ignore[method-assign]
    assert [f.data for f in reader.read()] == [b"b" * 60] * len(appended)


# -- transits ---------------------------------------------------------------------------------

IF_A = Interface("tapA", "instance=ha_first")
IF_B = Interface("tapB", "instance=observer")
IF_C = Interface("tapC", "instance=ha_second")


def fr(t_us: int, iface: Interface, direction: str, data: bytes) -> Frame:
    return Frame(t_us * 1000, iface, direction, data)  # type: ignore[arg-type]


def test_copies_fold_into_transits() -> None:
    garp = b"garp" * 10
    frames = [
        fr(0, IF_A, "in", garp),
        fr(5, IF_B, "out", garp),
        fr(6, IF_C, "out", garp),
        # The same bytes again (a GARP repeat): a new transit, not a third delivery.
        fr(100, IF_A, "in", garp),
        fr(104, IF_C, "out", garp),
        fr(105, IF_B, "out", garp),
        # Injected by the fabric: outbound only.
        fr(200, IF_B, "out", b"answer" * 10),
        # Dropped by the fabric: inbound only.
        fr(300, IF_C, "in", b"dropped" * 10),
        # Far outside the window: not a copy of the first GARP.
        fr(10**6, IF_B, "out", garp),
    ]
    trs = transits(reversed(frames))
    assert [(t.sender, t.receivers, t.injected, t.dropped) for t in trs] == [
        ("ha_first", ("observer", "ha_second"), False, False),
        ("ha_first", ("ha_second", "observer"), False, False),
        ("fabric", ("observer",), True, False),
        ("ha_second", (), False, True),
        ("fabric", ("observer",), True, False),
    ]
    assert trs[0].time == 0.0 and trs[2].time == pytest.approx(200e-6)


# -- probes -----------------------------------------------------------------------------------


@given(st.integers(0, 2**64 - 1), st.text(min_size=1, max_size=32))
def test_probe_payload_round_trip(seq: int, name: str) -> None:
    assert decode_payload(encode_request(seq)).seq == seq  # type: ignore[union-attr]
    reply = decode_payload(encode_reply(seq, name))
    assert reply is not None and (reply.kind, reply.seq) == ("reply", seq)
    assert reply.responder == name.encode()[:64].decode(errors="replace")
    assert decode_payload(b"VLzz" + bytes(8)) is None


def results(pattern: str, rate: float = 1000.0) -> ProbeResults:
    """Probe results from a pattern: one letter per probe, the responder (or '.' for lost)."""
    items = []
    for i, ch in enumerate(pattern):
        sent = 100.0 + i / rate
        if ch == ".":
            items.append(ProbeResult(i, sent))
        else:
            items.append(
                ProbeResult(i, sent, sent + 0.0002, {"a": "ha_first", "b": "ha_second"}[ch])
            )
    return ProbeResults(items, rate)


def test_outages_and_segments() -> None:
    r = results("..aaa....bb.b..")
    (gap, small) = r.outages()
    assert (gap.old, gap.new, gap.lost) == ("ha_first", "ha_second", 4)
    assert gap.duration == pytest.approx(0.005) and gap.send_gap == pytest.approx(0.005)
    assert small.lost == 1 and r.outages(min_lost=2) == [gap]
    assert [(w, a.seq, b.seq) for w, a, b in r.segments()] == [
        ("ha_first", 2, 4),
        ("ha_second", 9, 12),
    ]
    assert r.served_by() == {"ha_first": 3, "ha_second": 3}
    assert r.served_by(since=r[9].received) == {"ha_second": 3}
    assert r.send_rate() == pytest.approx(1000.0)


def test_late_replies_count_as_lost_in_outages() -> None:
    items = [ProbeResult(0, 1.0, 1.0001, "a"), ProbeResult(1, 1.001, 1.6, "a")]
    items += [ProbeResult(2, 1.002), ProbeResult(3, 1.003, 1.0031, "b")]
    (gap,) = ProbeResults(items, 1000.0).outages()
    assert (gap.last_before.seq, gap.first_after.seq, gap.lost) == (0, 3, 2)


# -- timeline ---------------------------------------------------------------------------------


def test_timeline_merges_every_stream_in_order() -> None:
    probe = results("aa..bb")
    advert = VrrpAdvert(
        time=100.0025,
        sender="ha_second",
        src_mac=B_MAC,
        dst_mac="01:00:5e:00:00:12",
        src_ip="10.200.51.33",
        dst_ip="224.0.0.18",
        ttl=255,
        version=3,
        type=1,
        vrid=1,
        priority=100,
        count=1,
        adver_int=0.1,
        addresses=(VIP,),
        checksum=0,
        checksum_form="pseudo-header",
    )
    garp = ArpEvent(
        time=100.0031,
        sender="ha_second",
        src_mac=B_MAC,
        dst_mac="ff:ff:ff:ff:ff:ff",
        op=1,
        kind="garp",
        sha=B_MAC,
        spa=VIP,
        tha="00:00:00:00:00:00",
        tpa=VIP,
    )
    wire = ProbePacket(
        time=100.0041,
        sender="ha_second",
        src_mac=B_MAC,
        dst_mac=A_MAC,
        proto="udp",
        direction_kind="reply",
        seq=4,
        responder="ha_second",
        src_ip=VIP,
        dst_ip="10.200.51.34",
    )
    neigh = NeighbourChange(100.0032, VIP, B_MAC, "STALE", "new", 2)
    sdn = '{"time": 100.0030, "event": "learned", "ip": "10.200.51.10"}\n\n{"no": "time"}'
    router = [(100.0021, "ha_second", "transition", "MASTER")]
    tl = merge(
        from_probes(probe),
        from_capture([advert, garp, wire], probes=True),
        from_neighbours([neigh]),
        from_sdn(sdn),
        router,
    )
    assert [(e.source, e.kind) for e in tl] == [
        ("probe", "served"),
        ("probe", "last-served"),
        ("probe", "outage"),
        ("ha_second", "transition"),
        ("capture", "advert"),
        ("sdn", "learned"),
        ("capture", "garp"),
        ("neigh:observer", "neighbour"),
        ("capture", "probe-served"),
        ("probe", "served"),
        ("probe", "last-served"),
    ]
    assert tl.first(kind="outage").data["lost"] == 2  # type: ignore[union-attr]
    assert tl.last(source="capture").kind == "probe-served"  # type: ignore[union-attr]
    assert len(tl.select(start=100.003, end=100.004)) == 3
    text = tl.render(t0=100.0)
    assert "     +2.500 ms  capture" in text and "VRRPv3 vrid 1 prio 100" in text
    assert json.loads(json.dumps(tl.as_json(t0=100.0)))[0]["t_ms"] == pytest.approx(0.2)


def test_events_from_frames_without_a_file() -> None:
    garp = bytes(
        Ether(src=A_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=A_MAC, psrc=VIP, pdst=VIP)
    )
    evs = events([fr(0, IF_A, "in", garp), fr(3, IF_B, "out", garp)])
    assert len(evs) == 1 and evs[0].receivers == ("observer",)  # type: ignore[union-attr]
    copies = events([fr(0, IF_A, "in", garp), fr(3, IF_B, "out", garp)], dedupe=False)
    assert [(e.sender, e.direction) for e in copies] == [("ha_first", "in"), ("?", "out")]


def test_nud_names() -> None:
    assert nud_name(0x02) == "REACHABLE" and nud_name(0) == "NONE"
    assert nud_name(0x20) == "FAILED" and nud_name(0x06) == "REACHABLE|STALE"


def netlink_neigh(kind: int, family: int, dst: bytes, mac: bytes | None, state: int) -> bytes:
    """An rtnetlink neighbour message as the kernel sends it."""

    def attr(atype: int, value: bytes) -> bytes:
        return struct.pack("=HH", 4 + len(value), atype) + value + bytes((-len(value)) % 4)

    body = struct.pack("=BBHiHBB", family, 0, 0, 2, state, 0, 1) + attr(1, dst)
    if mac is not None:
        body += attr(2, mac)
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_neighbour_messages_are_decoded() -> None:
    data = netlink_neigh(28, 2, bytes([10, 200, 51, 10]), bytes.fromhex("00005e000101"), 0x02)
    data += netlink_neigh(29, 10, bytes(15) + b"\x01", None, 0x20)
    data += struct.pack("=IHHII", 20, 16, 0, 0, 0) + bytes(4)  # RTM_NEWLINK: not ours
    got = list(parse_neighbour_messages(data, 5.0))
    assert got == [
        NeighbourChange(5.0, VIP, "00:00:5e:00:01:01", "REACHABLE", "new", 2),
        NeighbourChange(5.0, "::1", None, "FAILED", "del", 2),
    ]


def test_a_failure_announced_after_a_sender_reopened_the_entry_still_counts_as_failed() -> None:
    # The kernel notifies an unresolved entry only when it fails it; a packet sent while the
    # failed entry hands its queue back re-opens it, and the message then reads INCOMPLETE.
    reopened = NeighbourChange(6.6, VIP, None, "INCOMPLETE", "new", 2)
    assert reopened.failed
    assert NeighbourChange(6.6, VIP, None, "FAILED", "new", 2).failed
    # A snapshot of an asking entry, or a resolved one, is no failure.
    assert not NeighbourChange(6.6, VIP, None, "INCOMPLETE", "dump", 2).failed
    assert not NeighbourChange(6.6, VIP, "00:00:5e:00:01:01", "REACHABLE", "new", 2).failed


def test_tcp_is_cut_before_the_folding_and_nothing_else_is() -> None:
    """A service's TCP (1,000 connections a second) decodes into no event, so events() drops it
    before hashing every copy; an ARP packet and a UDP probe beside it still decode."""
    from scapy.layers.inet import TCP

    from lab.capture_events import _is_tcp

    mac = {"src": "fa:16:3e:08:e6:15", "dst": "00:00:5e:00:01:01"}
    tcp = bytes(Ether(**mac) / IP(src="10.200.51.34", dst="10.200.51.10") / TCP(dport=80))
    tcp6 = bytes(Ether(**mac) / IPv6(src="2001:db8::34", dst="2001:db8::10") / TCP(dport=80))
    arp = bytes(
        Ether(src=mac["src"], dst="ff:ff:ff:ff:ff:ff")
        / ARP(psrc="10.200.51.34", pdst="10.200.51.10")
    )
    probe = bytes(
        Ether(**mac)
        / IP(src="10.200.51.34", dst="10.200.51.10")
        / UDP(sport=40000, dport=50051)
        / Raw(encode_request(7))
    )
    assert _is_tcp(tcp) and _is_tcp(tcp6)
    assert not _is_tcp(arp) and not _is_tcp(probe)
    frames = [fr(0, IF_B, "in", tcp), fr(1, IF_B, "in", arp), fr(2, IF_B, "in", probe)]
    kinds = [type(e).__name__ for e in events(frames)]
    assert kinds == ["ArpEvent", "ProbePacket"]
