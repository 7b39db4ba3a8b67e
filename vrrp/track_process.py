"""keepalived's ``vrrp_track_process`` rules, pure: which processes match a block
(:func:`matches`), and when the count of matching processes makes the block up or down
(:class:`ProcessQuorum`, with ``fork_delay`` and ``terminate_delay``).

As keepalived 2.2.7 (keepalived/core/track_process.c):

* **Name or command line** (``read_procs``, ``check_process``). Without ``full_command``
  (and without parameters or ``param_match``, which imply it) the block's ``process`` is
  compared, exactly, with the process's name, ``/proc/PID/comm`` (at most 15 characters: a
  longer ``process`` never matches, as ``pgrep`` without ``-f``). With it, with the command
  line's first word (argv[0], up to its NUL), exactly: ``sleep`` does not match a process
  started as ``/bin/sleep``. Zombies never match (their command line is empty, and
  ``read_procs`` skips state ``Z``).
* **Parameters** (``check_params``), compared as keepalived compares them: each parameter
  followed by a NUL, against the command line after argv[0]'s NUL. ``exact``: the same words,
  no more; ``partial``: the command line's first words are the parameters, whole; ``initial``:
  the same, but the last parameter may be the beginning of the word there. ``param_match``
  with no parameters: ``exact`` means no parameters at all, the others anything.
* **Quorum** (``update_process_status`` and its callers): the block is up while quorum <=
  count <= quorum_max. A change the count's rise causes waits ``fork_delay``, one its fall
  causes ``terminate_delay`` (``check_process_fork``, ``check_process_termination``, the
  ``process_*_quorum_timer_thread`` functions); a count that comes back within the delay
  cancels the change. The first count decides at once (keepalived reads /proc at start,
  ``initialise_process_tracking_priorities``).

keepalived follows the kernel's process events (the netlink proc connector); the daemon
counts from /proc scans instead (:mod:`vrrp.proc_scan`), so a count is the state at the scan,
and a process that lives between two scans is never seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vrrp.spec import ProcessSpec

__all__ = ["ProcessInfo", "ProcessQuorum", "check_params", "count_matching", "matches"]

#: The kernel's TASK_COMM_LEN less its NUL: the longest /proc/PID/comm.
COMM_MAX = 15


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What one /proc entry says: its name (``comm``), its command line as the kernel keeps it
    (NUL after each word; empty for kernel threads and zombies), and whether it is a zombie."""

    pid: int
    comm: str
    cmdline: bytes = b""
    zombie: bool = False


def _joined(words: Iterable[str]) -> bytes:
    """Words as a command line holds them: each followed by a NUL."""
    return b"".join(w.encode() + b"\0" for w in words)


def check_params(match: str, wanted: tuple[str, ...], params: bytes) -> bool:
    """Whether a command line's parameters (``params``: what follows argv[0]'s NUL) match
    ``wanted`` in mode ``match`` (keepalived's ``check_params``, byte for byte)."""
    want = _joined(wanted)
    if match == "exact" and not want and not params:
        return True
    if len(params) < len(want):
        return False
    if match == "exact":
        return params == want
    if not want:
        return True
    if match == "partial":
        return params.startswith(want)
    # initial: the last parameter's NUL is not compared, so it may go on.
    return len(want) == 1 or params.startswith(want[:-1])


def matches(spec: ProcessSpec, proc: ProcessInfo) -> bool:
    """Whether ``proc`` is one of the processes ``spec`` counts."""
    if proc.zombie:
        return False
    if not spec.full_command:
        return proc.comm == spec.process
    argv0, nul, params = proc.cmdline.partition(b"\0")
    if argv0 != spec.process.encode():
        return False
    if spec.match is None:
        return True
    # keepalived takes the parameters from after argv[0]'s NUL even when there is none.
    return check_params(spec.match, spec.parameters, params if nul else b"")


def count_matching(spec: ProcessSpec, procs: Iterable[ProcessInfo]) -> int:
    """How many of ``procs`` ``spec`` counts."""
    return sum(1 for proc in procs if matches(spec, proc))


class ProcessQuorum:
    """One block's count and whether it is up, with keepalived's delays.

    :meth:`update` gives each new count; :meth:`expire` ends a delay that is due. Each returns
    True when :attr:`up` changed, which the caller applies to the instances tracking the block.
    """

    def __init__(self, spec: ProcessSpec) -> None:
        """A block not yet counted (:attr:`up` None until the first :meth:`update`)."""
        self.spec = spec
        self.count: int | None = None
        self.up: bool | None = None
        #: When a delayed change applies (monotonic seconds), or None.
        self.deadline: float | None = None

    def within(self, count: int) -> bool:
        """Whether ``count`` processes are a quorum."""
        spec = self.spec
        return count >= spec.quorum and (spec.quorum_max is None or count <= spec.quorum_max)

    def update(self, count: int, now: float) -> bool:
        """Take a new count at ``now``; True when :attr:`up` changed."""
        before, self.count = self.count, count
        wanted = self.within(count)
        if self.up is None or before is None:
            # The first count decides at once, as keepalived's start-up read of /proc.
            self.up, self.deadline = wanted, None
            return True
        if wanted == self.up:
            # Back within the delay: the change is cancelled, as keepalived cancels the timer.
            self.deadline = None
            return False
        if count == before:
            return False
        delay = self.spec.fork_delay if count > before else self.spec.terminate_delay
        if delay > 0:
            # A delay already running keeps its deadline: it started with the first change.
            if self.deadline is None:
                self.deadline = now + delay
            return False
        self.up, self.deadline = wanted, None
        return True

    def expire(self, now: float) -> bool:
        """End the delay if it is due at ``now``: the block's state is then the count's (as
        keepalived's quorum timers re-evaluate it). True when :attr:`up` changed."""
        if self.deadline is None or now < self.deadline or self.count is None:
            return False
        self.deadline = None
        wanted = self.within(self.count)
        changed = wanted != self.up
        self.up = wanted
        return changed
