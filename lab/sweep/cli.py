"""``vrrp-lab bench``: run a sweep, summarise it, plot it; ``vrrp-lab bench compare OLD NEW``.

::

    vrrp-lab bench seed-conclusion --out runs/seed --jobs 2
    vrrp-lab bench --scenario short-timers --impl bundled,keepalived --advert-int 0.05,0.1 \\
        --fault stop,host-down --trials 3 --out runs/quick
    vrrp-lab bench seed-conclusion --out runs/seed --cluster tcp://10.0.0.5:8786
    vrrp-lab bench compare runs/before runs/after

Exit codes: 0 every cell's median detection agrees with the RFC (inconclusive cells are told,
not failed), 1 some cell disagrees or errored (``compare``: some median moved), 2 bad input,
3 the machine or cluster lacks something (dask, a scheduler, root workers), 130 interrupted
(what finished is kept: ``--resume`` completes it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from lab.errors import EnvironmentMissing, UsageError
from lab.sweep.record import TrialRecord
from lab.sweep.spec import HOLD

_console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
_progress = Console(stderr=True, highlight=False, emoji=False)

#: The quick-sweep flags, each an axis of ``axes:`` in a sweep file, comma-separated values.
_AXIS_FLAGS = {
    "impl": str,
    "advert_int": float,
    "priority": int,
    "preempt": None,  # true/false
    "fault": str,
    "profile": str,
    "load": str,
    "bfd": str,  # seconds, or none: the spec reads both (lab.sweep.spec.Axes.bfd)
}


def add_bench_command(sub: Any) -> None:
    """Register ``bench`` on the ``vrrp-lab`` subparsers ``sub``."""
    from lab.conformance.cli import default_jobs  # for the help text

    p = sub.add_parser(
        "bench",
        help="sweep failover parameters, trials per cell, summaries and plots "
        "(`bench compare OLD NEW` gates on a regression)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "sweep",
        nargs="*",
        metavar="SWEEP | compare OLD NEW",
        help="a sweep file or bundled sweep name ("
        + ", ".join(_bundled_names())
        + "); or `compare OLD NEW`, two sweep directories",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where results, summary and plots go")
    p.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        metavar="N",
        help=f"trials run side by side, each in its own lab (default {default_jobs()}; "
        "with --cluster, one per worker thread)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the trials on the dask.distributed scheduler at ADDRESS "
        "(tcp://HOST:8786; root workers with vrrp-lab installed; needs vrrp-lab[cluster])",
    )
    p.add_argument("--trials", type=_positive_int, metavar="N", help="trials per cell")
    p.add_argument(
        "--hold",
        type=_positive_seconds,
        metavar="SECONDS",
        help="how long a `--fault hold` trial leaves the steady pair alone (default 60)",
    )
    p.add_argument("--resume", action="store_true", help="run only the trials DIR lacks")
    p.add_argument("--name", help="the sweep's name (quick sweeps; default: quick)")
    p.add_argument("--scenario", help="the base scenario (default: the sweep's, or short-timers)")
    for axis in _AXIS_FLAGS:
        p.add_argument(
            f"--{axis.replace('_', '-')}",
            dest=f"axis_{axis}",
            metavar="A,B",
            help=f"values of the {axis} axis, comma-separated",
        )
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.add_argument("--schema", action="store_true", help="print the sweep file JSON Schema")
    p.set_defaults(func=cmd_bench)


def _bundled_names() -> list[str]:
    from lab.sweep.spec import bundled_sweeps

    return [p.stem for p in bundled_sweeps()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    """Dispatch: the schema, a comparison, or a sweep."""
    if args.schema:
        from lab.sweep.spec import json_schema_text

        sys.stdout.write(json_schema_text())
        return 0
    if args.sweep and args.sweep[0] == "compare":
        if len(args.sweep) != 3:
            raise UsageError("bench compare takes two sweep directories: compare OLD NEW")
        return cmd_compare(Path(args.sweep[1]), Path(args.sweep[2]))
    if len(args.sweep) > 1:
        raise UsageError(f"bench takes one sweep, got {len(args.sweep)}: {' '.join(args.sweep)}")
    if args.out is None:
        raise UsageError("bench needs --out DIR: where results.jsonl, the summary and plots go")
    sweep = build_sweep(args)
    if args.cluster is None:
        from lab.conformance.cli import default_jobs

        jobs = args.jobs or default_jobs()
        return run_sweep(sweep, args.out, jobs=jobs, resume=args.resume, plots=not args.no_plots)
    from lab import versions
    from lab.sweep.cluster import ClusterLauncher

    _progress.print(f"connecting to the dask scheduler at {escape(args.cluster)}")
    launcher = ClusterLauncher(args.cluster, local_versions=versions.collect())
    try:
        for warning in launcher.warnings:
            _progress.print(f"[yellow]warning:[/] {escape(warning)}")
        return run_sweep(
            sweep,
            args.out,
            jobs=args.jobs or launcher.slots,
            resume=args.resume,
            plots=not args.no_plots,
            launcher=launcher,
            where=f"on {launcher.slots} worker thread(s) at {args.cluster}",
        )
    finally:
        launcher.close()


def build_sweep(args: argparse.Namespace) -> Any:
    """The sweep of a file, or of the quick-sweep flags; flags given with a file override
    the file's axes, trials and base scenario."""
    from pydantic import ValidationError

    from lab.scenario import first_error
    from lab.sweep.spec import SweepSpec, load_sweep, resolve_sweep, sweep_from_spec

    data: dict[str, Any]
    base_dir: Path | None = None
    if args.sweep:
        path = resolve_sweep(args.sweep[0])
        sweep = load_sweep(path)
        data = sweep.spec.model_dump(mode="json", exclude_none=True)
        source, base_dir = sweep.source, sweep.base_dir
    else:
        data, source = {"name": args.name or "quick"}, "the command line"
    overrides = {axis: _axis_values(args, axis) for axis in _AXIS_FLAGS}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not args.sweep and not overrides:
        raise UsageError(
            "bench needs a sweep (a file, or one of: "
            + ", ".join(_bundled_names())
            + ") or axis flags such as --impl keepalived --advert-int 0.1,0.05"
        )
    data.setdefault("axes", {}).update(overrides)
    if args.trials is not None:
        data["trials"] = args.trials
    if args.hold is not None:
        data["hold"] = args.hold
    if args.scenario is not None:
        data["scenario"] = args.scenario
    if args.name is not None:
        data["name"] = args.name
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc, source, None) from None
    return sweep_from_spec(spec, source, base_dir)


def _axis_values(args: argparse.Namespace, axis: str) -> list[Any] | None:
    text = getattr(args, f"axis_{axis}")
    if text is None:
        return None
    flag = f"--{axis.replace('_', '-')}"
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag}: give at least one value, comma-separated")
    kind = _AXIS_FLAGS[axis]
    out: list[Any] = []
    for item in items:
        if kind is None:
            if item.lower() not in ("true", "false", "yes", "no"):
                raise UsageError(f"{flag}: {item!r} is not true or false")
            out.append(item.lower() in ("true", "yes"))
            continue
        try:
            out.append(kind(item))
        except ValueError:
            raise UsageError(f"{flag}: {item!r} is not a {kind.__name__}") from None
    return out


def run_sweep(
    sweep: Any,
    out: Path,
    *,
    jobs: int,
    resume: bool,
    plots: bool,
    launcher: Any = None,
    where: str = "here",
) -> int:
    """Run ``sweep``'s missing trials into ``out`` (on this host, or with ``launcher``'s
    cluster), then write its summary and plots."""
    from lab.sweep.executor import Executor, Interrupted
    from lab.sweep.results import Results

    with Results(out, sweep.header(), resume=resume) as results:
        executor = Executor(sweep, results, jobs=jobs, launcher=launcher)
        todo = executor.todo()
        total = len(sweep.trials())
        _progress.print(
            f"sweep [bold]{escape(sweep.name)}[/]: {len(sweep.cells)} cells × "
            f"{sweep.spec.trials} trials = {total}"
            + (f", {total - len(todo)} already recorded" if total != len(todo) else "")
            + f"; {jobs} at a time {escape(where)}; results in {results.path}"
        )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
        )
        with RichProgress(*columns, console=_progress, transient=True) as bar:
            task = bar.add_task("trials", total=total, completed=total - len(todo), eta="")

            def on_record(record: TrialRecord, progress: Any) -> None:
                eta = progress.eta(jobs)
                left = f"~{_duration(eta)} left" if eta is not None else ""
                bar.update(task, advance=1, eta=left)
                bar.console.print(_trial_line(record, progress, left), soft_wrap=True)

            def on_interrupt(running: int) -> None:
                bar.console.print(
                    f"interrupted: finishing {running} running trial(s) "
                    "(Ctrl-C again abandons them; --resume runs them later)"
                )

            executor.on_record, executor.on_interrupt = on_record, on_interrupt
            try:
                executor.run()
            except Interrupted as exc:
                code = 130
                _progress.print(f"{exc}; {len(results.records)} trial(s) recorded in {out}")
            else:
                code = 0
        records = list(results.records)
    summary = report(sweep.name, out, records, plots=plots)
    if code == 130:
        _progress.print(f"resume with: vrrp-lab bench ... --out {out} --resume")
        return code
    return 0 if all(c["verdict"] in ("pass", "inconclusive") for c in summary["cells"]) else 1


def report(name: str, out: Path, records: list[TrialRecord], *, plots: bool) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md`` and the plots of ``records``; print the table."""
    from lab.sweep.summary import markdown, write_summary

    summary = write_summary(out, name, records)
    _console.print(markdown(summary), markup=False, soft_wrap=True)
    if plots and records:
        from lab.sweep.plots import write_plots

        try:
            written = write_plots(out, records)
        except EnvironmentMissing as exc:
            _progress.print(f"no plots: {exc}")
        else:
            _console.print("plots: " + ", ".join(p.name for p in written), markup=False)
    _console.print(f"summary: {out / 'summary.md'}, {out / 'summary.json'}", markup=False)
    return summary


def _trial_line(record: TrialRecord, progress: Any, left: str = "") -> str:
    # The estimate is on every line too, not only on the bar: a log (CI, `| tee`) has no bar.
    n = progress.skipped + progress.done
    head = f"[{n}/{progress.total}{', ' + left if left else ''}] "
    head += f"{escape(record.cell.key)} #{record.trial}"
    if record.outcome == "error":
        return f"{head}: [bold magenta]error[/] {escape(record.error or '')}"
    if record.cell.fault == HOLD:
        spurious = record.spurious_transitions
        steady = f"[red]{spurious} spurious transition(s)[/]" if spurious else "[green]steady[/]"
        worst = record.stalls.get("worst_ms")
        return f"{head}: {steady}, {record.lost_probes} probe(s) lost" + (
            f", host stalls up to {worst:.0f} ms" if worst else ""
        )
    rfc = _rfc(record)
    text = f"{head}: detection {_ms(record.detection_ms)} (RFC {rfc})"
    text += f", outage {_ms(record.outage_ms)}"
    if record.outcome == "inconclusive":
        text += " [yellow]inconclusive[/] (a host stall longer than the tolerance)"
    elif record.agrees_with_theory is False:
        text += " [red]off the RFC[/]"
    if record.detection_ms is None and record.failed_steps:
        text += f" ({escape(record.failed_steps[0])})"
    return text


def _rfc(record: TrialRecord) -> str:
    if record.theory_ms is None:
        return "?"
    tol = f" ± {record.tolerance_ms:g}" if record.tolerance_ms is not None else ""
    if record.theory_low_ms is None:
        return f"{record.theory_ms:.1f}{tol} ms"
    return f"{record.theory_low_ms:.1f}–{record.theory_ms:.1f}{tol} ms"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_compare(old: Path, new: Path) -> int:
    """Flag the cells whose median moved beyond its 95 % interval; exit 1 if any did."""
    from lab.sweep.compare import compare, load_summary, unmatched
    from lab.sweep.compare import report as compare_report

    before, after = load_summary(old), load_summary(new)
    moved = compare(before, after)
    _console.print(compare_report(moved, unmatched(before, after)), markup=False, soft_wrap=True)
    return 1 if moved else 0
