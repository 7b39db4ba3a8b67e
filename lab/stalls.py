"""The stall witness: the host's scheduling stalls during a measurement, on the lab clock.

A timing verdict says how late something happened. On a shared machine the whole host, one
vCPU (hypervisor steal) or the measuring process itself is sometimes not scheduled for tens of
milliseconds, and a verdict measured across such a stall says nothing about the implementation.
:class:`StallWitness` records those stalls while a measurement runs, and :meth:`judge` tells
whether a verdict's window overlapped one longer than its tolerance: such a verdict is
**inconclusive** (:class:`Inconclusive`), never a pass or a fail.

Five kinds of probe, each reporting the stretches of lab time it saw lost:

* **CPU probes** (``lab/stall_probe.py``), one child process per CPU the runner may use,
  pinned to it at the highest priority allowed (SCHED_FIFO 2, one above realtime
  routers, else nice -20): they see
  host-wide and per-vCPU stalls (the hypervisor's steal, a kernel section that cannot be
  preempted), which delay the IUT's daemons;
* **the peer probe**, one more child, unpinned and scheduled as the routers run
  (:class:`lab.linux.Scheduling`: SCHED_OTHER at their nice, or SCHED_FIFO): it waits for a
  CPU as they do, so it sees the stalls the CPU probes cannot, a queue of runnable work at that
  priority. A CPU probe preempts any ordinary task; a router at a nice value does not.
  (Seen in a CI rehearsal beside ``scripts/stress.sh``: one keepalived advert period 27 ms
  late while the CPU probes saw nothing; a nice -10 probe under the same load measured waits
  up to 25 ms that the CPU probes did not.)
* **the RTNL probe**, one more child, in a network namespace of its own: every
  :data:`RTNL_PERIOD` it makes one netlink change there and times the kernel's answer. A late
  answer waited for the kernel's RTNL lock, which no CPU probe can see: the CPUs are free while
  another lab's namespace teardown holds it, yet a router that changes a link or an address
  waits. (Seen in a rehearsal beside other labs: FRR's first advert period 86 ms where 100 was
  configured, zebra's protodown change having waited; the CPU probes saw nothing. Measured
  there: the lock held up to 36 ms, 62 times over 5 ms in a minute.)
* **the run-queue probe**, one more child, at the highest priority allowed: it reads how long
  the routers under test themselves waited for a CPU (the kernel's run delay, per thread,
  ``/proc/PID/task/TID/schedstat``), for the processes :meth:`StallWitness.watch` names and
  their descendants. The peer probe stands in for the routers, and this probe reads the
  routers' own waits. The peer probe wakes for a few microseconds a millisecond, and the
  scheduler serves such a task first, so it can miss a wait that a busier daemon meets. (Seen in
  a rehearsal beside ``scripts/stress.sh`` and two other labs: the bundled daemon in RFC 9568
  mode answered a losing advert 43 ms late, after its own scheduled advert, and failed F06
  while every other probe saw less than the 20 ms tolerance.)
* **the self probe**, a daemon thread of the measuring process: it sees that process stopped
  or starved (the process that stamps notify lines and sends the tester's adverts).

Every stamp is on :func:`lab.clock.now` (CLOCK_REALTIME), the clock of every other lab stamp.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lab import clock
from lab.linux import Scheduling

if TYPE_CHECKING:
    from lab.stall_hub import HubLink

#: How often every probe wakes (seconds).
PERIOD = 0.001
#: The overshoot above which a host probe reports a stall. A pinned probe at SCHED_FIFO wakes
#: within ~0.1 ms here; 2 ms is far above that noise and a tenth of the smallest tolerance.
HOST_FLOOR = 0.002
#: How often the run-queue probe reads its threads' counters. The counters accumulate, so a
#: reading misses no wait, it only reports it up to this much after it ended. Every reading
#: costs a few file reads per thread: at 5 ms, 1.6 % of a core watching a four-thread process.
RUNQUEUE_PERIOD = 0.005
#: How often the RTNL probe makes its netlink change: each takes the lock for microseconds,
#: so 500 a second cost the machine's other users nothing measurable, and a hold between two
#: changes is seen at most this much short.
RTNL_PERIOD = 0.002
#: ``rtnl_within`` (:meth:`StallWitness.judge`) of a measurement in which nothing changes a
#: link or an address (BFD's packets and timers, a steady master's adverts): no RTNL hold can
#: move it, so none is judged.
NO_NETLINK: tuple[float, float] = (float("-inf"), float("-inf"))


def takeover_netlink(end: float, tolerance: float) -> tuple[float, float]:
    """``rtnl_within`` of a takeover a router reports at ``end``: its one netlink change (it
    adds its VIPs, or zebra lifts protodown) comes just before it reports, while before it the
    router waits on a timer. An RTNL hold that made it later than ``tolerance`` still held the
    lock within ``tolerance`` of ``end``."""
    return (end - tolerance, end)


#: The self probe's floor. It is a Python thread: another thread of the measuring process may
#: hold the GIL for up to the switch interval (5 ms) before it is handed over, so overshoots up
#: to that are the interpreter, not a stall; above it, the floor of the host probes.
SELF_FLOOR = 0.005 + HOST_FLOOR
#: How long :meth:`StallWitness.judge` waits for a probe to say it reported everything; a probe
#: that does not answer within it is itself stalled, and counts as such.
SYNC_TIMEOUT = 2.0
_PROBE = Path(__file__).with_name("stall_probe.py")
#: The abstract socket name under which the host probes every root witness shares are served
#: (:mod:`lab.stall_hub`).
HUB_NAME = "vrrp-lab/stall-hub"


@dataclasses.dataclass(frozen=True)
class Stall:
    """An interval in which a probe was due to run and did not (lab-clock seconds)."""

    start: float
    end: float
    source: str
    """Which probe saw it: ``cpu0``, ``cpu1``, ... and ``nice-10`` (host), ``rtnl`` (the
    kernel's RTNL lock) or ``self`` (the measuring process)."""

    @property
    def seconds(self) -> float:
        """How long it lasted."""
        return self.end - self.start

    def describe(self, since: float | None = None) -> str:
        """``60.2 ms stall (self) at 05:31:02.123 UTC``, with its offset from ``since``."""
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.start))
        text = f"{self.seconds * 1000:.1f} ms stall ({self.source}) at {stamp}"
        text += f".{int(self.start * 1000) % 1000:03d} UTC"
        if since is not None:
            text += f", {(self.start - since) * 1000:+.0f} ms into the window"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "ms": round(self.seconds * 1000, 2),
            "source": self.source,
        }


def parse_line(line: str) -> Stall | None:
    """A host probe's ``stall START END CPU`` line as a :class:`Stall`; None for other lines.

    Raises ValueError on a malformed stall line (a probe that prints garbage is a bug).
    """
    parts = line.split()
    if not parts or parts[0] != "stall":
        return None
    if len(parts) != 4:
        raise ValueError(f"malformed stall line {line!r}")
    start, end = float(parts[1]), float(parts[2])
    if end < start:
        raise ValueError(f"stall line {line!r} ends before it starts")
    return Stall(start, end, f"cpu{int(parts[3])}")


def overlapping(stalls: Iterable[Stall], start: float, end: float) -> list[Stall]:
    """The stalls that overlap the closed window [start, end], in time order."""
    return sorted((s for s in stalls if s.start <= end and s.end >= start), key=lambda s: s.start)


def stalled_for(stalls: Iterable[Stall], start: float, end: float) -> float:
    """How much of [start, end] at least one of ``stalls`` covered (seconds).

    The probes often see one hold of the host together (both CPUs' probes, the peer, the run
    queue): counted once, as the time it lasted, not once per probe.
    """
    covered, reach = 0.0, start
    for s in sorted(stalls, key=lambda s: s.start):
        low, high = max(s.start, reach), min(s.end, end)
        if high > low:
            covered += high - low
            reach = high
    return covered


def late_spoiled(
    stalls: Iterable[Stall], start: float, end: float, late_by: float
) -> tuple[str, Stall] | None:
    """The rule for a measurement that failed by being ``late_by`` past its bound: stalls can
    have made it late only if they held the host for longer than that in [start, end]
    (:func:`stalled_for`), whatever the tolerance. Then why (a sentence) and the longest of
    them; None when the late fail stands.

    The IUT's own latency and a stall just under the tolerance add up (seen: a takeover 0.2 ms
    past Master_Down_Interval + tolerance beside a 19 ms stall; a link kept down 0.3 ms too
    long beside an RTNL hold just under the tolerance), while stalls of 97 ms in all cannot
    hold back an event that was due 361 ms before the window ended.
    """
    spoilers = overlapping(stalls, start, end)
    held = stalled_for(spoilers, start, end)
    if held <= late_by:
        return None
    because = (
        f"stalls holding the host {held * 1000:.1f} ms in all could have made it "
        f"{late_by * 1000:.1f} ms late"
    )
    return because, max(spoilers, key=lambda s: s.seconds)


def judge(stalls: Iterable[Stall], start: float, end: float, tolerance: float) -> Stall | None:
    """The rule: the largest stall overlapping [start, end] that is longer than ``tolerance``.

    A stall no longer than the tolerance cannot have moved a measured time by more than the
    tolerance allows, so the verdict stands; a longer one could have, either way, and the
    verdict is inconclusive. None when the verdict stands.
    """
    worse = [s for s in overlapping(stalls, start, end) if s.seconds > tolerance]
    return max(worse, key=lambda s: s.seconds) if worse else None


def held_back(
    stalls: Iterable[Stall],
    at: float,
    since: float,
    *,
    gap: float = HOST_FLOOR,
    lag: float = 0.0,
) -> float:
    """How late ``stalls`` can have made an event that happened at ``at`` and was due no
    earlier than ``since`` (0 when none can have).

    A stall delays an event only if it was still on when the event fell due: once it ends,
    whatever was held back runs. So only the unbroken run of stalls that reaches ``at`` counts,
    from where it began: stalls chained by gaps shorter than ``gap`` (the probes' floor: a
    shorter stall between two is not reported), the last ending within ``gap`` of ``at``. A
    stall that ended earlier held back something else. ``lag`` is how long after the event a
    stall's report may end, and how much earlier than reported it may have begun (the
    run-queue probe reads its counters every :data:`RUNQUEUE_PERIOD`).
    """
    reach = at
    for s in sorted(stalls, key=lambda s: s.end, reverse=True):
        if s.start > at + lag:
            continue  # wholly after the event
        if s.end < reach - gap:
            break  # ends before the run reaching the event: so does every stall after it
        reach = min(reach, s.start - (lag if s.source == "runqueue" else 0.0))
    return max(0.0, min(at - reach, at - since))


@dataclasses.dataclass(frozen=True)
class PeriodJudgement:
    """:func:`judge_periods`' answer: an outcome and the period or mean that decided it."""

    outcome: str
    """``pass``, ``fail`` or ``inconclusive``."""
    reason: str
    """What decided it, for the verdict's text."""
    stretch: tuple[float, float] | None = None
    """Where the deciding stalls were, for an inconclusive one (lab-clock seconds)."""


def judge_periods(
    times: Sequence[float],
    interval: float,
    tolerance: float,
    drift: float,
    held: Callable[[float, float], float],
) -> PeriodJudgement:
    """Judge events meant to come every ``interval`` (each period within ``tolerance``, their
    mean within ``drift``) when stalls may have made any of them late.

    ``held(since, at)`` is how late stalls can have made an event at ``at`` that was due no
    earlier than ``since`` (:func:`held_back`). Event k may then have been
    late by up to D_k, so the true length of the period from event k to k+1 lies in
    [gap - D_k+1, gap + D_k] (a late event k shortens the gap only for a sender on a fixed
    schedule; one that re-arms after each send is shifted instead, which the interval covers
    too), and the true mean in [(span - ΣD_k) / n, (span + D_0) / n] (a re-arming sender
    carries every delay into the rest). A period or mean is out of bounds when its whole
    interval is, within them when its whole interval is; otherwise the stalls could account
    for the difference and it says nothing. The judgement fails on any period or mean out of
    bounds (a stall cannot explain it), passes when every one is within them, and is
    inconclusive otherwise, citing the stretch that could not be judged.

    A stall no longer than the tolerance can thus still spoil a period measured just outside
    it (a 19.9 ms wait for a CPU and the sender's own 0.5 ms), and one longer than the
    tolerance spoils nothing it could not have moved across a bound.
    """
    if len(times) < 2:
        raise ValueError("judge_periods needs two events at least")
    delays = [held(times[0] - interval, times[0])]
    delays += [held(a, b) for a, b in itertools.pairwise(times)]
    low, high = interval - tolerance, interval + tolerance
    unsure: PeriodJudgement | None = None
    for k, (a, b) in enumerate(itertools.pairwise(times)):
        gap = b - a
        shortest, longest = gap - delays[k + 1], gap + delays[k]
        where = f"period {k + 1} ({gap * 1000:.2f} ms, {(a - times[0]) * 1000:.0f} ms in)"
        if shortest > high or longest < low:
            return PeriodJudgement(
                "fail",
                f"{where} is outside {interval * 1000:g} ± {tolerance * 1000:g} ms "
                f"by more than any stall around it could explain "
                f"({max(delays[k], delays[k + 1]) * 1000:.1f} ms)",
            )
        if unsure is None and not (low <= shortest and longest <= high):
            unsure = PeriodJudgement(
                "inconclusive",
                f"{where}: stalls of {delays[k] * 1000:.1f} ms before it and "
                f"{delays[k + 1] * 1000:.1f} ms before its end could move it across "
                f"{interval * 1000:g} ± {tolerance * 1000:g} ms",
                (times[k - 1] if k else a - interval, b),
            )
    n = len(times) - 1
    span = times[-1] - times[0]
    mean_low, mean_high = (span - sum(delays[1:])) / n, (span + delays[0]) / n
    mean = span / n
    if mean_low > interval + drift or mean_high < interval - drift:
        return PeriodJudgement(
            "fail",
            f"mean period {mean * 1000:.2f} ms is outside {interval * 1000:g} ± "
            f"{drift * 1000:g} ms by more than the stalls could explain",
        )
    if unsure is None and not (interval - drift <= mean_low and mean_high <= interval + drift):
        unsure = PeriodJudgement(
            "inconclusive",
            f"mean period {mean * 1000:.2f} ms: stalls of {sum(delays) * 1000:.1f} ms in all "
            f"could move it across {interval * 1000:g} ± {drift * 1000:g} ms",
            (times[0] - interval, times[-1]),
        )
    return unsure or PeriodJudgement("pass", f"{n} periods within bounds")


class Inconclusive(Exception):
    """A timing verdict that stalls spoiled: by default, its window overlapped a stall longer
    than its tolerance; ``because`` says otherwise when a finer rule decided it
    (:func:`judge_periods`), ``stall`` then being the longest of those that did."""

    def __init__(
        self,
        what: str,
        stall: Stall,
        window: tuple[float, float],
        tolerance: float,
        because: str | None = None,
    ) -> None:
        self.what = what
        self.stall = stall
        self.window = window
        self.tolerance = tolerance
        self.because = because
        span = (window[1] - window[0]) * 1000
        if because is None:
            text = (
                f"a {stall.describe(window[0])} overlapped the measured window ({span:.0f} ms), "
                f"longer than the tolerance {tolerance * 1000:.0f} ms"
            )
        else:
            text = f"{because} (the longest, a {stall.describe(window[0])})"
        super().__init__(f"{what}: inconclusive: {text}")


def inconclusive_as_dict(exc: Inconclusive) -> dict[str, Any]:
    """An :class:`Inconclusive` for JSON: the stall, the window and the tolerance."""
    return {
        "stall": exc.stall.as_dict(),
        "what": exc.what,
        "window": [round(exc.window[0], 6), round(exc.window[1], 6)],
        "tolerance_ms": round(exc.tolerance * 1000, 2),
        **({} if exc.because is None else {"because": exc.because}),
    }


def inconclusive_from_dict(data: dict[str, Any]) -> Inconclusive:
    """The :class:`Inconclusive` that :func:`inconclusive_as_dict` wrote."""
    s = data["stall"]
    return Inconclusive(
        data["what"],
        Stall(s["start"], s["end"], s["source"]),
        (data["window"][0], data["window"][1]),
        data["tolerance_ms"] / 1000,
        data.get("because"),
    )


def column(stalls: Sequence[Stall]) -> str:
    """The benchmarks' "stalls > 2 ms / worst" cell: ``3 / 21.4 ms``."""
    worst = max((s.seconds for s in stalls), default=0.0)
    return f"{len(stalls)} / {worst * 1000:.1f} ms"


def summarise(stalls: Sequence[Stall]) -> dict[str, Any]:
    """Count, worst and total of ``stalls``, for reports."""
    return {
        "count": len(stalls),
        "worst_ms": round(max((s.seconds for s in stalls), default=0.0) * 1000, 2),
        "total_ms": round(sum(s.seconds for s in stalls) * 1000, 2),
    }


class _HostProbe:
    """One ``stall_probe.py`` child and the thread that reads its reports.

    With ``peer`` None it is a CPU probe pinned to ``cpu``; with a scheduling it is the peer
    probe (``cpu`` is then -1) and its stalls are named ``nice-10``, ``fifo1`` and the like.
    ``mode`` ``rtnl`` is the RTNL probe, its stalls named ``rtnl``; ``runqueue`` the run-queue
    probe, its stalls named ``runqueue``.
    """

    def __init__(
        self,
        cpu: int,
        witness: StallWitness,
        peer: Scheduling | None = None,
        *,
        mode: str = "wake",
    ) -> None:
        from lab import linux

        self.cpu = cpu
        if mode in ("rtnl", "runqueue"):
            self.label = mode
            period = RTNL_PERIOD if mode == "rtnl" else RUNQUEUE_PERIOD
            args = [mode, period, HOST_FLOOR, os.getpid()]
        else:
            self.label = f"cpu{cpu}" if peer is None else peer.label
            policy = [] if peer is None else [_peer_argument(peer)]
            args = [cpu, PERIOD, HOST_FLOOR, os.getpid(), *policy]
        self.priority = "unknown"
        self.synced = 0.0
        self._witness = witness
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(_PROBE), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=linux.set_parent_death_signal,
        )
        self._reader = threading.Thread(target=self._read, name=f"stalls-cpu{cpu}", daemon=True)

    def wait_ready(self) -> None:
        """Wait for the probe's ``ready`` line, then read its reports on a thread."""
        from lab.sandbox import read_ready

        self.priority = read_ready(self.proc, 10.0, f"the stall probe {self.label}").split()[1]
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("synced"):
                with self._cond:
                    self.synced = float(line.split()[1])
                    self._cond.notify_all()
                continue
            stall = parse_line(line)
            if stall is not None:
                self._witness.add(dataclasses.replace(stall, source=self.label))
        with self._cond:
            self.synced = float("inf")
            self._cond.notify_all()

    def ask(self) -> None:
        """Ask the probe to report everything up to now."""
        self.tell(b"s\n")

    def tell(self, line: bytes) -> None:
        """Write one line to the probe (a probe that has gone is told nothing)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def wait_synced(self, until: float, deadline: float) -> bool:
        """Wait for the probe to have reported up to ``until``; False if it did not in time."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.synced >= until, timeout=max(0.0, deadline - time.monotonic())
            )

    def close(self) -> None:
        from lab.sandbox import end_by_stdin

        end_by_stdin(self.proc, timeout=5)
        if self._reader.is_alive():
            self._reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _peer_argument(peer: Scheduling) -> str:
    """The probe's PEER argument for ``peer``: ``fifo:N`` or ``nice:N``."""
    if peer.fifo is not None:
        return f"fifo:{peer.fifo}"
    return f"nice:{peer.nice if peer.nice is not None else os.getpriority(os.PRIO_PROCESS, 0)}"


def _in_the_machines_netns() -> bool:
    """Whether this thread runs as root in the machine's first network namespace (the one
    kthreadd, PID 2, lives in): where the stall hub's name lives, and where a hub started from
    here pins no lab's namespace. Where that cannot be read, the witness keeps its own probes."""
    try:
        here, first = os.stat("/proc/thread-self/ns/net"), os.stat("/proc/2/ns/net")
    except OSError:
        return False
    return os.geteuid() == 0 and (here.st_dev, here.st_ino) == (first.st_dev, first.st_ino)


def _enter_lab_privileges() -> None:
    """Rootless, enter the lab's user namespace before the witness starts threads: the kernel
    allows that only while the process is single-threaded, and the lab this witness watches
    will need it. Where that cannot be done the witness runs all the same."""
    if os.geteuid() == 0:
        return
    from lab.errors import LabError
    from lab.sandbox import ensure_privileges

    with contextlib.suppress(LabError):
        ensure_privileges()


class StallWitness:
    """Records scheduling stalls while a measurement runs. Use as a context manager.

    ``host=False`` runs only the self probe (no child processes), for callers that cannot
    start any. ``peer`` is how the routers under test are scheduled (default: at this process's
    own nice, which the routers inherit); the peer probe runs so.

    ``hub``: as root in the machine's own network namespace, the CPU and RTNL probes, which
    watch the machine rather than a lab, are shared with every other witness through the stall
    hub serving this name (:mod:`lab.stall_hub`); None runs the witness's own, as do a rootless
    witness and one given ``cpus``.
    """

    def __init__(
        self,
        *,
        host: bool = True,
        cpus: Iterable[int] | None = None,
        peer: Scheduling | None = None,
        hub: str | None = HUB_NAME,
    ) -> None:
        self._host = host
        self._hub_name = hub if cpus is None and _in_the_machines_netns() else None
        self._hub: HubLink | None = None
        self._cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        self._peer = (
            peer
            if peer is not None and peer != Scheduling()
            else Scheduling(nice=os.getpriority(os.PRIO_PROCESS, 0))
        )
        self._stalls: list[Stall] = []
        self._lock = threading.Lock()
        self._probes: list[_HostProbe] = []
        self._stop = threading.Event()
        self._self: threading.Thread | None = None
        self._tick = 0.0
        self._tick_cond = threading.Condition()
        self.started: float | None = None
        self.ended: float | None = None

    # -- lifetime ------------------------------------------------------------------------

    def start(self) -> StallWitness:
        """Start the probes; returns self."""
        _enter_lab_privileges()
        try:
            if self._host:
                # Started side by side, then awaited: each costs an interpreter's start-up.
                if self._hub_name is None:
                    for cpu in self._cpus:
                        self._probes.append(_HostProbe(cpu, self))
                    self._probes.append(_HostProbe(-2, self, mode="rtnl"))
                self._probes.append(_HostProbe(-1, self, self._peer))
                self._probes.append(_HostProbe(-3, self, mode="runqueue"))
                if self._hub_name is not None:
                    from lab.stall_hub import HubLink

                    args = [str(PERIOD), str(RTNL_PERIOD), str(HOST_FLOOR)]
                    self._hub = HubLink(
                        self._hub_name, lambda *stall: self.add(Stall(*stall)), args
                    )
                for probe in self._probes:
                    probe.wait_ready()
            # Its first reading is taken here, not on the thread: the process frozen before the
            # thread first runs is then seen too.
            self._self = threading.Thread(
                target=self._self_probe, args=(time.monotonic(),), name="stalls-self", daemon=True
            )
            self._self.start()
        except BaseException:
            self.close()
            raise
        self.started = clock.now()
        return self

    def close(self) -> None:
        """Stop every probe and collect its last reports; safe twice."""
        self._stop.set()
        if self._self is not None:
            self._self.join(timeout=5)
            self._self = None
        probes, self._probes = self._probes, []
        for probe in probes:
            probe.close()
        if self._hub is not None:
            self._hub.close()
        self._closed_probes = probes
        if self.started is not None and self.ended is None:
            self.ended = clock.now()

    def __enter__(self) -> StallWitness:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the self probe ------------------------------------------------------------------

    def _self_probe(self, last: float) -> None:
        # Wake to wake on one clock, as the host probes: time lost anywhere between two
        # sleeps, even between two clock reads or waiting for the GIL, is counted.
        from lab.stall_probe import wall_offset  # time.time(), which is clock.now()

        while True:
            if self._stop.wait(PERIOD):
                return
            now = time.monotonic()
            late = now - last - PERIOD
            last = now
            offset = wall_offset()
            if late > SELF_FLOOR:
                self.add(Stall(now - late + offset, now + offset, "self"))
            with self._tick_cond:
                self._tick = now + offset
                self._tick_cond.notify_all()

    def watch(self, pids: Iterable[int]) -> None:
        """Have the run-queue probe read the waits of ``pids`` and their descendants from now
        on, instead of what it watched before (the routers under test, after each start)."""
        line = " ".join(["watch", *map(str, pids)]) + "\n"
        for probe in self._probes:
            if probe.label == "runqueue":
                probe.tell(line.encode())

    def add(self, stall: Stall) -> None:
        """Record a stall: the probes call this, and so may anything else that saw one."""
        with self._lock:
            self._stalls.append(stall)

    # -- reading -------------------------------------------------------------------------

    def sync(self, until: float | None = None) -> None:
        """Make sure every probe has reported its stalls up to ``until`` (default: now).

        A probe that has not answered within :data:`SYNC_TIMEOUT` is stalled itself: that
        stall, from when it was asked until now, is recorded under its name.
        """
        until = min(until if until is not None else clock.now(), clock.now())
        asked = clock.now()
        deadline = time.monotonic() + SYNC_TIMEOUT
        for probe in self._probes:
            probe.ask()
        if self._hub is not None:
            self._hub.ask()
        for probe in self._probes:
            if not probe.wait_synced(until, deadline):
                self.add(Stall(asked, clock.now(), f"{probe.label} (no answer)"))
        if self._hub is not None:
            for label in self._hub.wait_synced(until, deadline):
                self.add(Stall(asked, clock.now(), f"{label} (no answer)"))
        if self._self is not None:
            with self._tick_cond:
                answered = self._tick_cond.wait_for(
                    lambda: self._tick >= until, timeout=max(0.0, deadline - time.monotonic())
                )
            if not answered:
                self.add(Stall(asked, clock.now(), "self (no answer)"))

    def stalls(self, since: float | None = None, until: float | None = None) -> list[Stall]:
        """The stalls recorded so far that overlap [since, until] (default: all), in order."""
        with self._lock:
            recorded = list(self._stalls)
        return overlapping(
            recorded,
            since if since is not None else float("-inf"),
            until if until is not None else float("inf"),
        )

    def judge(
        self,
        start: float,
        end: float,
        tolerance: float,
        *,
        host_only: bool = False,
        rtnl_within: tuple[float, float] | None = None,
    ) -> Stall | None:
        """The largest stall overlapping [start, end] longer than ``tolerance``, or None
        (see :func:`judge`); the probes are first made to report up to ``end``.

        ``host_only``: judge by the host probes alone (CPU, peer, RTNL, run queue), for a time
        measured between two kernel stamps (captured frames) with nothing of the measuring
        process in between: that process being starved on its own cannot move it.

        ``rtnl_within``: the stretch of the window in which the IUT changes links or
        addresses (a takeover adds its VIPs at the end; a steady master changes nothing). The
        RTNL lock delays the IUT only there, so an RTNL stall that does not overlap it cannot
        move the measurement.
        """
        return judge(self.relevant(end, host_only, rtnl_within), start, end, tolerance)

    def relevant(
        self,
        until: float,
        host_only: bool = False,
        rtnl_within: tuple[float, float] | None = None,
    ) -> list[Stall]:
        """The stalls that can have moved a measurement made up to ``until``, the probes first
        made to report up to it; ``host_only`` and ``rtnl_within`` as for :meth:`judge`."""
        if self._probes or self._hub is not None or self._self is not None:
            self.sync(until)
        stalls = self.stalls()
        if host_only:
            stalls = [s for s in stalls if not s.source.startswith("self")]
        if rtnl_within is not None:
            low, high = rtnl_within
            stalls = [
                s
                for s in stalls
                if not s.source.startswith("rtnl") or (s.end >= low and s.start <= high)
            ]
        return stalls

    def check(
        self,
        start: float,
        end: float,
        tolerance: float,
        what: str,
        *,
        host_only: bool = False,
        rtnl_within: tuple[float, float] | None = None,
    ) -> None:
        """Raise :class:`Inconclusive` when :meth:`judge` finds a stall for ``what``
        (``host_only`` and ``rtnl_within`` as for :meth:`judge`)."""
        stall = self.judge(start, end, tolerance, host_only=host_only, rtnl_within=rtnl_within)
        if stall is not None:
            raise Inconclusive(what, stall, (start, end), tolerance)

    def check_late(
        self,
        start: float,
        end: float,
        late_by: float,
        tolerance: float,
        what: str,
        *,
        host_only: bool = False,
        rtnl_within: tuple[float, float] | None = None,
    ) -> None:
        """For ``what``, measured over [start, end] and ``late_by`` seconds past its bound
        (``tolerance`` included): raise :class:`Inconclusive` when stalls can have made it that
        late (:func:`late_spoiled`); return when the late fail stands. ``host_only`` and
        ``rtnl_within`` as for :meth:`judge`."""
        spoiled = late_spoiled(self.relevant(end, host_only, rtnl_within), start, end, late_by)
        if spoiled is not None:
            because, longest = spoiled
            raise Inconclusive(what, longest, (start, end), tolerance, because)

    @property
    def priorities(self) -> dict[str, str]:
        """The priority each host probe obtained (``fifo2``, ``nice-20``, ``none``; the peer
        probe's ``nice-10`` and the like; ``unavailable`` for an RTNL probe that may not make
        a namespace, and so sees nothing)."""
        probes = self._probes or getattr(self, "_closed_probes", [])
        shared = self._hub.priorities if self._hub is not None else {}
        return {**shared, **{p.label: p.priority for p in probes}}

    @property
    def probe_pids(self) -> dict[str, int]:
        """The process id of each host probe, by label (for a test to inspect where one runs)."""
        probes = self._probes or getattr(self, "_closed_probes", [])
        shared = self._hub.pids if self._hub is not None else {}
        return {**shared, **{p.label: p.proc.pid for p in probes}}

    def summary(self) -> dict[str, Any]:
        """Count, worst and total of the stalls so far, and how the probes ran, for JSON."""
        return {
            **summarise(self.stalls()),
            "priority": self.priorities,
            "floor_ms": {"host": HOST_FLOOR * 1000, "self": SELF_FLOOR * 1000},
        }

    def describe(self) -> str:
        """One line for a report: ``3 stalls > 2 ms, worst 21.4 ms``."""
        s = summarise(self.stalls())
        return f"{s['count']} stalls > {HOST_FLOOR * 1000:g} ms, worst {s['worst_ms']:.1f} ms"
