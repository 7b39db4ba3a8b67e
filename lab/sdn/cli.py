"""``vrrp-lab port-set`` / ``port-unset``: change allowed address pairs of a running lab.

Spelled like the OpenStack CLI::

    vrrp-lab port-set ha_first --allowed-address ip-address=10.200.51.10
    vrrp-lab port-set ha_first \
        --allowed-address ip-address=10.200.51.10,mac-address=00:00:5e:00:01:01
    vrrp-lab port-set ha_first --no-allowed-address
    vrrp-lab port-unset ha_first --allowed-address ip-address=10.200.51.10

``NODE`` is an instance name (its first port), a port id or id prefix, or a tap name. The
command enters the lab's fabric namespace with ``nsenter`` (the lab registry names its keeper)
and changes the nft sets in one transaction, through the same code as
``lab.port(name).set_allowed_address``. Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from lab.errors import LabError, UsageError
from lab.registry import LabRecord, find_lab
from lab.sdn.ports import (
    STATE_PATH,
    FabricRunner,
    change_pairs,
    describe,
    find_port,
    parse_pair,
    read_state,
)
from lab.sdn.ruleset import Pair

_KEYS = {"ip-address", "mac-address"}


def parse_allowed_address(text: str) -> Pair:
    """``ip-address=IP[,mac-address=MAC]`` → a pair; :class:`UsageError` on anything else."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS or not value.strip():
            raise UsageError(
                f"--allowed-address {text!r}: expected ip-address=IP[,mac-address=MAC] "
                "(e.g. ip-address=10.200.51.10,mac-address=00:00:5e:00:01:01)"
            )
        if key in fields:
            raise UsageError(f"--allowed-address {text!r}: {key} is given twice")
        fields[key] = value.strip()
    if "ip-address" not in fields:
        raise UsageError(f"--allowed-address {text!r}: ip-address=IP is required")
    return parse_pair(fields["ip-address"], fields.get("mac-address"))


def _port_parser(
    sub: argparse._SubParsersAction[Any], name: str, summary: str, pair_help: str
) -> argparse.ArgumentParser:
    """A port subcommand: the lab, the port, and repeatable ``--allowed-address`` pairs."""
    p = sub.add_parser(name, help=summary)
    p.add_argument("--lab", help="lab id (needed when several labs run)")
    p.add_argument("node", help="instance name, port id (or prefix) or tap name")
    p.add_argument(
        "--allowed-address",
        action="append",
        default=[],
        metavar="ip-address=IP[,mac-address=MAC]",
        help=pair_help,
    )
    return p


def add_port_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``port-set`` and ``port-unset`` on the CLI's subparsers."""
    p = _port_parser(
        sub,
        "port-set",
        "add allowed address pairs to a port of a running lab (openstack port set)",
        "add an allowed address pair (repeatable); IP may be a CIDR",
    )
    p.add_argument(
        "--no-allowed-address",
        action="store_true",
        help="clear the port's pairs first (with no --allowed-address: remove them all)",
    )
    p.set_defaults(func=cmd_port_set)
    p = _port_parser(
        sub,
        "port-unset",
        "remove allowed address pairs from a port of a running lab (openstack port unset)",
        "remove this pair (repeatable); without mac-address, every pair for the IP",
    )
    p.set_defaults(func=cmd_port_unset)


def _fabric_runner(record: LabRecord) -> FabricRunner:
    """Runs commands in the lab's fabric through ``nsenter`` (this process is outside it)."""
    enter = record.nsenter_argv("fabric")

    def run(argv: list[str], stdin: str | None) -> None:
        done = subprocess.run(
            [*enter, "--", *argv], input=stdin, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"fabric of lab {record.id}: {' '.join(argv)} failed: {tail[0]}")

    return run


def _state_path(record: LabRecord) -> Path:
    return Path(f"/proc/{record.nodes['fabric']}/root") / STATE_PATH.lstrip("/")


def _report(record: LabRecord, node: str, pairs: list[Pair]) -> int:
    print(f"lab {record.id}: {node} allowed address pairs: {describe(pairs) or 'none'}")
    # On engine ovn the change went to the NB and was waited for (--wait=hv): say how long.
    state = read_state(_state_path(record))
    entry = state["ports"][find_port(state, node)]
    if "install_seconds" in entry:
        print(f"OVN installed it in {entry['install_seconds'] * 1000:.1f} ms (--wait=hv)")
    return 0


def cmd_port_set(args: argparse.Namespace) -> int:
    """``port-set``: add pairs (and with --no-allowed-address, clear the old ones first)."""
    pairs = [parse_allowed_address(text) for text in args.allowed_address]
    if not pairs and not args.no_allowed_address:
        raise UsageError(
            "port-set: give --allowed-address ip-address=IP[,mac-address=MAC] or "
            "--no-allowed-address"
        )
    record = find_lab(args.lab)
    new = change_pairs(
        _state_path(record),
        args.node,
        _fabric_runner(record),
        add=pairs,
        clear=args.no_allowed_address,
    )
    return _report(record, args.node, new)


def cmd_port_unset(args: argparse.Namespace) -> int:
    """``port-unset``: remove pairs."""
    pairs = [parse_allowed_address(text) for text in args.allowed_address]
    if not pairs:
        raise UsageError("port-unset: give --allowed-address ip-address=IP[,mac-address=MAC]")
    record = find_lab(args.lab)
    new = change_pairs(_state_path(record), args.node, _fabric_runner(record), remove=pairs)
    return _report(record, args.node, new)
