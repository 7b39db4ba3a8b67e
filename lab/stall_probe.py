"""The host stall probe: one per CPU, wakes every period, reports each late wake-up.

Run by :class:`lab.stalls.StallWitness` as ``python -I stall_probe.py CPU PERIOD FLOOR PARENT
[PEER]``, in the runner's own namespaces (it sends no traffic, so it needs no lab node).

* Without PEER it pins itself to CPU and takes the highest priority it is allowed (SCHED_FIFO
  2, one above the routers under test, else nice -20, else none): it is late only when that CPU
  ran nothing it could preempt.
* With PEER (CPU is then -1), ``nice:N`` or ``fifo:N``, it is scheduled as the routers under
  test are (SCHED_OTHER at nice N, or SCHED_FIFO at N), free to run on any CPU, in a session of
  its own as every router is: it waits for a CPU as they do, so it is late when they could
  have been.

Run as ``python -I stall_probe.py rtnl PERIOD FLOOR PARENT`` it is the **RTNL probe**: in a
network namespace of its own (nothing else lives there, and nothing is sent), at the highest
priority allowed, it makes one cheap netlink change every PERIOD (it adds, then removes, one
address on its own loopback) and reports every change the kernel took longer than FLOOR to
answer. Such a change waited for the kernel's RTNL lock, which every link, address and
namespace change on the machine takes: another lab tearing its namespaces down holds it for
tens of milliseconds, and a router that changes a link or an address (zebra lifting protodown,
keepalived adding its VIP) waits as long. A lock held between two changes is seen up to one
PERIOD short. Where it may not make a namespace it says ``ready unavailable -2`` and only
answers syncs.

Run as ``python -I stall_probe.py runqueue PERIOD FLOOR PARENT`` it is the **run-queue
probe**: at the highest priority allowed, every PERIOD it reads the scheduler's own account of
how long each thread of the watched processes waited for a CPU (the second field of
``/proc/PID/task/TID/schedstat``, the run delay), and reports every wait longer than FLOOR that
ended since its last reading. The watched processes, and all their descendants, are named on its
stdin by a line ``watch PID...`` (the routers under test, replaced whenever they restart). The
other probes stand in for the routers; this one reads what the routers themselves waited. The
kernel adds a wait to the counter when the thread gets its CPU, so a wait is seen once it ends,
at most one PERIOD late, and however late this probe itself ran.

It reports over its stdout, one ASCII record per line::

    ready <priority> <cpu>           pinned and prioritised (cpu -1: not pinned)
    stall <start> <end> <cpu>        it woke <end> though due at <start> (lab clock, seconds);
                                     for the run-queue probe, a watched thread waited from
                                     <start> to <end> for a CPU
    synced <time>                    answer to a line on stdin: every stall before <time> is out

It ends when its stdin reaches EOF, or when its parent dies (parent-death signal, set by the
witness between fork and exec). Standard library only, at module level and below: importing the
``lab`` package would cost every probe 0.6 s of CPU (see ``lab/prober.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import struct
import sys
import time

#: The host probes' SCHED_FIFO priority: one above the routers under test, which run at
#: SCHED_FIFO 1 in a conformance bench (lab.conformance.bench.iut_scheduling). A probe at the
#: routers' own priority would wait for a busy router to yield and report the router's own
#: work as a host stall; one above it preempts the router, and is late only when the host is.
PROBE_FIFO = 2


def prioritise() -> str:
    """Take the highest scheduling priority allowed; say which one was obtained."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PROBE_FIFO))
        return f"fifo{PROBE_FIFO}"
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
        return "nice-20"
    except OSError:
        return "none"


def wall_offset() -> float:
    """``time.time()`` minus ``time.monotonic()``: what the lab clock (``time.time()``) reads
    at a monotonic instant. The tightest of three tries, as the process may be preempted
    between two reads; the error is at most that try's gap."""
    best_gap, best = float("inf"), 0.0
    for _ in range(3):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        if after - before < best_gap:
            best_gap, best = after - before, wall - (before + after) / 2
    return best


def as_peer(peer: str) -> str:
    """Be scheduled as ``peer`` says (``nice:N`` or ``fifo:N``) in a session of its own, placed
    as a router is; say what was obtained (``nice-10``, ``fifo1``).

    The lab starts every daemon in a session of its own, and with the kernel's scheduler
    autogroups (on in Debian) each session is one entity to the scheduler, weighted by its
    autogroup's nice (0), whatever its processes' own nice. A keepalived IUT at nice -10 was
    seen (``/proc/PID/schedstat``) waiting 46 ms for a CPU while this probe, then in the
    runner's session, waited for nothing: it must wait where the routers wait.
    """
    with contextlib.suppress(OSError):  # already a session leader: it stays in that session
        os.setsid()
    policy, value = peer.split(":")
    if policy == "fifo":
        with contextlib.suppress(OSError):  # refused rootless: stays SCHED_OTHER, and says so
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(value)))
            return f"fifo{int(value)}"
        return f"nice{os.getpriority(os.PRIO_PROCESS, 0):+d}"
    with contextlib.suppress(OSError):  # a lower nice needs privileges: keep the inherited
        os.setpriority(os.PRIO_PROCESS, 0, int(value))
    return f"nice{os.getpriority(os.PRIO_PROCESS, 0):+d}"


def run(cpu: int, period: float, floor: float, parent: int, peer: str | None = None) -> int:
    """Wake every ``period`` until stdin closes; report overshoots above ``floor``."""
    if peer is None:
        os.sched_setaffinity(0, {cpu})
        priority = prioritise()
    else:
        priority = as_peer(peer)
    # ``last`` is read before ``ready`` is written: from the moment the witness reads it, the
    # probe is measuring (a probe frozen between the two would otherwise see nothing).
    last = time.monotonic()
    out = sys.stdout
    out.write(f"ready {priority} {cpu}\n")
    out.flush()
    stdin = sys.stdin.fileno()
    # Measured wake to wake on one clock, and ``last`` is the very reading that measured the
    # lateness: time lost anywhere in the loop body, even between two clock reads, is counted
    # in the next wake-up. (A second clock read per wake-up for the wall stamp let a
    # preemption between the two reads go unseen.) Wall stamps are taken only when reporting.
    while True:
        readable, _, _ = select.select([stdin], [], [], period)
        now = time.monotonic()
        late = now - last - period
        last = now
        if late > floor:
            offset = wall_offset()
            out.write(f"stall {now - late + offset:.6f} {now + offset:.6f} {cpu}\n")
            out.flush()
        if os.getppid() != parent:  # orphaned before the death signal took effect
            return 0
        if readable:
            data = os.read(stdin, 4096)
            if not data:
                return 0
            # Stalls are written before the stdin is read, so every one up to the wake-up just
            # measured is out (not up to this write: a preemption since is the next one's).
            out.write(f"synced {now + wall_offset():.6f}\n")
            out.flush()


#: unshare(2)'s flag for a new network namespace.
CLONE_NEWNET = 0x40000000
#: The CPU field of the RTNL probe's lines: it is no CPU's.
RTNL_CPU = -2
_RTM_NEWADDR, _RTM_DELADDR = 20, 21
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
#: The address toggled on the probe's own loopback (ifindex 1 in a new namespace).
_PROBE_ADDRESS = socket.inet_aton("127.0.0.2")


def private_netns() -> bool:
    """Move this process into a new, empty network namespace; False where it may not."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(CLONE_NEWNET) == 0


def address_change(add: bool, seq: int) -> bytes:
    """The RTM_NEWADDR (``add``) or RTM_DELADDR message for the probe address on ``lo``."""
    attrs = b"".join(
        struct.pack("=HH", 8, kind) + _PROBE_ADDRESS for kind in (_IFA_LOCAL, _IFA_ADDRESS)
    )
    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 1) + attrs
    kind = _RTM_NEWADDR if add else _RTM_DELADDR
    flags = _NLM_F_REQUEST | _NLM_F_ACK | (_NLM_F_CREATE | _NLM_F_EXCL if add else 0)
    return struct.pack("=LHHLL", 16 + len(body), kind, flags, seq, 0) + body


def run_rtnl(period: float, floor: float, parent: int) -> int:
    """Make one netlink change every ``period`` until stdin closes; report those the kernel
    took longer than ``floor`` to answer, from the moment each was sent."""
    usable = private_netns()
    priority = prioritise() if usable else "unavailable"
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    out = sys.stdout
    out.write(f"ready {priority} {RTNL_CPU}\n")
    out.flush()
    stdin = sys.stdin.fileno()
    add, seq = True, 0
    while True:
        readable, _, _ = select.select([stdin], [], [], period)
        if usable:
            seq += 1
            sent = time.monotonic()
            nl.send(address_change(add, seq))
            nl.recv(4096)  # the ack, or an error (EEXIST after a lost answer: flip anyway)
            answered = time.monotonic()
            add = not add
            if answered - sent > floor:
                offset = wall_offset()
                out.write(f"stall {sent + offset:.6f} {answered + offset:.6f} {RTNL_CPU}\n")
                out.flush()
        else:
            answered = time.monotonic()
        if os.getppid() != parent:
            return 0
        if readable:
            data = os.read(stdin, 4096)
            if not data:
                return 0
            out.write(f"synced {answered + wall_offset():.6f}\n")
            out.flush()


#: The CPU field of the run-queue probe's lines: it is no CPU's.
RUNQUEUE_CPU = -3
#: How often the run-queue probe looks for new descendants and threads of the watched
#: processes (a keepalived forks its VRRP child after start): listing them costs more than
#: reading their counters, and a new thread's first wait is counted from its first reading.
RESCAN = 0.05


def descendants(roots: list[int]) -> list[int]:
    """``roots`` and every descendant still alive, parents first."""
    out, i = list(roots), 0
    while i < len(out):
        pid = out[i]
        i += 1
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return out


def threads(pids: list[int]) -> list[str]:
    """The schedstat path of every thread of ``pids``."""
    paths = []
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        paths.extend(f"/proc/{pid}/task/{tid}/schedstat" for tid in tids)
    return paths


def run_delay(fd: int) -> int | None:
    """A thread's total wait for a CPU so far (ns), read from its open ``schedstat``; None
    once the thread is gone."""
    try:
        return int(os.pread(fd, 128, 0).split()[1])
    except (OSError, IndexError, ValueError):
        return None


class SchedstatFiles:
    """The ``schedstat`` files of the watched threads, held open.

    Read every period with one ``pread`` each: opening a /proc file costs ten times as much as
    reading it again (11 µs against 1 µs here), and a lab has tens of threads, read 200 times a
    second by each witness's probe.
    """

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def follow(self, paths: list[str]) -> None:
        """Hold ``paths`` open (those that still exist), and close every other."""
        wanted = set(paths)
        for path in [p for p in self.fds if p not in wanted]:
            os.close(self.fds.pop(path))
        for path in wanted - self.fds.keys():
            with contextlib.suppress(OSError):  # the thread ended since the listing
                self.fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> dict[str, int]:
        """Each live thread's run delay (ns), by path. A thread gone is let go (closed), so
        a new one that takes its id is opened afresh at the next :meth:`follow`."""
        readings: dict[str, int] = {}
        for path, fd in list(self.fds.items()):
            delay = run_delay(fd)
            if delay is None:
                os.close(self.fds.pop(path))
            else:
                readings[path] = delay
        return readings


def new_waits(before: dict[str, int], now: dict[str, int], floor_ns: int) -> list[int]:
    """The waits (ns) longer than ``floor_ns`` that the counters grew by between two readings
    of the same threads; a thread seen for the first time has no wait yet."""
    return [
        grown
        for path, delay in now.items()
        if path in before and (grown := delay - before[path]) > floor_ns
    ]


def run_runqueue(period: float, floor: float, parent: int) -> int:
    """Read the watched threads' run delays every ``period`` until stdin closes; report each
    wait above ``floor`` as the stretch of lab time it ended at."""
    priority = prioritise()
    out = sys.stdout
    out.write(f"ready {priority} {RUNQUEUE_CPU}\n")
    out.flush()
    stdin = sys.stdin.fileno()
    floor_ns = int(floor * 1e9)
    roots: list[int] = []
    files = SchedstatFiles()
    delays: dict[str, int] = {}
    rescanned = float("-inf")
    pending = b""
    while True:
        readable, _, _ = select.select([stdin], [], [], period)
        now = time.monotonic()
        if now - rescanned >= RESCAN:
            files.follow(threads(descendants(roots)))
            rescanned = now
        readings = files.read()
        waits = new_waits(delays, readings, floor_ns)
        delays = readings
        if waits:
            offset = wall_offset()
            for wait in waits:
                out.write(f"stall {now - wait / 1e9 + offset:.6f} {now + offset:.6f} "
                          f"{RUNQUEUE_CPU}\n")  # fmt: skip
            out.flush()
        if os.getppid() != parent:
            return 0
        if not readable:
            continue
        data = os.read(stdin, 4096)
        if not data:
            return 0
        *lines, pending = (pending + data).split(b"\n")
        asked = False
        for line in lines:
            words = line.split()
            if words[:1] == [b"watch"]:
                roots = [int(w) for w in words[1:]]
                rescanned = float("-inf")
            elif words:
                asked = True
        if asked:
            out.write(f"synced {now + wall_offset():.6f}\n")
            out.flush()


if __name__ == "__main__":
    if sys.argv[1] == "rtnl":
        sys.exit(run_rtnl(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
    if sys.argv[1] == "runqueue":
        sys.exit(run_runqueue(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
    cpu, period, floor, parent = (
        int(sys.argv[1]),
        float(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    sys.exit(run(cpu, period, floor, parent, sys.argv[5] if len(sys.argv) > 5 else None))
