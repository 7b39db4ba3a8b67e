"""The SDN profile table, reproduced: every SDN profile × every way of allowing the VIP.

The predictions are those of docs/architecture.md#profile-predictions.

Each cell is a short-timer scenario on the seed's addressing: two keepalived routers (priority
200 and 100, advert 0.1 s, unicast so that elections work wherever unicast does), the port
changes of the column, a graceful stop of the master, and the observer's probes throughout.
The measured outcome is classified, so that it can be compared with the table's prediction:

- ``works``: the VIP answered before the failover and, from the new master, after it;
- ``unreachable``: the VIP never answered (the SDN dropped it, or the frames carrying it);
- ``failover-broken``: it answered before, and not from the new master after (stale ARP).

The master leaves by :data:`FAULTS`: a graceful ``stop`` (the table's own fault) or
``host-down`` (its fabric port goes down). Beside the emulated profiles, the row
:data:`REAL_OVN` runs the cells on the real OVN (``sdn: {engine: ovn}``), to check the
emulated ``ovn`` profile against it; DESIGN's ``ovn`` predictions are its predictions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.runner import RunReport, ScenarioRun
from lab.scenario import DEFAULT_SCENARIO, Scenario

PROFILES = ("l2-plain", "neutron-ovs-hybrid", "neutron-ovs-ofw", "ovn", "arp-caching", "cloud-l3")
#: The row that runs on the real OVS/OVN (``sdn: {engine: ovn}``) instead of a profile.
REAL_OVN = "engine-ovn"
#: Every row of the table: the emulated profiles, then the real OVN.
ROWS = (*PROFILES, REAL_OVN)
#: How the master leaves: the catalogue's fault, as a scenario step.
FAULTS = ("stop", "host-down")
VMAC = "00:00:5e:00:01:01"
VIP = "10.200.51.10"


@dataclass(frozen=True)
class Column:
    """One column of the table: which allowed pairs the ports get, and whether VRRP uses a VMAC."""

    key: str
    title: str
    pairs: tuple[dict[str, str], ...]
    use_vmac: bool


COLUMNS = (
    Column("no-pair", "no allowed pair", (), False),
    Column("ip-pair", "IP-only pair, no vmac", ({"ip_address": VIP},), False),
    Column("ip-pair-vmac", "IP-only pair, use_vmac", ({"ip_address": VIP},), True),
    Column(
        "vmac-pairs",
        "VMAC+IP pairs, use_vmac",
        ({"ip_address": VIP}, {"ip_address": VIP, "mac_address": VMAC}),
        True,
    ),
)

#: The predictions (docs/architecture.md#profile-predictions), as outcome classes (the table's
#: words are kept in docs).
PREDICTED: dict[tuple[str, str], str] = {
    **{("l2-plain", c.key): "works" for c in COLUMNS},
    ("neutron-ovs-hybrid", "no-pair"): "unreachable",
    ("neutron-ovs-hybrid", "ip-pair"): "works",
    ("neutron-ovs-hybrid", "ip-pair-vmac"): "unreachable",
    ("neutron-ovs-hybrid", "vmac-pairs"): "works",
    ("neutron-ovs-ofw", "no-pair"): "unreachable",
    ("neutron-ovs-ofw", "ip-pair"): "works",
    ("neutron-ovs-ofw", "ip-pair-vmac"): "unreachable",
    ("neutron-ovs-ofw", "vmac-pairs"): "works",
    ("ovn", "no-pair"): "unreachable",
    ("ovn", "ip-pair"): "works",
    ("ovn", "ip-pair-vmac"): "unreachable",
    ("ovn", "vmac-pairs"): "works",
    ("arp-caching", "no-pair"): "unreachable",
    ("arp-caching", "ip-pair"): "failover-broken",
    ("arp-caching", "ip-pair-vmac"): "works",
    ("arp-caching", "vmac-pairs"): "works",
    ("cloud-l3", "no-pair"): "unreachable",
    ("cloud-l3", "ip-pair"): "failover-broken",
    ("cloud-l3", "ip-pair-vmac"): "unreachable",
    ("cloud-l3", "vmac-pairs"): "unreachable",
}
# The real OVN's prediction is DESIGN's for OVN.
PREDICTED |= {(REAL_OVN, c.key): PREDICTED[("ovn", c.key)] for c in COLUMNS}


#: Cells where the lab, run for real, departs from DESIGN's prediction, and why. The tests hold
#: the lab to these; docs/sdn-profiles.md tells the story.
DEPARTURES: dict[tuple[str, str], tuple[str, str]] = {
    ("cloud-l3", "ip-pair-vmac"): (
        "failover-broken",
        "the cloud answers ARP for the VIP with the port MAC of its static binding, so the VMAC "
        "is never asked for; replies leave ens3 with the base MAC (the VIP is a /32 on the VMAC "
        "interface, the subnet route is on ens3), which the pair allows. The VIP works on the "
        "first master and never moves, exactly as without use_vmac.",
    ),
    ("cloud-l3", "vmac-pairs"): (
        "failover-broken",
        "as with the IP-only pair: the static ARP binding names the first master's port MAC, so "
        "the extra (VIP, VMAC) pair is never exercised and the VIP never moves.",
    ),
    (REAL_OVN, "vmac-pairs"): (
        "failover-broken",
        "the VMAC does not move: both ports list it in their addresses, northd writes one "
        "ls_in_l2_lkup flow per port with the same match (eth.dst == the VMAC), and "
        "ovn-controller keeps the first port's. The new master is elected, the observer's ARP "
        "still names the VMAC, and OVN delivers its frames to the old master's port.",
    ),
    ("ovn", "vmac-pairs"): (
        "failover-broken",
        "as on the real OVN (fdb: static-first pins the VMAC to the first port that lists it); "
        "the profile bound it to the last sender until the real OVN showed otherwise.",
    ),
}


def departure(profile: str, column: Column, fault: str = "stop") -> tuple[str, str] | None:
    """The documented departure of a cell from DESIGN (one of this fault, or of every fault)."""
    return DEPARTURES.get((profile, column.key, fault)) or DEPARTURES.get((profile, column.key))


def expected(profile: str, column: Column, fault: str = "stop") -> str:
    """What the lab should measure: DESIGN's prediction, or a documented departure from it."""
    known = departure(profile, column, fault)
    return known[0] if known else PREDICTED[(profile, column.key)]


def cell_scenario(
    profile: str, column: Column, *, advert_int: float = 0.1, fault: str = "stop"
) -> Scenario:
    """The scenario of one cell, built from the seed's topology (``profile`` may be
    :data:`REAL_OVN`)."""
    if fault not in FAULTS:
        raise ValueError(f"the profile table's faults are {', '.join(FAULTS)}, not {fault}")
    seed: dict[str, Any] = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data = {key: copy.deepcopy(seed[key]) for key in ("networks", "instances", "vips")}
    data["name"] = f"matrix-{profile}-{column.key}-{fault}"
    data["description"] = (
        f"{profile}, {column.title}, {fault}: profile table cell, "
        "docs/architecture.md#profile-predictions"
    )
    data["networks"][0]["sdn"] = {"engine": "ovn"} if profile == REAL_OVN else {"profile": profile}
    routers = []
    for node, priority in (("ha_first", 200), ("ha_second", 100)):
        router: dict[str, Any] = {
            "node": node,
            "priority": priority,
            "advert_int": advert_int,
            "unicast": True,
        }
        if column.use_vmac:
            router |= {"use_vmac": True, "vmac_xmit_base": True}
        routers.append(router)
    data["routers"] = routers
    # Within a few Master_Down_Intervals everything settles; 1.5 s is ample at 0.1 s adverts.
    settle = max(1.5, 15 * advert_int)
    steps: list[dict[str, Any]] = [
        {"start": ["ha_first"]},
        {"expect": {"master": "ha_first", "within": settle}},
        {"start": ["ha_second"]},
        {"expect": {"backup": "ha_second", "within": settle}},
    ]
    for node in ("ha_first", "ha_second"):
        for pair in column.pairs:
            steps.append({"port-set": {"port": node, **pair}})
    steps += [
        {"name": "before", "expect": {"served_by": "ha_first", "within": settle}},
        {fault: "ha_first"},
        {"name": "after", "expect": {"served_by": "ha_second", "within": settle}},
    ]
    data["steps"] = steps
    return Scenario.model_validate(data)


@dataclass
class CellResult:
    """The measured outcome of one cell and the figures behind it."""

    profile: str
    column: Column
    fault: str
    outcome: str
    predicted: str
    """The prediction (docs/architecture.md#profile-predictions)."""
    expected: str
    """The prediction, or the documented departure from it (:data:`DEPARTURES`)."""
    outage_ms: float | None
    stale_arp_ms: float | None
    report: RunReport

    @property
    def as_predicted(self) -> bool:
        """True when the lab reproduced DESIGN's prediction."""
        return self.outcome == self.predicted

    @property
    def as_expected(self) -> bool:
        """True when the lab measured what it should: the prediction or its known departure."""
        return self.outcome == self.expected


def classify(report: RunReport) -> str:
    """``works``, ``unreachable`` or ``failover-broken``, from the before/after steps."""
    verdict = {s.name: s.ok for s in report.steps}
    if not verdict.get("before", False):
        return "unreachable"
    return "works" if verdict.get("after", False) else "failover-broken"


def run_cell(
    profile: str,
    column: Column,
    *,
    fault: str = "stop",
    impl: str | None = None,
    pcap_dir: Path | None = None,
) -> CellResult:
    """Run one cell and classify it."""
    scenario = cell_scenario(profile, column, fault=fault)
    report = ScenarioRun(scenario, impl=impl, pcap_dir=pcap_dir).execute()
    failover = report.failovers[-1] if report.failovers else None
    return CellResult(
        profile,
        column,
        fault,
        classify(report),
        PREDICTED[(profile, column.key)],
        expected(profile, column, fault),
        failover.outage_ms if failover else None,
        failover.stale_arp_ms if failover else None,
        report,
    )
