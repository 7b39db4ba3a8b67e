"""BFD soak: do two idle routers' sessions stay Up for minutes, on a loaded host?

    sudo .venv/bin/python benchmarks/bfd_soak.py [--minutes 10] [--impl bundled] [--stress]
                                                  [--out FILE]

Runs seed-bfd's topology and configs (BFD at 50 ms x 3 between ha_first and ha_second, a
detection time of 150 ms) with no fault: both routers start, both sessions come Up, and the lab
watches them for ``--minutes``. Nothing fails, so every session Down a daemon logs is a false
positive. Each is listed with the worst host stall the stall witness saw in the detection time
before it: a Down right after a stall longer than the detection time is the host's, one with no
such stall is the implementation's. ``--stress`` runs ``scripts/stress.sh`` (one core busy at
nice 0) for the whole soak. Prints a table; ``--out`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.recording import bfd_detect_times
from lab.routers.events import BfdEvent
from lab.runner import RunReport, ScenarioRun
from lab.scenario import SCENARIO_DIR, Scenario

ROOT = Path(__file__).resolve().parents[1]

#: The probes only keep the VIP's path warm here: a soak is about BFD, and ten minutes of the
#: usual 1,000 probes a second would be 600,000 records to account for.
PROBE_RATE = 20.0
#: Around the soak, for the bring-up and the teardown: how much longer the stress runs.
STRESS_MARGIN = 120


def scenario(seconds: float) -> Scenario:
    """seed-bfd without its fault: start, both sessions Up, then ``seconds`` of watching."""
    data: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "seed-bfd.yaml").read_text())
    data["name"] = "bfd-soak"
    up = [
        {"expect": {"bfd": {"node": "ha_second", "session": "ha_first"}, "within": 5}},
        {"expect": {"bfd": {"node": "ha_first", "session": "ha_second"}, "within": 5}},
    ]
    data["steps"] = [
        {"start": ["ha_first"]},
        {"expect": {"master": "ha_first", "within": 8}},
        {"start": ["ha_second"]},
        {"expect": {"backup": "ha_second", "within": 8}},
        *up,
        # As in seed-bfd: the VIP in both ports' allowed address pairs, so the probes get answers.
        {"port-set": {"port": "ha_first", "ip_address": "10.200.51.10"}},
        {"port-set": {"port": "ha_second", "ip_address": "10.200.51.10"}},
        {"expect": {"served_by": "ha_first", "within": 5}},
        {"name": f"{seconds:g} s with no fault", "observe": seconds},
        # Up at the end as well: a session that went Down and stayed there is a Down too.
        *[{**step, "expect": {**step["expect"], "within": 1}} for step in up],
    ]
    return Scenario.model_validate(data)


def detect_times() -> dict[tuple[str, str], float]:
    """Each session's configured detection time (s), from seed-bfd's configs."""
    configs = {
        n: (SCENARIO_DIR / "seed-bfd" / f"{n}.conf").read_text() for n in ("ha_first", "ha_second")
    }
    return bfd_detect_times(configs)


def false_downs(report: RunReport, detect: dict[tuple[str, str], float]) -> list[dict[str, Any]]:
    """Every session Down after that session was first Up, with the worst stall in the detection
    time before it (the stalls that could have starved the session's packets or timer)."""
    first_up: dict[tuple[str, str], float] = {}
    downs: list[tuple[BfdEvent, float]] = []
    for e in sorted(report.bfd_events, key=lambda e: e.at):
        key = (e.router, e.session)
        if e.kind != "session":
            continue
        if e.state == "Up":
            first_up.setdefault(key, e.at)
        elif e.is_down and key in first_up:
            downs.append((e, detect.get(key, 0.0)))
    stalls = report.stalls.get("stalls", [])
    out = []
    for e, window in downs:
        seen = [s for s in stalls if s["end"] >= e.at - window and s["start"] <= e.at]
        out.append(
            {
                "t_s": round(e.at - report.started, 3),
                "router": e.router,
                "session": e.session,
                "state": e.state,
                "diag": e.diag,
                "detection_ms": round(window * 1000, 1),
                "worst_stall_ms": max((s["ms"] for s in seen), default=0.0),
                "stalls": seen,
            }
        )
    return out


def start_stress(seconds: float) -> subprocess.Popen[bytes]:
    """scripts/stress.sh in a session of its own (stopped with its busy child at the end)."""
    return subprocess.Popen(
        [str(ROOT / "scripts" / "stress.sh"), str(int(seconds) + STRESS_MARGIN)],
        start_new_session=True,
    )


def stop_stress(stress: subprocess.Popen[bytes]) -> None:
    """SIGTERM the stress script, whose trap stops its busy loop, and reap it."""
    if stress.poll() is None:
        os.killpg(stress.pid, signal.SIGTERM)
    stress.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--impl", default="bundled", help="bundled or keepalived (FRR: no BFD)")
    parser.add_argument("--stress", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error(f"--minutes: give a positive number of minutes, got {args.minutes:g}")
    seconds = args.minutes * 60
    detect = detect_times()

    def progress(step: Any) -> None:
        mark = "ok " if step.ok else "FAIL"
        print(f"  {mark} {step.name}: {step.detail}", file=sys.stderr, flush=True)

    print(
        f"bfd soak: {args.impl}, {seconds:g} s, "
        f"{'beside scripts/stress.sh' if args.stress else 'quiet host'}",
        file=sys.stderr,
    )
    stress = start_stress(seconds) if args.stress else None
    try:
        run = ScenarioRun(
            scenario(seconds), impl=args.impl, probe_rate=PROBE_RATE, progress=progress
        )
        report = run.execute()
    finally:
        if stress is not None:
            stop_stress(stress)
    downs = false_downs(report, detect)
    summary = {k: report.stalls.get(k) for k in ("count", "worst_ms", "total_ms", "floor_ms")}
    head = f"{'router':10}{'session':11}{'detection':>11}{'false Downs':>13}"
    print(f"\n{head}{'worst stall before one':>24}")
    for (router, session), window in sorted(detect.items()):
        mine = [d for d in downs if (d["router"], d["session"]) == (router, session)]
        worst = max((d["worst_stall_ms"] for d in mine), default=None)
        shown = f"{worst:.1f} ms" if worst is not None else "-"
        print(f"{router:10}{session:11}{window * 1000:>8.0f} ms{len(mine):>13}{shown:>24}")
    for d in downs:
        print(
            f"  Down at {d['t_s']:.3f} s: {d['router']}'s {d['session']} (diag {d['diag']}), "
            f"worst stall in the {d['detection_ms']:g} ms before: {d['worst_stall_ms']:.1f} ms"
        )
    print(
        f"stall witness over the run: {summary['count']} stalls, worst {summary['worst_ms']} ms, "
        f"total {summary['total_ms']} ms; failovers: {len(report.failovers)}; "
        f"steps {'all held' if report.ok else 'NOT all held'}"
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "impl": args.impl,
                    "seconds": seconds,
                    "stress": args.stress,
                    "detection_ms": {
                        f"{r}/{s}": round(t * 1000, 1) for (r, s), t in detect.items()
                    },
                    "false_downs": downs,
                    "failovers": [f.as_json() for f in report.failovers],
                    "stalls": summary,
                    "steps_held": report.ok,
                    "versions": report.versions,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"figures: {args.out}")
    return 0 if report.ok and not downs else 1


if __name__ == "__main__":
    sys.exit(main())
