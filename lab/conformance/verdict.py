"""A row's outcome for one implementation: pass, fail, n/a or inconclusive, why, and the
evidence.

``inconclusive``: a timing case's window overlapped a scheduling stall of the host longer than
the case's tolerance (:mod:`lab.stalls`), so the measured time says nothing about the IUT.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lab.stalls import Stall, StallWitness

Outcome = Literal["pass", "fail", "n/a", "inconclusive"]
#: The evidence key under which a case's stall is recorded (after the case's label).
STALL_KEY = "stall that spoiled the timing"


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
    families: dict[str, Outcome] = dataclasses.field(default_factory=dict)
    """The outcome in each address family asked (``IPv4``, ``IPv6``)."""
    stalls: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The stall witness's figures over the bench's life (count, worst, total, priority)
    and the stalls that made a case inconclusive (``spoiled``)."""

    @property
    def ok(self) -> bool:
        """True unless the implementation was found to break the rule."""
        return self.outcome != "fail"

    def raise_if_inconclusive(self) -> None:
        """Raise :class:`lab.stalls.Inconclusive` when a stall spoiled any timing case of this
        verdict (it is inconclusive, or a family or case of it is), naming the first: a test
        that compares it with an expectation cannot tell what that case would have shown."""
        if not self.stalls.get("spoiled"):
            return
        from lab.stalls import Inconclusive, Stall

        first = self.stalls.get("spoiled", [{}])[0]
        stall = Stall(first["start"], first["end"], first["source"])
        raise Inconclusive(
            f"{self.row} {self.iut} {first['case']}",
            stall,
            (first["window"][0], first["window"][1]),
            first["tolerance_ms"] / 1000,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.row} {self.iut}: {self.outcome} ({self.reason})"


class Findings:
    """Collects the sub-results of one check in one address family.

    A check usually probes several cases (a control, then the rule itself, in more than one
    form); each case adds its measured values and frames, and its failure reason if it broke
    the rule, so one verdict tells the whole story. On IPv6 every reason, evidence key and frame
    label starts ``IPv6: ``, so the families of one row can share a verdict; IPv4's carry no
    prefix.
    """

    def __init__(self, family: int = 4, witness: StallWitness | None = None) -> None:
        self.family = family
        self.witness = witness
        """Judges timing cases (:meth:`timing`); None: every timing case is judged as is."""
        self.prefix = "" if family == 4 else f"IPv{family}: "
        self.failures: list[str] = []
        self.passes: list[str] = []
        self.notes: list[str] = []
        self.evidence: dict[str, Any] = {}
        self.frames: dict[str, int] = {}
        self.unusable: str | None = None
        self.inconclusive: list[str] = []
        self.spoiled: list[dict[str, Any]] = []

    def na(self, reason: str) -> None:
        """The bench could not pose the question (e.g. its control case failed): n/a."""
        self.unusable = self.unusable or self.prefix + reason

    def check(self, ok: bool, passed: str, failed: str) -> bool:
        """Record one case: ``passed`` when ``ok``, else ``failed`` (a reason)."""
        (self.passes if ok else self.failures).append(self.prefix + (passed if ok else failed))
        return ok

    def timing(
        self,
        ok: bool,
        passed: str,
        failed: str,
        *,
        window: tuple[float, float],
        tolerance: float,
        what: str,
        wire: bool = False,
    ) -> bool | None:
        """Record a timing case measured over ``window`` (lab-clock start and end): as
        :meth:`check`, unless the witness saw a stall in it longer than ``tolerance``; then the
        case is inconclusive, the stall is evidence, and None is returned.

        ``wire``: the time is between two captured frames and the tester sends nothing in
        between, so only host stalls (which hold back the IUT) can move it; the measuring
        process's own (its self probe) cannot.
        """
        stall = self._stall(window, tolerance, host_only=wire)
        if stall is None:
            return self.check(ok, passed, failed)
        self._spoil(what, stall, window, tolerance)
        return None

    def control(self, reason: str, *, window: tuple[float, float], tolerance: float) -> None:
        """A control case failed over ``window`` (the question cannot be posed: n/a), unless a
        stall longer than ``tolerance`` in it may be why (the tester's adverts held back):
        then inconclusive."""
        stall = self._stall(window, tolerance)
        if stall is None:
            self.na(reason)
        else:
            self._spoil(reason, stall, window, tolerance)

    def _stall(
        self, window: tuple[float, float], tolerance: float, *, host_only: bool = False
    ) -> Stall | None:
        if self.witness is None:
            return None
        return self.witness.judge(window[0], window[1], tolerance, host_only=host_only)

    def _spoil(self, what: str, stall: Stall, window: tuple[float, float], tol: float) -> None:
        from lab.stalls import Inconclusive

        self.inconclusive.append(self.prefix + str(Inconclusive(what, stall, window, tol)))
        self.spoiled.append(
            {
                "case": self.prefix + what,
                **stall.as_dict(),
                "tolerance_ms": round(tol * 1000, 1),
                "window": [round(window[0], 6), round(window[1], 6)],
            }
        )
        self.evidence[f"{self.prefix}{what}: {STALL_KEY}"] = stall.describe(window[0])

    def measure(self, key: str, value: Any) -> None:
        """Record a measured value (seconds, MACs, counts) as evidence under ``key``."""
        self.evidence[self.prefix + key] = value

    def note(self, text: str) -> None:
        """A remark that changes no verdict (e.g. a default that departs, shown for the doc)."""
        self.notes.append(self.prefix + text)

    def frame(self, label: str, number: int | None) -> None:
        """Cite a frame of the pcap under ``label`` (nothing when there is none)."""
        if number is not None:
            self.frames[self.prefix + label] = number

    @property
    def outcome(self) -> Outcome:
        """This family's outcome: fail on any failure; inconclusive if a timing case was
        spoiled by a stall; n/a if the question could not be posed; else pass."""
        if self.failures:
            return "fail"
        if self.inconclusive:
            return "inconclusive"
        return "n/a" if self.unusable else "pass"

    def verdict(self, row: str, iut: str) -> Verdict:
        """Fail with every failure reason, else pass with what was shown."""
        return combine(row, iut, [self])


def combine(row: str, iut: str, parts: list[Findings]) -> Verdict:
    """One verdict from the findings of each family a row was asked in.

    Fail if any family broke the rule (a real fail stands whatever else was spoiled);
    otherwise inconclusive if a stall spoiled any family's timing case (the stall is named);
    pass if at least one family showed it held and the others could not be asked (their
    reason stays in the verdict's reason); else n/a.
    """
    outcomes = [part.outcome for part in parts]
    notes = [note for part in parts for note in part.notes]
    if "fail" in outcomes:
        outcome: Outcome = "fail"
        reasons = [r for part in parts for r in part.failures]
    elif "inconclusive" in outcomes:
        outcome = "inconclusive"
        reasons = [r for part in parts for r in part.inconclusive]
    elif "pass" in outcomes:
        outcome = "pass"
        reasons = [r for part in parts for r in part.passes if part.outcome == "pass"]
    else:
        outcome = "n/a"
        reasons = []
    if outcome == "fail":  # what a stall spoiled beside the fail is told too
        reasons += [f"inconclusive: {r}" for part in parts for r in part.inconclusive]
    reasons += [
        f"n/a: {p.unusable}" if outcome != "n/a" else str(p.unusable)
        for p in parts
        if p.outcome == "n/a"
    ]
    reason = "; ".join(reasons) + (f" [{'; '.join(notes)}]" if notes else "")
    verdict = Verdict(row, iut, outcome, reason)
    for part in parts:
        verdict.evidence.update(part.evidence)
        verdict.frames.update(part.frames)
        verdict.families[f"IPv{part.family}"] = part.outcome
    spoiled = [s for part in parts for s in part.spoiled]
    if spoiled:
        verdict.stalls["spoiled"] = spoiled
    return verdict
