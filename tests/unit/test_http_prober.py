"""The HTTP service probes (issue 15): their wire format, their results, and the real programs.

The pure parts (the response-head parser, the records, :class:`HttpResults`) are tested as
functions. The programs run for real over the loopback of a network namespace the test creates
with ``unshare --net --map-root-user`` (never in the root namespace): a small launcher brings
``lo`` up there, starts the backend, prints its pid, and runs the client, whose records the test
reads until a condition holds or a deadline passes.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from lab import http_prober
from lab.http_prober import (
    BadMessage,
    message_length,
    parse_request_head,
    parse_response_head,
    request_line,
    session_line,
)
from lab.service_probe import (
    ClientReady,
    HttpRequest,
    HttpResults,
    ProgramDone,
    Record,
    SessionEvent,
    format_record,
    parse_record,
)

# -- the response-head parser ------------------------------------------------------------------

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nx-served-by: ha_first\r\nX-Backend: backend\r\n"
    b"Content-Length: 8\r\n\r\nbackend\n"
)


def test_a_complete_head_is_parsed() -> None:
    head = parse_response_head(RESPONSE)
    assert head is not None
    assert (head.version, head.status, head.reason) == ("HTTP/1.1", 200, "OK")
    assert head.length == RESPONSE.index(b"backend\n")
    assert head.content_length == 8
    assert message_length(head, RESPONSE) == len(RESPONSE)


def test_header_names_are_case_insensitive() -> None:
    head = parse_response_head(RESPONSE)
    assert head is not None
    assert head.header("X-Served-By") == "ha_first"
    assert head.header("x-backend") == head.header("X-BACKEND") == "backend"
    assert head.header("X-Missing") is None


@pytest.mark.parametrize("cut", [0, 1, 4, 5, 17, len(RESPONSE.split(b"\r\n\r\n")[0]) + 2])
def test_a_partial_head_is_none(cut: int) -> None:
    assert parse_response_head(RESPONSE[:cut]) is None


def test_a_partial_body_is_not_complete() -> None:
    head = parse_response_head(RESPONSE)
    assert head is not None
    assert message_length(head, RESPONSE[:-1]) is None
    # A following response's bytes do not make this one longer.
    assert message_length(head, RESPONSE + RESPONSE) == len(RESPONSE)


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTX",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * http_prober.MAX_HEAD,
    ],
)
def test_garbage_is_a_bad_message(data: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_response_head(data)


def test_bodies_without_a_length() -> None:
    eof = parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
    assert eof is not None and eof.until_eof
    assert message_length(eof, b"HTTP/1.0 200 OK\r\n\r\nall of it") is None
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    no_body = parse_response_head(empty)
    assert no_body is not None and not no_body.until_eof
    assert message_length(no_body, empty) == len(empty)


def test_a_chunked_body_is_not_read() -> None:
    # Neither the backend nor haproxy in front of it sends one: something else answered.
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nweb\n\r\n0\r\n\r\n"
    head = parse_response_head(data)
    assert head is not None and head.chunked and not head.until_eof
    with pytest.raises(BadMessage):
        message_length(head, data)


def test_request_heads() -> None:
    head = parse_request_head(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    assert head is not None
    assert (head.keep_alive, head.body_length, head.version) == (True, 3, "HTTP/1.1")
    closing = parse_request_head(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
    assert closing is not None and not closing.keep_alive
    old = parse_request_head(b"GET / HTTP/1.0\r\n\r\n")
    assert old is not None and not old.keep_alive
    old_kept = parse_request_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert old_kept is not None and old_kept.keep_alive
    assert parse_request_head(b"GET / HTTP/1.1\r\nHost:") is None
    with pytest.raises(BadMessage):
        parse_request_head(b"hello world\r\n\r\n")


# -- records and results -----------------------------------------------------------------------

RECORDS: list[Record] = [
    ClientReady(1700000000.5),
    HttpRequest(0, 1700000000.5, 1700000000.501234, 200, "ha_first", "backend", None),
    HttpRequest(1, 1700000000.501, 1700000000.502, 503, None, None, None),
    HttpRequest(2, 1700000000.502, 1700000001.502, None, None, None, "timeout"),
    HttpRequest(3, 1700000000.503, 1700000000.504, None, None, None, "ECONNREFUSED"),
    SessionEvent(0, 1700000000.6, "opened", None, "ha_first"),
    SessionEvent(0, 1700000001.0, "broken", "reset", "ha_first"),
    SessionEvent(7, 1700000001.1, "broken", "refused", None),
    ProgramDone({"requests": 4.0, "ok": 2.0, "utime": 0.25}),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip(record: Record) -> None:
    assert parse_record(format_record(record)) == record


def test_the_program_lines_read_back() -> None:
    line = request_line(5, 10.0, 10.25, 200, "lb one", None)
    assert line == "q 5 10.000000 10.250000 ok 200 lb_one -"
    assert parse_record(line) == HttpRequest(5, 10.0, 10.25, 200, "lb_one", None, None)
    assert parse_record(session_line(2, 3.0, "hung", None)) == SessionEvent(
        2, 3.0, "broken", "hung", None
    )


@pytest.mark.parametrize("line", ["", "q 1 2", "k 1 opened", "x 1 2 3", "q a b c ok 200 - -"])
def test_a_foreign_line_is_no_record(line: str) -> None:
    with pytest.raises(ValueError):
        parse_record(line)


def test_ok_and_latency() -> None:
    def req(status: int | None) -> HttpRequest:
        return HttpRequest(0, 1.0, 1.25, status, None, None, None if status else "eof")

    assert [req(s).ok for s in (200, 302, 399, 400, 503, None)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert req(200).latency == pytest.approx(0.25)


def test_results_helpers() -> None:
    requests = tuple(r for r in RECORDS if isinstance(r, HttpRequest))
    sessions = tuple(r for r in RECORDS if isinstance(r, SessionEvent))
    results = HttpResults(requests, sessions, {}, 0.001)
    assert [r.seq for r in results.failed()] == [1, 2, 3]
    assert results.served_by() == {"ha_first": 1}
    assert results.served_by(since=1700000000.6) == {}
    window = results.between(1700000000.501, 1700000000.503)
    assert [r.seq for r in window.requests] == [1, 2]
    assert window.sessions == ()
    assert [e.slot for e in results.between(1700000000.7).sessions] == [0, 7]


# -- the programs over a namespace's loopback --------------------------------------------------

#: Runs inside the new network namespace: lo up, the backend (its pid on the first line), then
#: the client, whose stdin and stdout are the launcher's. Closing the launcher's stdin ends the
#: client; the backend is ended after it, so that it serves the client's last requests, and its
#: closing line follows as "backend-done ...".
LAUNCHER = r"""
import fcntl, socket, struct, subprocess, sys
prober, port, *client_args = sys.argv[1:]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    ifreq = fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0))  # SIOCGIFFLAGS
    flags = struct.unpack_from("16sH", ifreq)[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP
backend = subprocess.Popen(
    [sys.executable, "-I", prober, "backend", "web", "--port", port, "--bind", "127.0.0.1"],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
)
ready = backend.stdout.readline().decode().strip()
print(f"backend {backend.pid} {ready}", flush=True)
client = subprocess.Popen(
    [sys.executable, "-I", prober, "client", "127.0.0.1", "--port", port, *client_args]
)
client.wait()
backend.stdin.close()
done = backend.stdout.read().decode().strip()
backend.wait()
print(f"backend-{done}", flush=True)
sys.exit(client.returncode or backend.returncode)
"""

UNSHARE = ["unshare", "--net", "--map-root-user"]


@pytest.fixture(scope="module")
def netns_allowed() -> None:
    """Skip unless this kernel lets us create a network namespace (as root, or in a user one)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): the programs run only in a namespace of the test's own")
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot create a network namespace: {exc}")
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {probe.stderr.decode().strip()}")


class Loopback:
    """The backend and the client in one fresh network namespace, read as records."""

    def __init__(self, *client_args: str) -> None:
        self.proc = subprocess.Popen(
            [
                *UNSHARE,
                sys.executable,
                "-I",
                "-c",
                LAUNCHER,
                http_prober.__file__,
                "8080",
                *client_args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.backend_pid: int | None = None
        self.backend_done: dict[str, float] = {}
        self.records: list[Record] = []
        self._buf = b""

    def read_until(self, what: str, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        """Read records until ``cond()`` holds; fail saying ``what`` after ``timeout`` s."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out waiting for {what}; last records: {self.records[-5:]}")
            readable, _, _ = select.select([self.proc.stdout], [], [], left)
            if not readable:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"the programs ended while waiting for {what}: {err}")
            self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            line = raw.decode()
            if line.startswith("backend "):
                self.backend_pid = int(line.split()[1])
            elif line.startswith("backend-done "):
                done = parse_record(line.removeprefix("backend-"))
                assert isinstance(done, ProgramDone)
                self.backend_done = done.figures
            elif line:
                self.records.append(parse_record(line))

    def requests(self, since: float = 0.0) -> list[HttpRequest]:
        """The requests reported so far, sent at or after ``since``."""
        return [r for r in self.records if isinstance(r, HttpRequest) and r.sent >= since]

    def sessions(self, since: float = 0.0) -> list[SessionEvent]:
        """The session events reported so far, at or after ``since``."""
        return [e for e in self.records if isinstance(e, SessionEvent) and e.at >= since]

    def signal_backend(self, sig: signal.Signals) -> float:
        """Send ``sig`` to the backend; return the lab time it was sent."""
        self.read_until("the backend to start", lambda: self.backend_pid is not None)
        assert self.backend_pid is not None
        at = time.time()
        os.kill(self.backend_pid, sig)
        return at

    def kill(self) -> None:
        """Kill the launcher, the backend and the client (one process group), and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def loopback(netns_allowed: None) -> Iterator[Callable[..., Loopback]]:
    """Start :class:`Loopback` runs; every process they started is killed after the test."""
    started: list[Loopback] = []

    def start(*client_args: str) -> Loopback:
        run = Loopback(*client_args)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


def opened_slots(run: Loopback, since: float = 0.0) -> set[int]:
    """The slots that reported ``opened`` at or after ``since``."""
    return {e.slot for e in run.sessions(since) if e.kind == "opened"}


def first_breaks(run: Loopback, since: float) -> dict[int, SessionEvent]:
    """Each slot's first ``broken`` event at or after ``since``."""
    out: dict[int, SessionEvent] = {}
    for e in run.sessions(since):
        if e.kind == "broken":
            out.setdefault(e.slot, e)
    return out


def test_requests_and_sessions_are_served(loopback: Callable[..., Loopback]) -> None:
    run = loopback("--interval=0.002", "--sessions=3", "--session-interval=0.02")
    run.read_until(
        "100 answered requests and 3 open sessions",
        lambda: sum(r.ok for r in run.requests()) >= 100 and len(opened_slots(run)) == 3,
    )
    assert run.proc.stdin is not None
    run.proc.stdin.close()
    run.read_until("both programs' done lines", lambda: bool(run.backend_done))
    assert run.proc.wait(timeout=5) == 0
    done = [r for r in run.records if isinstance(r, ProgramDone)]
    assert len(done) == 1
    figures = done[0].figures
    requests = run.requests()
    assert figures["requests"] == len(requests) == figures["ok"]
    assert figures["failed"] == figures["sessions_broken"] == 0
    assert {(r.status, r.backend, r.served_by) for r in requests} == {(200, "web", None)}
    assert all(0 < r.latency < 0.5 for r in requests)
    # Ending closes the sessions without calling them broken.
    assert not [e for e in run.sessions() if e.kind == "broken"]
    assert run.backend_done["requests"] >= len(requests) + 3
    assert run.backend_done["connections"] >= len(requests) + 3


def test_a_killed_backend_refuses_and_breaks_sessions(loopback: Callable[..., Loopback]) -> None:
    run = loopback("--interval=0.002", "--sessions=3", "--session-interval=0.02")
    run.read_until("3 open sessions", lambda: len(opened_slots(run)) == 3)
    killed = run.signal_backend(signal.SIGKILL)
    run.read_until(
        "refused requests and every session broken",
        lambda: (
            sum(r.error == "ECONNREFUSED" for r in run.requests(killed)) >= 10
            and len(first_breaks(run, killed)) == 3
        ),
    )
    assert {e.how for e in first_breaks(run, killed).values()} <= {"closed", "reset"}
    # A broken slot reconnects, and is refused while nothing listens.
    run.read_until(
        "a refused reconnect",
        lambda: any(e.how == "refused" for e in run.sessions(killed)),
    )
    assert not opened_slots(run, killed)


def test_a_frozen_backend_hangs_sessions_and_times_out(loopback: Callable[..., Loopback]) -> None:
    run = loopback("--interval=0.005", "--sessions=2", "--session-interval=0.02", "--timeout=0.2")
    run.read_until("2 open sessions", lambda: len(opened_slots(run)) == 2)
    frozen = run.signal_backend(signal.SIGSTOP)
    run.read_until(
        "timed-out requests and every session hung",
        lambda: (
            sum(r.error == "timeout" for r in run.requests(frozen)) >= 5
            and len(first_breaks(run, frozen)) == 2
        ),
    )
    assert {e.how for e in first_breaks(run, frozen).values()} == {"hung"}
    late = [r for r in run.requests(frozen) if r.error == "timeout"]
    # Given up at the timeout, not before; after it by no more than a loaded host's wake-up.
    assert all(0.2 <= r.latency < 0.5 for r in late), sorted(r.latency for r in late)
