"""``sdn: {engine: ovn}``: the real OVS (userspace datapath) and OVN as a network's fabric
(issue 14).

A two-instance + observer lab on one OVN logical switch: pings cross, port security drops a
spoofed source, a ``port-set`` of the VIP pair makes the VIP reachable where it was dropped
(with OVN's install time kept), the reserved VIP port becomes ``type=virtual`` and OVN's
virtual-port claim (``bind_vport``) follows the GARPing parent, and neither a normal teardown
nor a SIGKILLed runner leaves an OVS/OVN process, socket, file or namespace behind. Where OVS
or OVN cannot run, every test skips with the engine's one-line reason.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from lab import Lab, linux
from lab.crafting import arp_frame
from lab.errors import EnvironmentMissing
from lab.host_state import HostState, differences, snapshot
from lab.ovn import engine
from lab.ovn.nb import SB_DB, env_argv
from lab.scenario import load_scenario
from lab.sdn.probe import FrameSink, marker, send_frames
from lab.wait import wait_until
from tests.support.hoststate import assert_namespaces_gone

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(engine.missing() is not None, reason=engine.missing() or ""),
]

REPO = Path(__file__).resolve().parents[2]
VIP = "10.0.0.10"

SCENARIO = """
name: ovn-engine
networks:
  - name: net
    subnets:
      - cidr: 10.0.0.0/24
        allocation_pools: [{start: 10.0.0.100, end: 10.0.0.200}]
    sdn: {engine: ovn}
instances:
  - name: first
    ports: [{network: net, fixed_ips: [10.0.0.101]}]
  - name: second
    ports: [{network: net, fixed_ips: [10.0.0.102]}]
  - name: observer
    ports: [{network: net, fixed_ips: [10.0.0.103]}]
vips: [{address: 10.0.0.10, network: net%s}]
"""

#: Where Debian's OVS and OVN would keep state if anything used their default paths.
HOST_DIRS = (
    "/run/openvswitch",
    "/var/run/openvswitch",
    "/etc/openvswitch",
    "/var/lib/openvswitch",
    "/var/log/openvswitch",
    "/run/ovn",
    "/etc/ovn",
    "/var/lib/ovn",
    "/var/log/ovn",
)


def scenario_file(tmp_path: Path, *, reserve: bool) -> Path:
    path = tmp_path / "ovn-engine.yaml"
    path.write_text(SCENARIO % (", port: {}" if reserve else ""))
    return path


def start(path: Path) -> Lab:
    """A started lab, or a skip with the engine's one-line reason where OVS/OVN cannot run."""
    lab = Lab(load_scenario(path))
    try:
        return lab.start()
    except EnvironmentMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture
def ovn_lab(tmp_path: Path) -> Iterator[Lab]:
    """Name: ovn_lab. Scope: function. Depends: tmp_path.

    A started lab of two instances and an observer on ``sdn: {engine: ovn}``, no VIP port;
    skips with the engine's reason where OVS/OVN cannot run. Closed after the test."""
    lab = start(scenario_file(tmp_path, reserve=False))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def vport_lab(tmp_path: Path) -> Iterator[Lab]:
    """Name: vport_lab. Scope: function. Depends: tmp_path.

    As :func:`ovn_lab`, with a Neutron port reserving the VIP (``vips: [{port: ...}]``)."""
    lab = start(scenario_file(tmp_path, reserve=True))
    try:
        yield lab
    finally:
        lab.close()


def host_files() -> dict[str, list[str]]:
    """The host's OVS/OVN state directories, and the root namespace's OVS/OVN unix sockets."""
    out = {d: sorted(os.listdir(d)) for d in HOST_DIRS if os.path.isdir(d)}
    with open("/proc/net/unix") as f:
        out["sockets"] = sorted(
            line.split()[-1]
            for line in f
            if any(k in line for k in ("openvswitch", "ovn", "vrrp-lab-ovn"))
        )
    return out


def pings(lab: Lab, ip: str) -> bool:
    return lab.node("observer").run(["ping", "-c1", "-W0.3", ip], check=False).returncode == 0


def test_pings_cross_the_real_ovn(ovn_lab: Lab) -> None:
    assert ovn_lab.fabric.ovn is not None
    assert ovn_lab.fabric.ovn.install_seconds is not None
    for ip in ("10.0.0.101", "10.0.0.102"):
        out = ovn_lab.node("observer").run(["ping", "-c3", "-i0.2", "-W1", ip]).stdout
        assert " 0% packet loss" in out, out
    # No Linux bridge carries the network: its taps are OVS ports of br-int.
    ports = ovn_lab.fabric.ovn.engine.run(engine.vsctl("list-ports", engine.BRIDGE)).split()
    assert sorted(ports) == sorted(p.tap for p in ovn_lab.fabric.ports.values())


def test_kernel_udp_crosses_with_a_valid_checksum(ovn_lab: Lab) -> None:
    """A datagram from the instance's kernel arrives whole: the userspace datapath does not
    finish offloaded checksums, so the lab turns TX checksum offload off on engine ovn ports
    (without it, pings pass and every UDP datagram is dropped as a checksum error)."""
    receiver = ovn_lab.node("first").popen(
        [
            sys.executable,
            "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.bind(('0.0.0.0', 7000)); s.settimeout(5); print('ready', flush=True); "
            "print(s.recv(100).decode(), flush=True)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    assert receiver.stdout.readline().strip() == "ready"
    ovn_lab.node("observer").run(
        [
            sys.executable,
            "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            ".sendto(b'hello', ('10.0.0.101', 7000))",
        ]
    )
    out, _ = receiver.communicate(timeout=10)
    assert out.strip() == "hello"


def test_port_security_drops_a_spoofed_source(ovn_lab: Lab) -> None:
    first, observer = ovn_lab.node("first"), ovn_lab.node("observer")

    def udp(src_ip: str, name: str) -> bytes:
        return bytes(
            Ether(src=first.mac, dst=observer.mac)
            / IP(src=src_ip, dst=str(observer.ip))
            / UDP(sport=4000, dport=4000)
            / marker(name)
        )

    with FrameSink(observer) as sink:
        send_frames(first, [udp("10.0.0.99", "spoofed"), udp(str(first.ip), "legit")])
        seen = sink.wait_for({"legit"})
    assert "spoofed" not in seen, f"port security let a spoofed source through: {seen}"


def test_port_set_makes_the_vip_reachable_and_times_the_install(ovn_lab: Lab) -> None:
    first = ovn_lab.node("first")
    first.run(["ip", "addr", "add", f"{VIP}/24", "dev", "ens3"])
    # Before: first's ARP replies from the VIP die at its port (arp.spa is checked).
    assert not any(pings(ovn_lab, VIP) for _ in range(3))
    port = ovn_lab.port("first")
    port.set_allowed_address(VIP)
    assert port.install_seconds is not None and 0 < port.install_seconds < 5
    wait_until(lambda: pings(ovn_lab, VIP), timeout=10, what=f"observer to reach {VIP}")
    port.unset_allowed_address(VIP)
    assert port.install_seconds is not None
    ovn_lab.node("observer").run(["ip", "neigh", "flush", "dev", "ens3"])
    assert not any(pings(ovn_lab, VIP) for _ in range(3))


def sbctl(lab: Lab, *args: str) -> str:
    assert lab.fabric.ovn is not None
    return lab.fabric.ovn.engine.run(env_argv(["ovn-sbctl", f"--db={SB_DB}", *args]))


def test_the_virtual_port_claim_follows_the_garping_parent(vport_lab: Lab) -> None:
    lab = vport_lab
    vip_port = lab.scenario.vips[0].port_id
    for name in ("first", "second"):
        lab.port(name).set_allowed_address(VIP)
    row = sbctl(lab, "--bare", "--columns=type", "find", "Port_Binding", f"logical_port={vip_port}")
    assert row.strip() == "virtual"

    def parent() -> str:
        return sbctl(
            lab,
            "--bare",
            "--columns=virtual_parent",
            "find",
            "Port_Binding",
            f"logical_port={vip_port}",
        ).strip()

    for name in ("first", "second"):
        node = lab.node(name)
        node.run(["ip", "addr", "add", f"{VIP}/24", "dev", "ens3"])
        garp = arp_frame(1, sender_mac=node.mac, sender_ip=VIP, target_ip=VIP)
        send_frames(node, [garp])
        wait_until(
            parent,
            accept=lambda seen, n=name: seen == lab.port(n).id,
            timeout=10,
            what=f"OVN to bind the virtual port to {name} (bind_vport)",
        )
        wait_until(lambda: pings(lab, VIP), timeout=10, what=f"observer to reach {VIP}")
        node.run(["ip", "addr", "del", f"{VIP}/24", "dev", "ens3"])
    # The same claims, as the run's timeline gets them (lab.ovn.events), in order.
    assert lab.fabric.ovn is not None
    claims = [
        (e["port"], e["parent"]) for e in lab.fabric.ovn.events() if e["event"] == "bind-vport"
    ]
    assert claims == [(f"vip {VIP}", "first"), (f"vip {VIP}", "second")]


def assert_ovn_gone(pids: list[int], inodes: set[int], before: HostState, files: dict) -> None:
    wait_until(
        lambda: [pid for pid in pids if linux.pid_alive(pid)],
        accept=lambda alive: not alive,
        timeout=10,
        what="the OVS/OVN daemons to exit",
    )
    assert_namespaces_gone(inodes, timeout=10, whose="the ovn lab")
    assert host_files() == files
    assert differences(before, snapshot()) == []


def test_teardown_leaves_no_ovs_or_ovn_behind(tmp_path: Path, host_state: HostState) -> None:
    files = host_files()
    lab = start(scenario_file(tmp_path, reserve=True))
    try:
        assert lab.fabric.ovn is not None
        pids = [d.proc.pid for d in lab.fabric.ovn.engine.daemons]
        assert len(pids) == 6 and all(linux.pid_alive(p) for p in pids)
        inodes = {ns.netns_inode for ns in [lab.fabric, *lab.nodes.values()]}
        # Everything the engine wrote is in the fabric's private /run, nowhere else.
        assert lab.fabric.ovn.engine.path("nb.db").exists()
    finally:
        lab.close()
    assert_ovn_gone(pids, inodes, host_state, files)


def sigkill_runner_mid_lab(scenario: Path) -> dict[str, Any]:
    """Hold a lab of ``scenario`` in a runner of its own (``tests.support.lab_runner``), then
    SIGKILL the runner; return what it said of its lab (pids, inodes, the OVS/OVN daemons'
    pids). Skips with the engine's reason where OVS/OVN cannot start."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.lab_runner", str(scenario), "wait"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read()
        proc.wait()
        if "engine ovn" in err or "engine: ovn" in err:
            pytest.skip(err.strip().splitlines()[-1])
        raise AssertionError(f"runner printed nothing; stderr: {err}")
    info: dict[str, Any] = json.loads(line)
    assert all(linux.pid_alive(p) for p in info["ovn_pids"]), info
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        stream.close()
    return info


def test_sigkill_of_the_runner_leaves_no_ovs_or_ovn_behind(
    tmp_path: Path, host_state: HostState
) -> None:
    files = host_files()
    info = sigkill_runner_mid_lab(scenario_file(tmp_path, reserve=True))
    pids = info["ovn_pids"]
    assert len(pids) == 6, pids
    assert_ovn_gone(
        [info["init_pid"], *info["pids"], *pids], set(info["inodes"]), host_state, files
    )
    assert not glob.glob(f"/proc/{info['pids'][0]}")
