"""scenarios/vip-port-ovn.yaml: a router failover moves OVN's virtual-port claim (issue 14).

The VIP is the fixed IP of a reserved, unbound port that both routers' ports list as a pair,
so OVN types it virtual; each implementation stops its master gracefully, and the run must
show ha_second's takeover within its Skew_Time (the scenario's own bound), then OVN's
``bind-vport`` claim for ha_second after that takeover and before the step that saw
ha_second serve the VIP had run out (its ``within``), with ha_first the claim's holder before.
The scenario places the routers on two compute hosts, so the failover crosses two OVN chassis
joined by Geneve and the claim must move to ha_second's chassis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.ovn import engine
from lab.ovn.events import claims_between
from lab.runner import ScenarioRun
from lab.scenario import load_scenario

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(engine.missing() is not None, reason=engine.missing() or ""),
]

SCENARIO = Path(__file__).resolve().parents[2] / "lab" / "scenarios" / "vip-port-ovn.yaml"
VIP = "vip 10.200.51.10"


def test_the_failover_moves_the_virtual_port_claim(impl: str) -> None:
    scenario = load_scenario(SCENARIO)
    served = next(s for s in scenario.steps if s.expect and s.expect.served_by == "ha_second")
    assert served.expect is not None and served.expect.within is not None
    report = ScenarioRun(scenario, impl=impl).execute()
    report.raise_if_inconclusive()
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], failed
    failover = report.failovers[-1]
    assert failover.new_master == "ha_second" and failover.detection_ms is not None
    takeover = failover.at + failover.detection_ms / 1000
    claims = [(e["t"], e["parent"]) for e in report.ovn_events if e["event"] == "bind-vport"]
    # The routers run on two compute hosts (two chassis): the claim moves between chassis.
    hosts = {i.name: i.host for i in scenario.instances}
    assert hosts["ha_first"] != hosts["ha_second"], hosts
    chassis = {e["t"]: e["chassis"] for e in report.ovn_events if e["event"] == "bind-vport"}
    before = [parent for t, parent in claims if t < failover.at]
    after = [(t, parent) for t, parent in claims if t >= failover.at]
    assert before and before[-1] == "ha_first", f"claims before the stop: {claims}"
    assert after, f"no bind-vport after the stop at {failover.at:.3f}; claims: {claims}"
    at, parent = after[0]
    assert parent == "ha_second", f"the first claim after the stop went to {parent}: {claims}"
    assert chassis[at] == hosts["ha_second"], f"claimed by chassis {chassis[at]}: {chassis}"
    assert takeover <= at <= takeover + served.expect.within, (
        f"claim {(at - takeover) * 1000:.1f} ms after ha_second's takeover, outside "
        f"0..{served.expect.within * 1000:.0f} ms"
    )
    # The console report's failover timeline lists the claim among the failover's events.
    texts = [text for _, text in claims_between(report.ovn_events, failover.at)]
    assert f"OVN binds virtual port {VIP} to ha_second" in texts
    print(f"\n{impl}: claim {(at - takeover) * 1000:.1f} ms after the takeover")
