"""A row's outcome for one implementation: pass, fail or n/a, why, and the evidence."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Outcome = Literal["pass", "fail", "n/a"]


@dataclasses.dataclass
class Verdict:
    """What one check found.

    ``evidence`` holds the measured values (seconds, MACs, counts) under readable keys;
    ``frames`` the numbers of the frames in the run's pcap that show it (tshark's
    ``frame.number``: every frame counted in file order, from 1), by what they show.
    """

    row: str
    iut: str
    outcome: Outcome
    reason: str
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    frames: dict[str, int] = dataclasses.field(default_factory=dict)
    pcap: str | None = None
    seconds: float = 0.0
    """How long the check took (wall clock), for the run's budget."""

    @property
    def ok(self) -> bool:
        """True unless the implementation was found to break the rule."""
        return self.outcome != "fail"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.row} {self.iut}: {self.outcome} ({self.reason})"


class Findings:
    """Collects sub-results of one check; the verdict fails when any sub-result failed.

    A check usually probes several cases (a control, then the rule itself, in more than one
    form); each case adds its measured values and frames, and its failure reason if it broke
    the rule, so one verdict tells the whole story.
    """

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passes: list[str] = []
        self.notes: list[str] = []
        self.evidence: dict[str, Any] = {}
        self.frames: dict[str, int] = {}
        self.unusable: str | None = None

    def na(self, reason: str) -> None:
        """The bench could not pose the question (e.g. its control case failed): n/a."""
        self.unusable = self.unusable or reason

    def check(self, ok: bool, passed: str, failed: str) -> bool:
        """Record one case: ``passed`` when ``ok``, else ``failed`` (a reason)."""
        (self.passes if ok else self.failures).append(passed if ok else failed)
        return ok

    def note(self, text: str) -> None:
        """A remark that changes no verdict (e.g. a default that departs, shown for the doc)."""
        self.notes.append(text)

    def frame(self, label: str, number: int | None) -> None:
        """Cite a frame of the pcap under ``label`` (nothing when there is none)."""
        if number is not None:
            self.frames[label] = number

    def verdict(self, row: str, iut: str) -> Verdict:
        """Fail with every failure reason, else pass with what was shown."""
        notes = f" [{'; '.join(self.notes)}]" if self.notes else ""
        if self.unusable and not self.failures:
            return Verdict(row, iut, "n/a", self.unusable + notes, self.evidence, self.frames)
        if self.failures:
            return Verdict(
                row, iut, "fail", "; ".join(self.failures) + notes, self.evidence, self.frames
            )
        return Verdict(row, iut, "pass", "; ".join(self.passes) + notes, self.evidence, self.frames)
