"""The wire fuzzer's generator and oracle (``lab.wire_fuzz``, ``lab.wire_fuzz_oracle``): the
same seed gives the same frames, and the oracle's verdicts on hand-made frames are the RFCs'.

Frames here are built by hand with ``struct``, not by the generator, so that the oracle is
judged on bytes it did not make; :func:`test_oracle_agrees_with_the_codec` compares its RFC
5798 §7.1 checks with ``vrrp.packet.decode`` on every advert the generator makes.
"""

from __future__ import annotations

import struct
from collections import Counter
from ipaddress import ip_address

import pytest

from lab.wire_fuzz import FABRIC, expect, generate
from lab.wire_fuzz_oracle import (
    Delivered,
    Family,
    KernelDrop,
    Mode,
    Pair,
    Peer,
    Unsafe,
    check_advert,
    checksum,
    judge,
    pseudo_header,
)
from vrrp.packet import Advert, AdvertError, Reason, decode, encode

MASTER_MAC, BACKUP_MAC, OBSERVER_MAC = "fa:16:3e:8d:dc:bb", "fa:16:3e:f3:a9:a3", "fa:16:3e:08:e6:15"
GROUP4_MAC, GROUP6_MAC = "01:00:5e:00:00:12", "33:33:00:00:00:12"
LL = {
    "m": "fe80::f816:3eff:fe8d:dcbb",
    "b": "fe80::f816:3eff:fef3:a9a3",
    "o": "fe80::f816:3eff:fe08:e615",
}


def _pair(family: Family, mode: Mode, *, bridge: tuple[int, ...] = ()) -> Pair:
    unicast = mode == "unicast"
    if family == 4:
        m = Peer(MASTER_MAC, "10.200.51.32", "10.200.51.32", None, 200)
        b = Peer(BACKUP_MAC, "10.200.51.33", "10.200.51.33", None, 100)
        o = Peer(OBSERVER_MAC, "10.200.51.34", "10.200.51.34")
        vip, spare = "10.200.51.10", "10.200.51.99"
    else:
        g_m, g_b = "2001:db8:51::32", "2001:db8:51::33"
        m = Peer(MASTER_MAC, g_m if unicast else LL["m"], g_m, LL["m"], 200)
        b = Peer(BACKUP_MAC, g_b if unicast else LL["b"], g_b, LL["b"], 100)
        o = Peer(OBSERVER_MAC, LL["o"], "2001:db8:51::34", LL["o"])
        vip, spare = "2001:db8:51::10", "2001:db8:51::99"
    return Pair(
        family,
        mode,
        1,
        100,
        (vip,),
        m,
        b,
        o,
        spare,
        bridge_checks=bridge,
        bridge_listens=(4, 6),
    )


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _ipv4(
    payload: bytes, src: str, dst: str, *, ttl: int = 255, bad_checksum: bool = False
) -> bytes:
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            1,
            0,
            ttl,
            112,
            0,
            ip_address(src).packed,
            ip_address(dst).packed,
        )
    )
    value = checksum(bytes(header)) ^ (0x1111 if bad_checksum else 0)
    struct.pack_into("!H", header, 10, value)
    return bytes(header) + payload


def _ipv6(
    payload: bytes, src: str, dst: str, *, hop: int = 255, ext: bytes = b"", nh: int = 112
) -> bytes:
    first = struct.pack("!IHBB", 6 << 28, len(ext) + len(payload), nh, hop)
    return first + ip_address(src).packed + ip_address(dst).packed + ext + payload


def _frame(dst_mac: str, datagram: bytes) -> bytes:
    ethertype = 0x0800 if datagram[0] >> 4 == 4 else 0x86DD
    return _mac(dst_mac) + _mac(OBSERVER_MAC) + struct.pack("!H", ethertype) + datagram


def _advert(pair: Pair, priority: int, src: str, dst: str, **kw: int) -> bytes:
    return encode(Advert.v3(pair.vrid, priority, pair.vips, **kw), src=src, dst=dst)


# --- determinism -------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "mode"), [(4, "multicast"), (6, "unicast")])
def test_same_seed_same_frames(family: Family, mode: Mode) -> None:
    pair = _pair(family, mode)
    first = list(generate(pair, 7, 150))
    again = list(generate(pair, 7, 150))
    other = list(generate(pair, 8, 150))
    assert [i.frames for i in first] == [i.frames for i in again]
    assert [i.fates for i in first] == [i.fates for i in again]
    assert [i.frames for i in first] != [i.frames for i in other]
    assert len(first) == 150


def test_every_kind_of_fate_comes_up() -> None:
    """A modest run meets kernel drops, daemon discards of every reason, and valid adverts,
    and :func:`expect` adds them up to what was sent, per router."""
    families: tuple[Family, ...] = (4, 6)
    modes: tuple[Mode, ...] = ("multicast", "unicast")
    for family in families:
        for mode in modes:
            pair = _pair(family, mode, bridge=(4, 6))
            items = list(generate(pair, 1, 600))
            counts = expect(items)
            for role in ("master", "backup"):
                e = counts[role]
                daemon = e.socket["received"]
                assert sum(e.kernel_drops.values()) + daemon == e.sent == len(items)
                assert e.valid > 0 and e.kernel
            reasons = Counter[str]()
            for role in ("master", "backup"):
                reasons.update(counts[role].socket)
            wanted = {r.value for r in Reason} - {Reason.AUTH.value}  # v2 only
            assert wanted <= set(reasons), (family, mode, wanted - set(reasons))
            assert counts[FABRIC].sent == len(items)


# --- the oracle on hand-made frames ------------------------------------------------------


def test_bad_ipv4_header_checksum_is_the_kernels() -> None:
    pair = _pair(4, "multicast")
    group = "224.0.0.18"
    frame = _frame(
        GROUP4_MAC,
        _ipv4(_advert(pair, 50, "10.200.51.34", group), "10.200.51.34", group, bad_checksum=True),
    )
    fates = judge(pair, (frame,))
    for role in ("master", "backup"):
        fate = fates[role]
        assert isinstance(fate, KernelDrop) and fate.at == "router"
        assert set(fate.counters) == {"Ip:InHdrErrors", "IpExt:InCsumErrors"}
    # With br_netfilter between, the bridge drops it first and counts it in its namespace.
    bridged = judge(_pair(4, "multicast", bridge=(4,)), (frame,))
    assert all(isinstance(f, KernelDrop) and f.at == "bridge" for f in bridged.values())


def test_ttl_64_multicast_advert_is_discarded_for_its_ttl() -> None:
    pair = _pair(4, "multicast")
    group = "224.0.0.18"
    frame = _frame(
        GROUP4_MAC, _ipv4(_advert(pair, 50, "10.200.51.34", group), "10.200.51.34", group, ttl=64)
    )
    fates = judge(pair, (frame,))
    assert fates["master"] == Delivered(True, "ttl")
    assert fates["backup"] == Delivered(True, "ttl")


def test_ttl_64_unicast_advert_from_the_peer_is_valid() -> None:
    """keepalived's unicast rule: a peer's TTL is checked against its min/max only."""
    pair = _pair(4, "unicast")
    src, dst = "10.200.51.33", "10.200.51.32"
    frame = _frame(MASTER_MAC, _ipv4(_advert(pair, 50, src, dst), src, dst, ttl=64))
    fates = judge(pair, (frame,))
    assert fates["master"] == Delivered(True, None, "losing-advert")
    assert fates["backup"] == KernelDrop("another host's MAC")


def test_truncated_advert_is_a_length_discard() -> None:
    pair = _pair(6, "multicast")
    group = "ff02::12"
    message = _advert(pair, 50, LL["o"], group)[:13]
    fates = judge(pair, (_frame(GROUP6_MAC, _ipv6(message, LL["o"], group)),))
    assert fates["master"] == Delivered(True, "length")


def test_vrid_mismatch_is_counted_on_the_socket_only() -> None:
    pair = _pair(4, "multicast")
    group = "224.0.0.18"
    message = encode(Advert.v3(9, 50, pair.vips), src="10.200.51.34", dst=group)
    fates = judge(pair, (_frame(GROUP4_MAC, _ipv4(message, "10.200.51.34", group)),))
    assert fates["master"] == Delivered(False, "vrid")


def test_valid_lower_priority_advert_changes_no_state() -> None:
    pair = _pair(6, "multicast")
    group = "ff02::12"
    frame = _frame(GROUP6_MAC, _ipv6(_advert(pair, 50, LL["o"], group), LL["o"], group))
    fates = judge(pair, (frame,))
    assert fates["master"] == Delivered(True, None, "losing-advert")
    assert fates["backup"] == Delivered(True, None, "lower-priority")
    # Above the backup's priority, below the master's: the backup takes it as its master's.
    frame = _frame(GROUP6_MAC, _ipv6(_advert(pair, 150, LL["o"], group), LL["o"], group))
    assert judge(pair, (frame,))["backup"] == Delivered(True, None, None)


@pytest.mark.parametrize(
    ("priority", "interval"),
    [(0, 100), (200, 100), (254, 100), (150, 50)],
    ids=["resign", "equal-to-master", "above-master", "backup-adopts-interval"],
)
def test_a_valid_advert_that_would_change_state_is_refused(priority: int, interval: int) -> None:
    pair = _pair(4, "multicast")
    group = "224.0.0.18"
    message = _advert(pair, priority, "10.200.51.34", group, interval_cs=interval)
    with pytest.raises(Unsafe):
        judge(pair, (_frame(GROUP4_MAC, _ipv4(message, "10.200.51.34", group)),))


def test_unicast_instance_from_a_stranger_is_unknown_peer() -> None:
    pair = _pair(6, "unicast")
    src, dst = LL["o"], "2001:db8:51::32"
    frame = _frame(MASTER_MAC, _ipv6(_advert(pair, 50, src, dst), src, dst))
    assert judge(pair, (frame,))["master"] == Delivered(False, None, "unknown-peer")


def _options(kind: int) -> bytes:
    """A hop-by-hop / destination options header (next header 112): one 2-octet option of
    ``kind``, then PadN to 8 octets."""
    return bytes([112, 0, kind, 2, 0, 0, 1, 0])


@pytest.mark.parametrize(
    ("kind", "dropped"),
    [(0x1E, False), (0x5E, True), (0x9E, True), (0xDE, True)],
    ids=["skip", "discard", "discard-icmp", "discard-icmp-unless-multicast"],
)
def test_ipv6_option_actions(kind: int, dropped: bool) -> None:
    """RFC 8200 §4.2: an unknown option's top two bits say what to do with the packet."""
    pair = _pair(6, "multicast")
    group = "ff02::12"
    for nh in (0, 60):  # hop-by-hop, destination options
        datagram = _ipv6(
            _advert(pair, 50, LL["o"], group), LL["o"], group, ext=_options(kind), nh=nh
        )
        fate = judge(pair, (_frame(GROUP6_MAC, datagram),))["master"]
        if dropped:
            assert isinstance(fate, KernelDrop) and fate.counters == ("Ip6:Ip6InHdrErrors",)
        else:
            assert fate == Delivered(True, None, "losing-advert")


def test_routing_header_and_atomic_fragment() -> None:
    pair = _pair(6, "unicast")
    src, dst = "2001:db8:51::33", "2001:db8:51::32"
    message = _advert(pair, 50, src, dst)
    routing = bytes([112, 2, 253, 0, 0, 0, 0, 0]) + ip_address(pair.spare).packed
    fate = judge(pair, (_frame(MASTER_MAC, _ipv6(message, src, dst, ext=routing, nh=43)),))
    assert fate["master"] == Delivered(True, None, "losing-advert")
    # Segments Left 1 of an unknown type: RFC 8200 §4.4, parameter problem.
    left = routing[:3] + b"\x01" + routing[4:]
    fate = judge(pair, (_frame(MASTER_MAC, _ipv6(message, src, dst, ext=left, nh=43)),))
    dropped = fate["master"]
    assert isinstance(dropped, KernelDrop) and dropped.counters == ("Ip6:Ip6InHdrErrors",)
    atomic = struct.pack("!BBHI", 112, 0, 0, 0x5EED)
    fate = judge(pair, (_frame(MASTER_MAC, _ipv6(message, src, dst, ext=atomic, nh=44)),))
    assert fate["master"] == Delivered(True, None, "losing-advert", ("Ip6:Ip6ReasmOKs",))


def test_all_nodes_reaches_the_bridges_own_stack() -> None:
    pair = _pair(4, "multicast")
    dst = "224.0.0.1"
    frame = _frame(
        "01:00:5e:00:00:01", _ipv4(_advert(pair, 50, "10.200.51.34", dst), "10.200.51.34", dst)
    )
    fates = judge(pair, (frame,))
    assert fates["master"] == Delivered(False, None, "unicast-to-multicast")
    assert fates[FABRIC] == KernelDrop("no socket for protocol 112", ("Ip:InUnknownProtos",))


# --- the oracle against the codec --------------------------------------------------------


def _payload(frame: bytes) -> tuple[str, str, int, bytes] | None:
    """A plain frame's (src, dst, ttl, VRRP message); None with options or extensions."""
    data = frame[14:]
    if data[0] == 0x45 and data[9] == 112 and not struct.unpack_from("!H", data, 6)[0] & 0x3FFF:
        total = struct.unpack_from("!H", data, 2)[0]
        if 20 <= total <= len(data) and checksum(data[:20]) == 0:
            src, dst = str(ip_address(data[12:16])), str(ip_address(data[16:20]))
            return src, dst, data[8], data[20:total]
    if data[0] >> 4 == 6 and data[6] == 112:
        plen = struct.unpack_from("!H", data, 4)[0]
        src, dst = str(ip_address(data[8:24])), str(ip_address(data[24:40]))
        if 40 + plen <= len(data) and not ip_address(src).is_multicast:
            return src, dst, data[7], data[40 : 40 + plen]
    return None


def test_oracle_agrees_with_the_codec() -> None:
    """Two readings of RFC 5798 §7.1, written apart, agree on every advert the generator
    makes that fails at most one check: :func:`check_advert` and ``vrrp.packet.decode``."""
    compared = 0
    families: tuple[Family, ...] = (4, 6)
    for family in families:
        pair = _pair(family, "multicast")
        for item in generate(pair, 3, 800):
            got = _payload(item.frames[0]) if len(item.frames) == 1 else None
            if got is None:
                continue
            src, dst, ttl, message = got
            try:
                failed = check_advert(message, src=src, dst=dst, ttl=ttl, version=3, vrids={1})
            except Unsafe:
                continue
            if len(failed) > 1:
                continue
            try:
                decode(message, src=src, dst=dst, ttl=ttl, version=3, vrids={1})
                reason = None
            except AdvertError as err:
                reason = err.reason
            assert reason == (next(iter(failed)) if failed else None), (item.kind, message.hex())
            compared += 1
    assert compared > 500


def test_pseudo_header_matches_the_codec() -> None:
    """The oracle's own checksum sums as the codec's does, in both families."""
    for src, dst in (("10.200.51.34", "224.0.0.18"), (LL["o"], "ff02::12")):
        message = encode(
            Advert.v3(1, 50, ["10.0.0.1" if "." in src else "2001:db8::1"]), src=src, dst=dst
        )
        assert checksum(pseudo_header(src, dst, len(message)) + message) == 0
