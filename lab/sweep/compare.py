"""``vrrp-lab bench compare OLD NEW``: which cells' medians moved between two sweeps.

Two ``summary.json`` files are matched cell for cell and each cell's detection and outage
medians are compared against both sides' 95 % intervals (:func:`compare`). Cells that find no
partner, or have no measured figure on one side, are listed apart (:func:`unmatched`): they
were not compared, which is not the same as not having moved.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import UsageError
from lab.stalls import HOST_FLOOR
from lab.sweep.record import AXES

#: Axes a summary written before them lacks; a missing one reads as unset (None).
OPTIONAL_AXES = ("bfd",)

SUMMARY_JSON = "summary.json"

#: The figures compared, each on its own: the summary's key and the word a report uses.
METRICS = {
    "detection_ms": "detection",
    "outage_ms": "outage",
    "bfd_detection_ms": "BFD detection",
}
#: The fewest measured trials a side needs to be compared. With n trials the widest
#: order-statistic interval of the median, [min, max], covers 1 − 2/2ⁿ: 94 % at five, the
#: nearest to 95 % below six; at three it is 75 %, and a re-run of the same sweep moved
#: "beyond" it both ways one time in five (simulated, 40,000 pairs). At five, one in twenty.
MIN_TRIALS = 5
#: What a median must move by, beyond the intervals, to count: the stall witness's floor. A
#: host stall shorter than it goes unrecorded (``lab.stalls.HOST_FLOOR``), so two figures
#: closer than that cannot be told apart by this lab, however tight their intervals; without it,
#: a graceful stop's Skew_Time, repeatable to a fraction of a millisecond, flagged re-runs.
RESOLUTION_MS = HOST_FLOOR * 1000

#: One entry of a summary's ``cells``.
SummaryCell = dict[str, Any]
#: A matched pair: its description, OLD's cell, NEW's cell.
Pair = tuple[str, SummaryCell, SummaryCell]


@dataclasses.dataclass(frozen=True)
class Moved:
    """One cell's median that moved beyond the 95 % interval both ways.

    ``cell`` describes the match (the axes as in a cell key, ``old→new`` where a fixed axis
    differs between the sweeps); ``metric`` is the summary's key (``detection_ms`` or
    ``outage_ms``); the figures are in ms, intervals as ``(lo, hi)``.
    """

    cell: str
    metric: str
    old_p50: float
    new_p50: float
    old_ci: tuple[float, float]
    new_ci: tuple[float, float]

    def describe(self) -> str:
        """One line: the cell, the metric and how its median moved."""
        name = METRICS.get(self.metric, self.metric)
        shift = self.new_p50 - self.old_p50
        return (
            f"{self.cell}: {name} median {self.old_p50:.1f} → {self.new_p50:.1f} ms "
            f"({shift:+.1f} ms); CI95 {_interval(self.old_ci)} → {_interval(self.new_ci)} ms"
        )


def _interval(ci: tuple[float, float]) -> str:
    return f"{ci[0]:.1f}–{ci[1]:.1f}"


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Moved]:
    """The medians that moved from ``old`` to ``new`` (two ``summary.json`` dicts), in OLD's
    cell order, detection before outage.

    Matching: by the cell's axes, except that an axis taking exactly one value in OLD and
    exactly one (possibly other) value in NEW is left out of the match. So "the same sweep
    with the backup at priority 50 instead of 100" compares cell for cell, which is how a
    regression in one fixed parameter is caught.

    A metric moved when NEW's median lies outside OLD's 95 % interval *and* OLD's median lies
    outside NEW's, each interval widened by :data:`RESOLUTION_MS`. One-sided exclusion alone
    flags too many plain re-runs: requiring the exclusion both ways asks that the two samples
    disagree, not merely that one landed at the edge of the other. Detection and outage are
    judged separately; a cell with fewer than :data:`MIN_TRIALS` measured figures on either
    side is not compared (see :func:`unmatched`).
    """
    moved: list[Moved] = []
    pairs, _, _ = _match(old, new)
    for name, before, after in pairs:
        for metric in _metrics(before, after):
            a, b = _figures(before, metric), _figures(after, metric)
            if a is None or b is None or _trials(before, metric) < MIN_TRIALS:
                continue
            if _trials(after, metric) < MIN_TRIALS:
                continue
            (old_p50, old_ci), (new_p50, new_ci) = a, b
            if _outside(new_p50, old_ci) and _outside(old_p50, new_ci):
                moved.append(Moved(name, metric, old_p50, new_p50, old_ci, new_ci))
    return moved


def _metrics(before: SummaryCell, after: SummaryCell) -> list[str]:
    """The metrics a matched pair is compared on: BFD's detection only where both ran BFD."""
    bfd = before.get("bfd") is not None and after.get("bfd") is not None
    return [m for m in METRICS if bfd or m != "bfd_detection_ms"]


def unmatched(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What :func:`compare` could not compare, one line each: cells only in OLD or only in
    NEW, and matched cells whose metric has no measured figure on one side."""
    pairs, only_old, only_new = _match(old, new)
    lines = [f"only in OLD: {c.get('cell', '?')}" for c in only_old]
    lines += [f"only in NEW: {c.get('cell', '?')}" for c in only_new]
    for name, before, after in pairs:
        for metric in _metrics(before, after):
            word = METRICS[metric]
            sides = [s for s, c in (("OLD", before), ("NEW", after)) if _figures(c, metric) is None]
            if sides:
                lines.append(
                    f"no data: {name}: {word} (no measured trial in {' and '.join(sides)})"
                )
                continue
            few = [
                f"{s} {_trials(c, metric)}"
                for s, c in (("OLD", before), ("NEW", after))
                if _trials(c, metric) < MIN_TRIALS
            ]
            if few:
                lines.append(
                    f"too few trials: {name}: {word} ({', '.join(few)} measured; "
                    f"{MIN_TRIALS} are needed for an interval near 95 %)"
                )
    return lines


def _trials(cell: dict[str, Any], metric: str) -> int:
    figures = cell.get(metric)
    n = figures.get("n") if isinstance(figures, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else 0


def _match(
    old: dict[str, Any], new: dict[str, Any]
) -> tuple[list[Pair], list[SummaryCell], list[SummaryCell]]:
    """The matched cells as (description, old cell, new cell), and the cells of OLD and of NEW
    left without a partner."""
    old_cells, new_cells = old.get("cells", []), new.get("cells", [])
    fixed = {
        axis
        for axis in AXES
        if len(_values(old_cells, axis)) == 1 and len(_values(new_cells, axis)) == 1
    }
    matched = [axis for axis in AXES if axis not in fixed]

    def key(cell: SummaryCell) -> tuple[Any, ...]:
        return tuple(_axis_value(cell.get(a)) for a in matched)

    partners: dict[tuple[Any, ...], SummaryCell] = {}
    for cell in new_cells:
        partners.setdefault(key(cell), cell)
    pairs: list[Pair] = []
    only_old: list[SummaryCell] = []
    for cell in old_cells:
        partner = partners.pop(key(cell), None)
        if partner is None:
            only_old.append(cell)
        else:
            pairs.append((_describe_match(cell, partner), cell, partner))
    taken = {id(p) for _, _, p in pairs}
    only_new = [c for c in new_cells if id(c) not in taken]
    return pairs, only_old, only_new


def _values(cells: list[SummaryCell], axis: str) -> set[tuple[str, Any]]:
    return {_axis_value(c.get(axis)) for c in cells}


def _axis_value(value: Any) -> tuple[str, Any]:
    # Python holds true == 1, so a bool is tagged apart; 1 and 1.0 (an interval an older
    # writer spelt as an integer) are the same number.
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int | float):
        return "number", float(value)
    return "other", value


def _describe_match(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The matched pair as a cell key, with ``old→new`` on an axis whose value differs."""
    parts = []
    for axis in AXES:
        if axis in OPTIONAL_AXES and old.get(axis) is None and new.get(axis) is None:
            continue  # as Cell.key: an optional axis left unset is not spelt
        before, after = _axis_text(axis, old.get(axis)), _axis_text(axis, new.get(axis))
        parts.append(before if before == after else f"{before}→{after}")
    return "/".join(parts)


def _axis_text(axis: str, value: Any) -> str:
    # As lab.sweep.record.Cell.key spells each axis, so the description reads like a key.
    if value is None:
        return "nobfd" if axis == "bfd" else "?"
    if axis == "advert_int":
        return f"{value:g}s"
    if axis == "priority":
        return f"prio{value}"
    if axis == "preempt":
        return "preempt" if value else "nopreempt"
    if axis == "bfd":
        return f"bfd{value * 1000:g}ms"
    return str(value).replace(" ", "")


def _figures(cell: dict[str, Any], metric: str) -> tuple[float, tuple[float, float]] | None:
    """The metric's median and 95 % interval, or None when the cell has no measured figure."""
    figures = cell.get(metric)
    if not isinstance(figures, dict):
        return None
    p50, ci = figures.get("p50"), figures.get("ci95")
    if not _number(p50) or not isinstance(ci, list | tuple) or len(ci) != 2:
        return None
    if not (_number(ci[0]) and _number(ci[1])):
        return None
    return float(p50), (float(ci[0]), float(ci[1]))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _outside(value: float, ci: tuple[float, float]) -> bool:
    # On the boundary counts as inside: with few trials the bounds are trial values, and a
    # median equal to one of them has not moved past it.
    return value < ci[0] - RESOLUTION_MS or value > ci[1] + RESOLUTION_MS


def load_summary(path: Path) -> dict[str, Any]:
    """The summary in ``path``: a ``summary.json``, or a sweep directory holding one.

    A missing, unreadable or malformed file raises :class:`lab.errors.UsageError` (exit code
    2) whose message is one line naming the file and what is wrong with it.
    """
    file = path / SUMMARY_JSON if path.is_dir() else path
    if not file.exists():
        hint = " (no sweep summarised there: run vrrp-lab bench --out DIR first)"
        raise UsageError(f"{file}: not found" + (hint if path.is_dir() else ""))
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not a summary.json: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{file}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    _check(file, data)
    return data


def _check(file: Path, data: Any) -> None:
    """Raise a one-line UsageError unless ``data`` has the shape :func:`compare` reads."""
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise UsageError(f'{file}: not a sweep summary: no "cells" list')
    for n, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            raise UsageError(f"{file}: cells[{n}] is not an object")
        missing = [k for k in ("cell", *AXES) if k not in cell and k not in OPTIONAL_AXES]
        if missing:
            raise UsageError(f"{file}: cells[{n}] lacks {', '.join(missing)}")
        for metric in METRICS:
            figures = cell.get(metric)
            if figures is not None and not isinstance(figures, dict):
                raise UsageError(f"{file}: cells[{n}].{metric} is not an object")


def report(moved: Sequence[Moved], unmatched: Sequence[str]) -> str:
    """The console lines of a comparison: each moved median, then what was not compared."""
    if moved:
        lines = [f"{len(moved)} median(s) moved beyond the 95 % interval both ways:"]
        lines += [f"  {m.describe()}" for m in moved]
    else:
        lines = ["no median moved beyond the 95 % interval both ways"]
    if unmatched:
        lines.append(f"{len(unmatched)} not compared:")
        lines += [f"  {line}" for line in unmatched]
    return "\n".join(lines)
