"""The sweep's plots, drawn from records built here: no lab, no privileges, a few seconds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.errors import EnvironmentMissing
from lab.sweep.plots import representative, theory_error, write_plots
from lab.sweep.record import Cell, Outcome, TrialRecord

PNG = b"\x89PNG\r\n\x1a\n"
ALWAYS = {"detection_vs_advert.png", "outage_ecdf.png", "error_vs_theory.png", "timeline.png"}


def cell(
    impl: str = "keepalived",
    fault: str = "stop",
    advert_int: float = 0.1,
    priority: int = 100,
    load: str = "none",
) -> Cell:
    """A cell of the base scenario's defaults but for the axes given."""
    return Cell(impl, fault, advert_int, priority, True, "l2-plain", load)


def trial(
    c: Cell,
    n: int = 0,
    detection: float | None = None,
    outcome: Outcome = "measured",
    spurious: int = 0,
    probes: bool = True,
) -> TrialRecord:
    """A trial of ``c`` with figures as the RFC would have them: Skew_Time after a stop, the
    [MDI−Adv, MDI] window otherwise, and a timeline that agrees with ``detection``."""
    adv = c.advert_int * 1000
    skew = (256 - c.priority) / 256 * adv
    if c.fault == "stop":
        theory, low = skew, None
    else:
        theory, low = 3 * adv + skew, 2 * adv + skew
    if outcome == "error":
        return TrialRecord(c, n, "error", 1000.0 + n, 5.0, error="router never became master")
    det = detection if detection is not None else theory * (1.0 + 0.02 * n)
    timeline: dict[str, Any] = {
        "fault": 0.0,
        "last_served_before": -0.4,
        "last_advert_old": -adv / 2,
        "first_advert_new": det,
        "first_garp_new": det + 0.3,
        "first_served_after": det + 1.0,
    }
    if probes:
        timeline["probes"] = [[t, not (0 <= t < det + 1.0)] for t in range(-20, int(det) + 20, 2)]
    return TrialRecord(
        c,
        n,
        outcome,
        1000.0 + n,
        5.0,
        detection_ms=det,
        outage_ms=det + 1.4,
        theory_ms=theory,
        theory_low_ms=low,
        tolerance_ms=adv / 5,
        spurious_transitions=spurious,
        timeline=timeline,
    )


def sweep(load: str = "none") -> list[TrialRecord]:
    """Two implementations, a stop and a freeze, two intervals, three trials a cell."""
    return [
        trial(cell(impl, fault, adv, load=load), n, spurious=n % 2)
        for impl in ("keepalived", "bundled")
        for fault in ("stop", "freeze")
        for adv in (0.1, 0.05)
        for n in range(3)
    ]


def assert_pngs(paths: list[Path], names: set[str]) -> None:
    """``paths`` are exactly the PNGs ``names``, each a whole PNG."""
    assert {p.name for p in paths} == names
    for p in paths:
        assert p.read_bytes()[:8] == PNG, p
    # Written through a temporary file that must not be left behind.
    assert not [q for q in paths[0].parent.iterdir() if q.name.startswith(".")]


def test_a_sweep_draws_every_plot_but_the_stability_floor(tmp_path: Path) -> None:
    paths = write_plots(tmp_path, sweep())
    assert_pngs(paths, ALWAYS)
    assert not (tmp_path / "stability_floor.png").exists()


def test_a_swept_load_draws_the_stability_floor(tmp_path: Path) -> None:
    records = sweep() + sweep("advert-loss 5%") + sweep("cpu-hog")[:4]
    assert_pngs(write_plots(tmp_path, records), ALWAYS | {"stability_floor.png"})


def test_a_wide_sweep_read_back_from_json_draws(tmp_path: Path) -> None:
    # 1 s down to 10 ms with 20 trials a cell: log axes over two decades, p5-p95 bars, and
    # tolerances a hundredfold apart; read back as the results file would be.
    records = [
        trial(cell(fault=fault, advert_int=adv, priority=prio), n)
        for fault in ("stop", "partition")
        for adv in (1.0, 0.1, 0.01)
        for prio in (100, 200)
        for n in range(20)
    ]
    records.append(trial(cell(), 99, detection=80.0, outcome="inconclusive"))
    lines = [json.dumps(r.as_json()) for r in records]
    back = [TrialRecord.from_json(json.loads(line)) for line in lines]
    assert_pngs(write_plots(tmp_path, back), ALWAYS)


def test_one_cell_of_one_trial_still_draws(tmp_path: Path) -> None:
    # A single interval has no line to draw: the detection plot shows it as a point.
    paths = write_plots(tmp_path / "new", [trial(cell(), probes=False)])
    assert_pngs(paths, ALWAYS)
    # A second run replaces the PNGs in place.
    assert_pngs(write_plots(tmp_path / "new", [trial(cell(), probes=False)]), ALWAYS)


def test_only_errors_draw_no_detection_plot(tmp_path: Path) -> None:
    records = [trial(cell(), n, outcome="error") for n in range(3)]
    paths = write_plots(tmp_path, records)
    assert "detection_vs_advert.png" not in {p.name for p in paths}
    assert paths == []


def test_nothing_to_draw_draws_nothing(tmp_path: Path) -> None:
    assert write_plots(tmp_path / "never", []) == []
    assert not (tmp_path / "never").exists()


def test_representative_is_closest_to_the_median_of_the_fullest_cell() -> None:
    full, small = cell(advert_int=0.05), cell(advert_int=0.1)
    records = [
        trial(small, 0, detection=10.0),
        trial(small, 1, detection=11.0),
        trial(full, 0, detection=40.0),
        trial(full, 1, detection=20.0),
        trial(full, 2, detection=23.0),  # the median is 23 itself
        trial(full, 3, detection=21.0, outcome="inconclusive"),  # not measured: not counted
        trial(full, 4, detection=24.0),
        trial(full, 5, outcome="error"),
    ]
    chosen = representative(records)
    assert chosen is not None
    assert (chosen.cell, chosen.trial) == (full, 2)


def test_representative_ties_go_to_the_first_cell_by_key() -> None:
    a, b = cell(impl="bundled"), cell(impl="keepalived")
    records = [trial(b, 0, detection=5.0), trial(a, 0, detection=7.0), trial(a, 1, detection=9.0)]
    records.append(trial(b, 1, detection=6.0))
    chosen = representative(records)
    assert chosen is not None
    # bundled sorts first; its median is 8, equally far from both trials: the lower number.
    assert (chosen.cell.impl, chosen.trial) == ("bundled", 0)


def test_representative_of_nothing_measured_is_none() -> None:
    assert representative([]) is None
    assert representative([trial(cell(), outcome="error")]) is None


def test_theory_error_against_a_figure_and_a_window() -> None:
    stop = trial(cell(fault="stop"), detection=50.0)
    assert stop.theory_ms is not None
    assert theory_error(stop) == pytest.approx(50.0 - stop.theory_ms)
    freeze = cell(fault="freeze", advert_int=0.1, priority=128)  # window [250, 350] ms
    assert theory_error(trial(freeze, detection=300.0)) == 0.0
    assert theory_error(trial(freeze, detection=240.0)) == pytest.approx(-10.0)
    assert theory_error(trial(freeze, detection=362.5)) == pytest.approx(12.5)
    assert theory_error(trial(freeze, outcome="error")) is None


def test_missing_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EnvironmentMissing, match=r"pip install 'vrrp-lab\[plot\]'"):
        write_plots(tmp_path, [trial(cell())])


def test_a_bfd_sweep_draws_detection_against_the_bfd_interval(tmp_path: Path) -> None:
    records = sweep()
    for n, interval in enumerate((0.02, 0.05)):
        c = Cell("bundled", "freeze", 0.1, 100, True, "l2-plain", "none", bfd=interval)
        mult = 3 * interval * 1000
        records.append(
            TrialRecord(
                c, n, "measured", 1000.0, 5.0, detection_ms=mult - 5, theory_ms=mult,
                theory_low_ms=mult - interval * 1000, tolerance_ms=interval * 200,
            )
        )  # fmt: skip
    records += [  # outages too, so that every plot sorts cells with and without BFD together
        TrialRecord(
            Cell("bundled", "freeze", 0.1, 100, True, "l2-plain", "none", bfd=0.05), 2,
            "measured", 1000.0, 5.0, detection_ms=140.0, outage_ms=150.0, theory_ms=150.0,
            theory_low_ms=100.0, tolerance_ms=10.0,
        )
    ]  # fmt: skip
    paths = write_plots(tmp_path, records)
    assert_pngs(paths, ALWAYS | {"detection_vs_bfd.png"})
