"""The soak's judgement (issue 17): whether a series of figures, one per cycle, grows.

Pure: no lab, no namespaces, only numbers. :func:`judge` decides one series (see its docstring
for the rule and why it is that rule); :func:`series_of` turns a run's samples (:class:`Sample`,
the record of one cycle, also here) into named series, and :func:`judge_all` judges them all;
:func:`table` writes the verdicts as Markdown. :mod:`lab.soak` re-exports all of it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Mode = Literal["one-lab", "fresh-labs"]
"""How a soak runs its cycles: all in one lab, or each in a lab of its own."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One cycle of a soak and what was measured after it."""

    cycle: int
    """The cycle's number within its mode, from 0."""
    mode: Mode
    impl: str
    fault: str
    seconds: float
    """Wall time of the whole cycle (for fresh labs: build, failover, sampling, teardown)."""
    detection: float | None = None
    """Seconds from the fault to the backup's MASTER report."""
    outage: float | None = None
    """The longest run of lost probes during the cycle, last reply to first reply (s)."""
    build: float | None = None
    """The lab's build time (fresh labs only), :attr:`lab.lab.Lab.build_seconds`."""
    resources: dict[str, float] = dataclasses.field(default_factory=dict)
    """Every figure, by series name: the lab's (:func:`lab.soak.sample_lab`) and the runner's."""

    def as_json(self) -> dict[str, Any]:
        """The record as one JSON line's object."""
        return {"type": "sample", **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        """The inverse of :meth:`as_json`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


#: A series' first samples that the judgement leaves out (and at least this share of them):
#: caches fill, the allocator grows its arenas, lazy imports happen in the first failovers.
WARMUP_SHARE = 0.1
WARMUP_MIN = 2
#: The fewest samples after the warm-up that the judgement will fit a line to.
MIN_JUDGED = 6
#: How many residual standard deviations the growth over the run must exceed (see
#: :func:`judge`).
NOISE_FACTOR = 3.0


@dataclasses.dataclass(frozen=True)
class Trend:
    """The judgement of one series (see :func:`judge`)."""

    series: str
    samples: int
    first: float
    last: float
    low: float
    high: float
    slope: float
    """Least-squares growth per cycle, after the warm-up."""
    growth: float
    """``slope`` times the cycles judged: what the line grew by over the run."""
    bound: float
    """What ``growth`` had to exceed (with rising thirds) to count as growing."""
    verdict: Literal["flat", "growing", "too short"]


def quantum(series: str) -> float:
    """The smallest step the series can take: a page for a resident set, else one (a
    descriptor, a thread, an entry)."""
    return os.sysconf("SC_PAGE_SIZE") / 1024 if series.endswith(".rss_kib") else 1.0


def judge(series: str, points: Sequence[tuple[int, float]], *, min_rate: float = 0.0) -> Trend:
    """Whether the series ``points`` ((cycle, value), in cycle order) grows.

    The rule: leave out the warm-up (the first :data:`WARMUP_SHARE` of the samples, at least
    :data:`WARMUP_MIN`); fit a least-squares line to the rest; the growth is the slope times
    the span of cycles judged. The series grows when both hold:

    1. the growth exceeds ``max(quantum, NOISE_FACTOR · s)``, ``s`` being the standard
       deviation of the residuals around the line: the series' own noise. For a trendless
       series the fitted growth over n points has a standard deviation of about
       ``s·√(12/n)·(n−1)/n`` (≤ s for n ≥ 12, ≈ 0.8 s at n = 17), so three times ``s`` is
       exceeded by chance with odds below one in a thousand. A leak with no noise (a
       descriptor per cycle: residuals 0) grows by the whole span, far above one quantum.
    2. the medians of the first, middle and last thirds rise strictly. A single step (a cache
       filled once, a daemon restarted into a larger heap) tilts a fitted line too, but does not
       rise through all three thirds; a leak does.

    Neither figure is a measurement written down: both bounds come from the series itself.

    ``min_rate`` (in quanta per judged sample; none by default) is for a short run, which can
    only be asked about fast leaks: there a one-unit step (a neighbour entry that comes and
    goes) cannot be told from a slow leak, and growth slower than ``min_rate`` is not reported.
    """
    values = [v for _, v in points]
    cycles = [c for c, _ in points]
    warmup = max(WARMUP_MIN, math.ceil(WARMUP_SHARE * len(points)))
    xs, ys = cycles[warmup:], values[warmup:]
    extent = (len(values), values[0], values[-1], min(values), max(values))
    if len(ys) < MIN_JUDGED:
        return Trend(series, *extent, math.nan, math.nan, math.nan, "too short")
    slope, intercept = _fit(xs, ys)
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    noise = math.sqrt(sum(r * r for r in residuals) / (len(ys) - 2))
    growth = slope * (xs[-1] - xs[0])
    bound = max(quantum(series), NOISE_FACTOR * noise)
    third = len(ys) // 3
    medians = [
        statistics.median(ys[:third]),
        statistics.median(ys[third : len(ys) - third]),
        statistics.median(ys[len(ys) - third :]),
    ]
    rising = medians[0] < medians[1] < medians[2]
    rate = growth / (len(ys) - 1) / quantum(series)
    verdict: Literal["growing", "flat"] = (
        "growing" if growth > bound and rising and rate >= min_rate else "flat"
    )
    return Trend(series, *extent, slope, growth, bound, verdict)


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ``ys`` against ``xs``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else 0.0
    return slope, my - slope * mx


def series_of(samples: Iterable[Sample]) -> dict[str, list[tuple[int, float]]]:
    """Every series of a run, by name ``<mode>/<impl>/<figure>``, as (cycle, value) points.

    The runner's figures are one process's whatever the implementation, so their name has no
    implementation (``<mode>/<figure>``); every other figure belongs to the lab of one
    implementation. Cycle time, detection, outage and build time are series too (``cycle.*``:
    shown and fitted, not judged, see :data:`TIMINGS`).
    """
    out: dict[str, list[tuple[int, float]]] = {}
    for s in sorted(samples, key=lambda s: (s.mode, s.cycle)):
        figures = dict(s.resources)
        figures["cycle.seconds"] = s.seconds
        for name in ("detection", "outage", "build"):
            value = getattr(s, name)
            if value is not None:
                figures[f"cycle.{name}"] = value
        for name, value in figures.items():
            key = f"{s.mode}/{name}" if name.startswith("runner.") else f"{s.mode}/{s.impl}/{name}"
            out.setdefault(key, []).append((s.cycle, value))
    return out


#: Series judged for information, never a verdict: timings depend on the host's load and on
#: each fault's own window, so the soak reports them and the plot shows them, but only what a
#: cycle leaves behind is judged.
TIMINGS = ("cycle.seconds", "cycle.detection", "cycle.outage", "cycle.build")
#: The prefix of the series that measure a lab's records of the run (:func:`lab.soak.lab_records`:
#: the controller's events, the fault history, the routers' transitions and saved logs). A lab
#: keeps them for its report by design, so in one long-lived lab they grow with every cycle:
#: they are shown beside the runner's memory, never judged.
RECORDS = "records."
#: The runner's resident sets. In a one-lab run that keeps its labs' records they hold those
#: records too, which grow by design: such a run shows them and does not judge them; the run
#: that forgets the records after each cycle (``benchmarks/soak.py --forget-records``) does.
RUNNER_MEMORY = ("runner.rss_kib", "runner.trimmed.rss_kib")


def judge_all(samples: Iterable[Sample], *, min_rate: float = 0.0) -> list[Trend]:
    """:func:`judge` of every series of a run, by name."""
    return [
        judge(name, points, min_rate=min_rate)
        for name, points in sorted(series_of(samples).items())
    ]


def not_judged(series: str, *, records_kept: bool = False) -> str | None:
    """Why ``series`` is shown and not judged, or None when it is judged: a timing
    (:data:`TIMINGS`), a lab's records (:data:`RECORDS`), or, with ``records_kept`` (the
    one-lab labs kept their records), the runner's memory in one lab (:data:`RUNNER_MEMORY`)."""
    figure = series.rsplit("/", 1)[-1]
    if series.endswith(TIMINGS):
        return "timing"
    if figure.startswith(RECORDS):
        return "lab's records"
    if records_kept and series.startswith("one-lab/") and figure in RUNNER_MEMORY:
        return "records kept"
    return None


def is_count(series: str) -> bool:
    """True for a series that counts things (descriptors, threads, processes, entries, rules):
    what a leak per cycle moves by a whole step every cycle, visible within a few cycles."""
    return not series.endswith((".rss_kib", *TIMINGS))


def growing(
    trends: Iterable[Trend], *, counts_only: bool = False, records_kept: bool = False
) -> list[Trend]:
    """The judged series that grow (what :func:`not_judged` names is reported, not judged);
    with ``counts_only``, only the series :func:`is_count` accepts."""
    return [
        t
        for t in trends
        if t.verdict == "growing"
        and not_judged(t.series, records_kept=records_kept) is None
        and (is_count(t.series) or not counts_only)
    ]


def table(trends: Iterable[Trend], *, records_kept: bool = False) -> str:
    """The judgement as a Markdown table: per series first, last, min, max, slope, verdict.
    A series that is not judged (:func:`not_judged`) says why beside the rule's verdict."""
    lines = [
        "| series | n | first | last | min | max | slope /cycle | growth | bound | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in trends:
        verdict = t.verdict
        why = not_judged(t.series, records_kept=records_kept)
        if why == "timing" and verdict == "growing":
            verdict = "rising (timing, not judged)"
        elif why is not None and verdict == "growing":
            verdict = f"growing ({why}, not judged)"
        lines.append(
            f"| {t.series} | {t.samples} | {_num(t.first)} | {_num(t.last)} | {_num(t.low)} | "
            f"{_num(t.high)} | {_num(t.slope, 4)} | {_num(t.growth)} | {_num(t.bound)} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def _num(value: float, digits: int = 3) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
