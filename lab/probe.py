"""Probes, runner side: start the prober and responders in lab nodes, and read who answered.

The programs themselves, their modes and their line protocol are in :mod:`lab.prober`; this
module starts them through the node (:meth:`lab.node.Namespace.popen`), so they die with the lab
at the latest and are stopped in order by ``lab.defer``, and turns the prober's records into
results on the lab clock. The ``lab`` helpers it uses are imported inside its functions, so that
importing this module costs only the standard library and :mod:`lab.prober`.

Runner-side API::

    resp = responders(lab, nodes=["ha_first", "ha_second"])
    run = start_probes(lab, source="observer", target="10.200.51.10")
    first = run.wait_served(timeout=5)          # the VIP is reachable
    ...                                         # break something
    results = run.stop()
    for outage in results.outages():
        print(outage.duration, outage.old, "->", outage.new)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab import prober
from lab.prober import DEFAULT_PORT, DEFAULT_RATE, DEFAULT_SIZE, Mode, main

if TYPE_CHECKING:
    from lab.lab import Lab
    from lab.node import Namespace


@dataclass(frozen=True)
class ProbeResult:
    """One probe: when it left, when its reply came back and who sent that reply.

    Times are seconds on the lab clock. ``received`` is None while no reply has come: the probe
    is ``lost`` once the run has stopped (or, live, once it is older than the run's timeout).
    """

    seq: int
    sent: float
    received: float | None = None
    responder: str | None = None
    error: str | None = None
    """Why the send failed (an errno name), when it did."""

    @property
    def answered(self) -> bool:
        """True when a reply came back."""
        return self.received is not None

    @property
    def rtt(self) -> float | None:
        """Round-trip time in seconds, or None when unanswered."""
        return None if self.received is None else self.received - self.sent


@dataclass(frozen=True)
class Outage:
    """A run of unanswered probes between two answered ones.

    ``duration`` is the outage of docs/architecture.md#metrics: from the last reply before the
    gap to the first reply after it, both as received. ``send_gap`` is the same span measured on the
    two probes' send times.
    """

    last_before: ProbeResult
    first_after: ProbeResult
    lost: int
    """Probes sent in between that were not answered in time (send errors included)."""

    @property
    def start(self) -> float:
        """When the last reply before the outage arrived."""
        assert self.last_before.received is not None
        return self.last_before.received

    @property
    def end(self) -> float:
        """When the first reply after the outage arrived."""
        assert self.first_after.received is not None
        return self.first_after.received

    @property
    def duration(self) -> float:
        """Seconds from the last reply before to the first reply after."""
        return self.end - self.start

    @property
    def send_gap(self) -> float:
        """Seconds between the sends of those two probes."""
        return self.first_after.sent - self.last_before.sent

    @property
    def old(self) -> str | None:
        """Who served before the outage."""
        return self.last_before.responder

    @property
    def new(self) -> str | None:
        """Who served after it."""
        return self.first_after.responder


@dataclass
class ProbeResults(Sequence[ProbeResult]):
    """The results of a probe run, in seq order, with the prober's own figures."""

    items: list[ProbeResult]
    rate: float
    """The configured probes per second."""
    figures: dict[str, float] = field(default_factory=dict)
    """The prober's ``done`` line: sent, replies, errors, skipped, utime, stime, wall."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[ProbeResult]:
        return iter(self.items)

    @property
    def interval(self) -> float:
        """The configured seconds between two probes."""
        return 1.0 / self.rate

    def answered(self) -> list[ProbeResult]:
        """The probes that were answered, in seq order."""
        return [r for r in self.items if r.received is not None]

    def lost(self) -> list[ProbeResult]:
        """The probes that were not."""
        return [r for r in self.items if r.received is None]

    def between(self, start: float | None = None, end: float | None = None) -> ProbeResults:
        """The probes sent in ``[start, end)``."""
        keep = [
            r
            for r in self.items
            if (start is None or r.sent >= start) and (end is None or r.sent < end)
        ]
        return ProbeResults(keep, self.rate, self.figures)

    def served_by(self, since: float | None = None, until: float | None = None) -> Counter[str]:
        """How many replies each responder sent, for replies received in ``[since, until)``."""
        return Counter(
            r.responder or "?"
            for r in self.items
            if r.received is not None
            and (since is None or r.received >= since)
            and (until is None or r.received < until)
        )

    def segments(self) -> list[tuple[str, ProbeResult, ProbeResult]]:
        """Who served, as runs of consecutive answered probes: (responder, first, last)."""
        out: list[tuple[str, ProbeResult, ProbeResult]] = []
        for r in self.answered():
            who = r.responder or "?"
            if out and out[-1][0] == who:
                out[-1] = (who, out[-1][1], r)
            else:
                out.append((who, r, r))
        return out

    def outages(self, min_lost: int = 1, late: float = 0.1) -> list[Outage]:
        """Every gap of at least ``min_lost`` unanswered probes between two answered ones.

        A reply slower than ``late`` seconds counts as a loss here: such a probe sat in the
        kernel's queue while the observer resolved the target's MAC (the kernel holds a few
        hundred packets of an INCOMPLETE neighbour and flushes them when the answer comes), so
        its reply says when the path came back, not that the target answered it in time.
        Probes lost before the first reply or after the last one bound no outage: the target
        was not reachable yet, or did not come back before the run stopped.
        """
        out: list[Outage] = []
        previous: ProbeResult | None = None
        lost = 0
        for r in self.items:
            rtt = r.rtt
            if rtt is None or rtt > late:
                lost += 1
                continue
            if previous is not None and lost >= min_lost:
                out.append(Outage(previous, r, lost))
            previous, lost = r, 0
        return out

    def send_rate(self) -> float:
        """Probes actually sent per second, first send to last."""
        if len(self.items) < 2:
            return 0.0
        return (len(self.items) - 1) / (self.items[-1].sent - self.items[0].sent)


def _script_argv(*args: str) -> list[str]:
    # -I: no script directory on sys.path (lab/ holds modules whose names could shadow the
    # standard library's) and no environment; the venv's site-packages still load.
    return [sys.executable, "-I", os.path.abspath(prober.__file__), *args]


class ProbeRun:
    """A prober running in a node, with its results readable while it runs.

    Made by :func:`start_probes`. A reader thread parses the prober's records as they arrive,
    so :meth:`last_served`, :meth:`served_by` and :meth:`wait_served` see replies within about
    10 ms. :meth:`stop` ends the prober and returns the :class:`ProbeResults`; it runs at lab
    teardown at the latest, and a second call returns the same results.
    """

    def __init__(
        self,
        node: Namespace,
        target: str,
        *,
        port: int = DEFAULT_PORT,
        rate: float = DEFAULT_RATE,
        mode: Mode = "udp",
        size: int = DEFAULT_SIZE,
        linger: float = 0.2,
        macs: dict[str, str] | None = None,
        ifname: str | None = None,
    ) -> None:
        self.node = node
        self.target = str(target)
        self.port = port
        self.rate = rate
        self.mode = mode
        self.size = size
        self.linger = linger
        self.macs = macs or {}
        self.ifname = ifname
        self.started_at: float | None = None
        """Lab-clock time the prober was ready."""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sent: dict[int, float] = {}
        self._replies: dict[int, tuple[float, str]] = {}
        self._errors: dict[int, tuple[float, str]] = {}
        self._last: ProbeResult | None = None
        self._figures: dict[str, float] = {}
        self._stderr: list[str] = []
        self._results: ProbeResults | None = None

    def start(self, timeout: float = 10.0) -> ProbeRun:
        """Start the prober and return once it is sending."""
        args = [
            "send",
            self.target,
            f"--port={self.port}",
            f"--rate={self.rate}",
            f"--mode={self.mode}",
            f"--size={self.size}",
            f"--linger={self.linger}",
        ]
        args += [f"--mac={name}={mac}" for mac, name in self.macs.items()]
        if self.ifname:
            args.append(f"--ifname={self.ifname}")
        self._proc = self.node.popen(
            _script_argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        from lab.sandbox import read_ready

        # The first line, "ready <t0>", is read byte by byte before the reader thread takes over.
        ready = read_ready(self._proc, timeout, f"the prober in {self.node.name}")
        self.started_at = float(ready.split()[1])
        self._reader = threading.Thread(
            target=self._read, name=f"prober-{self.node.name}", daemon=True
        )
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            parts = raw.decode(errors="replace").split()
            if not parts:
                continue
            tag = parts[0]
            with self._lock:
                if tag == "s":
                    self._sent[int(parts[1])] = float(parts[2])
                elif tag == "r":
                    seq, when, who = int(parts[1]), float(parts[2]), parts[3]
                    # The first reply counts; a duplicate (two routers answering) is ignored
                    # here and visible in the capture.
                    if seq not in self._replies:
                        self._replies[seq] = (when, who)
                        sent = self._sent.get(seq, when)
                        self._last = ProbeResult(seq, sent, when, who)
                elif tag == "e":
                    self._errors[int(parts[1])] = (float(parts[2]), parts[3])
                elif tag == "done":
                    self._figures = {k: float(v) for k, v in (p.split("=", 1) for p in parts[1:])}
        if self._proc.stderr is not None:
            self._stderr = self._proc.stderr.read().decode(errors="replace").splitlines()[-5:]

    @property
    def running(self) -> bool:
        """True while the prober process is alive and has not been stopped."""
        return self._proc is not None and self._proc.poll() is None and self._results is None

    def results(self) -> ProbeResults:
        """The results so far (all of them after :meth:`stop`).

        While running, a probe younger than ``linger`` without a reply is in flight, and left
        out, so that it is not mistaken for a lost one.
        """
        if self._results is not None:
            return self._results
        alive = self._proc is not None and self._proc.poll() is None
        return self._snapshot(_now() - self.linger if alive else None)

    def _snapshot(self, horizon: float | None) -> ProbeResults:
        with self._lock:
            sent = dict(self._sent)
            replies = dict(self._replies)
            errors = dict(self._errors)
            figures = dict(self._figures)
        items = []
        for seq in sorted(sent.keys() | errors.keys()):
            if seq in errors:
                when, why = errors[seq]
                items.append(ProbeResult(seq, when, error=why))
                continue
            when = sent[seq]
            reply = replies.get(seq)
            if reply is None and horizon is not None and when > horizon:
                continue
            if reply is None:
                items.append(ProbeResult(seq, when))
            else:
                items.append(ProbeResult(seq, when, reply[0], reply[1]))
        return ProbeResults(items, self.rate, figures)

    def last_served(self) -> ProbeResult | None:
        """The most recent reply (by arrival), or None before the first."""
        with self._lock:
            return self._last

    def served_by(self, since: float | None = None) -> Counter[str]:
        """Replies per responder, for replies received at or after ``since`` (lab clock)."""
        with self._lock:
            replies = list(self._replies.values())
        return Counter(who for when, who in replies if since is None or when >= since)

    def wait_served(
        self,
        *,
        timeout: float,
        by: str | None = None,
        since: float | None = None,
    ) -> ProbeResult:
        """Wait until a probe is answered (by ``by``, if given) at or after ``since``.

        This is the "the VIP is reachable" step. Returns the awaited reply; on timeout raises
        ``WaitTimeout`` saying who served last.
        """
        from lab.wait import wait_until

        since = _now() if since is None else since

        def ok(last: ProbeResult | None) -> bool:
            return (
                last is not None
                and last.received is not None
                and last.received >= since
                and (by is None or last.responder == by)
            )

        who = f" by {by}" if by else ""
        return wait_until(  # type: ignore[return-value]
            self.last_served,
            timeout=timeout,
            what=f"a probe of {self.target} to be answered{who}",
            accept=ok,
        )

    def wait_lost(self, count: int, *, timeout: float) -> None:
        """Wait until the latest ``count`` probes sent all went unanswered: the target is down."""
        from lab.wait import wait_until

        def streak() -> int:
            items = self.results().items
            n = 0
            for r in reversed(items):
                if r.received is not None:
                    break
                n += 1
            return n

        wait_until(
            streak,
            timeout=timeout,
            what=f"{count} consecutive probes of {self.target} to go unanswered",
            accept=lambda n: n >= count,
        )

    def stop(self, timeout: float = 10.0) -> ProbeResults:
        """Stop the prober (stdin EOF), wait for its late replies, and return all results."""
        if self._results is not None:
            return self._results
        if self._proc is None:
            return ProbeResults([], self.rate)
        from lab.sandbox import end_by_stdin

        end_by_stdin(self._proc, timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        self._results = self._snapshot(None)
        if self._proc.returncode != 0:
            from lab.errors import LabError

            raise LabError(
                f"the prober in {self.node.name} exited {self._proc.returncode}: "
                + " | ".join(self._stderr)
            )
        return self._results


def _now() -> float:
    from lab.clock import now

    return now()


class Responders:
    """Responder processes on a set of nodes, made by :func:`responders`."""

    def __init__(self, nodes: Iterable[Namespace], port: int = DEFAULT_PORT) -> None:
        self.nodes = list(nodes)
        self.port = port
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.answered: dict[str, int] = {}
        """After :meth:`stop`: how many probes each responder answered."""

    def start(self, timeout: float = 10.0) -> Responders:
        """Start one responder per node (in parallel) and return when all are listening."""
        for node in self.nodes:
            self._procs[node.name] = node.popen(
                _script_argv("respond", f"--name={node.name}", f"--port={self.port}"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        from lab.sandbox import read_ready

        for name, proc in self._procs.items():
            read_ready(proc, timeout, f"the probe responder in {name}")
        return self

    def stop(self, timeout: float = 5.0) -> dict[str, int]:
        """Stop every responder; return how many probes each answered."""
        from lab.sandbox import end_by_stdin

        # Every responder gets its cue first, so they wind down side by side.
        for proc in self._procs.values():
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for name, proc in self._procs.items():
            end_by_stdin(proc, timeout)
            # Its output is two short lines, so reading after the exit cannot block on a full pipe.
            assert proc.stdout is not None and proc.stderr is not None
            out = proc.stdout.read()
            proc.stdout.close()
            proc.stderr.close()
            for line in out.decode(errors="replace").splitlines():
                if line.startswith("done answered="):
                    self.answered[name] = int(line.split("=", 1)[1])
        self._procs.clear()
        return self.answered


def responders(
    lab: Lab, nodes: Iterable[str] | None = None, *, port: int = DEFAULT_PORT
) -> Responders:
    """Start a probe responder in each of ``nodes`` (default: every node); stopped at teardown."""
    names = list(nodes) if nodes is not None else list(lab.nodes)
    started = Responders([lab.node(n) for n in names], port)
    lab.defer(f"probe responders on {', '.join(names)}", started.stop)
    return started.start()


def start_probes(
    lab: Lab,
    *,
    source: str = "observer",
    target: str | None = None,
    rate: float = DEFAULT_RATE,
    mode: Mode = "udp",
    port: int = DEFAULT_PORT,
    size: int = DEFAULT_SIZE,
    linger: float = 0.2,
) -> ProbeRun:
    """Start probing ``target`` (default: the scenario's first VIP) from ``source``.

    In ``icmp`` mode the prober is given every lab port's MAC, so replies name the node whose
    MAC sent them. The run is stopped at lab teardown at the latest.
    """
    if target is None:
        if not lab.scenario.vips:
            from lab.errors import UsageError

            raise UsageError(f"scenario {lab.scenario.name} has no VIP; pass target=")
        target = str(lab.scenario.vips[0].address)
    macs = {p.mac: p.instance.name for p in lab.fabric.ports.values()} if mode == "icmp" else {}
    run = ProbeRun(
        lab.node(source),
        target,
        port=port,
        rate=rate,
        mode=mode,
        size=size,
        linger=linger,
        macs=macs,
    )
    lab.defer(f"prober {source} → {target}", run.stop)
    return run.start()


if __name__ == "__main__":
    # `python -m lab.probe send|respond` ran the programs before they moved to lab.prober.
    sys.exit(main())
