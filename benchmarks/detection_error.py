"""Detection error against the RFC figure, per VRRP implementation, on the same load.

    sudo .venv/bin/python benchmarks/detection_error.py [--runs 10] [--impl NAME ...]

Runs the short-timer scenario (advert 0.1 s, backup priority 100) with a graceful stop and with
a host-down of the master, ``--runs`` times each per implementation, and prints the detection
(fault → the new master's first advert in the capture) against the RFC figure: Skew_Time for a
stop, the window [Master_Down_Interval − Adv, Master_Down_Interval] for a host-down, where the
error is the distance to the window (0 inside it). The last column counts the host stalls the
stall witness saw in the failover windows (``lab.stalls``), and the worst: a figure next to a
stall longer than its error is the host's, not the implementation's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.runner import ScenarioRun
from lab.scenario import SCENARIO_DIR, Scenario
from lab.stalls import HOST_FLOOR


def scenario(fault: str) -> Scenario:
    data: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "short-timers.yaml").read_text())
    data["name"] = f"detection-{fault}"
    data["steps"] = [
        {"start": "all"},
        {"expect": {"master": "ha_first", "within": 2}},
        {"expect": {"served_by": "ha_first", "within": 2}},
        {fault: "ha_first"},
        {"expect": {"served_by": "ha_second", "within": 2}},
    ]
    return Scenario.model_validate(data)


def error_ms(detection: float, theory: float, low: float | None) -> float:
    if low is None:
        return detection - theory
    return 0.0 if low <= detection <= theory else min(detection - low, detection - theory, key=abs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--impl", action="append", default=None)
    args = parser.parse_args()
    impls = args.impl or ["keepalived", "bundled"]
    print(
        f"{'impl':12}{'fault':11}{'detection p50':>15}{'RFC':>16}{'|error| p50':>13}"
        f"{'|error| max':>13}  stalls > {HOST_FLOOR * 1000:g} ms / worst"
    )
    for impl in impls:
        for fault in ("stop", "host-down"):
            detections, errors, theory, low = [], [], 0.0, None
            stalls, worst = 0, 0.0
            for n in range(args.runs):
                print(
                    f"\r{impl} {fault} {n + 1}/{args.runs}".ljust(40),
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                report = ScenarioRun(scenario(fault), impl=impl).execute()
                f = report.failovers[-1]
                window = report.stalls["failovers"][-1]
                stalls, worst = stalls + window["count"], max(worst, window["worst_ms"])
                if f.detection_ms is None or f.theory_ms is None:
                    continue
                theory, low = f.theory_ms, f.theory_min_ms
                detections.append(f.detection_ms)
                errors.append(abs(error_ms(f.detection_ms, theory, low)))
            print("\r".ljust(40), end="\r", file=sys.stderr)
            rfc = f"{low:.1f}–{theory:.1f}" if low is not None else f"{theory:.1f}"
            print(
                f"{impl:12}{fault:11}{statistics.median(detections):>12.1f} ms{rfc:>13} ms"
                f"{statistics.median(errors):>10.2f} ms{max(errors):>10.2f} ms"
                f"  {stalls} / {worst:.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
