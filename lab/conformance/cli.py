"""``vrrp-lab conformance``: run the rows against implementations and print the matrix.

Exit codes: 0 when the matrix ran (a fail is a finding about an implementation, not an error
of the run; an inconclusive cell is told, not an error), 1 when the harness itself broke in
some cell (an ``error`` verdict, its traceback printed and in the JSON: the matrix is
incomplete), 2 on bad input (an unknown row or implementation).

Cells run side by side (``--jobs``), each in its own worker process and its own lab: a bench
spends its time waiting on VRRP timers, not computing, and every figure it reports comes from
the kernel's capture timestamps, so running cells side by side changes no verdict
(docs/conformance.md compares the figures of a serial and a parallel run).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab import linux
from lab.conformance.bench import Iut, iut, iut_names
from lab.conformance.checks import run_row
from lab.conformance.rows import ROWS, parse_rows
from lab.conformance.verdict import OUTCOMES, Verdict
from lab.errors import UsageError
from lab.routers import driver_class
from lab.versions import collect as collect_versions
from lab.versions import versions_line

_console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
_progress = Console(stderr=True, highlight=False, emoji=False)

#: How a cell shows each outcome.
CELL = {
    "pass": "pass",
    "fail": "[bold red]FAIL[/]",
    "n/a": "[dim]n/a[/]",
    "inconclusive": "[yellow]inconclusive[/]",
    "error": "[bold magenta]ERROR[/]",
}
#: The exit code of a matrix in which the harness broke (some verdict is ``error``).
EXIT_HARNESS_ERROR = 1


def add_conformance_command(sub: Any) -> None:
    """Register ``conformance`` on the ``vrrp-lab`` subparsers ``sub``."""
    p = sub.add_parser(
        "conformance",
        help=(
            "check VRRP implementations against RFC 5798/9568, their BFD against RFC "
            "5880/5881 (--rows bfd) and their trackers against keepalived.conf(5) (--rows "
            "trackers) (docs/architecture.md#conformance); print the matrix"
        ),
    )
    p.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        help="implementation column (repeatable or comma-separated); default: every "
        "one the lab knows: " + ", ".join(iut_names()),
    )
    p.add_argument(
        "--rows",
        metavar="IDS",
        help="rows to run, e.g. P01,T01 or B01,K03; 'vrrp', 'bfd', 'trackers' and 'all' name "
        "those sets (default: the VRRP rows)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=default_jobs(),
        metavar="N",
        help=f"cells run side by side, each in its own lab (default {default_jobs()}: one per "
        "CPU, at most 4; 1 runs them one after another)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write every verdict here")
    p.add_argument(
        "--pcap",
        type=Path,
        metavar="DIR",
        help="keep each check's capture in DIR (default: a temporary directory)",
    )
    p.set_defaults(func=cmd_conformance)


def not_runnable(column: Iut) -> str | None:
    """Why ``column`` cannot run here (its program is missing), or None."""
    cls = driver_class(column.driver)
    if shutil.which(cls.program) is None:
        return f"{cls.program} is not installed ({cls.install_hint or 'install it'})"
    return None


def default_jobs() -> int:
    """How many cells run side by side unless ``--jobs`` says otherwise: one per CPU, at most
    four (a bench mostly waits on timers; more would only crowd the scheduler)."""
    return max(1, min(4, os.cpu_count() or 1))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def run_matrix(
    columns: Sequence[Iut],
    rows: Sequence[str],
    pcap_dir: Path,
    progress: Callable[[Verdict], None] | None = None,
    jobs: int = 1,
) -> list[Verdict]:
    """Every row against every column; one verdict per cell, in column then row order.

    With ``jobs`` > 1 the cells run in that many worker processes (spawned, so each starts
    clean: no lab, thread or socket of this process is inherited), and ``progress`` hears of
    each verdict as it comes in. The columns' drivers must be the lab's own (a driver
    registered at run time, like the tests' stand-ins, exists only in this process): with
    ``jobs`` 1 any registered driver runs.
    """
    verdicts: dict[tuple[str, str], Verdict] = {}

    def record(verdict: Verdict) -> None:
        verdicts[verdict.iut, verdict.row] = verdict
        if progress is not None:
            progress(verdict)

    todo: list[tuple[Iut, str]] = []
    for column in columns:
        missing = not_runnable(column)
        for row in rows:
            if missing:
                record(Verdict(row, column.name, "n/a", f"not run: {missing}"))
            else:
                todo.append((column, row))
    if jobs <= 1 or len(todo) <= 1:
        for column, row in todo:
            record(run_row(column, row, pcap_dir))
    else:
        _run_in_workers(todo, pcap_dir, min(jobs, len(todo)), record)
    return [verdicts[column.name, row] for column in columns for row in rows]


def _run_in_workers(
    todo: Sequence[tuple[Iut, str]],
    pcap_dir: Path,
    jobs: int,
    record: Callable[[Verdict], None],
) -> None:
    """Run the cells of ``todo`` in ``jobs`` worker processes, recording each verdict as it
    arrives.

    On Ctrl-C the cells not yet started are dropped and the running ones end normally, each
    bench tearing its lab down, before the interrupt goes on; a second Ctrl-C stops waiting.
    Should this process die without a word (SIGKILL), the workers die with it, and their labs
    with them, as every lab dies with the process that holds it.
    """
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=spawn, initializer=_worker_start, initargs=(os.getpid(),)
    ) as pool:
        pending: set[Future[Verdict]] = {
            pool.submit(run_row, column, row, pcap_dir) for column, row in todo
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future.result())
        except KeyboardInterrupt:
            running = sum(not future.cancel() for future in pending)
            _progress.print(f"interrupted: waiting for {running} running cell(s) to tear down")
            raise


def _worker_start(runner: int) -> None:
    """Each worker's first act: die with the runner, and leave Ctrl-C to it (the runner
    drops the queued cells and lets the running ones end cleanly); then weigh, as a
    measuring process, as much as each lab process it measures (:func:`lab.linux.own_session`)."""
    linux.set_parent_death_signal()
    if os.getppid() != runner:  # the runner died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    linux.own_session()


def summary(verdicts: Sequence[Verdict], column: str) -> str:
    """One line: counts per outcome (inconclusive and error ones when there are any), the
    MUST rows that fail, and the rows on which the harness broke."""
    mine = [v for v in verdicts if v.iut == column]
    counts = {o: sum(v.outcome == o for v in mine) for o in OUTCOMES}
    must = [v.row for v in mine if v.outcome == "fail" and ROWS[v.row].level == "MUST"]
    should = [v.row for v in mine if v.outcome == "fail" and ROWS[v.row].level == "SHOULD"]
    broken = [v.row for v in mine if v.outcome == "error"]
    took = sum(v.seconds for v in mine)
    text = (
        f"{column}: {counts['pass']} pass, {counts['fail']} fail, {counts['n/a']} n/a"
        + (f", {counts['inconclusive']} inconclusive" if counts["inconclusive"] else "")
        + (f", {counts['error']} error" if counts["error"] else "")
        + f" of {len(mine)} rows in {took:.0f}s"
    )
    worst = max((v.stalls.get("worst_ms", 0.0) for v in mine), default=0.0)
    if counts["inconclusive"]:
        text += f" (host stalls up to {worst:.0f} ms spoiled their timing)"
    if broken:
        text += f"; the harness broke on: {', '.join(broken)}"
    if must:
        text += f"; MUST rows failed: {', '.join(must)}"
    if should:
        text += f"; SHOULD rows failed: {', '.join(should)}"
    return text


def cell(verdict: Verdict) -> str:
    """How the matrix shows a verdict: its outcome, and each family's where they differ
    (``FAIL (v4 FAIL, v6 pass)``), so a family-specific departure is seen at a glance."""
    text = CELL[verdict.outcome]
    outcomes = verdict.families
    if len(set(outcomes.values())) > 1:
        text += (
            " ("
            + ", ".join(
                f"v{family.removeprefix('IPv')} {CELL[outcome]}"
                for family, outcome in outcomes.items()
            )
            + ")"
        )
    return text


def matrix_title(rows: Sequence[str]) -> str:
    """What the matrix of ``rows`` checks against: the RFCs (and keepalived's manual) of the
    row groups it holds, and the families they are asked in."""
    parts = {
        "VRRP (RFC 5798 / 9568)": any(not ROWS[r].bfd and not ROWS[r].tracker for r in rows),
        "BFD (RFC 5880 / 5881)": any(ROWS[r].bfd for r in rows),
        "trackers (keepalived.conf(5))": any(ROWS[r].tracker for r in rows),
    }
    held = [name for name, present in parts.items() if present]
    families = sorted({family for r in rows for family in ROWS[r].families})
    spelled = " and ".join(f"IPv{family}" for family in families)
    return f"Conformance: {', '.join(held)}, {spelled}"


def matrix_table(verdicts: Sequence[Verdict], columns: Sequence[str], rows: Sequence[str]) -> Table:
    """The matrix: a row per conformance row, a column per implementation."""
    table = Table(title=matrix_title(rows), title_justify="left")
    table.add_column("row")
    table.add_column("level")
    table.add_column("rule")
    for column in columns:
        table.add_column(column)
    cells = {(v.row, v.iut): v for v in verdicts}
    for row in rows:
        spec = ROWS[row]
        table.add_row(
            row,
            spec.level,
            spec.title,
            *(cell(cells[row, c]) if (row, c) in cells else "-" for c in columns),
        )
    return table


def _columns(values: Sequence[str] | None) -> list[Iut]:
    names = [n.strip() for v in (values or []) for n in v.split(",") if n.strip()]
    if not names:
        names = iut_names()
    return [iut(name) for name in dict.fromkeys(names)]


def cmd_conformance(args: argparse.Namespace) -> int:
    """Run the matrix, print it with a summary per implementation, optionally write JSON."""
    try:
        rows = parse_rows(args.rows)
    except ValueError as exc:
        raise UsageError(f"--rows: {exc}") from None
    columns = _columns(args.impl)
    pcap_dir = args.pcap or Path(tempfile.mkdtemp(prefix="vrrp-conformance-"))
    pcap_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    total = len(rows) * len(columns)
    done = [0]

    def progress(v: Verdict) -> None:
        done[0] += 1
        _progress.print(
            f"[{done[0]}/{total}] {v.iut} {v.row}: {CELL[v.outcome]} "
            f"({v.seconds:.1f}s) {escape(v.reason)}",
            soft_wrap=True,
        )

    verdicts = run_matrix(columns, rows, pcap_dir, progress, jobs=args.jobs)
    names = [c.name for c in columns]
    _console.print(matrix_table(verdicts, names, rows))
    for v in verdicts:
        if v.outcome != "pass":
            _console.print(
                f"  {v.row} {v.iut}: {v.outcome}: {v.reason}", markup=False, soft_wrap=True
            )
        if v.outcome == "error":
            for key, text in v.tracebacks.items():
                _console.print(f"    {key}:", markup=False)
                _console.print(_indent(text, "      "), markup=False, soft_wrap=True)
    for name in names:
        _console.print(summary(verdicts, name), markup=False)
    _console.print(f"captures in {pcap_dir}; {time.monotonic() - began:.0f}s in all", markup=False)
    _console.print(f"versions: {versions_line(collect_versions())}", markup=False, soft_wrap=True)
    if args.json is not None:
        report = {
            "rows": {
                r: {
                    "title": ROWS[r].title,
                    "section": ROWS[r].section,
                    "level": ROWS[r].level,
                    "families": list(ROWS[r].families),
                }
                for r in rows
            },
            "implementations": names,
            "verdicts": [v.as_dict() for v in verdicts],
            "summary": {name: summary(verdicts, name) for name in names},
            "versions": collect_versions(),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return exit_code(verdicts)


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """The command's exit code once the matrix ran: :data:`EXIT_HARNESS_ERROR` if the harness
    broke in any cell, else 0 (fails, n/a and inconclusive cells are findings of the run)."""
    return EXIT_HARNESS_ERROR if any(v.outcome == "error" for v in verdicts) else 0


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())
