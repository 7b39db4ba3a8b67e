"""Failover tests of our own VRRP pair, on vrrp-lab's pytest plugin.

The plugin (installed with vrrp-lab) provides the ``lab`` marker and the fixtures used here:
``lab`` builds ``lab_scenario``, ``routers`` starts its VRRP routers (``--impl`` picks the
implementation, keepalived by default), and ``make_lab`` builds further labs on demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lab import Lab
from lab.routers import master_down_interval
from lab.routers.spec import Routers, start_routers
from lab.scenario import Scenario, load_scenario
from lab.wait import wait_until

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "failover.yaml"
VIP = "192.168.77.100"


@pytest.fixture(scope="session")
def lab_scenario() -> Path:
    """Every ``lab`` in this module is built from our scenario, not the plugin's seed."""
    return SCENARIO


def deadline(scenario: Scenario) -> float:
    """How long an election or a takeover may take, from the scenario's own timers.

    One Master_Down_Interval of the lowest-priority router is what the RFC allows; ten of them
    (3.6 s here) leave room for the daemons' start and a loaded CI host, and stay far below what
    a broken takeover (never) or a timer misconfigured to seconds would take.
    """
    lowest = min(scenario.routers, key=lambda r: r.priority)
    return 10 * master_down_interval(lowest.priority, lowest.advert_int, lowest.version)


def vip_reply_mac(lab: Lab) -> str | None:
    """The MAC the client reaches the VIP at, after one ping that got an answer; else None."""
    client = lab.node("client")
    ping = client.run(["ping", "-n", "-q", "-c", "1", "-W", "1", VIP], check=False)
    if ping.returncode != 0:
        return None
    entries = json.loads(client.run(["ip", "-j", "neigh", "show", VIP]).stdout or "[]")
    return entries[0].get("lladdr") if entries else None


def port_mac(lab: Lab, node: str) -> str:
    """The MAC of ``node``'s port on the frontend network."""
    return lab.node(node).ports[0].mac


def await_states(routers: Routers, expected: dict[str, str], timeout: float) -> None:
    """Wait until the routers report ``expected``; a timeout says which states were seen."""
    wait_until(
        routers.states,
        timeout=timeout,
        what=f"router states {expected}",
        accept=lambda states: states == expected,
    )


@pytest.mark.lab
def test_higher_priority_is_elected_and_serves_the_vip(lab: Lab, routers: Routers) -> None:
    limit = deadline(lab.scenario)
    await_states(routers, {"lb_a": "MASTER", "lb_b": "BACKUP"}, limit)
    want = port_mac(lab, "lb_a")
    wait_until(
        lambda: vip_reply_mac(lab),
        timeout=limit,
        what=f"the VIP {VIP} to answer the client from lb_a ({want})",
        accept=lambda mac: mac == want,
    )


@pytest.mark.lab
def test_backup_serves_after_the_master_stops(lab: Lab, routers: Routers) -> None:
    limit = deadline(lab.scenario)
    await_states(routers, {"lb_a": "MASTER", "lb_b": "BACKUP"}, limit)
    routers["lb_a"].stop()
    await_states(routers, {"lb_a": "STOPPED", "lb_b": "MASTER"}, limit)
    want = port_mac(lab, "lb_b")
    wait_until(
        lambda: vip_reply_mac(lab),
        timeout=limit,
        what=f"the VIP {VIP} to answer the client from lb_b ({want}) after lb_a stopped",
        accept=lambda mac: mac == want,
    )


@pytest.mark.lab
def test_a_variant_built_with_make_lab(make_lab: Callable[..., Lab], impl: str) -> None:
    """A second scenario made in the test: lb_b outranks lb_a, so lb_b must win the election."""
    data = yaml.safe_load(SCENARIO.read_text())
    for router in data["routers"]:
        router["priority"] = 250 if router["node"] == "lb_b" else 50
    variant = Scenario.model_validate({**data, "name": "ci-failover-lb-b-first"})
    lab = make_lab(variant)
    routers = start_routers(lab, variant.routers, impl_override=impl)
    limit = deadline(variant)
    await_states(routers, {"lb_a": "BACKUP", "lb_b": "MASTER"}, limit)
    want = port_mac(lab, "lb_b")
    wait_until(
        lambda: vip_reply_mac(lab),
        timeout=limit,
        what=f"the VIP {VIP} to answer the client from lb_b ({want})",
        accept=lambda mac: mac == want,
    )


def test_the_scenario_file_is_valid() -> None:
    """Cheap and unprivileged: a typo in our YAML fails here with file, line and field."""
    scenario = load_scenario(SCENARIO)
    assert [r.node for r in scenario.routers] == ["lb_a", "lb_b"]
