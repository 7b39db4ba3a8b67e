"""What adding and removing a VIP costs the bundled daemon: its own rtnetlink messages
(``vrrp.rtnl``, what it uses) against pyroute2's ``IPRoute.addr`` (what it used), in time a
request and in live memory kept (issue 17: the never-restarted daemon's soak rise).

    sudo .venv/bin/python benchmarks/vip_requests.py [--rounds 3000] [--timing-rounds 2000]

The program moves itself into a network namespace of its own (``unshare(CLONE_NEWNET)``: the
root namespace is never touched, and the namespace ends with the process) and adds and removes
``192.0.2.10/24`` on its ``lo``, one round being one add and one delete, as a failover and a
handover make. It prints two tables: the live Python memory each way keeps (tracemalloc, after
a collection, against round 0) at rounds from 0 to ``--rounds``, and the median time a request
takes over ``--timing-rounds`` rounds untraced.
"""

from __future__ import annotations

import argparse
import array
import gc
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from ipaddress import ip_interface
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyroute2 import IPRoute

from lab import linux
from vrrp.rtnl import AddressSocket

ADDRESS = ip_interface("192.0.2.10/24")
#: The rounds at which the kept memory is read (those above --rounds are left out).
MARKS = (0, 50, 100, 150, 200, 300, 500, 1000, 2000, 3000, 5000, 10000)

Round = Callable[[], None]


def rtnl_round(index: int) -> Round:
    """One add and one delete through ``vrrp.rtnl``."""
    requests = AddressSocket()

    def once() -> None:
        assert requests.request("add", index, ADDRESS) == 0
        assert requests.request("del", index, ADDRESS) == 0

    return once


def pyroute2_round(index: int) -> Round:
    """One add and one delete through pyroute2's ``IPRoute.addr``, as the daemon did."""
    ipr = IPRoute()
    address, prefixlen = str(ADDRESS.ip), ADDRESS.network.prefixlen

    def once() -> None:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        ipr.addr("del", index=index, address=address, prefixlen=prefixlen)

    return once


def kept(round_once: Round, rounds: int) -> dict[int, int]:
    """Live bytes kept (after a collection) at each mark, against round 0."""
    marks = [mark for mark in MARKS if mark <= rounds]
    # Filled in place: a table that grew as it is filled would be counted as kept.
    figures = array.array("q", bytes(8 * len(marks)))
    tracemalloc.start()
    try:
        base = 0
        for n in range(rounds + 1):
            if n in marks:
                gc.collect()
                sys._clear_type_cache()  # names only that cache keeps are not the requests'
                now = tracemalloc.get_traced_memory()[0]
                base = base or now
                figures[marks.index(n)] = now - base
            round_once()
    finally:
        tracemalloc.stop()
    return dict(zip(marks, figures, strict=True))


def per_request_us(round_once: Round, rounds: int) -> float:
    """The median time of one request (half a round), in microseconds, untraced."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        round_once()
        times.append((time.perf_counter() - began) / 2)
    return statistics.median(times) * 1e6


def main() -> int:
    """Measure both ways and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000, help="rounds for the memory table")
    parser.add_argument("--timing-rounds", type=int, default=2000, help="rounds timed")
    args = parser.parse_args()
    if args.rounds < 1 or args.timing_rounds < 1:
        parser.error("--rounds and --timing-rounds take a positive count")
    linux.unshare(linux.CLONE_NEWNET)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    index = socket.if_nametoindex("lo")
    ways = {"vrrp.rtnl": rtnl_round(index), "pyroute2": pyroute2_round(index)}
    memory = {name: kept(way, args.rounds) for name, way in ways.items()}
    print(f"live memory kept (bytes) after N rounds of add + delete of {ADDRESS} on lo")
    print(f"| rounds | {' | '.join(ways)} |")
    print(f"|---:|{'---:|' * len(ways)}")
    for mark in sorted(memory["vrrp.rtnl"]):
        print(f"| {mark} | {' | '.join(str(memory[name][mark]) for name in ways)} |")
    print(f"\nmedian time a request, over {args.timing_rounds} rounds, untraced")
    for name, way in ways.items():
        print(f"| {name} | {per_request_us(way, args.timing_rounds):.0f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
