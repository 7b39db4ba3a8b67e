"""Port security with real frames (issue 3, "what it must show" 1).

A sender instance writes crafted frames onto its ``ens3`` (AF_PACKET, built with scapy); a
receiver instance collects what arrives. Each frame carries a marker. After each batch a legit
sentinel frame follows the same path, so "dropped" means "not arrived although every expected
frame and the sentinel did". Each profile exercises one port-security mode of
docs/architecture.md#fabric-and-sdn.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from lab import Lab
from lab.sdn.probe import FrameSink, FrameSource, marker, send_frames
from lab.sdn.ruleset import link_local

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]

VIP = "10.0.0.10"
VMAC = "00:00:5e:00:01:01"
FAKE_MAC = "fa:16:3e:de:ad:01"
FAKE_IP = "10.0.0.99"

SCENARIO = """
name: ps-{profile}
networks:
  - name: net
    subnets:
      - cidr: 10.0.0.0/24
        allocation_pools: [{{start: 10.0.0.100, end: 10.0.0.200}}]
    sdn: {{profile: {profile}}}
instances:
  - name: sender
    ports: [{{network: net, fixed_ips: [10.0.0.101]}}]
  - name: receiver
    ports: [{{network: net, fixed_ips: [10.0.0.102]}}]
vips: [{{address: 10.0.0.10, network: net}}]
"""

#: profile → (port-security mode, does it check the ARP sha)
MODES = {
    "l2-plain": ("off", False),
    "neutron-ovs-hybrid": ("separate", False),
    "neutron-ovs-ofw": ("strict-pair", False),
    "ovn": ("strict-pair", True),
    "arp-caching": ("ip-only", False),
}


class Frames:
    """Marked frames from the sender's port to the receiver."""

    def __init__(self, lab: Lab) -> None:
        self.s, self.r = lab.node("sender"), lab.node("receiver")

    def udp(self, name: str, mac: str, ip: str) -> bytes:
        """A UDP datagram to the receiver from (mac, ip)."""
        frame = Ether(src=mac, dst=self.r.mac) / IP(src=ip, dst=str(self.r.ip))
        return bytes(frame / UDP(sport=4000, dport=9) / marker(name))

    def udp6(self, name: str, mac: str, ip: str) -> bytes:
        """An IPv6 UDP datagram to the receiver's link-local address from (mac, ip)."""
        dst = str(link_local(self.r.mac))
        frame = Ether(src=mac, dst=self.r.mac) / IPv6(src=ip, dst=dst)
        return bytes(frame / UDP(sport=4000, dport=9) / marker(name))

    def arp(self, name: str, eth: str, sha: str, spa: str) -> bytes:
        """A unicast ARP reply to the receiver; the marker rides in the Ethernet padding."""
        frame = Ether(src=eth, dst=self.r.mac) / ARP(
            op=2, hwsrc=sha, psrc=spa, hwdst=self.r.mac, pdst=str(self.r.ip)
        )
        return bytes(frame) + marker(name)


def cases(f: Frames, phase: int) -> dict[str, bytes]:
    """The frames sent in each phase of the pair changes."""
    smac, sip = f.s.mac, str(f.s.ip)
    if phase == 0:  # no allowed pair
        return {
            "legit_ip": f.udp("legit_ip", smac, sip),
            "spoof_mac": f.udp("spoof_mac", FAKE_MAC, sip),
            "spoof_ip": f.udp("spoof_ip", smac, FAKE_IP),
            "arp_legit": f.arp("arp_legit", smac, smac, sip),
            "arp_sha": f.arp("arp_sha", smac, FAKE_MAC, sip),
            "arp_spa": f.arp("arp_spa", smac, smac, FAKE_IP),
            "vip_port_mac": f.udp("vip_port_mac", smac, VIP),
            "vip_vmac": f.udp("vip_vmac", VMAC, VIP),
            "ip6_link_local": f.udp6("ip6_link_local", smac, str(link_local(smac))),
            "ip6_spoof": f.udp6("ip6_spoof", smac, "fe80::dead"),
        }
    if phase == 1:  # set_allowed_address(VIP): an IP-only pair, so (port MAC, VIP)
        return {
            "vip_port_mac": f.udp("vip_port_mac", smac, VIP),
            "vip_vmac": f.udp("vip_vmac", VMAC, VIP),
            "arp_vip_vmac": f.arp("arp_vip_vmac", VMAC, VMAC, VIP),
        }
    if phase == 2:  # set_allowed_address(VIP, VMAC)
        return {
            "vip_vmac": f.udp("vip_vmac", VMAC, VIP),
            "arp_vip_vmac": f.arp("arp_vip_vmac", VMAC, VMAC, VIP),
            # The VMAC with the port's fixed IP: no pair holds both, but each is allowed.
            "vmac_fixed_ip": f.udp("vmac_fixed_ip", VMAC, sip),
        }
    if phase == 3:  # set_allowed_address("10.0.0.64/28"): a CIDR pair
        return {
            "cidr_in": f.udp("cidr_in", smac, "10.0.0.70"),
            "cidr_out": f.udp("cidr_out", smac, "10.0.0.90"),
        }
    # phase 4: unset_allowed_address(VIP) removes both VIP pairs again
    return {
        "vip_port_mac": f.udp("vip_port_mac", smac, VIP),
        "vip_vmac": f.udp("vip_vmac", VMAC, VIP),
    }


def expected(mode: str, sha: bool, phase: int, name: str) -> bool:
    """Does ``mode`` let the frame ``name`` through in ``phase``?

    The modes: docs/architecture.md#fabric-and-sdn.
    """
    if mode == "off":
        return True
    always = {"legit_ip", "arp_legit", "ip6_link_local", "cidr_in"}
    never = {"spoof_ip", "arp_spa", "ip6_spoof", "cidr_out"}
    if name in always:
        return True
    if name in never:
        return False
    if name == "spoof_mac":
        return mode == "ip-only"
    if name == "arp_sha":
        return not sha
    if name in ("vip_port_mac",):
        return phase in (1, 2, 3)
    if name in ("vip_vmac", "arp_vip_vmac"):
        # An IP-only pair means (port MAC, VIP): only ip-only ignores the VMAC.
        return (phase == 1 and mode == "ip-only") or phase in (2, 3)
    if name == "vmac_fixed_ip":
        return mode in ("separate", "ip-only")
    raise AssertionError(name)


@pytest.mark.parametrize("profile", list(MODES))
def test_each_mode_accepts_and_drops_what_design_says(
    make_lab: Callable[..., Lab], profile: str
) -> None:
    mode, sha = MODES[profile]
    lab = make_lab(SCENARIO.format(profile=profile))
    frames = Frames(lab)
    port = lab.port("sender")
    changes: list[Callable[[], None]] = [
        lambda: None,
        lambda: port.set_allowed_address(VIP),
        lambda: port.set_allowed_address(VIP, VMAC),
        lambda: port.set_allowed_address("10.0.0.64/28"),
        lambda: port.unset_allowed_address(VIP),
    ]
    source = FrameSource(frames.s)
    wrong: list[str] = []
    with FrameSink(frames.r) as sink:
        for phase, change in enumerate(changes):
            change()  # then the very next frame must see the new pairs
            batch = cases(frames, phase)
            sentinel = f"sentinel{phase}"
            source.send(*batch.values(), frames.udp(sentinel, frames.s.mac, str(frames.s.ip)))
            want = {n for n in batch if expected(mode, sha, phase, n)}
            seen = {n for n in sink.wait_for({*want, sentinel}) if n in batch}
            sink.seen.clear()
            for name in batch:
                if (name in seen) != (name in want):
                    verdict = "passed" if name in seen else "was dropped"
                    wrong.append(f"phase {phase}: {name} {verdict}")
    source.close()
    assert not wrong, f"{profile} ({mode}): " + "; ".join(wrong)
    assert [str(p.ip_address) for p in port.allowed_address_pairs] == ["10.0.0.64/28"]
    if lab.fabric.sdn.controller is not None:  # drops are reported as controller events
        lab.fabric.sdn.controller.wait_for(
            lambda e: (
                e["event"] == "dropped"
                and e["reason"] == "port-security"
                and e.get("src_ip") == FAKE_IP
            ),
            timeout=2,
            what="a port-security drop event for the spoofed source IP",
        )


@pytest.fixture
def stream_lab(make_lab: Callable[..., Lab]) -> Iterator[Lab]:
    """A strict-pair lab for the no-gap test. Function scope; depends on ``make_lab``."""
    yield make_lab(SCENARIO.format(profile="neutron-ovs-ofw"))


def test_pair_changes_take_effect_at_once_without_a_gap(stream_lab: Lab) -> None:
    """A steady stream of legit frames loses nothing while pairs change 20 times, and the
    first VIP frame after each change already sees the new pairs."""
    frames = Frames(stream_lab)
    port = stream_lab.port("sender")
    smac, sip = frames.s.mac, str(frames.s.ip)
    stop = threading.Event()
    sent: list[str] = []

    def stream() -> None:
        source = FrameSource(frames.s)
        n = 0
        while not stop.is_set() and n < 20000:
            name = f"s{n}"
            source.send(frames.udp(name, smac, sip))
            sent.append(name)
            n += 1
        source.close()

    wrong: list[str] = []
    with FrameSink(frames.r) as sink:
        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            source = FrameSource(frames.s)
            for i in range(10):
                port.set_allowed_address(VIP)
                source.send(frames.udp(f"vip_on{i}", smac, VIP))
                port.unset_allowed_address(VIP)
                source.send(frames.udp(f"vip_off{i}", smac, VIP))
                sink.drain()
            source.close()
        finally:
            stop.set()
            streamer.join()
        source = FrameSource(frames.s)
        source.send(frames.udp("sentinel", smac, sip))
        source.close()
        seen = sink.wait_for({*sent, "sentinel", *(f"vip_on{i}" for i in range(10))}, timeout=5)
        wrong = [n for n in seen if n.startswith("vip_off")]
    assert len(sent) > 100, "the stream should have run during the changes"
    assert not wrong, f"VIP frames passed right after their pair was removed: {wrong}"


def test_port_set_command_changes_a_running_lab(make_lab: Callable[..., Lab]) -> None:
    """``vrrp-lab port-set`` from another process, spelled like ``openstack port set``."""
    lab = make_lab(SCENARIO.format(profile="neutron-ovs-ofw"))
    frames = Frames(lab)
    smac, sip = frames.s.mac, str(frames.s.ip)

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lab", *argv, "--lab", lab.id],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )

    def passes(name: str) -> bool:
        with FrameSink(frames.r) as sink:
            source = FrameSource(frames.s)
            source.send(frames.udp(name, smac, VIP), frames.udp(f"{name}-end", smac, sip))
            source.close()
            return name in sink.wait_for({f"{name}-end"})

    assert not passes("before")
    done = cli("port-set", "sender", "--allowed-address", f"ip-address={VIP}")
    assert done.returncode == 0, done.stderr
    assert f"ip-address={VIP}" in done.stdout
    assert passes("after-set")
    done = cli("port-unset", "sender", "--allowed-address", f"ip-address={VIP}")
    assert done.returncode == 0, done.stderr
    assert not passes("after-unset")
    done = cli("port-unset", "sender", "--allowed-address", f"ip-address={VIP}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "has no allowed address pair" in done.stderr


def test_static_fdb_drops_unknown_unicast_and_pins_a_vmac_to_its_first_port(
    make_lab: Callable[..., Lab],
) -> None:
    """OVN-like FDB (``static-first``): a frame to the VMAC reaches nobody until a port lists
    the VMAC as a pair; from then on it reaches that port, even after another port lists it
    too and sends a GARP from it (the real OVN 23.03 keeps the first port's l2 lookup flow)."""
    lab = make_lab(SCENARIO.format(profile="ovn"))
    sender, receiver = lab.node("sender"), lab.node("receiver")

    def to_vmac(name: str) -> bytes:
        frame = Ether(src=receiver.mac, dst=VMAC) / IP(src=str(receiver.ip), dst=VIP)
        return bytes(frame / UDP(sport=4000, dport=9) / marker(name))

    def sentinel(name: str) -> bytes:
        frame = Ether(src=receiver.mac, dst=sender.mac)
        frame = frame / IP(src=str(receiver.ip), dst=str(sender.ip))
        return bytes(frame / UDP(sport=4000, dport=9) / marker(name))

    def garp_from_vmac() -> bytes:
        frame = Ether(src=VMAC, dst="ff:ff:ff:ff:ff:ff")
        return bytes(frame / ARP(op=1, hwsrc=VMAC, psrc=VIP, hwdst="00:00:00:00:00:00", pdst=VIP))

    at_receiver = FrameSource(receiver)
    with FrameSink(sender) as sink:
        at_receiver.send(to_vmac("unknown"), sentinel("end1"))
        assert "unknown" not in sink.wait_for({"end1"})
        lab.port("sender").set_allowed_address(VIP, VMAC)
        at_receiver.send(to_vmac("pinned"), sentinel("end2"))
        assert "pinned" in sink.wait_for({"end2", "pinned"})
        # The receiver lists the VMAC too and claims it with a GARP: nothing moves.
        lab.port("receiver").set_allowed_address(VIP, VMAC)
        send_frames(receiver, [garp_from_vmac()])
        at_receiver.send(to_vmac("still"), sentinel("end3"))
        assert "still" in sink.wait_for({"end3", "still"})
    at_receiver.close()
    fdb = lab.fabric.run(["bridge", "fdb", "show", "br", "br-net"]).stdout
    assert f"{VMAC} dev {lab.port('sender').tap} master br-net static" in fdb
    assert f"{sender.mac} dev {lab.port('sender').tap} master br-net static" in fdb
    # Once the first port no longer lists it, the VMAC goes to the next port that does.
    lab.port("sender").unset_allowed_address(VIP, VMAC)
    fdb = lab.fabric.run(["bridge", "fdb", "show", "br", "br-net"]).stdout
    assert f"{VMAC} dev {lab.port('receiver').tap} master br-net static" in fdb
