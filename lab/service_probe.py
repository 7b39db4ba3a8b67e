"""HTTP service probes, runner side: start the backend and the client in lab nodes, read results.

The programs themselves and their line protocol are in :mod:`lab.http_prober`; this module
starts them through the node (:meth:`lab.node.Namespace.popen`), so they die with the lab at the
latest, and turns the client's records into results on the lab clock. The ``lab`` helpers it
uses are imported inside its functions, so that importing this module costs only the standard
library and :mod:`lab.http_prober`.

Runner-side API::

    backend = BackendRun(lab.node("backend"), "backend").start()
    run = HttpClientRun(lab.node("observer"), "10.200.51.10").start()
    first = run.wait_ok(timeout=5)              # the service answers through the VIP
    ...                                         # break something
    results = run.stop()
    print(len(results.failed()), results.served_by(since=first.ended))
    backend.stop()
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lab import http_prober
from lab.http_prober import DEFAULT_BACKEND_PORT, DEFAULT_PORT

if TYPE_CHECKING:
    from lab.node import Namespace


@dataclass(frozen=True)
class HttpRequest:
    """One request on a new connection: when it was sent, when it ended and how.

    Times are seconds on the lab clock. ``sent`` was read just before ``connect()``; ``ended``
    is when the response was complete, or when the failure was seen (the give-up time for a
    ``timeout``).
    """

    seq: int
    sent: float
    ended: float
    status: int | None
    """The response's status; None when the request failed."""
    served_by: str | None
    """The response's ``X-Served-By`` (the load balancer that served it), if any."""
    backend: str | None
    """The response's ``X-Backend`` (the backend that answered), if any."""
    error: str | None
    """Why it failed: ``timeout``, ``eof``, ``bad`` or an errno name; None when answered."""

    @property
    def ok(self) -> bool:
        """True for a 2xx or 3xx response."""
        return self.status is not None and 200 <= self.status < 400

    @property
    def latency(self) -> float:
        """Seconds from the send to the end (of the response, or of the attempt)."""
        return self.ended - self.sent


@dataclass(frozen=True)
class SessionEvent:
    """A keep-alive slot opened (its first response came) or broke."""

    slot: int
    at: float
    kind: Literal["opened", "broken"]
    how: str | None
    """How it broke: ``reset``, ``closed``, ``hung``, ``refused``, ``timeout``, ``bad`` or an
    errno name; None when opened."""
    served_by: str | None
    """Opened: the first response's ``X-Served-By``. Broken: the last one's on that connection."""


@dataclass(frozen=True)
class ClientReady:
    """The client's ``ready <t0>`` record."""

    t0: float


@dataclass(frozen=True)
class ProgramDone:
    """A program's closing ``done key=value ...`` record."""

    figures: dict[str, float]


Record = HttpRequest | SessionEvent | ClientReady | ProgramDone


def _word(word: str) -> str | None:
    return None if word == "-" else word


def parse_record(line: str) -> Record:
    """Read one line of :mod:`lab.http_prober`'s output; ValueError when it is not a record."""
    p = line.split()
    tag, n = (p[0] if p else ""), len(p)
    try:
        if tag == "q" and n == 8 and p[4] == "ok":
            seq, sent, ended, status = int(p[1]), float(p[2]), float(p[3]), int(p[5])
            return HttpRequest(seq, sent, ended, status, _word(p[6]), _word(p[7]), None)
        if tag == "q" and n == 6 and p[4] == "err":
            return HttpRequest(int(p[1]), float(p[2]), float(p[3]), None, None, None, p[5])
        if tag == "k" and n == 5 and p[2] == "opened":
            return SessionEvent(int(p[1]), float(p[3]), "opened", None, _word(p[4]))
        if tag == "k" and n == 6 and p[2] == "broken":
            return SessionEvent(int(p[1]), float(p[3]), "broken", p[4], _word(p[5]))
        if tag == "ready" and n == 2:
            return ClientReady(float(p[1]))
        if tag == "done":
            return ProgramDone({k: float(v) for k, v in (w.split("=", 1) for w in p[1:])})
    except ValueError:
        pass
    raise ValueError(f"not an http_prober record: {line!r}")


def format_record(record: Record) -> str:
    """A record as the line :mod:`lab.http_prober` prints for it (the inverse of
    :func:`parse_record`, through the program's own line functions)."""
    if isinstance(record, HttpRequest):
        r = record
        return http_prober.request_line(
            r.seq, r.sent, r.ended, r.status, r.served_by, r.backend, r.error
        )
    if isinstance(record, SessionEvent):
        how = None if record.kind == "opened" else record.how or "-"
        return http_prober.session_line(record.slot, record.at, how, record.served_by)
    if isinstance(record, ClientReady):
        return f"ready {record.t0:.6f}"
    return http_prober.done_line(record.figures)


@dataclass(frozen=True)
class HttpResults:
    """What the HTTP client measured: its requests in seq order, its session events in time
    order, and its own figures."""

    requests: tuple[HttpRequest, ...]
    sessions: tuple[SessionEvent, ...]
    figures: dict[str, float] = field(default_factory=dict)
    """The client's ``done`` line: requests, ok, failed, skipped, sessions_opened,
    sessions_broken, utime, stime, wall. Empty while it runs."""
    interval: float = 0.001
    """The configured seconds between two requests."""

    def between(self, start: float | None = None, end: float | None = None) -> HttpResults:
        """The requests sent, and the session events that happened, in ``[start, end)``."""

        def inside(t: float) -> bool:
            return (start is None or t >= start) and (end is None or t < end)

        return HttpResults(
            tuple(r for r in self.requests if inside(r.sent)),
            tuple(e for e in self.sessions if inside(e.at)),
            self.figures,
            self.interval,
        )

    def failed(self) -> tuple[HttpRequest, ...]:
        """The requests that did not get a 2xx or 3xx response, in seq order."""
        return tuple(r for r in self.requests if not r.ok)

    def served_by(self, since: float | None = None) -> Counter[str]:
        """How many requests each load balancer served (``X-Served-By``; ``-`` when absent),
        counting the successful ones that ended at or after ``since``."""
        return Counter(
            r.served_by or "-"
            for r in self.requests
            if r.ok and (since is None or r.ended >= since)
        )


def _script_argv(*args: str) -> list[str]:
    # -I: no script directory on sys.path (lab/ holds modules whose names could shadow the
    # standard library's) and no environment; the venv's site-packages still load.
    return [sys.executable, "-I", os.path.abspath(http_prober.__file__), *args]


class HttpClientRun:
    """The HTTP client running in a node, with its results readable while it runs.

    A reader thread parses the client's records as they arrive (the client flushes every
    10 ms), so :meth:`last_ok`, :meth:`results` and :meth:`wait_ok` see them live. Only
    finished requests are reported: one in flight appears once it is answered or given up.
    :meth:`stop` ends the client and returns every result; a second call returns the same.
    """

    def __init__(
        self,
        node: Namespace,
        target: str,
        *,
        port: int = DEFAULT_PORT,
        interval: float = 0.001,
        timeout: float = 1.0,
        sessions: int = 8,
        session_interval: float = 0.1,
        path: str = "/",
    ) -> None:
        self.node = node
        self.target = str(target)
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.sessions = sessions
        self.session_interval = session_interval
        self.path = path
        self.started_at: float | None = None
        """Lab-clock time the client was ready (its schedule's start)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: dict[int, HttpRequest] = {}
        self._sessions: list[SessionEvent] = []
        self._last_ok: HttpRequest | None = None
        self._figures: dict[str, float] = {}
        self._stderr: list[str] = []
        self._results: HttpResults | None = None

    def start(self, timeout: float = 10.0) -> HttpClientRun:
        """Start the client and return once it is running."""
        args = [
            "client",
            self.target,
            f"--port={self.port}",
            f"--interval={self.interval}",
            f"--timeout={self.timeout}",
            f"--sessions={self.sessions}",
            f"--session-interval={self.session_interval}",
            f"--path={self.path}",
        ]
        self._proc = self.node.popen(
            _script_argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        from lab.sandbox import read_ready

        # "ready <t0>" is read byte by byte; the reader thread takes the rest of the stream.
        ready = read_ready(self._proc, timeout, f"the HTTP client in {self.node.name}")
        self.started_at = float(ready.split()[1])
        self._reader = threading.Thread(
            target=self._read, name=f"http-client-{self.node.name}", daemon=True
        )
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                record = parse_record(raw.decode(errors="replace"))
            except ValueError:
                continue
            with self._lock:
                if isinstance(record, HttpRequest):
                    self._requests[record.seq] = record
                    if record.ok:
                        self._last_ok = record
                elif isinstance(record, SessionEvent):
                    self._sessions.append(record)
                elif isinstance(record, ProgramDone):
                    self._figures = record.figures
        if self._proc.stderr is not None:
            self._stderr = self._proc.stderr.read().decode(errors="replace").splitlines()[-5:]

    @property
    def pid(self) -> int | None:
        """The client's pid (as the runner sees it), None before it was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the client process is alive and has not been stopped."""
        return self._proc is not None and self._proc.poll() is None and self._results is None

    def results(self) -> HttpResults:
        """The results so far: the finished requests and the session events (all after stop)."""
        if self._results is not None:
            return self._results
        with self._lock:
            requests = [self._requests[seq] for seq in sorted(self._requests)]
            sessions = sorted(self._sessions, key=lambda e: e.at)
            figures = dict(self._figures)
        return HttpResults(tuple(requests), tuple(sessions), figures, self.interval)

    def last_ok(self) -> HttpRequest | None:
        """The most recently reported successful request, or None before the first."""
        with self._lock:
            return self._last_ok

    def wait_ok(
        self, *, timeout: float, by: str | None = None, since: float | None = None
    ) -> HttpRequest:
        """Wait until a request succeeds (served by ``by``, if given) and ended after ``since``.

        ``by`` is matched against the response's ``X-Served-By``, or its ``X-Backend`` when no
        load balancer stamped it. ``since`` defaults to now. Returns that request; on timeout
        raises ``WaitTimeout`` saying which request succeeded last.
        """
        from lab.clock import now
        from lab.wait import wait_until

        since = now() if since is None else since

        def accept(last: HttpRequest | None) -> bool:
            return (
                last is not None
                and last.ended >= since
                and (by is None or (last.served_by or last.backend) == by)
            )

        who = f" served by {by}" if by else ""
        return wait_until(  # type: ignore[return-value]
            self.last_ok,
            timeout=timeout,
            what=f"an HTTP request to {self.target}:{self.port} to succeed{who}",
            accept=accept,
        )

    def stop(self, timeout: float = 10.0) -> HttpResults:
        """Stop the client (stdin EOF), let its in-flight requests finish, return all results.

        Raises :class:`lab.errors.LabError` with the client's last stderr lines when it exited
        non-zero.
        """
        if self._results is not None:
            return self._results
        if self._proc is None:
            return HttpResults((), (), {}, self.interval)
        from lab.sandbox import end_by_stdin

        end_by_stdin(self._proc, timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        self._results = self.results()
        if self._proc.returncode != 0:
            from lab.errors import LabError

            raise LabError(
                f"the HTTP client in {self.node.name} exited {self._proc.returncode}: "
                + " | ".join(self._stderr)
            )
        return self._results


class BackendRun:
    """The HTTP backend running in a node (``X-Backend: name``)."""

    def __init__(self, node: Namespace, name: str, *, port: int = DEFAULT_BACKEND_PORT) -> None:
        self.node = node
        self.name = name
        self.port = port
        self.figures: dict[str, float] = {}
        """After :meth:`stop`: its ``done`` line (requests, connections)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """The backend process's pid (in the runner's PID namespace); None before start."""
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 10.0) -> BackendRun:
        """Start the backend and return once it listens."""
        self._proc = self.node.popen(
            _script_argv("backend", self.name, f"--port={self.port}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        from lab.sandbox import read_ready

        read_ready(self._proc, timeout, f"the HTTP backend in {self.node.name}")
        return self

    def stop(self, timeout: float = 5.0) -> dict[str, float]:
        """Stop the backend (stdin EOF) and return its figures; empty if it died before."""
        proc = self._proc
        if proc is None or self._stopped:
            return self.figures
        self._stopped = True
        from lab.sandbox import end_by_stdin

        end_by_stdin(proc, timeout)
        # It prints two short lines in all, so reading after the exit cannot block on a pipe.
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read().decode(errors="replace")
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        for line in out.splitlines():
            with contextlib.suppress(ValueError):
                record = parse_record(line)
                if isinstance(record, ProgramDone):
                    self.figures = record.figures
        return self.figures
