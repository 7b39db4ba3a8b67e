"""The fault catalogue against keepalived with short timers: does the backup take over when the
RFC says it must?

Timers come from the short-timer scenario (VRRPv3, advert 0.1 s, backup priority 100), so every
window is derived from the backup's configured parameters:

* ``host-down``, ``freeze``, ``crash``, ``partition``, total ``advert-loss``, ``link-flap``: the
  backup hears its last advert at most one Adv before the fault, so it becomes MASTER between
  Master_Down_Interval − Adv and Master_Down_Interval after it;
* ``stop``: the priority-0 advert arrives at once, and the backup waits Skew_Time.

Each figure may stray by :data:`TOLERANCE` (the issue's 20 ms) and no more. Detection here is
the backup's MASTER notify line, stamped on arrival, minus the fault's time. A figure measured
across a host stall longer than that is inconclusive (the plugin runs the test again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from lab import fault_table, faults, linux
from lab.errors import LabError, UsageError
from lab.host_state import HostState, differences, snapshot
from lab.lab import Lab
from lab.node import Node
from lab.routers import Router, RouterParams
from lab.routers.spec import Routers, load_scenario_with_routers, start_routers
from lab.stalls import takeover_netlink
from lab.wait import wait_until
from tests.lab.test_keepalived import SHORT, vip_holders, vmac_links
from tests.support.stalls import assert_timely, timing_witness  # noqa: F401 (autouse)

pytestmark = pytest.mark.lab

#: How far a measured detection may stray from its RFC window (the issue's bound).
TOLERANCE = 0.020
#: Linux's SO_TIMESTAMPNS (also the SCM type of its ancillary data); Python 3.11 lacks the name.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
#: Repetitions of the cheap, reversible faults: a figure is a distribution, not one draw.
ROUNDS = 3

MakeLab = Callable[..., Lab]
Record = Callable[[str, object], None]


def at_the_end(end: float) -> tuple[float, float]:
    """``rtnl_within`` of every figure measured here, which ends at ``end``.

    Every window measured here ends in a netlink change (the new master adding its VIPs
    before it reports MASTER; the link coming back up) and starts at a stamp taken after any
    of its own (a link fault's time is the kernel's acknowledgement); in between, the routers
    wait on timers and the faults are nft rules, SIGSTOP or SIGKILL, none of which takes the
    RTNL lock. So an RTNL hold moved the figure only if it still held the lock at the end
    (seen beside scripts/neighbour-labs.sh: freeze detection judged inconclusive twice in
    three tries on holds mid-window, the backup waiting on its timer). Such a hold and the
    router's own timer wake do add up (there too: a link flap down 742.2 ms against
    721.9 ± 20 ms behind a hold just under the tolerance), which the late rule of
    :func:`tests.support.stalls.assert_timely` judges.
    """
    return takeover_netlink(end, TOLERANCE)


@pytest.fixture
def short_lab(make_lab: MakeLab, impl: str) -> tuple[Lab, Routers]:
    """The short-timer scenario on implementation ``impl`` (``--impl``), ha_first MASTER and
    ha_second BACKUP. Function scope."""
    scenario, specs = load_scenario_with_routers(SHORT)
    lab = make_lab(scenario)
    routers = start_routers(lab, specs, impl_override=impl)
    settle = params_of(routers["ha_first"]).master_down_interval + 10 * advert(routers)
    routers["ha_first"].wait_state("MASTER", timeout=settle)
    routers["ha_second"].wait_state("BACKUP", timeout=settle)
    return lab, routers


def params_of(router: Router) -> RouterParams:
    """A rendered router's parameters."""
    assert router.params is not None, f"{router.name} runs a verbatim config"
    return router.params


def advert(routers: Routers) -> float:
    """The advert interval of the backup (both routers share it)."""
    return params_of(routers["ha_second"]).advert_int


def down_window(routers: Routers) -> tuple[float, float]:
    """When the backup must take over after the master went silent, from its own timers."""
    backup = params_of(routers["ha_second"])
    return backup.master_down_interval - backup.advert_int, backup.master_down_interval


def assert_in_window(
    what: str, detection: float, window: tuple[float, float], record: Record, *, at: float
) -> None:
    """``detection`` (s) after the fault at ``at`` lies in ``window`` ± TOLERANCE; print and
    record the figure."""
    low, high = window
    record(f"{what}_ms", round(detection * 1000, 1))
    print(
        f"\n{what}: backup MASTER after {detection * 1000:.1f} ms "
        f"(window {low * 1000:.1f}..{high * 1000:.1f} ms ±{TOLERANCE * 1000:.0f})"
    )
    assert_timely(
        f"{what}: detection",
        detection,
        window,
        TOLERANCE,
        span=(at, at + detection),
        rtnl_within=at_the_end(at + detection),
    )


def check_down_takeover(
    what: str, routers: Routers, adverts: AdvertLog, at: float, record: Record
) -> None:
    """After a fault silencing the master at ``at``: the window, and the backup's own timer."""
    detection = takeover(routers, at)
    assert_in_window(what, detection, down_window(routers), record, at=at)
    assert_timer(what, routers, adverts, at, detection, record)


def takeover(routers: Routers, since: float) -> float:
    """Wait for ha_second to report MASTER after ``since``; return the delay in seconds."""
    limit = 3 * params_of(routers["ha_second"]).master_down_interval
    return routers["ha_second"].wait_state("MASTER", timeout=limit, since=since).at - since


def back_to_backup(routers: Routers, since: float) -> None:
    """ha_first preempts again: ha_second reports BACKUP after ``since``."""
    limit = 3 * params_of(routers["ha_first"]).master_down_interval
    routers["ha_second"].wait_state("BACKUP", timeout=limit, since=since)
    routers["ha_first"].wait_state("MASTER", timeout=limit)


class AdvertLog:
    """Adverts a node receives, with the kernel's receive time (lab clock), from a raw socket.

    Lets a test check the backup's timer itself: it must declare itself master one
    Master_Down_Interval after the last advert it heard, whatever the fault's phase.
    """

    def __init__(self, node: Node) -> None:
        self.sock = node.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.arrivals: list[tuple[float, str, int]] = []
        """(kernel receive time, source IP, priority) per advert."""
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            data, ancillary, _, (src, _) = self.sock.recvmsg(2048, 64)
            stamp = next(
                (
                    struct.unpack("qq", d[:16])
                    for lvl, kind, d in ancillary
                    if kind == SO_TIMESTAMPNS
                ),
                None,
            )
            if stamp is None:
                continue
            header = (data[0] & 0x0F) * 4
            self.arrivals.append((stamp[0] + stamp[1] / 1e9, src, data[header + 2]))

    def last_before(self, source: str, t: float) -> float:
        """Receive time of the last advert from ``source`` with a non-zero priority up to t."""
        times = [at for at, src, prio in list(self.arrivals) if src == source and prio and at <= t]
        assert times, f"no advert from {source} before {t:.6f}; seen {self.arrivals[-5:]}"
        return times[-1]

    def close(self) -> None:
        """Stop listening."""
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self.sock.close()


@pytest.fixture
def adverts(short_lab: tuple[Lab, Routers]) -> Iterator[AdvertLog]:
    """Adverts received by ha_second (the backup). Function scope; depends on ``short_lab``."""
    log = AdvertLog(short_lab[0].node("ha_second"))
    wait_until(
        lambda: len(log.arrivals),
        timeout=10 * advert(short_lab[1]),
        what="ha_second to receive adverts from ha_first",
        accept=lambda n: n >= 2,
    )
    yield log
    with contextlib.suppress(OSError):
        log.close()


def assert_timer(
    what: str,
    routers: Routers,
    adverts: AdvertLog,
    fault_at: float,
    detection: float,
    record: Record,
) -> None:
    """The backup became MASTER one Master_Down_Interval after the last advert it heard."""
    mdi = params_of(routers["ha_second"]).master_down_interval
    master_ip = str(routers["ha_first"].node.ip)
    # The last advert heard before the takeover, not before the fault's timestamp: an nft
    # fault commits a few ms after its (lower-bound) time, and adverts may still pass meanwhile.
    heard = adverts.last_before(master_ip, fault_at + detection)
    since_advert = fault_at + detection - heard
    record(f"{what}_after_last_advert_ms", round(since_advert * 1000, 1))
    print(
        f"{what}: fault {(fault_at - heard) * 1000:.1f} ms after the last advert; MASTER "
        f"{since_advert * 1000:.1f} ms after it (Master_Down_Interval {mdi * 1000:.1f} ms)"
    )
    assert_timely(
        f"{what}: MASTER after the last advert",
        since_advert,
        (mdi, mdi),
        TOLERANCE,
        span=(heard, fault_at + detection),
        rtnl_within=at_the_end(fault_at + detection),
    )


def holds_vip(node: Node) -> bool:
    """True when the VIP is on the node's VMAC interface."""
    return vip_holders(node) == ["vrrp.1"]


#: How long the kernel's link watch may defer an operstate change (one second: HZ jiffies).
LINKWATCH_DELAY = 1.0


def wait_holding(lab: Lab, routers: Routers, expected: dict[str, bool]) -> None:
    """Wait until each named node holds the VIP (or not) as ``expected`` says.

    A router adds or removes the VIP around its report of the state change, so a single read
    just after the report may see the addresses from before it. Two advert intervals.
    """
    wait_until(
        lambda: {name: holds_vip(lab.node(name)) for name in expected},
        timeout=2 * advert(routers),
        what=f"the VIP on vrrp.1 to be held as {expected}",
        accept=lambda seen: seen == expected,
    )


# --- daemon faults ------------------------------------------------------------------------------


@pytest.mark.timing
def test_stop_takes_over_after_skew_time(
    short_lab: tuple[Lab, Routers], record_property: Record
) -> None:
    lab, routers = short_lab
    at = faults.stop(lab, "ha_first")
    skew = params_of(routers["ha_second"]).skew_time
    assert_in_window("stop", takeover(routers, at), (skew, skew), record_property, at=at)
    wait_holding(lab, routers, {"ha_second": True, "ha_first": False})
    assert [r.kind for r in faults.history(lab)] == ["stop"]


@pytest.mark.timing
def test_freeze_takes_over_after_master_down(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    for n in range(ROUNDS):
        at = faults.freeze(lab, "ha_first")
        assert routers["ha_first"].frozen
        check_down_takeover(f"freeze_{n}", routers, adverts, at, record_property)
        back_to_backup(routers, faults.thaw(lab, "ha_first"))


@pytest.mark.timing
def test_crash_leaves_two_masters(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    at = faults.crash(lab, "ha_first")
    check_down_takeover("crash", routers, adverts, at, record_property)
    first, second = lab.node("ha_first"), lab.node("ha_second")
    # The dead daemon removed nothing: both nodes hold the VIP on a VMAC interface that is up.
    wait_holding(lab, routers, {"ha_first": True, "ha_second": True})
    # The new master's VMAC reads operstate UP only once the kernel's link watch has run, which
    # defers a non-urgent change by up to a second (linkwatch_fire_event): polled, not read once.
    wait_until(
        lambda: (vmac_links(first), vmac_links(second)),
        timeout=LINKWATCH_DELAY + 2 * advert(routers),
        what="both nodes' VMAC interfaces up",
        accept=lambda seen: seen == (["vrrp.1"], ["vrrp.1"]),
    )
    assert not routers["ha_first"].running


# --- link faults ------------------------------------------------------------------------------


@pytest.mark.timing
def test_host_down_takes_over_after_master_down(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    tap = lab.port("ha_first").tap
    for n in range(ROUNDS):
        at = faults.host_down(lab, "ha_first")
        assert not _link_up(lab, tap)
        check_down_takeover(f"host_down_{n}", routers, adverts, at, record_property)
        back_to_backup(routers, faults.host_up(lab, "ha_first"))
        assert _link_up(lab, tap)


@pytest.mark.timing
def test_link_flap_goes_down_and_comes_back(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    # Long enough for the backup to take over, so the flap is visible as two transitions.
    down_for = 2 * params_of(routers["ha_second"]).master_down_interval
    at = faults.link_flap(lab, "ha_first", down_for)
    check_down_takeover("link_flap", routers, adverts, at, record_property)
    faults.wait_link_up(lab, timeout=2 * down_for)
    up = [r for r in faults.history(lab) if r.kind == "link-up"]
    assert len(up) == 1
    assert_timely(
        "link flap: down for",
        up[0].at - at,
        (down_for, down_for),
        TOLERANCE,
        span=(at, up[0].at),
        rtnl_within=at_the_end(up[0].at),
    )
    back_to_backup(routers, up[0].at)


def test_a_flap_that_cannot_bring_its_link_up_says_so(make_lab: MakeLab) -> None:
    """The link-up comes from the flap's own thread: when it fails there (the tap went away
    while down), wait_link_up raises with the reason rather than the error dying in the
    thread and the flap passing for done."""
    scenario, _ = load_scenario_with_routers(SHORT)
    lab = make_lab(scenario)
    (port,) = lab.node("observer").ports
    faults.link_flap(lab, "observer", 0.5)
    lab.fabric.ipr.link("del", index=lab.fabric.link_index(port.tap))
    with pytest.raises(LabError, match="could not bring its link up"):
        faults.wait_link_up(lab, timeout=5)


def _link_up(lab: Lab, tap: str) -> bool:
    link = lab.fabric.ipr.get_links(ifname=tap)[0]
    return bool(link["flags"] & 1)  # IFF_UP


# --- nftables faults -----------------------------------------------------------------------------


@pytest.mark.timing
def test_partition_splits_the_brain_and_heals(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    at = faults.partition(lab, "ha_first", "ha_second")
    print(f"\npartition: nft {faults.history(lab)[-1].detail}")
    check_down_takeover("partition", routers, adverts, at, record_property)
    assert routers.masters() == ["ha_first", "ha_second"]
    wait_holding(lab, routers, {"ha_first": True, "ha_second": True})
    # The observer is not cut off from either side.
    assert (
        lab.node("observer").run(["ping", "-c1", "-W1", "10.200.51.32"], check=False).returncode
        == 0
    )
    back_to_backup(routers, faults.heal(lab, "ha_first", "ha_second"))
    assert routers.masters() == ["ha_first"]


@pytest.mark.timing
def test_total_advert_loss_is_a_partition_for_vrrp(
    short_lab: tuple[Lab, Routers], adverts: AdvertLog, record_property: Record
) -> None:
    lab, routers = short_lab
    at = faults.advert_loss(lab, 100)
    check_down_takeover("advert_loss_100", routers, adverts, at, record_property)
    assert routers.masters() == ["ha_first", "ha_second"]
    back_to_backup(routers, faults.clear_advert_loss(lab))


def test_partial_advert_loss_drops_about_that_share(short_lab: tuple[Lab, Routers]) -> None:
    lab, _ = short_lab
    percent, sample = 30, 100
    faults.advert_loss(lab, percent, source="ha_first")
    counters = wait_until(
        lambda: faults.advert_loss_counters(lab),
        timeout=3 * sample * 0.1,
        what=f"{sample} adverts through the loss rule",
        accept=lambda c: c.seen >= sample,
    )
    # Binomial: the dropped count is within 5 standard deviations of percent·seen.
    p = percent / 100
    sigma = math.sqrt(counters.seen * p * (1 - p))
    assert abs(counters.dropped - p * counters.seen) <= 5 * sigma, counters


def test_fault_table_is_separate_and_leaves_nothing(
    host_state: HostState, short_lab: tuple[Lab, Routers]
) -> None:
    lab, routers = short_lab
    others_before = _other_tables(lab)
    faults.partition(lab, "ha_first", "observer")
    faults.advert_loss(lab, 10)
    tables = lab.fabric.run(["nft", "list", "tables"]).stdout
    assert f"table bridge {fault_table.NFT_TABLE}" in tables
    assert _other_tables(lab) == others_before  # the SDN's tables are untouched
    # Both faults live in one table, replaced whole on each change.
    listing = lab.fabric.run(["nft", "list", "table", "bridge", fault_table.NFT_TABLE]).stdout
    assert "partition ha_first" in listing and "advert-loss *" in listing
    faults.heal(lab)
    listing = lab.fabric.run(["nft", "list", "table", "bridge", fault_table.NFT_TABLE]).stdout
    assert "partition" not in listing and "advert-loss *" in listing

    frozen = routers["ha_second"]
    faults.freeze(lab, frozen)
    pids = routers["ha_first"].pids() + frozen.pids()
    assert pids
    lab.close()  # thaws ha_second, stops both daemons gracefully, drops the table
    assert not any(linux.pid_alive(pid) for pid in pids)
    assert differences(host_state, snapshot()) == []
    stopped = [e.state for e in frozen.events][-1]
    assert stopped == "STOP", "a frozen router must be thawed and stopped gracefully"


def test_catalogue_names(short_lab: tuple[Lab, Routers]) -> None:
    lab, routers = short_lab
    assert set(faults.CATALOGUE) >= {
        "stop",
        "crash",
        "host-down",
        "freeze",
        "thaw",
        "partition",
        "advert-loss",
        "link-flap",
    }
    at = faults.apply(lab, "freeze", "ha_first")
    assert routers["ha_first"].frozen and at <= faults.apply(lab, "thaw", "ha_first")
    with pytest.raises(UsageError, match="unknown fault 'melt'"):
        faults.apply(lab, "melt", "ha_first")
    with pytest.raises(UsageError, match="no router runs in 'observer'"):
        faults.stop(lab, "observer")
    with pytest.raises(UsageError, match=r"percentage 0\.\.100"):
        faults.advert_loss(lab, 150)
    faults.advert_loss(lab, 12.5)
    listing = lab.fabric.run(["nft", "list", "table", "bridge", fault_table.NFT_TABLE]).stdout
    assert "numgen random mod 10000 < 1250" in listing


@dataclasses.dataclass(frozen=True)
class _Pair:
    a: str
    b: str


@dataclasses.dataclass(frozen=True)
class _Step:
    """The shape of a scenario step: ``action`` names the attribute holding the arguments."""

    action: str
    stop: str | None = None
    partition: _Pair | None = None


def test_apply_takes_scenario_steps(short_lab: tuple[Lab, Routers]) -> None:
    lab, routers = short_lab
    at = faults.apply(lab, _Step("partition", partition=_Pair("ha_first", "ha_second")))
    assert faults.history(lab)[-1].target == "ha_first<->ha_second"
    routers["ha_second"].wait_state("MASTER", timeout=1, since=at)
    faults.apply(lab, "heal")
    stopped = faults.apply(lab, _Step("stop", stop="ha_first"), routers=routers)
    assert faults.history(lab)[-1].kind == "stop" and stopped > at
    assert not routers["ha_first"].running


def _other_tables(lab: Lab) -> list[str]:
    tables = lab.fabric.run(["nft", "list", "tables"]).stdout.splitlines()
    return sorted(t for t in tables if fault_table.NFT_TABLE not in t)
