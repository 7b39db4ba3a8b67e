"""Every bundled scenario with steps runs and every expectation in it holds (issue 4, scenarios 2).

Each scenario is a reproducible bug report of the seed's claims: no use_vmac under the
ARP-caching SDN (stale ARP), multicast VRRP in a cloud without multicast (split brain) and
unicast (none), an IP-only pair with use_vmac under ML2/OVS (VMAC frames dropped) and its fix,
and the seed's configs when the master's host dies (Master_Down_Interval). The seed itself is
tests/scenarios/test_seed.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.recording import timers_of_config
from lab.runner import ScenarioRun
from lab.scenario import bundled_scenarios, load_scenario
from tests.matrix import FULL, cell, sliced

pytestmark = pytest.mark.lab

WITH_STEPS = [p for p in bundled_scenarios() if p.stem != "seed" and load_scenario(p).steps]


#: The advert interval from which a scenario's failover times are judged coarsely enough to
#: run beside other labs: its tolerances are Adv/5 (200 ms at 1 s) or RFC windows a second
#: wide, while the waits three labs on two cores impose are tens of milliseconds (a longer
#: stall still makes the step inconclusive, never red). Faster timers run alone (``timing``).
COARSE_ADVERT = 1.0


def _advert_interval(path: Path) -> float:
    """The shortest advert interval among a scenario's routers (rendered or verbatim)."""
    intervals = []
    for router in load_scenario(path).routers:
        if router.config is None:
            intervals.append(router.advert_int)
        else:
            conf = router.config if router.config.is_absolute() else path.parent / router.config
            intervals.append(timers_of_config(conf.read_text(), str(conf)).advert_int)
    return min(intervals, default=COARSE_ADVERT)


def _judges_time(path: Path) -> bool:
    """Whether a scenario's steps judge a measured failover time (detection, outage, stale
    ARP) against a window at a tolerance other labs' load could cross: such a run is marked
    ``timing`` and runs alone."""
    steps = yaml.safe_load(path.read_text()).get("steps") or []
    judged = any(
        key.endswith(("_ms", "_ms_max", "_ms_min"))
        for step in steps
        for key in ((step.get("expect") or {}).get("failover") or {})
    )
    return judged and _advert_interval(path) < COARSE_ADVERT


def _tracks(path: Path) -> bool:
    """Whether a scenario's routers track BFD, a health check or a file, or sync instances (a
    verbatim config's track_bfd, track_script, track_file or vrrp_sync_group; or bfd:,
    checks:, files:), none of which FRR's vrrpd has."""
    from vrrp import config as kconfig

    scenario = load_scenario(path)
    for spec in scenario.routers:
        if (spec.bfd is not None and spec.bfd.track != "none") or spec.checks or spec.files:
            return True
        if spec.config is not None:
            parsed = kconfig.parse((path.parent / spec.config).read_text(), str(spec.config))
            tracked = ("track_bfd", "track_script", "track_file")
            if parsed.sync_groups or any(
                getattr(inst, t) for inst in parsed.instances for t in tracked
            ):
                return True
    return False


#: Scenarios another test of this module runs, every step judged as here, and with which
#: implementations: the slice leaves those runs out.
RUN_ELSEWHERE = {
    "seed-bfd": ("keepalived", "bundled"),  # test_seed_bfd_reports_the_bfd_component
    "seed-no-vmac": ("keepalived",),  # test_stale_arp_is_reported_without_use_vmac
    "seed-haproxy": ("keepalived", "bundled"),  # test_seed_haproxy_reports_the_service_outage
    # Their own modules run them on every profile, the first (l2-plain, the scenarios' own)
    # with the first --impl, keepalived in make test's slice.
    "garp-storm": ("keepalived",),  # tests/scenarios/test_garp_storm.py
    "na-storm": ("keepalived",),  # tests/scenarios/test_inject_v6.py
}


def _differs_by_impl(path: Path) -> bool:
    """Whether any of a scenario's steps is for some implementations only (``impl:``)."""
    return any("impl" in step for step in yaml.safe_load(path.read_text()).get("steps") or [])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``test_scenario_holds`` over the bundled scenarios × the implementations of
    ``--impl``, sliced (:mod:`tests.matrix`): a scenario whose steps differ by implementation
    is asked of each; every other one of one, the implementations taking turns; and none
    that another test here already runs (:data:`RUN_ELSEWHERE`). The implementations meet in
    every other lab test, and each scenario still runs; ``make test MATRIX=full`` asks every
    pair."""
    if metafunc.function is not test_scenario_holds:
        return
    impls = metafunc.config.getoption("impl") or ["keepalived"]
    cells, keep = [], set()
    plain = [p for p in WITH_STEPS if not _differs_by_impl(p) and p.stem not in RUN_ELSEWHERE]
    for n, path in enumerate(plain):
        keep.add(f"{impls[n % len(impls)]}-{path.stem}")
    for path in WITH_STEPS:
        marks = [pytest.mark.timing] if _judges_time(path) else []
        for impl in impls:
            cells.append(cell(path, impl, id=f"{impl}-{path.stem}", marks=marks))
            if _differs_by_impl(path) and impl not in RUN_ELSEWHERE.get(path.stem, ()):
                keep.add(f"{impl}-{path.stem}")
    metafunc.parametrize(("path", "scenario_impl"), sliced(cells, keep))


def test_scenario_holds(path: Path, scenario_impl: str) -> None:
    """The scenario's every step holds with ``scenario_impl`` driving its routers."""
    impl = scenario_impl
    if impl == "frr" and _tracks(path):
        pytest.skip("FRR's vrrpd has no trackers: no BFD client, health checks or files")
    scenario = load_scenario(path)
    if any(net.sdn.engine == "ovn" for net in scenario.networks):
        from lab.ovn.engine import missing

        if missing():
            pytest.skip(missing())
    report = ScenarioRun(scenario, impl=impl).execute()
    report.raise_if_inconclusive()  # a host stall spoiled a timed expectation: run again
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], f"{path.stem} with {impl}"


@pytest.mark.timing
def test_stale_arp_is_reported_without_use_vmac() -> None:
    """The seed's use_vmac claim, reversed: the report shows the stale-ARP time."""
    path = next(p for p in WITH_STEPS if p.stem == "seed-no-vmac")
    report = ScenarioRun(load_scenario(path), impl="keepalived").execute()
    report.raise_if_inconclusive()  # a host stall spoiled a timed expectation: run again
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], "seed-no-vmac with keepalived"
    (failover,) = report.failovers
    assert failover.first_served_after is None, "the observer must never be served again"
    assert failover.stale_arp_ms is not None and failover.stale_arp_ms > 1000
    assert failover.neighbour_mac_after in (None, "fa:16:3e:8d:dc:bb")


def test_a_dead_controller_stops_the_run_loudly() -> None:
    """The runner checks the SDN after every step and never goes on as plain L2."""
    import signal

    from lab.errors import LabError
    from lab.wait import wait_until

    path = next(p for p in WITH_STEPS if p.stem == "seed-no-vmac")
    run: ScenarioRun

    def kill_controller_after_first_step(result) -> None:
        if len(run.report.steps) == 1:
            controller = run.lab.fabric.sdn.controller
            controller.proc.send_signal(signal.SIGKILL)
            wait_until(lambda: controller.died, timeout=5, what="the controller's death")

    run = ScenarioRun(load_scenario(path), progress=kill_controller_after_first_step)
    with pytest.raises(LabError, match="SDN controller"):
        run.execute()
    assert len(run.report.steps) == 2 and not run.report.steps[-1].ok


def test_a_crash_is_reported_as_split_brain(impl: str) -> None:
    """Issue 4, point 3: SIGKILL leaves the old master's VIP and VMAC behind; once the backup
    takes over, two sources advertise VRID 1, and the report says so."""
    import io

    import yaml
    from rich.console import Console

    from lab.report import print_report
    from lab.scenario import SCENARIO_DIR, Scenario

    data = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    data["steps"] = [
        {"start": "all"},
        {"expect": {"master": "ha_first", "within": 2}},
        {"crash": "ha_first"},
        {"expect": {"masters": ["ha_second"], "within": 2}},
        {"observe": 0.5},
    ]
    report = ScenarioRun(Scenario.model_validate(data), impl=impl).execute()
    assert report.ok, [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    (failover,) = report.failovers
    # A SIGKILLed daemon sends nothing more, so the wire shows one advertiser; the split brain
    # is in the nodes: both hold the VIP (and, with use_vmac, the VMAC).
    assert failover.vip_holders_at_end == ["ha_first", "ha_second"]
    assert failover.duplicated_vip and not failover.split_brain
    out = io.StringIO()
    print_report(report, Console(file=out, width=200))
    assert "VIP on ha_first and ha_second" in out.getvalue()


@pytest.mark.timing
def test_seed_bfd_reports_the_bfd_component(impl: str) -> None:
    """Issue 13, point 1: the JSON report's failover has detection_ms and a BFD component, and
    the BFD detection is within the configured detection time (150 ms) and a tolerance, whatever
    VRRP then does with it (the scenario's own steps judge that, per implementation)."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no BFD client: it cannot track BFD (docs/frr.md)")
    path = next(p for p in WITH_STEPS if p.stem == "seed-bfd")
    report = ScenarioRun(load_scenario(path), impl=impl).execute()
    report.raise_if_inconclusive()
    (failover,) = report.as_json()["failovers"]
    bfd = failover["bfd"]
    assert failover["detection_ms"] is not None and bfd is not None, failover
    assert (bfd["router"], bfd["session"], bfd["peer"], bfd["diag"]) == (
        "ha_second",
        "ha_first",
        "ha_first",
        1,
    )
    assert bfd["configured_detect_time_ms"] == pytest.approx(150)
    assert bfd["detect_time_ms"] == pytest.approx(150)  # as negotiated on the wire
    # The peer's last packet came before the fault; the survivor's Down packet after its Down.
    assert bfd["last_packet_from_peer_ms"] <= 0 < bfd["detection_ms"]
    assert bfd["first_down_packet_ms"] >= bfd["detection_ms"] - 1
    kinds = {(e["router"], e["kind"], e["state"]) for e in report.as_json()["bfd_events"]}
    assert {("ha_second", "session", "Up"), ("ha_second", "session", "Down")} <= kinds
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], f"seed-bfd with {impl}"


def test_seed_haproxy_reports_the_service_outage(impl: str, request: pytest.FixtureRequest) -> None:
    """Issue 15, point 1: haproxy killed on the master; the JSON's failover has the outage the
    HTTP clients saw, its failed requests and broken sessions, and names its two components,
    the health check's detection and VRRP's takeover, which add up to the new master's first
    advert. The scenario's own step judges the outage against its window.

    A minute a run (the seed's one-second adverts, a check that must fail twice and rise
    twice): ``make test`` asks it of the first ``--impl`` (keepalived, the seed's), and
    ``tests/lab/test_service.py`` asks each implementation's check on the same haproxy;
    ``make test MATRIX=full`` asks every implementation here."""
    if impl == "frr":
        pytest.skip("FRR's vrrpd has no health checks: track_script is refused")
    first = (request.config.getoption("impl") or ["keepalived"])[0]
    if not FULL and impl != first:
        pytest.skip(f"make test asks seed-haproxy of {first} only (MATRIX=full: of each --impl)")
    path = next(p for p in WITH_STEPS if p.stem == "seed-haproxy")
    report = ScenarioRun(load_scenario(path), impl=impl).execute()
    report.raise_if_inconclusive()
    failed = [f"{s.name}: {s.detail}" for s in report.steps if not s.ok]
    assert failed == [], f"seed-haproxy with {impl}"
    (failover,) = report.as_json()["failovers"]
    service = failover["service"]
    assert (failover["fault"], failover["old_master"], failover["new_master"]) == (
        "service-down",
        "ha_first",
        "ha_second",
    )
    assert (service["served_before"], service["served_after"]) == ("ha_first", "ha_second")
    assert service["recovered"] and service["failed_requests"] > 0
    # ha_first keeps the VIP while its check notices: its kernel refuses the connections.
    assert service["errors"].get("ECONNREFUSED", 0) > 0, service["errors"]
    # The long-lived connections haproxy held died with it.
    assert (
        service["sessions_broken"].get("closed", 0) + service["sessions_broken"].get("reset", 0) > 0
    ), service["sessions_broken"]
    parts = service["components"]
    assert set(parts) == {"check_detection_ms", "takeover_ms"}
    assert parts["check_detection_ms"] > 0 and parts["takeover_ms"] > 0, parts
    assert parts["check_detection_ms"] + parts["takeover_ms"] == pytest.approx(
        failover["detection_ms"], abs=0.01
    )
    whole = report.as_json()["service"]
    assert whole["served_by"].keys() == {"ha_first", "ha_second"}
