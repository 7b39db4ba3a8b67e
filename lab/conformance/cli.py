"""``vrrp-lab conformance``: run the rows against implementations and print the matrix.

Exit codes: 0 when the matrix ran (a fail is a finding about an implementation, not an error
of the run), 2 on bad input (an unknown row or implementation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.conformance.bench import Iut, iut, iut_names
from lab.conformance.checks import run_row
from lab.conformance.rows import ROWS, parse_rows
from lab.conformance.verdict import Verdict
from lab.errors import UsageError
from lab.routers import driver_class

_console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
_progress = Console(stderr=True, highlight=False)

#: How a cell shows each outcome.
CELL = {"pass": "pass", "fail": "[bold red]FAIL[/]", "n/a": "[dim]n/a[/]"}


def add_conformance_command(sub: Any) -> None:
    """Register ``conformance`` on the ``vrrp-lab`` subparsers ``sub``."""
    p = sub.add_parser(
        "conformance",
        help="check VRRP implementations against RFC 5798/9568 (DESIGN §8) and print the matrix",
    )
    p.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        help="implementation column (repeatable or comma-separated); default: every "
        "one the lab knows: " + ", ".join(iut_names()),
    )
    p.add_argument("--rows", metavar="IDS", help="rows to run, e.g. P01,T01 (default: all)")
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


def run_matrix(
    columns: Sequence[Iut],
    rows: Sequence[str],
    pcap_dir: Path,
    progress: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Every row against every column, in that order; one verdict per cell."""
    out = []
    for column in columns:
        missing = not_runnable(column)
        for row in rows:
            if missing:
                verdict = Verdict(row, column.name, "n/a", f"not run: {missing}")
            else:
                verdict = run_row(column, row, pcap_dir)
            out.append(verdict)
            if progress is not None:
                progress(verdict)
    return out


def summary(verdicts: Sequence[Verdict], column: str) -> str:
    """One line: counts per outcome, and the MUST rows that fail."""
    mine = [v for v in verdicts if v.iut == column]
    counts = {o: sum(v.outcome == o for v in mine) for o in ("pass", "fail", "n/a")}
    must = [v.row for v in mine if v.outcome == "fail" and ROWS[v.row].level == "MUST"]
    should = [v.row for v in mine if v.outcome == "fail" and ROWS[v.row].level == "SHOULD"]
    took = sum(v.seconds for v in mine)
    text = (
        f"{column}: {counts['pass']} pass, {counts['fail']} fail, {counts['n/a']} n/a "
        f"of {len(mine)} rows in {took:.0f}s"
    )
    if must:
        text += f"; MUST rows failed: {', '.join(must)}"
    if should:
        text += f"; SHOULD rows failed: {', '.join(should)}"
    return text


def matrix_table(verdicts: Sequence[Verdict], columns: Sequence[str], rows: Sequence[str]) -> Table:
    """The matrix: a row per conformance row, a column per implementation."""
    table = Table(title="VRRP conformance (RFC 5798 / RFC 9568), IPv4", title_justify="left")
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
            *(CELL[cells[row, c].outcome] if (row, c) in cells else "-" for c in columns),
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

    verdicts = run_matrix(columns, rows, pcap_dir, progress)
    names = [c.name for c in columns]
    _console.print(matrix_table(verdicts, names, rows))
    for v in verdicts:
        if v.outcome != "pass":
            _console.print(
                f"  {v.row} {v.iut}: {v.outcome}: {v.reason}", markup=False, soft_wrap=True
            )
    for name in names:
        _console.print(summary(verdicts, name), markup=False)
    _console.print(f"captures in {pcap_dir}; {time.monotonic() - began:.0f}s in all", markup=False)
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
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0
