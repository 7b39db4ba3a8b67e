"""BFD in the bundled daemon (issue 13), on real packets between real namespaces.

The short-timers topology (ha_first 10.200.51.32, ha_second 10.200.51.33, observer) with the
routers these tests start themselves, each with a ``bfd_instance`` to the other at 50 ms × 3
(detection time 150 ms) and a VRRPv3 unicast instance at advert_int 1 s (Master_Down_Interval
3.609 s for the backup): the figures the issue compares.

* Sessions come Up, bundled↔bundled and bundled↔keepalived 2.2.7, as the daemons log it and as
  the capture shows it: TTL 255, one source port of 49152..65535 per sender, the slow rate
  (Desired Min TX ≥ 1 s) until Up, then the negotiated 50 ms.
* A SIGKILLed side is detected by the other within its detection time, in both directions.
* With ``bfd_takeover`` a bundled backup whose master dies becomes MASTER within the detection
  time (+ 50 ms) of the master's last BFD packet, far below Master_Down_Interval; without it an
  unweighted ``track_bfd`` puts it in FAULT, as keepalived does.

Times are judged with the stall witness: a host stall longer than a figure's tolerance makes
it inconclusive (the plugin runs the test again), never a failure.
"""

from __future__ import annotations

import itertools
import re
import shutil
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.capture import BfdControl, Capture, start_capture
from lab.errors import WaitTimeout
from lab.routers import Router, make_router
from lab.stalls import NO_NETLINK, StallWitness, takeover_netlink
from lab.wait import wait_until
from tests.support.stalls import timing_witness, unless_stalled  # noqa: F401 (autouse)
from vrrp import timers

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SHORT = REPO / "scenarios" / "short-timers.yaml"
FIRST, SECOND = "10.200.51.32", "10.200.51.33"
ADDRESS = {"ha_first": FIRST, "ha_second": SECOND}
#: BFD timers of every session here: 50 ms × 3, so 150 ms of detection.
INTERVAL, MULT = 0.050, 3
DETECTION = INTERVAL * MULT
#: How far a measured detection may stray from the detection time: a fifth of the interval,
#: as the conformance harness allows a fifth of the advert interval.
TOLERANCE = INTERVAL / 5
#: Packets at the negotiated rate that make a session steady (and its rate measurable).
STEADY = 10
#: The issue's bound on a BFD takeover: the detection time plus 50 ms.
TAKEOVER_SLACK = 0.050
ADVERT_INT = 1.0
#: The backup's (priority 100) Master_Down_Interval with a 1 s advert: 3.609 s.
MASTER_DOWN = timers.master_down_interval(100, timers.skew_time(timers.Rfc.RFC5798, 100, 100))
HAVE_KEEPALIVED = shutil.which("keepalived") is not None
needs_keepalived = pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived is not installed")
IMPLS = ["bundled", pytest.param("keepalived", marks=needs_keepalived)]
Record = Callable[[str, object], None]


def config(node: str, priority: int, track: str, *, takeover: bool = False) -> str:
    """A router's keepalived.conf: a BFD session to the other node and a VRRP instance that
    tracks it as ``track`` says (``peer``, ``peer weight 10``, ...)."""
    me = ADDRESS[node]
    peer = FIRST if me == SECOND else SECOND
    return f"""\
bfd_instance peer {{
    neighbor_ip {peer}
    source_ip {me}
    min_rx {INTERVAL * 1000:g}
    min_tx {INTERVAL * 1000:g}
    multiplier {MULT}
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface ens3
    virtual_router_id 1
    version 3
    priority {priority}
    advert_int {ADVERT_INT:g}
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        10.200.51.10/24
    }}
{"    bfd_takeover" if takeover else ""}
    track_bfd {{
        {track}
    }}
}}
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    """The short-timers topology, without its routers (overrides the plugin's). Function scope."""
    with Lab.from_scenario(SHORT) as built:
        yield built


@pytest.fixture
def capture(lab: Lab, tmp_path: Path) -> Capture:
    """Every fabric port recorded from the start. Function scope; depends on ``lab``."""
    return start_capture(lab, tmp_path)


@pytest.fixture
def routers() -> Iterator[dict[str, Router]]:
    """Routers a test makes, by node, closed (SIGTERM) after it, newest first. Function scope."""
    made: dict[str, Router] = {}
    yield made
    for router in reversed(list(made.values())):
        router.close()


def start(made: dict[str, Router], lab: Lab, impl: str, node: str, text: str) -> Router:
    """Make and start a router in ``node``."""
    router = make_router(impl, lab.node(node), text)
    made[node] = router
    router.start()
    return router


def bfd_from(capture: Capture, node: str, since: float | None = None) -> list[BfdControl]:
    """The BFD Control packets ``node`` sent (at or after ``since``)."""
    return [
        e for e in capture.events(since=since) if isinstance(e, BfdControl) and e.sender == node
    ]


def wait_log(router: Router, pattern: str, *, timeout: float) -> str:
    """Wait until the router's log has a line matching ``pattern``; return the line."""

    def found() -> str | None:
        return next((ln for ln in router.log_text().splitlines() if re.search(pattern, ln)), None)

    line = wait_until(
        found,
        timeout=timeout,
        what=f"{router.name} ({router.impl}) to log /{pattern}/; its log ends:\n"
        + router.log_tail(),
        accept=lambda seen: seen is not None,
    )
    assert line is not None
    return line


def wait_steady(capture: Capture, node: str) -> list[BfdControl]:
    """Wait until ``node``'s last :data:`STEADY` packets are Up at the negotiated 50 ms with
    no Poll or Final (the switch from the slow rate is a Poll Sequence); return its packets."""

    def steady() -> list[BfdControl]:
        return bfd_from(capture, node)

    # Up needs a few slow-rate (1 s) packets each way, then a Poll and its Final.
    return wait_until(
        steady,
        timeout=6 * 1.0,
        what=f"{node} to send Up at {INTERVAL * 1000:g} ms with its poll over",
        accept=lambda sent: (
            len(sent) > STEADY
            and all(
                p.state == "Up" and not (p.poll or p.final) and p.desired_min_tx == INTERVAL
                for p in sent[-STEADY:]
            )
        ),
    )


def check_wire(sent: list[BfdControl], node: str) -> None:
    """RFC 5881 §4-§5 and RFC 5880 §6.8.3 on what ``node`` sent, up to steady Up."""
    assert sent, f"no BFD packet from {node}"
    assert {p.ttl for p in sent} == {255}, f"{node}: TTLs {sorted({p.ttl for p in sent})}"
    ports = {p.src_port for p in sent}
    assert len(ports) == 1 and 49152 <= min(ports) <= 65535, f"{node}: source ports {ports}"
    assert {p.dst_port for p in sent} == {3784}
    assert all(p.discard is None for p in sent), [p.discard for p in sent if p.discard]
    first_up = next(i for i, p in enumerate(sent) if p.state == "Up")
    slow = sent[:first_up]
    assert slow, f"{node} was Up in its first packet"
    assert all(p.desired_min_tx >= 1.0 for p in slow), (
        f"{node}: Desired Min TX before Up {[p.desired_min_tx for p in slow]} (must be >= 1 s)"
    )
    assert slow[0].state == "Down", [p.state for p in slow]
    assert sent[-1].desired_min_tx == sent[-1].required_min_rx == INTERVAL


def check_rate(sent: list[BfdControl], node: str) -> None:
    """The steady Up packets leave every 75-100 % of 50 ms (RFC 5880 §6.8.7's jitter)."""
    window = sent[-STEADY:]
    gaps = [b.time - a.time for a, b in itertools.pairwise(window)]
    assert len(gaps) == STEADY - 1, f"{node}: only {len(gaps)} steady gaps"
    # The daemon sends BFD over a UDP socket on a timer and changes no link or address, so an
    # RTNL hold (another lab's teardown) cannot move a gap: none is judged (seen beside
    # scripts/neighbour-labs.sh: both rates judged inconclusive on 18.6 and 23.5 ms RTNL holds).
    unless_stalled(
        window[0].time,
        window[-1].time,
        TOLERANCE,
        f"{node}'s BFD rate",
        rtnl_within=NO_NETLINK,
    )
    median = statistics.median(gaps)
    print(f"\n{node}: gaps {[round(g * 1000, 1) for g in gaps]} ms, median {median * 1000:.1f}")
    assert 0.75 * INTERVAL - TOLERANCE <= median <= INTERVAL + TOLERANCE, gaps
    assert max(gaps) <= INTERVAL + TOLERANCE, gaps


# --- sessions come Up ---------------------------------------------------------------------


@pytest.mark.timing
@pytest.mark.parametrize("peer", IMPLS)
def test_sessions_come_up_on_the_wire_and_in_the_logs(
    lab: Lab,
    capture: Capture,
    routers: dict[str, Router],
    peer: str,
    timing_witness: StallWitness,  # noqa: F811 (the autouse fixture, named)
) -> None:
    # Weighted tracking: no FAULT at start, so the routers report BACKUP at once.
    first = start(routers, lab, "bundled", "ha_first", config("ha_first", 200, "peer weight 10"))
    second = start(routers, lab, peer, "ha_second", config("ha_second", 100, "peer weight 10"))
    timing_witness.watch([first.pid, second.pid])
    for router in (first, second):
        wait_log(router, r"\(peer\) Entering Up state", timeout=6 * 1.0)
        wait_log(router, r"VRRP_Instance\(VI_1\) Tracked BFD instance peer is UP", timeout=1.0)
    for node in ("ha_first", "ha_second"):
        sent = wait_steady(capture, node)
        check_wire(sent, node)
        check_rate(sent, node)
    # Each side's My Discriminator is what the other sends as Your Discriminator.
    a, b = bfd_from(capture, "ha_first")[-1], bfd_from(capture, "ha_second")[-1]
    assert (a.your_discriminator, b.your_discriminator) == (b.my_discriminator, a.my_discriminator)
    (session,) = first.status()["bfd"]
    assert (session["state"], session["local_discriminator"]) == ("Up", a.my_discriminator)
    assert session["tx_interval"] == pytest.approx(INTERVAL)
    assert session["detection_time"] == pytest.approx(DETECTION)
    assert session["counters"]["ttl_discards"] == 0
    # Weighted: priority 200 + 10 while Up (keepalived's "Changing effective priority" too).
    assert first.status()["instances"]["VI_1"]["effective_priority"] == 210


# --- a dead side is detected ----------------------------------------------------------------


def detection_by(router: Router, since: float, last: float) -> float:
    """How long after the dead side's last packet (``last``, from the capture) ``router``'s
    session went Down, by the router's own account."""
    if router.impl == "bundled":
        (session,) = wait_until(
            lambda: router.status()["bfd"],
            timeout=DETECTION + 1.0,
            what=f"{router.name}'s BFD session to go Down",
            accept=lambda s: s[0]["state"] != "Up" and s[0]["since"] >= since,
        )
        return float(session["since"]) - last
    # keepalived logs "(peer) Expired after N ms (M usec overdue)": M is how far past its
    # detection time (from the last packet it read) the expiry ran.
    line = wait_log(router, r"\(peer\) Expired after", timeout=DETECTION + 1.0)
    match = re.search(r"Expired after \d+ ms \((\d+) usec overdue\)", line)
    assert match is not None, line
    return DETECTION + int(match.group(1)) / 1e6


@pytest.mark.timing
@pytest.mark.parametrize(
    ("survivor", "killed"),
    [
        ("bundled", "bundled"),
        pytest.param("bundled", "keepalived", marks=needs_keepalived),
        pytest.param("keepalived", "bundled", marks=needs_keepalived),
    ],
)
def test_sigkilled_side_is_detected_within_the_detection_time(
    lab: Lab,
    capture: Capture,
    routers: dict[str, Router],
    survivor: str,
    killed: str,
    timing_witness: StallWitness,  # noqa: F811 (the autouse fixture, named)
    record_property: Record,
) -> None:
    dying = start(routers, lab, killed, "ha_first", config("ha_first", 200, "peer weight 10"))
    staying = start(routers, lab, survivor, "ha_second", config("ha_second", 100, "peer weight 10"))
    timing_witness.watch([staying.pid])
    for node in ("ha_first", "ha_second"):
        wait_steady(capture, node)
    at = dying.kill()
    # The dead side's last packet, once the capture has seen the survivor go on without it.
    wait_until(
        lambda: bfd_from(capture, "ha_second", since=at + DETECTION + INTERVAL),
        timeout=DETECTION + 2.0,
        what="packets from ha_second after the detection time",
        accept=bool,
    )
    last = bfd_from(capture, "ha_first")[-1].time
    assert last <= at + 0.005, f"ha_first sent at {last - at:+.3f} s after its SIGKILL"
    detection = detection_by(staying, at, last)
    print(f"\n{survivor} detected {killed}'s death {detection * 1000:.1f} ms after its last packet")
    record_property("detection_ms", round(detection * 1000, 1))
    # Its BFD timers and log line take no netlink path: no RTNL hold is judged (as the rate).
    unless_stalled(
        last,
        last + detection,
        TOLERANCE,
        f"{survivor}'s detection",
        rtnl_within=NO_NETLINK,
    )
    assert DETECTION - TOLERANCE <= detection <= DETECTION + TOLERANCE, (
        f"{survivor} detected the silence after {detection * 1000:.1f} ms; the detection time "
        f"is {DETECTION * 1000:.0f} ms ± {TOLERANCE * 1000:.0f}"
    )
    # And on the wire: the survivor says Down (diag 1, Control Detection Time Expired).
    after = bfd_from(capture, "ha_second", since=last)
    downs = [p for p in after if p.state == "Down"]
    assert downs and downs[0].diag == 1, [(p.state, p.diag) for p in after[:5]]
    assert downs[0].time <= last + DETECTION + INTERVAL + TOLERANCE


# --- what a dead master does to the backup ---------------------------------------------------


@pytest.mark.timing
@pytest.mark.parametrize("master", IMPLS)
def test_bfd_takeover_ends_master_down_timer_at_once(
    lab: Lab,
    capture: Capture,
    routers: dict[str, Router],
    master: str,
    timing_witness: StallWitness,  # noqa: F811 (the autouse fixture, named)
    record_property: Record,
) -> None:
    # keepalived ignores bfd_takeover (an unknown keyword): give it the same file.
    first = start(routers, lab, master, "ha_first", config("ha_first", 200, "peer", takeover=True))
    second = start(
        routers, lab, "bundled", "ha_second", config("ha_second", 100, "peer", takeover=True)
    )
    timing_witness.watch([second.pid])
    # keepalived's master waits in FAULT for the first Up, so the backup may be master first
    # and hand over once the master preempts it: two Master_Down_Intervals and the Up.
    settle = 2 * MASTER_DOWN + 6 * 1.0
    first.wait_state("MASTER", timeout=settle)
    second.wait_state("BACKUP", timeout=settle)
    wait_steady(capture, "ha_first")
    wait_steady(capture, "ha_second")
    assert second.state() == "BACKUP", "bfd_takeover must not FAULT the backup"
    at = first.kill()
    became = second.wait_state("MASTER", timeout=DETECTION + 1.0, since=at)
    last = bfd_from(capture, "ha_first")[-1].time
    takeover = became.at - last
    print(f"\nbundled backup MASTER {takeover * 1000:.1f} ms after {master}'s last BFD packet")
    record_property("takeover_ms", round(takeover * 1000, 1))
    unless_stalled(
        last,
        became.at,
        TAKEOVER_SLACK / 2,
        "the BFD takeover",
        rtnl_within=takeover_netlink(became.at, TAKEOVER_SLACK / 2),
    )
    assert takeover <= DETECTION + TAKEOVER_SLACK, (
        f"MASTER {takeover * 1000:.1f} ms after the master's last BFD packet; the bound is "
        f"the detection time {DETECTION * 1000:.0f} ms + {TAKEOVER_SLACK * 1000:.0f} ms"
    )
    assert takeover >= DETECTION - TOLERANCE, f"MASTER before the detection time: {takeover}"
    assert takeover * 10 <= MASTER_DOWN, (takeover, MASTER_DOWN)
    wait_log(second, r"VRRP_Instance\(VI_1\) Tracked BFD instance peer is DOWN", timeout=1.0)


@pytest.mark.timing
def test_without_bfd_takeover_an_unweighted_track_bfd_faults_the_backup(
    lab: Lab,
    capture: Capture,
    routers: dict[str, Router],
    timing_witness: StallWitness,  # noqa: F811 (the autouse fixture, named)
) -> None:
    first = start(routers, lab, "bundled", "ha_first", config("ha_first", 200, "peer"))
    second = start(routers, lab, "bundled", "ha_second", config("ha_second", 100, "peer"))
    timing_witness.watch([second.pid])
    # Unweighted: FAULT until the session's first Up, then Backup, then the usual election.
    for router in (first, second):
        assert router.events.snapshot()[0].state == "FAULT", router.events.snapshot()
    settle = MASTER_DOWN + 6 * 1.0
    first.wait_state("MASTER", timeout=settle)
    second.wait_state("BACKUP", timeout=settle)
    wait_steady(capture, "ha_first")
    at = first.kill()
    fault = second.wait_state("FAULT", timeout=DETECTION + 1.0, since=at)
    last = bfd_from(capture, "ha_first")[-1].time
    unless_stalled(last, fault.at, TAKEOVER_SLACK / 2, "FAULT on the BFD detection")
    assert fault.at - last <= DETECTION + TAKEOVER_SLACK, fault.at - last
    # keepalived's behaviour: a FAULT instance does not take over, whatever the timers say.
    with pytest.raises(WaitTimeout):
        second.wait_state("MASTER", timeout=MASTER_DOWN + ADVERT_INT, since=at)
    assert second.state() == "FAULT"


# --- a clean stop and a reload ------------------------------------------------------------------


def test_sigterm_sends_admin_down_which_the_peer_does_not_count_as_a_failure(
    lab: Lab, capture: Capture, routers: dict[str, Router]
) -> None:
    first = start(routers, lab, "bundled", "ha_first", config("ha_first", 200, "peer weight 10"))
    second = start(routers, lab, "bundled", "ha_second", config("ha_second", 100, "peer weight 10"))
    first.wait_state("MASTER", timeout=MASTER_DOWN + 6 * 1.0)
    second.wait_state("BACKUP", timeout=1.0)
    for node in ("ha_first", "ha_second"):
        wait_steady(capture, node)
    at = first.stop()
    # RFC 5880 §6.8.16: the stopping side says AdminDown, diag 7 (keepalived sends nothing).
    admin = capture.wait_for(
        lambda e: isinstance(e, BfdControl) and e.sender == "ha_first" and e.state == "AdminDown",
        timeout=1.0,
        what="an AdminDown packet from ha_first after its SIGTERM",
        since=at,
    )
    assert isinstance(admin, BfdControl) and admin.diag == 7 and admin.discard is None
    (session,) = wait_until(
        lambda: second.status()["bfd"],
        timeout=1.0,
        what="ha_second's session to go Down on the AdminDown",
        accept=lambda s: s[0]["state"] == "Down",
    )
    assert (session["diag"], session["remote_state"]) == (
        "Neighbor Signaled Session Down",
        "AdminDown",
    )
    # keepalived's bfd_state_fall: VRRP is not told, so the weight stays applied.
    assert session["vrrp_up"] is True
    assert "Tracked BFD instance peer is DOWN" not in second.log_text()
    # The priority-0 advert hands over as usual, at the weighted priority 110.
    second.wait_state("MASTER", timeout=ADVERT_INT, since=at)
    assert second.status()["instances"]["VI_1"]["effective_priority"] == 110


def test_reload_keeps_the_session_and_polls_for_new_timers(
    lab: Lab, capture: Capture, routers: dict[str, Router]
) -> None:
    first = start(routers, lab, "bundled", "ha_first", config("ha_first", 200, "peer weight 10"))
    start(routers, lab, "bundled", "ha_second", config("ha_second", 100, "peer weight 10"))
    before = wait_steady(capture, "ha_first")[-1]
    slower = config("ha_first", 200, "peer weight 10").replace(
        f"min_tx {INTERVAL * 1000:g}", "min_tx 100"
    )
    first.set_config(slower)
    at = first.reload()
    poll = capture.wait_for(
        lambda e: isinstance(e, BfdControl) and e.sender == "ha_first" and e.poll,
        timeout=1.0,
        what="a Poll from ha_first after its reload",
        since=at,
    )
    assert isinstance(poll, BfdControl) and poll.desired_min_tx == 0.1
    capture.wait_for(
        lambda e: isinstance(e, BfdControl) and e.sender == "ha_second" and e.final,
        timeout=1.0,
        what="ha_second's Final",
        since=poll.time,
    )
    after = bfd_from(capture, "ha_first", since=at)
    # The same session: discriminator, source port, state; no Down on either side.
    assert {(p.my_discriminator, p.src_port, p.state) for p in after} == {
        (before.my_discriminator, before.src_port, "Up")
    }
    assert all(p.state == "Up" for p in bfd_from(capture, "ha_second", since=at))
    (session,) = wait_until(
        lambda: first.status()["bfd"],
        timeout=1.0,
        what="ha_first's poll to end",
        accept=lambda s: not s[0]["polling"],
    )
    assert session["tx_interval"] == pytest.approx(0.1)
    assert session["counters"]["polls_started"] == 2
