"""``vrrp_track_process`` / ``track_process`` (issue 15): the keepalived.conf model, the matching
rules of :mod:`vrrp.track_process` (pure), the quorum and its delays, what a block does to an
instance (:mod:`vrrp.tracking`), and the /proc layer on a fake /proc.

Where keepalived 2.2.7 is installed, the rendered blocks pass its ``-t`` config check and what
the parser refuses is what keepalived reports as a configuration error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.keepalived_oracle import (
    assert_keepalived_accepts,
    keepalived_check,
    needs_keepalived,
)
from vrrp.config import ConfigError, TrackedProcess, parse, render
from vrrp.proc_scan import ProcessWatch, parse_stat, scan
from vrrp.spec import InstanceSpec, ProcessSpec, TrackProcessSpec, build
from vrrp.track_process import ProcessInfo, ProcessQuorum, check_params, matches
from vrrp.tracking import fault_reason, tracked_priority

BLOCKS = """\
vrrp_track_process web {
    process nginx
}
vrrp_track_process sleeper {
    process /bin/sleep 1000
    weight -20 reverse
    quorum 1
    quorum_max 2
    delay 0.5
}
"""


def _config(*tracks: str, priority: int = 100, blocks: str = BLOCKS) -> str:
    entries = "".join(f"        {t}\n" for t in tracks)
    return (
        f"{blocks}vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 1\n"
        f"    priority {priority}\n    virtual_ipaddress {{\n        192.0.2.1\n    }}\n"
        f"    track_process {{\n{entries}    }}\n}}\n"
    )


# --- the configuration ------------------------------------------------------------------------


def test_blocks_parse_with_keepalived_s_defaults_and_round_trip() -> None:
    config = parse(_config("web", "sleeper weight 10 noreverse"), "p.conf")
    web, sleeper = config.track_processes
    assert (web.process, web.parameters, web.weight, web.quorum, web.quorum_max) == (
        "nginx",
        (),
        0,
        None,
        None,
    )
    # A name alone: /proc/PID/comm, any parameters, quorum 1, no maximum.
    assert (web.matches_command, web.match, web.effective_quorum) == (False, None, 1)
    # Parameters imply the command line and an exact match; 'delay' sets both delays.
    assert (sleeper.matches_command, sleeper.match) == (True, "exact")
    assert (sleeper.fork_delay, sleeper.terminate_delay) == (0.5, 0.5)
    assert [(t.name, t.weight, t.reverse) for t in config.instances[0].track_process] == [
        ("web", None, None),
        ("sleeper", 10, False),
    ]
    assert config.warnings == []
    assert parse(render(config)) == config


def test_the_daemon_s_spec_resolves_weights_and_quorum() -> None:
    spec = build(parse(_config("web", "sleeper weight 10"), "p.conf"))
    # An entry's weight without a word keeps the block's reverse (alloc_track_process).
    assert spec.instances[0].track_processes == (
        TrackProcessSpec("web", 0, False),
        TrackProcessSpec("sleeper", 10, True),
    )
    assert spec.processes[1] == ProcessSpec(
        "sleeper", "/bin/sleep", ("1000",), "exact", True, 1, 2, 0.5, 0.5
    )


@pytest.mark.parametrize(
    ("block", "quorum", "quorum_max"),
    [
        ("quorum_max 0", 0, 0),  # none may run
        ("quorum 1\n    quorum_max 0", 0, 0),  # keepalived takes it too, either order
        ("quorum_max 0\n    quorum 1", 0, 0),
        ("quorum 3", 3, None),
    ],
)
def test_quorum_and_quorum_max(block: str, quorum: int, quorum_max: int | None) -> None:
    config = parse(f"vrrp_track_process p {{\n    process x\n    {block}\n}}\n", "q.conf")
    (process,) = config.track_processes
    assert (process.effective_quorum, process.effective_quorum_max) == (quorum, quorum_max)


#: What keepalived 2.2.7 reports as a configuration error (then ignores): an error here, with
#: the file, the line and the keyword.
REFUSED = [
    ("    param_match exact\n", r"p\.conf:3: param_match: expected nothing \(exact match\)"),
    ("    param_match all\n", r"p\.conf:3: param_match: "),
    ("    quorum 3\n    quorum_max 2\n", r"p\.conf:1: quorum: expected at most quorum_max \(2\)"),
    ("    quorum 0\n", r"p\.conf:3: quorum: expected an integer 1\.\.65535, got '0'"),
    ("    quorum_max 70000\n", r"p\.conf:3: quorum_max: expected an integer 0\.\.65535"),
    ("    delay 0\n", r"p\.conf:3: delay: expected seconds 0\.000001\.\.3600"),
    ("    fork_delay 3601\n", r"p\.conf:3: fork_delay: expected seconds"),
    ("    terminate_delay 0.0000001\n", r"p\.conf:3: terminate_delay: expected seconds"),
    ("    weight 255\n", r"p\.conf:3: weight: expected an integer -254\.\.254, got '255'"),
    ("    weight 10 noreverse\n", r"p\.conf:3: weight: expected 'reverse' or nothing"),
]


@pytest.mark.parametrize(("extra", "error"), REFUSED)
def test_what_keepalived_reports_in_a_block_is_an_error_with_its_line(
    extra: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{error}"):
        parse(f"vrrp_track_process p {{\n    process x\n{extra}}}\n", "p.conf")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "vrrp_track_process p {\n    quorum 2\n}\n",
            r"^p\.conf:1: vrrp_track_process p: missing 'process'",
        ),
        (_config("nope"), r"^p\.conf:19: track_process: expected the name of a vrrp_track_process"),
        (
            _config("web", "web"),
            r"^p\.conf:20: track_process: expected each vrrp_track_process once",
        ),
        (_config("web weight"), r"^p\.conf:19: track_process: expected NAME \[weight"),
        (_config("web weight 255"), r"^p\.conf:19: track_process weight: expected an integer"),
        (
            _config("sleeper", priority=255),
            r"^p\.conf:19: track_process: expected no weight on sleeper for the address owner",
        ),
        (
            _config("web", blocks="") + BLOCKS,
            r"^p\.conf:9: track_process: expected a vrrp_track_process defined before",
        ),
    ],
)
def test_what_keepalived_reports_in_an_instance_is_an_error_with_its_line(
    text: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        parse(text, "p.conf")


def test_the_owner_may_track_unweighted() -> None:
    config = parse(_config("web", "sleeper weight 0", priority=255), "p.conf")
    assert [t.name for t in config.instances[0].track_process] == ["web", "sleeper"]


def _grouped(*tracks: str) -> str:
    """VI_1 tracking ``web`` itself and VI_2 tracking nothing, in a sync group tracking
    ``tracks``."""
    entries = "".join(f"        {t}\n" for t in tracks)
    return (
        _config("web")
        + "vrrp_instance VI_2 {\n    interface eth0\n    virtual_router_id 2\n"
        + "    priority 100\n    virtual_ipaddress {\n        192.0.2.2\n    }\n}\n"
        + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n"
        + f"    track_process {{\n{entries}    }}\n}}\n"
    )


def test_a_sync_group_s_track_process_is_every_member_s() -> None:
    config = parse(_grouped("sleeper"), "g.conf")
    assert [t.name for t in config.sync_groups[0].track_process] == ["sleeper"]
    assert parse(render(config)).sync_groups == config.sync_groups
    first, second = build(config).instances
    # Each member's own entries, then the group's (vrrp.c sync_group_tracking_init).
    assert [t.name for t in first.track_processes] == ["web", "sleeper"]
    assert [t.name for t in second.track_processes] == ["sleeper"]


@needs_keepalived
def test_a_rendered_group_track_process_passes_keepalived_config_test(tmp_path: Path) -> None:
    assert_keepalived_accepts(parse(_grouped("sleeper")), tmp_path)


def test_a_sync_group_s_track_process_names_a_block_the_member_does_not() -> None:
    with pytest.raises(ConfigError, match=r"g.conf:\d+: .*vrrp_track_process"):
        parse(_grouped("nosuch"), "g.conf")
    with pytest.raises(ConfigError, match="tracked by the instance or by its vrrp_sync_group G"):
        parse(_grouped("web"), "g.conf")


def test_a_model_keepalived_could_not_read_back_is_refused() -> None:
    with pytest.raises(ConfigError, match="process: expected words without"):
        TrackedProcess("p", "a\nb")


@needs_keepalived
def test_rendered_track_processes_pass_keepalived_config_test(tmp_path: Path) -> None:
    extra = (
        "vrrp_track_process tail {\n    process /usr/bin/tail -f\n    param_match initial\n"
        "    fork_delay 0.25\n    terminate_delay 2\n    full_command\n}\n"
    )
    config = parse(_config("web", "sleeper weight 10 noreverse", "tail", blocks=BLOCKS + extra))
    assert_keepalived_accepts(config, tmp_path)


@needs_keepalived
@pytest.mark.parametrize("extra", [extra for extra, _ in REFUSED])
def test_what_the_parser_refuses_keepalived_reports(extra: str, tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(f"vrrp_track_process p {{\n    process x\n{extra}}}\n")
    # keepalived -t exits 0 on these: it reports each "(FILE: Line N) ..." and ignores it.
    _code, output = keepalived_check(path)
    assert f"({path}: Line " in output, output


# --- matching (keepalived's read_procs and check_params) ----------------------------------------


def _spec(process: str, *params: str, match: str | None = None, full: bool = False) -> ProcessSpec:
    # As build() resolves it: parameters without param_match are matched exactly.
    match = match or ("exact" if params else None)
    return ProcessSpec("p", process, params, match, full or bool(params) or match is not None)


def _proc(comm: str, *argv: str, zombie: bool = False) -> ProcessInfo:
    return ProcessInfo(1, comm, b"".join(a.encode() + b"\0" for a in argv), zombie)


@pytest.mark.parametrize(
    ("spec", "proc", "expected"),
    [
        # The name is /proc/PID/comm, exactly (pgrep "^name$"), whatever the command line.
        (_spec("sleep"), _proc("sleep", "/bin/sleep", "5"), True),
        (_spec("sleep"), _proc("sleeper", "sleeper"), False),
        (_spec("/bin/sleep"), _proc("sleep", "/bin/sleep"), False),
        (_spec("sleep"), _proc("sleep", zombie=True), False),
        # full_command: argv[0], exactly; any parameters.
        (_spec("/bin/sleep", full=True), _proc("sleep", "/bin/sleep", "5"), True),
        (_spec("sleep", full=True), _proc("sleep", "/bin/sleep", "5"), False),
        (_spec("/bin/sleep", full=True), _proc("sleep"), False),  # kernel thread: no cmdline
        # Parameters: exact by default.
        (_spec("/bin/sleep", "5"), _proc("sleep", "/bin/sleep", "5"), True),
        (_spec("/bin/sleep", "5"), _proc("sleep", "/bin/sleep", "50"), False),
        (_spec("/bin/sleep", "5"), _proc("sleep", "/bin/sleep", "5", "6"), False),
        (_spec("/bin/sleep", "5"), _proc("sleep", "/bin/sleep"), False),
        # partial: the first words, whole.
        (_spec("/bin/x", "a", match="partial"), _proc("x", "/bin/x", "a", "b"), True),
        (_spec("/bin/x", "a", match="partial"), _proc("x", "/bin/x", "ab"), False),
        (_spec("/bin/x", "a", "b", match="partial"), _proc("x", "/bin/x", "a", "b"), True),
        # initial: the last may go on.
        (_spec("/bin/x", "a", match="initial"), _proc("x", "/bin/x", "ab", "c"), True),
        (_spec("/bin/x", "a", "b", match="initial"), _proc("x", "/bin/x", "a", "bc"), True),
        (_spec("/bin/x", "a", "b", match="initial"), _proc("x", "/bin/x", "ab"), False),
        # param_match without parameters: exact is "none at all", the others anything.
        (_spec("/bin/x", match="exact"), _proc("x", "/bin/x"), True),
        (_spec("/bin/x", match="exact"), _proc("x", "/bin/x", "a"), False),
        (_spec("/bin/x", match="partial"), _proc("x", "/bin/x", "a"), True),
        (_spec("/bin/x", match="initial"), _proc("x", "/bin/x"), True),
    ],
)
def test_which_processes_match(spec: ProcessSpec, proc: ProcessInfo, expected: bool) -> None:
    assert matches(spec, proc) is expected


def test_params_compare_as_keepalived_s_nul_joined_buffers() -> None:
    assert check_params("exact", ("a", "b"), b"a\0b\0")
    assert not check_params("exact", ("a",), b"a")  # no NUL: shorter than "a\0"
    assert check_params("initial", ("a",), b"abc\0")
    assert check_params("partial", (), b"")


# --- quorum and delays ------------------------------------------------------------------------


def _quorum(quorum: int = 1, quorum_max: int | None = None, fork: float = 0.0, term: float = 0.0):
    return ProcessQuorum(ProcessSpec("p", "x", quorum=quorum, quorum_max=quorum_max,
                                     fork_delay=fork, terminate_delay=term))  # fmt: skip


def test_the_first_count_decides_at_once_even_with_delays() -> None:
    q = _quorum(fork=5.0, term=5.0)
    assert q.up is None
    assert q.update(0, 0.0) and q.up is False


@pytest.mark.parametrize(
    ("quorum", "quorum_max", "counts"),
    [
        (1, None, {0: False, 1: True, 7: True}),
        (2, 3, {1: False, 2: True, 3: True, 4: False}),
        (0, 0, {0: True, 1: False}),
    ],
)
def test_up_while_the_count_is_within_quorum(
    quorum: int, quorum_max: int | None, counts: dict[int, bool]
) -> None:
    q = _quorum(quorum, quorum_max)
    for count, up in counts.items():
        q.update(count, 0.0)
        assert q.up is up, count


def test_a_fall_waits_terminate_delay_and_a_return_cancels_it() -> None:
    q = _quorum(term=1.0)
    q.update(1, 0.0)
    assert not q.update(0, 10.0) and q.up and q.deadline == 11.0
    assert not q.expire(10.5)
    assert not q.update(1, 10.6) and q.deadline is None  # back in time: no change at all
    q.update(0, 20.0)
    assert not q.update(0, 20.5) and q.deadline == 21.0  # the delay keeps its start
    assert q.expire(21.0) and q.up is False


def test_a_rise_waits_fork_delay_and_a_rise_above_quorum_max_too() -> None:
    q = _quorum(quorum_max=1, fork=0.5)
    q.update(0, 0.0)
    assert not q.update(1, 1.0) and q.up is False
    assert q.expire(1.5) and q.up is True
    assert not q.update(2, 2.0)  # above quorum_max: a fork caused it
    assert q.expire(2.5) and q.up is False


def test_without_delays_changes_apply_at_once() -> None:
    q = _quorum()
    q.update(1, 0.0)
    assert q.update(0, 1.0) and q.up is False
    assert q.update(3, 2.0) and q.up is True


# --- what it does to an instance (vrrp.tracking) ----------------------------------------------


def _instance(*tracks: TrackProcessSpec, priority: int = 100) -> InstanceSpec:
    return InstanceSpec("VI", "eth0", 1, 4, 3, priority, 100, track_processes=tracks)


def _up(name: str) -> bool:
    return name == "up"


@pytest.mark.parametrize(
    ("track", "fault"),
    [
        (TrackProcessSpec("up"), None),
        (TrackProcessSpec("down"), "tracked process down quorum lost"),
        (TrackProcessSpec("up", reverse=True), "tracked process up quorum gained"),
        (TrackProcessSpec("down", reverse=True), None),
        (TrackProcessSpec("down", -10), None),
    ],
)
def test_weight_0_faults_while_down_or_up_with_reverse(
    track: TrackProcessSpec, fault: str | None
) -> None:
    always_up = lambda _name: True  # noqa: E731
    assert fault_reason(_instance(track), always_up, process_up=_up) == fault


@pytest.mark.parametrize(
    ("track", "priority"),
    [
        (TrackProcessSpec("up", 20), 120),
        (TrackProcessSpec("down", 20), 100),
        (TrackProcessSpec("down", -30), 70),
        (TrackProcessSpec("up", -30), 100),
        (TrackProcessSpec("up", 20, True), 80),
        (TrackProcessSpec("down", -30, True), 130),
        (TrackProcessSpec("up", 254), 254),  # clamped to 1..254
        (TrackProcessSpec("down", -254), 1),
    ],
)
def test_weights_apply_as_track_script_s(track: TrackProcessSpec, priority: int) -> None:
    always_up = lambda _name: True  # noqa: E731
    assert tracked_priority(_instance(track), always_up, process_up=_up) == priority


def test_an_uncounted_block_does_nothing() -> None:
    spec = _instance(TrackProcessSpec("x"), TrackProcessSpec("y", -50))
    always_up = lambda _name: True  # noqa: E731
    assert fault_reason(spec, always_up) is None
    assert tracked_priority(spec, always_up) == 100


# --- /proc -----------------------------------------------------------------------------------


def _fake_proc(root: Path, procs: dict[int, tuple[str, str, list[str]]]) -> None:
    for path in root.iterdir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    for pid, (comm, state, argv) in procs.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "stat").write_text(f"{pid} ({comm}) {state} 1 2 3\n")
        (root / str(pid) / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))


def test_stat_lines_give_the_name_and_state() -> None:
    assert parse_stat("42 (sleep) S 1 42") == ("sleep", "S")
    assert parse_stat("42 (a) b) Z 1") == ("a) b", "Z")
    assert parse_stat("garbage") is None


def test_scan_reads_names_states_and_command_lines(tmp_path: Path) -> None:
    _fake_proc(tmp_path, {7: ("sleep", "S", ["/bin/sleep", "9"]), 8: ("dead", "Z", [])})
    (tmp_path / "self").mkdir()  # not a process
    found = sorted(scan(True, str(tmp_path)), key=lambda p: p.pid)
    assert found == [
        ProcessInfo(7, "sleep", b"/bin/sleep\x009\x00", False),
        ProcessInfo(8, "dead", b"", True),
    ]
    assert [p.cmdline for p in scan(False, str(tmp_path))] == [b"", b""]


def test_the_watch_counts_on_a_grid_and_reports_changes(tmp_path: Path) -> None:
    _fake_proc(tmp_path, {7: ("sleep", "S", ["/bin/sleep", "9"])})
    watch = ProcessWatch(period=0.1, proc=str(tmp_path))
    spec = ProcessSpec("sleeper", "/bin/sleep", ("9",), "exact", True)
    assert watch.configure([spec], 0.0) == ["sleeper"]
    assert watch.up("sleeper") is True and watch.deadline() == pytest.approx(0.1)
    _fake_proc(tmp_path, {})
    assert watch.tick(0.05) == []  # not due: no scan
    assert watch.tick(0.1) == ["sleeper"] and watch.up("sleeper") is False
    # Late by 0.25 s: the next scan is on the grid, not a period after now.
    assert watch.tick(0.35) == [] and watch.deadline() == pytest.approx(0.4)
    assert watch.status()["sleeper"] == {
        "count": 0,
        "quorum": [1, None],
        "up": False,
        "pending": False,
    }
    gen = watch.gen
    # A reload keeps an unchanged block's state (no change reported) and bumps the timers.
    assert watch.configure([spec], 1.0) == [] and watch.gen == gen + 1
    assert watch.configure([], 2.0) == [] and watch.deadline() is None
    assert watch.up("sleeper") is None
