"""lab.sweep.summary: cells and their figures from trial records, the verdict against the RFC's
figure (a stop) or window (a silent fault), the markdown table and the atomic files. Pure,
no privileges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.sweep.record import Cell, TrialRecord
from lab.sweep.summary import markdown, summarise, write_summary

STOP = Cell("bundled", "stop", 0.1, 100, True, "l2-plain", "none")
# After a silent fault the RFC gives a window: [Master_Down_Interval - interval, MDI].
WINDOW = Cell("bundled", "host-down", 0.1, 100, True, "l2-plain", "none")


def trial(
    cell: Cell,
    n: int,
    detection: float | None = 61.0,
    outcome: str = "measured",
    **kw: Any,
) -> TrialRecord:
    """A trial of ``cell`` with the stop's RFC figure (Skew_Time 60.9 ms at 0.1 s, priority
    100) and the tolerance of a fifth of the interval, unless ``kw`` says otherwise."""
    values: dict[str, Any] = {
        "started": 1.7e9 + n,
        "seconds": 4.0,
        "detection_ms": detection,
        "outage_ms": None if detection is None else detection + 40.0,
        "theory_ms": 60.9,
        "tolerance_ms": 20.0,
    }
    if cell.fault != "stop":
        values.update(theory_low_ms=261.0, theory_ms=360.9)
    values.update(kw)
    return TrialRecord(cell=cell, trial=n, outcome=outcome, **values)  # type: ignore[arg-type]


def trials(cell: Cell, detections: list[float], **kw: Any) -> list[TrialRecord]:
    return [trial(cell, n, d, **kw) for n, d in enumerate(detections)]


def only(summary: dict[str, Any]) -> dict[str, Any]:
    (cell,) = summary["cells"]
    return cell


def test_a_stop_cell_within_tolerance_passes():
    cell = only(summarise("s", trials(STOP, [61.0, 62.5, 79.0])))
    assert cell["cell"] == STOP.key
    assert cell["theory_ms"] == {"low": 60.9, "high": 60.9}
    assert cell["tolerance_ms"] == 20.0
    assert cell["detection_ms"]["p50"] == 62.5
    assert cell["verdict"] == "pass"
    assert cell["verdict_reason"] == "median 62.5 ms within 60.9 ± 20.0 ms"


@pytest.mark.parametrize(
    ("detections", "verdict", "word"),
    [
        ([79.0, 80.0, 95.0], "pass", "within"),  # on the bound: 60 + 20
        ([80.0, 80.01, 95.0], "fail", "above"),
        ([40.0, 41.0, 45.0], "pass", "within"),  # on the lower bound: 60 - 20
        ([30.0, 39.99, 41.0], "fail", "below"),
    ],
)
def test_a_stop_cell_is_judged_on_its_median_against_figure_and_tolerance(
    detections, verdict, word
):
    cell = only(summarise("s", trials(STOP, detections, theory_ms=60.0)))
    assert cell["verdict"] == verdict
    assert word in cell["verdict_reason"]
    assert "\n" not in cell["verdict_reason"]


@pytest.mark.parametrize(
    ("detections", "verdict"),
    [
        ([300.0, 310.0, 355.0], "pass"),
        ([241.0, 241.0, 250.0], "pass"),  # window low 261 - 20
        ([380.9, 380.9, 400.0], "pass"),  # window high 360.9 + 20
        ([230.0, 240.0, 300.0], "fail"),
        ([390.0, 395.0, 300.0], "fail"),
    ],
)
def test_a_window_cell_is_judged_against_the_window(detections, verdict):
    cell = only(summarise("s", trials(WINDOW, detections)))
    assert cell["theory_ms"] == {"low": 261.0, "high": 360.9}
    assert cell["verdict"] == verdict, cell["verdict_reason"]


def test_a_fail_reason_says_by_how_much():
    cell = only(summarise("s", trials(STOP, [100.0, 100.0, 100.0], theory_ms=60.0)))
    assert cell["verdict_reason"] == "median 100.0 ms above 60.0 ± 20.0 ms by 20.0 ms"


def test_only_measured_trials_feed_the_figures_and_every_outcome_is_counted():
    records = [
        trial(STOP, 0, 60.0),
        trial(STOP, 1, 500.0, outcome="inconclusive", inconclusive={"worst_ms": 300.0}),
        trial(STOP, 2, None, outcome="error", error="router never became master"),
        trial(STOP, 3, 62.0),
    ]
    cell = only(summarise("s", records))
    assert (cell["trials"], cell["measured"], cell["inconclusive"], cell["errors"]) == (4, 2, 1, 1)
    assert cell["detection_ms"]["n"] == 2
    assert cell["detection_ms"]["p50"] == 61.0
    assert cell["detection_ms"]["max"] == 62.0
    assert cell["outage_ms"]["p50"] == 101.0
    assert cell["verdict"] == "pass"


def test_a_cell_of_inconclusive_trials_is_inconclusive():
    records = [
        trial(STOP, 0, 70.0, outcome="inconclusive"),
        trial(STOP, 1, None, outcome="error", error="boom"),
    ]
    cell = only(summarise("s", records))
    assert cell["verdict"] == "inconclusive"
    assert cell["detection_ms"]["n"] == 0 and cell["detection_ms"]["p50"] is None
    # The theory still shows, from a trial that measured the timers.
    assert cell["theory_ms"] == {"low": 60.9, "high": 60.9}


def test_a_cell_whose_every_trial_errored_is_an_error_naming_the_first():
    records = [
        trial(STOP, 1, None, outcome="error", error="second\nproblem", theory_ms=None),
        trial(STOP, 0, None, outcome="error", error="lab failed to build", theory_ms=None),
    ]
    cell = only(summarise("s", records))
    assert cell["verdict"] == "error"
    assert cell["errors"] == 2 and cell["trials"] == 2
    assert "lab failed to build" in cell["verdict_reason"]
    assert cell["theory_ms"] == {"low": None, "high": None}
    assert cell["tolerance_ms"] == 20.0


def test_spurious_transitions_and_split_brain_are_columns_not_verdicts():
    records = [
        trial(STOP, 0, 61.0, spurious_transitions=2),
        trial(STOP, 1, 61.0, spurious_transitions=1, split_brain=True),
        trial(STOP, 2, 61.0),
        # An inconclusive trial's flaps are the host stall's, not the router's.
        trial(STOP, 3, 61.0, outcome="inconclusive", spurious_transitions=5, split_brain=True),
    ]
    cell = only(summarise("s", records))
    assert cell["spurious_transitions"] == 3
    assert cell["split_brain"] == 1
    assert cell["verdict"] == "pass"


def test_the_theory_comes_from_the_first_measured_trial():
    records = [
        trial(STOP, 2, 61.0, theory_ms=70.0),
        trial(STOP, 0, 61.0, outcome="inconclusive", theory_ms=99.0),
        trial(STOP, 1, 61.0, theory_ms=60.9),
    ]
    assert only(summarise("s", records))["theory_ms"] == {"low": 60.9, "high": 60.9}


def test_cells_come_in_a_stable_readable_order_with_their_axes():
    cells = [
        Cell("keepalived", "stop", 0.1, 100, True, "l2-plain", "none"),
        Cell("bundled", "stop", 0.05, 100, True, "l2-plain", "none"),
        Cell("bundled", "stop", 1.0, 100, True, "l2-plain", "none"),
        Cell("bundled", "crash", 0.1, 100, True, "l2-plain", "none"),
        Cell("bundled", "stop", 1.0, 50, True, "l2-plain", "none"),
        Cell("bundled", "stop", 1.0, 50, False, "ovn", "cpu-hog"),
    ]
    records = [trial(c, 0) for c in cells]
    summary = summarise("order", records)
    assert summary["sweep"] == "order"
    got = [c["cell"] for c in summary["cells"]]
    assert got == [
        "bundled/crash/0.1s/prio100/preempt/l2-plain/none",
        "bundled/stop/1s/prio50/nopreempt/ovn/cpu-hog",
        "bundled/stop/1s/prio50/preempt/l2-plain/none",
        "bundled/stop/1s/prio100/preempt/l2-plain/none",
        "bundled/stop/0.05s/prio100/preempt/l2-plain/none",
        "keepalived/stop/0.1s/prio100/preempt/l2-plain/none",
    ]
    assert summarise("order", reversed(records)) == summary
    first = summary["cells"][0]
    for key in ("impl", "fault", "advert_int", "priority", "preempt", "profile", "load"):
        assert first[key] == getattr(cells[3], key)
    assert first["transport"] == "unicast"


def test_the_markdown_has_a_row_per_cell():
    records = [
        *trials(STOP, [61.0, 62.0, 63.0]),
        *trials(WINDOW, [300.0, 301.0]),
        trial(WINDOW, 2, None, outcome="error", error="x"),
        trial(WINDOW, 3, 305.0, outcome="inconclusive"),
        trial(Cell("keepalived", "stop", 0.1, 100, True, "l2-plain", "none"), 0, 150.0),
    ]
    md = markdown(summarise("quick", records))
    lines = md.splitlines()
    assert lines[0].startswith("# ") and "quick" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 3  # header, rule, one row per cell
    header = [h.strip() for h in table[0].strip("|").split("|")]
    assert header[:8] == ["impl", "fault", "advert", "prio", "preempt", "profile", "load", "trials"]
    assert "RFC (ms)" in header and "verdict" in header
    assert len({line.count("|") for line in table}) == 1  # every row has every column
    rows = {
        tuple(row[:2]): row
        for row in ([c.strip() for c in r.strip("|").split("|")] for r in table[2:])
    }
    stop, window = rows["bundled", "stop"], rows["bundled", "host-down"]
    assert rows["keepalived", "stop"][-1] == "fail"
    column = {name: i for i, name in enumerate(header)}
    assert stop[column["trials"]] == "3/3"
    assert stop[column["RFC (ms)"]] == "60.9"
    assert stop[column["detection p50 / p95 / max"]] == "62.0 / 62.9 / 63.0"
    assert stop[column["CI95"]] == "61.0–63.0 (75 %)"
    assert stop[column["verdict"]] == "pass"
    assert window[column["trials"]] == "2/4"
    assert window[column["inconclusive"]] == "1"
    assert window[column["errors"]] == "1"
    assert window[column["RFC (ms)"]] == "261.0–360.9"
    assert md.count("| bundled ") == 2
    assert "3 cell(s): 2 pass, 1 fail, 0 inconclusive, 0 error; 1 inconclusive trial(s)" in md


def test_write_summary_writes_both_files_whole(tmp_path: Path):
    (tmp_path / "summary.json").write_text("stale")
    summary = write_summary(tmp_path, "quick", trials(STOP, [61.0, 62.0]))
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "summary.json").read_text().startswith('{\n  "sweep": "quick"')
    assert (tmp_path / "summary.md").read_text() == markdown(summary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json", "summary.md"]


def test_bfd_cells_get_their_columns_and_bfd_detection_figures():
    with_bfd = Cell("bundled", "host-down", 0.1, 100, True, "l2-plain", "none", bfd=0.05)
    records = trials(WINDOW, [300.0, 310.0]) + trials(
        with_bfd, [120.0, 130.0], theory_low_ms=100.0, theory_ms=150.0, bfd_detection_ms=118.0
    )
    summary = summarise("bfd", records)
    plain, fast = summary["cells"]
    assert plain["bfd"] is None and fast["bfd"] == 0.05
    assert fast["bfd_detection_ms"]["p50"] == 118.0 and plain["bfd_detection_ms"]["n"] == 0
    assert fast["verdict"] == "pass"
    head, _, first, second = markdown(summary).splitlines()[2:6]
    assert "| BFD |" in head and "BFD detection p50" in head
    assert first.count("|") == second.count("|") == head.count("|")
    assert "| 50ms |" in second and "| 118.0 |" in second and "| - |" in first


def test_a_sweep_without_bfd_has_no_bfd_columns():
    assert "BFD" not in markdown(summarise("plain", trials(WINDOW, [300.0])))
