"""A row's outcome for one implementation: pass, fail, n/a, inconclusive or error, why, and
the evidence.

``n/a``: the question could not be posed, because the driver cannot express the row's
configuration (:class:`lab.errors.Unsupported`) or a control case showed the bench cannot ask it.

``inconclusive``: a timing case's window overlapped a scheduling stall of the host longer than
the case's tolerance (:mod:`lab.stalls`), so the measured time says nothing about the IUT.

``error``: the harness itself broke (a check or the bench raised anything but the driver's
:class:`~lab.errors.Unsupported`): nothing is known about the IUT, and the traceback is in the
evidence (:data:`TRACEBACK_KEY`), so a broken check never reads as an implementation that cannot
express the row.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from lab.errors import Unsupported

if TYPE_CHECKING:
    from lab.stalls import Stall, StallWitness

Outcome = Literal["pass", "fail", "n/a", "inconclusive", "error"]
#: Every outcome, in the order reports count them.
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "n/a", "inconclusive", "error")
#: The evidence key under which a case's stall is recorded (after the case's label).
STALL_KEY = "stall that spoiled the timing"
#: The evidence key under which a harness error's traceback is recorded (after the family's
#: prefix, ``IPv6: traceback``, or ``bench: `` when the bench itself broke).
TRACEBACK_KEY = "traceback"
#: The evidence prefix of an error of the bench itself (bring-up or teardown), not of a family.
BENCH_PREFIX = "bench: "


class HarnessError(Exception):
    """A verdict is ``error``: the harness broke (:meth:`Verdict.raise_if_error`). Its message
    is the verdict and every traceback the verdict holds."""


def classify(exc: BaseException) -> Literal["n/a", "error"]:
    """What an exception out of a check or a bench means: ``n/a`` when the driver cannot
    express the row's configuration (:class:`lab.errors.Unsupported`), else ``error`` (the
    harness itself broke, a :class:`~lab.errors.UsageError` of its own included)."""
    return "n/a" if isinstance(exc, Unsupported) else "error"


def first_line(exc: BaseException) -> str:
    """``exc`` in one line: its message's first line, or its class's name if it has none."""
    return (str(exc) or type(exc).__name__).splitlines()[0]


def format_traceback(exc: BaseException) -> str:
    """The whole traceback of ``exc``, as Python prints it."""
    return "".join(traceback.format_exception(exc))


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

    @property
    def tracebacks(self) -> dict[str, str]:
        """The harness errors' tracebacks in the evidence, by key (``traceback``,
        ``IPv6: traceback``, ``bench: traceback``): those of an ``error`` verdict, and those
        told beside a fail."""
        return {
            key: value
            for key, value in self.evidence.items()
            if key.endswith(TRACEBACK_KEY) and isinstance(value, str)
        }

    def raise_if_error(self) -> None:
        """Raise :class:`HarnessError`, with the tracebacks, when this verdict is ``error``: a
        test must fail on a broken harness, never compare it with an expectation or skip it."""
        if self.outcome != "error":
            return
        told = "".join(f"\n--- {key} ---\n{text}" for key, text in self.tracebacks.items())
        raise HarnessError(f"{self}{told}")

    def broke(self, exc: Exception, where: str = "bench could not run") -> None:
        """Record that the bench itself (its bring-up or teardown) raised ``exc``.

        The driver's :class:`~lab.errors.Unsupported` makes the verdict n/a; anything else is
        an error, with the traceback in the evidence under ``bench: traceback``. A fail already
        found stands either way, and the problem is told in its reason.
        """
        problem = f"{where}: {first_line(exc)}"
        if classify(exc) == "n/a":
            if self.outcome == "fail":
                self.reason += f" [{problem}]"
            else:
                self.outcome, self.reason = "n/a", problem
            return
        self.evidence[BENCH_PREFIX + TRACEBACK_KEY] = format_traceback(exc)
        if self.outcome == "fail":  # a finding already made stands; the error is told too
            self.reason += f" [error: {problem}]"
        elif self.outcome == "error":  # a check broke first: both are told
            self.reason += f"; {problem}"
        else:
            self.outcome, self.reason = "error", problem

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
            first.get("because"),
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
        self.errors: list[str] = []
        """Harness errors, one line each (their tracebacks are in :attr:`evidence`)."""

    def na(self, reason: str) -> None:
        """The bench could not pose the question (e.g. its control case failed): n/a."""
        self.unusable = self.unusable or self.prefix + reason

    def raised(self, exc: Exception) -> None:
        """The check raised ``exc``: n/a if the driver cannot express the row's configuration
        (:func:`classify`), else a harness error, with its traceback in the evidence."""
        if classify(exc) == "n/a":
            self.na(f"cannot be configured for this row: {first_line(exc)}")
            return
        self.errors.append(f"{self.prefix}check raised {type(exc).__name__}: {first_line(exc)}")
        self.evidence[self.prefix + TRACEBACK_KEY] = format_traceback(exc)

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
        late_by: float | None = None,
        rtnl_within: tuple[float, float] | None = None,
    ) -> bool | None:
        """Record a timing case measured over ``window`` (lab-clock start and end): as
        :meth:`check`, unless the witness saw a stall in it longer than ``tolerance``; then the
        case is inconclusive, the stall is evidence, and None is returned.

        ``wire``: the time is between two captured frames and the tester sends nothing in
        between, so only host stalls (which hold back the IUT) can move it; the measuring
        process's own (its self probe) cannot.

        ``late_by``: for a case that failed by being late, how far past its bound it measured
        (for an event that never came, how far the window ran past the bound). Stalls can
        have made it late only if they held the host for longer than that in the window,
        whatever the tolerance (:func:`lab.stalls.late_spoiled`; before this rule, a stand-in
        that accepted TTL 254 was judged inconclusive three times over on a quiet host).
        A stall cannot make anything early, so an early fail stands against the tolerance.

        ``rtnl_within``: the stretch of the window in which the IUT changes links or addresses
        (see :meth:`lab.stalls.StallWitness.judge`); an RTNL stall outside it cannot move the
        case. A takeover's changes come at its end: :func:`lab.stalls.takeover_netlink`. Seen beside
        ``scripts/stress.sh``: T03 inconclusive in all three runs, the stalls including one of
        the RTNL lock 1.3 s into a steady master's advert sample. Beside a lab churning its
        namespaces: 36 of 39 inconclusive cases were RTNL stalls 70 to 250 ms into a takeover
        window of 360 ms, while the IUT, a backup, waited on its timer.
        """
        if not ok and late_by is not None and late_by > 0:
            return self._late(failed, window, tolerance, late_by, what, wire, rtnl_within)
        stall = self._stall(window, tolerance, host_only=wire, rtnl_within=rtnl_within)
        if stall is None:
            return self.check(ok, passed, failed)
        self._spoil(what, stall, window, tolerance)
        return None

    def _late(
        self,
        failed: str,
        window: tuple[float, float],
        tolerance: float,
        late_by: float,
        what: str,
        wire: bool,
        rtnl_within: tuple[float, float] | None,
    ) -> bool | None:
        """A late fail (see :meth:`timing`): it stands unless stalls held the host for more
        than ``late_by`` of ``window`` (:func:`lab.stalls.late_spoiled`); then it is
        inconclusive, the longest of them named."""
        from lab.stalls import late_spoiled

        relevant = (
            [] if self.witness is None else self.witness.relevant(window[1], wire, rtnl_within)
        )
        spoiled = late_spoiled(relevant, window[0], window[1], late_by)
        if spoiled is None:
            return self.check(False, "", failed)
        because, longest = spoiled
        self._spoil(what, longest, window, tolerance, because)
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
        self,
        window: tuple[float, float],
        tolerance: float,
        *,
        host_only: bool = False,
        rtnl_within: tuple[float, float] | None = None,
    ) -> Stall | None:
        if self.witness is None:
            return None
        return self.witness.judge(
            window[0], window[1], tolerance, host_only=host_only, rtnl_within=rtnl_within
        )

    def periods(
        self,
        times: Sequence[float],
        interval: float,
        tolerance: float,
        drift: float,
        *,
        what: str,
        passed: str,
        failed: str,
        rtnl_within: tuple[float, float] | None = None,
    ) -> bool | None:
        """Record a case of events on the wire meant every ``interval`` (lab-clock ``times``,
        captured frames): each period within ``tolerance``, their mean within ``drift``.

        The host probes' stalls are weighed period by period (:func:`lab.stalls.judge_periods`):
        a period out of bounds by more than the stalls before it could have made it fails, one
        that stalls could have moved across a bound (either way) is inconclusive, with the
        longest of those stalls as evidence. ``passed`` and ``failed`` are the case's texts; the
        judgement's own reason is added to a fail.
        """
        from lab.stalls import RUNQUEUE_PERIOD, held_back, judge_periods, overlapping

        # The run-queue probe reports a wait up to one of its periods after it ended.
        lag = RUNQUEUE_PERIOD
        stalls = (
            []
            if self.witness is None
            else self.witness.relevant(times[-1] + lag, host_only=True, rtnl_within=rtnl_within)
        )
        judged = judge_periods(
            times,
            interval,
            tolerance,
            drift,
            lambda since, at: held_back(stalls, at, since, lag=lag),
        )
        if judged.outcome != "inconclusive":
            return self.check(judged.outcome == "pass", passed, f"{failed}: {judged.reason}")
        assert judged.stretch is not None
        near = overlapping(stalls, judged.stretch[0], judged.stretch[1] + lag)
        longest = max(near, key=lambda s: s.seconds)
        self._spoil(what, longest, (times[0], times[-1]), tolerance, judged.reason)
        return None

    def replies(
        self,
        pairs: Sequence[tuple[float, float]],
        bound: float,
        *,
        prompt: bool,
        what: str,
        passed: str,
        failed: str,
        rtnl_within: tuple[float, float] | None = None,
    ) -> bool | None:
        """Record a case of reactions on the wire: each ``(cause, reaction)`` pair of lab-clock
        times (captured frames), the reaction due within ``bound`` of its cause (``prompt``)
        or not before it (``prompt=False``: the IUT must not react).

        A stall delays a reaction only if it was still on when the reaction went out
        (:func:`lab.stalls.held_back`), so a reaction measured ``delay`` after its cause took
        between ``delay - held`` and ``delay``. A pair whose whole range is on the wrong side
        of ``bound`` fails, one whose range straddles it is inconclusive (the longest stall
        reaching it is the evidence), and the case passes when every pair's range is on the
        right side.
        """
        from lab.stalls import RUNQUEUE_PERIOD, held_back, overlapping

        lag = RUNQUEUE_PERIOD
        last = max(reaction for _, reaction in pairs)
        stalls = (
            []
            if self.witness is None
            else self.witness.relevant(last + lag, host_only=True, rtnl_within=rtnl_within)
        )
        unsure: tuple[float, float, float] | None = None
        for cause, reaction in pairs:
            delay = reaction - cause
            held = held_back(stalls, reaction, cause, lag=lag)
            ok_measured = delay <= bound if prompt else delay > bound
            ok_true = delay - held <= bound if prompt else delay - held > bound
            if not ok_measured and not ok_true:
                return self.check(False, passed, failed)
            if ok_measured != ok_true and unsure is None:
                unsure = (cause, reaction, held)
        if unsure is None:
            return self.check(True, passed, failed)
        cause, reaction, held = unsure
        near = overlapping(stalls, reaction - held - lag, reaction + lag)
        longest = max(near, key=lambda s: s.seconds)
        because = (
            f"a reply {(reaction - cause) * 1000:.1f} ms after its cause, with stalls of "
            f"{held * 1000:.1f} ms still on when it went out, could be on either side of "
            f"{bound * 1000:g} ms"
        )
        self._spoil(what, longest, (cause, reaction), bound, because)
        return None

    def _spoil(
        self,
        what: str,
        stall: Stall,
        window: tuple[float, float],
        tol: float,
        because: str | None = None,
    ) -> None:
        from lab.stalls import Inconclusive

        spoiled = Inconclusive(what, stall, window, tol, because)
        self.inconclusive.append(self.prefix + str(spoiled))
        self.spoiled.append(
            {
                "case": self.prefix + what,
                **stall.as_dict(),
                "tolerance_ms": round(tol * 1000, 1),
                "window": [round(window[0], 6), round(window[1], 6)],
                **({} if because is None else {"because": because}),
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
        """This family's outcome: fail on any failure (a finding stands, whatever broke after
        it); error if the harness broke; inconclusive if a timing case was spoiled by a stall;
        n/a if the question could not be posed; else pass."""
        if self.failures:
            return "fail"
        if self.errors:
            return "error"
        if self.inconclusive:
            return "inconclusive"
        return "n/a" if self.unusable else "pass"

    def verdict(self, row: str, iut: str) -> Verdict:
        """Fail with every failure reason, else pass with what was shown."""
        return combine(row, iut, [self])


def combine(row: str, iut: str, parts: list[Findings]) -> Verdict:
    """One verdict from the findings of each family a row was asked in.

    Fail if any family broke the rule (a real fail stands whatever else was spoiled or broke;
    a harness error beside it is told in the reason); otherwise error if the harness broke in
    any family (nothing else can be trusted of the row); otherwise inconclusive if a stall
    spoiled any family's timing case (the stall is named); pass if at least one family showed
    it held and the others could not be asked (their reason stays in the verdict's reason);
    else n/a.
    """
    outcomes = [part.outcome for part in parts]
    notes = [note for part in parts for note in part.notes]
    errors = [r for part in parts for r in part.errors]
    if "fail" in outcomes:
        outcome: Outcome = "fail"
        reasons = [r for part in parts for r in part.failures]
        reasons += [f"error: {r}" for r in errors]
    elif errors:
        outcome = "error"
        reasons = list(errors)
    elif "inconclusive" in outcomes:
        outcome = "inconclusive"
        reasons = [r for part in parts for r in part.inconclusive]
    elif "pass" in outcomes:
        outcome = "pass"
        reasons = [r for part in parts for r in part.passes if part.outcome == "pass"]
    else:
        outcome = "n/a"
        reasons = []
    if outcome in ("fail", "error"):  # what a stall spoiled beside them is told too
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
