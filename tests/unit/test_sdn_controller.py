"""The controller's ARP handling and update policies, driven without sockets or privileges.

A controller is assembled around fake tap senders; NFLOG messages are built as the kernel
builds them (attributes with the prefix, the physical input device and the payload).
"""

from __future__ import annotations

import io
import json
import socket
import struct
from pathlib import Path

import pytest

from lab.sdn import controller as c
from lab.sdn.profiles import SdnConfig

A_MAC, B_MAC, O_MAC = (bytes.fromhex(m) for m in ("fa163e000001", "fa163e000002", "fa163e000003"))
A_IP, B_IP, O_IP, VIP = (socket.inet_aton(f"10.0.0.{n}") for n in (1, 2, 3, 10))
TAPS = {1: "tapA", 2: "tapB", 3: "tapO"}


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, frame: bytes) -> int:
        self.sent.append(frame)
        return len(frame)


def make(profile: str = "arp-caching", **overrides: object) -> c.Controller:
    knobs = SdnConfig(profile=profile, **overrides).resolve()  # type: ignore[arg-type]
    ctl = c.Controller.__new__(c.Controller)
    ctl.out = io.StringIO()
    ctl.group = 7
    ctl.state_path = None
    net = c.Network("net", knobs.model_dump(mode="json"), dict(TAPS))
    for index, (mac, ip) in zip(TAPS, [(A_MAC, A_IP), (B_MAC, B_IP), (O_MAC, O_IP)], strict=True):
        net.bindings[ip] = c.Binding(mac, "fixed", TAPS[index], 0.0, fixed=True)
    ctl.networks = {"net": net}
    ctl.by_ifindex = dict.fromkeys(TAPS, net)
    ctl.senders = {i: FakeSender() for i in TAPS}  # type: ignore[misc]
    return ctl


def events(ctl: c.Controller) -> list[dict[str, object]]:
    return [json.loads(line) for line in ctl.out.getvalue().splitlines()]


def arp(op: int, sha: bytes, spa: bytes, tpa: bytes, tha: bytes = b"\x00" * 6) -> bytes:
    return c._ARP.pack(1, 0x0800, 6, 4, op, sha, spa, tha, tpa)


def deliver(
    ctl: c.Controller, prefix: str, index: int, proto: int, payload: bytes, src: bytes
) -> None:
    attrs = {
        c.NFULA_PREFIX: prefix.encode() + b"\x00",
        c.NFULA_IFINDEX_PHYSINDEV: struct.pack(">I", index),
        c.NFULA_IFINDEX_INDEV: struct.pack(">I", 99),  # the bridge: must not be used
        c.NFULA_PACKET_HDR: struct.pack(">HBB", proto, 0, 0),
        c.NFULA_HWADDR: struct.pack(">HH", 6, 0) + src + b"\x00\x00",
        c.NFULA_PAYLOAD: payload,
    }
    ctl.on_packet(attrs)


def request(ctl: c.Controller, tpa: bytes) -> None:
    deliver(ctl, "trap", 3, c.ETH_P_ARP, arp(1, O_MAC, O_IP, tpa), O_MAC)


def reply(ctl: c.Controller, index: int, mac: bytes, ip: bytes) -> None:
    deliver(ctl, "learn", index, c.ETH_P_ARP, arp(2, mac, ip, O_IP, O_MAC), mac)


def garp(ctl: c.Controller, index: int, mac: bytes) -> None:
    deliver(ctl, "trap", index, c.ETH_P_ARP, arp(1, mac, VIP, VIP), mac)


def answered_mac(ctl: c.Controller) -> bytes:
    frame = ctl.senders[3].sent[-1]  # type: ignore[attr-defined]
    assert frame[:6] == O_MAC and frame[12:14] == b"\x08\x06" and len(frame) == 60
    fields = c._ARP.unpack_from(frame, 14)
    assert fields[4] == 2 and fields[7] == O_MAC and fields[8] == O_IP
    assert frame[6:12] == fields[5]  # Ethernet source = sha
    return fields[5]


def test_fixed_ips_are_answered_from_the_cache() -> None:
    ctl = make()
    request(ctl, A_IP)
    assert answered_mac(ctl) == A_MAC
    assert events(ctl)[-1]["event"] == "answered"


def test_a_miss_is_relayed_to_the_other_ports_only() -> None:
    ctl = make()
    request(ctl, VIP)
    assert len(ctl.senders[1].sent) == len(ctl.senders[2].sent) == 1  # type: ignore[attr-defined]
    assert not ctl.senders[3].sent  # type: ignore[attr-defined]
    relayed = ctl.senders[1].sent[0]  # type: ignore[attr-defined]
    assert relayed[:6] == b"\xff" * 6 and relayed[6:12] == O_MAC
    assert events(ctl)[-1]["event"] == "relayed"


def test_sticky_keeps_the_first_reply() -> None:
    ctl = make()
    reply(ctl, 1, A_MAC, VIP)
    garp(ctl, 2, B_MAC)
    reply(ctl, 2, B_MAC, VIP)
    request(ctl, VIP)
    assert answered_mac(ctl) == A_MAC
    kinds = [e["event"] for e in events(ctl)]
    assert kinds == ["learned", "dropped", "ignored", "answered"]
    assert events(ctl)[1]["reason"] == "garp-not-honoured"


def test_on_garp_replaces_the_binding() -> None:
    ctl = make(update="on-garp")
    reply(ctl, 1, A_MAC, VIP)
    garp(ctl, 2, B_MAC)
    request(ctl, VIP)
    assert answered_mac(ctl) == B_MAC
    learned = [e for e in events(ctl) if e["event"] == "learned"]
    assert learned[-1]["replaced"] == "fa:16:3e:00:00:01"


def test_ttl_expires_learned_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(c.time, "time", lambda: now[0])
    ctl = make(update="ttl=2")
    reply(ctl, 1, A_MAC, VIP)
    reply(ctl, 2, B_MAC, VIP)  # before expiry: ignored
    now[0] += 2.5
    request(ctl, VIP)  # expired: evicted, relayed
    reply(ctl, 2, B_MAC, VIP)
    request(ctl, VIP)
    assert answered_mac(ctl) == B_MAC
    kinds = [e["event"] for e in events(ctl)]
    assert kinds == ["learned", "ignored", "expired", "relayed", "learned", "answered"]


def test_fixed_bindings_never_change() -> None:
    ctl = make(update="on-garp", learn_from=["garp", "arp-reply"])
    deliver(ctl, "trap", 2, c.ETH_P_ARP, arp(1, B_MAC, A_IP, A_IP), B_MAC)
    request(ctl, A_IP)
    assert answered_mac(ctl) == A_MAC


def test_responder_static_answers_fixed_and_relays_the_rest() -> None:
    ctl = make("neutron-ovs-ofw")
    request(ctl, B_IP)
    assert answered_mac(ctl) == B_MAC
    request(ctl, VIP)
    assert events(ctl)[-1] == {**events(ctl)[-1], "event": "relayed", "reason": "miss"}


def test_cloud_l3_drops_misses_and_garps() -> None:
    ctl = make("cloud-l3")
    request(ctl, VIP)
    garp(ctl, 1, A_MAC)
    assert [e["reason"] for e in events(ctl)] == ["no-binding", "garp-dropped"]
    assert not any(s.sent for s in ctl.senders.values())  # type: ignore[attr-defined]


def test_bind_pairs_answers_for_the_first_port_listing_the_vip(tmp_path: Path) -> None:
    """cloud-l3: a VIP listed as an allowed pair is answered like a secondary private IP, for
    the first port that lists it; a GARP from another port does not move it."""
    ctl = make("cloud-l3")
    state = tmp_path / "state.json"

    def port(tap: str, mac: str, pairs: list[dict[str, str]]) -> dict[str, object]:
        spec = {"network": "net", "tap": tap, "mac": mac, "instance": tap}
        return {"spec": spec, "pairs": pairs}

    state.write_text(
        json.dumps(
            {
                "ports": {
                    "a": port("tapA", "fa:16:3e:00:00:01", [{"ip_address": "10.0.0.10"}]),
                    "b": port("tapB", "fa:16:3e:00:00:02", [{"ip_address": "10.0.0.10"}]),
                }
            }
        )
    )
    ctl.state_path = str(state)
    request(ctl, VIP)
    assert answered_mac(ctl) == A_MAC
    garp(ctl, 2, B_MAC)
    request(ctl, VIP)
    assert answered_mac(ctl) == A_MAC  # the VIP never moves by itself
    state.write_text(
        state.read_text().replace('"pairs": [{"ip_address": "10.0.0.10"}]', '"pairs": []', 1)
    )
    request(ctl, VIP)
    assert answered_mac(ctl) == B_MAC  # moved "through the API": the first port lost the pair


def test_learning_from_ip_traffic() -> None:
    ctl = make(learn_from=["ip"])
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20, 0, 0, 64, 17, 0, VIP, O_IP)
    deliver(ctl, "learn", 1, c.ETH_P_IP, header, A_MAC)
    request(ctl, VIP)
    assert answered_mac(ctl) == A_MAC


def test_port_security_drops_become_events() -> None:
    ctl = make()
    deliver(ctl, "drop tapA", 1, c.ETH_P_ARP, arp(2, A_MAC, VIP, O_IP), A_MAC)
    (event,) = events(ctl)
    assert (event["event"], event["reason"], event["spa"]) == (
        "dropped",
        "port-security",
        "10.0.0.10",
    )


def test_commands_dump_and_flush() -> None:
    ctl = make()
    reply(ctl, 1, A_MAC, VIP)
    ctl.on_command(json.dumps({"id": 1, "cmd": "dump", "network": None}))
    cache = events(ctl)[-1]["cache"]["net"]  # type: ignore[index]
    assert [(e["ip"], e["fixed"]) for e in cache] == [
        ("10.0.0.1", True),
        ("10.0.0.2", True),
        ("10.0.0.3", True),
        ("10.0.0.10", False),
    ]
    ctl.on_command(json.dumps({"id": 2, "cmd": "flush", "network": "net"}))
    assert events(ctl)[-1] == {**events(ctl)[-1], "id": 2, "flushed": 1}
    ctl.on_command(json.dumps({"id": 3, "cmd": "nope"}))
    assert "error" in events(ctl)[-1]


def test_the_controller_imports_no_heavy_module() -> None:
    source = Path(c.__file__).read_text()
    assert "scapy" not in source.split('"""', 2)[2]
    assert "import lab" not in source and "from lab" not in source
