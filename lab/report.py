"""Reports of a run: a readable console report, the JSON report (DESIGN §9) and PNG timelines."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lab.metrics import Failover
from lab.runner import RunReport, StepResult
from lab.versions import versions_line


def step_line(result: StepResult, started: float) -> str:
    """One progress line for a finished step."""
    mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
    done = (result.at + result.took - started) * 1000
    return f"{mark} {done:>8.0f} ms  {result.name}  [dim]{result.detail}[/dim]"


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "—" if value is None else f"{value:.1f}{unit}"


def failover_timeline(f: Failover) -> list[tuple[float, str]]:
    """The failover's events, in ms after the fault."""

    def rel(t: float | None) -> float | None:
        return None if t is None else (t - f.at) * 1000

    events: list[tuple[float | None, str]] = [
        (0.0, f"fault {f.fault.replace('_', '-')} on {f.node}"),
        (rel(f.last_served_before), f"last probe served before the outage (by {f.old_master})"),
        (rel(f.last_advert_of_old_master), f"last advert of the old master {f.old_master}"),
        (rel(f.first_advert_after), f"first advert of the new master {f.new_master}"),
        (rel(f.first_garp_after), f"first of {f.garps_after} GARPs from {f.new_master}"),
        (
            rel(f.sdn_answer_after),
            f"SDN controller answers ARP for the VIP from its cache: {f.sdn_answer_mac}",
        ),
        (
            rel(f.neighbour_change_after),
            f"observer's neighbour entry for the VIP: {f.neighbour_mac_after}",
        ),
        (rel(f.first_served_after), f"first probe served after the outage (by {f.new_master})"),
    ]
    if f.duplicated_vip:
        events.append(
            (
                rel(f.first_advert_after) if f.first_advert_after else 0.0,
                f"split brain: {' and '.join(f.vip_holders_at_end)} both hold the VIP "
                "(a duplicated VMAC when use_vmac)",
            )
        )
    for lo, hi in f.split_brain:
        events.append(
            (
                rel(lo),
                f"split brain begins (two sources advertise), lasts {(hi - lo) * 1000:.0f} ms",
            )
        )
    return sorted(((t, text) for t, text in events if t is not None), key=lambda e: e[0])


def _split_brain_cell(f: Failover) -> str:
    parts = [f"two advertisers {(b - a) * 1000:.0f} ms" for a, b in f.split_brain]
    if f.duplicated_vip:
        parts.append(f"VIP on {' and '.join(f.vip_holders_at_end)}")
    return "yes: " + ", ".join(parts) if parts else "no"


def print_report(report: RunReport, console: Console) -> None:
    """The readable report: failover timelines, the metrics table, and the verdict."""
    for i, f in enumerate(report.failovers, 1):
        console.print(f"\n[bold]failover {i}: {f.fault.replace('_', '-')} {f.node}[/bold]")
        for t, text in failover_timeline(f):
            console.print(f"  {t:>+9.1f} ms  {text}")
    if report.failovers:
        table = Table(title="failovers (DESIGN §7 metrics)", title_justify="left")
        for column in (
            "fault",
            "old → new master",
            "outage",
            "detection",
            "RFC theory",
            "lost probes",
            "stale ARP",
            "split brain",
        ):
            table.add_column(column)
        for f in report.failovers:
            table.add_row(
                f"{f.fault.replace('_', '-')} {f.node}",
                f"{f.old_master} → {f.new_master}",
                _fmt(f.outage_ms)
                if f.outage_ms is not None or f.last_served_before is None
                else "not restored",
                _fmt(f.detection_ms) + ("" if f.detection_source == "capture" else " (notify)"),
                (
                    f"{f.theory_min_ms:.1f}–{f.theory_ms:.1f} ms"
                    if f.theory_min_ms is not None and f.theory_ms is not None
                    else _fmt(f.theory_ms)
                ),
                str(f.lost_probes),
                _fmt(f.stale_arp_ms),
                _split_brain_cell(f),
            )
        console.print(table)
    if report.split_brain:
        t0 = report.started
        spans = ", ".join(
            f"{(lo - t0) * 1000:.0f}–{(hi - t0) * 1000:.0f} ms" for lo, hi in report.split_brain
        )
        console.print(f"[yellow]split brain[/yellow]: two routers advertised one VRID at {spans}")
    failed = [s for s in report.steps if not s.ok]
    verdict = (
        "[green]every expectation held[/green]"
        if not failed
        else (f"[red]{len(failed)} step(s) failed[/red]: " + "; ".join(s.name for s in failed))
    )
    console.print(
        f"\n{report.scenario} with {report.impl}: {verdict} "
        f"(lab built in {report.build_ms:.0f} ms, run {report.wall_seconds:.1f} s)"
    )
    console.print(f"versions: {versions_line(report.versions)}", markup=False, soft_wrap=True)
    if report.pcap:
        console.print(f"capture: {report.pcap}")
    for plot in report.plots:
        console.print(f"plot: {plot}")


def write_json(report: RunReport, path: Path) -> None:
    """Write the JSON report atomically (a partial file is never left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    tmp.replace(path)


def plot_failovers(report: RunReport, probes: list, directory: Path) -> list[Path]:
    """One PNG per failover: probes served per node over time, with the events marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(report.failovers, 1):
        lo = f.at - 0.5
        hi = (f.first_served_after or f.at) + 0.5
        fig, ax = plt.subplots(figsize=(10, 3.6))
        nodes = sorted({p.responder for p in probes if p.responder})
        for row, node in enumerate(nodes):
            xs = [
                (p.sent - f.at) * 1000 for p in probes if p.responder == node and lo <= p.sent <= hi
            ]
            ax.scatter(xs, [row] * len(xs), s=2, label=f"served by {node}")
        lost = [
            (p.sent - f.at) * 1000 for p in probes if p.responder is None and lo <= p.sent <= hi
        ]
        ax.scatter(lost, [-1] * len(lost), s=2, color="red", label="lost")
        ax.set_yticks(range(-1, len(nodes)), ["lost", *nodes])
        for n, (t, text) in enumerate(failover_timeline(f)):
            ax.axvline(t, color="grey", linewidth=0.6)
            # y in axes coordinates, staggered, so labels of close events do not overlap.
            ax.text(
                t,
                0.97 - 0.09 * n,
                f" {t:+.1f} ms {text}",
                fontsize=7,
                va="top",
                transform=ax.get_xaxis_transform(),
            )
        ax.set_xlabel("ms after the fault")
        ax.set_title(
            f"{report.scenario}: failover {i}, {f.fault.replace('_', '-')} {f.node} "
            f"({report.impl})",
            fontsize=9,
        )
        fig.tight_layout()
        path = directory / f"{report.scenario}-failover{i}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        out.append(path)
    return out
