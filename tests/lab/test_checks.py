"""Health checks and tracked files with real keepalived and the bundled daemon: a
``vrrp_script`` run in the master's node fails, or a ``track_file`` there is flagged, and the VIP
moves as keepalived's tracker rules say (issue 15).

The check is ``test ! -e FLAG`` in each router's node; the ``file-flag`` fault makes it fail by
writing the flag in the master's private ``/run`` and heal by removing it. Every wait is bounded
by the configured timers: the check's interval × fall (or rise) to notice, then
Master_Down_Interval (or Skew_Time) for VRRP to act, each doubled for the daemons' own latency.
No timing is judged here; the conformance rows judge times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from lab import faults
from lab.lab import Lab
from lab.routers.spec import Routers, start_routers
from lab.scenario import SCENARIO_DIR, parse_scenario

pytestmark = pytest.mark.lab

MakeLab = Callable[..., Lab]
#: The file whose presence makes a router's check fail (in the node's private /run).
FLAG = "/run/vrrp-lab-check-down"
#: The check every router runs: healthy while the flag is absent.
CHECK = {"name": "chk_service", "script": f"test ! -e {FLAG}", "interval": 1}


def check_lab(
    make_lab: MakeLab, impl: str, *, key: str = "checks", **check: Any
) -> tuple[Lab, Routers]:
    """The short-timer lab (ha_first priority 200 MASTER, ha_second 100) with ``CHECK`` (and
    ``check``'s fields) tracked by both routers, started with ``impl`` and settled; with
    ``key="files"``, the tracked file ``check`` describes instead."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no trackers: track_script and track_file are refused")
    doc = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    doc["steps"] = []
    for router in doc["routers"]:
        router[key] = [{**CHECK, **check} if key == "checks" else check]
    scenario = parse_scenario(yaml.safe_dump(doc), f"short-timers+{key}")
    lab = make_lab(scenario)
    routers = start_routers(lab, scenario.routers, impl_override=impl)
    # The first check result comes with the daemon, within one interval.
    settle = (
        (notice(routers, "fall") if key == "checks" else 0) + 10 * advert(routers) + mdi(routers)
    )
    routers["ha_first"].wait_state("MASTER", timeout=settle)
    routers["ha_second"].wait_state("BACKUP", timeout=settle)
    return lab, routers


def params(routers: Routers, name: str = "ha_second") -> Any:
    """A rendered router's parameters."""
    rendered = routers[name].params
    assert rendered is not None, f"{name} runs a verbatim config"
    return rendered


def advert(routers: Routers) -> float:
    """The advert interval both routers share."""
    return float(params(routers).advert_int)


def mdi(routers: Routers) -> float:
    """The backup's Master_Down_Interval."""
    return float(params(routers).master_down_interval)


def notice(routers: Routers, count: str) -> float:
    """How long the check takes to change its mind (``fall`` or ``rise`` runs), doubled."""
    (check,) = params(routers, "ha_first").checks
    return 2.0 * check.interval * getattr(check, count)


def test_a_failing_weighted_check_hands_the_vip_over_and_back(make_lab: MakeLab, impl: str) -> None:
    lab, routers = check_lab(make_lab, impl, weight=-120, fall=2, rise=2)
    first, second = routers["ha_first"], routers["ha_second"]
    # 200 - 120 = 80 < 100: ha_second preempts once ha_first's adverts say 80.
    broke = faults.file_flag(lab, "ha_first", FLAG)
    second.wait_state("MASTER", timeout=notice(routers, "fall") + 2 * mdi(routers), since=broke)
    first.wait_state("BACKUP", timeout=2 * mdi(routers), since=broke)
    # Healed, ha_first is 200 again and preempts ha_second back.
    healed = faults.file_flag(lab, "ha_first", FLAG, None)
    first.wait_state("MASTER", timeout=notice(routers, "rise") + 2 * mdi(routers), since=healed)
    second.wait_state("BACKUP", timeout=2 * mdi(routers), since=healed)
    # Judged on the whole stretch, not one read: a weighted check never faults.
    faulted = [e for e in first.events.snapshot(since=broke) if e.state == "FAULT"]
    assert faulted == [], "a weighted check lowers the priority, it never faults"


def test_a_failing_unweighted_check_faults_the_master(make_lab: MakeLab, impl: str) -> None:
    lab, routers = check_lab(make_lab, impl)
    first, second = routers["ha_first"], routers["ha_second"]
    broke = faults.file_flag(lab, "ha_first", FLAG)
    first.wait_state("FAULT", timeout=notice(routers, "fall"), since=broke)
    second.wait_state("MASTER", timeout=2 * mdi(routers), since=broke)
    healed = faults.file_flag(lab, "ha_first", FLAG, None)
    first.wait_state("MASTER", timeout=notice(routers, "rise") + 2 * mdi(routers), since=healed)
    second.wait_state("BACKUP", timeout=2 * mdi(routers), since=healed)


def test_a_flagged_file_faults_the_master_and_clearing_it_brings_it_back(
    make_lab: MakeLab, impl: str
) -> None:
    lab, routers = check_lab(
        make_lab, impl, key="files", name="maintenance", path=FLAG, weight=0, init=0
    )
    first, second = routers["ha_first"], routers["ha_second"]
    # inotify tells both daemons at once: no interval to wait for, only VRRP's own timers.
    flagged = faults.file_flag(lab, "ha_first", FLAG, 1)
    first.wait_state("FAULT", timeout=2 * mdi(routers), since=flagged)
    second.wait_state("MASTER", timeout=2 * mdi(routers), since=flagged)
    cleared = faults.file_flag(lab, "ha_first", FLAG, 0)
    first.wait_state("MASTER", timeout=3 * mdi(routers), since=cleared)
    second.wait_state("BACKUP", timeout=2 * mdi(routers), since=cleared)


#: A second network, and a port on it for each router: the interface their instances track.
SYNC_NETWORK = {
    "name": "ha_sync",
    "subnets": [{"name": "ha_sync", "cidr": "10.200.52.0/24"}],
}
SYNC_PORTS = {
    "ha_first": {
        "id": "6f1d2a40-1c1e-4d8a-9a2b-3f4c5d6e7f80",
        "network": "ha_sync",
        "mac_address": "fa:16:3e:52:00:20",
        "fixed_ips": ["10.200.52.32"],
    },
    "ha_second": {
        "id": "7a2e3b51-2d2f-4e9b-8b3c-4a5d6e7f8091",
        "network": "ha_sync",
        "mac_address": "fa:16:3e:52:00:21",
        "fixed_ips": ["10.200.52.33"],
    },
}


def interface_lab(make_lab: MakeLab, impl: str, **track: Any) -> tuple[Lab, Routers]:
    """The short-timer lab with a second port per router (ens4, on ha_sync), which both
    instances track (``track_interface``, with ``track``'s fields), started and settled."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no track_interface")
    doc = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    doc["steps"] = []
    doc["networks"].append(SYNC_NETWORK)
    for inst in doc["instances"]:
        if inst["name"] in SYNC_PORTS:
            inst["ports"].append(SYNC_PORTS[inst["name"]])
    for router in doc["routers"]:
        router["track_interface"] = [{"name": "ens4", **track}]
    scenario = parse_scenario(yaml.safe_dump(doc), "short-timers+track_interface")
    lab = make_lab(scenario)
    routers = start_routers(lab, scenario.routers, impl_override=impl)
    settle = 10 * advert(routers) + mdi(routers)
    routers["ha_first"].wait_state("MASTER", timeout=settle)
    routers["ha_second"].wait_state("BACKUP", timeout=settle)
    return lab, routers


def test_a_tracked_interface_going_down_faults_the_master(make_lab: MakeLab, impl: str) -> None:
    """Unweighted, a tracked interface that goes down inside the node (its fabric port stays
    up) puts the instance in FAULT: priority 0, and the peer takes over at once."""
    lab, routers = interface_lab(make_lab, impl)
    first, second = routers["ha_first"], routers["ha_second"]
    down = faults.interface_down(lab, "ha_first", "ens4")
    first.wait_state("FAULT", timeout=2 * mdi(routers), since=down)
    second.wait_state("MASTER", timeout=2 * mdi(routers), since=down)
    up = faults.interface_up(lab, "ha_first", "ens4")
    first.wait_state("MASTER", timeout=3 * mdi(routers), since=up)
    second.wait_state("BACKUP", timeout=2 * mdi(routers), since=up)


def test_a_weighted_tracked_interface_lowers_the_master_below_its_peer(
    make_lab: MakeLab, impl: str
) -> None:
    """Weighted (-150: 200 → 50 < 100), the same interface going down hands the VIP over
    without a FAULT, and back when it comes up."""
    lab, routers = interface_lab(make_lab, impl, weight=-150)
    first, second = routers["ha_first"], routers["ha_second"]
    down = faults.interface_down(lab, "ha_first", "ens4")
    second.wait_state("MASTER", timeout=3 * mdi(routers), since=down)
    first.wait_state("BACKUP", timeout=2 * mdi(routers), since=down)
    up = faults.interface_up(lab, "ha_first", "ens4")
    first.wait_state("MASTER", timeout=3 * mdi(routers), since=up)
    second.wait_state("BACKUP", timeout=2 * mdi(routers), since=up)
    # Judged on the whole stretch, not one read: a weighted tracker never faults.
    faulted = [e for e in first.events.snapshot(since=down) if e.state == "FAULT"]
    assert faulted == [], "a weighted track_interface lowers the priority, it never faults"
