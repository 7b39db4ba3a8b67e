"""The stability floor: the shortest advert interval at which an implementation holds steady.

Sub-second VRRP timers are known to flap on loaded hosts: a backup that misses three adverts
and a skew takes over from a master that never failed. A sweep measures where that begins
with ``hold`` trials (:data:`lab.sweep.spec.HOLD`): the steady pair is left alone for a while,
quiet, under advert loss and beside the CPU hog, and every mastership change is counted.

For each implementation, the floor is the shortest advert interval swept at which every
load's hold trials counted no spurious transition, at it and at every longer interval swept:
stability must hold all the way down to it, so a lucky short interval below an unstable one
is not the floor. A cell whose hold trials all errored measured nothing and stops the walk
too (it is reported as unmeasured, never assumed steady). Computed from the records alone,
like the rest of a sweep's summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from lab.sweep.record import TrialRecord
from lab.sweep.spec import HOLD, load_order


@dataclasses.dataclass(frozen=True)
class Floor:
    """One implementation's stability floor, and what bounds it."""

    impl: str
    floor: float | None
    """The shortest steady advert interval (s); None when even the longest swept was not."""
    intervals: tuple[float, ...]
    """Every advert interval its hold trials were swept at, the longest first."""
    loads: tuple[str, ...]
    """Every load its hold trials were swept under."""
    unstable: tuple[tuple[float, str, int], ...]
    """(advert interval, load, spurious transitions) of every cell that counted some."""
    unmeasured: tuple[tuple[float, str], ...]
    """(advert interval, load) of every cell swept without a measured hold trial."""

    @property
    def below(self) -> tuple[float, tuple[str, ...]] | None:
        """The interval just below the floor and the loads that were not steady there (or
        unmeasured): where the timers gave way. None when the floor is the shortest swept."""
        shorter = [a for a in self.intervals if self.floor is None or a < self.floor]
        if not shorter:
            return None
        at = shorter[0]
        why = [load for a, load, _ in self.unstable if a == at]
        why += [f"{load} (unmeasured)" for a, load in self.unmeasured if a == at]
        return at, tuple(why)

    def as_json(self) -> dict[str, Any]:
        """The floor as ``summary.json``'s ``stability_floor`` entry."""
        below = self.below
        return {
            "impl": self.impl,
            "floor_advert_int": self.floor,
            "intervals": list(self.intervals),
            "loads": list(self.loads),
            "gave_way_at": (
                None if below is None else {"advert_int": below[0], "loads": list(below[1])}
            ),
            "unstable": [
                {"advert_int": a, "load": load, "spurious_transitions": n}
                for a, load, n in self.unstable
            ],
            "unmeasured": [{"advert_int": a, "load": load} for a, load in self.unmeasured],
        }


def stability_floors(records: Iterable[TrialRecord]) -> list[Floor]:
    """Each implementation's floor from the ``hold`` trials among ``records`` (none: [])."""
    holds = [r for r in records if r.cell.fault == HOLD]
    floors = []
    for impl in sorted({r.cell.impl for r in holds}):
        mine = [r for r in holds if r.cell.impl == impl]
        intervals = tuple(sorted({r.cell.advert_int for r in mine}, reverse=True))
        loads = tuple(sorted({r.cell.load for r in mine}, key=load_order))
        unstable: list[tuple[float, str, int]] = []
        unmeasured: list[tuple[float, str]] = []
        steady: dict[float, bool] = {}
        for interval in intervals:
            steady[interval] = True
            for load in loads:
                cell = [r for r in mine if r.cell.advert_int == interval and r.cell.load == load]
                if not cell:
                    continue  # not swept together: nothing to say
                measured = [r for r in cell if r.outcome == "measured"]
                spurious = sum(r.spurious_transitions for r in measured)
                if not measured:
                    unmeasured.append((interval, load))
                    steady[interval] = False
                elif spurious:
                    unstable.append((interval, load, spurious))
                    steady[interval] = False
        floor = None
        for interval in intervals:
            if not steady[interval]:
                break
            floor = interval
        floors.append(Floor(impl, floor, intervals, loads, tuple(unstable), tuple(unmeasured)))
    return floors


def markdown(floors: list[dict[str, Any]]) -> list[str]:
    """``summary.json``'s ``stability_floor`` entries as a section of ``summary.md`` (no lines
    when there are none)."""
    if not floors:
        return []
    lines = [
        "",
        "## Stability floor",
        "",
        "The shortest advert interval at which every load's hold trials counted no spurious "
        "transition, at it and at every longer interval swept.",
        "",
        "| impl | floor | loads | gave way at |",
        "|---|---|---|---|",
    ]
    for f in floors:
        below = f.get("gave_way_at")
        gave_way = "-" if not below else f"{below['advert_int']:g}s: {', '.join(below['loads'])}"
        floor = f.get("floor_advert_int")
        shown = "none: unsteady at every interval swept" if floor is None else f"{floor:g}s"
        lines.append(f"| {f['impl']} | {shown} | {', '.join(f['loads'])} | {gave_way} |")
    return lines
