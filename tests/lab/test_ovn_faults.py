"""The fault catalogue on ``sdn: {engine: ovn}`` (issue 14): every fault acts on the real OVN.

The traffic faults (``partition``, ``advert-loss``, ``bfd-loss``) drop frames, in both
directions, between the nodes they name and no others: marked frames are sent after the fault
and the ones that must pass are awaited, so a missing one is a drop, not a slow path. Without
:mod:`lab.ovn.faults` the bridge table never sees an ovn network's frames and every one of these
tests fails (the dropped frames arrive).

The other faults act on processes and links, not on the fabric: one failover each on the
short-timer routers (tests/lab/test_faults.py's scenario, its network on engine ovn), the
backup's MASTER awaited within three of its own Master_Down_Intervals (the timing against the
RFC window is test_faults.py's business; here the question is whether the fault acts at all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from lab import Lab, faults
from lab.errors import EnvironmentMissing
from lab.node import Node
from lab.ovn import engine
from lab.routers.spec import Routers, load_scenario_with_routers, start_routers
from lab.sdn.probe import FrameSink, marker, send_frames
from lab.steps import Inject
from tests.lab import test_ovn_engine
from tests.lab.test_faults import params_of, takeover, wait_holding
from tests.lab.test_keepalived import SHORT

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(engine.missing() is not None, reason=engine.missing() or ""),
]

#: The engine tests' fixture (a started ovn lab), shared rather than copied.
ovn_lab = test_ovn_engine.ovn_lab


def frame(src: Node, dst: Node, name: str, *, dport: int = 4000, proto: int | None = None) -> bytes:
    """A marked IPv4 frame from ``src``'s port to ``dst``'s (UDP, or IP protocol ``proto``)."""
    ip = IP(src=str(src.ip), dst=str(dst.ip))
    if proto is None:
        body = ip / UDP(sport=4000, dport=dport) / marker(name)
    else:
        ip.proto = proto
        body = ip / marker(name)
    return bytes(Ether(src=src.mac, dst=dst.mac) / body)


def arrivals(lab: Lab, sends: list[tuple[str, str, str, dict]]) -> dict[str, set[str]]:
    """Send each (sender, receiver, name, options) frame; return the names each receiver got.

    Every frame named ``pass*`` is awaited; the others are the ones a fault should drop, sent
    first, so that their absence once the later ones have arrived is a drop.
    """
    receivers = sorted({r for _, r, _, _ in sends})
    sinks = {r: FrameSink(lab.node(r)) for r in receivers}
    try:
        for sender, receiver, name, options in sends:
            send_frames(
                lab.node(sender), [frame(lab.node(sender), lab.node(receiver), name, **options)]
            )
        seen = {}
        for r, sink in sinks.items():
            wanted = {n for _, rr, n, _ in sends if rr == r and n.startswith("pass")}
            seen[r] = sink.wait_for(wanted)
        return seen
    finally:
        for sink in sinks.values():
            sink.close()


def test_partition_drops_both_ways_and_only_between_the_pair(ovn_lab: Lab) -> None:
    faults.partition(ovn_lab, "first", "second")
    seen = arrivals(
        ovn_lab,
        [
            ("first", "second", "cut-1-2", {}),
            ("second", "first", "cut-2-1", {}),
            ("first", "observer", "pass-1-o", {}),
            ("second", "observer", "pass-2-o", {}),
            ("observer", "first", "pass-o-1", {}),
        ],
    )
    assert "cut-1-2" not in seen["second"] and "cut-2-1" not in seen["first"], seen
    faults.heal(ovn_lab)
    arrivals(ovn_lab, [("first", "second", "pass-1-2", {}), ("second", "first", "pass-2-1", {})])


def test_bfd_loss_drops_bfd_only(ovn_lab: Lab) -> None:
    faults.bfd_loss(ovn_lab, "first", "second")
    seen = arrivals(
        ovn_lab,
        [
            ("first", "second", "bfd-1-2", {"dport": 3784}),
            ("second", "first", "echo-2-1", {"dport": 3785}),
            ("first", "second", "pass-udp-1-2", {}),
            ("first", "observer", "pass-bfd-1-o", {"dport": 3784}),
        ],
    )
    assert "bfd-1-2" not in seen["second"] and "echo-2-1" not in seen["first"], seen
    faults.bfd_restore(ovn_lab)
    arrivals(ovn_lab, [("first", "second", "pass-bfd-1-2", {"dport": 3784})])


def test_advert_loss_drops_vrrp_from_its_source(ovn_lab: Lab) -> None:
    faults.advert_loss(ovn_lab, 100, source="first")
    vrrp = {"proto": 112}
    seen = arrivals(
        ovn_lab,
        [
            ("first", "second", "vrrp-1-2", vrrp),
            ("first", "observer", "vrrp-1-o", vrrp),
            ("first", "second", "pass-udp-1-2", {}),
            ("observer", "second", "pass-vrrp-o-2", vrrp),
        ],
    )
    assert "vrrp-1-2" not in seen["second"] and "vrrp-1-o" not in seen["observer"], seen
    counters = faults.advert_loss_counters(ovn_lab)
    assert (counters.seen, counters.dropped) == (2, 2), counters
    faults.advert_loss(ovn_lab, 100)
    seen = arrivals(
        ovn_lab,
        [("observer", "second", "vrrp-o-2", vrrp), ("observer", "second", "pass-udp-o-2", {})],
    )
    assert "vrrp-o-2" not in seen["second"], seen
    faults.clear_advert_loss(ovn_lab)
    arrivals(ovn_lab, [("first", "second", "pass-vrrp-1-2", vrrp)])


# --- one failover per process and link fault ------------------------------------------------


@pytest.fixture
def ovn_routers(tmp_path: Path, impl: str) -> Iterator[tuple[Lab, Routers]]:
    """The short-timer scenario with its network on engine ovn; ha_first MASTER."""
    raw = yaml.safe_load(SHORT.read_text())
    raw["networks"][0]["sdn"] = {"engine": "ovn"}
    path = tmp_path / "short-timers-ovn.yaml"
    path.write_text(yaml.safe_dump(raw))
    scenario, specs = load_scenario_with_routers(path)
    lab = Lab(scenario)
    try:
        lab.start()
    except EnvironmentMissing as exc:
        pytest.skip(str(exc))
    try:
        routers = start_routers(lab, specs, impl_override=impl)
        settle = 3 * params_of(routers["ha_first"]).master_down_interval
        routers["ha_first"].wait_state("MASTER", timeout=settle)
        routers["ha_second"].wait_state("BACKUP", timeout=settle)
        yield lab, routers
    finally:
        lab.close()


def _inject_zero(lab: Lab, routers: Routers) -> float:
    """A priority-0 advert from ha_first's own port (port security lets it pass), with the
    group's interval (keepalived drops one that differs), once ha_first is frozen.

    Frozen first, because a running master's next advert, due within one interval, would reset
    the backup's timer to Master_Down_Interval whenever it came before Skew_Time: a race, not a
    test (it failed one CI rehearsal). Frozen, the backup takes over Skew_Time after the
    injected advert, where the freeze alone would take Master_Down_Interval from the last real
    one: :func:`test_process_and_link_faults_fail_over_on_ovn` tells the two apart."""
    faults.freeze(lab, "ha_first")
    advert = {
        "priority": 0,
        "interval": params_of(routers["ha_first"]).advert_int,
        "to": [str(lab.node("ha_second").ip)],
    }
    spec = {"node": "ha_first", "advert": advert, "duration": 0}
    return faults.inject(lab, Inject.model_validate(spec))


def _link_flap(lab: Lab, routers: Routers) -> float:
    # Down long enough for the backup to take over.
    return faults.link_flap(
        lab, "ha_first", 2 * params_of(routers["ha_second"]).master_down_interval
    )


FAULTS: dict[str, Callable[[Lab, Routers], float]] = {
    "stop": lambda lab, _: faults.stop(lab, "ha_first"),
    "crash": lambda lab, _: faults.crash(lab, "ha_first"),
    "freeze": lambda lab, _: faults.freeze(lab, "ha_first"),
    "host-down": lambda lab, _: faults.host_down(lab, "ha_first"),
    "link-flap": _link_flap,
    "interface-down": lambda lab, _: faults.interface_down(lab, "ha_first", "ens3"),
    "inject": _inject_zero,
}


@pytest.mark.parametrize("kind", FAULTS)
def test_process_and_link_faults_fail_over_on_ovn(
    kind: str, ovn_routers: tuple[Lab, Routers]
) -> None:
    """One failover per fault, each on a lab of its own: recovering from a link fault takes the
    old master's kernel up to a neighbour retransmit time (1 s) to resolve its peer again, a
    wait this test has no business with."""
    lab, routers = ovn_routers
    at = FAULTS[kind](lab, routers)
    took = takeover(routers, at)
    print(f"\n{kind}: ha_second MASTER {took * 1000:.1f} ms after it")
    if kind == "inject":
        # The injected advert, not the freeze, made it: the freeze alone would have taken at
        # least Master_Down_Interval less one interval (the last real advert came at most one
        # interval before it), where the advert takes Skew_Time.
        backup = params_of(routers["ha_second"])
        assert took < backup.master_down_interval - backup.advert_int, took
    if kind == "crash":
        # The dead daemon removed nothing: both nodes hold the VIP.
        wait_holding(lab, routers, {"ha_first": True, "ha_second": True})
