"""GARP / unsolicited NA frames, and the daemon's receive path fed garbage (no namespaces).

The frames are checked by an independent decoder (scapy). The receive path is driven with
fake sockets and links, so the property "malformed input is counted, never crashes" is tested
with hypothesis over arbitrary bytes.
"""

from __future__ import annotations

import struct
import time
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from vrrp.daemon import Daemon
from vrrp.netio import (
    Received,
    _parse_link_messages,
    accept_mode_ruleset,
    garp_frame,
    mac_bytes,
    unsolicited_na_frame,
)
from vrrp.packet import VRRP_GROUP_V4, Advert, Reason, encode
from vrrp.state import State

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "seed"


def test_mac_bytes() -> None:
    assert mac_bytes("00:00:5e:00:01:0a") == b"\x00\x00\x5e\x00\x01\x0a"


def test_garp_is_a_broadcast_request_from_the_vmac() -> None:
    frame = Ether(garp_frame(IPv4Address("10.200.51.10"), "00:00:5e:00:01:01"))
    assert frame.dst == "ff:ff:ff:ff:ff:ff"
    assert frame.src == "00:00:5e:00:01:01"  # A01: Ethernet source is the VMAC
    arp = frame[ARP]
    assert arp.op == 1  # keepalived sends GARPs as requests
    assert arp.hwsrc == "00:00:5e:00:01:01"  # A01: sha = VMAC
    assert arp.psrc == arp.pdst == "10.200.51.10"
    assert arp.hwdst == "ff:ff:ff:ff:ff:ff"
    assert len(bytes(frame)) == 42


def test_unsolicited_na_from_the_vmac() -> None:
    raw = unsolicited_na_frame(IPv6Address("2001:db8::10"), "00:00:5e:00:02:05")
    frame = Ether(raw)
    assert frame.dst == "33:33:00:00:00:01" and frame.src == "00:00:5e:00:02:05"
    ip6 = frame[IPv6]
    assert ip6.hlim == 255 and ip6.dst == "ff02::1" and ip6.src == "2001:db8::10"
    na = frame[ICMPv6ND_NA]
    assert (na.R, na.S, na.O) == (0, 0, 1)
    assert na.tgt == "2001:db8::10"
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == "00:00:5e:00:02:05"
    # The checksum we computed is the one scapy computes.
    ours = na.cksum
    del na.cksum
    assert Ether(bytes(frame))[ICMPv6ND_NA].cksum == ours


def test_unsolicited_na_router_flag() -> None:
    frame = Ether(
        unsolicited_na_frame(IPv6Address("2001:db8::1"), "00:00:5e:00:02:01", router=True)
    )
    assert frame[ICMPv6ND_NA].R == 1


# --- the receive path with fakes -------------------------------------------------------------


class _FakeLinks:
    def __init__(self) -> None:
        self.addresses: set[tuple[str, str]] = set()

    def index(self, ifname: str) -> int:
        return 2

    def mac(self, ifname: str) -> str:
        return "fa:16:3e:00:00:01"

    def is_up(self, ifname: str) -> bool:
        return True

    def forget(self) -> None:
        pass

    def primary_address(self, ifname: str, family: int) -> Any:
        return ip_address("10.200.51.32")

    def create_vmac(self, *args: Any) -> bool:
        return True

    def delete_vmac(self, *args: Any) -> None:
        pass

    def add_address(self, dev: str, addr: Any) -> bool:
        self.addresses.add((dev, str(addr)))
        return True

    def remove_address(self, dev: str, addr: Any) -> bool:
        self.addresses.discard((dev, str(addr)))
        return True

    def cleanup(self) -> None:
        pass


class _FakeSocket:
    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.sent: list[tuple[bytes, Any, Any]] = []

    def join(self) -> None:
        pass

    def leave(self) -> None:
        pass

    def send(self, payload: bytes, src: Any, dst: Any) -> bool:
        self.sent.append((payload, src, dst))
        return True

    def close(self) -> None:
        pass


class _FakeFrames:
    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []

    def send(self, ifname: str, frame: bytes) -> bool:
        self.frames.append((ifname, frame))
        return True

    def close(self) -> None:
        pass


class _Harness(Daemon):
    """A daemon whose kernel side is fake: sockets record, links remember addresses."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), pidfiles=[], control=None)
        self.links = _FakeLinks()  # type: ignore[assignment]
        self.frames = _FakeFrames()  # type: ignore[assignment]
        self.spec = self.load()
        self.fake_tx = _FakeSocket("ens3")
        self.fake_rx = _FakeSocket("ens3")
        for ispec in self.spec.instances:
            self._start_instance(ispec, time.monotonic())

    def _rx(self, ifname: str, family: int) -> Any:
        from vrrp.packet import Counters

        self.rx_counters.setdefault((ifname, family), Counters())
        return self.fake_rx

    def _tx(self, ifname: str, family: int) -> Any:
        return self.fake_tx

    def feed(
        self,
        payload: bytes,
        *,
        src: str = "10.200.51.33",
        dst: str = "10.200.51.32",
        ttl: int = 255,
        now: float | None = None,
    ) -> None:
        received = Received(ip_address(src), ip_address(dst), ttl, payload)
        key = ("ens3", 4)
        self._dispatch(key, received, self.rx_counters[key], now or time.monotonic())


def _seed_harness() -> _Harness:
    return _Harness(SEED / "ha_first.conf")


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64), ttl=st.integers(0, 255), multicast=st.booleans())
def test_garbage_is_counted_never_raised(payload: bytes, ttl: int, multicast: bool) -> None:
    harness = _seed_harness()
    dst = str(VRRP_GROUP_V4) if multicast else "10.200.51.32"
    harness.feed(payload, ttl=ttl, dst=dst)
    counters = harness.rx_counters[("ens3", 4)]
    assert counters.received == 1
    assert counters.accepted + counters.discarded == 1
    assert harness.instances["vrrp_1"].machine.state is State.BACKUP


def test_bad_checksum_is_counted_for_the_instance() -> None:
    harness = _seed_harness()
    good = encode(Advert.v2(1, 100, ["10.200.51.10"]), src="10.200.51.33", dst="10.200.51.32")
    bad = good[:6] + bytes([good[6] ^ 0xFF]) + good[7:]
    harness.feed(bad)
    harness.feed(good)
    inst = harness.instances["vrrp_1"]
    assert inst.counters[Reason.CHECKSUM] == 1
    assert inst.counters.accepted == 1
    status = harness.status()["instances"]["vrrp_1"]
    assert status["rx"]["reasons"]["checksum"] == 1 and status["rx"]["accepted"] == 1


def test_unicast_ttl_follows_keepalived(tmp_path: Path) -> None:
    """A unicast advert's TTL is checked only against the peer's min_ttl/max_ttl."""
    good = encode(Advert.v2(1, 100, ["10.200.51.10"]), src="10.200.51.33", dst="10.200.51.32")
    harness = _seed_harness()
    harness.feed(good, ttl=64)  # keepalived 2.2.7 sends IPv6 unicast with hop limit 64
    inst = harness.instances["vrrp_1"]
    assert inst.counters.accepted == 1 and inst.counters[Reason.TTL] == 0
    assert harness.status()["instances"]["vrrp_1"]["unicast_ttl_not_255_accepted"] == {"64": 1}
    conf = tmp_path / "k.conf"
    conf.write_text(
        (SEED / "ha_first.conf")
        .read_text()
        .replace("10.200.51.33 dev ens3", "10.200.51.33 dev ens3 min_ttl 255")
    )
    strict = _Harness(conf)
    strict.feed(good, ttl=64)
    strict.feed(good)
    counters = strict.instances["vrrp_1"].counters
    assert counters[Reason.TTL] == 1 and counters.accepted == 1


def test_unicast_instance_ignores_strangers_and_the_group() -> None:
    harness = _seed_harness()
    advert = encode(Advert.v2(1, 250, ["10.200.51.10"]), src="10.200.51.99", dst="10.200.51.32")
    harness.feed(advert, src="10.200.51.99")
    group = encode(Advert.v2(1, 250, ["10.200.51.10"]), src="10.200.51.33", dst=VRRP_GROUP_V4)
    harness.feed(group, dst=str(VRRP_GROUP_V4))
    inst = harness.instances["vrrp_1"]
    assert inst.counters.accepted == 0
    assert inst.discards == {"unknown-peer": 2}


def test_master_sends_adverts_garps_and_priority_zero_on_shutdown() -> None:
    harness = _seed_harness()
    inst = harness.instances["vrrp_1"]
    now = time.monotonic()
    harness._fire_timers(now + inst.machine.master_down_interval + 0.001)
    assert inst.machine.state is State.MASTER
    assert ("vrrp.1", "10.200.51.10/32") in harness.links.addresses  # type: ignore[attr-defined]
    payload, src, dst = harness.fake_tx.sent[-1]
    assert (str(src), str(dst)) == ("10.200.51.32", "10.200.51.33")
    assert payload[2] == 200  # our priority
    frames = harness.frames.frames  # type: ignore[attr-defined]
    assert len(frames) == 5 and all(f[0] == "ens3" for f in frames)  # garp_master_repeat
    assert Ether(frames[0][1]).src == "00:00:5e:00:01:01"
    harness._stop_instance(inst, time.monotonic())
    assert harness.fake_tx.sent[-1][0][2] == 0  # F02: priority 0 on shutdown
    assert not harness.links.addresses  # type: ignore[attr-defined]


def _newlink(name: str, flags: int, kind: int = 16) -> bytes:
    attr_name = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(attr_name), 3) + attr_name
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BxHiII", 0, 1, 2, flags, 0xFFFFFFFF) + attr
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_link_messages_parse() -> None:
    data = _newlink("ens3", 0x1 | 0x40) + _newlink("vrrp.1", 0x1) + _newlink("gone", 0x41, 17)
    assert _parse_link_messages(data) == [("ens3", True), ("vrrp.1", False), ("gone", False)]
    assert _parse_link_messages(b"\x00" * 7) == []


def test_interface_down_is_fault_with_priority_zero_and_back() -> None:
    harness = _seed_harness()
    inst = harness.instances["vrrp_1"]
    now = time.monotonic()
    harness._fire_timers(now + inst.machine.master_down_interval + 0.001)
    assert inst.machine.state is State.MASTER
    harness.link_up["ens3"] = False
    harness._reassess(inst, time.monotonic())
    assert inst.fault and harness.status()["instances"]["vrrp_1"]["state"] == "FAULT"
    assert harness.fake_tx.sent[-1][0][2] == 0  # priority 0 on the way to FAULT
    assert not harness.links.addresses  # type: ignore[attr-defined]
    harness.link_up["ens3"] = True
    harness._reassess(inst, time.monotonic())
    assert not inst.fault and inst.machine.state is State.BACKUP


def test_weighted_track_interface_changes_priority(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        (SEED / "ha_first.conf")
        .read_text()
        .replace(
            "    debug 2\n", "    debug 2\n    track_interface {\n        eth9 weight -150\n    }\n"
        )
    )
    harness = _Harness(conf)
    inst = harness.instances["vrrp_1"]
    assert inst.machine.priority == 200
    harness.link_up["eth9"] = False
    harness._reassess(inst, time.monotonic())
    assert inst.machine.priority == 50 and not inst.fault


def test_accept_mode_ruleset() -> None:
    text = accept_mode_ruleset(
        [IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1"), IPv6Address("2001:db8::1")]
    )
    assert text.startswith("add table inet vrrp_bundled\ndelete table inet vrrp_bundled\n")
    assert "elements = { 10.0.0.1, 10.0.0.2 }" in text
    assert "elements = { 2001:db8::1 }" in text
    assert "ip daddr @vips4 drop" in text and "nd-neighbor-solicit" in text
    empty = accept_mode_ruleset([])
    assert "elements" not in empty and "set vips4 { type ipv4_addr; }" in empty


class _Queued:
    """A receive socket with datagrams already queued; notes when each one is read."""

    def __init__(self, ifname: str, src: str, dst: str, payloads: list[bytes]) -> None:
        self.ifname = ifname
        self.src, self.dst = ip_address(src), ip_address(dst)
        self.payloads = payloads
        self.read_at: list[float] = []

    def receive(self) -> Received | None:
        if not self.payloads:
            return None
        self.read_at.append(time.monotonic())
        return Received(self.src, self.dst, 255, self.payloads.pop(0))


def test_each_datagram_starts_its_timers_when_it_is_read() -> None:
    """A priority 0 read behind another advert in the same wake-up starts Skew_Time when it is
    read, not when the loop woke: Master_Down_Timer never ends before Skew_Time after it."""
    harness = _Harness(SEED / "ha_second.conf")
    src, dst = "10.200.51.32", "10.200.51.33"
    queued = _Queued(
        "ens3",
        src,
        dst,
        [encode(Advert.v2(1, prio, ["10.200.51.10"]), src=src, dst=dst) for prio in (200, 0)],
    )
    key = ("ens3", 4)
    harness.rx_sockets[key] = queued  # type: ignore[assignment]
    harness._on_readable(key)
    machine = harness.instances["vrrp_1"].machine
    assert len(queued.read_at) == 2 and machine.state is State.BACKUP
    deadline = machine.master_down_timer
    assert deadline is not None and deadline >= queued.read_at[1] + machine.skew_time, (
        deadline,
        queued.read_at,
    )
