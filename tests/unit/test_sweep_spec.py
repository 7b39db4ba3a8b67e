"""The sweep file, its cells and the scenario of a cell: pure logic, no privileges."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab.conformance.bench import tolerance
from lab.errors import ScenarioError
from lab.sweep.spec import (
    SWEEP_DIR,
    bundled_sweeps,
    cell_scenario,
    json_schema_text,
    load_sweep,
    parse_load,
    parse_sweep,
    theory,
    tolerance_interval,
)
from vrrp.timers import Timers


def sweep_text(axes: str, extra: str = "") -> str:
    return f"name: t\nscenario: short-timers\ntrials: 2\n{extra}axes:\n" + textwrap.indent(
        textwrap.dedent(axes), "  "
    )


def test_every_bundled_sweep_loads():
    names = {p.stem for p in bundled_sweeps()}
    assert {"quick", "seed-conclusion"} <= names
    for path in bundled_sweeps():
        assert load_sweep(path).cells


def test_the_seed_conclusion_covers_the_grid_and_runs_frr_multicast():
    sweep = load_sweep(SWEEP_DIR / "seed-conclusion.yaml")
    assert len(sweep.cells) == 3 * 7 * 3
    assert {c.advert_int for c in sweep.cells} == {1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01}
    assert {c.transport for c in sweep.cells if c.impl == "frr"} == {"multicast"}
    assert {c.transport for c in sweep.cells if c.impl != "frr"} == {"unicast"}
    frr = next(c for c in sweep.cells if c.impl == "frr")
    routers = cell_scenario(sweep, frr).routers
    assert not any(r.unicast or r.use_vmac for r in routers)
    # Trial 0 of every cell comes first: an interrupted sweep covers the grid evenly.
    order = sweep.trials()
    assert [n for _, n in order[: len(sweep.cells)]] == [0] * len(sweep.cells)
    assert len(order) == len(sweep.cells) * sweep.spec.trials


def test_a_cells_scenario_carries_its_values_and_judges_against_the_rfc():
    sweep = parse_sweep(
        sweep_text(
            "impl: [bundled]\nadvert_int: [0.05]\npriority: [50]\n"
            "fault: [host-down]\npreempt: [false]\n"
        )
    )
    (cell,) = sweep.cells
    scenario = cell_scenario(sweep, cell)
    by_node = {r.node: r for r in scenario.routers}
    assert by_node[sweep.backup].priority == 50
    assert by_node[sweep.master].priority == 200
    assert all(
        r.advert_int == 0.05 and r.impl == "bundled" and r.nopreempt for r in by_node.values()
    )
    steps = [s.action for s in scenario.steps]
    assert "host_down" in steps
    bound = scenario.steps[-1].expect.failover.detection_ms
    low, high = Timers.of(3, 50, 0.05).silent_failure_window()
    tol = tolerance(0.05)
    assert bound.min == pytest.approx((low - tol) * 1000)
    assert bound.max == pytest.approx((high + tol) * 1000)


def test_a_stop_is_judged_against_skew_time():
    sweep = parse_sweep(sweep_text("impl: [keepalived]\nadvert_int: [0.1]\nfault: [stop]\n"))
    bound = cell_scenario(sweep, sweep.cells[0]).steps[-1].expect.failover.detection_ms
    skew = Timers.of(3, 100, 0.1).skew_time
    assert bound.min == pytest.approx((skew - 0.02) * 1000)
    assert bound.max == pytest.approx((skew + 0.02) * 1000)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("stop", "served_by"),
        ("crash", "master"),
        ("host-down", "is_master"),
        ("freeze", "masters"),
        ("partition", "masters"),
    ],
)
def test_the_takeover_is_told_by_what_the_fault_leaves_readable(fault: str, kind: str):
    # After a host-down the old master's daemon may still say MASTER (FRR) and the backup may
    # answer before it takes over: only the backup's own state tells. After a crash only one
    # daemon is left to say MASTER; a frozen or partitioned master still says so.
    sweep = parse_sweep(sweep_text(f"fault: [{fault}]\n"))
    takeover = cell_scenario(sweep, sweep.cells[0]).steps[-2].expect
    assert takeover.kind == kind
    if kind in ("served_by", "master", "is_master"):
        assert getattr(takeover, kind) == sweep.backup


def test_advert_loss_is_a_step_before_the_fault():
    sweep = parse_sweep(sweep_text("load: [advert-loss 5%]\n"))
    steps = cell_scenario(sweep, sweep.cells[0]).steps
    actions = [s.action for s in steps]
    assert actions.index("advert_loss") < actions.index("stop")
    assert steps[actions.index("advert_loss")].advert_loss.percent == 5


@pytest.mark.parametrize(
    ("axes", "field", "words"),
    [
        ("impl: [quagga]\n", "axes.impl", "not an implementation"),
        ("fault: [thaw]\n", "axes.fault", "undoes freeze"),
        ("fault: [advert-loss]\n", "axes.fault", "is a load"),
        ("fault: [reboot]\n", "axes.fault", "not a fault"),
        ("load: [advert-loss 150%]\n", "axes.load", "not a load"),
        ("profile: [aws]\n", "axes.profile", "not an SDN profile"),
        ("priority: [200]\n", "axes.priority", "below the master's 200"),
        ("advert_int: [0.015]\n", "axes", "centiseconds"),
        ("impl: [keepalived, keepalived]\n", "axes.impl", "listed twice"),
        ("colour: [red]\n", "axes.colour", "unknown field"),
    ],
)
def test_bad_sweeps_get_one_line_naming_the_field(axes, field, words):
    with pytest.raises(ScenarioError) as err:
        parse_sweep(sweep_text(axes), "my.yaml")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("my.yaml")
    assert field in text
    assert words in text


def test_an_error_names_the_line_of_the_field():
    with pytest.raises(ScenarioError) as err:
        parse_sweep(sweep_text("impl: [bundled]\nfault: [reboot]\n"), "my.yaml")
    assert str(err.value).startswith("my.yaml:6: axes.fault")


def test_a_base_scenario_of_config_files_is_refused():
    with pytest.raises(ScenarioError, match="config files"):
        parse_sweep("name: t\nscenario: seed\n", "my.yaml")


def test_a_missing_sweep_file_names_the_bundled_ones(tmp_path: Path):
    with pytest.raises(ScenarioError, match="seed-conclusion"):
        load_sweep(tmp_path / "nope.yaml")


def test_loads_parse():
    assert parse_load("none") == 0
    assert parse_load("cpu-hog") is None
    assert parse_load("advert-loss  1.5%") == 1.5
    with pytest.raises(ValueError, match="cpu-hog"):
        parse_load("hog")


def test_the_schema_shipped_is_the_models():
    assert (SWEEP_DIR.parent / "sweep.schema.json").read_text() == json_schema_text()


def test_the_bfd_axis_makes_cells_keyed_apart_from_those_without():
    sweep = parse_sweep(
        sweep_text("impl: [bundled, keepalived]\nfault: [host-down]\nbfd: [none, 0.05]\n")
    )
    keys = [c.key for c in sweep.cells]
    # A cell without BFD keeps the key it had before the axis (a resumed sweep still matches).
    assert "bundled/host-down/0.1s/prio100/preempt/l2-plain/none" in keys
    assert "bundled/host-down/0.1s/prio100/preempt/l2-plain/none/bfd50ms" in keys
    assert len(keys) == len(set(keys)) == 4


def test_a_bundled_bfd_cell_takes_over_on_bfd_and_is_judged_against_its_detection_time():
    sweep = parse_sweep(sweep_text("impl: [bundled]\nfault: [host-down]\nbfd: [0.05]\n"))
    (cell,) = sweep.cells
    scenario = cell_scenario(sweep, cell)
    for router in scenario.routers:
        assert router.bfd is not None
        assert (router.bfd.min_rx, router.bfd.min_tx, router.bfd.multiplier) == (0.05, 0.05, 3)
        assert router.bfd.track == "unweighted" and router.bfd.takeover
    bound = scenario.steps[-1].expect.failover.detection_ms
    # [(3 - 1) x 50, 3 x 50] ms, with a fifth of BFD's interval either side.
    assert (bound.min, bound.max) == pytest.approx((90.0, 160.0))
    # The sessions' slow start (1 s a packet until Up) is in the bring-up deadline.
    plain = parse_sweep(sweep_text("impl: [bundled]\nfault: [host-down]\n"))
    assert sweep.deadlines(cell)[0] >= plain.deadlines(plain.cells[0])[0] + 3.0


@pytest.mark.parametrize(("driver", "fault"), [("keepalived", "host-down"), ("bundled", "stop")])
def test_bfd_that_cannot_hasten_the_takeover_leaves_the_rfc_window(driver: str, fault: str):
    """keepalived runs the session untracked (tracked, it would not take over sooner), and a
    stop is Skew_Time with or without BFD: the RFC's figure still judges those cells."""
    with_bfd = parse_sweep(sweep_text(f"impl: [{driver}]\nfault: [{fault}]\nbfd: [0.05]\n"))
    without = parse_sweep(sweep_text(f"impl: [{driver}]\nfault: [{fault}]\n"))
    (cell,), (plain,) = with_bfd.cells, without.cells
    scenario = cell_scenario(with_bfd, cell)
    if driver == "keepalived":
        assert all(r.bfd is not None and r.bfd.track == "none" for r in scenario.routers)
    bound = scenario.steps[-1].expect.failover.detection_ms
    assert bound == cell_scenario(without, plain).steps[-1].expect.failover.detection_ms


@pytest.mark.parametrize("value", ["0.0505", "-0.05", "0"])
def test_a_bfd_interval_must_be_whole_positive_milliseconds(value: str):
    with pytest.raises(ScenarioError) as raised:
        parse_sweep(sweep_text(f"impl: [bundled]\nbfd: [{value}]\n"))
    assert "axes.bfd" in str(raised.value) and "whole milliseconds" in str(raised.value)


def test_a_bfd_cells_fault_waits_for_the_session_to_be_up():
    sweep = parse_sweep(sweep_text("impl: [keepalived]\nfault: [host-down]\nbfd: [0.05]\n"))
    (cell,) = sweep.cells
    kinds = [
        s.action if s.expect is None else s.expect.kind for s in cell_scenario(sweep, cell).steps
    ]
    assert kinds.index("bfd") < kinds.index("host_down"), kinds


def test_a_slow_bfd_beside_short_adverts_is_judged_by_whichever_fires_first():
    """Master_Down_Timer runs beside BFD: at 0.1 s adverts (window [261, 361] ms) BFD at
    300 ms x 3 ([600, 900] ms) never fires first, so VRRP's window and tolerance judge."""
    sweep = parse_sweep(
        sweep_text("impl: [bundled]\nfault: [host-down]\nadvert_int: [0.1]\nbfd: [0.3, 0.1]\n")
    )
    slow, mid = sorted(sweep.cells, key=lambda c: -(c.bfd or 0))
    low, high = Timers.of(3, 100, 0.1).silent_failure_window()
    assert theory(slow, 3) == pytest.approx((low, high))
    assert tolerance_interval(slow, 3) == 0.1
    # At 100 ms x 3 the windows overlap ([200, 300] ms): the earliest of each end.
    assert theory(mid, 3) == pytest.approx((0.2, 0.3))
    assert tolerance_interval(mid, 3) == 0.1
