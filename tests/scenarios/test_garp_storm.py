"""``garp-storm`` on every SDN profile (issue 17): mallory floods gratuitous ARPs claiming the
VIP at random MACs, and the VIP goes dark exactly where the profile lets a stranger's ARP reach
the other instances.

The prediction comes from the profile's knobs (docs/sdn-profiles.md), not from a list of
names: a GARP from mallory for the VIP poisons the observer's neighbour entry when port
security does not check an ARP's sender address (``port_security: off``), the fabric forwards
broadcasts, and it floods GARPs rather than trapping or dropping them. Every other profile must
keep the VIP served throughout, with no router leaving MASTER.
"""

from __future__ import annotations

import pytest
import yaml

from lab.runner import ScenarioRun
from lab.scenario import SCENARIO_DIR, Scenario
from lab.sdn.profiles import PROFILES, Knobs
from tests.matrix import cell, sliced

pytestmark = [pytest.mark.lab, pytest.mark.timing]

SCENARIO = SCENARIO_DIR / "garp-storm.yaml"


def poisoned(knobs: Knobs) -> bool:
    """Whether a stranger's gratuitous ARP for another's address reaches the observer."""
    return knobs.port_security == "off" and knobs.broadcast == "forward" and knobs.garp == "flooded"


def profile_cells(
    metafunc: pytest.Metafunc, profiles: list[str], argnames: tuple[str, str]
) -> None:
    """Parametrise ``argnames`` (profile, implementation) over ``profiles`` × ``--impl``, the
    implementations taking turns in the slice (``MATRIX=full``: each with each)."""
    impls = metafunc.config.getoption("impl") or ["keepalived"]
    cells, keep = [], set()
    for n, profile in enumerate(profiles):
        for impl in impls:
            cells.append(cell(profile, impl, id=f"{impl}-{profile}"))
        keep.add(f"{impls[n % len(impls)]}-{profile}")
    metafunc.parametrize(argnames, sliced(cells, keep))


def storm_holds(data: dict, profile: str, impl: str, *, poisoned: bool) -> None:
    """Run a storm scenario (``data``, its network already on ``profile``) with its failover
    expectation replaced by the prediction: no router leaves MASTER, and the VIP goes dark
    exactly when ``poisoned``. Every step must hold."""
    steps = data["steps"]
    judged = next(i for i, s in enumerate(steps) if "failover" in (s.get("expect") or {}))
    expect = {"no_master_ms": {"max": 0}, "two_masters_ms": {"max": 0}}
    expect["blackhole_ms"] = {"min": 1} if poisoned else {"max": 0}
    steps[judged] = {"name": f"the storm on {profile}", "expect": {"failover": expect}}
    report = ScenarioRun(Scenario.model_validate(data), impl=impl).execute()
    report.raise_if_inconclusive()  # a host stall spoiled a timed expectation: run again
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], f"{data['name']} on {profile} with {impl}"
    (failover,) = report.failovers
    print(
        f"\n{data['name']} on {profile} with {impl}: blackhole "
        f"{failover.blackhole_ms:.1f} ms, no master {failover.no_master_ms:.1f} ms"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every profile, the implementations of ``--impl`` taking turns."""
    if "profile" in metafunc.fixturenames:
        profile_cells(metafunc, list(PROFILES), ("profile", "scenario_impl"))


def test_garp_storm_poisons_only_where_the_profile_lets_it(
    profile: str, scenario_impl: str
) -> None:
    """The scenario's steps on ``profile``, its storm judged against the knobs' prediction."""
    data = yaml.safe_load(SCENARIO.read_text())
    data["networks"][0]["sdn"] = {"profile": profile}
    storm_holds(data, profile, scenario_impl, poisoned=poisoned(PROFILES[profile]))
