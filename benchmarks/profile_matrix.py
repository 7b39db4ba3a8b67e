"""The SDN profile table, measured: every SDN profile × every way of allowing the VIP.

The predictions are those of docs/architecture.md#profile-predictions.

    sudo .venv/bin/python benchmarks/profile_matrix.py [--impl keepalived] [--markdown] \
        [--fault stop|host-down] [--rows ovn,engine-ovn]

Each cell is a short-timer run (advert 0.1 s, unicast, priorities 200/100, a graceful stop of
the master; see lab/profile_matrix.py). Prints, per cell, the outcome, whether it is the one
DESIGN predicts, the failover's outage and the stale-ARP time. With --markdown the table is
printed ready for docs/sdn-profiles.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.profile_matrix import COLUMNS, FAULTS, ROWS, CellResult, run_cell


def cell_text(r: CellResult) -> str:
    mark = "" if r.as_predicted else f" (DESIGN: {r.predicted})"
    figures = []
    if r.outcome != "unreachable" and r.outage_ms is not None:
        figures.append(f"outage {r.outage_ms:.0f} ms")
    if r.outcome == "failover-broken" and r.stale_arp_ms:
        figures.append(f"stale ARP ≥ {r.stale_arp_ms:.0f} ms")
    return r.outcome + mark + (f", {', '.join(figures)}" if figures else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default=None, help="VRRP implementation (default keepalived)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--fault", default="stop", choices=FAULTS, help="how the master leaves")
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help="comma-separated rows: profiles, and engine-ovn for the real OVN (default: all)",
    )
    args = parser.parse_args()
    rows_asked = [r for r in args.rows.split(",") if r]
    unknown = set(rows_asked) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; rows are {', '.join(ROWS)}")
    began = time.perf_counter()
    rows: dict[str, list[CellResult]] = {}
    total = len(rows_asked) * len(COLUMNS)
    for n, (profile, column) in enumerate(((p, c) for p in rows_asked for c in COLUMNS), 1):
        print(
            f"\r[{n}/{total}] {profile} / {column.title}".ljust(70),
            end="",
            file=sys.stderr,
            flush=True,
        )
        rows.setdefault(profile, []).append(
            run_cell(profile, column, fault=args.fault, impl=args.impl)
        )
    print(file=sys.stderr)
    header = ["profile", *(c.title for c in COLUMNS)]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for profile, cells in rows.items():
            print(f"| `{profile}` | " + " | ".join(cell_text(r) for r in cells) + " |")
    else:
        for profile, cells in rows.items():
            print(profile)
            for r in cells:
                print(f"  {r.column.title:26} {cell_text(r)}")
    predicted = sum(r.as_predicted for cells in rows.values() for r in cells)
    expected = sum(r.as_expected for cells in rows.values() for r in cells)
    print(
        f"\n{predicted}/{total} cells as predicted (docs/architecture.md#profile-predictions), "
        f"{expected}/{total} as expected "
        f"with the documented departures; {time.perf_counter() - began:.0f} s in all"
    )
    return 0 if expected == total else 1


if __name__ == "__main__":
    sys.exit(main())
