"""BFD in the bundled daemon without a lab: the tracking rules (pure, keepalived's), and two
:class:`vrrp.bfd.endpoint.BfdEndpoint` talking over real UDP sockets on the loopback.

The endpoints listen on free high ports instead of 3784 (the tests run in parallel, and a real
BFD daemon may hold 3784 here); everything else is what the daemon runs.
"""

from __future__ import annotations

import heapq
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

import pytest

from vrrp.bfd.endpoint import BfdEndpoint, BfdEvent
from vrrp.bfd.packet import SOURCE_PORTS, Control, Discard, SessionState, encode
from vrrp.spec import BfdSpec, InstanceSpec, TrackBfdSpec, TrackSpec
from vrrp.state import State
from vrrp.tracking import (
    bfd_faulted,
    bfd_takeover_due,
    bfd_weight,
    fault_reason,
    is_faulted,
    tracked_priority,
)

# --- tracking rules (pure) ----------------------------------------------------------------


def _spec(*tracks: TrackBfdSpec, priority: int = 100, takeover: bool = False) -> InstanceSpec:
    return InstanceSpec(
        name="vi_1",
        interface="eth0",
        vrid=1,
        family=4,
        version=3,
        priority=priority,
        advert_int_cs=100,
        track_bfds=tracks,
        bfd_takeover=takeover,
    )


def _up(*names: str) -> Callable[[str], bool]:
    return lambda name: name in names


def _links_up(_name: str) -> bool:
    return True


def test_unweighted_track_bfd_faults_until_up_and_reverse_inverts() -> None:
    spec = _spec(TrackBfdSpec("peer"))
    assert bfd_faulted(spec, _up()) and fault_reason(spec, _links_up, _up()) == "tracked BFD down"
    assert not is_faulted(spec, _links_up, _up("peer"))
    reverse = _spec(TrackBfdSpec("peer", 0, True))
    assert is_faulted(reverse, _links_up, _up("peer")) and not is_faulted(reverse, _links_up, _up())
    # The interface still comes first, in the reason too.
    assert fault_reason(spec, _up("peer"), _up()) == "interface down"


def test_bfd_takeover_sessions_never_fault() -> None:
    spec = _spec(TrackBfdSpec("peer"), takeover=True)
    assert not is_faulted(spec, _links_up, _up())  # not at start either
    assert tracked_priority(spec, _links_up, _up()) == 100


@pytest.mark.parametrize(
    ("weight", "reverse", "when_up", "when_down"),
    [
        # keepalived's initialise_track_bfd_state + vrrp_handle_bfd_event, base priority 100.
        (20, False, 120, 100),
        (-20, False, 100, 80),
        (20, True, 80, 100),
        (-20, True, 100, 120),
    ],
)
def test_weights_follow_keepalived(
    weight: int, reverse: bool, when_up: int, when_down: int
) -> None:
    spec = _spec(TrackBfdSpec("peer", weight, reverse))
    assert tracked_priority(spec, _links_up, _up("peer")) == when_up
    assert tracked_priority(spec, _links_up, _up()) == when_down
    assert not is_faulted(spec, _links_up, _up())  # weighted: never FAULT, not at start either
    assert bfd_weight(spec, _up("peer")) == when_up - 100


def test_priority_is_clamped_after_every_weight_and_the_owner_is_left_alone() -> None:
    spec = replace(
        _spec(TrackBfdSpec("a", 200), TrackBfdSpec("b", -100), priority=100),
        track_interfaces=(TrackSpec("eth1", -50),),
    )
    # 100 + 200 (a Up) - 100 (b down) - 50 (eth1 down) = 150: summed, then clamped.
    assert tracked_priority(spec, _up("eth0"), _up("a")) == 150
    assert tracked_priority(spec, _links_up, _up("a", "b")) == 254
    assert tracked_priority(spec, _up("eth0"), _up()) == 1
    assert tracked_priority(_spec(TrackBfdSpec("a"), priority=255), _links_up, _up()) == 255


def test_takeover_only_for_the_session_to_the_current_master() -> None:
    spec = _spec(TrackBfdSpec("peer", 10), takeover=True)
    master = IPv4Address("10.0.0.2")
    assert bfd_takeover_due(spec, "peer", master, "10.0.0.2")
    assert not bfd_takeover_due(spec, "peer", master, "10.0.0.3")  # another router is master
    assert not bfd_takeover_due(spec, "peer", master, None)  # no master heard yet
    assert not bfd_takeover_due(spec, "other", master, "10.0.0.2")  # not tracked
    assert not bfd_takeover_due(replace(spec, bfd_takeover=False), "peer", master, "10.0.0.2")


# --- two endpoints on the loopback -----------------------------------------------------------

A, B = ip_address("127.0.0.1"), ip_address("127.0.0.2")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pair:
    """Two endpoints and a loop driving both on the real clock, as the daemon's loop would."""

    def __init__(self, interval: float = 0.05, mult: int = 3, *, with_b: bool = True) -> None:
        self.port_a, self.port_b = _free_udp_port(), _free_udp_port()
        self.a = BfdEndpoint(port=self.port_a, peer_port=self.port_b)
        self.b = BfdEndpoint(port=self.port_b, peer_port=self.port_a)
        common = {"min_rx": interval, "min_tx": interval, "multiplier": mult}
        self.spec_a = BfdSpec("to_b", B, A, **common)  # type: ignore[arg-type]
        self.spec_b = BfdSpec("to_a", A, B, **common)  # type: ignore[arg-type]
        self.heap: list[tuple[float, int, str, int, BfdEndpoint]] = []
        self.seq = 0
        self.events: list[tuple[str, BfdEvent]] = []
        self.running = {self.a, self.b}
        now = time.monotonic()
        self._collect(self.a, self.a.configure((self.spec_a,), now))
        self._collect(self.b, self.b.configure((self.spec_b,) if with_b else (), now))

    def _collect(self, ep: BfdEndpoint, events: list[BfdEvent]) -> None:
        who = "a" if ep is self.a else "b"
        self.events += [(who, e) for e in events]
        for name, deadline, gen in ep.pending():
            self.seq += 1
            heapq.heappush(self.heap, (deadline, self.seq, name, gen, ep))

    def run_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            assert now < end, (
                f"timed out after {timeout} s waiting for {what}; events {self.events}"
            )
            while self.heap and self.heap[0][0] <= now:
                _, _, name, gen, ep = heapq.heappop(self.heap)
                if ep in self.running and ep.is_current(name, gen):
                    self._collect(ep, ep.tick(name, now))
            fds = {fd: ep for ep in self.running for fd in ep.fds()}
            wait = (
                max(0.0, min(self.heap[0][0] - time.monotonic(), end - now)) if self.heap else 0.01
            )
            ready, _, _ = select.select(list(fds), [], [], wait)
            for fd in ready:
                self._collect(fds[fd], fds[fd].readable(fd, time.monotonic))

    def state(self, ep: BfdEndpoint) -> str:
        return str(ep.status()[0]["state"])

    def close(self) -> None:
        for ep in (self.a, self.b):
            ep.shutdown(time.monotonic())


@pytest.fixture
def pair() -> Pair:
    """Two endpoints with a session each to the other. Function scope."""
    made = Pair()
    yield made  # type: ignore[misc]
    made.close()


def _both_up(pair: Pair) -> None:
    # Up takes the slow rate (at least 1 s per packet, RFC 5880 §6.8.3): a few seconds.
    pair.run_until(
        lambda: pair.state(pair.a) == pair.state(pair.b) == "Up", 10.0, "both sessions Up"
    )


def test_sessions_come_up_with_keepalived_s_log_lines_and_a_status(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vrrp")
    _both_up(pair)
    assert [(who, e.name, e.up, e.notify) for who, e in pair.events if who == "a"] == [
        ("a", "to_b", True, True)
    ]
    assert pair.a.is_up("to_b") and pair.b.is_up("to_a")
    assert "(to_b) Entering Up state" in caplog.messages
    status = pair.a.status()[0]
    assert status["source_port"] in SOURCE_PORTS
    assert status["remote_discriminator"] == pair.b.status()[0]["local_discriminator"]
    assert status["ttl"] == 255 and status["counters"]["ttl_discards"] == 0
    # Once both are Up the negotiated interval applies after the Poll.
    pair.run_until(lambda: not pair.a.status()[0]["polling"], 2.0, "the poll to end")
    status = pair.a.status()[0]
    assert status["tx_interval"] == pytest.approx(0.05)
    assert status["detection_time"] == pytest.approx(0.15)
    assert pair.a.receive_counters()["reasons"]["ttl"] == 0


def test_a_silent_peer_is_detected_and_logged_as_keepalived_does(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    _both_up(pair)
    caplog.set_level(logging.INFO, logger="vrrp")
    pair.running.discard(pair.b)  # B's process is gone: nothing more from it
    pair.run_until(lambda: pair.state(pair.a) == "Down", 2.0, "A's session Down")
    (expired,) = [m for m in caplog.messages if "Expired after" in m]
    assert expired.startswith("(to_b) Expired after 1")  # 150 ms and then some
    assert (
        "(to_b) Entering Down state (Local diagnostic - Control Detection Time Expired, "
        "Remote diagnostic - No Diagnostic)" in caplog.messages
    )
    down = [e for who, e in pair.events if who == "a" and not e.up]
    assert [(e.name, e.notify) for e in down] == [("to_b", True)]
    assert not pair.a.is_up("to_b")


def test_admin_down_on_shutdown_takes_the_peer_down_without_telling_vrrp(pair: Pair) -> None:
    _both_up(pair)
    pair.b.shutdown(time.monotonic())  # AdminDown, diag 7, as the daemon does on SIGTERM
    pair.running.discard(pair.b)
    pair.run_until(lambda: pair.state(pair.a) == "Down", 1.0, "A's session Down")
    status = pair.a.status()[0]
    assert (status["diag"], status["remote_state"]) == (
        "Neighbor Signaled Session Down",
        "AdminDown",
    )
    assert status["remote_diag"] == "Administratively Down"
    # keepalived's bfd_state_fall: the peer's AdminDown is not a failure; VRRP keeps "up".
    down = [e for who, e in pair.events if who == "a" and not e.up]
    assert [(e.name, e.notify) for e in down] == [("to_b", False)]
    assert pair.a.is_up("to_b")


def test_ttl_below_255_is_discarded_and_counted(pair: Pair) -> None:
    _both_up(pair)
    mine = pair.a.status()[0]["local_discriminator"]
    theirs = pair.a.status()[0]["remote_discriminator"]
    packet = encode(
        Control(state=SessionState.UP, my_discriminator=theirs, your_discriminator=mine)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 254)
        s.bind((str(B), 0))
        s.sendto(packet, (str(A), pair.port_a))
    pair.run_until(
        lambda: pair.a.status()[0]["counters"]["ttl_discards"] == 1, 1.0, "a TTL discard"
    )
    assert pair.a.receive_counters()["reasons"][Discard.TTL.value] == 1
    assert pair.state(pair.a) == "Up"


def test_your_discriminator_equal_to_my_discriminator_is_accepted() -> None:
    """Two keepalived daemons started in the same second pick the same discriminator; a
    packet whose My and Your Discriminator are both ours is still our peer's."""
    pair = Pair(with_b=False)  # a peer crafted here instead
    try:
        mine = pair.a.status()[0]["local_discriminator"]
        packet = encode(Control(state=SessionState.DOWN, my_discriminator=mine))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
            s.bind((str(B), 0))
            s.sendto(packet, (str(A), pair.port_a))
            pair.run_until(lambda: pair.state(pair.a) == "Init", 2.0, "A in Init")
            assert pair.a.status()[0]["remote_discriminator"] == mine
            s.sendto(
                encode(
                    Control(state=SessionState.INIT, my_discriminator=mine, your_discriminator=mine)
                ),
                (str(A), pair.port_a),
            )
            pair.run_until(lambda: pair.state(pair.a) == "Up", 2.0, "A Up")
    finally:
        pair.close()


def test_reload_keeps_the_session_and_polls_for_new_timers(pair: Pair) -> None:
    _both_up(pair)
    pair.run_until(lambda: not pair.a.status()[0]["polling"], 2.0, "the first poll to end")
    discriminator = pair.a.status()[0]["local_discriminator"]
    port = pair.a.status()[0]["source_port"]
    slower = replace(pair.spec_a, min_tx=0.1, min_rx=0.1)
    pair._collect(pair.a, pair.a.configure((slower,), time.monotonic()))
    assert pair.a.status()[0]["polling"]
    pair.run_until(lambda: not pair.a.status()[0]["polling"], 2.0, "the new poll to end")
    status = pair.a.status()[0]
    assert (status["state"], status["local_discriminator"], status["source_port"]) == (
        "Up",
        discriminator,
        port,
    )
    assert status["tx_interval"] == pytest.approx(0.1)
    assert status["counters"]["polls_started"] == 2
    # A new peer address is a new session: the old one is taken down (AdminDown).
    moved = replace(pair.spec_a, neighbor=ip_address("127.0.0.3"))
    pair._collect(pair.a, pair.a.configure((moved,), time.monotonic()))
    assert pair.a.status()[0]["local_discriminator"] != discriminator
    assert pair.a.status()[0]["state"] == "Down"


# --- the daemon's glue, with a fake kernel and fake sessions --------------------------------

DAEMON_CONF = """\
bfd_instance peer {{
    neighbor_ip 10.200.51.33
    min_rx 50
    min_tx 50
    multiplier 3
}}
vrrp_instance VI_1 {{
    interface ens3
    virtual_router_id 1
    version 3
    priority 100
    advert_int 1
    unicast_src_ip 10.200.51.32
    unicast_peer {{
        10.200.51.33
    }}
    virtual_ipaddress {{
        10.200.51.10/24
    }}
{extra}    track_bfd {{
        {track}
    }}
}}
"""


class _FakeBfd:
    """The endpoint's face to the daemon: what VRRP was told, and the neighbours."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}

    def is_up(self, name: str) -> bool:
        return self.up.get(name, False)

    def neighbor(self, name: str) -> IPv4Address:
        return IPv4Address("10.200.51.33")

    def notifies_vrrp(self, name: str) -> bool:
        return True

    def pending(self) -> Iterator[tuple[str, float, int]]:
        return iter(())

    def event(self, name: str, up: bool, *, notify: bool = True) -> BfdEvent:
        if notify:
            self.up[name] = up
        return BfdEvent(name, up, notify, time.monotonic())


def _daemon(tmp_path: Path, track: str, *, takeover: bool = False) -> Any:
    from tests.unit.test_daemon_frames import _Harness

    class Harness(_Harness):
        def _start_instance(self, ispec: Any, now: float, *, run: bool = True) -> Any:
            if not isinstance(self.bfd, _FakeBfd):
                self.bfd = _FakeBfd()  # type: ignore[assignment]
            return super()._start_instance(ispec, now, run=run)

    path = tmp_path / "keepalived.conf"
    extra = "    bfd_takeover\n" if takeover else ""
    path.write_text(DAEMON_CONF.format(extra=extra, track=track))
    return Harness(path)


def _advert_from_master(daemon: Any, priority: int = 200) -> None:
    from vrrp.packet import Advert
    from vrrp.packet import encode as encode_advert

    payload = encode_advert(
        Advert.v3(1, priority, ["10.200.51.10"]), src="10.200.51.33", dst="10.200.51.32"
    )
    daemon.feed(payload)


def test_unweighted_track_bfd_starts_in_fault_and_follows_the_session(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, "peer")
    inst = daemon.instances["VI_1"]
    assert inst.fault
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    assert not inst.fault and inst.machine.state is State.BACKUP
    daemon._on_bfd([daemon.bfd.event("peer", False)], time.monotonic())
    assert inst.fault and inst.machine.state is State.INITIALIZE
    # A Down caused by the peer's AdminDown is not told to VRRP: nothing changes.
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    daemon._on_bfd([daemon.bfd.event("peer", False, notify=False)], time.monotonic())
    assert not inst.fault and inst.machine.state is State.BACKUP


def test_weighted_track_bfd_moves_the_priority(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, "peer weight 20")
    inst = daemon.instances["VI_1"]
    assert not inst.fault and inst.machine.priority == 100
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    assert inst.machine.priority == 120
    daemon._on_bfd([daemon.bfd.event("peer", False)], time.monotonic())
    assert inst.machine.priority == 100 and inst.machine.state is State.BACKUP


def test_bfd_takeover_ends_the_master_down_timer_when_the_master_s_session_goes(
    tmp_path: Path,
) -> None:
    daemon = _daemon(tmp_path, "peer", takeover=True)
    inst = daemon.instances["VI_1"]
    assert not inst.fault and inst.machine.state is State.BACKUP  # no FAULT at start
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    _advert_from_master(daemon)
    assert inst.last_master == "10.200.51.33"
    sent = len(daemon.fake_tx.sent)
    daemon._on_bfd([daemon.bfd.event("peer", False)], time.monotonic())
    assert inst.machine.state is State.MASTER and not inst.fault
    assert len(daemon.fake_tx.sent) == sent + 1  # its first advert as master, at once


def test_bfd_takeover_needs_the_session_to_the_current_master(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, "peer", takeover=True)
    inst = daemon.instances["VI_1"]
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    # No master heard yet: the session going Down says nothing about the master.
    daemon._on_bfd([daemon.bfd.event("peer", False)], time.monotonic())
    assert inst.machine.state is State.BACKUP
    # A Down from the peer's AdminDown (a clean stop) does not take over either.
    daemon._on_bfd([daemon.bfd.event("peer", True)], time.monotonic())
    _advert_from_master(daemon)
    daemon._on_bfd([daemon.bfd.event("peer", False, notify=False)], time.monotonic())
    assert inst.machine.state is State.BACKUP


def test_a_master_leaving_for_fault_sends_priority_0_and_drops_its_vips(tmp_path: Path) -> None:
    from vrrp.packet import decode as decode_advert

    daemon = _daemon(tmp_path, "peer")
    inst = daemon.instances["VI_1"]
    now = time.monotonic()
    daemon._on_bfd([daemon.bfd.event("peer", True)], now)
    daemon._execute(inst, inst.machine.master_down(now), now)  # master, whatever the reason
    assert inst.machine.state is State.MASTER
    assert ("ens3", "10.200.51.10/24") in daemon.links.addresses
    daemon._on_bfd([daemon.bfd.event("peer", False)], time.monotonic())
    assert inst.fault
    payload, src, dst = daemon.fake_tx.sent[-1]
    assert decode_advert(payload, src=src, dst=dst, ttl=255).priority == 0
    assert ("ens3", "10.200.51.10/24") not in daemon.links.addresses
