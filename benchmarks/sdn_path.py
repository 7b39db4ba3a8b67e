"""What the emulated SDN costs: ping RTT and ARP resolution, bare bridge vs the seed's SDN.

Builds the seed topology twice, once under ``l2-plain`` (a bare bridge) and once under
``arp-caching`` (ip-only port security, the ARP-caching controller answering from its cache),
and measures from the observer to ``ha_first``:

- **ping RTT**: ``ping -i 0.001`` with the neighbour entry warm; median and p99;
- **ARP resolution**: delete the observer's neighbour entry, send one datagram, time until the
  kernel reports the entry REACHABLE (a netlink event, no polling), timed by a small script
  inside the observer so the runner's threads never sit on the clock; many repetitions. Under
  ``l2-plain`` ha_first's kernel answers; under ``arp-caching`` the controller does.

Targets (issue 3): the SDN path adds less than 0.2 ms to the median RTT, and a
controller-answered ARP resolves in less than 2 ms (checked at p99). The host's stalls during
each profile's measurement (``lab.stalls``) are printed beside the figures.

Run as root: ``.venv/bin/python benchmarks/sdn_path.py [--pings N] [--arps N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from lab import Lab
from lab.scenario import DEFAULT_SCENARIO, parse_scenario
from lab.sdn.fabric_sdn import controller_interpreter
from lab.sdn.probe import resolve, timed_resolutions
from lab.stalls import HOST_FLOOR, StallWitness, column

PROFILES = ("l2-plain", "arp-caching")
RTT_TARGET_MS = 0.2
ARP_TARGET_MS = 2.0
_TIME = re.compile(r"time=([\d.]+) ms")


def scenario_text(profile: str) -> str:
    """The seed scenario with its network's SDN profile replaced."""
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["name"] = f"bench-{profile}"
    for net in data["networks"]:
        net["sdn"] = {"profile": profile}
    return yaml.safe_dump(data)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(profile: str, pings: int, arps: int) -> dict[str, Any]:
    """Ping RTTs and ARP resolution times (ms) from observer to ha_first under ``profile``."""
    scenario = parse_scenario(scenario_text(profile), f"<{profile}>")
    with Lab(scenario) as lab:
        observer, target = lab.node("observer"), lab.node("ha_first")
        ip = str(target.ip)
        assert resolve(observer, ip) == target.mac, "the observer must reach ha_first"
        with StallWitness() as witness:
            out = observer.run(
                ["ping", "-n", "-c", str(pings), "-i", "0.001", "-W", "1", ip], timeout=120
            ).stdout
            rtts = [float(m) for m in _TIME.findall(out)]
            times, lost = timed_resolutions(
                observer, ip, arps, interpreter=controller_interpreter()
            )
            stalls = witness.stalls()
        arp_ms = [t * 1000 for t in times]
        answered = 0
        if lab.fabric.sdn.controller is not None:
            events = lab.fabric.sdn.controller.events
            answered = sum(1 for e in events if e.get("event") == "answered" and e["ip"] == ip)
    return {
        "profile": profile,
        "pings": len(rtts),
        "rtt_median_ms": statistics.median(rtts),
        "rtt_p99_ms": percentile(rtts, 0.99),
        "arps": len(arp_ms),
        "arp_median_ms": statistics.median(arp_ms),
        "arp_p99_ms": percentile(arp_ms, 0.99),
        "arp_answered_by_controller": answered,
        "arp_lost": lost,
        "stalls": column(stalls),
        "stalls_worst_ms": round(max((s.seconds for s in stalls), default=0.0) * 1000, 2),
    }


def table(results: list[dict[str, Any]]) -> str:
    """The side-by-side table, with the targets and whether they are met."""
    by = {r["profile"]: r for r in results}
    plain, sdn = by["l2-plain"], by["arp-caching"]
    overhead = sdn["rtt_median_ms"] - plain["rtt_median_ms"]
    rows = [
        ("", "l2-plain", "arp-caching", "target", "met"),
        ("ping RTT median (ms)", plain["rtt_median_ms"], sdn["rtt_median_ms"], "", ""),
        ("ping RTT p99 (ms)", plain["rtt_p99_ms"], sdn["rtt_p99_ms"], "", ""),
        (
            "RTT overhead, median (ms)",
            "",
            overhead,
            f"< {RTT_TARGET_MS}",
            "yes" if overhead < RTT_TARGET_MS else "NO",
        ),
        ("ARP resolution median (ms)", plain["arp_median_ms"], sdn["arp_median_ms"], "", ""),
        (
            "ARP resolution p99 (ms)",
            plain["arp_p99_ms"],
            sdn["arp_p99_ms"],
            f"< {ARP_TARGET_MS} (controller)",
            "yes" if sdn["arp_p99_ms"] < ARP_TARGET_MS else "NO",
        ),
        ("ARPs answered by the controller", 0, sdn["arp_answered_by_controller"], "", ""),
        ("ARP rounds unanswered in 1.5 s", plain["arp_lost"], sdn["arp_lost"], "", ""),
        (f"host stalls > {HOST_FLOOR * 1000:g} ms / worst", plain["stalls"], sdn["stalls"], "", ""),
        (
            "samples (pings / ARPs)",
            f"{plain['pings']} / {plain['arps']}",
            f"{sdn['pings']} / {sdn['arps']}",
            "",
            "",
        ),
    ]
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure both profiles and print the table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=2000, help="pings per profile")
    parser.add_argument("--arps", type=int, default=500, help="ARP resolutions per profile")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = [measure(p, args.pings, args.arps) for p in PROFILES]
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    plain, sdn = results
    ok = (
        sdn["rtt_median_ms"] - plain["rtt_median_ms"] < RTT_TARGET_MS
        and sdn["arp_p99_ms"] < ARP_TARGET_MS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
