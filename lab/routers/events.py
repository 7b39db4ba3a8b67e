"""What a router daemon reports, as events on the lab clock: VRRP transitions and BFD events.

Two sources, one stamping rule (the lab-clock time the runner read the line, not the daemon's
own clock):

* **VRRP transitions** (:class:`Transition`) come from the notify FIFO as
  ``INSTANCE "name" STATE PRIORITY`` lines (:func:`parse_notify_line`), or, for a daemon without
  a FIFO, from its own output (``Router.parse_output_line``).
* **BFD events** (:class:`BfdEvent`) come from the daemon's log, which keepalived 2.2.7 and the
  bundled daemon write in one format (docs/architecture.md#routers): with ``-l -D`` keepalived
  prints, each line after a date,

  - ``(peer) Entering Up state``, and ``(peer) Entering Down state (Local diagnostic - Control
    Detection Time Expired, Remote diagnostic - No Diagnostic)`` (its BFD process, on the
    session's state changes; Init and AdminDown too);
  - ``(peer) Expired after 150 ms (89 usec overdue)`` (the BFD process, when the detection
    timer fires);
  - ``Received BFD event: instance peer is in state Down (delivered in 27 usec)`` (the VRRP
    process, on each event the BFD process sends it);
  - ``VRRP_Instance(VI_1) Tracked BFD instance peer is DOWN`` (the VRRP process, when a
    tracked session changes what it does to an instance).

  :func:`parse_bfd_line` turns each into a :class:`BfdEvent`.

Both kinds are kept in a :class:`Stream`, which blocks waiters until an event they accept
arrives. This module imports nothing of the lab above its foundations.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Generic, Literal, TypeVar

from lab import clock
from lab.errors import WaitTimeout

log = logging.getLogger(__name__)

#: States a notify FIFO reports. ``STOP`` is written by keepalived when it shuts down cleanly.
STATES = ("INIT", "BACKUP", "MASTER", "FAULT", "STOP")

# keepalived writes `INSTANCE "vrrp_1" MASTER 200` (and `GROUP "g" MASTER` for sync groups,
# without a priority); both forms are accepted.
_NOTIFY_LINE = re.compile(
    r'^(?P<kind>INSTANCE|GROUP)\s+"(?P<name>[^"]*)"\s+(?P<state>\w+)'
    r"(?:\s+(?P<prio>\d+))?\s*$"
)


@dataclasses.dataclass(frozen=True)
class Transition:
    """One state transition of one VRRP instance, as its daemon reported it."""

    at: float
    """Lab-clock time at which the runner read the notify line (arrival, not the daemon's)."""
    router: str
    """The node the router runs in."""
    instance: str
    """The ``vrrp_instance`` (or sync group) name."""
    state: str
    """``BACKUP``, ``MASTER``, ``FAULT``, ``STOP``, ... as written by the daemon."""
    priority: int | None
    """The priority the daemon reported (None for sync-group lines)."""
    kind: str = "INSTANCE"
    """``INSTANCE`` or ``GROUP``."""

    @property
    def is_state(self) -> bool:
        """True for a state (``MASTER``, ``BACKUP``, ...), False for an event line.

        keepalived also writes events that change no state, such as ``MASTER_RX_LOWER_PRI``
        (a master heard a lower-priority advert and forces an election): they stay in the
        stream for timelines but never count as the router's state.
        """
        return self.state in STATES

    def __str__(self) -> str:
        prio = "" if self.priority is None else f" {self.priority}"
        return f"{self.router}/{self.instance} {self.state}{prio} @{self.at:.6f}"


def parse_notify_line(line: str, at: float, router: str) -> Transition | None:
    """Parse one notify-FIFO line into a :class:`Transition`, or None when it is not one."""
    match = _NOTIFY_LINE.match(line.strip())
    if match is None:
        return None
    prio = match.group("prio")
    return Transition(
        at=at,
        router=router,
        instance=match.group("name"),
        state=match.group("state"),
        priority=int(prio) if prio is not None else None,
        kind=match.group("kind"),
    )


# --- BFD events -------------------------------------------------------------------------------

#: RFC 5880 §4.1's diagnostic codes by keepalived's words for them (its ``BFD_DIAG_STR``).
DIAGS = {
    "No Diagnostic": 0,
    "Control Detection Time Expired": 1,
    "Echo Function Failed": 2,
    "Neighbor Signaled Session Down": 3,
    "Forwarding Plane Reset": 4,
    "Path Down": 5,
    "Concatenated Path Down": 6,
    "Administratively Down": 7,
    "Reverse Concatenated Path Down": 8,
}

BfdKind = Literal["session", "expired", "received", "tracked"]

# The patterns end at the line's end: the date (keepalived) or `vrrp[PID]: ` (bundled) before
# the message varies, the message does not. Session states are capitalised as keepalived's
# BFD_STATE_STR spells them, which keeps `(VI_1) Entering BACKUP STATE` out.
_SESSION = re.compile(
    r"\((?P<name>[^()\s]+)\) Entering (?P<state>AdminDown|Down|Init|Up) state"
    r"(?: \(Local diagnostic - (?P<diag>[^,]+), Remote diagnostic - (?P<rdiag>[^)]+)\))?\s*$"
)
_EXPIRED = re.compile(
    r"\((?P<name>[^()\s]+)\) Expired after (?P<ms>\d+) ms \((?P<overdue>-?\d+) usec overdue\)\s*$"
)
_RECEIVED = re.compile(
    r"Received BFD event: instance (?P<name>\S+) is in state (?P<state>AdminDown|Down|Init|Up)"
    r"(?: \(delivered in (?P<usec>\d+) usec\))?\s*$"
)
_TRACKED = re.compile(
    r"VRRP_Instance\((?P<instance>[^)]+)\) Tracked BFD instance (?P<name>\S+) is "
    r"(?P<state>UP|DOWN)\s*$"
)


@dataclasses.dataclass(frozen=True)
class BfdEvent:
    """One BFD event a router's daemon logged, stamped on the lab clock when the line arrived.

    ``kind`` says which process said what (module docstring): ``session`` (the session's state
    changed), ``expired`` (its detection timer fired), ``received`` (the VRRP side was told)
    and ``tracked`` (a tracked session changed what it does to ``instance``).
    """

    at: float
    """Lab-clock time at which the runner read the line."""
    router: str
    """The node the router runs in."""
    session: str
    """The ``bfd_instance`` name."""
    kind: BfdKind
    state: str
    """``Up``, ``Down``, ``Init`` or ``AdminDown`` (``tracked`` lines say only Up or Down)."""
    diag: int | None = None
    """The local diagnostic (RFC 5880 §4.1) of a ``session`` event going Down, else None."""
    remote_diag: int | None = None
    """The remote system's last diagnostic, as the session's Down line reports it."""
    instance: str | None = None
    """The ``vrrp_instance`` of a ``tracked`` event."""
    expired_after_ms: float | None = None
    """For ``expired``: how long after the last packet the timer fired (whole ms)."""

    @property
    def is_down(self) -> bool:
        """True for an event that says the session is not Up (Down, AdminDown)."""
        return self.state in ("Down", "AdminDown")

    def describe(self) -> str:
        """One line for timelines, without the router's name."""
        if self.kind == "session":
            diag = "" if self.diag is None else f" (diag {self.diag}: {diag_name(self.diag)})"
            return f"BFD session {self.session} {self.state}{diag}"
        if self.kind == "expired":
            return f"BFD session {self.session} expired after {self.expired_after_ms:g} ms"
        if self.kind == "tracked":
            return f"{self.instance}: tracked BFD session {self.session} {self.state}"
        return f"VRRP told: BFD session {self.session} {self.state}"

    def __str__(self) -> str:
        return f"{self.router} {self.describe()} @{self.at:.6f}"


def diag_name(code: int) -> str:
    """keepalived's words for a diagnostic code (``code N`` for one it has no words for)."""
    return next((words for words, n in DIAGS.items() if n == code), f"code {code}")


def parse_bfd_line(line: str, at: float, router: str) -> BfdEvent | None:
    """One line of a daemon's log as a :class:`BfdEvent`, or None when it is not one."""
    if match := _SESSION.search(line):
        diag, rdiag = match.group("diag"), match.group("rdiag")
        return BfdEvent(
            at,
            router,
            match.group("name"),
            "session",
            match.group("state"),
            diag=DIAGS.get(diag.strip()) if diag else None,
            remote_diag=DIAGS.get(rdiag.strip()) if rdiag else None,
        )
    if match := _EXPIRED.search(line):
        return BfdEvent(
            at,
            router,
            match.group("name"),
            "expired",
            "Down",
            expired_after_ms=float(match.group("ms")),
        )
    if match := _RECEIVED.search(line):
        return BfdEvent(at, router, match.group("name"), "received", match.group("state"))
    if match := _TRACKED.search(line):
        return BfdEvent(
            at,
            router,
            match.group("name"),
            "tracked",
            match.group("state").capitalize(),
            instance=match.group("instance"),
        )
    return None


# --- streams ----------------------------------------------------------------------------------

E = TypeVar("E", Transition, BfdEvent)


class Stream(Generic[E]):
    """One router's events of one kind, in arrival order, with blocking waits.

    Thread-safe: the reader threads append, any thread reads or waits. Listeners (e.g. the
    lab's combined timeline) are called in the reader thread for every new event.
    """

    #: How :meth:`wait_for`'s timeout names the events it lists.
    noun = "events"

    def __init__(self, router: str) -> None:
        self.router = router
        self._events: list[E] = []
        self._cond = threading.Condition()
        self._listeners: list[Callable[[E], None]] = []

    def append(self, event: E) -> None:
        """Record ``event`` and wake every waiter."""
        with self._cond:
            self._events.append(event)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the stream
                log.exception("listener failed on %s", event)

    def add_listener(self, listener: Callable[[E], None]) -> None:
        """Call ``listener(event)`` for every event recorded from now on."""
        with self._cond:
            self._listeners.append(listener)

    def snapshot(self, since: float | None = None) -> list[E]:
        """The events so far (those at or after ``since`` when given)."""
        with self._cond:
            events = list(self._events)
        return events if since is None else [e for e in events if e.at >= since]

    def forget(self) -> int:
        """Drop the events kept so far except :meth:`_current` (what the stream's queries
        answer from); return how many were dropped. For a run that never makes a report from
        them (the one-lab soak, docs/benchmarks.md): the stream is otherwise a record of the
        whole run, by design."""
        with self._cond:
            kept = self._current()
            dropped = len(self._events) - len(kept)
            self._events = kept
        return dropped

    def _current(self) -> list[E]:
        """The events :meth:`forget` keeps (called under the lock): none by default."""
        return []

    def __iter__(self) -> Iterator[E]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    def wait_for(
        self,
        accept: Callable[[E], bool],
        *,
        timeout: float,
        what: str,
        since: float | None = None,
        describe: Callable[[], str] | None = None,
    ) -> E:
        """Block until an event at or after ``since`` satisfies ``accept``; return it.

        Blocks on the stream's condition (no polling). On timeout, raises :class:`WaitTimeout`
        naming ``what`` and listing every event seen, plus ``describe()`` (e.g. a log tail).
        """
        deadline = clock.now() + timeout
        start = 0
        with self._cond:
            while True:
                for event in self._events[start:]:
                    if (since is None or event.at >= since) and accept(event):
                        return event
                start = len(self._events)
                remaining = deadline - clock.now()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            seen = ", ".join(str(e) for e in self._events) or f"no {self.noun[:-1]} at all"
        extra = f"; {describe()}" if describe is not None else ""
        raise WaitTimeout(
            f"timed out after {timeout:g}s waiting for {what}; {self.noun} seen: {seen}{extra}"
        )


class EventStream(Stream[Transition]):
    """The VRRP transitions of one router (see :class:`Stream`)."""

    noun = "transitions"

    def latest(self, instance: str | None = None) -> Transition | None:
        """The last ``INSTANCE`` state transition (of ``instance`` when given), or None."""
        with self._cond:
            for event in reversed(self._events):
                if (
                    event.kind == "INSTANCE"
                    and event.is_state
                    and instance in (None, event.instance)
                ):
                    return event
        return None

    def _current(self) -> list[Transition]:
        """The last state transition of each instance: :meth:`latest` still answers."""
        last: dict[str, Transition] = {}
        for event in self._events:
            if event.kind == "INSTANCE" and event.is_state:
                last.pop(event.instance, None)
                last[event.instance] = event
        return list(last.values())


class BfdStream(Stream[BfdEvent]):
    """The BFD events of one router (see :class:`Stream`)."""

    noun = "BFD events"

    def session_state(self, session: str) -> str | None:
        """The state the last ``session`` event of ``session`` entered, or None before one."""
        with self._cond:
            for event in reversed(self._events):
                if event.kind == "session" and event.session == session:
                    return event.state
        return None

    def _current(self) -> list[BfdEvent]:
        """The last ``session`` event of each session: :meth:`session_state` still answers."""
        last: dict[str, BfdEvent] = {}
        for event in self._events:
            if event.kind == "session":
                last.pop(event.session, None)
                last[event.session] = event
        return list(last.values())
