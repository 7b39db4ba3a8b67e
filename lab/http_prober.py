"""The HTTP service probes that run inside lab nodes, and their wire format.

Two programs, driven from the runner by :mod:`lab.service_probe`:

* the **backend** (``http_prober.py backend NAME``): an HTTP/1.1 server with keep-alive on the
  backend node, behind the load balancers; every response carries ``X-Backend: NAME``.
* the **client** (``http_prober.py client TARGET``) in the observer measures the service as
  HTTP clients see it: *requests*, one every ``--interval`` seconds on a deadline schedule as
  the UDP prober's, each on a new connection (``Connection: close``); and *sessions*,
  ``--sessions`` keep-alive connections ("slots") sending one every ``--session-interval``,
  that report when they open and break, and reconnect.

The client reports over its stdout, one ASCII record per line, flushed every 10 ms::

    ready <t0>
    q <seq> <sent> <ended> ok <status> <served_by> <backend>
    q <seq> <sent> <ended> err <reason>         timeout | eof | bad | errno name
    k <slot> opened <t> <served_by>
    k <slot> broken <t> <how> <served_by>       reset | closed | hung | refused | timeout | ...
    done key=value ...

``served_by`` is the response's ``X-Served-By`` (the load balancer adds it), ``backend`` its
``X-Backend``; ``-`` stands for an absent value. Times are the lab clock (CLOCK_REALTIME):
``sent`` is read just before ``connect()``, ``ended`` when the response was complete or the
failure seen. Both programs end at stdin EOF. The runner launches them from this file's path
with ``python -I``, so this module imports only the standard library and never ``lab``
(importing the ``lab`` package costs about 0.6 s of CPU per process).

It is a little over the project's 800 lines on purpose: ``python -I`` keeps the script's own
directory off the import path, so the two programs and their wire format cannot be split into
sibling modules without giving up that isolation.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import resource
import select
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, NamedTuple

#: The port the backend listens on.
DEFAULT_BACKEND_PORT = 8080
#: The port the client sends to (the load balancer's frontend on the VIP).
DEFAULT_PORT = 80
#: The longest message head either side accepts before calling the peer's bytes garbage.
MAX_HEAD = 64 * 1024

_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLRDHUP
# Edge-triggered with both directions at once: one epoll_ctl per connection for its whole life
# (the connect completes as an EPOLLOUT edge, the response arrives as an EPOLLIN edge).
_CONN_EVENTS = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_LINGER_ABORT = struct.pack("ii", 1, 0)
_RECV = 65536


class BadMessage(ValueError):
    """The peer's bytes are not an HTTP/1.x message head we can read."""


# -- wire format (pure) ------------------------------------------------------------------------


def _split_head(data: bytes) -> tuple[list[bytes], dict[str, str], int] | None:
    """(first line's words, headers by lower-case name, head length), or None if incomplete."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HEAD:
            raise BadMessage("message head too long")
        return None
    first, *lines = data[:end].split(b"\r\n")
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadMessage(f"bad header line {raw[:80]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        # A repeated header is one comma-separated list (RFC 9110, 5.3).
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return first.split(b" ", 2), headers, end + 4


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    # Repeated identical lengths ("5, 5") are allowed; differing ones are a framing error.
    values = {v.strip() for v in value.split(",")}
    text = values.pop()
    if values or not text.isdigit():
        raise BadMessage(f"bad Content-Length {value!r}")
    return int(text)


def _has_token(headers: dict[str, str], name: str, token: str) -> bool:
    return token in (t.strip().lower() for t in headers.get(name, "").split(","))


@dataclass(frozen=True)
class ResponseHead:
    """The status line and headers of an HTTP/1.x response."""

    version: str
    """``HTTP/1.1`` or ``HTTP/1.0``."""
    status: int
    reason: str
    headers: dict[str, str]
    """Header values by lower-case name; a repeated header's values joined with ``", "``."""
    length: int
    """Bytes of the head, the blank line included: the body starts there."""
    content_length: int | None
    """The body's length from ``Content-Length``; None when absent."""
    chunked: bool
    """True when the body comes in chunks (``Transfer-Encoding: chunked``)."""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None when absent."""
        return self.headers.get(name.lower())

    @property
    def has_body(self) -> bool:
        """False for the statuses that never carry a body (1xx, 204, 304)."""
        return self.status >= 200 and self.status not in (204, 304)

    @property
    def until_eof(self) -> bool:
        """True when the body ends only where the server closes the connection."""
        return self.has_body and not self.chunked and self.content_length is None


def parse_response_head(data: bytes) -> ResponseHead | None:
    """The response head at the start of ``data``; None while it is incomplete.

    Raises :class:`BadMessage` as soon as the bytes cannot be an HTTP/1.x response (a wrong
    start, a bad status line or header, a head longer than :data:`MAX_HEAD`).
    """
    if data[:5] != b"HTTP/"[: len(data)]:
        raise BadMessage(f"not an HTTP response: {data[:40]!r}")
    split = _split_head(data)
    if split is None:
        return None
    words, headers, length = split
    if len(words) < 2 or words[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadMessage(f"bad status line {b' '.join(words)[:80]!r}")
    if len(words[1]) != 3 or not words[1].isdigit():
        raise BadMessage(f"bad status {words[1][:10]!r}")
    reason = words[2].decode("latin-1") if len(words) > 2 else ""
    content_length = _content_length(headers)
    chunked = _has_token(headers, "transfer-encoding", "chunked")
    return ResponseHead(
        words[0].decode(), int(words[1]), reason, headers, length, content_length, chunked
    )


def message_length(head: ResponseHead, data: bytes) -> int | None:
    """Bytes of the complete response at the start of ``data`` (head and body), or None.

    None means "not complete yet", and always for a body that ends at the connection's end
    (:attr:`ResponseHead.until_eof`): only the EOF completes that one. A chunked body raises
    :class:`BadMessage`: neither the backend nor haproxy in front of it sends one, so a chunked
    response says something else answered.
    """
    if not head.has_body:
        return head.length
    if head.chunked:
        raise BadMessage("chunked bodies are not read")
    if head.content_length is None:
        return None
    total = head.length + head.content_length
    return total if len(data) >= total else None


class RequestHead(NamedTuple):
    """What the backend needs of a request head."""

    length: int
    """Bytes of the head, the blank line included."""
    keep_alive: bool
    """Whether the client keeps the connection open (HTTP/1.0: only if it asks to)."""
    body_length: int
    """Bytes of the body to skip (``Content-Length``)."""
    version: str


def parse_request_head(data: bytes) -> RequestHead | None:
    """The request head at the start of ``data``; None while incomplete; BadMessage if garbage.

    A chunked body cannot be skipped without decoding it, so such a request reads as not
    keep-alive: the backend answers it, then closes.
    """
    split = _split_head(data)
    if split is None:
        return None
    words, headers, length = split
    if len(words) != 3 or words[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not words[0].isalpha():
        raise BadMessage(f"bad request line {b' '.join(words)[:80]!r}")
    version = words[2].decode()
    if version == "HTTP/1.0":
        keep = _has_token(headers, "connection", "keep-alive")
    else:
        keep = not _has_token(headers, "connection", "close")
    if _has_token(headers, "transfer-encoding", "chunked"):
        return RequestHead(length, False, 0, version)
    return RequestHead(length, keep, _content_length(headers) or 0, version)


def record_word(value: str | None) -> str:
    """A value as one ASCII word of a record: ``-`` when absent or empty."""
    if not value:
        return "-"
    return "_".join(value.encode("ascii", "replace").decode().split()) or "-"


def request_line(
    seq: int,
    sent: float,
    ended: float,
    status: int | None,
    served_by: str | None = None,
    backend: str | None = None,
    error: str | None = None,
) -> str:
    """A request's ``q`` record: ``ok`` with its status when answered (``status`` given), else
    ``err`` with ``error``. :func:`lab.service_probe.parse_record` reads it back."""
    head = f"q {seq} {sent:.6f} {ended:.6f}"
    if status is None:
        return f"{head} err {record_word(error)}"
    return f"{head} ok {status} {record_word(served_by)} {record_word(backend)}"


def session_line(slot: int, at: float, how: str | None, served_by: str | None) -> str:
    """A slot's ``k`` record: ``opened`` when ``how`` is None, else ``broken`` ``how``."""
    if how is None:
        return f"k {slot} opened {at:.6f} {record_word(served_by)}"
    return f"k {slot} broken {at:.6f} {record_word(how)} {record_word(served_by)}"


def done_line(figures: dict[str, float]) -> str:
    """The closing ``done key=value ...`` record."""
    return "done " + " ".join(f"{k}={v:.6g}" for k, v in figures.items())


# -- shared by the programs --------------------------------------------------------------------


def _errname(code: int | None) -> str:
    return errno.errorcode.get(code or 0, f"E{code}")


def _raise_nofile() -> None:
    # With the VIP unreachable, timeout/interval requests (1,000 by default) are in flight.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _watch_stdin(ep: select.epoll, fd: int | None) -> bool:
    """Register stdin to see its EOF; False when it is at its end already."""
    if fd is None:
        return True
    try:
        ep.register(fd, select.EPOLLIN)
    except PermissionError:
        # epoll refuses regular files (and /dev/null): such a stdin ends once read through.
        while os.read(fd, _RECV):
            pass
        return False
    return True


def _stdin_ended(fd: int) -> bool:
    return not os.read(fd, 4096)


# -- the client --------------------------------------------------------------------------------

# A connection's states. A request: connecting (its request goes out once connected), awaiting
# its response, then draining: complete, waiting for the server's FIN so that the server, not
# the client, holds the TIME_WAIT (at 1,000 connections a second the client's ephemeral ports
# would run out). A session slot: down (reconnects at ``due``), connecting, awaiting a
# response, idle until its next request is ``due``.
_DOWN, _CONNECTING, _AWAIT, _DRAINING, _IDLE = range(5)
_OPEN = (_CONNECTING, _AWAIT)
#: How a session's failure reads in its ``broken`` record.
_BROKEN_HOW = {
    "ECONNREFUSED": "refused",
    "ETIMEDOUT": "timeout",
    "ECONNRESET": "reset",
    "EPIPE": "reset",
    "eof": "closed",
}


@dataclass(eq=False, slots=True)
class _Conn:
    """One client connection: a request's (``slot`` None) or a session slot's."""

    seq: int
    slot: int | None
    due: float = 0.0
    sock: socket.socket | None = None
    fd: int = -1
    state: int = _DOWN
    sent: float = 0.0
    deadline: float = float("inf")
    buf: bytes = b""
    head: ResponseHead | None = None
    pending: bytes = b""
    served_by: str | None = None
    opened: bool = False


class _Client:
    """The client's connections and event handlers; :func:`run_client` drives its loop."""

    def __init__(
        self, target: str, port: int, path: str, timeout: float, every: float, out: IO[str]
    ) -> None:
        """Connect to ``target``:``port`` for ``path``; sessions send a request ``every`` s."""
        info = socket.getaddrinfo(target, port, type=socket.SOCK_STREAM)[0]
        self.family, self.addr = info[0], info[4]
        host = f"[{target}]" if ":" in target else target
        self.request_bytes = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        self.session_bytes = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self.timeout = timeout
        self.session_interval = every
        # A session's response may take until its next request is due, or the timeout.
        self.session_wait = max(timeout, every)
        self.out = out
        self.lines: list[str] = []
        self.flushed = time.monotonic()
        self.ep = select.epoll()
        self.conns: dict[int, _Conn] = {}
        self.inflight: deque[_Conn] = deque()
        self.open_requests = 0
        self.requests = self.ok = self.failed = 0
        self.sessions_opened = self.sessions_broken = 0

    def flush_at(self) -> float:
        """When the pending records are due out (monotonic): batched, one write per 10 ms."""
        return self.flushed + 0.01 if self.lines else float("inf")

    def flush(self) -> None:
        """Write the pending records."""
        if self.lines:
            self.out.write("\n".join(self.lines) + "\n")
            self.lines.clear()
        self.out.flush()
        self.flushed = time.monotonic()

    def _connect(self, conn: _Conn, payload: bytes) -> bool:
        """Start ``conn``'s connect; False (and the failure reported) when it fails at once."""
        try:
            sock = socket.socket(self.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        except OSError as exc:
            conn.sent = time.time()
            self._failed(conn, _errname(exc.errno))
            return False
        conn.sent = time.time()
        # The deadline counts from the same instant as the stamp, so a timeout's latency is
        # never under the timeout.
        conn.deadline = time.monotonic() + self.timeout
        code = sock.connect_ex(self.addr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()  # no route, no source address: the connect fails at once
            self._failed(conn, _errname(code))
            return False
        conn.sock, conn.fd, conn.state = sock, sock.fileno(), _CONNECTING
        conn.pending = payload
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, _CONN_EVENTS)
        return True

    def start_request(self, seq: int) -> None:
        """Open request ``seq``'s connection; the request goes out once it is connected."""
        self.requests += 1
        conn = _Conn(seq, None)
        if self._connect(conn, self.request_bytes):
            self.inflight.append(conn)
            self.open_requests += 1

    def _close(self, conn: _Conn, *, abort: bool) -> None:
        if conn.slot is None and conn.state in _OPEN:
            self.open_requests -= 1
        sock, conn.sock = conn.sock, None
        conn.state, conn.buf, conn.head, conn.pending = _DOWN, b"", None, b""
        if sock is None:
            return
        del self.conns[conn.fd]
        if abort:
            # An RST (SO_LINGER 0): a given-up connection leaves no TIME_WAIT behind.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
        sock.close()

    def _failed(self, conn: _Conn, reason: str) -> None:
        """Report ``conn``'s failure (``reason``: an errno name, eof, bad, timeout, hung)."""
        now = time.time()
        if conn.slot is None:
            self.failed += 1
            self.lines.append(request_line(conn.seq, conn.sent, now, None, error=reason))
        else:
            self.sessions_broken += 1
            how = _BROKEN_HOW.get(reason, reason)
            self.lines.append(session_line(conn.slot, now, how, conn.served_by))
        self._close(conn, abort=True)
        conn.served_by, conn.opened = None, False
        conn.due = time.monotonic() + self.session_interval

    def _answered(self, conn: _Conn, head: ResponseHead) -> None:
        served_by = head.headers.get("x-served-by")
        if conn.slot is None:
            self.ok += 1
            self.open_requests -= 1
            conn.state = _DRAINING
            backend = head.headers.get("x-backend")
            now = time.time()
            self.lines.append(
                request_line(conn.seq, conn.sent, now, head.status, served_by, backend)
            )
            return
        conn.served_by = served_by
        if not conn.opened:
            conn.opened = True
            self.sessions_opened += 1
            self.lines.append(session_line(conn.slot, time.time(), None, served_by))
        if conn.state == _AWAIT:
            conn.state, conn.deadline = _IDLE, float("inf")

    def on_event(self, conn: _Conn, events: int) -> None:
        """Handle an epoll event of ``conn``'s socket."""
        sock = conn.sock
        assert sock is not None
        if conn.state == _CONNECTING:
            if events & select.EPOLLERR:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._failed(conn, _errname(code))
                    return
            if not events & select.EPOLLOUT:
                return
            conn.state = _AWAIT
            if conn.slot is not None:
                self._session_sent(conn, time.monotonic())
        if conn.pending and events & select.EPOLLOUT:
            try:
                conn.pending = conn.pending[sock.send(conn.pending) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                self._failed(conn, _errname(exc.errno))
                return
        if events & _READABLE:
            self._read(conn, sock)

    def _read(self, conn: _Conn, sock: socket.socket) -> None:
        # Edge-triggered: read until the socket is drained, or the next edge never comes.
        while True:
            try:
                chunk = sock.recv(_RECV)
            except BlockingIOError:
                return
            except OSError as exc:
                if conn.state == _DRAINING:
                    self._close(conn, abort=True)
                else:
                    self._failed(conn, _errname(exc.errno))
                return
            if not chunk:
                if conn.state == _DRAINING:
                    self._close(conn, abort=False)
                elif conn.slot is None and conn.head is not None and conn.head.until_eof:
                    self._answered(conn, conn.head)
                    self._close(conn, abort=False)
                else:
                    self._failed(conn, "eof")
                return
            if conn.state == _DRAINING:
                continue
            conn.buf += chunk
            # Several responses at once only on a session (a late one, then the next).
            while conn.buf and conn.state != _DRAINING:
                try:
                    if conn.head is None:
                        conn.head = parse_response_head(conn.buf)
                        if conn.head is None:
                            break
                    total = message_length(conn.head, conn.buf)
                except BadMessage:
                    self._failed(conn, "bad")
                    return
                if total is None:
                    break
                head, conn.head, conn.buf = conn.head, None, conn.buf[total:]
                self._answered(conn, head)

    def expire(self, now: float) -> None:
        """Give up the requests whose deadline has passed (deadlines grow with seq)."""
        queue = self.inflight
        while queue:
            conn = queue[0]
            if conn.state != _DOWN and conn.deadline > now:
                return
            queue.popleft()
            if conn.state == _DRAINING:
                self._close(conn, abort=True)
            elif conn.state != _DOWN:
                self._failed(conn, "timeout")

    def _session_sent(self, conn: _Conn, now: float) -> None:
        conn.pending += self.session_bytes
        conn.state = _AWAIT
        conn.deadline = now + self.session_wait
        conn.due = now + self.session_interval

    def session_timers(self, now: float, slots: list[_Conn]) -> float:
        """Run the slots' due actions (connect, send, give up); return the next one's time."""
        wake = float("inf")
        for conn in slots:
            if conn.state == _DOWN:
                if now >= conn.due:
                    self._connect(conn, b"")
            elif conn.state == _IDLE:
                if now >= conn.due:
                    self._session_sent(conn, now)
                    self.on_event(conn, select.EPOLLOUT)
            elif now >= conn.deadline:
                self._failed(conn, "timeout" if conn.state == _CONNECTING else "hung")
            wake = min(wake, conn.due if conn.state in (_DOWN, _IDLE) else conn.deadline)
        return wake

    def end_sessions(self, slots: list[_Conn]) -> None:
        """Close the slots without reporting them: the client is ending, nothing broke them."""
        for conn in slots:
            # A FIN: an idle keep-alive connection closed by its client is no error to log.
            self._close(conn, abort=False)


def run_client(
    target: str,
    *,
    port: int = DEFAULT_PORT,
    interval: float = 0.001,
    timeout: float = 1.0,
    sessions: int = 8,
    session_interval: float = 0.1,
    max_lag: float = 0.05,
    linger: float = 0.2,
    path: str = "/",
    out: IO[str] = sys.stdout,
    stdin_fd: int | None = 0,
) -> dict[str, float]:
    """The client's loop (runs inside the observer). Returns the figures of its ``done`` line.

    Runs until ``stdin_fd`` reaches EOF (forever with None), then waits up to ``linger``
    seconds for the requests in flight. One thread, one epoll: it wakes for the next due
    request, the next session action, the oldest request's deadline or the output's flush,
    whichever comes first.
    """
    if interval <= 0 or timeout <= 0 or session_interval <= 0:
        raise ValueError("interval, timeout and session-interval must be positive")
    _raise_nofile()
    client = _Client(target, port, path, timeout, session_interval, out)
    ep, conns = client.ep, client.conns
    running = _watch_stdin(ep, stdin_fd)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    slots = [_Conn(-1, i, start) for i in range(sessions)]
    client.lines.append(f"ready {time.time():.6f}")
    client.flush()
    seq = skipped = 0
    end_at = float("inf")
    while True:
        now = time.monotonic()
        if running:
            due = start + seq * interval
            if now - due > max_lag:
                # Descheduled for longer than max_lag: skip the backlog rather than burst it,
                # which would open many connections at one instant and load the target (the
                # UDP prober's rule, written again: a stand-alone program imports no sibling).
                behind = int((now - due) / interval)
                seq += behind
                skipped += behind
                due = start + seq * interval
            while due <= now:
                client.start_request(seq)
                seq += 1
                due = start + seq * interval
            wake = min(due, client.session_timers(now, slots))
        elif client.open_requests == 0 or now >= end_at:
            break
        else:
            wake = end_at
        client.expire(now)
        if client.inflight:
            wake = min(wake, client.inflight[0].deadline)
        for fd, events in ep.poll(max(0.0, min(wake, client.flush_at()) - time.monotonic())):
            conn = conns.get(fd)
            if conn is not None:
                client.on_event(conn, events)
            elif fd == stdin_fd and running and _stdin_ended(fd):
                # The end: no new requests; the sessions close unreported, as nothing broke them.
                running = False
                ep.unregister(fd)
                end_at = time.monotonic() + linger
                client.end_sessions(slots)
        if time.monotonic() >= client.flush_at():
            client.flush()
    client.expire(float("inf"))  # the end: what is still open timed out
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "requests": float(client.requests),
        "ok": float(client.ok),
        "failed": float(client.failed),
        "skipped": float(skipped),
        "sessions_opened": float(client.sessions_opened),
        "sessions_broken": float(client.sessions_broken),
        "utime": usage.ru_utime - usage0.ru_utime,
        "stime": usage.ru_stime - usage0.ru_stime,
        "wall": time.monotonic() - start,
    }
    client.lines.append(done_line(figures))
    client.flush()
    ep.close()
    return figures


# -- the backend -------------------------------------------------------------------------------


def _response(name: str, connection: str | None) -> bytes:
    body = f"{name}\n".encode()
    conn = f"Connection: {connection}\r\n" if connection else ""
    head = (
        f"HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n{conn}\r\n"
    )
    return head.encode() + body


_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
    b"Connection: close\r\n\r\nbad request\n"
)


@dataclass(eq=False, slots=True)
class _Peer:
    """One connection the backend accepted."""

    sock: socket.socket
    buf: bytes = b""
    out: bytes = b""
    body_left: int = 0
    closing: bool = False
    writing: bool = False


class _Backend:
    """The backend's connections and handlers; :func:`run_backend` drives its loop."""

    def __init__(self, name: str, ep: select.epoll) -> None:
        self.ep = ep
        self.peers: dict[int, _Peer] = {}
        self.keep = _response(name, None)
        self.keep10 = _response(name, "keep-alive")
        self.close = _response(name, "close")
        self.requests = self.connections = 0

    def accept(self, listener: socket.socket) -> None:
        """Accept every pending connection."""
        while True:
            try:
                sock, _addr = listener.accept()
            except OSError:
                # Drained (EAGAIN), out of descriptors, or the peer gave up in the queue.
                return
            sock.setblocking(False)
            self.connections += 1
            self.peers[sock.fileno()] = _Peer(sock)
            self.ep.register(sock.fileno(), select.EPOLLIN)

    def drop(self, fd: int) -> None:
        """Close connection ``fd``."""
        self.peers.pop(fd).sock.close()

    def on_event(self, fd: int, events: int) -> None:
        """Read what came on connection ``fd``, answer each complete request, write."""
        peer = self.peers[fd]
        if events & ~select.EPOLLOUT:
            try:
                chunk = peer.sock.recv(_RECV)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk == b"":
                self.drop(fd)
                return
            if chunk:
                peer.buf += chunk
                self._answer(peer)
        self._write(fd, peer)

    def _answer(self, peer: _Peer) -> None:
        replies: list[bytes] = []
        # Pipelined requests are answered in order, each once its head (and body) is in.
        while not peer.closing:
            if peer.body_left:
                taken = min(peer.body_left, len(peer.buf))
                peer.buf = peer.buf[taken:]
                peer.body_left -= taken
                if peer.body_left:
                    break
            try:
                head = parse_request_head(peer.buf)
            except BadMessage:
                replies.append(_BAD_REQUEST)
                peer.closing = True
                break
            if head is None:
                break
            peer.buf = peer.buf[head.length :]
            peer.body_left = head.body_length
            self.requests += 1
            if not head.keep_alive:
                replies.append(self.close)
                peer.closing = True
            else:
                # An HTTP/1.0 client keeps the connection only if told it is kept.
                replies.append(self.keep10 if head.version == "HTTP/1.0" else self.keep)
        peer.out += b"".join(replies)

    def _write(self, fd: int, peer: _Peer) -> None:
        if peer.out:
            try:
                peer.out = peer.out[peer.sock.send(peer.out) :]
            except BlockingIOError:
                pass
            except OSError:
                self.drop(fd)
                return
        if peer.out and not peer.writing:
            peer.writing = True
            self.ep.modify(fd, select.EPOLLIN | select.EPOLLOUT)
        elif not peer.out and peer.closing:
            self.drop(fd)
        elif not peer.out and peer.writing:
            peer.writing = False
            self.ep.modify(fd, select.EPOLLIN)


def run_backend(
    name: str,
    *,
    port: int = DEFAULT_BACKEND_PORT,
    bind: str = "0.0.0.0",
    out: IO[str] = sys.stdout,
    stdin_fd: int | None = 0,
) -> dict[str, float]:
    """The backend's loop (runs inside the backend node) until stdin EOF; returns its figures."""
    _raise_nofile()
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((bind, port))
    listener.listen(4096)
    ep = select.epoll()
    backend = _Backend(name, ep)
    ep.register(listener.fileno(), select.EPOLLIN)
    running = _watch_stdin(ep, stdin_fd)
    out.write(f"ready {time.time():.6f}\n")
    out.flush()
    while running:
        for fd, events in ep.poll():
            if fd == listener.fileno():
                backend.accept(listener)
            elif fd in backend.peers:
                backend.on_event(fd, events)
            elif fd == stdin_fd and _stdin_ended(fd):
                running = False
    for fd in list(backend.peers):
        backend.drop(fd)
    listener.close()
    ep.close()
    out.write(f"done requests={backend.requests} connections={backend.connections}\n")
    out.flush()
    return {"requests": float(backend.requests), "connections": float(backend.connections)}


def main(argv: Sequence[str] | None = None) -> int:
    """``http_prober.py backend|client ...``: the programs, as run inside a node."""
    parser = argparse.ArgumentParser(prog="http_prober.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    back = sub.add_parser("backend", help="serve HTTP, answering with NAME")
    back.add_argument("name", help="the name every response carries (X-Backend, body)")
    back.add_argument("--port", type=int, default=DEFAULT_BACKEND_PORT)
    back.add_argument("--bind", default="0.0.0.0", help="the address to listen on")
    cli = sub.add_parser("client", help="measure an HTTP service; print records on stdout")
    cli.add_argument("target", help="the address to connect to (the VIP)")
    cli.add_argument("--port", type=int, default=DEFAULT_PORT)
    cli.add_argument("--interval", type=float, default=0.001, help="seconds between requests")
    cli.add_argument("--timeout", type=float, default=1.0, help="give a request up after (s)")
    cli.add_argument("--sessions", type=int, default=8, help="keep-alive connections")
    cli.add_argument(
        "--session-interval", type=float, default=0.1, help="seconds between session requests"
    )
    cli.add_argument("--max-lag", type=float, default=0.05, help="skip a longer backlog (s)")
    cli.add_argument("--linger", type=float, default=0.2, help="wait for in-flight ones (s)")
    cli.add_argument("--path", default="/", help="the request path")
    args = parser.parse_args(argv)
    if args.command == "backend":
        run_backend(args.name, port=args.port, bind=args.bind)
        return 0
    if min(args.interval, args.timeout, args.session_interval) <= 0 or args.sessions < 0:
        parser.error("--interval, --timeout, --session-interval must be > 0, --sessions >= 0")
    options = vars(args)
    del options["command"]
    run_client(options.pop("target"), **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
