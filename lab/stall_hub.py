"""The stall hub: one set of host probes for every stall witness on the machine.

The host probes (one per CPU, pinned at SCHED_FIFO 2, and the RTNL probe) measure the machine,
not a lab: two witnesses running side by side would run two identical sets, each waking 1,000
times a second. Measured: with four conformance benches at a time, their probes took a third of
the CPU the stage used (221 of about 630 CPU-seconds), most of it these. So a witness running as
root shares them through this hub; the probes that follow one lab (the peer probe, scheduled as
its routers are, and the run-queue probe, reading their waits) stay the witness's own.

Run by :mod:`lab.stalls` as ``python -I stall_hub.py NAME PERIOD RTNL_PERIOD FLOOR``. It takes
the abstract UNIX socket address NAME (no file: nothing is left on disk, and the kernel frees
the name when the hub ends); a hub that finds NAME taken says ``busy`` and ends, so two witnesses
that start one at once end up on the same. Then it starts the probes (``stall_probe.py``, its
children: they end when it does), prints ``ready`` and from then on speaks lines:

* to each witness that connects: ``probe <label> <priority> <pid>`` for each probe, then
  ``ready``; afterwards ``stall <label> <start> <end>`` for every stall any probe reports, and
  ``synced <label> <time>`` whenever a probe answers a sync;
* from a witness: any line asks every probe to sync (report everything up to now).

It ends as soon as its last witness has gone, so it outlives no lab. A witness that connected
as it went reads EOF before ``ready`` and starts a new hub.

The hub itself is standard library only, like the probes (importing the ``lab`` package would
cost it 0.6 s of CPU); :class:`HubLink`, the witnesses' side, imports what it needs of ``lab``
when it runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stall_probe.py")


class _Probe:
    """One probe child: its label, what it said when ready, and its unread output."""

    def __init__(self, label: str, argv: list[str]) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, "-I", _PROBE, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.priority = "unknown"
        self.pending = b""

    def wait_ready(self) -> None:
        """Read the probe's ``ready <priority> <cpu>`` line (it prints nothing before it)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            raise SystemExit(f"stall hub: the probe {self.label} said {line!r}")
        self.priority = line.split()[1]
        os.set_blocking(self.proc.stdout.fileno(), False)

    def ask(self) -> None:
        """Ask the probe to report everything up to now."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(b"s\n")
            self.proc.stdin.flush()

    def lines(self) -> list[str]:
        """The whole lines the probe wrote since the last call ([] at EOF too)."""
        assert self.proc.stdout is not None
        with contextlib.suppress(BlockingIOError):
            self.pending += os.read(self.proc.stdout.fileno(), 65536)
        *done, self.pending = self.pending.split(b"\n")
        return [line.decode(errors="replace") for line in done]

    def end(self) -> None:
        """Close its stdin, its cue to finish, and reap it."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _prioritise() -> str:
    """The probes' own :func:`lab.stall_probe.prioritise`: read beside this file when run as a
    script (``-I``, without the ``lab`` package)."""
    if __package__:
        from lab.stall_probe import prioritise
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from stall_probe import prioritise  # type: ignore[import-not-found, no-redef]
    return prioritise()


def relay(line: str, label: str) -> bytes | None:
    """What the hub tells its witnesses of ``line`` from the probe ``label``: its stalls and
    its sync answers, each named; None for anything else."""
    words = line.split()
    if len(words) >= 3 and words[0] == "stall":
        return f"stall {label} {words[1]} {words[2]}\n".encode()
    if len(words) == 2 and words[0] == "synced":
        return f"synced {label} {words[1]}\n".encode()
    return None


def serve(name: str, period: float, rtnl_period: float, floor: float) -> int:
    """Serve the probes under ``name`` until the last witness has gone (or a probe has)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind("\0" + name)
    except OSError:
        print("busy", flush=True)  # another hub has it: the witness joins that one
        return 0
    listener.listen(64)
    hub = os.getpid()
    probes = [
        _Probe(f"cpu{cpu}", [str(cpu), str(period), str(floor), str(hub)])
        for cpu in sorted(os.sched_getaffinity(0))
    ]
    probes.append(_Probe("rtnl", ["rtnl", str(rtnl_period), str(floor), str(hub)]))
    for probe in probes:
        probe.wait_ready()
    # Only now: children forked from a realtime hub would start their interpreters realtime,
    # holding a CPU from every router for tens of milliseconds. The hub relays stalls and sync
    # answers, so it must not wait behind the routers either.
    priority = _prioritise()
    listener.setblocking(False)
    hello = b"".join(f"probe {p.label} {p.priority} {p.proc.pid}\n".encode() for p in probes)
    print(f"ready {priority}", flush=True)
    # Nobody reads them from now on: the witness that started the hub has what it needs.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    clients: set[socket.socket] = set()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    for probe in probes:
        assert probe.proc.stdout is not None
        sel.register(probe.proc.stdout, selectors.EVENT_READ, probe)

    def drop(client: socket.socket) -> None:
        if client in clients:  # once: it may still be among the keys being handled
            sel.unregister(client)
            clients.discard(client)
            client.close()

    served = False
    began = time.monotonic()
    while clients or (not served and time.monotonic() - began < START_GRACE):
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is listener:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        client, _ = listener.accept()
                        try:
                            client.sendall(hello + b"ready\n")
                        except OSError:
                            client.close()
                            continue
                        client.setblocking(False)
                        clients.add(client)
                        sel.register(client, selectors.EVENT_READ)
                        served = True
            elif isinstance(key.data, _Probe):
                probe = key.data
                lines = probe.lines()
                if not lines and probe.proc.poll() is not None:
                    # A probe died: no witness may go on as if it watched. Each reads EOF,
                    # counts the time until it has a new hub as a stall, and starts one.
                    clients.clear()
                    served = True
                    break
                for line in lines:
                    data = relay(line, probe.label)
                    for client in list(clients) if data is not None else ():
                        # Never blocked by one witness (a process stopped for long): one
                        # that cannot take a line whole is let go, and counts the time it
                        # was away as a stall when it joins again.
                        try:
                            sent = client.send(data)
                        except OSError:
                            sent = 0
                        if sent != len(data):
                            drop(client)
            else:
                client = key.fileobj
                assert isinstance(client, socket.socket)
                if client not in clients:
                    continue  # let go earlier in this round
                try:
                    data = client.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    drop(client)
                    continue
                for probe in probes:
                    probe.ask()
    # Closing frees the name; a witness that connected meanwhile reads EOF and starts a hub.
    listener.close()
    for key in list(sel.get_map().values()):
        if isinstance(key.fileobj, socket.socket):
            key.fileobj.close()
    for probe in probes:
        probe.end()
    return 0


#: How long a hub no witness has connected to yet waits for its first.
START_GRACE = 10.0


# -- the witnesses' side ---------------------------------------------------------------------


class HubLink:
    """A witness's share of the machine's host probes: its connection to the hub serving
    ``name``, which it starts when none answers (:class:`lab.stalls.StallWitness` makes one
    when it runs as root in the machine's own network namespace, where the name lives).

    It stands for one probe per label the hub runs (``cpu0``, ``cpu1``, ``rtnl``): the witness
    asks it to sync (:meth:`ask`, :meth:`wait_synced`) and reads :attr:`priorities` and
    :attr:`pids`. Each stall the hub tells from the connection on goes to ``add(start, end,
    source)``. Should the hub go while the link is open (a probe died), the link joins or
    starts a new one and records the time between as a stall of every label, named
    ``(hub restarted)``: from the probes' last answer to a sync, or from the join if none came.
    """

    def __init__(
        self, name: str, add: Callable[[float, float, str], None], args: list[str]
    ) -> None:
        self._name = name
        self._add = add
        self._args = args
        self._cond = threading.Condition()
        self._closing = False
        self.priorities: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.synced: dict[str, float] = {}
        self.joined = 0.0
        """When the link last joined a hub (lab clock)."""
        self._sock, self._file = self._connect()
        self._reader = threading.Thread(target=self._read, name="stalls-hub", daemon=True)
        self._reader.start()

    @property
    def labels(self) -> list[str]:
        """The probes the hub runs."""
        return list(self.priorities)

    def _connect(self) -> tuple[socket.socket, Any]:
        """Join the hub, starting one where none answers; LabError when none would."""
        from lab.errors import LabError

        said = ""
        for _ in range(JOIN_TRIES):
            joined = self._join()
            if joined is not None:
                return joined
            # None answered, or one was going: start one (it says busy if another won).
            said = self._start()
        raise LabError(f"no stall hub answered at @{self._name} ({JOIN_TRIES} tries): {said}")

    def _join(self) -> tuple[socket.socket, Any] | None:
        """Connect and read the hub's hello; None where no hub listens, or it was going."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(HELLO_TIMEOUT)
            sock.connect("\0" + self._name)
            file = sock.makefile("rb")
            priorities, pids = {}, {}
            while True:
                words = file.readline().decode(errors="replace").split()
                if words == ["ready"]:
                    break
                if len(words) != 4 or words[0] != "probe":
                    raise ConnectionError(f"the stall hub said {words}")
                priorities[words[1]] = words[2]
                pids[words[1]] = int(words[3])
            sock.settimeout(None)
        except OSError:
            sock.close()
            return None
        from lab import clock

        self.priorities, self.pids = priorities, pids
        with self._cond:
            self.synced = dict.fromkeys(priorities, float("-inf"))
            self.joined = clock.now()
        return sock, file

    def _start(self) -> str:
        """Start a hub and wait until it serves, or says another does; what it said."""
        hub = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), self._name, *self._args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
            start_new_session=True,  # a Ctrl-C meant for this process is not for every witness
        )
        assert hub.stdout is not None and hub.stderr is not None
        ready = select.select([hub.stdout], [], [], HELLO_TIMEOUT)[0]
        said = hub.stdout.readline().decode(errors="replace").strip() if ready else "nothing"
        if not said:
            said = hub.stderr.read().decode(errors="replace").strip() or "nothing"
        hub.stdout.close()
        hub.stderr.close()
        # It outlives this witness; reaped here whenever it ends, so it leaves no zombie.
        threading.Thread(target=hub.wait, name="stall-hub-reaper", daemon=True).start()
        return said

    def _read(self) -> None:
        from lab import clock
        from lab.errors import LabError

        while True:
            with contextlib.suppress(OSError, ValueError):  # closed under it: as EOF
                for raw in self._file:
                    words = raw.decode(errors="replace").split()
                    if len(words) == 4 and words[0] == "stall":
                        self._add(float(words[2]), float(words[3]), words[1])
                    elif len(words) == 3 and words[0] == "synced":
                        with self._cond:
                            self.synced[words[1]] = float(words[2])
                            self._cond.notify_all()
            if self._closing:
                return
            # The hub went with this witness still on it: a new hub, and what the old one
            # may not have told, from its last answer on, as a stall of every probe.
            with self._cond:
                lost = max(self.joined, *self.synced.values())
            labels = self.labels
            try:
                self._sock, self._file = self._connect()
            except LabError:
                for label in labels:
                    self._add(lost, float("inf"), f"{label} (hub gone)")
                with self._cond:
                    self.synced = dict.fromkeys(labels, float("inf"))
                    self._cond.notify_all()
                return
            back = clock.now()
            for label in labels:
                self._add(lost, back, f"{label} (hub restarted)")

    def ask(self) -> None:
        """Ask every probe of the hub to report up to now."""
        with contextlib.suppress(OSError):
            self._sock.sendall(b"s\n")

    def wait_synced(self, until: float, deadline: float) -> list[str]:
        """Wait until every probe has reported up to ``until``; the labels that had not by
        ``deadline`` (monotonic)."""
        with self._cond:
            self._cond.wait_for(
                lambda: all(t >= until for t in self.synced.values()),
                timeout=max(0.0, deadline - time.monotonic()),
            )
            return [label for label, t in self.synced.items() if t < until]

    def close(self) -> None:
        """Leave the hub (the last witness to leave ends it); safe twice."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)
        self._file.close()
        self._sock.close()


#: How long a witness waits for a hub to start, or to say hello.
HELLO_TIMEOUT = 10.0
#: How often a witness tries to join a hub, starting one each time none answered: a hub that
#: was going as it joined, and one that lost the name to another, each cost a try.
JOIN_TRIES = 5


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: stall_hub.py NAME PERIOD RTNL_PERIOD FLOOR")
    sys.exit(serve(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
