"""The ``vrrp-lab`` command line (also ``python -m lab``).

Exit codes (docs/architecture.md#contracts): 0 every expectation held · 1 some expectation
failed · 2 bad input or usage, one line, no traceback · 3 the environment lacks something,
with how to get it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from lab import linux
from lab.errors import LabError, UsageError
from lab.lab import Lab
from lab.registry import LabRecord, await_teardown, find_lab, running_labs
from lab.scenario import (
    SCENARIO_DIR,
    bundled_scenarios,
    json_schema_text,
    load_scenario,
    resolve_scenario,
)
from lab.sdn.cli import add_port_commands

# Piped output (CI logs, `| less`) gets a generous fixed width instead of rich's 80 columns, so
# MACs and addresses are never cut.
# emoji=False: rich reads `:cd:` in a MAC such as 02:cd:07:2c:d8:62 as an emoji code.
console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(
    stderr=True, highlight=False, emoji=False, width=None if sys.stderr.isatty() else 200
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors honour exit code 2 with a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


class _VersionAction(argparse.Action):
    """``--version``: the versions are looked up only when asked for (it runs programs)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from lab.versions import collect

        width = max(len(name) for name in collect())
        for name, version in collect().items():
            sys.stdout.write(f"{name:<{width}}  {version}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="vrrp-lab", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the versions of vrrp-lab, keepalived, FRR, the kernel and Python, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("run", help="run a scenario (default: the seed) and report")
    p.add_argument("scenario", nargs="?", help="scenario file or bundled name (default: seed)")
    p.add_argument("--impl", help="VRRP implementation for every router without its own impl:")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report here")
    p.add_argument("--pcap", type=Path, metavar="DIR", help="keep the run's capture in DIR")
    p.add_argument(
        "--plots", type=Path, metavar="DIR", help="write a PNG timeline per failover in DIR"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="probes per second from the observer to the VIP (default 1000)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("up", help="build a lab and hold it until Ctrl-C or `vrrp-lab down`")
    p.add_argument("scenario", nargs="?", help="scenario file or bundled name (default: seed)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("exec", help="run a command in a node of a running lab")
    p.add_argument("--lab", help="lab id (needed when several labs run)")
    p.add_argument("node")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("shell", help="open an interactive shell in a node of a running lab")
    p.add_argument("--lab", help="lab id (needed when several labs run)")
    p.add_argument("node")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser(
        "inject",
        help="send crafted frames from a node of a running lab (the inject step)",
        description="Send crafted VRRP adverts, GARPs, ARP replies or NAs from a node of a lab "
        "that `vrrp-lab up` holds, as a scenario's `inject` step does (docs/scenarios.md).",
    )
    p.add_argument(
        "lab",
        nargs="?",
        metavar="LAB",
        help="lab id (or prefix), or `latest` (the lab started last); default: the only one",
    )
    p.add_argument("--lab", dest="lab_option", metavar="ID", help="the same as LAB")
    p.add_argument("--from", dest="from_node", metavar="NODE", help="the instance that sends")
    p.add_argument("--kind", choices=["advert", "garp", "arp-reply", "na"], help="what it sends")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the kind (priority=255, to=[10.200.51.32], ip=10.200.51.10, "
        "mac=random) or of the injection (src_mac, seed); repeatable",
    )
    p.add_argument(
        "--spec",
        metavar="YAML",
        help="the whole injection as a scenario's `inject:` takes it, e.g. "
        "'{advert: {priority: 255}, rate: 20}'; the other options override it",
    )
    p.add_argument("--rate", type=float, help="periods a second (default 10)")
    p.add_argument("--duration", type=float, help="seconds; 0 sends one period (default 1)")
    p.set_defaults(func=cmd_inject)

    p = sub.add_parser("down", help="tear down a running lab")
    p.add_argument("--lab", help="lab id (needed when several labs run)")
    p.add_argument("--all", action="store_true", help="tear down every running lab")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("labs", help="list running labs")
    p.set_defaults(func=cmd_labs)

    p = sub.add_parser("scenarios", help="list the bundled scenarios")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("schema", help="print the scenario JSON Schema (for editors)")
    p.add_argument("-o", "--output", type=Path, help="write it to this file instead")
    p.set_defaults(func=cmd_schema)

    add_port_commands(sub)
    from lab.conformance.cli import add_conformance_command

    add_conformance_command(sub)
    from lab.sweep.cli import add_bench_command

    add_bench_command(sub)
    return parser


# -- commands --------------------------------------------------------------------------------


def topology_table(lab: Lab) -> Table:
    """The nodes of a lab with their ports, MACs and addresses."""
    table = Table(title=f"lab {lab.id} · scenario {lab.scenario.name}", title_justify="left")
    for column in ("node", "hostname", "interface", "MAC", "addresses", "fabric port", "network"):
        table.add_column(column)
    for node in lab.nodes.values():
        for port in node.ports:
            table.add_row(
                node.name,
                node.hostname,
                port.ifname,
                port.mac,
                ", ".join(str(i) for i, _ in port.interfaces()),
                port.tap,
                port.network.name,
            )
    for vip in lab.scenario.vips:
        table.add_row("[dim]vip[/dim]", "", "", "", str(vip.address), "", vip.network)
    return table


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario's steps with probes and capture on, print the report, tear down."""
    from lab.report import plot_failovers, plot_service, print_report, step_line, write_json
    from lab.runner import ScenarioRun

    path = resolve_scenario(args.scenario)
    scenario = load_scenario(path)
    if args.impl is not None:
        from lab.routers import known_drivers

        if args.impl not in known_drivers():
            choices = ", ".join(known_drivers())
            raise UsageError(f"--impl {args.impl}: unknown implementation; choose one of {choices}")
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.description}")
    if not scenario.steps:
        with console.status(f"building lab for {path}"), Lab(scenario) as lab:
            console.print(topology_table(lab))
            console.print(f"built in {(lab.build_seconds or 0) * 1000:.0f} ms")
            ok = _reachability(lab)
        return 0 if ok else 1
    run = ScenarioRun(
        scenario,
        impl=args.impl,
        pcap_dir=args.pcap,
        probe_rate=args.rate,
        progress=lambda result: console.print(step_line(result, run.report.started)),
    )
    report = run.execute()
    if args.plots is not None and report.failovers:
        report.plots = plot_failovers(report, run.probe_records(), args.plots)
        report.plots += plot_service(report, args.plots)
    print_report(report, console)
    if args.json is not None:
        write_json(report, args.json)
        console.print(f"JSON report: {args.json}")
    return 0 if report.ok else 1


def _reachability(lab: Lab) -> bool:
    """Ping every instance from every other; the VIPs are expected unreachable (no router yet)."""
    table = Table(title="reachability (one ping each)", title_justify="left")
    table.add_column("from")
    table.add_column("to")
    table.add_column("expected")
    table.add_column("seen")
    ok = True
    targets = [(n.name, str(n.ip), True) for n in lab.nodes.values()]
    targets += [(f"vip {v.address}", str(v.address), False) for v in lab.scenario.vips]
    for src in lab.nodes.values():
        for name, ip, expected in targets:
            if name == src.name:
                continue
            # -W 1: a VIP nobody holds yet never answers, and one second is plenty on a bridge.
            seen = (
                src.run(["ping", "-n", "-q", "-c", "1", "-W", "1", ip], check=False).returncode == 0
            )
            ok &= seen == expected
            mark = "[green]" if seen == expected else "[red]"
            table.add_row(
                src.name,
                name,
                "reply" if expected else "no reply",
                f"{mark}{'reply' if seen else 'no reply'}[/]",
            )
    console.print(table)
    return ok


def cmd_up(args: argparse.Namespace) -> int:
    """Build a lab and hold it until Ctrl-C, SIGTERM or `vrrp-lab down`."""
    path = resolve_scenario(args.scenario)
    scenario = load_scenario(path)
    with Lab(scenario) as lab:
        console.print(topology_table(lab))
        console.print(f"built in {(lab.build_seconds or 0) * 1000:.0f} ms")
        first = next(iter(lab.nodes))
        console.print(
            f"[bold]lab {lab.id} is up.[/bold] From another terminal:\n"
            f"  vrrp-lab exec {first} -- ip -br addr\n"
            f"  vrrp-lab shell {first}\n"
            f"  vrrp-lab down\n"
            "Ctrl-C here tears it down too."
        )
        hold(lab)
    console.print(f"lab {lab.id} torn down")
    return 0


def hold(lab: Lab) -> None:
    """Block until SIGINT or SIGTERM (what `vrrp-lab down` sends), or until the lab dies."""
    assert lab.record is not None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # The handlers go in before the record says "holding": `vrrp-lab down` (and the tests)
    # take that flag as leave to send SIGTERM, which would otherwise kill this process outright
    # and leave its record behind for `down` to wait on.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        lab.record.holding = True
        lab.record.save()
        while not stop.wait(0.5):
            if not lab.running:
                raise LabError(f"lab {lab.id} died while held (its sandbox is gone)")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_exec(args: argparse.Namespace) -> int:
    """Run a command in a node of a running lab, replacing this process."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError(
            "vrrp-lab exec: give a command after --, e.g. vrrp-lab exec observer -- ip -br a"
        )
    record = find_lab(args.lab)
    os.execvp("nsenter", [*record.nsenter_argv(args.node), "--", *argv])
    return 0  # not reached


def cmd_shell(args: argparse.Namespace) -> int:
    """Open an interactive shell in a node of a running lab."""
    record = find_lab(args.lab)
    shell = os.environ.get("SHELL", "/bin/bash")
    os.execvp("nsenter", [*record.nsenter_argv(args.node), "--", shell, "-i"])
    return 0  # not reached


def cmd_inject(args: argparse.Namespace) -> int:
    """Send crafted frames from a node of a running lab, with the ``inject`` step's model and
    code (:func:`lab.inject.inject_into`), and say what was sent."""
    import yaml

    from lab import clock
    from lab.inject import inject_into, spec_from_options

    if args.lab is not None and args.lab_option is not None and args.lab != args.lab_option:
        raise UsageError(f"inject: two labs given ({args.lab}, --lab {args.lab_option}); give one")
    try:
        base = yaml.safe_load(args.spec) if args.spec is not None else None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise UsageError(
            f"--spec: not YAML ({problem}); e.g. '{{advert: {{priority: 255}}}}'"
        ) from None
    spec = spec_from_options(
        args.from_node,
        args.kind,
        args.settings,
        base=base,
        rate=args.rate,
        duration=args.duration,
    )
    record = _lab_or_latest(args.lab or args.lab_option)
    times: dict[str, float] = {}

    def on_event(kind: str, at: float, detail: str) -> None:
        times[kind] = at  # `inject` (the first frame) and `inject-end` (the last)

    injection = inject_into(record, spec, on_event)
    try:
        # The schedule spans `duration`; a late host catches up in bursts, so allow as much
        # again before calling the sender stuck.
        if not injection.done.wait(2 * spec.duration + 5):
            raise LabError(
                f"inject: {spec.node} did not finish within {2 * spec.duration + 5:g} s "
                f"({injection.sent} frames sent)"
            )
    except KeyboardInterrupt:
        console.print(f"interrupted after {injection.sent} frames")
        return 130
    finally:
        injection.cancel()  # stops the sending thread (if still running) and closes the socket
    took = times.get("inject-end", clock.now()) - times.get("inject", clock.now())
    refused = f", {injection.refused} refused by its own queue" if injection.refused else ""
    frames = "frame" if injection.sent == 1 else "frames"
    console.print(
        f"lab {record.id}: {spec.node} sent {injection.sent} {frames} in {took:.3f} s"
        f"{refused}: {spec.describe()}",
        soft_wrap=True,
    )
    return 0


def _lab_or_latest(name: str | None) -> LabRecord:
    """The running lab ``name`` names (an id, a prefix, or ``latest``: the one whose runner
    started last), or the only one running."""
    if name != "latest":
        return find_lab(name)
    labs = running_labs()
    if not labs:
        raise UsageError("no lab is running; start one with `vrrp-lab up [SCENARIO]`")
    return max(labs, key=lambda r: _started(r.runner_pid))


def _started(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat, field 22); 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Ask the runner of a lab (or of every lab) to tear it down, and wait until it has."""
    records = running_labs() if args.all else [find_lab(args.lab)]
    for record in records:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.runner_pid, signal.SIGTERM)
    for record in records:
        console.print(f"lab {record.id}: {await_teardown(record, say=console.print)}")
    return 0


def cmd_labs(args: argparse.Namespace) -> int:
    """List the running labs."""
    labs = running_labs()
    if not labs:
        console.print("no lab is running")
        return 0
    table = Table()
    for column in ("lab", "scenario", "runner pid", "nodes", "mode"):
        table.add_column(column)
    for r in labs:
        table.add_row(
            r.id,
            r.scenario,
            str(r.runner_pid),
            ", ".join(r.nodes),
            "rootless" if r.rootless else "root",
        )
    console.print(table)
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    """List the bundled scenarios with their one-line description."""
    table = Table()
    table.add_column("scenario")
    table.add_column("file")
    table.add_column("description")
    for path in bundled_scenarios():
        try:
            scenario = load_scenario(path)
            description = scenario.description.split(". ")[0]
        except LabError as exc:
            description = f"[red]invalid: {exc}[/red]"
        table.add_row(path.stem, path.name, description)
    console.print(table)
    # The files live inside the installed package: say where, so they can be copied and edited.
    console.print(f"in {SCENARIO_DIR}; run one with `vrrp-lab run NAME`", soft_wrap=True)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of scenario files, or write it to --output."""
    text = json_schema_text()
    if args.output:
        args.output.write_text(text)
        console.print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand and map errors to the documented exit codes."""
    # Before any thread: one malloc arena and a fixed mmap threshold (lab.linux says why: a
    # runner held for hours by `vrrp-lab up` or a sweep otherwise gathers scattered free memory).
    linux.steady_malloc()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args))
    except LabError as exc:
        err_console.print(f"vrrp-lab: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("vrrp-lab: interrupted; the lab was torn down")
        return 130


if __name__ == "__main__":
    sys.exit(main())
