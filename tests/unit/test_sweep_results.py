"""results.jsonl: appended as trials end, read back whole, repaired after a kill, resumed only
for the same sweep. Pure file logic, no privileges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.errors import UsageError
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.results import RESULTS, Results, read, read_dir

CELL = Cell("bundled", "stop", 0.1, 100, True, "l2-plain", "none")
HEADER = {"type": "sweep", "sweep": "t", "spec": {"trials": 2}, "cells": [CELL.key]}


def trial(n: int, **kw: object) -> TrialRecord:
    values = {"outcome": "measured", "started": 1.0e9 + n, "seconds": 3.0, "detection_ms": 61.0}
    values.update(kw)
    return TrialRecord(cell=CELL, trial=n, **values)  # type: ignore[arg-type]


def test_records_round_trip(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0, theory_ms=60.9, tolerance_ms=20.0, timeline={"fault": 0.0}))
        results.append(trial(1, outcome="error", detection_ms=None, error="no master"))
    header, records = read(tmp_path / RESULTS)
    assert header == HEADER
    assert records == [
        trial(0, theory_ms=60.9, tolerance_ms=20.0, timeline={"fault": 0.0}),
        trial(1, outcome="error", detection_ms=None, error="no master"),
    ]
    assert records[0].agrees_with_theory is True


def test_an_existing_sweep_is_never_overwritten(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0))
    before = (tmp_path / RESULTS).read_bytes()
    with pytest.raises(UsageError, match="--resume"):
        Results(tmp_path, HEADER, resume=False)
    assert (tmp_path / RESULTS).read_bytes() == before


def test_resume_knows_what_is_done_and_appends(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0))
    with Results(tmp_path, HEADER, resume=True) as results:
        assert results.done() == {(CELL.key, 0)}
        results.append(trial(1))
    _, records = read(tmp_path / RESULTS)
    assert [r.trial for r in records] == [0, 1]


def test_resume_refuses_another_sweep(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0))
    other = {**HEADER, "cells": [CELL.key, "x"]}
    with pytest.raises(UsageError, match="other axes"):
        Results(tmp_path, other, resume=True)


def test_a_line_cut_short_by_a_kill_is_dropped_and_repaired(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0))
    path = tmp_path / RESULTS
    whole = path.read_bytes()
    path.write_bytes(whole + json.dumps(trial(1).as_json()).encode()[:40])
    _, records = read(path)
    assert [r.trial for r in records] == [0]
    assert path.read_bytes() != whole  # reading alone repairs nothing
    with Results(tmp_path, HEADER, resume=True) as results:
        assert results.done() == {(CELL.key, 0)}
        results.append(trial(1))
    _, records = read(path)
    assert [r.trial for r in records] == [0, 1]


def test_a_damaged_line_is_named(tmp_path: Path):
    with Results(tmp_path, HEADER, resume=False) as results:
        results.append(trial(0))
    path = tmp_path / RESULTS
    path.write_text(path.read_text() + "garbage\n")
    with pytest.raises(UsageError, match=rf"{RESULTS}:3: not a sweep record"):
        read(path)


def test_a_directory_without_results_says_how_to_make_them(tmp_path: Path):
    with pytest.raises(UsageError, match="vrrp-lab bench --out"):
        read_dir(tmp_path)


def test_json_has_no_nan(tmp_path: Path):
    line = trial(0, outage_ms=float("nan")).as_json()
    assert line["outage_ms"] is None
    json.dumps(line, allow_nan=False)
