"""The runner's handle on the controller process: its events, its cache, and its liveness.

A reader thread turns the controller's stdout into a list of events (dicts) and wakes anyone
waiting for one. If the controller exits while the lab still runs, the client logs it at
CRITICAL, calls ``on_death`` (the fabric then closes its data plane, so the lab cannot carry on
as plain L2), and every later call — :meth:`check` included — raises :class:`LabError`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.errors import LabError, WaitTimeout
from lab.sandbox import end_by_stdin

log = logging.getLogger(__name__)

Event = dict[str, Any]


class ControllerClient:
    """Reads a running controller's events and sends it commands."""

    def __init__(
        self,
        proc: subprocess.Popen[str],
        stderr_path: Path,
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self.on_death = on_death
        self.events: list[Event] = []
        """Every event so far, in arrival order (append-only), but those dropped by
        :meth:`forget_events`."""
        self._forgotten = 0
        """How many events :meth:`forget_events` dropped: marks count them, so stay valid."""
        self.died: str | None = None
        """Why the controller is gone, when it died on its own."""
        self._cond = threading.Condition()
        self._closing = False
        self._ids = itertools.count(1)
        self._reader = threading.Thread(
            target=self._read, name="sdn-controller-events", daemon=True
        )
        self._reader.start()

    # -- events -------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"t": time.time(), "event": "garbage", "line": line.rstrip()}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        code = self.proc.wait()
        with self._cond:
            closing = self._closing
            if not closing:
                self.died = (
                    f"the SDN controller (pid {self.proc.pid}) exited {code}: {self._tail()}"
                )
            self._cond.notify_all()
        if not closing and self.died:
            log.critical("%s; the fabric now drops every frame", self.died)
            if self.on_death is not None:
                try:
                    self.on_death(self.died)
                except Exception as exc:  # the lab may be tearing down under us
                    log.critical("could not close the fabric after the controller died: %s", exc)

    def _tail(self) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no stderr)"
        return " | ".join(lines[-3:]) or "(no stderr)"

    def check(self) -> None:
        """Raise :class:`LabError` if the controller has died: the lab must not carry on."""
        if self.died:
            raise LabError(self.died)

    def wait_for(
        self,
        match: Callable[[Event], bool],
        *,
        timeout: float,
        what: str,
        since: int = 0,
    ) -> Event:
        """The first event at index ``since`` or later that ``match`` accepts, waiting for it.

        Raises :class:`WaitTimeout` naming ``what`` and the last events seen, or
        :class:`LabError` if the controller dies meanwhile.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                index = max(index, self._forgotten)
                while index - self._forgotten < len(self.events):
                    event = self.events[index - self._forgotten]
                    if match(event):
                        return event
                    index += 1
                self.check()
                left = deadline - time.monotonic()
                if left <= 0:
                    kept = self.events[max(since - self._forgotten, 0) :]
                    seen = [e.get("event") for e in kept][-8:]
                    raise WaitTimeout(
                        f"timed out after {timeout:g}s waiting for {what}; "
                        f"controller events seen: {seen or 'none'}"
                    )
                self._cond.wait(left)

    def mark(self) -> int:
        """The index the next event will have: pass it as ``since`` to wait for new events."""
        with self._cond:
            return self._forgotten + len(self.events)

    def forget_events(self) -> int:
        """Drop the events kept so far and return how many; marks taken before stay valid.
        For a run that never makes a report from them (the one-lab soak,
        docs/benchmarks.md): :attr:`events` is otherwise the record of the whole run."""
        with self._cond:
            dropped = len(self.events)
            self._forgotten += dropped
            self.events = []
        return dropped

    def wait_ready(self, timeout: float = 10.0) -> Event:
        """Wait for the controller's ``ready`` event."""
        return self.wait_for(
            lambda e: e.get("event") == "ready", timeout=timeout, what="the SDN controller to start"
        )

    # -- commands -----------------------------------------------------------------------------

    def request(self, cmd: str, network: str | None = None, timeout: float = 5.0) -> Event:
        """Send a command and return the controller's reply event."""
        self.check()
        ident = next(self._ids)
        mark = self.mark()
        assert self.proc.stdin is not None
        line = json.dumps({"id": ident, "cmd": cmd, "network": network}) + "\n"
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            self.check()
            raise LabError(f"cannot reach the SDN controller: {exc}") from None
        reply = self.wait_for(
            lambda e: e.get("event") == "reply" and e.get("id") == ident,
            timeout=timeout,
            what=f"the controller's reply to {cmd}",
            since=mark,
        )
        if "error" in reply:
            raise LabError(f"SDN controller: {reply['error']}")
        return reply

    def arp_cache(self, network: str | None = None) -> list[Event]:
        """The controller's bindings: ``[{network, ip, mac, source, port, age, fixed}]``."""
        cache = self.request("dump", network)["cache"]
        return [{"network": net, **entry} for net, entries in cache.items() for entry in entries]

    def flush(self, network: str | None = None) -> int:
        """Forget every learned binding (fixed ones stay); return how many went."""
        return int(self.request("flush", network)["flushed"])

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the controller; raise :class:`LabError` if it had died during the run."""
        with self._cond:
            self._closing = self.died is None
        end_by_stdin(self.proc, timeout=5)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
        self.check()
