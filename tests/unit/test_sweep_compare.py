"""lab.sweep.compare: a planted shift is flagged, a re-run of the same values is not, cells
without a partner or a figure are listed apart, and a bad summary file is one usage line.
Pure, no privileges."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from lab.errors import UsageError
from lab.sweep.compare import Moved, compare, load_summary, report, unmatched
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.summary import summarise, write_summary


def cell(advert: float = 0.1, priority: int = 100, impl: str = "bundled") -> Cell:
    return Cell(impl, "stop", advert, priority, True, "l2-plain", "none")


def trial(c: Cell, n: int, detection: float | None, outage: float | None = 120.0) -> TrialRecord:
    outcome = "measured" if detection is not None else "error"
    return TrialRecord(
        cell=c,
        trial=n,
        outcome=outcome,
        started=1.7e9 + n,
        seconds=4.0,
        detection_ms=detection,
        outage_ms=outage if detection is not None else None,
        theory_ms=60.9,
        tolerance_ms=20.0,
        error=None if detection is not None else "no master",
    )


def sweep(cells: dict[Cell, list[float]], outage: float = 120.0) -> dict[str, Any]:
    """The summary of a sweep whose cells measured these detections (outage fixed)."""
    records = [
        trial(c, n, d, outage + n) for c, values in cells.items() for n, d in enumerate(values)
    ]
    return summarise("s", records)


BEFORE = [59.0, 60.0, 61.0, 62.0, 63.0]
SLOWER = [78.0, 79.0, 80.0, 81.0, 82.0]
FAST = [30.0, 30.5, 31.0, 31.5, 32.0]
FAST_SLOWER = [40.0, 40.5, 41.0, 41.5, 42.0]


def test_a_slower_backup_is_flagged_cell_for_cell():
    old = sweep({cell(0.1, 100): BEFORE, cell(0.05, 100): FAST})
    new = sweep({cell(0.1, 50): SLOWER, cell(0.05, 50): FAST_SLOWER})
    moved = compare(old, new)
    assert [(m.cell, m.metric) for m in moved] == [
        ("bundled/stop/0.1s/prio100→prio50/preempt/l2-plain/none", "detection_ms"),
        ("bundled/stop/0.05s/prio100→prio50/preempt/l2-plain/none", "detection_ms"),
    ]  # the outages did not move: same figures both sides
    first = moved[0]
    assert (first.old_p50, first.new_p50) == (61.0, 80.0)
    assert (first.old_ci, first.new_ci) == ((59.0, 63.0), (78.0, 82.0))
    line = first.describe()
    assert "detection" in line and "61.0" in line and "80.0" in line and "+19.0" in line
    assert "\n" not in line
    assert unmatched(old, new) == []


def test_a_rerun_of_the_same_values_is_not_flagged():
    old = sweep({cell(0.1): BEFORE, cell(0.05): FAST})
    new = sweep({cell(0.1): BEFORE[::-1], cell(0.05): FAST[::-1]})
    assert compare(old, new) == []
    assert compare(old, old) == []


def test_one_sided_exclusion_is_not_enough():
    # NEW's median 67 lies outside OLD's [60, 64] (+2 ms of resolution), but OLD's 62 lies
    # inside NEW's [61, 70]: the samples overlap.
    old = sweep({cell(): [60.0, 61.0, 62.0, 63.0, 64.0]})
    new = sweep({cell(): [61.0, 66.0, 67.0, 69.0, 70.0]})
    assert compare(old, new) == []
    # Both ways out: flagged.
    assert len(compare(old, sweep({cell(): [67.0, 68.0, 69.0, 70.0, 71.0]}))) == 1


def test_a_shift_within_the_resolution_is_not_flagged():
    # Tight intervals 1.6 ms apart: below the stall witness's 2 ms floor, not told apart.
    old = sweep({cell(): [60.9, 61.0, 61.0, 61.1, 61.2]})
    new = sweep({cell(): [62.7, 62.8, 62.8, 62.9, 63.0]})
    assert compare(old, new) == []
    assert len(compare(old, sweep({cell(): [64.0, 64.1, 64.1, 64.2, 64.3]}))) == 1


def test_too_few_trials_are_reported_not_compared():
    old = sweep({cell(): BEFORE[:4]})
    new = sweep({cell(): SLOWER})
    assert compare(old, new) == []
    lines = unmatched(old, new)
    assert lines and all(line.startswith("too few trials") for line in lines)
    assert "OLD 4" in lines[0] and "5 are needed" in lines[0]


def test_outage_is_compared_on_its_own():
    old = sweep({cell(): BEFORE}, outage=120.0)
    new = sweep({cell(): BEFORE}, outage=300.0)
    assert [m.metric for m in compare(old, new)] == ["outage_ms"]
    assert "outage" in compare(old, new)[0].describe()


def test_an_axis_that_varies_is_matched_on():
    # OLD has one priority, NEW two: priority stays in the match, so only prio100 pairs up.
    old = sweep({cell(0.1, 100): BEFORE, cell(0.05, 100): BEFORE})
    new = sweep({cell(0.1, 100): BEFORE, cell(0.1, 50): SLOWER, cell(0.05, 100): BEFORE})
    assert compare(old, new) == []
    assert unmatched(old, new) == ["only in NEW: bundled/stop/0.1s/prio50/preempt/l2-plain/none"]


def test_cells_without_a_partner_are_reported_not_moved():
    old = sweep({cell(0.1): BEFORE, cell(0.05): BEFORE})
    new = sweep({cell(0.1): BEFORE, cell(1.0): SLOWER})
    assert compare(old, new) == []
    assert unmatched(old, new) == [
        "only in OLD: bundled/stop/0.05s/prio100/preempt/l2-plain/none",
        "only in NEW: bundled/stop/1s/prio100/preempt/l2-plain/none",
    ]


def test_a_cell_without_measured_figures_is_no_data_not_moved():
    old = sweep({cell(0.1): BEFORE, cell(0.05): BEFORE})
    records = [trial(cell(0.1), n, None) for n in range(5)]
    records += [trial(cell(0.05), n, d) for n, d in enumerate(BEFORE)]
    new = summarise("s", records)
    assert compare(old, new) == []
    lines = unmatched(old, new)
    assert len(lines) == 2
    assert all(line.startswith("no data: bundled/stop/0.1s/") for line in lines)
    assert "detection" in lines[0] and "outage" in lines[1] and "NEW" in lines[0]


def test_report_lists_moved_and_not_compared():
    old = sweep({cell(0.1, 100): BEFORE, cell(0.05, 100): BEFORE})
    new = sweep({cell(0.1, 50): SLOWER})
    moved, missing = compare(old, new), unmatched(old, new)
    text = report(moved, missing)
    assert moved[0].describe() in text
    assert "only in OLD" in text and "not compared" in text
    assert "no median moved" in report([], [])


def test_moved_is_frozen():
    moved = Moved("c", "detection_ms", 1.0, 2.0, (0.0, 1.0), (2.0, 3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.new_p50 = 5.0  # type: ignore[misc]


def test_load_summary_reads_a_directory_or_a_file(tmp_path: Path):
    written = write_summary(tmp_path, "s", [trial(cell(), n, d) for n, d in enumerate(BEFORE)])
    assert load_summary(tmp_path) == written
    assert load_summary(tmp_path / "summary.json") == written
    assert compare(load_summary(tmp_path), written) == []


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "not found"),
        ("{not json", "not JSON"),
        (b"\xff\xfe\x00", "UTF-8"),
        ('{"sweep": "s"}', "cells"),
        ('{"sweep": "s", "cells": [3]}', "cells[0]"),
        ('{"sweep": "s", "cells": [{"cell": "k", "impl": "bundled"}]}', "priority"),
    ],
)
def test_load_summary_errors_are_one_line_naming_the_file(tmp_path: Path, content, what):
    file = tmp_path / "summary.json"
    if isinstance(content, bytes):
        file.write_bytes(content)
    elif content is not None:
        file.write_text(content)
    with pytest.raises(UsageError) as caught:
        load_summary(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(file) in message
    assert what in message
    assert caught.value.exit_code == 2


def test_load_summary_of_a_missing_path(tmp_path: Path):
    with pytest.raises(UsageError, match=r"nowhere\.json: not found"):
        load_summary(tmp_path / "nowhere.json")
