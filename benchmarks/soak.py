"""Soak (issue 17): hundreds of failovers in a row, does anything in the lab grow?

    sudo .venv/bin/python benchmarks/soak.py [--cycles 500] [--fresh-cycles N]
        [--mode one-lab|fresh-labs|both] [--impl keepalived --impl bundled]
        [--out docs/bench/soak/soak.jsonl] [--resume] [--every 25] [--minutes M]
        [--forget-records]

Each cycle is one failover on the soak scenario (:func:`lab.soak.soak_scenario`: the
short-timer routers, advert 0.1 s, on the neutron-ovs-hybrid SDN profile): the master holds
the VIP and the service is steady, a fault hits the master (stop, crash, host-down, freeze,
partition, link-flap in turn), the backup takes over within three of its Master_Down_Intervals,
the fault is undone, the pair settles. Implementations alternate cycle by cycle. ``one-lab``
keeps one lab per implementation for every cycle; ``fresh-labs`` builds and tears down a lab
per cycle. After each cycle the figures of every long-lived process (by role), the fabric's nft
tables, FDB and the nodes' neighbour tables are appended to ``--out`` as a JSON line, so a run
that is interrupted continues with ``--resume``. ``--minutes`` starts no new cycle after that
long (the run then ends as if done; ``--resume`` goes on from there).

A lab keeps records of the run for its report (the SDN controller's events, the fault history,
the routers' transitions and saved logs): their sizes are series too (``records.*``, shown,
never judged), and in one long-lived lab they grow with every cycle, by design, and the
runner's memory with them. ``--forget-records`` empties them after each one-lab cycle's lab
sample (:func:`lab.soak.forget_records`; a soak makes no report), before the runner is
sampled: the runner's memory is judged in such a run, and shown but not judged in a one-lab
run that keeps the records (it holds them).

At the end: a table per series (first, last, min, max, slope, verdict of
:func:`lab.soak.judge`) on stdout and in ``summary.md`` beside ``--out``, a PNG per mode of
every series against the cycle, and the root namespace compared with before the run (for an
``--out`` other than ``soak.jsonl``, the summary and plots are named after it:
``<stem>-summary.md``, ``<stem>-<mode>.png``). Exits 1 when a judged series grows
(:func:`lab.soak.not_judged` names those that are not) or the host was left changed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import linux, soak
from lab.host_state import differences, snapshot

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "bench" / "soak" / "soak.jsonl"
#: A fixed colour per line, so that the runner and each implementation look the same in
#: every panel and every plot.
COLOURS = {"runner": "black", "keepalived": "tab:orange", "bundled": "tab:blue"}


def run_mode(
    records: soak.Records,
    mode: soak.Mode,
    impls: Sequence[str],
    total: int,
    every: int,
    stop_at: float,
    *,
    forget_records: bool = False,
) -> int:
    """Run ``mode``'s cycles not yet recorded, up to ``total``; return how many ran now.

    A progress line every ``every`` cycles (and at the last) with elapsed time and ETA. No
    cycle starts after the monotonic time ``stop_at``.
    """
    first = records.next_cycle(mode)
    if first >= total:
        print(f"{mode}: {total} cycles already recorded in {records.path}")
        return 0
    began = time.monotonic()
    ran = 0

    def cycles() -> Iterable[int]:
        for n in range(first, total):
            if time.monotonic() >= stop_at:
                print(f"{mode}: --minutes reached; stopping before cycle {n}")
                return
            yield n

    for sample in soak.run_cycles(mode, impls, cycles(), forget_records=forget_records):
        records.append(sample)
        ran += 1
        if ran % every == 0 or sample.cycle == total - 1:
            elapsed = time.monotonic() - began
            eta = elapsed / ran * (total - sample.cycle - 1)
            print(
                f"{mode}: cycle {sample.cycle + 1}/{total} ({sample.impl} {sample.fault}, "
                f"detection {_ms(sample.detection)}, outage {_ms(sample.outage)}); "
                f"elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min",
                flush=True,
            )
    return ran


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f} ms"


def plot(
    samples: Sequence[soak.Sample], out_dir: Path, prefix: str = "", title: str = ""
) -> list[Path]:
    """A PNG per mode (``<prefix><mode>.png`` in ``out_dir``): a panel per figure, a line per
    implementation (one line for the runner's own figures), against the cycle.

    Each line is drawn as its change from its first value: the two implementations' levels
    differ (a Python daemon against a C one), and on a shared axis the larger hides the
    other's growth; a flat line at zero is what the soak hopes to see."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    series = soak.series_of(samples)
    for mode in soak.MODES:
        panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
        for name, points in series.items():
            parts = name.split("/")
            if parts[0] != mode:
                continue
            figure, label = (parts[1], "runner") if len(parts) == 2 else (parts[2], parts[1])
            panels.setdefault(figure, {})[label] = points
        if not panels:
            continue
        cols = 6
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows), squeeze=False)
        for ax, (figure, lines) in zip(axes.flat, sorted(panels.items()), strict=False):
            for label, points in sorted(lines.items()):
                first = points[0][1]
                ax.plot(
                    [c for c, _ in points],
                    [v - first for _, v in points],
                    lw=0.8,
                    label=label,
                    color=COLOURS.get(label),
                )
            ax.set_title(f"{figure} (change)", fontsize=8)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        legend = {}
        for ax in axes.flat:
            legend |= dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        fig.legend(legend.values(), legend.keys(), loc="upper right", fontsize=8)
        cycles = max(s.cycle for s in samples if s.mode == mode) + 1
        fig.suptitle(f"soak, {mode}{title}: every figure against the cycle ({cycles} cycles)")
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        path = out_dir / f"{prefix}{mode}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def main() -> int:
    """Run (or resume) the soak, then judge, tabulate and plot it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500, help="cycles per mode (500)")
    parser.add_argument(
        "--fresh-cycles", type=int, help="cycles of the fresh-labs mode (default: --cycles)"
    )
    parser.add_argument("--mode", choices=[*soak.MODES, "both"], default="both")
    parser.add_argument(
        "--impl",
        action="append",
        choices=soak.IMPLS,
        help="implementation, repeatable; they alternate (default: keepalived and bundled)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON-lines records")
    parser.add_argument("--resume", action="store_true", help="continue the records in --out")
    parser.add_argument("--every", type=int, default=25, help="a progress line per N cycles")
    parser.add_argument("--minutes", type=float, help="start no cycle after this many minutes")
    parser.add_argument(
        "--forget-records",
        action="store_true",
        help="one-lab: empty the labs' records of the run after each cycle's lab sample, "
        "then judge the runner's memory (lab.soak.forget_records)",
    )
    args = parser.parse_args()
    # Before any thread: the runner's allocator settings (lab.linux.steady_malloc says why).
    linux.steady_malloc()
    impls = args.impl or list(soak.IMPLS)
    soak.check_impls(impls)
    fresh = args.cycles if args.fresh_cycles is None else args.fresh_cycles
    totals = {"one-lab": args.cycles, "fresh-labs": fresh}
    modes = soak.MODES if args.mode == "both" else (args.mode,)
    stop_at = time.monotonic() + (args.minutes * 60 if args.minutes else math.inf)

    before = snapshot()
    head = soak.header(impls, soak.FAULTS, forget_records=args.forget_records)
    records = soak.Records(args.out, head, resume=args.resume)
    began = time.monotonic()
    try:
        for mode in modes:
            ran = run_mode(
                records,
                mode,
                impls,
                totals[mode],
                args.every,
                stop_at,
                forget_records=args.forget_records,
            )
            print(f"{mode}: {ran} cycles run now, {time.monotonic() - began:.0f} s so far")
    finally:
        records.close()
    left = differences(before, snapshot())

    samples = records.samples()
    trends = soak.judge_all(samples)
    kept = not args.forget_records
    text = soak.table(trends, records_kept=kept)
    counts = {mode: sum(1 for s in samples if s.mode == mode) for mode in soak.MODES}
    print(text)
    prefix = "" if args.out.stem == DEFAULT_OUT.stem else f"{args.out.stem}-"
    summary = args.out.parent / f"{prefix}summary.md"
    records_note = "forgotten after each cycle" if args.forget_records else "kept"
    summary.write_text(
        f"cycles recorded: {counts}; implementations {', '.join(impls)}; "
        f"faults {', '.join(soak.FAULTS)}; the one-lab labs' records {records_note}\n\n"
        f"{text}\n"
    )
    title = ", records forgotten" if args.forget_records else ""
    for path in plot(samples, args.out.parent, prefix, title):
        print(f"plot: {path}")
    bad = soak.growing(trends, records_kept=kept)
    for trend in bad:
        print(
            f"GROWING: {trend.series}: {trend.growth:+.4g} over the run (bound {trend.bound:.4g})"
        )
    for line in left:
        print(f"HOST CHANGED: {line}")
    print(f"cycles: {counts}; growing series: {len(bad)}; host differences: {len(left)}")
    return 1 if bad or left else 0


if __name__ == "__main__":
    sys.exit(main())
