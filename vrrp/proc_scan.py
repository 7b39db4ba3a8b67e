"""Reading /proc for ``vrrp_track_process``: every process's name, state and, when a block
matches command lines, its command line (:func:`scan`). The rules are
:mod:`vrrp.track_process`'s; this is only the reading.

keepalived 2.2.7 reads /proc once at start and then follows the kernel's process events (the
netlink proc connector, keepalived/core/track_process.c). The bundled daemon scans /proc
every :data:`SCAN_PERIOD` instead, for two reasons: the proc connector sends its events only
to sockets in the initial network namespace (drivers/connector/connector.c creates its
netlink socket in ``init_net``), so a daemon in a lab node's namespace would hear nothing;
and a scan cannot lose events when the socket's buffer overflows. The price is latency (a
change is seen up to one period late) and CPU: a scan opens one file per process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from vrrp.spec import ProcessSpec
from vrrp.track_process import ProcessInfo, ProcessQuorum, count_matching

__all__ = ["SCAN_PERIOD", "ProcessWatch", "parse_stat", "scan"]

log = logging.getLogger("vrrp.proc_scan")

SCAN_PERIOD = 0.1
"""Seconds between scans: a change is seen 0-100 ms after it happens (50 ms on average), well
below Master_Down_Interval at a 1 s advert interval (3-4 s) and the fastest track_script
(1 s). A scan costs about 10 µs per process (14 µs when command lines are read; measured: 72
processes, 0.7-1.0 ms), so ten a second cost 1 % of a core here and about 10 % with 700
processes; it runs in the loop, between adverts."""

#: The most of a command line read: enough for any configured match (keepalived reads at most
#: the longest configured process and parameters, plus one byte, ``read_procs``).
CMDLINE_MAX = 4096


def parse_stat(text: str) -> tuple[str, str] | None:
    """The name and the state letter in a ``/proc/PID/stat`` line, or None if it is not
    one. The name is between the first '(' and the *last* ')' (a name may hold ')')."""
    start, end = text.find("("), text.rfind(")")
    if start < 0 or end < start or len(text) < end + 3:
        return None
    return text[start + 1 : end], text[end + 2]


def _read(path: str, size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # gone since the directory was read, or not ours to read
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def scan(cmdlines: bool, proc: str = "/proc") -> list[ProcessInfo]:
    """Every process now (``cmdlines``: with its command line, else without), from ``proc``.

    Processes that end during the scan are left out; a name read as the process execs may be
    its old one, as keepalived's read of /proc can."""
    found: list[ProcessInfo] = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        raw = _read(f"{proc}/{name}/stat", 512)
        parsed = parse_stat(raw.decode(errors="replace")) if raw else None
        if parsed is None:
            continue
        comm, state = parsed
        cmdline = b""
        if cmdlines:
            cmdline = _read(f"{proc}/{name}/cmdline", CMDLINE_MAX) or b""
        found.append(ProcessInfo(int(name), comm, cmdline, state == "Z"))
    return found


class ProcessWatch:
    """The daemon's ``vrrp_track_process`` blocks: their counts from a /proc scan every
    :data:`SCAN_PERIOD`, and whether each is up (:class:`ProcessQuorum`). The loop asks
    :meth:`deadline` for its next wake-up and calls :meth:`tick` then; :attr:`gen` tells a
    timer set before a reconfiguration from a current one."""

    def __init__(self, period: float = SCAN_PERIOD, proc: str = "/proc") -> None:
        """No blocks yet; ``period`` and ``proc`` are for tests."""
        self.period, self.proc = period, proc
        self.blocks: dict[str, ProcessQuorum] = {}
        self.gen = 0
        self.next_scan: float | None = None
        self.scans = 0

    def configure(self, specs: Sequence[ProcessSpec], now: float) -> list[str]:
        """Track ``specs`` (a reload keeps an unchanged block's count, state and delay) and
        count them at once; the names whose state changed."""
        old, self.blocks = self.blocks, {}
        for spec in specs:
            kept = old.get(spec.name)
            self.blocks[spec.name] = (
                kept if kept is not None and kept.spec == spec else (ProcessQuorum(spec))
            )
        self.gen += 1
        self.next_scan = now if self.blocks else None
        return self.tick(now)

    def up(self, name: str) -> bool | None:
        """Whether block ``name`` has quorum (None: unknown block, or not counted yet)."""
        block = self.blocks.get(name)
        return None if block is None else block.up

    def deadline(self) -> float | None:
        """When :meth:`tick` is next due: the next scan, or a delay ending before it."""
        times = [b.deadline for b in self.blocks.values() if b.deadline is not None]
        if self.next_scan is not None:
            times.append(self.next_scan)
        return min(times, default=None)

    def tick(self, now: float) -> list[str]:
        """Scan if one is due, end the delays that are; the names whose state changed."""
        changed: list[str] = []
        if self.next_scan is not None and now >= self.next_scan:
            procs = scan(any(b.spec.full_command for b in self.blocks.values()), self.proc)
            self.scans += 1
            for name, block in self.blocks.items():
                if block.update(count_matching(block.spec, procs), now):
                    changed.append(name)
            # On the grid: the next scan one period after this one was due (or after now,
            # after a stall), so the period never stretches by the loop's lateness.
            late = now - self.next_scan
            self.next_scan += (late // self.period + 1) * self.period
        for name, block in self.blocks.items():
            if block.expire(now) and name not in changed:
                changed.append(name)
        for name in changed:
            log.info(
                "Quorum %s for tracked process %s",
                "gained" if self.blocks[name].up else "lost",
                name,
            )
        return changed

    def status(self) -> dict[str, Any]:
        """Each block's count, quorum and state, for ``status``."""
        return {
            name: {
                "count": b.count,
                "quorum": [b.spec.quorum, b.spec.quorum_max],
                "up": b.up,
                "pending": b.deadline is not None,
            }
            for name, b in self.blocks.items()
        }
