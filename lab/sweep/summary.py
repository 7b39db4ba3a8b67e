"""A sweep's summary: one row per cell, its figures, and a verdict against the RFC's timers.

:func:`summarise` turns the trials of ``results.jsonl`` into ``summary.json``'s dict,
:func:`markdown` into the table a person reads, and :func:`write_summary` writes both beside
the results. The summary is drawn from the records alone and can be redrawn at any time.

Only ``measured`` trials feed the figures: an ``inconclusive`` trial was spoiled by a host
stall and an ``error`` trial measured nothing, so both are counted, never averaged in.
The verdict judges the timer only (the median detection against the RFC's figure or window);
spurious transitions and split brain are reported in columns of their own. A ``hold`` cell has
no failover: its verdict is whether the pair held steady (no spurious transition), and the
summary adds each implementation's stability floor (:mod:`lab.sweep.floor`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lab.sweep.floor import markdown as floor_markdown
from lab.sweep.floor import stability_floors
from lab.sweep.record import Cell, TrialRecord
from lab.sweep.spec import HOLD
from lab.sweep.stats import describe

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"

#: The verdicts a cell can have, in the order the count line gives them.
VERDICTS = ("pass", "fail", "inconclusive", "error")


def summarise(sweep_name: str, records: Iterable[TrialRecord]) -> dict[str, Any]:
    """The summary of a sweep's trials: ``{"sweep": name, "cells": [...]}``, one entry per
    cell that has at least one trial, in a stable order (impl, fault, advert interval from the
    slowest, priority, preempt, profile, load).

    Each cell entry carries its axes, ``trials`` (every outcome), ``measured``, ``errors``,
    ``inconclusive``, ``theory_ms`` ``{"low", "high"}`` (equal after a stop),
    ``tolerance_ms``, ``detection_ms``, ``outage_ms`` and ``bfd_detection_ms``
    (:func:`lab.sweep.stats.describe` of the measured trials), ``spurious_transitions``
    (their sum), ``split_brain`` (how many had one), ``verdict`` and a one-line
    ``verdict_reason``. With ``hold`` trials, ``stability_floor`` lists each implementation's
    floor (:meth:`lab.sweep.floor.Floor.as_json`).
    """
    records = list(records)
    by_key: dict[str, list[TrialRecord]] = {}
    for record in records:
        by_key.setdefault(record.cell.key, []).append(record)
    groups = sorted(by_key.values(), key=lambda trials: _order(trials[0].cell))
    summary: dict[str, Any] = {
        "sweep": sweep_name,
        "cells": [_cell_summary(t[0].cell, t) for t in groups],
    }
    floors = stability_floors(records)
    if floors:
        summary["stability_floor"] = [f.as_json() for f in floors]
    return summary


def _order(cell: Cell) -> tuple[Any, ...]:
    # The slowest interval first: a table read top-down goes from the default timers to the
    # aggressive ones.
    return (
        cell.impl,
        cell.fault,
        -cell.advert_int,
        cell.priority,
        cell.preempt,
        cell.profile,
        cell.load,
        # Without BFD first, then the slowest BFD interval.
        cell.bfd is not None,
        -(cell.bfd or 0.0),
    )


def _cell_summary(cell: Cell, records: list[TrialRecord]) -> dict[str, Any]:
    # By trial number, not by the order trials ended in (parallel jobs finish out of order),
    # so that "the first measured trial" is the same on every redraw.
    records = sorted(records, key=lambda r: r.trial)
    measured = [r for r in records if r.outcome == "measured"]
    inconclusive = sum(1 for r in records if r.outcome == "inconclusive")
    errors = sum(1 for r in records if r.outcome == "error")
    # The theory is computed from the cell's timers, so any trial gives the same figure; the
    # first measured one is preferred, then any that carries a figure (an inconclusive trial
    # measured the timers too).
    source = next((r for r in measured if r.theory_ms is not None), None) or next(
        (r for r in records if r.theory_ms is not None), None
    )
    high = _finite(source.theory_ms) if source else None
    low = _finite(source.theory_low_ms) if source else None
    if low is None:
        low = high
    # Every trial, an errored one included, carries the tolerance (it is the interval's).
    tolerant = next((r for r in (source, *records) if r and r.tolerance_ms is not None), None)
    tolerance = _finite(tolerant.tolerance_ms) if tolerant else None
    detection = describe(_figures(r.detection_ms for r in measured))
    outage = describe(_figures(r.outage_ms for r in measured))
    bfd_detection = describe(_figures(r.bfd_detection_ms for r in measured))
    if cell.fault == HOLD:
        verdict, reason = _held(measured, errors)
    else:
        verdict, reason = _verdict(records, detection, low, high, tolerance, inconclusive, errors)
    return {
        "cell": cell.key,
        **cell.as_json(),
        "trials": len(records),
        "measured": len(measured),
        "errors": errors,
        "inconclusive": inconclusive,
        "theory_ms": {"low": low, "high": high},
        "tolerance_ms": tolerance,
        "detection_ms": detection,
        "outage_ms": outage,
        "bfd_detection_ms": bfd_detection,
        # Only measured trials: a flap during a host stall is the stall's, not the router's.
        "spurious_transitions": sum(r.spurious_transitions for r in measured),
        "split_brain": sum(1 for r in measured if r.split_brain),
        "verdict": verdict,
        "verdict_reason": reason,
    }


def _figures(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _held(measured: list[TrialRecord], errors: int) -> tuple[str, str]:
    """A hold cell's verdict: pass when its measured holds counted no spurious transition."""
    if not measured:
        return "error", f"no hold was measured: {errors} error(s)"
    spurious = sum(r.spurious_transitions for r in measured)
    if spurious:
        return "fail", f"{spurious} spurious transition(s) in {len(measured)} hold(s)"
    return "pass", f"steady: no spurious transition in {len(measured)} hold(s)"


def _verdict(
    records: list[TrialRecord],
    detection: dict[str, Any],
    low: float | None,
    high: float | None,
    tolerance: float | None,
    inconclusive: int,
    errors: int,
) -> tuple[str, str]:
    """The cell's verdict and its one-line reason."""
    # The median as the summary shows it (to 0.01 ms), so summary.json reproduces its verdict.
    median = detection["p50"]
    if median is None:
        if inconclusive:
            return "inconclusive", (
                f"no measured trial: {inconclusive} inconclusive (a host stall longer than the "
                f"tolerance), {errors} error(s)"
            )
        if errors == len(records):
            first = next((r.error for r in records if r.error), None) or "no detail"
            return "error", f"every trial errored; first: {_one_line(first)}"
        why = next((r.failed_steps[0] for r in records if r.failed_steps), "no step failed")
        return "error", f"measured trials gave no detection figure; first: {_one_line(why)}"
    if low is None or high is None:
        return "error", f"median {median:.1f} ms, but no RFC figure to judge it against"
    # A missing tolerance judges strictly rather than not at all.
    tol = tolerance or 0.0
    expected = f"{_rfc(low, high)} ± {tol:.1f} ms"
    if median < low - tol:
        return "fail", f"median {median:.1f} ms below {expected} by {low - tol - median:.1f} ms"
    if median > high + tol:
        return "fail", f"median {median:.1f} ms above {expected} by {median - high - tol:.1f} ms"
    return "pass", f"median {median:.1f} ms within {expected}"


def _rfc(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"{high:.1f}" if low == high else f"{low:.1f}–{high:.1f}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


#: The table's columns, in order.
COLUMNS = (
    "impl",
    "fault",
    "advert",
    "prio",
    "preempt",
    "profile",
    "load",
    "trials",
    "inconclusive",
    "errors",
    "RFC (ms)",
    "detection p50 / p95 / max",
    "CI95",
    "outage p50",
    "spurious",
    "split brain",
    "verdict",
)


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a person reads it: a title line, one GitHub-markdown table with a row
    per cell, and a line counting cells by verdict and the inconclusive trials.

    ``trials`` reads measured/total; times are in ms; CI95 shows its real coverage when it is
    less than 95 % (fewer than six measured trials).
    """
    cells = summary.get("cells", [])
    # The BFD columns only in a sweep with BFD: other tables read as they always did.
    bfd = any(c.get("bfd") is not None for c in cells)
    columns = _with_bfd(list(COLUMNS), "BFD", "BFD detection p50") if bfd else list(COLUMNS)
    lines = [
        f"# Sweep {summary.get('sweep', '?')}: convergence",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    rows = [_row(c) for c in cells]
    if bfd:
        rows = [
            _with_bfd(
                row, _bfd_text(c.get("bfd")), _num((c.get("bfd_detection_ms") or {}).get("p50"))
            )
            for row, c in zip(rows, cells, strict=True)
        ]
    lines += ["| " + " | ".join(_escape(v) for v in row) + " |" for row in rows]
    counts = Counter(c.get("verdict") for c in cells)
    spoiled = sum(c.get("inconclusive", 0) for c in cells)
    verdicts = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    lines += ["", f"{len(cells)} cell(s): {verdicts}; {spoiled} inconclusive trial(s)"]
    lines += floor_markdown(summary.get("stability_floor") or [])
    return "\n".join(lines) + "\n"


def _row(cell: dict[str, Any]) -> list[str]:
    detection, outage = cell["detection_ms"], cell["outage_ms"]
    theory = cell.get("theory_ms") or {}
    return [
        str(cell["impl"]),
        str(cell["fault"]),
        f"{cell['advert_int']:g}s",
        str(cell["priority"]),
        "yes" if cell["preempt"] else "no",
        str(cell["profile"]),
        str(cell["load"]),
        f"{cell.get('measured', detection['n'])}/{cell['trials']}",
        str(cell["inconclusive"]),
        str(cell["errors"]),
        _rfc(theory.get("low"), theory.get("high")),
        " / ".join(_num(detection[k]) for k in ("p50", "p95", "max")),
        _ci(detection),
        _num(outage["p50"]),
        str(cell["spurious_transitions"]),
        str(cell.get("split_brain", 0)),
        str(cell["verdict"]),
    ]


def _with_bfd(row: list[str], bfd: str, detection: str) -> list[str]:
    """``row`` with the BFD interval after the load, and BFD's detection after the CI95."""
    load, ci = COLUMNS.index("load"), COLUMNS.index("CI95")
    return [*row[: load + 1], bfd, *row[load + 1 : ci + 1], detection, *row[ci + 1 :]]


def _bfd_text(interval: float | None) -> str:
    return "-" if interval is None else f"{interval * 1000:g}ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ci(figures: dict[str, Any]) -> str:
    ci = figures.get("ci95")
    if not ci:
        return "-"
    text = f"{ci[0]:.1f}–{ci[1]:.1f}"
    coverage = figures.get("ci_coverage")
    # Below 95 % the interval is only (min, max): say how much it is worth.
    if coverage is not None and coverage < 0.95:
        text += f" ({coverage * 100:.0f} %)"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def write_summary(out_dir: Path, sweep_name: str, records: Iterable[TrialRecord]) -> dict[str, Any]:
    """Write ``summary.json`` (indent 2, keys in the order built) and ``summary.md`` into
    ``out_dir``, each atomically, and return the summary.

    A reader (or a ``bench compare`` run alongside) sees the old file or the new one, never
    half of one: each is written to a temporary file in the same directory, then renamed.
    """
    summary = summarise(sweep_name, records)
    out_dir.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: the figures are finite by construction, and JSON has no NaN.
    _write_atomic(out_dir / SUMMARY_JSON, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    _write_atomic(out_dir / SUMMARY_MD, markdown(summary))
    return summary


def _write_atomic(path: Path, text: str) -> None:
    # Same directory, so that os.replace is a rename on one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            # mkstemp makes the file private (0600); a summary is for anyone to read.
            os.fchmod(file.fileno(), 0o644)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
