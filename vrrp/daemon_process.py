"""The daemon's glue for keepalived's ``vrrp_track_process``: the :class:`ProcessGlue` mixin of
:class:`vrrp.daemon.Daemon`. The counting is :class:`vrrp.proc_scan.ProcessWatch`'s, the rules
:mod:`vrrp.track_process`'s and :mod:`vrrp.tracking`'s.

Kept apart from :mod:`vrrp.daemon` only for size. The daemon gives the trackers' states to the
tracking rules through :meth:`_tracker_states`, and calls :meth:`_on_processes` after each
(re)configuration and when a ``"p"`` timer (the next scan, or a delay ending) fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vrrp.bfd.endpoint import BfdEndpoint
    from vrrp.checks import ScriptChecks
    from vrrp.instance import Instance
    from vrrp.proc_scan import ProcessWatch
    from vrrp.watch import FileWatch

__all__ = ["ProcessGlue"]


class ProcessGlue:
    """The process tracking methods of the daemon (a mixin: the attributes below are the
    daemon's)."""

    instances: dict[str, Instance]
    processes: ProcessWatch
    bfd: BfdEndpoint
    checks: ScriptChecks
    files: FileWatch
    _heap: list[tuple[float, int, str, str, int]]
    _seq: itertools.count[int]

    def _is_up(self, ifname: str) -> bool:
        raise NotImplementedError  # the daemon's

    def _reassess(self, inst: Instance, now: float) -> None:
        raise NotImplementedError  # the sync group glue's

    def _tracker_states(self) -> tuple[Callable[[str], Any], ...]:
        """What :mod:`vrrp.tracking` asks, in its parameters' order: interfaces up, BFD
        sessions Up, scripts good, files' numbers, processes with quorum."""
        return (self._is_up, self.bfd.is_up, self.checks.ok, self.files.value, self.processes.up)

    def _on_processes(self, changed: list[str], now: float) -> None:
        """Put the next process scan (or a delay's end, if sooner) on the heap, then apply the
        blocks whose quorum changed to the instances tracking them."""
        deadline = self.processes.deadline()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), "p", "", self.processes.gen))
        for inst in list(self.instances.values()):
            if any(t.name in changed for t in inst.spec.track_processes):
                self._reassess(inst, now)
