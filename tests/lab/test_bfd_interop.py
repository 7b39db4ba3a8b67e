"""BFD interop (issue 13, point 2): two implementations on one segment bring a session Up, and
when one side dies the survivor takes it Down within the Detection Time.

Pairs: keepalived ↔ FRR bfdd, bundled ↔ keepalived, bundled ↔ FRR bfdd, each side dying in
turn (SIGKILL of its processes: no Down, no AdminDown, as a host that dies; neither keepalived
nor bfdd sends one on SIGTERM either). Every router also runs a VRRP instance, so each driver
starts as it always does (FRR's vrrpd is its main process; bfdd runs beside it as a peer: vrrpd
cannot track BFD). The session is 50 ms × 3 both ways on IPv4 (Detection Time 150 ms).

What counts is the wire (the lab's capture): each side's packets say Up and name the other's
discriminator; after the kill, the survivor's first Down packet (diagnostic 1) comes at most
the Detection Time, plus the one periodic interval an implementation may wait to send it
(keepalived sends it at its next scheduled packet), plus the tolerance, after the dead side's
last packet.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.capture import Capture, start_capture
from lab.capture_events import BfdControl
from lab.conformance.bench import scenario
from lab.routers import Router, driver_class, make_router
from lab.routers.frr import FrrRouter
from lab.stalls import NO_NETLINK
from tests.support.stalls import timing_witness, unless_stalled  # noqa: F401 (autouse)

pytestmark = pytest.mark.lab

#: The session's timers: 50 ms × 3 both ways.
INTERVAL = 0.05
MULT = 3
DETECTION = MULT * INTERVAL
#: A fifth of the interval, as the conformance rows (lab.conformance.bfd_bench.tolerance).
TOLERANCE = 0.01
#: The two sides: their node in the bench topology, address and VRRP priority.
SIDES = {"a": ("iut", "192.0.2.11", 200), "b": ("tester", "192.0.2.14", 100)}
PAIRS = [("keepalived", "frr"), ("bundled", "keepalived"), ("bundled", "frr")]


def config(side: str, peer: str, interface: str) -> str:
    """A side's ``keepalived.conf``: the BFD session to the other side, and a VRRP instance."""
    _, me, priority = SIDES[side]
    other = SIDES[peer][1]
    return f"""bfd_instance {peer} {{
    neighbor_ip {other}
    source_ip {me}
    min_rx {INTERVAL * 1000:g}
    min_tx {INTERVAL * 1000:g}
    multiplier {MULT}
}}
vrrp_instance vrrp_1 {{
    interface {interface}
    virtual_router_id 1
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100
    }}
}}
"""


def needs(impl: str) -> None:
    """Skip when ``impl``'s program is missing."""
    cls = driver_class(impl)
    if shutil.which(cls.program) is None:
        pytest.skip(f"{cls.program} is not installed ({cls.install_hint})")


@pytest.fixture
def pair_lab(tmp_path: Path) -> Iterator[tuple[Lab, Capture]]:
    """The conformance bench's plain segment, recorded. Function scope; depends on tmp_path."""
    with Lab(scenario("bfd-interop"), label=None) as lab:
        yield lab, start_capture(lab, tmp_path / "bfd-interop.pcapng", flush=0.01)


def bfd(capture: Capture, sender: str, since: float = 0.0) -> list[BfdControl]:
    """The BFD packets ``sender`` put on the wire."""
    return [
        e for e in capture.events(since=since) if isinstance(e, BfdControl) and e.sender == sender
    ]


@pytest.mark.parametrize("dies", ["a", "b"])
@pytest.mark.parametrize(("impl_a", "impl_b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_session_up_then_down_within_detection(
    pair_lab: tuple[Lab, Capture], impl_a: str, impl_b: str, dies: str
) -> None:
    """Up both ways; the survivor's Down (diagnostic 1) within the Detection Time of the dead
    side's last packet (+ one interval + tolerance)."""
    needs(impl_a)
    needs(impl_b)
    lab, capture = pair_lab
    routers: dict[str, Router] = {}
    for side, impl, peer in (("a", impl_a, "b"), ("b", impl_b, "a")):
        node = lab.node(SIDES[side][0])
        router = make_router(impl, node, config(side, peer, node.ports[0].ifname))
        lab.defer(f"router {node.name}", router.close)
        routers[side] = router
        router.start()
    nodes = {side: SIDES[side][0] for side in SIDES}

    def up(side: str) -> BfdControl | None:
        # Up at the configured rate, its Poll Sequence over (RFC 5880 §6.8.3): before that the
        # peer's detection time is still the slow rate's (3 × 1 s), and a kill right after Up
        # would be detected seconds late.
        theirs = {e.my_discriminator for e in bfd(capture, nodes["b" if side == "a" else "a"])}
        return next(
            (e for e in bfd(capture, nodes[side]) if e.state == "Up"
             and e.your_discriminator in theirs and not (e.poll or e.final)
             and abs(e.desired_min_tx - INTERVAL) < 1e-6),
            None,
        )  # fmt: skip

    capture.wait_for(
        lambda e: up("a") is not None and up("b") is not None,
        timeout=10,
        what=f"{impl_a} and {impl_b} to bring their session Up at {INTERVAL * 1000:g} ms",
    )
    for router in routers.values():
        if isinstance(router, FrrRouter):  # bfdd's own view agrees with the wire
            assert [p["status"] for p in router.bfd_peers()] == ["up"], router.bfd_peers()
    survivor = "b" if dies == "a" else "a"
    killed_at = routers[dies].kill()
    down = capture.wait_for(
        lambda e: isinstance(e, BfdControl) and e.sender == nodes[survivor] and e.state == "Down",
        since=killed_at,
        timeout=DETECTION + 2.0,
        what=f"{routers[survivor].impl} to take the session Down",
    )
    assert isinstance(down, BfdControl)
    last = [e for e in bfd(capture, nodes[dies]) if e.time < down.time][-1]
    took = down.time - last.time
    print(
        f"\n{impl_a}-{impl_b}, {routers[dies].impl} killed: {routers[survivor].impl} Down "
        f"(diag {down.diag}) {took * 1000:.1f} ms after the last packet; Detection Time "
        f"{DETECTION * 1000:.0f} ms"
    )
    assert down.diag == 1, down
    bound = DETECTION + INTERVAL + TOLERANCE
    # BFD's packets and timers take no netlink path in any of the three daemons: an RTNL hold
    # (another lab's teardown on the machine) cannot move the detection, so none is judged.
    unless_stalled(
        last.time,
        down.time,
        TOLERANCE,
        "BFD detection after the kill",
        rtnl_within=NO_NETLINK,
    )
    assert DETECTION - TOLERANCE <= took <= bound, (took, bound)
