"""IPv6 hostile neighbours on the SDN profiles (issue 17): ``na-storm`` judged on every profile
where IPv6 neighbours resolve, against a prediction from the profile's knobs, and the profiles
where they never do, pinned.

An IPv6 neighbour is found with a Neighbor Solicitation to a solicited-node multicast group,
and no profile answers one for an instance (their ARP modes cover ARP only): a profile that
drops multicast (``multicast: drop``: arp-caching, cloud-l3) carries no IPv6 between instances
at all, so neither ``na-storm`` nor ``unicast-hijack-v6`` can run there. Where IPv6 runs,
mallory's NAs (to ff02::1, Ethernet source the random MAC they claim) reach the observer when
port security does not check that source: ``off``, or ``ip-only``, which checks only the IPv6
source, mallory's own link-local address (it must pass, or ND itself could not).
"""

from __future__ import annotations

import pytest
import yaml

from lab.lab import Lab
from lab.scenario import SCENARIO_DIR, Scenario
from lab.sdn.profiles import PROFILES, Knobs
from tests.scenarios.test_garp_storm import profile_cells, storm_holds

SCENARIO = SCENARIO_DIR / "na-storm.yaml"


def resolves_ipv6(knobs: Knobs) -> bool:
    """Whether an instance's Neighbor Solicitation reaches another instance."""
    return knobs.multicast != "drop"


def poisoned(knobs: Knobs) -> bool:
    """Whether a stranger's unsolicited NA for another's address reaches the observer."""
    return resolves_ipv6(knobs) and knobs.port_security in ("off", "ip-only")


def _data(profile: str) -> dict:
    data = yaml.safe_load(SCENARIO.read_text())
    data["networks"][0]["sdn"] = {"profile": profile}
    return data


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every profile where IPv6 resolves, the implementations of ``--impl`` taking turns."""
    if "v6_profile" in metafunc.fixturenames:
        profiles = [p for p, knobs in PROFILES.items() if resolves_ipv6(knobs)]
        profile_cells(metafunc, profiles, ("v6_profile", "scenario_impl"))


@pytest.mark.lab
@pytest.mark.timing
def test_na_storm_poisons_only_where_the_profile_lets_it(
    v6_profile: str, scenario_impl: str
) -> None:
    """The scenario's steps on ``v6_profile``, its storm judged against the knobs' prediction."""
    storm_holds(
        _data(v6_profile), v6_profile, scenario_impl, poisoned=poisoned(PROFILES[v6_profile])
    )


@pytest.mark.lab
def test_ipv6_neighbours_resolve_exactly_where_the_profile_forwards_multicast() -> None:
    """The observer pings ha_first over IPv6 on each profile (no routers): answered where
    :func:`resolves_ipv6` says, unanswered with the neighbour entry FAILED elsewhere, while
    IPv4 is answered everywhere (the lab itself works)."""
    seen = {}
    for profile in PROFILES:
        with Lab(Scenario.model_validate(_data(profile))) as lab:
            observer = lab.node("observer")
            # The build waited for the IPv6 addresses to leave DAD (lab.Lab).
            v4 = observer.run(["ping", "-n", "-c1", "-W2", "10.200.51.32"], check=False)
            assert v4.returncode == 0, f"IPv4 on {profile}: {v4.stdout}{v4.stderr}"
            v6 = observer.run(["ping", "-6", "-n", "-c1", "-W2", "2001:db8:51::32"], check=False)
            entry = observer.run(["ip", "-6", "neigh", "show", "2001:db8:51::32"]).stdout
            seen[profile] = (v6.returncode == 0, entry.strip())
    expected = {p: resolves_ipv6(k) for p, k in PROFILES.items()}
    assert {p: ok for p, (ok, _) in seen.items()} == expected, seen
    for profile, (ok, entry) in seen.items():
        if not ok:  # the Solicitations went unanswered: no lladdr was ever learnt
            assert "lladdr" not in entry, (profile, entry)
