"""The tracker rows, K01–K07: keepalived's health checks, preemption knobs and notify scripts.

No RFC covers these: ``keepalived.conf(5)`` does, and where it is vague keepalived 2.2.7's own
behaviour is the reference (``docs/vrrp-daemon.md``: "Preemption and notify scripts", "Health
checks", "Sync groups"). The rows ask what operators rely on when a check moves the VIP:

* K01: a failing check of weight 0 puts the master in FAULT, and it advertises no more;
* K02: a negative weight lowers the advertised priority (clamped to 1), and a peer between the
  two priorities then takes the VIP;
* K03: ``fall`` failures in a row to fail, ``rise`` successes in a row to recover;
* K04: the members of a ``vrrp_sync_group`` move together;
* K05: ``nopreempt`` holds after a FAULT too, and a resigning master is still replaced;
* K06: ``preempt_delay`` holds preemption back for its delay after the first lower-priority
  advert;
* K07: each transition runs its notify script once, in order.

The health check is a script in the IUT's node (:class:`Tracker`) that fails while a flag file
exists and logs, as it ends, each run's time on the lab clock and its verdict. A check's rule
is judged against those runs, not against the time the flag was written: the script's period
is a whole second (keepalived takes no less), so the flag lands anywhere in it, while the
daemon's answer to the run it counts comes within milliseconds. The rows run in IPv4 only:
trackers act on the instance's priority and state, which the IPv6 wire shows no differently
(the P, T and F rows ask it).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from lab import clock
from lab.conformance.bench import ADV, IUT_PRIO, Bench, tolerance
from lab.conformance.procedures import become_master, mdi
from lab.conformance.registry import check
from lab.conformance.verdict import Findings
from lab.errors import WaitTimeout
from lab.routers import RouterParams
from lab.routers.params import CheckParams
from lab.stalls import takeover_netlink

#: The IUT's tracker files, in its node's private /run (a root-owned directory no one else can
#: write: keepalived's script security refuses a script any other user could change).
TRACKER_DIR = "/run/vrrp-lab-tracker"
CHECK_SCRIPT = f"{TRACKER_DIR}/check"
FLAG = f"{TRACKER_DIR}/down"
RUNS = f"{TRACKER_DIR}/runs"
NOTIFY_SCRIPT = f"{TRACKER_DIR}/notify"
NOTIFIED = f"{TRACKER_DIR}/notified"
#: The check's period in seconds: keepalived's least.
INTERVAL = 1
#: A priority between a lowered IUT's and a healthy one's: the peer K02 plays, and K06's
#: lower-priority master.
PEER_PRIO = 80
#: The lower-priority master K05 plays.
LOWER_PRIO = 50
#: The negative weight K02 and K03 give the check: 100 - 60 = 40, below the peer's 80.
WEIGHT = -60
#: A weight that would take the priority below 1: keepalived clamps it to 1 (0 is "resign").
CLAMPED_WEIGHT = -150
#: keepalived's notify words, in the order of the lines K07 renders.
NOTIFY_WORDS = ("MASTER", "BACKUP", "FAULT", "STOP")

_CHECK = f"""#!/bin/sh
# The conformance bench's health check: it fails while {FLAG} exists. Each run appends, as it
# ends, its time on the lab clock (CLOCK_REALTIME) and its verdict, for the K rows to count.
if [ -e {FLAG} ]; then
    echo "$(date +%s.%N) fail" >> {RUNS}
    exit 1
fi
echo "$(date +%s.%N) ok" >> {RUNS}
"""
_NOTIFY = f"""#!/bin/sh
# The conformance bench's notify script: one line per call, its time and the state it names.
echo "$(date +%s.%N) $1" >> {NOTIFIED}
"""


def _complete_lines(path: Path) -> list[str]:
    """The lines of a log a script appends to, without a last one still being written."""
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of the health check: when it ended (lab clock) and whether it succeeded."""

    end: float
    ok: bool


class Tracker:
    """The IUT's health check and notify script, and the flag that fails the check."""

    def __init__(self, b: Bench) -> None:
        self.bench = b
        node = b.node("iut")
        self.dir = node.path(TRACKER_DIR)
        self.flag = node.path(FLAG)
        self.runs_log = node.path(RUNS)
        self.notified_log = node.path(NOTIFIED)

    def install(self) -> None:
        """Write the scripts, remove the flag, empty the logs: a fresh start for a case."""
        self.dir.mkdir(mode=0o755, exist_ok=True)
        self.dir.chmod(0o755)
        for path, text in ((CHECK_SCRIPT, _CHECK), (NOTIFY_SCRIPT, _NOTIFY)):
            script = self.bench.node("iut").path(path)
            script.write_text(text)
            script.chmod(0o755)
        self.flag.unlink(missing_ok=True)
        for log in (self.runs_log, self.notified_log):
            log.write_text("")

    def check(self, weight: int, *, fall: int = 1, rise: int = 1) -> CheckParams:
        """The ``vrrp_script`` running the check every :data:`INTERVAL`, with ``weight``."""
        return CheckParams(
            "chk_bench", CHECK_SCRIPT, interval=INTERVAL, weight=weight, fall=fall, rise=rise
        )

    def fail(self) -> float:
        """Make every later run fail; the lab-clock time just before the flag was written."""
        at = clock.now()
        self.flag.write_text("1\n")
        return at

    def heal(self) -> float:
        """Make every later run succeed; the time just before the flag went."""
        at = clock.now()
        self.flag.unlink(missing_ok=True)
        return at

    def runs(self, since: float = 0.0, until: float | None = None) -> list[Run]:
        """The runs that ended in [since, until), in order."""
        runs = []
        for line in _complete_lines(self.runs_log):
            time, _, word = line.partition(" ")
            run = Run(float(time), word == "ok")
            if run.end >= since and (until is None or run.end < until):
                runs.append(run)
        return runs

    def wait_runs(self, count: int, ok: bool, since: float, what: str) -> list[Run]:
        """Wait (within ``count`` + 1 periods and a second) until ``count`` runs with verdict
        ``ok`` ended after ``since``; those runs (fewer if they did not come)."""
        from lab.wait import wait_until

        def matching() -> list[Run]:
            return [run for run in self.runs(since) if run.ok == ok]

        try:
            return wait_until(
                matching,
                timeout=(count + 1) * INTERVAL + 1.0,
                what=what,
                accept=lambda runs: len(runs) >= count,
            )[:count]
        except WaitTimeout:
            return matching()

    def notified(self) -> list[tuple[float, str]]:
        """Each notify script call: its time and the state it named."""
        return [
            (float(time), word)
            for time, _, word in (
                line.partition(" ") for line in _complete_lines(self.notified_log)
            )
        ]


def _healthy_master(
    b: Bench, f: Findings, t: Tracker, params: RouterParams, extra: tuple[str, ...] = ()
) -> bool:
    """Start the IUT alone with ``params`` and wait until it is master and its check has
    succeeded once (so its counter is past its start-up state); False (and n/a) otherwise."""
    t.install()
    if become_master(b, f, params, extra) is None:
        return False
    if not t.wait_runs(1, True, b.launched, "the check's first success"):
        f.na(f"the health check never succeeded (runs: {t.runs()})")
        return False
    return True


def _prompt(
    f: Findings,
    what: str,
    cause: float,
    answer: float,
    bound: float,
    tol: float,
    passed: str,
    failed: str,
    *,
    wire: bool = False,
) -> None:
    """Judge an ``answer`` (a report, an advert) to a ``cause`` at most ``bound`` seconds apart,
    to the tolerance ``tol``, either way round; the gap is kept as evidence under ``what``. A
    host stall longer than the tolerance in between makes it inconclusive. ``passed`` and
    ``failed`` may name the gap as ``{gap}``."""
    gap = answer - cause
    f.measure(f"{what} (s)", round(gap, 4))
    f.timing(
        abs(gap) <= bound + tol,
        passed.format(gap=gap),
        failed.format(gap=gap),
        window=(min(cause, answer), max(cause, answer)),
        tolerance=tol,
        what=what,
        wire=wire,
        late_by=abs(gap) - bound - tol,
    )


@check("K01")
def k01(b: Bench, f: Findings) -> None:
    """A failing check of weight 0 puts the master in FAULT at the run that fails, and the IUT
    sends no advert after it (a priority-0 advert, resigning, is allowed)."""
    t = Tracker(b)
    params = b.params(checks=(t.check(0),))
    if not _healthy_master(b, f, t, params):
        return
    broke = t.fail()
    tol = tolerance(params.advert_int)
    (failed,) = t.wait_runs(1, False, broke, "the check's first failure") or (None,)
    fault = b.wait_report("FAULT", 2 * INTERVAL + 1.0, broke)
    if failed is None:
        f.na(f"the health check never failed after the flag (runs: {t.runs(broke)})")
        return
    if fault is None:
        f.check(False, "", f"no FAULT within {2 * INTERVAL + 1.0:g}s of the failing run")
        return
    _prompt(
        f,
        "FAULT after the failing run",
        failed.end,
        fault.at,
        0.0,
        tol,
        "FAULT {gap:.3f}s after the failing run",
        f"FAULT {{gap:.3f}}s after the failing run (within {tol:.3f}s expected: fall 1)",
    )
    # Ten advert intervals after the failing run: a master still advertising would have sent
    # ten adverts.
    quiet_until = failed.end + tol + 10 * params.advert_int
    b.catch_up(quiet_until)
    late = [s for s in b.adverts(since=failed.end + tol, until=quiet_until) if s.event.priority > 0]
    resign = [s for s in b.adverts(since=broke, until=quiet_until) if s.event.priority == 0]
    if resign:
        f.frame("priority-0 advert on entering FAULT", resign[0].number)
    if late:
        f.frame("advert after FAULT", late[0].number)
    f.check(
        not late,
        "no advert in FAULT",
        f"{len(late)} adverts in FAULT (priority {late[0].event.priority if late else 0})",
    )
    b.stop_iut()


@check("K02")
def k02(b: Bench, f: Findings) -> None:
    """A failing check of negative weight lowers the advertised priority by the weight,
    clamped to 1; a peer between the two priorities then takes over at its first advert."""
    t = Tracker(b)
    tol = tolerance(ADV)
    for weight in (WEIGHT, CLAMPED_WEIGHT):
        want = max(1, IUT_PRIO + weight)
        label = f"weight {weight}"
        params = b.params(checks=(t.check(weight),))
        if not _healthy_master(b, f, t, params):
            return
        broke = t.fail()
        lowered = b.wait_iut_advert(broke, 2 * INTERVAL + 1.0, lambda a: a.priority != IUT_PRIO)
        (failed,) = t.wait_runs(1, False, broke, "the check's first failure") or (None,)
        if failed is None:
            f.na(f"{label}: the health check never failed after the flag")
            return
        if lowered is None:
            f.check(False, "", f"{label}: the priority never changed after the failing run")
            return
        f.frame(f"{label}: first advert after the failing run", lowered.number)
        f.measure(f"{label}: advertised priority: expected / seen", [want, lowered.event.priority])
        f.check(
            lowered.event.priority == want,
            f"{label}: advertised {want}",
            f"{label}: advertised {lowered.event.priority}, not {IUT_PRIO} {weight:+d} "
            f"clamped to 1..254 = {want}",
        )
        _prompt(
            f,
            f"{label}: lowered priority after the failing run",
            failed.end,
            lowered.time,
            params.advert_int,
            tol,
            f"{label}: lowered at the next advert ({{gap:.3f}}s)",
            f"{label}: lowered {{gap:.3f}}s after the failing run (the next advert is due "
            f"within {params.advert_int:g}s)",
        )
        if weight == WEIGHT:
            _peer_takes_over(b, f, params)
        b.stop_iut()


def _peer_takes_over(b: Bench, f: Findings, params: RouterParams) -> None:
    """The tester, a peer of priority :data:`PEER_PRIO` above the IUT's lowered one, starts
    advertising: the IUT must become backup at once (RFC 5798 §6.4.3) and stop advertising."""
    tol = tolerance(params.advert_int)
    # Stamped before the first advert: advertise() sends it at once, and keepalived yields
    # within a millisecond of it.
    sent = clock.now()
    with b.advertise(lambda: b.frame(PEER_PRIO)):
        backup = b.wait_backup(2 * mdi(params), since=sent)
        first = b.wait_advert("tester", sent - 0.005, 1.0, lambda a: a.priority == PEER_PRIO)
        if backup is None or first is None:
            f.check(False, "", f"stayed master under the peer's priority {PEER_PRIO}")
            return
        quiet_from = backup.at + tol
        b.catch_up(quiet_from + 5 * params.advert_int)
        late = b.adverts(since=quiet_from, until=quiet_from + 5 * params.advert_int)
    f.frame(f"peer's first advert (priority {PEER_PRIO})", first.number)
    _prompt(
        f,
        "BACKUP after the peer's first advert",
        first.time,
        backup.at,
        0.0,
        tol,
        f"the peer of priority {PEER_PRIO} took over at its first advert",
        "BACKUP {gap:.3f}s after the peer's first advert (at once expected)",
    )
    f.check(not late, "silent as backup", f"{len(late)} adverts after yielding to the peer")


@check("K03")
def k03(b: Bench, f: Findings) -> None:
    """``fall`` failing runs in a row lower the priority, not one fewer; then ``rise``
    succeeding runs restore it. Counted against the check's own log of its runs."""
    t = Tracker(b)
    fall, rise = 3, 2
    params = b.params(checks=(t.check(WEIGHT, fall=fall, rise=rise),))
    if not _healthy_master(b, f, t, params):
        return
    cases = (("fall", fall, t.fail, True), ("rise", rise, t.heal, False))
    for label, count, flip, lowered in cases:
        began = flip()
        want = max(1, IUT_PRIO + WEIGHT) if lowered else IUT_PRIO
        changed = b.wait_iut_advert(
            began, (count + 1) * INTERVAL + 1.0, lambda a, want=want: a.priority == want
        )
        if changed is None:
            f.check(False, "", f"{label} {count}: priority {want} never advertised")
            return
        counted = [run for run in t.runs(began, changed.time) if run.ok != lowered]
        f.frame(f"{label} {count}: first advert of priority {want}", changed.number)
        f.measure(f"{label}: runs before the change: expected / seen", [count, len(counted)])
        f.check(
            len(counted) == count,
            f"{label} {count}: changed after run {count}",
            f"{label} {count}: priority {want} after {len(counted)} "
            f"{'failing' if lowered else 'succeeding'} runs",
        )
    b.stop_iut()


#: K04's sync group and its second member (VRID 2, the family's second VIP).
SYNC_GROUP = "bench"
SECOND = "vrrp_2"


@check("K04")
def k04(b: Bench, f: Findings) -> None:
    """The members of a ``vrrp_sync_group`` move together: when a better master takes one
    (VRID 1), the other (VRID 2) steps down with it and stays backup, although no one
    advertises VRID 2; when that master resigns, both take over at once."""
    params = b.params()
    tol = tolerance(params.advert_int)
    second = dataclasses.replace(params, instance=SECOND, vrid=2, vips=(b.vip2,))
    # The second member's block as the model renders it (without the file's header line).
    group = (
        "vrrp_instance"
        + second.render().split("vrrp_instance", 1)[1]
        + f"vrrp_sync_group {SYNC_GROUP} {{\n    group {{\n        {params.instance}\n"
        f"        {SECOND}\n    }}\n}}\n"
    )
    started = b.start_iut(params, append=group)
    both = [
        b.wait_iut_advert(started, 2 * mdi(params) + 1.0, lambda a, v=v: a.vrid == v)
        for v in (1, 2)
    ]
    if None in both:
        f.na(f"the group never advertised both VRIDs as master (state {b.state()})")
        return
    sent = clock.now()  # before advertise() sends its first advert, at once
    with b.advertise(lambda: b.frame(IUT_PRIO + 100)) as adv:
        first = b.wait_report("BACKUP", 2 * mdi(params), sent, params.instance)
        other = b.wait_report("BACKUP", 2 * mdi(params), sent, SECOND)
        if first is None:
            f.na("VRID 1 never yielded to the tester's priority 200 (F-rows ask why)")
            return
        if other is None:
            f.check(False, "", f"{SECOND} stayed master when {params.instance} became backup")
            return
        _prompt(
            f,
            "second member's BACKUP after the first's",
            first.at,
            other.at,
            0.0,
            tol,
            "both members backup together ({gap:.4f}s apart)",
            f"{SECOND} backup {{gap:.3f}}s after {params.instance} (together expected)",
        )
        # No one advertises VRID 2: alone, its member would take over one Master_Down_Interval
        # later. The group holds it back as long as VRID 1 hears a better master.
        hold = 2 * mdi(params) + tol
        took = b.wait_report("MASTER", hold, other.at, SECOND)
        span = (other.at, took.at if took is not None else other.at + hold)
        b.catch_up(span[1])
        stray = [s for s in b.adverts(since=other.at + tol, until=span[1]) if s.event.priority > 0]
        if stray:
            f.frame("an advert of the held member", stray[0].number)
        f.timing(
            took is None and not stray,
            f"{SECOND} held backup for {hold:.3f}s while {params.instance} was backup",
            f"{SECOND} took over {span[1] - other.at:.3f}s after the group went backup",
            window=span,
            tolerance=tol,
            what="the held member",
            rtnl_within=(span[0], span[0]),
        )
        adv.stop()
        resigned = b.send(b.frame(0))
    masters = [
        b.wait_report("MASTER", mdi(params) + tol, resigned, name)
        for name in (params.instance, SECOND)
    ]
    firsts = [
        b.wait_iut_advert(
            resigned, mdi(params) + tol, lambda a, v=v: a.vrid == v and a.priority > 0
        )
        for v in (1, 2)
    ]
    if None in masters or None in firsts:
        f.check(False, "", f"after the master resigned, MASTER reports {masters}")
        return
    assert firsts[0] is not None and firsts[1] is not None
    f.frame("VRID 1's first advert as master", firsts[0].number)
    f.frame("VRID 2's first advert as master", firsts[1].number)
    _prompt(
        f,
        "VRID 2's first advert after VRID 1's",
        firsts[0].time,
        firsts[1].time,
        0.0,
        tol,
        "both members took over together ({gap:.4f}s apart)",
        "VRID 2 took over {gap:.3f}s after VRID 1 (together expected)",
        wire=True,
    )
    b.stop_iut()


@check("K05")
def k05(b: Bench, f: Findings) -> None:
    """``nopreempt``: a master faulted by its check, healed under a lower-priority master,
    comes back as backup and stays so; it still takes over when that master resigns."""
    t = Tracker(b)
    params = b.params(nopreempt=True, checks=(t.check(0),))
    tol = tolerance(params.advert_int)
    if not _healthy_master(b, f, t, params):
        return
    broke = t.fail()
    if b.wait_report("FAULT", 2 * INTERVAL + 1.0, broke) is None:
        f.na("the IUT never reported FAULT on its failing check (K01 asks why)")
        return
    with b.advertise(lambda: b.frame(LOWER_PRIO)) as adv:
        healed = t.heal()
        backup = b.wait_report("BACKUP", 2 * INTERVAL + 1.0, healed)
        if backup is None:
            f.na("the IUT never left FAULT after its check recovered")
            return
        # A preempting IUT would take over one Master_Down_Interval after it is backup;
        # twice that, and it has not.
        hold = 2 * mdi(params) + tol
        master = b.wait_report("MASTER", hold, backup.at)
        span = (backup.at, master.at if master is not None else backup.at + hold)
        f.timing(
            master is None,
            f"stayed backup for {hold:.3f}s under priority {LOWER_PRIO}",
            f"preempted {span[1] - backup.at:.3f}s after leaving FAULT, with nopreempt",
            window=span,
            tolerance=tol,
            what="nopreempt after FAULT",
            rtnl_within=(span[0], span[0]),
        )
        if master is not None:  # it took the VIP: there is no master left to resign
            b.stop_iut()
            return
        adv.stop()
        resigned = b.send(b.frame(0))
    # Resigning, the master hands over after Skew_Time; Master_Down_Interval bounds it well.
    took = b.wait_report("MASTER", mdi(params) + tol, resigned)
    f.timing(
        took is not None,
        "took over when the lower-priority master resigned",
        "stayed backup after the master's priority 0: nopreempt must not stop a failover",
        window=(resigned, took.at if took is not None else resigned + mdi(params) + tol),
        tolerance=tol,
        what="takeover after priority 0",
        late_by=None if took is not None else mdi(params),
        rtnl_within=takeover_netlink(resigned + mdi(params), tol),
    )
    b.stop_iut()


#: K06's delay, in seconds: several Master_Down_Intervals, so that a takeover without it is
#: plainly early.
PREEMPT_DELAY = 1.0


@check("K06")
def k06(b: Bench, f: Findings) -> None:
    """``preempt_delay``: a backup that hears a lower-priority master takes over no sooner than
    the delay after the first such advert, and one Master_Down_Interval after the last advert
    it accepted within the delay.

    keepalived 2.2.7 (vrrp.c ``vrrp_state_backup``) starts the delay at the first
    lower-priority advert a backup hears (a higher one stops it), accepts the lower ones while
    the delay runs, and ignores them after: its Master_Down_Timer then runs out one
    Master_Down_Interval after the last advert accepted, which came at most one advert interval
    before the delay's end. The IUT first hears the tester at priority 200, so that the delay
    starts at a frame the capture shows: the tester's first advert at 80.
    """
    params = b.params()
    tol = tolerance(params.advert_int)
    down = mdi(params)
    low = PREEMPT_DELAY + down - params.advert_int - tol
    high = PREEMPT_DELAY + down + tol
    with b.advertise(lambda: b.frame(IUT_PRIO + 100)) as adv:
        started = b.start_iut(
            params, (f"preempt_delay {PREEMPT_DELAY:g}",), requires=("preempt_delay",)
        )
        control = b.wait_report("MASTER", down + tol, started)
        if control is not None:
            f.control(
                "control failed: the IUT became master under a priority-200 master",
                window=(started, control.at),
                tolerance=tol,
            )
            return
        switched = adv.switch(lambda: b.frame(PEER_PRIO))
        lower = b.wait_advert(
            "tester", switched, 2 * params.advert_int, lambda a: a.priority == PEER_PRIO
        )
        took = b.wait_iut_advert(switched, high + 1.0, lambda a: a.priority == IUT_PRIO)
    if lower is None:
        f.na("the tester's switch to priority 80 was not captured")
        return
    f.frame("tester's first advert at priority 80", lower.number)
    if took is not None:
        f.frame("IUT's first advert as master", took.number)
    after = took.time - lower.time if took is not None else None
    f.measure(
        "preempt_delay: window / first advert as master after the first lower one (s)",
        [[round(low, 3), round(high, 3)], None if after is None else round(after, 4)],
    )
    if after is not None and after < low:
        f.check(
            False,
            "",
            f"took over {after:.3f}s after the first lower-priority advert, before preempt_delay "
            f"{PREEMPT_DELAY:g}s + Master_Down_Interval - one interval ({low:.3f}s)",
        )
        return
    end = took.time if took is not None else lower.time + high + 1.0
    f.timing(
        after is not None and after <= high,
        f"took over {after or 0:.3f}s after the first lower-priority advert, in "
        f"[{low:.3f}, {high:.3f}]s",
        f"did not take over within {high:.3f}s (preempt_delay + Master_Down_Interval)",
        window=(lower.time, end),
        tolerance=tol,
        what="takeover after preempt_delay",
        wire=True,
        late_by=end - lower.time - high,
        rtnl_within=takeover_netlink(end, tol),
    )
    b.stop_iut()


#: How long a notify script may take to log its call after its transition was reported: a
#: fork and exec of sh and date, a few milliseconds; a second is plenty, and only a missing call
#: waits it out.
NOTIFY_WAIT = 1.0


@check("K07")
def k07(b: Bench, f: Findings) -> None:
    """Each transition runs its notify script once, in the order of the transitions: start-up
    (BACKUP, MASTER), a failing check (FAULT), its recovery (BACKUP, MASTER), a higher-priority
    peer (BACKUP), its resignation (MASTER), and the stop (STOP).

    keepalived forks a transition's script and goes on, so the scripts of two transitions a
    millisecond apart may run in either order. The check lets each transition's script log its
    call before it provokes the next transition, as an operator's changes would."""
    from lab.wait import wait_until

    t = Tracker(b)
    params = b.params(checks=(t.check(0),))
    extra = tuple(f'notify_{word.lower()} "{NOTIFY_SCRIPT} {word}"' for word in NOTIFY_WORDS)
    t.install()
    b.start_iut(params, extra, requires=("notify",))
    assert b.router is not None
    router = b.router

    def transitions() -> list[str]:
        return [e.state for e in router.events.snapshot(since=b.launched) if e.kind == "INSTANCE"]

    def settle() -> None:
        """Wait until every transition reported so far has had its script's call logged (a
        missing call is the finding, judged at the end, not an error)."""
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: (len(t.notified()), len(transitions())),
                timeout=NOTIFY_WAIT,
                what="a notify script call per transition",
                accept=lambda counts: counts[0] >= counts[1],
            )

    def reach(state: str, since: float, within: float) -> bool:
        if b.wait_report(state, within, since) is None:
            f.na(f"the IUT never reported {state} (after {', '.join(transitions())})")
            return False
        settle()
        return True

    window = 2 * mdi(params) + 1.0
    if not reach("MASTER", b.launched, window):
        return
    if not t.wait_runs(1, True, b.launched, "the check's first success"):
        f.na("the health check never succeeded")
        return
    if not reach("FAULT", t.fail(), 2 * INTERVAL + 1.0):
        return
    if not reach("MASTER", t.heal(), 2 * INTERVAL + window):
        return
    sent = clock.now()  # before advertise() sends its first advert, at once
    with b.advertise(lambda: b.frame(IUT_PRIO + 100)) as adv:
        if not reach("BACKUP", sent, window):
            return
        adv.stop()
        resigned = b.send(b.frame(0))
    if not reach("MASTER", resigned, window):
        return
    b.stop_iut()
    settle()  # the STOP script runs as the daemon stops
    states = transitions()
    # The log's order is the order the scripts ran in: each appends its line as it runs.
    calls = [word for _, word in t.notified()]
    f.measure("transitions reported / notify script calls", [states, calls])
    f.check(
        calls == states,
        f"one call per transition, in order: {', '.join(calls)}",
        f"notify scripts ran {', '.join(calls) or 'never'} for the transitions {', '.join(states)}",
    )
