"""The records of a sweep: one cell's parameters, and one trial's result, as JSON lines.

Everything else in :mod:`lab.sweep` agrees through these types: the spec expands into
:class:`Cell` values, the executor appends one :class:`TrialRecord` per trial to
``results.jsonl``, and the summary, the plots and ``bench compare`` read them back. A record is
plain JSON (``as_json`` / ``from_json``) so that a results file written by one version of
vrrp-lab, or on another host of a cluster, reads the same.

``results.jsonl`` holds a header line (``{"type": "sweep", ...}``), then one line per trial
(``{"type": "trial", ...}``), appended and flushed to disk as each trial ends.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

#: How a trial ended. ``measured``: a failover was measured (whatever its figures say);
#: ``inconclusive``: a host stall longer than the tolerance overlapped the failover, so its
#: figures are not the implementation's; ``error``: the trial could not measure (the lab failed
#: to build, a router never became master, the child process crashed).
Outcome = Literal["measured", "inconclusive", "error"]

#: The parameters that make a cell, in the order cell keys and tables show them.
AXES = ("impl", "fault", "advert_int", "priority", "preempt", "profile", "load", "bfd")

#: BFD's Detect Mult in a sweep's BFD cells: RFC 5880's usual 3 (the seed-bfd scenario's too).
BFD_MULTIPLIER = 3


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One point of a sweep: a combination of one value per axis.

    ``priority`` is the backup's (so it sets Skew_Time); the master keeps the base scenario's.
    ``load`` is ``none``, ``cpu-hog`` or ``advert-loss N%``. ``transport`` is derived, not an
    axis: ``unicast`` as the base scenario has it, or ``multicast`` for an implementation that
    cannot send unicast adverts (FRR). ``bfd`` is the BFD interval in seconds (both ends'
    min_rx and min_tx, Detect Mult :data:`BFD_MULTIPLIER`) between master and backup, or None
    for no BFD; it comes last so that a results file written before the axis reads the same.
    """

    impl: str
    fault: str
    advert_int: float
    priority: int
    preempt: bool
    profile: str
    load: str
    transport: str = "unicast"
    bfd: float | None = None

    @property
    def bfd_takeover(self) -> bool:
        """Whether the backup takes over on its BFD session going Down (the bundled daemon's
        ``bfd_takeover``), so that BFD and not VRRP's timers set the detection. Not after a
        stop: a stopping master says so (priority 0, and BFD's AdminDown, which takes no one
        over), and Skew_Time applies as without BFD."""
        return self.bfd is not None and self.impl == "bundled" and self.fault != "stop"

    def without_bfd(self) -> Cell:
        """The same cell with no BFD."""
        return dataclasses.replace(self, bfd=None)

    @property
    def key(self) -> str:
        """The cell's stable identifier in results and summaries, e.g.
        ``keepalived/stop/0.1s/prio100/preempt/l2-plain/none``."""
        return "/".join(
            (
                self.impl,
                self.fault,
                f"{self.advert_int:g}s",
                f"prio{self.priority}",
                "preempt" if self.preempt else "nopreempt",
                self.profile,
                self.load.replace(" ", ""),
                # Only when set: the keys of cells without BFD stay as they were before the axis.
                *([f"bfd{self.bfd * 1000:g}ms"] if self.bfd is not None else []),
            )
        )

    def as_json(self) -> dict[str, Any]:
        """The cell's parameters as a JSON object (every axis, plus ``transport``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """The cell :meth:`as_json` wrote."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial: one failover of one cell, measured as ``vrrp-lab run`` measures it.

    Times are milliseconds. ``theory_low_ms`` is None after a stop (the RFC gives one figure,
    Skew_Time); after a silent fault the RFC window is [``theory_low_ms``, ``theory_ms``].
    ``tolerance_ms`` is how far a detection may stray from the figure or window and still
    agree with it (a fifth of the advert interval, as the conformance rows allow).
    """

    cell: Cell
    trial: int
    outcome: Outcome
    started: float
    """Lab-clock (epoch) seconds when the trial began."""
    seconds: float
    """How long the trial took, lab build and teardown included."""
    detection_ms: float | None = None
    outage_ms: float | None = None
    theory_ms: float | None = None
    theory_low_ms: float | None = None
    tolerance_ms: float | None = None
    lost_probes: int | None = None
    stale_arp_ms: float | None = None
    bfd_detection_ms: float | None = None
    """From the fault to a surviving router's BFD session going Down (``failovers[i].bfd``),
    in a cell with BFD; None without, or when no session went Down."""
    split_brain: bool = False
    spurious_transitions: int = 0
    """Mastership changes the fault does not explain: any before it, and any after the first
    takeover (a flap back and forth)."""
    stalls: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The stall witness over the failover window: ``count``, ``worst_ms``, ``total_ms``."""
    inconclusive: dict[str, Any] | None = None
    """For an inconclusive trial, the stall that spoiled it (``lab.stalls``'s JSON form)."""
    error: str | None = None
    """For an errored trial, one line saying what went wrong."""
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    failed_steps: list[str] = dataclasses.field(default_factory=list)
    """The steps of the trial's scenario that did not hold, ``name: detail`` each: why a
    measured trial has no detection, say, or took over late."""
    timeline: dict[str, Any] | None = None
    """Lab-clock stamps of the failover (fault, last advert of the old master, first advert
    and first GARP of the new one, first probe served after), relative to the fault, in ms:
    what the representative-trial plot draws."""

    @property
    def agrees_with_theory(self) -> bool | None:
        """Whether the detection lies within the tolerance of the RFC figure or window; None
        when there is nothing to judge."""
        if self.detection_ms is None or self.theory_ms is None or self.tolerance_ms is None:
            return None
        low = self.theory_low_ms if self.theory_low_ms is not None else self.theory_ms
        return low - self.tolerance_ms <= self.detection_ms <= self.theory_ms + self.tolerance_ms

    def as_json(self) -> dict[str, Any]:
        """The trial's line of ``results.jsonl``."""
        data = dataclasses.asdict(self)
        data["cell"] = self.cell.as_json()
        return {"type": "trial", "key": self.cell.key, **_finite(data)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        """The record :meth:`as_json` wrote (unknown keys, from a newer version, are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["cell"] = Cell.from_json(data["cell"])
        return cls(**values)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
