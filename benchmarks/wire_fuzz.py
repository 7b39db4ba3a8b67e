"""The wire fuzzer's long run against the bundled daemon (issue 17).

    sudo .venv/bin/python benchmarks/wire_fuzz.py [--count 5000] [--seed 1] [--family 4|6|both]
                                                  [--mode multicast|unicast|both]
                                                  [--rate 400] [--out FILE]

Builds the seed topology on plain L2 (dual stack), and for each family and mode asked starts a
bundled master/backup pair and sends it ``--count`` mutated adverts from the observer at
``--rate`` frames per second (``lab.wire_fuzz_run.run_pair``), showing progress; then prints
the counter table (expected by the oracle and seen, per router and for the fabric's bridge)
and every problem found: a crash, a transition, a counter off, silence after the fuzz. Each
combination's result is appended to ``--out`` as one JSON line as soon as it is known. Exit
status 1 when any combination found a problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import Lab
from lab.scenario import parse_scenario
from lab.wire_fuzz_run import run_pair, scenario_text


def _progress(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr, rewritten in place."""
    started = time.monotonic()

    def show(sent: int, total: int) -> None:
        took = time.monotonic() - started
        end = "\n" if sent == total else ""
        print(f"\r{label}: {sent}/{total} frames sent, {took:.1f} s", end=end, file=sys.stderr)

    return show


def main() -> int:
    """Run the asked combinations; print each table; append each result to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="adverts per combination")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--family", choices=["4", "6", "both"], default="both")
    parser.add_argument("--mode", choices=["multicast", "unicast", "both"], default="both")
    parser.add_argument("--rate", type=float, default=400.0, help="frames per second")
    parser.add_argument("--out", type=Path, help="append one JSON line per combination here")
    args = parser.parse_args()
    families = [4, 6] if args.family == "both" else [int(args.family)]
    modes = ["multicast", "unicast"] if args.mode == "both" else [args.mode]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = False
    with Lab(parse_scenario(scenario_text(), "<wire fuzz: seed on l2-plain, dual stack>")) as lab:
        for family in families:
            for mode in modes:
                label = f"IPv{family} {mode}"
                started = time.monotonic()
                result = run_pair(
                    lab,
                    family,
                    mode,
                    seed=args.seed,
                    count=args.count,
                    rate=args.rate,
                    progress=_progress(label),
                )
                print(result.table())
                print(f"{label}: {time.monotonic() - started:.1f} s with bring-up and checks\n")
                failed |= not result.ok
                if args.out is not None:
                    with args.out.open("a") as out:
                        out.write(json.dumps(result.as_dict(), sort_keys=True) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
