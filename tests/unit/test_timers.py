"""vrrp.timers: Skew_Time, Master_Down_Interval and the windows per RFC 3768, 5798 and 9568,
with figures worked out by hand from the RFCs; and the lab's RFC figures, which come from it.

RFC 3768 §6.1: Skew_Time = (256 − Priority)/256 s; Master_Down_Interval = 3·Adv + Skew_Time.
RFC 5798 §6.1: Skew_Time = ((256 − Priority)·Master_Adver_Interval)/256; MDI likewise, in cs.
RFC 9568 §6.4.2: as RFC 5798, and a backup recomputes Skew_Time when it adopts an interval.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lab import measure, metrics
from lab.conformance.procedures import adoption_window, mdi
from lab.report import print_report
from lab.routers import RouterParams, master_down_interval, skew_time
from lab.runner import RunReport
from lab.scenario import SCENARIO_DIR, bundled_scenarios, load_scenario, scenario_base_dir
from vrrp.state import Params, StateMachine
from vrrp.timers import Rfc, Timers, centiseconds
from vrrp.timers import master_down_interval as mdi_of
from vrrp.timers import skew_time as skew_of

# --- the formulas, figure by figure ----------------------------------------------------------


def test_rfc3768_v2_priority_100_advert_2() -> None:
    # (256 − 100)/256 = 156/256 = 0.609375 s; 3·2 + 0.609375 = 6.609375 s.
    t = Timers.of(2, 100, 2.0)
    assert t.rfc is Rfc.RFC3768
    assert t.skew_time == 0.609375
    assert t.master_down_interval == 6.609375


def test_rfc5798_v3_priority_100_advert_2() -> None:
    # (256 − 100)·200 cs/256 = 121.875 cs = 1.21875 s; 3·2 + 1.21875 = 7.21875 s.
    t = Timers.of(3, 100, 2.0)
    assert t.rfc is Rfc.RFC5798
    assert t.skew_time == 1.21875
    assert t.master_down_interval == 7.21875


def test_v2_and_v3_agree_at_one_second_only() -> None:
    # The seed's timers: 1 s adverts hide the difference (156/256 either way).
    assert Timers.of(2, 100, 1.0).skew_time == Timers.of(3, 100, 1.0).skew_time == 0.609375
    assert Timers.of(2, 100, 1.0).master_down_interval == 3.609375
    assert Timers.of(3, 100, 1.0).master_down_interval == 3.609375


@pytest.mark.parametrize("advert_int", [1.0, 2.0, 3.0, 10.0, 255.0])
def test_rfc3768_skew_is_not_scaled_by_the_interval(advert_int: float) -> None:
    t = Timers.of(2, 100, advert_int)
    assert t.skew_time == 0.609375
    assert t.master_down_interval == 3 * advert_int + 0.609375


@pytest.mark.parametrize(
    ("priority", "advert_int", "skew", "mdi"),
    [
        # (256 − 200)·10/25600 = 0.021875; 0.3 + 0.021875.
        (200, 0.1, 0.021875, 0.321875),
        # (256 − 100)·10/25600 = 0.0609375; 0.3 + 0.0609375 (the bench's IUT).
        (100, 0.1, 0.0609375, 0.3609375),
        # The owner: 1/256 of the interval. Priority 1: 255/256 of it.
        (255, 1.0, 1 / 256, 3 + 1 / 256),
        (1, 1.0, 255 / 256, 3 + 255 / 256),
        # (256 − 156)·25/25600 = 25/256 = 0.09765625; 0.75 + that.
        (156, 0.25, 0.09765625, 0.84765625),
    ],
)
def test_rfc5798_figures(priority: int, advert_int: float, skew: float, mdi: float) -> None:
    t = Timers.of(3, priority, advert_int)
    assert t.skew_time == pytest.approx(skew, abs=1e-12)
    assert t.master_down_interval == pytest.approx(mdi, abs=1e-12)


def test_rfc9568_keeps_the_v3_formulas() -> None:
    for priority, advert_int in [(100, 2.0), (200, 0.1), (1, 40.95)]:
        v5798 = Timers.of(3, priority, advert_int)
        v9568 = Timers.of(3, priority, advert_int, rfc9568=True)
        assert v9568.rfc is Rfc.RFC9568
        assert v9568.skew_time == v5798.skew_time
        assert v9568.master_down_interval == v5798.master_down_interval


def test_functions_and_dataclass_agree() -> None:
    assert skew_of(Rfc.RFC3768, 100, 200) == 0.609375
    assert skew_of(Rfc.RFC5798, 100, 200) == 1.21875
    assert skew_of(Rfc.RFC9568, 100, 200) == 1.21875
    assert mdi_of(200, 0.609375) == 6.609375


# --- adoption (§6.4.2): where RFC 5798 and RFC 9568 differ ------------------------------------


def test_adoption_rfc5798_keeps_the_old_skew() -> None:
    # A priority-100 backup configured for 1 s hears a 2 s master: MDI = 3·2 + 156/256·1.
    t = Timers(Rfc.RFC5798, 100, 100).adopt(200)
    assert (t.interval_cs, t.skew_time, t.master_down_interval) == (200, 0.609375, 6.609375)


def test_adoption_rfc9568_recomputes_the_skew() -> None:
    # RFC 9568 "Recompute the Skew_Time": 156/256·2 = 1.21875; MDI 7.21875.
    t = Timers(Rfc.RFC9568, 100, 100).adopt(200)
    assert (t.interval_cs, t.skew_time, t.master_down_interval) == (200, 1.21875, 7.21875)


def test_adoption_rfc3768_changes_nothing() -> None:
    # A v2 backup discards an advert whose interval is not its own (RFC 3768 §7.1).
    t = Timers(Rfc.RFC3768, 100, 100)
    assert t.adopt(200) == t


def test_rfc5798_lag_survives_a_second_adoption() -> None:
    # The skew stays the one computed before the first adoption, whatever comes after.
    t = Timers(Rfc.RFC5798, 100, 100).adopt(200).adopt(400)
    assert t.skew_time == 0.609375 and t.master_down_interval == 12.609375


def test_rfc_predicates() -> None:
    assert [r.adopts_master_interval for r in Rfc] == [False, True, True]
    assert [r.recomputes_skew_on_adoption for r in Rfc] == [False, False, True]
    assert [r.version for r in Rfc] == [2, 3, 3]
    assert Rfc.of(2) is Rfc.of(2, rfc9568=True) is Rfc.RFC3768
    assert Rfc.of(3) is Rfc.RFC5798 and Rfc.of(3, rfc9568=True) is Rfc.RFC9568
    with pytest.raises(ValueError, match="2 or 3"):
        Rfc.of(4)


# --- windows ---------------------------------------------------------------------------------


def test_detection_after_a_stop_is_skew_and_after_silence_mdi() -> None:
    t = Timers.of(2, 100, 2.0)
    assert t.detection(priority_zero=True) == 0.609375
    assert t.detection(priority_zero=False) == 6.609375


def test_silent_failure_window_v2_advert_2() -> None:
    # [MDI − Adv, MDI]: [4.609375, 6.609375] (v3 would be [5.21875, 7.21875]).
    assert Timers.of(2, 100, 2.0).silent_failure_window() == (4.609375, 6.609375)
    assert Timers.of(3, 100, 2.0).silent_failure_window() == (5.21875, 7.21875)


def test_centiseconds_refuses_what_vrrp_cannot_carry() -> None:
    assert centiseconds(0.1) == 10 and centiseconds(2) == 200 and centiseconds(40.95) == 4095
    with pytest.raises(ValueError, match="centiseconds"):
        centiseconds(0.005)
    with pytest.raises(ValueError, match="priority"):
        Timers(Rfc.RFC5798, 0, 100)


# --- the state machine runs these timers ----------------------------------------------------


@pytest.mark.parametrize(
    ("version", "rfc9568"),
    [(2, False), (3, False), (3, True)],
)
def test_state_machine_timers_are_vrrp_timers(version: int, rfc9568: bool) -> None:
    params = Params(1, 100, "10.0.0.1", ("10.0.0.100",), 200, version=version, rfc9568=rfc9568)
    machine = StateMachine(params)
    machine.startup(0.0)
    want = Timers(Rfc.of(version, rfc9568), 100, 200)
    assert machine.rfc is want.rfc
    assert (machine.skew_time, machine.master_down_interval) == (
        want.skew_time,
        want.master_down_interval,
    )
    if version == 3:
        # A 4 s master: the machine adopts as its RFC says.
        machine.advert_received(1.0, 200, 400, "10.0.0.2")
        adopted = want.adopt(400)
        assert machine.master_down_interval == adopted.master_down_interval
        assert machine.skew_time == adopted.skew_time


# --- the lab's figures -----------------------------------------------------------------------

V2_ADVERT_2 = """\
vrrp_instance vrrp_1 {
    interface ens3
    state BACKUP
    virtual_router_id 1
    priority 100
    advert_int 2
    version 2
    virtual_ipaddress {
        10.200.51.10
    }
}
"""


def test_lab_figure_for_a_v2_router_with_advert_2_is_rfc3768() -> None:
    """The bug of issue 11: the lab's theory was RFC 5798's for every router."""
    timers = measure.timers_of_config(V2_ADVERT_2)
    assert (timers.version, timers.priority, timers.advert_int) == (2, 100, 2.0)
    assert timers.theory("stop") == (609.375, None)  # not 1,218.75 ms
    assert timers.theory("crash") == (6609.375, 4609.375)  # not 7,218.75 / 5,218.75 ms
    assert timers.theory("host_down") == timers.theory("crash")


def test_lab_version_follows_keepalived_defaults() -> None:
    # No `version`: keepalived's vrrp_version default, 2.
    text = V2_ADVERT_2.replace("    version 2\n", "")
    assert measure.timers_of_config(text).version == 2
    assert measure.timers_of_config(text).theory("stop") == (609.375, None)
    # global_defs vrrp_version 3 makes it v3: the skew scales with the 2 s interval.
    v3 = "global_defs {\n    vrrp_version 3\n}\n" + text
    assert measure.timers_of_config(v3).version == 3
    assert measure.timers_of_config(v3).theory("stop") == (1218.75, None)
    # An explicit `version 3` wins too.
    explicit = V2_ADVERT_2.replace("version 2", "version 3")
    assert measure.timers_of_config(explicit).theory("crash") == (7218.75, 5218.75)


def test_lab_rendered_params_carry_their_version() -> None:
    """A config rendered from router parameters (a scenario's `version: 2`) keeps v2."""
    params = RouterParams("ens3", 100, vips=("10.200.51.10",), advert_int=2.0, version=2)
    assert params.skew_time == 0.609375 and params.master_down_interval == 6.609375
    timers = measure.timers_of_config(params.render())
    assert timers.version == 2 and timers.theory("stop") == (609.375, None)


def test_lab_wrappers_take_the_version() -> None:
    assert skew_time(100, 2.0, 2) == 0.609375 and skew_time(100, 2.0) == 1.21875
    assert master_down_interval(100, 2.0, 2) == 6.609375
    assert master_down_interval(100, 2.0, 3) == 7.21875
    assert metrics.skew_time(100, 2.0, version=2) == 0.609375
    assert metrics.theory_seconds("stop", 100, 2.0, version=2) == 0.609375
    assert metrics.theory_seconds("crash", 100, 2.0, version=2) == 6.609375
    assert metrics.theory_window("freeze", 100, 2.0, version=2) == (4.609375, 6.609375)
    assert metrics.theory_window("stop", 100, 2.0, version=2) == (None, 0.609375)


def test_conformance_windows() -> None:
    params = RouterParams("ens3", 100, vips=("192.0.2.100",), advert_int=0.1)
    assert mdi(params) == pytest.approx(0.3609375)
    assert mdi(params, 0.2) == pytest.approx(0.6 + 0.121875)
    # T02: a 0.1 s backup adopting a 0.2 s master: 0.6 + 0.0609375 (RFC 5798) to
    # 0.6 + 0.121875 (RFC 9568), the figures docs/conformance.md reports (0.6609..0.7219 s).
    low, high = adoption_window(params, 0.2)
    assert low == pytest.approx(0.6609375) and high == pytest.approx(0.721875)


# --- the bundled v2 scenario -----------------------------------------------------------------


def test_v2_scenario_reports_the_rfc3768_figure() -> None:
    """`v2-advert-2` runs VRRPv2 with 2 s adverts: after the stop the report's RFC theory is
    RFC 3768's Skew_Time, 609.4 ms, and its expectations tell it from RFC 5798's 1,218.8 ms."""
    path = SCENARIO_DIR / "v2-advert-2.yaml"
    assert path in bundled_scenarios()
    scenario = load_scenario(path)
    assert scenario.name == "v2-advert-2"
    base = scenario_base_dir(scenario)
    timers = {}
    for spec in scenario.routers:
        assert spec.config is not None
        timers[spec.node] = measure.timers_of_config((base / spec.config).read_text())
    assert {t.version for t in timers.values()} == {2}
    assert {t.advert_int for t in timers.values()} == {2.0}
    backup = timers["ha_second"]
    assert backup.priority == 100
    theory_ms, theory_min_ms = backup.theory("stop")
    assert (theory_ms, theory_min_ms) == (609.375, None)

    # The report prints that figure in its "RFC theory" column.
    failover = metrics.Failover(fault="stop", node="ha_first", at=0.0)
    failover.old_master, failover.new_master = "ha_first", "ha_second"
    failover.detection_ms, failover.theory_ms = 611.0, theory_ms
    out = io.StringIO()
    report = RunReport("v2-advert-2", "keepalived", failovers=[failover], versions={})
    print_report(report, Console(file=out, width=200))
    assert "609.4 ms" in out.getvalue()
    assert "1218.8" not in out.getvalue()

    # The scenario's failover expectation passes at the v2 figure and fails at the v3 one.
    (step,) = [s for s in scenario.steps if s.expect is not None and s.expect.failover]
    want = step.expect.failover
    assert want.new_master == "ha_second"
    v3_ms = Timers.of(3, 100, 2.0).skew_time * 1000
    assert want.detection_ms.check(theory_ms) and not want.detection_ms.check(v3_ms)
    assert want.detection_within_theory_ms < v3_ms - theory_ms
