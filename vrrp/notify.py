"""keepalived's notifications of a state change: the ``vrrp_notify_fifo`` line and the scripts.

On each transition the daemon's :class:`Notifier` writes ``INSTANCE "name" STATE priority`` to
the FIFO (:func:`notify_line`, byte for byte keepalived's; ``GROUP "name" STATE 0`` for a sync
group), runs the ``notify_<state>`` script and the generic ``notify`` script with ``INSTANCE name
STATE priority`` (``GROUP name STATE 0``) appended, and reaps the scripts when SIGCHLD says one
has ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess

from vrrp.instance import Instance
from vrrp.spec import SyncGroupSpec

__all__ = ["Notifier", "notify_line"]

log = logging.getLogger("vrrp")


def notify_line(name: str, state: str, priority: int, kind: str = "INSTANCE") -> str:
    """A ``vrrp_notify_fifo`` line, byte for byte as keepalived's ``notify_fifo`` writes it
    (``kind`` ``GROUP`` for a sync group, whose priority keepalived writes as 0)."""
    return f'{kind} "{name}" {state} {priority}\n'


class Notifier:
    """The daemon's notify FIFO and the notify scripts it has started and not yet reaped."""

    def __init__(self) -> None:
        """No FIFO yet (:meth:`open_fifo` opens the configured one), no script running."""
        self.fifo_fd: int | None = None
        self.fifo_path: str | None = None
        self.children: list[subprocess.Popen[bytes]] = []

    def open_fifo(self, path: str | None) -> None:
        """Make ``path`` (``vrrp_notify_fifo``, or none) the FIFO written to; a no-op if it is."""
        if path == self.fifo_path:
            return
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None
        self.fifo_path = path
        if path is None:
            return
        try:
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                os.mkfifo(path, 0o600)
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                log.error("vrrp_notify_fifo %s exists and is not a FIFO", path)
                return
            # O_RDWR, as keepalived: the open never blocks or fails for want of a reader,
            # and a reader that comes and goes does not make our writes fail with EPIPE.
            self.fifo_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.error("cannot open vrrp_notify_fifo %s: %s", path, exc)

    def notify(self, inst: Instance, word: str) -> None:
        """Tell the FIFO and the scripts that ``inst`` entered ``word`` (MASTER, STOP, ...)."""
        priority = inst.machine.priority  # keepalived reports the effective priority
        if self.fifo_fd is not None:
            try:
                os.write(self.fifo_fd, notify_line(inst.name, word, priority).encode())
            except OSError as exc:  # a full FIFO loses a line, as with keepalived
                log.warning("notify fifo write failed: %s", exc)
        script = {
            "MASTER": inst.spec.notify_master,
            "BACKUP": inst.spec.notify_backup,
            "FAULT": inst.spec.notify_fault,
            "STOP": inst.spec.notify_stop,
        }.get(word)
        if script:
            self._spawn(list(script))
        if inst.spec.notify:
            self._spawn([*inst.spec.notify, "INSTANCE", inst.name, word, str(priority)])

    def notify_group(self, group: SyncGroupSpec, word: str) -> None:
        """Tell the FIFO and the group's scripts that the sync group entered ``word``
        (keepalived's ``send_group_notifies``: the ``notify_<state>`` script, the generic one
        with ``GROUP name STATE 0`` appended, then the FIFO line)."""
        script = {
            "MASTER": group.notify_master,
            "BACKUP": group.notify_backup,
            "FAULT": group.notify_fault,
            "STOP": group.notify_stop,
        }.get(word)
        if script:
            self._spawn(list(script))
        if group.notify:
            self._spawn([*group.notify, "GROUP", group.name, word, "0"])
        if self.fifo_fd is not None:
            try:
                os.write(self.fifo_fd, notify_line(group.name, word, 0, "GROUP").encode())
            except OSError as exc:
                log.warning("notify fifo write failed: %s", exc)

    def _spawn(self, argv: list[str]) -> None:
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("notify script %s failed to start: %s", argv[0], exc)
            return
        self.children.append(child)

    def reap(self) -> None:
        """Forget the scripts that have ended (on SIGCHLD)."""
        self.children = [c for c in self.children if c.poll() is None]

    def close_fifo(self) -> None:
        """Close the FIFO (the file itself stays)."""
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None

    def wait(self) -> None:
        """Give each script still running up to 2 s to end (at shutdown)."""
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
