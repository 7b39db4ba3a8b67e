"""Probes between real namespaces: the rate, who served, and an emulated failover (issue 4).

The lab is the seed's topology on a plain bridge (no SDN, no VRRP): the tests move the VIP
themselves (``ip addr`` and a GARP frame), so the failover is deterministic.
"""

from __future__ import annotations

import socket
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.l2 import ARP, Ether

from lab import Lab
from lab.clock import now
from lab.errors import WaitTimeout
from lab.node import Namespace
from lab.probe import ProbeResults, ProbeRun, responders, start_probes
from lab.wait import wait_until

pytestmark = pytest.mark.lab

VIP = "10.200.51.10"

#: The seed's instances, addresses and MACs on a plain bridge.
PLAIN_SEED = """
name: plain-seed
networks:
  - name: ha_lab
    mtu: 576
    subnets:
      - {name: ha_lab, cidr: 10.200.51.0/24}
instances:
  - name: ha_first
    ports:
      - {id: 913c4131-0cc3-4df4-9f7e-b4cf4ae885ca, network: ha_lab,
         mac_address: "fa:16:3e:8d:dc:bb", fixed_ips: [10.200.51.32]}
  - name: ha_second
    ports:
      - {id: e220e2d9-f4de-4941-92e0-640ee352aa4f, network: ha_lab,
         mac_address: "fa:16:3e:f3:a9:a3", fixed_ips: [10.200.51.33]}
  - name: observer
    ports:
      - {id: db8fa14d-5800-4db5-8ad7-fe9ad1eaef37, network: ha_lab,
         mac_address: "fa:16:3e:08:e6:15", fixed_ips: [10.200.51.34]}
vips:
  - {address: 10.200.51.10, network: ha_lab}
"""


@pytest.fixture
def lab_scenario() -> str:
    """The seed's topology without SDN and routers. Function scope; no dependencies."""
    return PLAIN_SEED


def send_frame(node: Namespace, frame: bytes, ifname: str = "ens3") -> None:
    """Put one raw Ethernet frame on ``ifname`` of ``node``, from an AF_PACKET socket there."""
    with node.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        sock.send(frame)


def send_garp(node: Namespace, ip: str) -> None:
    """A gratuitous ARP request for ``ip`` from ``node``'s port MAC, as keepalived sends them."""
    mac = node.ports[0].mac  # type: ignore[attr-defined]
    frame = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=ip
    )
    send_frame(node, bytes(frame))


def emulate_failover(
    lab: Lab, run: ProbeRun, *, old: str = "ha_first", new: str = "ha_second", lost: int = 50
) -> float:
    """Move the VIP from ``old`` to ``new`` and return the lab time of the GARP.

    The VIP is deleted on ``old``; once ``lost`` probes in a row went unanswered it is added on
    ``new``, which announces it with a GARP; the call returns once ``new`` answers probes.
    """
    lab.node(old).run(f"ip addr del {VIP}/32 dev ens3")
    run.wait_lost(lost, timeout=5)
    lab.node(new).run(f"ip addr add {VIP}/32 dev ens3")
    garp_at = now()
    send_garp(lab.node(new), VIP)
    run.wait_served(by=new, since=garp_at, timeout=5)
    return garp_at


def run_for(run: ProbeRun, probes: int, timeout: float = 10.0) -> None:
    """Wait until ``run`` has ``probes`` results (sent and settled)."""
    wait_until(
        lambda: len(run.results()),
        timeout=timeout,
        what=f"{probes} probes",
        accept=lambda n: n >= probes,
    )


def report_figures(results: ProbeResults) -> str:
    """The prober's own figures, for the test log."""
    fig = results.figures
    cpu = (fig["utime"] + fig["stime"]) / fig["wall"] * 100
    return f"rate {results.send_rate():.1f}/s, sent {fig['sent']:.0f}, CPU {cpu:.1f}%"


@pytest.mark.timing
@pytest.mark.parametrize("rate", [200.0, 1000.0, 2000.0])
def test_rate_is_honoured(lab: Lab, rate: float) -> None:
    lab.node("ha_first").run(f"ip addr add {VIP}/32 dev ens3")
    responders(lab, ["ha_first"])
    run = start_probes(lab, target=VIP, rate=rate)
    run_for(run, int(rate * 1.5))
    results = run.stop()
    print(report_figures(results))
    assert results.send_rate() == pytest.approx(rate, rel=0.03)
    # The schedule is a deadline one: probe k leaves at about t0 + k/rate, not drifting.
    first = results[0]
    late = [r.sent - (first.sent + (r.seq - first.seq) / rate) for r in results]
    assert statistics.median(late) < 0.002
    assert results.figures["skipped"] == 0
    assert len(results.lost()) == 0
    assert results.served_by() == {"ha_first": len(results)}
    assert all(r.rtt is not None and 0 < r.rtt < 0.05 for r in results)


@pytest.mark.timing
def test_emulated_failover_shows_outage_and_who_served(lab: Lab) -> None:
    lab.node("ha_first").run(f"ip addr add {VIP}/32 dev ens3")
    resp = responders(lab, ["ha_first", "ha_second"])
    run = start_probes(lab, target=VIP)
    first = run.wait_served(timeout=5)
    assert first.responder == "ha_first"
    garp_at = emulate_failover(lab, run, lost=50)
    after = now()
    wait_until(
        lambda: run.served_by(since=after)["ha_second"],
        timeout=5,
        what="100 replies from ha_second",
        accept=lambda n: n >= 100,
    )
    results = run.stop()
    print(report_figures(results))

    # The failover's outage: the one the GARP ended. (A loaded machine may add stray ones.)
    (outage,) = [o for o in results.outages() if o.start < garp_at < o.end]
    assert (outage.old, outage.new) == ("ha_first", "ha_second")
    assert outage.lost >= 50
    # The gap spans exactly the lost probes (by sequence number, not by the clock: a host stall
    # of a few ms under one bounding probe's send or reply is no fault of the outage's).
    assert outage.first_after.seq - outage.last_before.seq == outage.lost + 1
    assert all(
        not r.answered for r in results if outage.last_before.seq < r.seq < outage.first_after.seq
    )
    # Measured on replies, the outage is the send gap plus the later round trip, less the earlier.
    before, after = outage.last_before.rtt, outage.first_after.rtt
    assert before is not None and after is not None and outage.send_gap > 0
    assert outage.duration == pytest.approx(outage.send_gap + after - before, abs=1e-6)
    # The new server answered after its GARP, and within a few probes of it.
    assert garp_at <= outage.end < garp_at + 0.1
    assert [who for who, _, _ in results.segments()] == ["ha_first", "ha_second"]
    assert set(results.served_by(since=outage.end)) == {"ha_second"}
    assert set(results.served_by(until=outage.end)) == {"ha_first"}
    answered = resp.stop()
    assert answered["ha_first"] == results.served_by()["ha_first"]
    assert answered["ha_second"] == results.served_by()["ha_second"]


@pytest.mark.timing
def test_icmp_mode_names_the_responder_by_mac(lab: Lab) -> None:
    target = str(lab.node("ha_second").ip)
    run = start_probes(lab, target=target, mode="icmp", rate=500)
    run_for(run, 500)
    results = run.stop()
    print(report_figures(results))
    assert results.send_rate() == pytest.approx(500, rel=0.02)
    assert len(results.lost()) == 0
    assert results.served_by() == {"ha_second": len(results)}


@pytest.mark.timing
def test_live_access_and_timeouts(lab: Lab) -> None:
    responders(lab, ["ha_first", "ha_second"])
    run = start_probes(lab, target=VIP, rate=500)
    # Nobody holds the VIP: the wait fails, saying what it awaited.
    with pytest.raises(WaitTimeout, match=f"probe of {VIP} to be answered"):
        run.wait_served(timeout=0.3)
    assert run.last_served() is None
    lab.node("ha_second").run(f"ip addr add {VIP}/32 dev ens3")
    reply = run.wait_served(by="ha_second", timeout=5)
    assert reply.responder == "ha_second" and reply.received is not None
    assert run.served_by(since=reply.received)["ha_second"] >= 1
    assert run.running
    results = run.stop()
    assert not run.running
    assert run.stop() is results  # a second stop (the lab's teardown) changes nothing
    # Probes lost before the first reply bound no outage, nor do the probes the kernel queued
    # while it resolved the VIP and released at once when ha_second answered (late replies).
    assert all(o.start >= reply.received for o in results.outages())
    assert not [o for o in results.outages() if o.lost > 5]


def test_programs_end_with_the_lab(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    from lab.capture import start_capture

    lab = make_lab(PLAIN_SEED)
    lab.node("ha_first").run(f"ip addr add {VIP}/32 dev ens3")
    resp = responders(lab, ["ha_first"])
    capture = start_capture(lab, tmp_path)
    run = start_probes(lab, target=VIP, rate=1000)
    run.wait_served(timeout=5)
    lab.close()  # nobody stopped them: the lab's deferred undos do, in order
    assert not run.running and not capture.running
    assert run.results().answered() and resp.answered["ha_first"] > 0
    assert capture.figures["frames"] > 0
