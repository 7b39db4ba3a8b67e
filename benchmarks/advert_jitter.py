"""Advert interval jitter and CPU of one VRRP daemon holding many VRIDs (issue 5's target).

Runs one router (``bundled`` or ``keepalived``) on ha_first of the seed topology on plain L2,
configured with N VRRPv3 instances (VRIDs 1..N, multicast, one VIP each, priority 200) at the
given advert interval, lets them all become master, then captures the adverts on the observer
for a while with kernel timestamps (SO_TIMESTAMPNS) and reports per-VRID inter-advert
intervals (p50/p99/max), the |interval - advert_int| jitter percentiles, and the daemon's CPU
(utime+stime over the window) per 1,000 adverts.

    .venv/bin/python benchmarks/advert_jitter.py --impl bundled --vrids 255 --interval 0.1

Benchmarks report; they are not asserted by tests (docs/architecture.md#waiting).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import struct
import threading
import time
from pathlib import Path

import yaml

from lab import Lab
from lab.routers import make_router
from lab.scenario import parse_scenario
from lab.stalls import HOST_FLOOR, StallWitness, column
from lab.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
_SO_TIMESTAMPNS = 35
_ETH_P_ALL = 0x0003


def _config(vrids: int, interval: float, rt_priority: int | None = None) -> str:
    blocks = []
    if rt_priority is not None:
        # keepalived's keyword, honoured by both implementations: SCHED_RR for the VRRP process.
        blocks.append(f"global_defs {{\n    vrrp_rt_priority {rt_priority}\n}}\n")
    for vrid in range(1, vrids + 1):
        blocks.append(
            f"vrrp_instance bench_{vrid} {{\n"
            "    interface ens3\n"
            f"    virtual_router_id {vrid}\n"
            "    version 3\n"
            "    priority 200\n"
            f"    advert_int {interval:g}\n"
            "    virtual_ipaddress {\n"
            f"        10.201.{vrid // 250}.{vrid % 250 + 1}/32\n"
            "    }\n"
            "}\n"
        )
    return "".join(blocks)


def _scenario() -> str:
    """The seed topology on plain L2, without the seed's routers and steps."""
    data = yaml.safe_load((REPO / "scenarios" / "seed.yaml").read_text())
    for network in data["networks"]:
        network["sdn"] = {"profile": "l2-plain"}
    for key in ("routers", "steps"):
        data.pop(key, None)
    return yaml.safe_dump(data, sort_keys=False)


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def _capture(sock: socket.socket, until: float, out: dict[int, list[float]]) -> None:
    sock.settimeout(0.2)
    while time.time() < until:
        try:
            data, anc, _flags, _addr = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        except TimeoutError:
            continue
        if len(data) < 14 + 20 + 8 or data[12:14] != b"\x08\x00" or data[14 + 9] != 112:
            continue
        ihl = (data[14] & 0x0F) * 4
        vrrp = data[14 + ihl :]
        stamp = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec + nsec / 1e9
        if stamp is None or vrrp[2] == 0:
            continue
        out.setdefault(vrrp[1], []).append(stamp)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    impl: str, vrids: int, interval: float, seconds: float, rt_priority: int | None = None
) -> dict[str, object]:
    """Measure one implementation; returns the figures as a dict."""
    with Lab(parse_scenario(_scenario(), "<seed, l2-plain>")) as lab:
        router = make_router(impl, lab.node("ha_first"), _config(vrids, interval, rt_priority))
        try:
            router.start(timeout=30)
            settle = 3 * interval + 1 + vrids * 0.005
            wait_until(
                lambda: sum(1 for e in router.events.snapshot() if e.state == "MASTER"),
                timeout=settle + 30,
                what=f"{vrids} instances MASTER",
                accept=lambda n: n >= vrids,
            )
            sock = lab.node("observer").socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL)
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.bind(("ens3", 0))
            stamps: dict[int, list[float]] = {}
            # The host's stalls during the capture, printed beside the jitter they may explain.
            with StallWitness() as witness:
                until = time.time() + seconds
                cpu0 = _cpu_seconds(router.pids())
                thread = threading.Thread(target=_capture, args=(sock, until, stamps))
                thread.start()
                thread.join()
                cpu1 = _cpu_seconds(router.pids())
                stalls = witness.stalls(until - seconds, until)
            sock.close()
        finally:
            router.close()
    intervals = [b - a for times in stamps.values() for a, b in itertools.pairwise(times)]
    adverts = sum(len(t) for t in stamps.values())
    jitter = [abs(i - interval) for i in intervals]
    return {
        "impl": impl,
        "rt_priority": rt_priority,
        "vrids": vrids,
        "vrids_seen": len(stamps),
        "advert_int_ms": interval * 1000,
        "seconds": seconds,
        "adverts": adverts,
        "interval_p50_ms": round(statistics.median(intervals) * 1000, 3),
        "interval_p99_ms": round(_percentile(intervals, 0.99) * 1000, 3),
        "interval_max_ms": round(max(intervals) * 1000, 3),
        "jitter_p50_ms": round(statistics.median(jitter) * 1000, 3),
        "jitter_p99_ms": round(_percentile(jitter, 0.99) * 1000, 3),
        "cpu_percent": round((cpu1 - cpu0) / seconds * 100, 1),
        "cpu_ms_per_1000_adverts": round((cpu1 - cpu0) * 1000 / max(1, adverts) * 1000, 1),
        f"stalls > {HOST_FLOOR * 1000:g} ms / worst": column(stalls),
    }


def main() -> None:
    """Command line: one run per ``--impl``, one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", action="append", choices=["bundled", "keepalived"])
    parser.add_argument("--vrids", type=int, default=255)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rt",
        type=int,
        default=None,
        metavar="PRIO",
        help="set vrrp_rt_priority PRIO (SCHED_RR) in the config",
    )
    args = parser.parse_args()
    for impl in args.impl or ["bundled"]:
        result = run(impl, args.vrids, args.interval, args.seconds, args.rt)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
