"""The plots of a sweep: PNGs drawn from its trial records, for ``vrrp-lab bench``.

:func:`write_plots` draws whichever of these the records allow:

* ``detection_vs_advert.png``: detection against the advert interval, log-log, one line per
  implementation and fault, over the RFC's figure or window;
* ``detection_vs_bfd.png``: when BFD was swept, detection against the interval that sets it,
  BFD's for a BFD cell and the advert interval without, over BFD's detection window;
* ``outage_ecdf.png``: the empirical CDF of the outage, one panel per fault;
* ``error_vs_theory.png``: each measured detection's distance from the RFC figure or window,
  by advert interval, against the tolerance;
* ``timeline.png``: one representative trial's failover (:func:`representative`);
* ``stability_floor.png``: spurious transitions by advert interval and load, when a load was
  swept.

Everything is computed from the records alone: the RFC figures are the ones the trials were
judged against (``theory_ms``, ``theory_low_ms``), never recomputed here. matplotlib is the
optional ``plot`` extra, imported only when a figure is drawn.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lab.errors import EnvironmentMissing
from lab.sweep.record import BFD_MULTIPLIER, Cell, TrialRecord
from lab.sweep.spec import HOLD, load_order
from lab.sweep.stats import percentile

DPI = 120

#: A summary line's error bars are p5–p95 only when every point has at least this many
#: measured trials: below it the 5th percentile is the minimum in all but name.
PERCENTILE_MIN_TRIALS = 20

#: Past this many entries a legend goes to the right of the axes, not over the data.
LEGEND_INSIDE_MAX = 6

#: The timeline's stamps, in the order a failover usually meets them, with their captions.
TIMELINE_EVENTS: tuple[tuple[str, str], ...] = (
    ("fault", "fault"),
    ("last_advert_old", "old master's last advert"),
    ("last_served_before", "last probe served before"),
    ("first_advert_new", "new master's first advert"),
    ("first_garp_new", "new master's first GARP"),
    ("first_served_after", "first probe served after"),
)

#: The axes a series label may name besides implementation and fault, with how each reads.
_LABEL_AXES: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("advert_int", lambda v: _interval_text(v)),
    ("priority", lambda v: f"prio{v}"),
    ("preempt", lambda v: "preempt" if v else "nopreempt"),
    ("profile", str),
    ("load", str),
    ("bfd", lambda v: f"BFD {_interval_text(v)}" if v else "no BFD"),
)

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")
#: Band colours are kept apart from the line colours (tab10) so a band never reads as a line.
_BAND_COLOURS = ("0.55", "#b5a642", "#6fa8a8", "#b07aa1", "#9c755f")

_MISSING = "matplotlib is needed for plots: pip install 'vrrp-lab[plot]'"


def write_plots(out_dir: Path, records: Sequence[TrialRecord]) -> list[Path]:
    """Draw every plot the records allow into ``out_dir`` and return the PNGs' paths.

    A plot the records cannot feed (no measured trial, no timeline, no load swept) is left
    out, not drawn empty; an empty sequence draws nothing. Each PNG is written atomically, so
    a reader of ``out_dir`` never sees half a file. Raises
    :class:`~lab.errors.EnvironmentMissing` when a plot is due and matplotlib is not installed.
    """
    records = list(records)
    if not records:
        return []
    out: list[Path] = []
    for draw in (
        _detection_vs_advert,
        _detection_vs_bfd,
        _outage_ecdf,
        _error_vs_theory,
        _timeline,
        _stability_floor,
    ):
        path = draw(out_dir, records)
        if path is not None:
            out.append(path)
    return out


def representative(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The trial that stands for the sweep: of the cell with the most measured trials (ties:
    the first in key order), the measured trial whose detection is closest to the cell's
    median (ties: the lowest trial number). None when no trial measured a detection."""
    by_cell = _by_cell(_measured(records))
    if not by_cell:
        return None
    cell = min(by_cell, key=lambda c: (-len(by_cell[c]), c.key))
    trials = by_cell[cell]
    median = statistics.median(_detection(r) for r in trials)
    return min(trials, key=lambda r: (abs(_detection(r) - median), r.trial, r.started))


def theory_error(record: TrialRecord) -> float | None:
    """How far the record's detection lies from the RFC, in ms: after a stop, detection minus
    the figure; for a window, 0 inside it, else the signed distance to the nearer edge
    (negative: too early). None when the record lacks a detection or a figure."""
    if record.detection_ms is None or record.theory_ms is None:
        return None
    if record.theory_low_ms is None:
        return record.detection_ms - record.theory_ms
    low, high = sorted((record.theory_low_ms, record.theory_ms))
    if record.detection_ms < low:
        return record.detection_ms - low
    if record.detection_ms > high:
        return record.detection_ms - high
    return 0.0


# -- the plots ---------------------------------------------------------------------------------


def _detection_vs_advert(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    measured = [r for r in _measured(records) if _detection(r) > 0]  # a log axis drops <= 0
    if not measured:
        return None
    varying = _varying(measured, ("priority", "preempt", "profile", "load", "bfd"))
    series: dict[tuple[Any, ...], dict[float, list[float]]] = {}
    for r in measured:
        key = (r.cell.impl, r.cell.fault, *(_axis_value(r.cell, a) for a in varying))
        series.setdefault(key, {}).setdefault(r.cell.advert_int, []).append(_detection(r))
    percentiles = all(
        len(v) >= PERCENTILE_MIN_TRIALS for points in series.values() for v in points.values()
    )
    faults = sorted({r.cell.fault for r in measured})
    # Colour tells implementations (and the other varying axes) apart, the marker tells the
    # fault: a keepalived stop and a keepalived freeze are the same colour, different shapes.
    colour_keys = sorted({(k[0], *k[2:]) for k in series})

    plt = _pyplot()
    with _figure(plt, 1, 1, (8.5, 5.2)) as (fig, axes):
        ax = axes[0][0]
        vrrp_theory = [r for r in records if not r.cell.bfd_takeover]
        for n, fault in enumerate(faults):
            _theory_band(ax, vrrp_theory, fault, _BAND_COLOURS[n % len(_BAND_COLOURS)])
        for key in sorted(series):
            colour_n = colour_keys.index((key[0], *key[2:]))
            _median_line(
                ax,
                series[key],
                percentiles=percentiles,
                color=f"C{colour_n % 10}",
                linestyle=_LINESTYLES[(colour_n // 10) % len(_LINESTYLES)],
                marker=_MARKERS[faults.index(key[1]) % len(_MARKERS)],
                label=" ".join((key[0], key[1], *_axis_texts(varying, key[2:]))),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _interval_ticks(ax, sorted({r.cell.advert_int for r in measured}))
        ax.set_xlabel("advert interval (log)")
        ax.set_ylabel("detection (ms, log): fault to new master's first advert")
        bars = "p5–p95" if percentiles else "min–max"
        ax.set_title(
            f"Detection against advert interval: median of {len(measured)} measured trial(s), "
            f"bars {bars}{_left_out(records, measured)}",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.25)
        _legend(ax)
        return _save(plt, fig, out_dir, "detection_vs_advert.png")


def _detection_vs_bfd(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    """Detection against the interval that sets it, BFD's beside VRRP's: a BFD cell is drawn at
    its BFD interval (one line per advert interval beside it), a cell without BFD at its advert
    interval, one colour per implementation, over BFD's detection time. Drawn only when the
    sweep has BFD cells."""
    measured = [r for r in _measured(records) if _detection(r) > 0]
    bfd_intervals = sorted({r.cell.bfd for r in measured if r.cell.bfd is not None})
    if not bfd_intervals:
        return None
    # (impl, fault, advert interval beside BFD or 0.0 for VRRP alone) -> x -> detections
    series: dict[tuple[str, str, float], dict[float, list[float]]] = {}
    for r in measured:
        beside = r.cell.advert_int if r.cell.bfd is not None else 0.0
        x = r.cell.bfd if r.cell.bfd is not None else r.cell.advert_int
        series.setdefault((r.cell.impl, r.cell.fault, beside), {}).setdefault(x, []).append(
            _detection(r)
        )
    impls = sorted({k[0] for k in series})
    faults = sorted({k[1] for k in series})
    adverts = sorted({k[2] for k in series if k[2]}, reverse=True)
    plt = _pyplot()
    with _figure(plt, 1, 1, (8.5, 5.2)) as (fig, axes):
        ax = axes[0][0]
        # One interval has no width to fill: a short stretch either side of its point.
        band = bfd_intervals if len(bfd_intervals) > 1 else [bfd_intervals[0] / 1.25] * 2
        band = band if len(bfd_intervals) > 1 else [band[0], bfd_intervals[0] * 1.25]
        spans = bfd_intervals if len(bfd_intervals) > 1 else bfd_intervals * 2
        ax.fill_between(
            band,
            [(BFD_MULTIPLIER - 1) * i * 1000 for i in spans],
            [BFD_MULTIPLIER * i * 1000 for i in spans],
            color=_BAND_COLOURS[1], alpha=0.25, linewidth=0,
            label=f"BFD detection time: [{BFD_MULTIPLIER - 1}·I, {BFD_MULTIPLIER}·I]",
        )  # fmt: skip
        for key in sorted(series):
            impl, fault, beside = key
            if beside:
                style = _LINESTYLES[adverts.index(beside) % 2 * 2]  # "-" or "-."
                label = f"{impl} {fault}, BFD beside {_interval_text(beside)} adverts"
            else:
                style, label = ":", f"{impl} {fault}, VRRP alone"
            _median_line(
                ax,
                series[key],
                percentiles=False,
                color=f"C{impls.index(impl) % 10}",
                linestyle=style,
                marker=_MARKERS[faults.index(fault) % len(_MARKERS)],
                label=label,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _interval_ticks(ax, sorted({x for points in series.values() for x in points}))
        ax.set_xlabel("interval (log): BFD's for a BFD cell, the advert interval without")
        ax.set_ylabel("detection (ms, log): fault to new master's first advert")
        ax.set_title(
            f"Detection with BFD beside VRRP alone: median of {len(measured)} measured trial(s), "
            f"bars min–max{_left_out(records, measured)}",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.25)
        _legend(ax)
        return _save(plt, fig, out_dir, "detection_vs_bfd.png")


def _median_line(
    ax: Any,
    points: dict[float, list[float]],
    *,
    percentiles: bool,
    color: str,
    linestyle: str,
    marker: str,
    label: str,
) -> None:
    """One series: the median at each x, with bars p5–p95 (``percentiles``) or min–max."""
    xs = sorted(points)
    mids = [statistics.median(points[x]) for x in xs]
    if percentiles:
        lows = [percentile(points[x], 5) for x in xs]
        highs = [percentile(points[x], 95) for x in xs]
    else:
        lows = [min(points[x]) for x in xs]
        highs = [max(points[x]) for x in xs]
    ax.errorbar(
        xs,
        mids,
        yerr=[
            [m - lo for m, lo in zip(mids, lows, strict=True)],
            [h - m for m, h in zip(mids, highs, strict=True)],
        ],
        color=color,
        linestyle=linestyle,
        marker=marker,
        markersize=5,
        capsize=3,
        linewidth=1.2,
        label=label,
    )


def _theory_band(
    ax: Any,
    records: list[TrialRecord],
    fault: str,
    colour: str,
    *,
    x_of: Callable[[TrialRecord], float | None] = lambda r: r.cell.advert_int,
    label: str | None = None,
) -> None:
    """The RFC's figure (a line) or window (a band) for one fault, from the records' own
    theory figures; where cells of one interval disagree (priorities vary), their span."""
    spans: dict[float, tuple[float, float]] = {}
    window = False
    for r in records:
        if r.cell.fault != fault or r.theory_ms is None:
            continue
        window = window or r.theory_low_ms is not None
        low = r.theory_low_ms if r.theory_low_ms is not None else r.theory_ms
        low, high = sorted((low, r.theory_ms))
        if low <= 0:
            continue
        x = x_of(r)
        if x is None:
            continue
        old = spans.get(x)
        spans[x] = (low, high) if old is None else (min(old[0], low), max(old[1], high))
    if not spans:
        return
    xs = sorted(spans)
    lows = [spans[x][0] for x in xs]
    highs = [spans[x][1] for x in xs]
    if len(xs) == 1:
        # One interval has no width to fill: give it a short stretch either side of its point.
        xs = [xs[0] / 1.25, xs[0] * 1.25]
        lows, highs = lows * 2, highs * 2
    if label is None:
        label = (
            f"RFC window, {fault}: [MDI−Adv, MDI]" if window else f"RFC figure, {fault}: Skew_Time"
        )
    if lows == highs:
        ax.plot(xs, highs, color=colour, linestyle="--", linewidth=1.5, label=label)
    else:
        ax.fill_between(xs, lows, highs, color=colour, alpha=0.25, linewidth=0, label=label)


def _outage_ecdf(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    measured = [
        r
        for r in records
        if r.outcome == "measured" and r.outage_ms is not None and math.isfinite(r.outage_ms)
    ]
    if not measured:
        return None
    faults = sorted({r.cell.fault for r in measured})
    varying = _varying(measured, tuple(a for a, _ in _LABEL_AXES))
    series: dict[tuple[Any, ...], list[float]] = {}
    for r in measured:
        key = (r.cell.fault, r.cell.impl, *(_axis_value(r.cell, a) for a in varying))
        series.setdefault(key, []).append(float(r.outage_ms or 0.0))
    # One colour per line across every panel, so one legend serves them all.
    line_keys = sorted({k[1:] for k in series})
    plt = _pyplot()
    rows, cols = _grid(len(faults))
    with _figure(plt, rows, cols, (4.8 * cols, 3.6 * rows), sharey=True) as (fig, axes):
        handles: dict[tuple[Any, ...], Any] = {}
        for n, fault in enumerate(faults):
            ax = axes[n // cols][n % cols]
            for key in sorted(k for k in series if k[0] == fault):
                i = line_keys.index(key[1:])
                xs = sorted(series[key])
                ys = [(k + 1) / len(xs) for k in range(len(xs))]
                # Start the step at 0 so a one-trial line is still a visible step.
                (line,) = ax.step(
                    [xs[0], *xs],
                    [0.0, *ys],
                    where="post",
                    color=f"C{i % 10}",
                    linestyle=_LINESTYLES[(i // 10) % len(_LINESTYLES)],
                    linewidth=1.3,
                )
                handles.setdefault(key[1:], line)
            values = [v for k, vs in series.items() if k[0] == fault for v in vs]
            # Outages of a sweep from 10 ms to 1 s adverts span two decades: log when they do.
            if min(values) > 0 and max(values) / min(values) > 30:
                ax.set_xscale("log")
            ax.set_title(f"fault: {fault} ({len(values)} trial(s))", fontsize=10)
            ax.set_xlabel("outage (ms): probes unanswered")
            if n % cols == 0:
                ax.set_ylabel("fraction of trials ≤ outage")
            ax.set_ylim(0, 1.02)
            ax.grid(True, alpha=0.25)
        fig.legend(
            [handles[k] for k in line_keys],
            [" ".join((k[0], *_axis_texts(varying, k[1:]))) for k in line_keys],
            loc="outside right upper",
            fontsize=7,
            frameon=False,
        )
        _hide_unused(axes, len(faults))
        fig.suptitle(
            f"Outage, empirical CDF of {len(measured)} measured trial(s)"
            f"{_left_out(records, measured)}",
            fontsize=11,
        )
        return _save(plt, fig, out_dir, "outage_ecdf.png")


def _error_vs_theory(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    judged = [(r, e) for r in _measured(records) if (e := theory_error(r)) is not None]
    if not judged:
        return None
    impls = sorted({r.cell.impl for r, _ in judged})
    faults = sorted({r.cell.fault for r, _ in judged})
    plt = _pyplot()
    rows, cols = _grid(len(impls))
    with _figure(plt, rows, cols, (5.2 * cols, 3.9 * rows)) as (fig, axes):
        for n, impl in enumerate(impls):
            ax = axes[n // cols][n % cols]
            mine = [(r, e) for r, e in judged if r.cell.impl == impl]
            intervals = sorted({r.cell.advert_int for r, _ in mine})
            width = 0.8 / len(faults)
            tolerances = []
            for i, adv in enumerate(intervals):
                tol = max(
                    (
                        r.tolerance_ms
                        for r, _ in mine
                        if r.cell.advert_int == adv and r.tolerance_ms
                    ),
                    default=None,
                )
                if tol is not None:
                    tolerances.append(tol)
                    ax.fill_between(
                        [i - 0.45, i + 0.45],
                        -tol,
                        tol,
                        color="0.5",
                        alpha=0.18,
                        linewidth=0,
                        label="± tolerance" if len(tolerances) == 1 else None,
                    )
                for f, fault in enumerate(faults):
                    errors = [
                        e for r, e in mine if r.cell.advert_int == adv and r.cell.fault == fault
                    ]
                    if not errors:
                        continue
                    centre = i - 0.4 + width * (f + 0.5)
                    if len(errors) >= 4:
                        ax.boxplot(
                            errors,
                            positions=[centre],
                            widths=width * 0.7,
                            showfliers=False,
                            manage_ticks=False,
                            medianprops={"color": f"C{f % 10}"},
                        )
                    ax.scatter(
                        [centre + width * 0.6 * (_jitter(k) - 0.5) for k in range(len(errors))],
                        errors,
                        s=10,
                        color=f"C{f % 10}",
                        alpha=0.75,
                        zorder=3,
                        label=fault if i == _first_interval(mine, intervals, fault) else None,
                    )
            ax.axhline(0, color="black", linewidth=0.7)
            ax.set_xticks(range(len(intervals)), [_interval_text(a) for a in intervals])
            ax.set_xlim(-0.6, len(intervals) - 0.4)
            # Tolerances grow with the interval (a fifth of it): on one linear axis the 10 ms
            # cells' ±2 ms would be a hairline under the 1 s cells' ±200 ms.
            if tolerances and max(tolerances) / min(tolerances) > 10:
                ax.set_yscale("symlog", linthresh=min(tolerances))
            ax.set_title(f"{impl}", fontsize=10)
            ax.set_xlabel("advert interval")
            if n % cols == 0:
                ax.set_ylabel("detection − RFC (ms)\n0 = on the figure or inside the window")
            ax.grid(True, axis="y", alpha=0.25)
            _legend(ax)
        _hide_unused(axes, len(impls))
        fig.suptitle(
            f"Detection against the RFC, {len(judged)} measured trial(s); "
            "a stop against Skew_Time, a silent fault against [MDI−Adv, MDI]",
            fontsize=11,
        )
        return _save(plt, fig, out_dir, "error_vs_theory.png")


def _timeline(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    trial = representative(records)
    if trial is None or not trial.timeline:
        return None
    stamps = trial.timeline
    probes = [
        (float(p[0]), bool(p[1]))
        for p in stamps.get("probes") or []
        if isinstance(p, (list, tuple)) and len(p) >= 2 and p[0] is not None
    ]
    events = [(stamps[k], text) for k, text in TIMELINE_EVENTS if _is_number(stamps.get(k))]
    # A newer recorder may stamp more than these; draw its stamps too, under their own names.
    known = {k for k, _ in TIMELINE_EVENTS} | {"probes"}
    events += [
        (v, k.replace("_", " ")) for k, v in stamps.items() if k not in known and _is_number(v)
    ]
    events.sort(key=lambda e: e[0])
    if not events and not probes:
        return None

    plt = _pyplot()
    with _figure(plt, 1, 1, (10.5, 4.0)) as (fig, axes):
        ax = axes[0][0]
        if trial.theory_ms is not None:
            low = trial.theory_low_ms
            if low is None:
                ax.axvline(
                    trial.theory_ms,
                    color="tab:green",
                    linestyle="--",
                    linewidth=1.2,
                    label=f"RFC Skew_Time {trial.theory_ms:.1f} ms",
                )
            else:
                ax.axvspan(
                    low,
                    trial.theory_ms,
                    color="tab:green",
                    alpha=0.15,
                    label=f"RFC window [{low:.1f}, {trial.theory_ms:.1f}] ms",
                )
            if trial.tolerance_ms:
                ax.axvspan(
                    (low if low is not None else trial.theory_ms) - trial.tolerance_ms,
                    trial.theory_ms + trial.tolerance_ms,
                    color="tab:green",
                    alpha=0.06,
                    label=f"± tolerance {trial.tolerance_ms:.1f} ms",
                )
        before, after = stamps.get("last_served_before"), stamps.get("first_served_after")
        if _is_number(before) and _is_number(after) and after > before:
            ax.axvspan(before, after, color="tab:red", alpha=0.08, label="outage")
        if probes:
            served = [t for t, ok in probes if ok]
            lost = [t for t, ok in probes if not ok]
            ax.scatter(served, [1] * len(served), s=6, color="tab:blue", label="probe answered")
            ax.scatter(lost, [0] * len(lost), s=6, color="tab:red", label="probe lost")
            ax.set_yticks([0, 1], ["lost", "answered"])
            ax.set_ylim(-0.8, 2.6)  # room above the dots for the event captions
        else:
            ax.set_yticks([])
        xs = [t for t, _ in events] + [t for t, _ in probes]
        middle = (min(xs) + max(xs)) / 2
        for n, (t, text) in enumerate(events):
            ax.axvline(t, color="0.35", linewidth=0.7)
            # Staggered in axes coordinates: the stamps of one failover are often a few ms
            # apart. Right of the middle a caption reads leftwards, so it stays in the axes.
            right = t > middle
            ax.text(
                t,
                0.97 - 0.075 * (n % 6),
                f"{text} {t:+.1f} ms " if right else f" {t:+.1f} ms {text}",
                fontsize=7,
                va="top",
                ha="right" if right else "left",
                transform=ax.get_xaxis_transform(),
            )
        ax.set_xlabel("ms after the fault (lab clock; probes at their send time)")
        figures = [f"detection {trial.detection_ms:.1f} ms"]
        if trial.outage_ms is not None:
            figures.append(f"outage {trial.outage_ms:.1f} ms")
        ax.set_title(
            f"Representative trial: {trial.cell.key} #{trial.trial} ({', '.join(figures)}; "
            "closest to its cell's median)",
            fontsize=9,
        )
        ax.grid(True, axis="x", alpha=0.25)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        return _save(plt, fig, out_dir, "timeline.png")


def _stability_floor(out_dir: Path, records: list[TrialRecord]) -> Path | None:
    from lab.sweep.floor import stability_floors

    # Hold trials, where there are any, are what the floor is made of; otherwise the failover
    # trials' own spurious transitions, when a load was swept.
    holds = [r for r in records if r.cell.fault == HOLD]
    if not holds and all(r.cell.load == "none" for r in records):
        return None
    # An errored trial counted nothing, so it would read as a stable zero.
    counted = [r for r in holds or records if r.outcome != "error"]
    if not counted:
        return None
    floors = {f.impl: f.floor for f in stability_floors(holds)}
    impls = sorted({r.cell.impl for r in counted})
    loads = sorted({r.cell.load for r in counted}, key=load_order)
    # Trials a bar: said once in the title when every bar has as many (side by side, a label
    # on each bar runs into its neighbours'), else on each bar.
    sizes = collections.Counter(
        (r.cell.impl, r.cell.advert_int, r.cell.load) for r in counted
    ).values()
    uniform = len(set(sizes)) == 1
    plt = _pyplot()
    rows, cols = _grid(len(impls))
    with _figure(plt, rows, cols, (5.2 * cols, 3.8 * rows), sharey=True) as (fig, axes):
        width = 0.8 / len(loads)
        for n, impl in enumerate(impls):
            ax = axes[n // cols][n % cols]
            mine = [r for r in counted if r.cell.impl == impl]
            intervals = sorted({r.cell.advert_int for r in mine})
            for j, load in enumerate(loads):
                xs: list[float] = []
                heights: list[float] = []
                counts: list[int] = []
                for i, adv in enumerate(intervals):
                    cell = [r for r in mine if r.cell.advert_int == adv and r.cell.load == load]
                    if cell:
                        xs.append(i - 0.4 + width * (j + 0.5))
                        heights.append(statistics.fmean(r.spurious_transitions for r in cell))
                        counts.append(len(cell))
                if not xs:
                    continue  # no legend entry for a load this implementation never ran
                bars = ax.bar(xs, heights, width * 0.9, color=f"C{j % 10}", label=load)
                for bar, count in zip(bars, counts, strict=True) if not uniform else ():
                    ax.annotate(
                        f"n={count}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 2),
                        textcoords="offset points",
                        ha="center",
                        fontsize=6,
                    )
            ax.set_xticks(range(len(intervals)), [_interval_text(a) for a in intervals])
            floor = floors.get(impl)
            if floor is not None and floor in intervals:
                # Left of the floor's bars: everything from it rightwards held steady.
                at = intervals.index(floor) - 0.5
                ax.axvline(at, color="k", linestyle="--", linewidth=1)
                ax.annotate(
                    f"floor {_interval_text(floor)}",
                    (at, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    fontsize=8,
                )
            title = impl
            if impl in floors:
                steady = _interval_text(floor) if floor is not None else "none swept"
                title += f": steady from {steady}"
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("advert interval")
            if n % cols == 0:
                ax.set_ylabel("spurious transitions per trial (mean)")
            ax.grid(True, axis="y", alpha=0.25)
            _legend(ax, title="load")
        _hide_unused(axes, len(impls))
        what = "hold trials" if holds else "trial(s), faults pooled"
        per_bar = next(iter(sizes))
        each = f", {per_bar} trial{'s' if per_bar != 1 else ''} a bar" if uniform else ""
        fig.suptitle(
            f"Stability floor: mastership changes nothing explains, {len(counted)} {what}{each}",
            fontsize=11,
        )
        return _save(plt, fig, out_dir, "stability_floor.png")


# -- helpers -----------------------------------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: sweeps run headless, often under sudo."""
    try:
        import matplotlib
    except ImportError as exc:
        raise EnvironmentMissing(_MISSING) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _figure(
    plt: Any, rows: int, cols: int, size: tuple[float, float], sharey: bool = False
) -> Iterator[tuple[Any, Any]]:
    """A figure that is closed however its drawing ends: pyplot keeps every open figure."""
    # Constrained layout keeps suptitles, panel titles and outside legends from overlapping.
    fig, axes = plt.subplots(
        rows, cols, figsize=size, squeeze=False, sharey=sharey, layout="constrained"
    )
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def _save(plt: Any, fig: Any, out_dir: Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` through a temporary file in the same directory, so
    the PNG appears whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight")
        # mkstemp's 0600 would keep a root-run sweep's plots from their reader.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path


def _legend(ax: Any, title: str | None = None) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) > LEGEND_INSIDE_MAX:
        ax.legend(
            loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, title=title, frameon=False
        )
    else:
        ax.legend(fontsize=7, title=title, title_fontsize=7)


def _grid(panels: int) -> tuple[int, int]:
    cols = min(panels, 3)
    return -(-panels // cols), cols


def _hide_unused(axes: Any, used: int) -> None:
    flat = [ax for row in axes for ax in row]
    for ax in flat[used:]:
        ax.set_visible(False)


def _interval_ticks(ax: Any, intervals: list[float]) -> None:
    """Tick the log x axis at the swept intervals themselves, read in ms or s."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(intervals, [_interval_text(a) for a in intervals])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(intervals) == 1:
        ax.set_xlim(intervals[0] / 2, intervals[0] * 2)


def _interval_text(seconds: float) -> str:
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"


def _axis_texts(axes: Sequence[str], values: Sequence[Any]) -> list[str]:
    readers = dict(_LABEL_AXES)
    return [readers[a](v) for a, v in zip(axes, values, strict=True)]


def _axis_value(cell: Cell, axis: str) -> Any:
    """``cell``'s value on ``axis``, sortable beside the other cells': no BFD reads as 0."""
    value = getattr(cell, axis)
    return (value or 0.0) if axis == "bfd" else value


def _varying(records: Sequence[TrialRecord], axes: Sequence[str]) -> list[str]:
    """The axes among ``axes`` that take more than one value in ``records``: only they need
    naming in a label, the rest are the same on every line."""
    return [a for a in axes if len({getattr(r.cell, a) for r in records}) > 1]


def _measured(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [
        r
        for r in records
        if r.outcome == "measured" and r.detection_ms is not None and math.isfinite(r.detection_ms)
    ]


def _detection(record: TrialRecord) -> float:
    assert record.detection_ms is not None  # callers pass only _measured records
    return record.detection_ms


def _by_cell(records: Sequence[TrialRecord]) -> dict[Cell, list[TrialRecord]]:
    out: dict[Cell, list[TrialRecord]] = {}
    for r in records:
        out.setdefault(r.cell, []).append(r)
    return out


def _jitter(k: int) -> float:
    """A spread in [0, 1) that is the same on every run: the golden-ratio sequence, not
    random, so two drawings of one results file are the same picture."""
    return (k * 0.6180339887498949) % 1.0


def _first_interval(
    judged: Sequence[tuple[TrialRecord, float]], intervals: Sequence[float], fault: str
) -> int | None:
    """The index of the first interval with points of ``fault``: where its legend entry goes."""
    for i, adv in enumerate(intervals):
        if any(r.cell.fault == fault and r.cell.advert_int == adv for r, _ in judged):
            return i
    return None


def _left_out(records: Sequence[TrialRecord], drawn: Sequence[TrialRecord]) -> str:
    """A title's note of the trials not drawn, by outcome, so a sparse plot says why."""
    kept = {id(r) for r in drawn}
    counts: dict[str, int] = {}
    for r in records:
        if id(r) not in kept:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if not counts:
        return ""
    return "\n(left out: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) + ")"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
