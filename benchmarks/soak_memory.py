"""Where the soak runner's resident memory goes: the experiments behind docs/benchmarks.md's
"What still grows" (issue 17), one JSON line per cycle on stdout.

    sudo .venv/bin/python benchmarks/soak_memory.py fresh-labs --cycles 80 [--no-trim]
    sudo .venv/bin/python benchmarks/soak_memory.py one-lab --cycles 200 [--no-trim]
    sudo .venv/bin/python benchmarks/soak_memory.py one-lab --cycles 70 --tracemalloc 10
    sudo .venv/bin/python benchmarks/soak_memory.py one-lab --cycles 70 --tracemalloc 10 \
        --forget-records
    sudo .venv/bin/python benchmarks/soak_memory.py one-lab --cycles 300 --smaps 30 \
        --forget-records [--thread-arenas] [--dynamic-mmap]
    sudo .venv/bin/python benchmarks/soak_memory.py one-lab --impl bundled --cycles 200 \
        --smaps 20 --daemon ha_second --forget-records [--trace-daemons 12]

The cycles are the soak's own (:func:`lab.soak.fresh_cycle`, :func:`lab.soak.one_lab_cycles`),
but nothing is recorded to disk and no sample is kept. Like the soak, the runner has one malloc
arena (:func:`lab.linux.one_malloc_arena`) and a fixed mmap threshold
(:func:`lab.linux.fixed_mmap_threshold`); ``--thread-arenas`` keeps glibc's default arenas, one
per thread up to eight a core, and ``--dynamic-mmap`` its sliding threshold, to measure what
each costs. Each line has the runner's VmRSS before
and after the soak's tidying (``raw``, ``trimmed``; with ``--no-trim`` only the collection runs,
so the two agree), the resident set split into anonymous and file pages after that (``now``),
glibc's ``mallinfo2`` (the malloc arenas' size, in use and free, KiB) and, with
``--tracemalloc N``, the live Python memory traced from cycle N on. At the end with
``--tracemalloc``: the difference between the snapshots at cycle N and at the last cycle, by
file and by traceback (what live memory the run kept, and where it was allocated), and what
emptying CPython's type attribute cache frees. With ``--smaps N``: which kinds of mapping
(glibc's heap and arenas, thread stacks, CPython's object arenas) gained anonymous memory from
cycle N to the end, for the memory tracemalloc does not see. With ``--daemon NODE`` (one-lab):
the same for the daemon of that node in each lab, its anonymous and file pages every cycle, and
at the end which of its mappings gained resident pages, anonymous or from a file; for the bundled
daemon also its live Python blocks (its status' ``memory``), and with ``--trace-daemons N``
(every daemon then runs with ``PYTHONTRACEMALLOC=N``) its traced memory each cycle and, at the
end, the difference between its snapshots (SIGUSR1) at cycle ``--smaps`` and at the last.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import linux, soak
from lab.routers.bundled import BundledRouter
from lab.wait import wait_until


def mallinfo() -> dict[str, int]:
    """glibc's totals over every malloc arena, in KiB: system memory, in use, free, mmapped."""
    info = linux.mallinfo()
    assert info is not None, "the soak's memory hunt reads glibc's allocator"
    return {
        "arena_kib": info.arena // 1024,
        "used_kib": info.uordblks // 1024,
        "free_kib": info.fordblks // 1024,
        "mmap_kib": info.hblkhd // 1024,
    }


def rss_parts(pid: int | str = "self") -> dict[str, int]:
    """A process's resident set split as ``/proc/PID/status`` splits it (KiB): anonymous
    memory (heaps, arenas, stacks) and file pages (the interpreter, libraries, mapped files),
    which come and go with the kernel's page reclaim and first use, not with the process."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if line.startswith("Rss"))
    return {k.lower(): int(v.split()[0]) for k, v in fields.items()}


def anonymous_mappings(pid: int | str = "self") -> dict[int, tuple[str, int, int]]:
    """A process's mappings that hold anonymous pages, by start address: (kind, size KiB,
    anonymous KiB) from ``/proc/PID/smaps``. The kind says whose they are by their shape:
    ``heap`` (glibc's main arena, brk), ``thread-stack`` (8 MiB: a thread's stack, live or in
    glibc's cache), ``thread-arena`` (the used part of one of glibc's per-thread malloc arenas,
    which start on a 64 MiB boundary: ``HEAP_MAX_SIZE``), ``other`` (CPython's object arenas
    among them: 256 KiB mappings the kernel merges when they are adjacent)."""
    mappings: dict[int, tuple[str, int, int]] = {}
    start, name, size = 0, "", 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                low, high = (int(x, 16) for x in head[0].split("-"))
                start, size = low, (high - low) // 1024
                name = head[5] if len(head) > 5 else ""
            elif head[0] == "Anonymous:" and int(head[1]) > 0:
                mappings[start] = (_kind(name, start, size), size, int(head[1]))
    return mappings


#: glibc's ``HEAP_MAX_SIZE`` on 64-bit: a per-thread arena's heap is mapped on this boundary.
_ARENA_ALIGN = 64 << 20


def _kind(name: str, start: int, size_kib: int) -> str:
    if name == "[heap]":
        return "heap"
    if name:
        return f"file {name}" if name.startswith("/") else name
    if size_kib == 8192:
        return "thread-stack"
    if start % _ARENA_ALIGN == 0:
        return "thread-arena"
    return "other"


def anonymous_growth(
    before: dict[int, tuple[str, int, int]], after: dict[int, tuple[str, int, int]]
) -> dict[str, tuple[int, int]]:
    """Per kind of mapping: (mappings now minus then, anonymous KiB now minus then)."""
    totals: dict[str, list[int]] = {}
    for sign, mappings in ((-1, before), (1, after)):
        for kind, _, anon in mappings.values():
            entry = totals.setdefault(kind, [0, 0])
            entry[0] += sign
            entry[1] += sign * anon
    return {k: (n, kib) for k, (n, kib) in sorted(totals.items()) if n or kib}


def file_resident(pid: int | str = "self") -> dict[str, int]:
    """A process's resident file pages (KiB) by file: the interpreter, its libraries and
    modules, first touched as code and data are first used, and given back to the page cache
    when the kernel reclaims them: not memory the process allocated."""
    resident: dict[str, int] = {}
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 and head[5].startswith("/") else ""
            elif head[0] == "Rss:" and name:
                resident[name] = resident.get(name, 0) + int(head[1])
    return resident


#: A daemon's maps at one cycle: (pid, cycle, anonymous mappings, resident file pages).
Maps = tuple[int, int, dict[int, tuple[str, int, int]], dict[str, int]]


class DaemonMemory:
    """The memory of one node's daemon in each soak lab, cycle by cycle (``--daemon``)."""

    def __init__(self, node: str, since: int, final: int) -> None:
        """Watch ``node``'s daemon; its maps are compared from cycle ``since`` on, and its
        traced memory between then and the cycles from ``final`` on (each lab's last)."""
        self.node = node
        self.since = since
        self.final = final
        #: Per implementation: the daemon's maps at the first cycle compared, and the latest.
        self.first: dict[str, Maps] = {}
        self.last: dict[str, Maps] = {}
        #: The bundled daemon's tracemalloc snapshots at its first compared cycle and the last.
        self.traced: dict[int, list[tracemalloc.Snapshot]] = {}

    def __call__(self, cycle: int, soak_lab: soak.SoakLab) -> dict[str, float]:
        """The daemon's anonymous and file pages now (KiB), and its maps kept for the end."""
        # Only the daemons the labs started with are traced (--trace-daemons): a traced
        # interpreter starts so slowly that a restarted daemon misses the router's start timeout.
        os.environ.pop("PYTHONTRACEMALLOC", None)
        pids = soak_lab.routers[self.node].daemon_pids()
        out: dict[str, float] = {}
        for pid in pids:
            for key, kib in rss_parts(pid).items():
                out[f"watched.{key}"] = out.get(f"watched.{key}", 0) + kib
        if cycle >= self.since and pids:
            # One process of the daemon (the bundled daemon has only one): a restart starts
            # its comparison again, since a new process proves nothing about the old.
            pid = pids[-1]
            maps = (pid, cycle, anonymous_mappings(pid), file_resident(pid))
            first = self.first.get(soak_lab.impl)
            if first is None or first[0] != pid:
                self.first[soak_lab.impl] = maps
            self.last[soak_lab.impl] = maps
        out["watched.pid"] = pids[-1] if pids else 0
        router = soak_lab.routers[self.node]
        if isinstance(router, BundledRouter) and router.running:
            memory = router.status()["memory"]
            out["watched.blocks"] = memory["allocated_blocks"]
            if "traced_kib" in memory:
                out["watched.traced_kib"] = memory["traced_kib"]
                snapshots = self.traced.setdefault(router.pids()[-1], [])
                # Two snapshots a daemon: its first compared cycle and its lab's last.
                if (cycle >= self.since and not snapshots) or cycle >= self.final:
                    snapshots[1:] = [self._snapshot(router)]
        return out

    @staticmethod
    def _snapshot(router: BundledRouter) -> tracemalloc.Snapshot:
        """The daemon's tracemalloc snapshot, asked for with SIGUSR1 and read from its node."""
        path = router.node.path(f"{router.control_path}.tracemalloc")
        path.unlink(missing_ok=True)
        os.kill(router.pids()[-1], signal.SIGUSR1)
        wait_until(path.exists, timeout=10.0, what=f"{router.name}'s snapshot at {path}")
        return tracemalloc.Snapshot.load(str(path))

    def report(self, top: int) -> None:
        """Print, per implementation, what the daemon's mappings gained between its first
        compared cycle and its last."""
        for impl, (pid, began, anon0, files0) in self.first.items():
            _, ended, anon1, files1 = self.last[impl]
            print(f"# {impl}: {self.node}'s daemon (pid {pid}), cycles {began} to {ended}")
            for kind, (count, kib) in anonymous_growth(anon0, anon1).items():
                print(f"#   anonymous, {kind}: {count:+d} mappings, {kib:+d} KiB")
            gained = sorted(
                ((kib - files0.get(name, 0), name) for name, kib in files1.items()), reverse=True
            )
            print(f"#   file pages: {sum(g for g, _ in gained):+d} KiB; most gained:")
            for gain, name in gained[:top]:
                if gain:
                    print(f"#     {name}: {gain:+d} KiB")
        for pid, snapshots in self.traced.items():
            if len(snapshots) < 2:
                continue
            older, newer = snapshots
            total = sum(stat.size_diff for stat in newer.compare_to(older, "filename"))
            print(f"# live Python memory the daemon (pid {pid}) kept: {total:+} B; by file")
            for stat in newer.compare_to(older, "filename")[:top]:
                print(f"#   {stat}")
            print("# by traceback (innermost last)")
            for stat in newer.compare_to(older, "traceback")[:top]:
                print(f"#   {stat.size_diff:+} B in {stat.count_diff:+} blocks")
                for text in stat.traceback.format()[-8:]:
                    print(f"#     {text}")


def _type_cache_share() -> int:
    """The live memory (traced bytes) that emptying CPython's type attribute cache frees.

    The attribute names pyroute2 builds for every request (``getattr(f, f"get_{key}")``) are
    kept by nothing but that cache (4096 slots, each holding its name), so they go with it.
    Measured while the one-lab soak's labs still stand: their teardown frees far more."""
    before = tracemalloc.get_traced_memory()[0]
    sys._clear_type_cache()
    return before - tracemalloc.get_traced_memory()[0]


def main() -> int:
    """Run the cycles, print a line per cycle, then the tracemalloc difference if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=soak.MODES)
    parser.add_argument("--cycles", type=int, default=80)
    parser.add_argument("--no-trim", action="store_true", help="collect only, no malloc_trim")
    parser.add_argument(
        "--thread-arenas",
        action="store_true",
        help="keep glibc's per-thread malloc arenas (the soak runner uses one: lab.linux)",
    )
    parser.add_argument(
        "--dynamic-mmap",
        action="store_true",
        help="keep glibc's sliding mmap threshold (the soak runner fixes it: lab.linux)",
    )
    parser.add_argument("--tracemalloc", type=int, metavar="N", help="trace from cycle N on")
    parser.add_argument("--top", type=int, default=15, help="differences printed at the end")
    parser.add_argument(
        "--smaps",
        type=int,
        metavar="N",
        help="at the end, which kinds of mapping gained anonymous memory since cycle N",
    )
    parser.add_argument(
        "--fault",
        action="append",
        choices=soak.FAULTS,
        help="the faults to mix, repeatable (default: the soak's, lab.soak.FAULTS)",
    )
    parser.add_argument(
        "--impl",
        action="append",
        choices=soak.IMPLS,
        help="the implementations to mix, repeatable (default: the soak's, lab.soak.IMPLS)",
    )
    parser.add_argument(
        "--daemon",
        metavar="NODE",
        choices=(soak.MASTER, soak.BACKUP),
        help="one-lab: also the memory of this node's daemon in each lab (from --smaps N, or 0)",
    )
    parser.add_argument(
        "--trace-daemons",
        type=int,
        metavar="N",
        help="start the labs' daemons with PYTHONTRACEMALLOC=N (N frames a trace), for --daemon",
    )
    parser.add_argument(
        "--forget-records",
        action="store_true",
        help="one-lab: empty the labs' records after each cycle (lab.soak.forget_records)",
    )
    args = parser.parse_args()
    if args.trace_daemons:
        # Read by the interpreters the labs start (the bundled daemon), not by this one.
        os.environ["PYTHONTRACEMALLOC"] = str(args.trace_daemons)
    if not args.thread_arenas:
        linux.one_malloc_arena()
    if not args.dynamic_mmap:
        linux.fixed_mmap_threshold()
    if args.no_trim:
        soak.TRIM = False  # runner_series then only collects: the "trimmed" figure is raw
    impls = list(args.impl or soak.IMPLS)
    mix = tuple(args.fault or soak.FAULTS)
    final = args.cycles - len(impls)
    daemon = DaemonMemory(args.daemon, args.smaps or 0, final) if args.daemon else None
    if args.daemon and args.mode != "one-lab":
        parser.error("--daemon watches the one-lab soak's daemons: a fresh lab's go with it")
    if args.mode == "one-lab":
        samples = soak.one_lab_cycles(
            impls, range(args.cycles), mix, forget_records=args.forget_records, measure=daemon
        )
    else:
        samples = (soak.fresh_cycle(n, impls, mix) for n in range(args.cycles))
    mapped: dict[int, tuple[str, int, int]] | None = None
    first: tracemalloc.Snapshot | None = None
    freed = 0
    last: tracemalloc.Snapshot | None = None
    for sample in samples:
        n = sample.cycle
        if args.tracemalloc is not None and n == args.tracemalloc - 1:
            tracemalloc.start(12)
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        if args.smaps is not None and n == args.smaps:
            mapped = anonymous_mappings()
        if args.tracemalloc is not None and n in (args.tracemalloc, args.cycles - 1):
            gc.collect()
            if n == args.tracemalloc:
                first = tracemalloc.take_snapshot()
            else:
                last = tracemalloc.take_snapshot()
                freed = _type_cache_share()
        line = {
            "cycle": n,
            "impl": sample.impl,
            "fault": sample.fault,
            "raw": sample.resources["runner.rss_kib"],
            "trimmed": sample.resources["runner.trimmed.rss_kib"],
            "malloc": mallinfo(),
            "now": rss_parts(),
            "traced": traced,
        }
        if daemon is not None:
            line["daemon"] = {
                k.removeprefix("watched."): v
                for k, v in sample.resources.items()
                if k.startswith("watched.")
            }
        print(json.dumps(line), flush=True)
    if mapped is not None:
        cycles = args.cycles - 1 - args.smaps
        print(f"# anonymous memory gained over {cycles} cycles, by kind of mapping")
        now = anonymous_mappings()
        for kind, (count, kib) in anonymous_growth(mapped, now).items():
            print(f"#   {kind}: {count:+d} mappings, {kib:+d} KiB ({kib / cycles:+.2f} a cycle)")
        grown = sorted(
            ((anon - mapped.get(start, (kind, size, 0))[2], start, kind, size)
             for start, (kind, size, anon) in now.items()),
            reverse=True,
        )  # fmt: skip
        print("# the mappings that gained most (start, kind, size KiB: anonymous KiB gained)")
        for gain, start, kind, size in grown[: args.top]:
            print(f"#   {start:#x} {kind} {size}: {gain:+d}")
    if daemon is not None:
        daemon.report(args.top)
    if first is not None and last is not None:
        print(f"# sys._clear_type_cache() freed {freed} B of live memory (at the last cycle)")
        cycles = args.cycles - 1 - args.tracemalloc
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
        first, last = first.filter_traces(ignore), last.filter_traces(ignore)
        print(f"# live Python memory kept over {cycles} cycles, by file")
        for stat in last.compare_to(first, "filename")[: args.top]:
            print(f"#   {stat}")
        print("# by traceback (innermost last)")
        for stat in last.compare_to(first, "traceback")[: args.top]:
            print(f"#   {stat.size_diff:+} B in {stat.count_diff:+} blocks")
            for text in stat.traceback.format()[-6:]:
                print(f"#     {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
