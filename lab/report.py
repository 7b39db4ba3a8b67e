"""Reports of a run: a readable console report, the JSON report and PNG timelines.

The JSON report's contract: docs/architecture.md#contracts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab.metrics import Failover, ForeignAdverts
from lab.ovn.events import claims_between
from lab.runner import RunReport, StepResult
from lab.versions import versions_line


def step_line(result: StepResult, started: float) -> str:
    """One progress line for a finished step."""
    mark = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]", "skipped": "[dim]–[/dim]"}.get(
        result.outcome, "[yellow]?[/yellow] inconclusive:"
    )
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
        *_bfd_events(f, rel),
        *_vmac_events(f, rel),
        *((rel(x.first), f"foreign: {x}") for x in f.foreign),
        *(
            [(rel(f.left_master[2]), f"{f.left_master[0]} leaves MASTER: {f.left_master[1]}")]
            if f.left_master is not None
            else []
        ),
        *_service_events(f, rel),
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


def _consequence(f: Failover, foreign: ForeignAdverts) -> str:
    """What followed a stranger's adverts: the first router to leave MASTER after the first
    one, or that none did."""
    left = f.left_master
    if left is None or left[2] < foreign.first:
        return "; no router left MASTER"
    return (
        f"; {left[0]} left MASTER ({left[1]}) {(left[2] - foreign.first) * 1000:.1f} ms after "
        "the first"
    )


def _bfd_events(
    f: Failover, rel: Callable[[float | None], float | None]
) -> list[tuple[float | None, str]]:
    """The BFD component's events: the peer's last packet, the survivor's Down (daemon and
    wire)."""
    b = f.bfd
    if b is None:
        return []
    detect = "" if b.detect_time_ms is None else f", detection time {b.detect_time_ms:.0f} ms"
    diag = "" if b.diag is None else f" (diag {b.diag})"
    return [
        (rel(b.last_packet_from_peer), f"last BFD packet {b.router} heard from {b.peer}"),
        (rel(b.down_at), f"{b.router}'s BFD session {b.session} Down{diag}{detect}"),
        (rel(b.first_down_packet), f"{b.router}'s first BFD Down packet (diag 1) on the wire"),
    ]


def _vmac_events(
    f: Failover, rel: Callable[[float | None], float | None]
) -> list[tuple[float | None, str]]:
    """The old master answering the new master's GARP from the shared VMAC, when it did."""
    if f.vmac_answered_back_at is None:
        return []
    return [
        (
            rel(f.vmac_answered_back_at),
            f"{f.old_master}, still holding the VIP, answers {f.new_master}'s GARP from the "
            "shared VMAC: the fabric learns the VMAC on its port again",
        ),
        (rel(f.vmac_astray_at), f"the fabric delivers a frame for the VIP to {f.old_master}"),
        (rel(f.vmac_regarp_at), f"{f.new_master}'s next GARP: the fabric learns the VMAC back"),
    ]


def _service_events(
    f: Failover, rel: Callable[[float | None], float | None]
) -> list[tuple[float | None, str]]:
    """The service's events: its first failed request, the health check's lowered advert,
    its first success after the outage."""
    s = f.service
    if s is None:
        return []
    errors = ", ".join(f"{n} {why}" for why, n in sorted(s.errors.items(), key=lambda e: -e[1]))
    lowered = None if s.check_detection_ms is None else f.at + s.check_detection_ms / 1000
    return [
        (rel(s.first_failed), f"first failed HTTP request ({s.failed_requests} failed: {errors})"),
        (rel(lowered), f"health check: {f.old_master} advertises a lowered priority"),
        (
            rel(s.first_ok_after),
            f"first HTTP request served after the outage (by {s.served_after})",
        ),
    ]


def _service_cell(f: Failover) -> str:
    s = f.service
    if s is None:
        return "—"
    outage = _fmt(s.outage_ms) if s.recovered else "not restored"
    broken = sum(s.sessions_broken.values())
    return f"{outage}, {s.failed_requests} failed, {broken} sessions broken"


def _components_cell(f: Failover) -> str:
    s = f.service
    if s is None:
        return "—"
    theory = (
        ""
        if s.theory_ms is None or s.theory_min_ms is None
        else f" (theory {s.theory_min_ms:.0f}–{s.theory_ms:.0f})"
    )
    return f"{_fmt(s.check_detection_ms)} + {_fmt(s.takeover_ms)}{theory}"


def _bfd_cell(f: Failover) -> str:
    b = f.bfd
    if b is None:
        return "—"
    detect = b.configured_detect_time_ms or b.detect_time_ms
    return _fmt(b.detection_ms) + ("" if detect is None else f" (of {detect:.0f})")


def _split_brain_cell(f: Failover) -> str:
    parts = [f"two advertisers {(b - a) * 1000:.0f} ms" for a, b in f.split_brain]
    if f.duplicated_vip:
        parts.append(f"VIP on {' and '.join(f.vip_holders_at_end)}")
    return "yes: " + ", ".join(parts) if parts else "no"


def _print_haproxy_lines(report: RunReport, i: int, console: Console, most: int = 5) -> None:
    """What haproxy logged in failover ``i``'s window (it logs what went wrong only)."""
    if report.service is None:
        return
    f = report.failovers[i - 1]
    end = report.failovers[i].at if i < len(report.failovers) else float("inf")
    lines = [(at, node, line) for at, node, line in report.service.lines if f.at <= at < end]
    for at, node, line in lines[:most]:
        console.print(f"  {(at - f.at) * 1000:>+9.1f} ms  haproxy {node}: {line}", markup=False)
    if len(lines) > most:
        console.print(f"  [dim]… {len(lines) - most} more haproxy lines in the JSON[/dim]")


def print_report(report: RunReport, console: Console) -> None:
    """The readable report: failover timelines, the metrics table, and the verdict."""
    for i, f in enumerate(report.failovers, 1):
        console.print(f"\n[bold]failover {i}: {f.fault.replace('_', '-')} {f.node}[/bold]")
        until = report.failovers[i].at if i < len(report.failovers) else None
        # OVN's virtual-port claims (engine ovn) among the failover's own events.
        claims = claims_between(report.ovn_events, f.at, until)
        for t, text in sorted(failover_timeline(f) + claims, key=lambda e: e[0]):
            console.print(f"  {t:>+9.1f} ms  {text}")
        _print_haproxy_lines(report, i, console)
        windows = report.stalls.get("failovers", [])
        if i <= len(windows) and windows[i - 1]["count"]:
            w = windows[i - 1]
            console.print(
                f"  [dim]host stalls in this window: {w['count']}, "
                f"worst {w['worst_ms']:.1f} ms[/dim]"
            )
    if report.failovers:
        title = "failovers (metrics: docs/architecture.md#metrics)"
        table = Table(title=title, title_justify="left")
        # The BFD column only where a router ran BFD: most scenarios have none.
        bfd = any(f.bfd is not None for f in report.failovers)
        columns = ["fault", "old → new master", "outage", "detection"]
        columns += ["BFD detection"] if bfd else []
        columns += [
            "RFC theory",
            "lost probes",
            "stale ARP",
            "split brain",
            "no master / blackhole",
        ]
        # The service columns only where the scenario ran one.
        service = any(f.service is not None for f in report.failovers)
        columns += ["HTTP outage", "check + takeover"] if service else []
        for column in columns:
            table.add_column(column)
        for f in report.failovers:
            cells = [
                f"{f.fault.replace('_', '-')} {f.node}",
                f"{f.old_master} → {f.new_master}",
                _fmt(f.outage_ms)
                if f.outage_ms is not None or f.last_served_before is None
                else "not restored",
                _fmt(f.detection_ms) + ("" if f.detection_source == "capture" else " (notify)"),
            ]
            cells += [_bfd_cell(f)] if bfd else []
            cells += [
                (
                    f"{f.theory_min_ms:.1f}–{f.theory_ms:.1f} ms"
                    if f.theory_min_ms is not None and f.theory_ms is not None
                    else _fmt(f.theory_ms)
                ),
                str(f.lost_probes),
                _fmt(f.stale_arp_ms),
                _split_brain_cell(f),
                f"{_fmt(f.no_master_ms, '')} / {_fmt(f.blackhole_ms)}",
            ]
            cells += [_service_cell(f), _components_cell(f)] if service else []
            table.add_row(*cells)
        console.print(table)
        for n, f in enumerate(report.failovers, 1):
            for x in f.foreign:
                # Adverts no router of the lab sent: an inject, or a stranger on the subnet.
                console.print(
                    f"[yellow]failover {n}[/yellow]: {x}, from "
                    f"{(x.first - f.at) * 1000:.1f} to {(x.last - f.at) * 1000:.1f} ms"
                    + _consequence(f, x),
                    markup=True,
                )
            if f.two_masters_ms:
                console.print(
                    f"[yellow]failover {n}[/yellow]: two routers said MASTER for "
                    f"{f.two_masters_ms:.1f} ms"
                )
    print_accounting(report, console)
    if report.split_brain:
        t0 = report.started
        spans = ", ".join(
            f"{(lo - t0) * 1000:.0f}–{(hi - t0) * 1000:.0f} ms" for lo, hi in report.split_brain
        )
        console.print(f"[yellow]split brain[/yellow]: two routers advertised one VRID at {spans}")
    failed = [s for s in report.steps if s.outcome == "fail"]
    unsure = [s for s in report.steps if s.outcome == "inconclusive"]
    verdicts = []
    if failed:
        verdicts.append(
            f"[red]{len(failed)} step(s) failed[/red]: " + "; ".join(s.name for s in failed)
        )
    if unsure:
        # Not a pass (exit 1): the host stalled longer than what the step could tell apart.
        verdicts.append(
            f"[yellow]{len(unsure)} step(s) inconclusive[/yellow] (the host stalled; run again): "
            + "; ".join(s.name for s in unsure)
        )
    verdict = "; ".join(verdicts) or "[green]every expectation held[/green]"
    console.print(
        f"\n{report.scenario} with {report.impl}: {verdict} "
        f"(lab built in {report.build_ms:.0f} ms, run {report.wall_seconds:.1f} s)"
    )
    if report.stalls:
        s = report.stalls
        console.print(
            f"host stalls > {s['floor_ms']['host']:g} ms: {s['count']}, "
            f"worst {s['worst_ms']:.1f} ms",
            markup=False,
        )
    console.print(f"versions: {versions_line(report.versions)}", markup=False, soft_wrap=True)
    if report.pcap:
        console.print(f"capture: {report.pcap}")
    for plot in report.plots:
        console.print(f"plot: {plot}")


def print_accounting(report: RunReport, console: Console, max_events: int = 25) -> None:
    """Where every probe went, then each unexplained loss with its own short timeline."""
    acc = report.accounting
    if acc is None:
        return
    t0 = report.started
    served = ", ".join(f"{n} by {who}" for who, n in sorted(acc.served.items())) or "none"
    lost = ", ".join(
        f"{acc.lost[k]} {k.replace('_', ' ')}" for k in ("unanswered", "late", "send_error")
    )
    console.print(
        f"\n[bold]probes[/bold]: {acc.sent} sent; served {served}; lost {lost}"
        + (f"; {acc.skipped} never sent (prober descheduled)" if acc.skipped else "")
    )
    if acc.service_up is None:
        console.print("  [red]the service never came up[/red]: no probe served after a MASTER")
    for interval in acc.intervals:
        if interval.window is None:
            continue
        console.print(
            f"  {interval.window}: {interval.probes} lost from "
            f"{(interval.start - t0) * 1000:.1f} to {(interval.end - t0) * 1000:.1f} ms"
            f" (seq {interval.first_seq}–{interval.last_seq}: {_counts(interval)})"
        )
    if not acc.unexplained:
        console.print("  no loss outside the startup and the failovers")
    for n, interval in enumerate(acc.unexplained, 1):
        console.print(
            f"[yellow]unexplained loss {n}[/yellow]: {interval.probes} probes "
            f"(seq {interval.first_seq}–{interval.last_seq}: {_counts(interval)}) sent from "
            f"{(interval.start - t0) * 1000:.1f} to {(interval.end - t0) * 1000:.1f} ms, "
            "outside every failover"
        )
        shown = interval.events[:max_events]
        for e in shown:
            console.print(
                f"  {(e.time - t0) * 1000:>9.1f} ms  {e.source:<10} {e.kind:<11} {e.detail}",
                markup=False,
            )
        if len(interval.events) > len(shown):
            console.print(f"  … {len(interval.events) - len(shown)} more events in the JSON")


def _counts(interval: Any) -> str:
    parts = [
        f"{interval.counts[k]} {k.replace('_', ' ')}"
        for k in ("unanswered", "late", "send_error")
        if interval.counts[k]
    ]
    if interval.skipped:
        parts.append(f"{interval.skipped} skipped")
    return ", ".join(parts)


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
                (p.sent - f.at) * 1000
                for p in probes
                if p.responder == node and lo <= p.sent <= hi and not _late(p)
            ]
            ax.scatter(xs, [row] * len(xs), s=2, label=f"served by {node}")
        lost = [
            (p.sent - f.at) * 1000 for p in probes if p.responder is None and lo <= p.sent <= hi
        ]
        ax.scatter(lost, [-1] * len(lost), s=2, color="red", label="lost")
        # A reply after LATE is a probe held in a kernel queue: drawn on its own row at its
        # send time, not as served by whoever answered when the queue was released.
        late = [(p.sent - f.at) * 1000 for p in probes if _late(p) and lo <= p.sent <= hi]
        ax.scatter(late, [-2] * len(late), s=2, color="purple", label="answered late")
        ax.set_yticks(range(-2, len(nodes)), ["answered late", "lost", *nodes])
        _shade_loss(ax, report, f.at, lo, hi)
        if f.bfd is not None and f.bfd.last_packet_from_peer is not None:
            # The survivor's BFD detection, from the last packet it heard to its session Down.
            ax.axvspan(
                (f.bfd.last_packet_from_peer - f.at) * 1000,
                (f.bfd.down_at - f.at) * 1000,
                color="tab:blue",
                alpha=0.08,
            )
        _mark_events(ax, failover_timeline(f))
        ax.set_xlabel("ms after the fault (probes at their send time)")
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
    if report.accounting is not None and probes:
        out.append(plot_run(report, probes, directory))
    return out


def _mark_events(ax: Any, events: list[tuple[float, str]]) -> None:
    """A failover's events as vertical lines, each labelled with its time and text."""
    for n, (t, text) in enumerate(events):
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


def plot_service(report: RunReport, directory: Path) -> list[Path]:
    """One PNG per failover of a run with a service: every HTTP request around it at its send
    time, by the proxy that served it or why it failed, the broken sessions, and the
    failover's events."""
    if report.service is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = report.service
    out = []
    for i, f in enumerate(report.failovers, 1):
        s = f.service
        lo = f.at - 0.5
        hi = max(t for t in (f.at, s and s.first_ok_after, f.first_advert_after) if t) + 0.5
        window = [r for r in record.requests if lo <= r.sent <= hi]
        rows = sorted({r.served_by or "-" for r in window if r.ok})
        rows += sorted({f"failed: {r.error}" for r in window if not r.ok})
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for row, label in enumerate(rows):
            xs = [
                (r.sent - f.at) * 1000
                for r in window
                if (r.ok and (r.served_by or "-") == label)
                or (not r.ok and f"failed: {r.error}" == label)
            ]
            color = "red" if label.startswith("failed") else None
            ax.scatter(xs, [row] * len(xs), s=2, color=color)
        breaks = [(b.at - f.at) * 1000 for b in record.breaks if lo <= b.at <= hi]
        ax.scatter(breaks, [len(rows)] * len(breaks), marker="x", color="black")
        ax.set_yticks(range(len(rows) + 1), [*rows, "sessions broken"])
        ax.set_xlim((lo - f.at) * 1000, (hi - f.at) * 1000)
        _mark_events(ax, [(t, text) for t, text in failover_timeline(f) if t <= (hi - f.at) * 1000])
        ax.set_xlabel("ms after the fault (HTTP requests at their send time)")
        ax.set_title(
            f"{report.scenario}: failover {i} as HTTP clients saw it, "
            f"{f.fault.replace('_', '-')} {f.node} ({report.impl})",
            fontsize=9,
        )
        fig.tight_layout()
        path = directory / f"{report.scenario}-failover{i}-http.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        out.append(path)
    return out


def plot_run(report: RunReport, probes: list, directory: Path) -> Path:
    """The whole run in one PNG: who served each probe, the lost and late ones, the steps, and
    every loss interval shaded (red: unexplained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = report.started
    fig, ax = plt.subplots(figsize=(12, 3.6))
    nodes = sorted({p.responder for p in probes if p.responder})
    for row, node in enumerate(nodes):
        xs = [(p.sent - t0) * 1000 for p in probes if p.responder == node and not _late(p)]
        ax.scatter(xs, [row] * len(xs), s=1)
    lost = [(p.sent - t0) * 1000 for p in probes if p.responder is None]
    ax.scatter(lost, [-1] * len(lost), s=1, color="red")
    late = [(p.sent - t0) * 1000 for p in probes if _late(p)]
    ax.scatter(late, [-2] * len(late), s=1, color="purple")
    ax.set_yticks(range(-2, len(nodes)), ["answered late", "lost", *nodes])
    lo, hi = probes[0].sent, probes[-1].sent
    _shade_loss(ax, report, t0, lo, hi)
    for n, step in enumerate(report.steps):
        x = (step.at - t0) * 1000
        ax.axvline(x, color="grey", linewidth=0.5)
        ax.text(
            x,
            0.97 - 0.08 * (n % 8),
            f" {step.name[:40]}",
            fontsize=6,
            va="top",
            transform=ax.get_xaxis_transform(),
        )
    unexplained = len(report.accounting.unexplained) if report.accounting else 0
    ax.set_xlabel("ms since the run started (probes at their send time)")
    ax.set_title(
        f"{report.scenario} ({report.impl}): every probe; {unexplained} unexplained loss "
        "interval(s) shaded red, startup and failovers grey",
        fontsize=9,
    )
    fig.tight_layout()
    path = directory / f"{report.scenario}-probes.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _late(p: Any) -> bool:
    from lab.accounting import LATE

    return p.received is not None and p.received - p.sent > LATE


def _shade_loss(ax: Any, report: RunReport, origin: float, lo: float, hi: float) -> None:
    """Shade the loss intervals: red where unexplained, grey where a window explains them."""
    if report.accounting is None:
        return
    for interval in report.accounting.intervals:
        if interval.end < lo or interval.start > hi:
            continue
        unexplained = interval.window is None
        ax.axvspan(
            (interval.start - origin) * 1000,
            (interval.end - origin) * 1000,
            color="red" if unexplained else "grey",
            alpha=0.15 if unexplained else 0.08,
            label="unexplained loss" if unexplained else None,
        )
