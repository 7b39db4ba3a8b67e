"""What the leak checks need beside :mod:`lab.host_state` (the root namespace's snapshot):
the namespaces a test's labs made, whether any process still holds them, and the runner's
process tree."""

from __future__ import annotations

import glob
import os
import signal
import threading
from pathlib import Path
from types import TracebackType

from lab.wait import wait_until


def default_sigint() -> None:
    """``preexec_fn`` for a runner a test will Ctrl-C: SIGINT back to its default action.

    A suite started as a background job of a non-interactive shell (a CI script's ``cmd &``)
    inherits SIGINT ignored, and a Python started with it ignored never raises
    KeyboardInterrupt: the test's Ctrl-C would then do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def live_netns_inodes() -> set[int]:
    """The network namespace of every process on the machine, by inode.

    Only to ask whether namespaces *known to be a lab's* are still held: the set also holds
    every other lab on the machine (another xdist worker's, a user's `vrrp-lab up`), so
    comparing it before and after a test would count them as leaks.
    """
    inodes = set()
    for path in glob.glob("/proc/[0-9]*/ns/net"):
        try:
            inodes.add(os.stat(path).st_ino)
        except OSError:
            continue  # the process ended while we looked
    return inodes


def assert_namespaces_gone(inodes: set[int], *, timeout: float, whose: str) -> None:
    """Wait until no process on the machine holds any of ``inodes`` (a lab's namespaces).

    Raises :class:`~lab.errors.WaitTimeout` naming the namespaces still held.
    """
    wait_until(
        lambda: inodes & live_netns_inodes(),
        accept=lambda held: not held,
        timeout=timeout,
        what=f"no process to hold the network namespaces of {whose}",
    )


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` in the process tree (its children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it ended while we looked
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def netns_of(pids: set[int]) -> set[int]:
    """The network namespaces (by inode) that ``pids`` live in, except the caller's own (the
    root namespace, where the runners themselves live)."""
    root = os.stat("/proc/self/ns/net").st_ino
    inodes = set()
    for pid in pids:
        try:
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        except OSError:
            continue
    return inodes - {root}


class NamespaceWatch:
    """The network namespaces made under one process: its labs' identity, for leak checks.

    A thread reads the namespaces of ``pid``'s descendants every few milliseconds while the
    watch is open and keeps every one it ever saw, so a lab built and torn down between two
    of the test's own looks is still known. Nothing another process on the machine runs is
    counted. Use as a context manager, or :meth:`start` and :meth:`stop`.
    """

    #: Seconds between two looks: a bench lab lives for seconds, its namespaces far longer
    #: than this.
    PERIOD = 0.02

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.inodes: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"netns-watch-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = netns_of(descendants(self.pid))
            with self._lock:
                self.inodes |= seen
            self._stop.wait(self.PERIOD)

    def seen(self) -> set[int]:
        """The namespaces seen so far."""
        with self._lock:
            return set(self.inodes)

    def start(self) -> NamespaceWatch:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> set[int]:
        """Stop watching; return every namespace seen."""
        self._stop.set()
        self._thread.join()
        return self.seen()

    def __enter__(self) -> NamespaceWatch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
