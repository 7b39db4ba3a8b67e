"""``vrrp_script`` and ``track_script`` without a lab: the configuration (parsing, keepalived's
defaults and errors, rendering, ``keepalived -t`` as the oracle), keepalived's rise/fall count
and weight rules (pure), the daemon's runs of real scripts, and a daemon whose instance tracks
them (its sockets fake, its scripts real).
"""

from __future__ import annotations

import heapq
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.keepalived_oracle import assert_keepalived_accepts, needs_keepalived
from vrrp.checks import ScriptChecks, ScriptEvent
from vrrp.config import ConfigError, TrackScript, VrrpScript, parse, render
from vrrp.spec import InstanceSpec, ScriptSpec, TrackScriptSpec
from vrrp.state import State
from vrrp.tracking import (
    ScriptCounter,
    fault_reason,
    script_weight,
    scripts_pending,
    tracked_priority,
)

SCRIPTS = """\
vrrp_script chk_haproxy {
    script "/usr/bin/killall -0 haproxy"
    interval 2
    timeout 1
    weight -20
    rise 2
    fall 3
}
vrrp_script chk_flag {
    script /bin/true
    weight 10 reverse
    init_fail
}
"""

INSTANCE = """\
vrrp_instance vi_1 {{
    interface eth0
    virtual_router_id 1
    priority {priority}
    virtual_ipaddress {{
        192.0.2.1
    }}
    track_script {{
{tracks}    }}
}}
"""


def _config(*tracks: str, priority: int = 100, scripts: str = SCRIPTS) -> str:
    entries = "".join(f"        {t}\n" for t in tracks)
    return scripts + INSTANCE.format(priority=priority, tracks=entries)


# --- the configuration --------------------------------------------------------------------


def test_scripts_parse_with_keepalived_s_defaults_and_round_trip() -> None:
    config = parse(_config("chk_haproxy", "chk_flag weight 5"))
    haproxy, flag = config.vrrp_scripts
    assert haproxy == VrrpScript(
        "chk_haproxy",
        "/usr/bin/killall -0 haproxy",
        interval=2,
        timeout=1,
        weight=-20,
        rise=2,
        fall=3,
    )
    assert haproxy.argv == ["/usr/bin/killall", "-0", "haproxy"] and haproxy.time_limit == 1
    # keepalived's defaults: every second, the interval to finish, weight 0, decided by one.
    assert (flag.interval, flag.timeout, flag.time_limit, flag.rise, flag.fall) == (
        1,
        None,
        1,
        1,
        1,
    )
    assert flag.reverse and flag.init_fail
    tracks = config.instance("vi_1").track_script
    assert tracks == [TrackScript("chk_haproxy"), TrackScript("chk_flag", 5)]
    # An entry's weight replaces the script's, and with it the script's 'reverse'.
    assert tracks[0].resolve(haproxy) == (-20, False)
    assert tracks[1].resolve(flag) == (5, False)
    assert parse(render(config)) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "vrrp_script c {\n    script /bin/check arg\n}\n",
            "<string>:2: script: expected the command as one word (quote it if it has "
            "arguments), got '/bin/check arg'",
        ),
        (
            "vrrp_script c {\n    interval 0\n    script x\n}\n",
            "<string>:2: interval: expected an integer 1..4294, got '0'",
        ),
        (
            "vrrp_script c {\n    script x\n    rise 0\n}\n",
            "<string>:3: rise: expected an integer 1..2147483647, got '0'",
        ),
        (
            "vrrp_script c {\n    script x\n    weight 254\n}\n",
            "<string>:3: weight: expected an integer -253..253, got '254'",
        ),
        ("vrrp_script c {\n    interval 2\n}\n", "<string>:1: vrrp_script c: missing 'script'"),
        (_config("nothere"), "track_script: expected the name of a vrrp_script (known: "),
        (_config("chk_flag", "chk_flag"), "track_script: expected each vrrp_script once"),
        (_config("chk_haproxy", priority=255), "expected no weight on chk_haproxy for the address"),
        (_config("chk_flag weight 5 noreverse"), "expected 'reverse' or nothing after the weight"),
        (
            INSTANCE.format(priority=100, tracks="        c\n")
            + "vrrp_script c {\n    script x\n}\n",
            "<string>:9: track_script: expected a vrrp_script defined before vrrp_instance vi_1",
        ),
    ],
)
def test_what_keepalived_reports_and_repairs_is_an_error_with_its_line(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert message in str(err.value), str(err.value)


@needs_keepalived
def test_rendered_scripts_pass_keepalived_config_test(tmp_path: Path) -> None:
    # keepalived refuses to run scripts unless told whose they are.
    secure = "global_defs {\n    enable_script_security\n    script_user root\n}\n"
    config = parse(secure + _config("chk_haproxy", "chk_flag weight 5 reverse"))
    assert_keepalived_accepts(config, tmp_path)


# --- keepalived's rules (pure) ------------------------------------------------------------


def _results(counter: ScriptCounter, runs: str) -> list[bool | None]:
    """``ok`` after each run of ``runs`` (``+`` a success, ``-`` a failure)."""
    out: list[bool | None] = []
    for run in runs:
        counter.record(run == "+")
        out.append(counter.ok)
    return out


def test_rise_and_fall_count_as_keepalived_counts() -> None:
    assert ScriptCounter().ok is None  # undecided until the first result
    assert _results(ScriptCounter(), "+-+") == [True, False, True]
    assert _results(ScriptCounter(), "-") == [False]
    # rise 2, fall 3: one result decides an undecided script; then 2 successes in a row to
    # recover, 3 failures in a row to fail, and a failure resets a failed script's climb.
    t, f = True, False
    assert _results(ScriptCounter(2, 3), "+--+--") == [t, t, t, t, t, t]
    assert _results(ScriptCounter(2, 3), "+---") == [t, t, t, f]
    assert _results(ScriptCounter(2, 3), "-+-++") == [f, f, f, f, t]
    # init_fail: failed from the start, and rise successes make it good.
    counter = ScriptCounter(2, 1, init_fail=True)
    assert counter.ok is False
    assert _results(counter, "++-") == [f, t, f]
    changes = ScriptCounter(1, 2)
    assert [changes.record(run == "+") for run in "++--+"] == [True, False, False, True, True]


def _spec(*tracks: TrackScriptSpec, priority: int = 100) -> InstanceSpec:
    return InstanceSpec(
        name="vi_1",
        interface="eth0",
        vrid=1,
        family=4,
        version=3,
        priority=priority,
        advert_int_cs=100,
        track_scripts=tracks,
    )


def _states(**ok: bool | None) -> Callable[[str], bool | None]:
    return lambda name: ok.get(name)


def _up(_name: str) -> bool:
    return True


def test_weights_apply_as_keepalived_applies_them() -> None:
    spec = _spec(
        TrackScriptSpec("plus", 10),
        TrackScriptSpec("minus", -20),
        TrackScriptSpec("plus_rev", 5, reverse=True),
        TrackScriptSpec("minus_rev", -7, reverse=True),
    )
    # Undecided: nothing applies.
    assert script_weight(spec, _states()) == 0
    good = _states(plus=True, minus=True, plus_rev=True, minus_rev=True)
    assert script_weight(spec, good) == 10 - 5
    bad = _states(plus=False, minus=False, plus_rev=False, minus_rev=False)
    assert script_weight(spec, bad) == -20 + 7
    # Clamped to 1..254, the owner's 255 untouched, and a weight never faults.
    assert tracked_priority(_spec(TrackScriptSpec("m", -253)), _up, script_ok=_states(m=False)) == 1
    assert tracked_priority(_spec(TrackScriptSpec("p", 253)), _up, script_ok=_states(p=True)) == 254
    owner = _spec(TrackScriptSpec("m", -20), priority=255)
    assert tracked_priority(owner, _up, script_ok=_states(m=False)) == 255
    assert fault_reason(spec, _up, script_ok=bad) is None


def test_weight_zero_waits_for_the_first_result_then_faults_while_failing() -> None:
    spec = _spec(TrackScriptSpec("chk"), TrackScriptSpec("inv", reverse=True))
    assert scripts_pending(spec, _states()) == ["chk", "inv"]
    assert scripts_pending(spec, _states(chk=True)) == ["inv"]
    assert fault_reason(spec, _up, script_ok=_states(chk=True, inv=False)) is None
    assert fault_reason(spec, _up, script_ok=_states(chk=False, inv=False)) == (
        "tracked script chk failed"
    )
    assert fault_reason(spec, _up, script_ok=_states(chk=True, inv=True)) == (
        "tracked script inv failed"
    )


# --- the daemon's runs of real scripts ----------------------------------------------------


class _Loop:
    """The daemon's loop for a :class:`ScriptChecks` alone: its timer heap, and ``select()``
    on the runs' pidfds."""

    def __init__(self, checks: ScriptChecks) -> None:
        self.checks = checks
        self.heap: list[tuple[float, int, str]] = []

    def run(
        self, until: Callable[[list[ScriptEvent]], bool], timeout: float, what: str
    ) -> list[ScriptEvent]:
        """Fire deadlines and read exits until ``until(events)``; fail after ``timeout``
        seconds saying what was awaited and what was seen."""
        checks, heap = self.checks, self.heap
        events: list[ScriptEvent] = []
        give_up = time.monotonic() + timeout
        while not until(events):
            now = time.monotonic()
            assert now < give_up, f"waited {timeout} s for {what}; saw {events}, {checks.status()}"
            for name, when, gen in checks.pending():
                heapq.heappush(heap, (when, gen, name))
            while heap and heap[0][0] <= now:
                _when, gen, name = heapq.heappop(heap)
                if checks.is_current(name, gen):
                    events += checks.tick(name, now)
            for name, when, gen in checks.pending():
                heapq.heappush(heap, (when, gen, name))
            wait = min([give_up, *(h[0] for h in heap[:1])]) - time.monotonic()
            ready, _, _ = select.select(list(checks.fds()), [], [], max(0.0, wait))
            for fd in ready:
                events += checks.readable(fd, time.monotonic())
        return events


def _drive(
    checks: ScriptChecks, until: Callable[[list[ScriptEvent]], bool], timeout: float, what: str
) -> list[ScriptEvent]:
    """One :class:`_Loop` run over ``checks``."""
    return _Loop(checks).run(until, timeout, what)


def _script(name: str, *argv: str, **kw: Any) -> ScriptSpec:
    return ScriptSpec(name, argv, **{"interval": 0.05, "time_limit": 0.05, **kw})


def test_real_scripts_succeed_fail_time_out_and_fail_to_start() -> None:
    checks = ScriptChecks()
    checks.configure(
        (
            _script("good", "true"),
            _script("bad", "sh", "-c", "exit 3"),
            _script("slow", "sleep", "5", time_limit=0.1, interval=1.0),
            _script("missing", "/nonexistent/check"),
        ),
        time.monotonic(),
    )
    try:
        events = _drive(
            checks,
            lambda seen: {e.name for e in seen} == {"good", "bad", "slow", "missing"},
            5.0,
            "a first result from each script",
        )
    finally:
        checks.shutdown()
    first = {e.name: e for e in reversed(events)}
    assert first["good"].ok and first["good"].why == "succeeded"
    assert not first["bad"].ok and first["bad"].why == "failed (exited with status 3)"
    assert not first["slow"].ok and first["slow"].why == "timed out"
    assert not first["missing"].ok and first["missing"].why.startswith("failed to start")
    assert checks.ok("good") and checks.ok("bad") is False and checks.fds() == {}


def test_a_run_deaf_to_sigterm_is_killed_and_a_run_in_progress_is_not_doubled() -> None:
    checks = ScriptChecks()
    deaf = _script("deaf", "sh", "-c", "trap '' TERM; sleep 10", time_limit=0.05, interval=10.0)
    checks.configure((deaf,), time.monotonic())
    try:
        (event,) = _drive(checks, bool, 5.0, "the deaf run to be killed")
    finally:
        checks.shutdown()
    assert (event.ok, event.why) == (False, "timed out")
    assert checks.status()[0]["runs"] == 1


def test_a_failing_then_recovering_script_reports_each_change_once() -> None:
    flag = Path("/dev/shm") / f"vrrp-lab-test-flag-{time.monotonic_ns()}"
    checks = ScriptChecks()
    checks.configure((_script("flag", "test", "-e", str(flag), fall=2, rise=2),), time.monotonic())
    loop = _Loop(checks)
    try:
        assert loop.run(bool, 5.0, "the flag script to fail")[-1].ok is False
        flag.touch()
        changes = loop.run(bool, 5.0, "the flag script to recover")
        assert [e.ok for e in changes] == [True]
        assert checks.status()[0]["runs"] >= 3  # one failure, then rise 2 successes
    finally:
        flag.unlink(missing_ok=True)
        checks.shutdown()


# --- a daemon tracking them ---------------------------------------------------------------

DAEMON_CONF = """\
vrrp_script chk {{
    script "sh -c 'exit {code}'"
{weight}}}
vrrp_instance VI_1 {{
    interface ens3
    virtual_router_id 1
    version 3
    priority 100
    advert_int 1
    unicast_src_ip 10.200.51.32
    unicast_peer {{
        10.200.51.33
    }}
    virtual_ipaddress {{
        10.200.51.10/24
    }}
    track_script {{
        chk
    }}
}}
"""


def _daemon(tmp_path: Path, code: int, weight: str = "") -> Any:
    from tests.unit.test_daemon_frames import _Harness

    path = tmp_path / "keepalived.conf"
    path.write_text(DAEMON_CONF.format(code=code, weight=f"    {weight}\n" if weight else ""))
    daemon = _Harness(path)
    daemon.checks.configure(daemon.spec.scripts, time.monotonic())
    return daemon


def _first_result(daemon: Any) -> None:
    events = _drive(daemon.checks, bool, 5.0, "the script's first result")
    daemon._on_checks(events, time.monotonic())
    daemon.checks.shutdown()


def test_an_unweighted_script_holds_the_instance_until_it_reports(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, 0)
    inst = daemon.instances["VI_1"]
    assert inst.waiting == ("chk",) and not inst.fault
    assert inst.machine.state is State.INITIALIZE and daemon.fake_tx.sent == []
    _first_result(daemon)
    assert inst.waiting == () and inst.machine.state is State.BACKUP


def test_an_unweighted_failing_script_faults_the_instance(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, 1)
    inst = daemon.instances["VI_1"]
    _first_result(daemon)
    assert inst.fault and inst.machine.state is State.INITIALIZE


def test_a_failing_weighted_script_lowers_the_priority(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, 1, "weight -30")
    inst = daemon.instances["VI_1"]
    assert inst.waiting == () and inst.machine.state is State.BACKUP
    assert inst.machine.priority == 100
    _first_result(daemon)
    assert inst.machine.priority == 70 and not inst.fault


@needs_keepalived
def test_every_bundled_scenario_s_rendered_routers_pass_keepalived_config_test(
    tmp_path: Path,
) -> None:
    """What the lab writes for a scenario's rendered routers (health checks and tracked files
    among them: check-flap, weight-vs-fault) is what keepalived 2.2.7 takes, silently."""
    from lab.scenario import bundled_scenarios, load_scenario
    from tests.support.keepalived_oracle import keepalived_check

    rendered = [
        (path.stem, n, spec)
        for path in bundled_scenarios()
        for n, spec in enumerate(load_scenario(path).routers)
        if spec.config is None
    ]
    assert {"check-flap", "weight-vs-fault"} <= {name for name, _, _ in rendered}
    for name, n, spec in rendered:
        conf = tmp_path / f"{name}-{n}.conf"
        conf.write_text(spec.stand_in_params().render())
        assert keepalived_check(conf) == (0, ""), f"{name}: routers[{n}]"
