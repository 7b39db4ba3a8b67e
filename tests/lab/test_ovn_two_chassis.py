"""``instances[].host`` on ``engine: ovn``: two chassis joined by Geneve (issue 14).

``first`` and the observer run on compute-1 (the fabric's chassis), ``second`` on compute-2 (a
hypervisor namespace of its own). One lab shows that the ports are bound where they were
placed, that traffic between the chassis crosses the underlay as Geneve, that the capture
records the taps of both, and that the traffic and link faults act on a tap of the second
chassis, and that a crashed ovn-controller there is restarted and awaited; neither its
teardown nor a SIGKILLed runner leaves anything of either chassis behind. The router failover
across the chassis, with the virtual-port claim moving to the new master's chassis, is
``tests/lab/test_vip_port_ovn.py`` (``scenarios/vip-port-ovn.yaml`` places its routers on two
hosts).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab, faults
from lab.capture import start_capture
from lab.host_state import HostState
from lab.ovn import engine
from lab.ovn.hypervisor import UNDERLAY_PORT, tunnel_ip
from lab.wait import wait_until
from tests.lab import test_ovn_engine
from tests.lab.test_ovn_faults import arrivals

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(engine.missing() is not None, reason=engine.missing() or ""),
]

REPO = Path(__file__).resolve().parents[2]
#: Geneve's UDP port (RFC 8926).
GENEVE_PORT = 6081

SCENARIO = """
name: ovn-two-chassis
networks:
  - name: net
    subnets:
      - cidr: 10.0.0.0/24
        allocation_pools: [{start: 10.0.0.100, end: 10.0.0.200}]
    sdn: {engine: ovn}
instances:
  - name: first
    host: compute-1
    ports: [{network: net, fixed_ips: [10.0.0.101]}]
  - name: second
    host: compute-2
    ports: [{network: net, fixed_ips: [10.0.0.102]}]
  - name: observer
    ports: [{network: net, fixed_ips: [10.0.0.103]}]
vips: [{address: 10.0.0.10, network: net, port: {}}]
"""


def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "ovn-two-chassis.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
def two_chassis(tmp_path: Path, host_state: HostState) -> Iterator[Lab]:
    """Name: two_chassis. Scope: function. Depends: tmp_path, host_state.

    A started lab with ``second`` on a second chassis; skips with the engine's reason where
    OVS/OVN cannot run. Closed after the test, and then nothing of it may be left: no daemon
    of either chassis, no namespace, no OVS/OVN file or socket on the host."""
    files = test_ovn_engine.host_files()
    lab = test_ovn_engine.start(scenario_file(tmp_path))
    try:
        assert lab.fabric.ovn is not None
        namespaces = [lab.fabric, *lab.fabric.hypervisors.values(), *lab.nodes.values()]
        inodes = {ns.netns_inode for ns in namespaces}
        yield lab
        # Read at the end: a daemon restarted by the test is among them.
        pids = [d.proc.pid for g in lab.fabric.ovn.groups() for d in g.daemons]
    finally:
        lab.close()
    test_ovn_engine.assert_ovn_gone(pids, inodes, host_state, files)


class GeneveCount:
    """Counts the Geneve datagrams crossing a hypervisor's underlay port (a packet socket)."""

    def __init__(self, lab: Lab, host: str) -> None:
        ns = lab.fabric.hypervisors[host]
        index = ns.link_index(UNDERLAY_PORT)
        assert index is not None
        # ETH_P_ALL: a socket bound to one protocol is not shown the frames its device sends.
        self.sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((UNDERLAY_PORT, 0x0003))
        self.sock.setblocking(False)
        self.seen = 0

    def count(self) -> int:
        """How many IPv4 UDP datagrams to port 6081 arrived or left so far."""
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.seen
            if data[12:14] != b"\x08\x00":
                continue  # not IPv4 (ARP, say)
            ip = data[14:]
            udp = ip[(ip[0] & 0x0F) * 4 :]
            if ip[9] == socket.IPPROTO_UDP and int.from_bytes(udp[2:4]) == GENEVE_PORT:
                self.seen += 1

    def close(self) -> None:
        self.sock.close()


def test_two_chassis_bind_carry_capture_and_fault(two_chassis: Lab, tmp_path: Path) -> None:
    lab = two_chassis
    ovn = lab.fabric.ovn
    assert ovn is not None
    assert ovn.engine.chassis() == ["compute-1", "compute-2"]
    bound = {n: ovn.port_chassis(lab.node(n).ports[0].id) for n in lab.nodes}
    assert bound == {"first": "compute-1", "second": "compute-2", "observer": "compute-1"}
    hv = lab.fabric.hypervisors["compute-2"]
    second = lab.node("second").ports[0]
    assert lab.fabric.tap_namespace(second) is hv
    assert hv.link_index(second.tap) is not None and lab.fabric.link_index(second.tap) is None
    # The tunnel between the chassis: ovn-controller made one Geneve port to the other's IP.
    remote = ovn.hypervisors[0].run(
        engine.vsctl("--bare", "--columns=options", "find", "Interface", "type=geneve")
    )
    assert f"remote_ip={tunnel_ip(0)}" in remote.replace('"', ""), remote

    geneve = GeneveCount(lab, "compute-2")
    capture = start_capture(lab, tmp_path)
    try:
        before = geneve.count()
        # Full-size frames (1500 bytes, not fragmented): the underlay has room for Geneve.
        ping = ["ping", "-c3", "-i0.2", "-W1", "-M", "do", "-s", "1472", "10.0.0.102"]
        out = lab.node("observer").run(ping).stdout
        assert " 0% packet loss" in out, out
        # Each echo and reply crossed the underlay, wrapped in Geneve.
        wait_until(
            geneve.count,
            accept=lambda n: n - before >= 6,
            timeout=2,
            what="6 Geneve datagrams on compute-2's underlay port (3 echoes, 3 replies)",
        )
        # One capture records taps on both chassis: the echoes were sent into the observer's
        # tap (on compute-1) and delivered out of second's (on compute-2).
        observer = lab.node("observer").ports[0].tap
        wanted = {(observer, "in"), (second.tap, "out")}
        wait_until(
            lambda: {(f.tap, f.direction) for f in capture.frames()} & wanted,
            accept=lambda seen: seen == wanted,
            timeout=2,
            what="the capture to hold frames of the observer's tap and second's",
        )
    finally:
        capture.stop()
        geneve.close()

    # A partition across the chassis drops at the receiving taps in both namespaces.
    faults.partition(lab, "first", "second")
    seen = arrivals(
        lab,
        [
            ("first", "second", "cut-1-2", {}),
            ("second", "first", "cut-2-1", {}),
            ("observer", "second", "pass-o-2", {}),
            ("second", "observer", "pass-2-o", {}),
        ],
    )
    assert "cut-1-2" not in seen["second"] and "cut-2-1" not in seen["first"], seen
    faults.heal(lab)
    arrivals(lab, [("first", "second", "pass-1-2", {}), ("second", "first", "pass-2-1", {})])

    # host-down takes the tap down where it lives, in compute-2's namespace.
    faults.host_down(lab, "second")
    assert not test_ovn_engine.pings(lab, "10.0.0.102")
    faults.host_up(lab, "second")
    wait_until(
        lambda: test_ovn_engine.pings(lab, "10.0.0.102"),
        timeout=5,
        what="second to answer pings again after host-up",
    )

    # A crashed ovn-controller (compute-2's) is started again, and the restart returns only
    # once the new process is connected to the SB: the dead one's Chassis row stays there,
    # so a wait on the row returned before the new process had connected.
    hypervisor = ovn.hypervisors[0]
    dead = next(d for d in hypervisor.daemons if d.name == "ovn-controller")
    dead.proc.send_signal(signal.SIGSEGV)
    dead.proc.wait(timeout=engine.STOP_SECONDS)
    assert hypervisor.controller_crashed()
    hypervisor.restart_controller()
    assert hypervisor.controller_status() == "connected"
    assert hypervisor.restarts == [f"ovn-controller exited with {-signal.SIGSEGV}"]
    wait_until(
        lambda: test_ovn_engine.pings(lab, "10.0.0.102"),
        timeout=5,
        what="second to answer pings after compute-2's ovn-controller restarted",
    )


def test_sigkill_of_a_two_chassis_runner_leaves_nothing(
    tmp_path: Path, host_state: HostState
) -> None:
    files = test_ovn_engine.host_files()
    info = test_ovn_engine.sigkill_runner_mid_lab(scenario_file(tmp_path))
    pids = info["ovn_pids"]
    # The fabric's six daemons and compute-2's three (OVS database, ovs-vswitchd, ovn-controller).
    assert len(pids) == 9, pids
    test_ovn_engine.assert_ovn_gone(
        [info["init_pid"], *info["pids"], *pids], set(info["inodes"]), host_state, files
    )
