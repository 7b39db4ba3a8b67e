"""BFD in runs, with real daemons: their BFD events on the lab clock, a dead peer detected
within the detection time, and ``bfd-loss`` dropping BFD while VRRP carries on.

The routers are the short-timer scenario's (VRRPv3, adverts every 0.1 s, ha_first 200 and
ha_second 100), rendered with ``bfd:`` at 50 ms × 3 to each other: a detection time of
150 ms. Every wait is derived from those timers:

* a session comes Up after a few slow-rate packets (RFC 5880 §6.8.3: ``idle_tx``, 1 s, until
  Up), so within :func:`up_deadline`;
* after the peer falls silent, the survivor's session goes Down one detection time after the
  peer's last packet, which came at most one transmit interval (jittered to 75-100 %, §6.8.7)
  before the fault: within [detect − min_tx, detect] of the fault, ± :data:`TOLERANCE`.

keepalived 2.2.7 (Debian's is built with BFD) and the bundled daemon log the same lines, so
every test runs with ``--impl keepalived`` and ``--impl bundled``; FRR's vrrpd has no BFD client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from lab import capture, capture_events, clock, faults
from lab.capture import Capture
from lab.capture_events import BfdControl
from lab.errors import WaitTimeout
from lab.lab import Lab
from lab.routers import Router
from lab.routers.events import BfdEvent
from lab.routers.spec import Routers, start_routers
from lab.scenario import SCENARIO_DIR, parse_scenario
from lab.scratch import scratch_directory
from lab.stalls import NO_NETLINK, takeover_netlink
from lab.wait import wait_until
from tests.support.stalls import assert_timely, timing_witness  # noqa: F401 (autouse)

pytestmark = pytest.mark.lab

MakeLab = Callable[..., Lab]
#: The BFD timers of every router here (seconds), as the scenario's ``bfd:`` writes them.
BFD = {"min_rx": 0.05, "min_tx": 0.05, "multiplier": 3}
#: The detection time they make: the peer's multiplier × max(min_rx, the peer's min_tx).
DETECT = BFD["multiplier"] * max(BFD["min_rx"], BFD["min_tx"])
#: keepalived's and the bundled daemon's slow transmit interval until Up (``idle_tx``).
IDLE_TX = 1.0
#: How far a measured detection may stray from its window (the conformance rows' bound).
TOLERANCE = 0.020


def up_deadline(routers: Routers) -> float:
    """Long enough for both sessions to come Up at the slow rate, and the election to end."""
    mdi = max(r.params.master_down_interval for r in routers.values() if r.params is not None)
    return 4 * IDLE_TX + mdi


def bfd_lab(make_lab: MakeLab, impl: str, **bfd: Any) -> tuple[Lab, Routers]:
    """The short-timer lab with ``bfd:`` on both routers, started with ``impl``; ha_first
    MASTER, ha_second BACKUP and both sessions Up."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no BFD client (docs/frr.md)")
    doc = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    doc["steps"] = []
    for router in doc["routers"]:
        router["bfd"] = {**BFD, **bfd}
    scenario = parse_scenario(yaml.safe_dump(doc), "short-timers+bfd")
    lab = make_lab(scenario)
    scratch = scratch_directory()
    lab.defer("scratch directory", scratch.cleanup)
    recorded = capture.start_capture(lab, scratch.name)
    routers = start_routers(lab, scenario.routers, impl_override=impl)
    deadline = up_deadline(routers)
    for name, peer in (("ha_first", "ha_second"), ("ha_second", "ha_first")):
        session_up(routers[name], peer, timeout=deadline)
    routers["ha_first"].wait_state("MASTER", timeout=deadline)
    routers["ha_second"].wait_state("BACKUP", timeout=deadline)
    at_fast_rate(recorded, list(routers))
    return lab, routers


def at_fast_rate(recorded: Capture, senders: list[str]) -> None:
    """Wait until every one of ``senders`` sends BFD at its configured rate: Up, Desired Min TX
    ``min_tx`` and no Poll outstanding.

    A session comes Up at the slow rate and changes to the configured one through a Poll
    Sequence (RFC 5880 §6.8.3). Until the peer's packets carry the new Desired Min TX, the
    survivor's detection time is the slow one (3 × 1 s): a fault injected right after Up (4 ms
    after, once, beside ``scripts/stress.sh``) is then detected seconds late. The change takes
    a Poll and its Final: within one slow interval after Up."""
    want = set(senders)

    def fast() -> set[str]:
        return {
            e.sender
            for e in capture_events.events(recorded.frames())
            if isinstance(e, BfdControl)
            and e.state == "Up"
            and not e.poll
            and abs(e.desired_min_tx - BFD["min_tx"]) < 1e-6
        }

    wait_until(
        fast,
        accept=lambda seen: want <= seen,
        timeout=2 * IDLE_TX,
        what=f"{', '.join(sorted(want))} to send BFD at {BFD['min_tx']:g} s (the Poll Sequence "
        "after Up done)",
    )


def session_up(
    router: Router, session: str, *, timeout: float, since: float | None = None
) -> BfdEvent:
    """Wait for ``router``'s BFD session ``session`` to come Up."""
    return router.bfd_events.wait_for(
        lambda e: e.kind == "session" and e.session == session and e.state == "Up",
        timeout=timeout,
        since=since,
        what=f"{router.name}'s BFD session {session} to come Up",
    )


def session_down(router: Router, session: str, *, timeout: float, since: float) -> BfdEvent:
    """Wait for ``router``'s BFD session ``session`` to go Down at or after ``since``."""
    return router.bfd_events.wait_for(
        lambda e: e.kind == "session" and e.session == session and e.is_down,
        timeout=timeout,
        since=since,
        what=f"{router.name}'s BFD session {session} to go Down",
    )


def test_sessions_come_up_as_events_beside_the_transitions(make_lab: MakeLab, impl: str) -> None:
    _, routers = bfd_lab(make_lab, impl, track="none")
    for name, peer in (("ha_first", "ha_second"), ("ha_second", "ha_first")):
        router = routers[name]
        up = [e for e in router.bfd_events if e.kind == "session" and e.state == "Up"]
        assert [e.session for e in up] == [peer], f"{name}: {list(router.bfd_events)}"
        # Its VRRP transitions still come from the notify FIFO, on the same clock.
        first = router.events.snapshot()[0]
        assert first.at <= up[0].at <= clock.now()
        assert router.bfd_events.session_state(peer) == "Up"
    assert "Entering Up state" in routers["ha_second"].log_text()


@pytest.mark.timing
def test_a_dead_peer_is_detected_within_the_detection_time(make_lab: MakeLab, impl: str) -> None:
    lab, routers = bfd_lab(make_lab, impl, track="none")
    at = faults.host_down(lab, "ha_first")
    down = session_down(routers["ha_second"], "ha_first", timeout=DETECT + 1.0, since=at)
    took = down.at - at
    print(f"\n{impl}: ha_second's session Down {took * 1000:.1f} ms after the host died")
    # The link fault's time is the kernel's acknowledgement; BFD's timers take no netlink.
    assert_timely(
        "BFD detection of a dead peer: session Down",
        took,
        (DETECT - BFD["min_tx"], DETECT),
        TOLERANCE,
        span=(at, down.at),
        rtnl_within=NO_NETLINK,
    )
    assert down.diag == 1, f"diag {down.diag}, expected 1 (Control Detection Time Expired)"


def test_bfd_loss_drops_bfd_and_leaves_vrrp_alone(make_lab: MakeLab, impl: str) -> None:
    lab, routers = bfd_lab(make_lab, impl, track="none")
    first, second = routers["ha_first"], routers["ha_second"]
    at = faults.bfd_loss(lab, "ha_first", "ha_second")
    # Both ends time out, a detection time after the last packet got through.
    for router, peer in ((first, "ha_second"), (second, "ha_first")):
        session_down(router, peer, timeout=DETECT + 1.0, since=at)
    # VRRP still passes: the backup keeps hearing the master for three Master_Down_Intervals.
    assert second.params is not None
    quiet = 3 * second.params.master_down_interval
    with pytest.raises(WaitTimeout):
        second.wait_state("MASTER", timeout=quiet, since=at)
    assert (first.state(), second.state()) == ("MASTER", "BACKUP")
    back = faults.bfd_restore(lab, "ha_first", "ha_second")
    for router, peer in ((first, "ha_second"), (second, "ha_first")):
        session_up(router, peer, timeout=up_deadline(routers), since=back)


def test_unweighted_track_bfd_faults_both_ends(make_lab: MakeLab, impl: str) -> None:
    """keepalived's meaning of an unweighted track_bfd, which the bundled daemon shares: while
    the session is not Up the instance is in FAULT, master and backup alike (no takeover)."""
    lab, routers = bfd_lab(make_lab, impl, track="unweighted")
    at = faults.bfd_loss(lab, "ha_first", "ha_second")
    for router in routers.values():
        router.wait_state("FAULT", timeout=DETECT + 1.0, since=at)
    faults.bfd_restore(lab, "ha_first", "ha_second")
    # Out of FAULT as BACKUP, then the election as at start: ha_first wins again.
    routers["ha_first"].wait_state("MASTER", timeout=up_deadline(routers), since=at)


@pytest.mark.timing
def test_bfd_takeover_follows_the_bfd_detection(make_lab: MakeLab, impl: str) -> None:
    """The bundled daemon's opt-in ``bfd_takeover`` (``bfd: {takeover: true}``): the backup's
    session to the master going Down ends its Master_Down_Timer, so it takes over one BFD
    detection time after the master's host died, not Master_Down_Interval (361 ms here)."""
    if impl != "bundled":
        pytest.skip(f"{impl} has no bfd_takeover (docs/seed.md: keepalived ignores the keyword)")
    lab, routers = bfd_lab(make_lab, impl, track="unweighted", takeover=True)
    second = routers["ha_second"]
    at = faults.host_down(lab, "ha_first")
    down = session_down(second, "ha_first", timeout=DETECT + 1.0, since=at)
    master = second.wait_state("MASTER", timeout=DETECT + 1.0, since=at)
    took = master.at - at
    print(f"\nbundled: ha_second MASTER {took * 1000:.1f} ms after the host died")
    assert down.at <= master.at, "MASTER before the session went Down"
    assert_timely(
        "takeover on the BFD detection: MASTER",
        took,
        (DETECT - BFD["min_tx"], DETECT),
        TOLERANCE,
        span=(at, master.at),
        rtnl_within=takeover_netlink(master.at, TOLERANCE),
    )
