"""``track_file`` without a lab: the configuration (both spellings, keepalived's defaults and
errors, rendering, ``keepalived -t`` as the oracle), keepalived's rule for what a number does to
an instance (pure), the daemon's inotify watch on real files, and a daemon tracking one (its
sockets fake, its file real).
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.keepalived_oracle import assert_keepalived_accepts, needs_keepalived
from vrrp.config import ConfigError, TrackedFile, TrackFile, parse, render
from vrrp.spec import FileSpec
from vrrp.state import State
from vrrp.tracking import file_status
from vrrp.watch import FileWatch, read_value, strtol

INSTANCE = """\
vrrp_instance vi_1 {{
    interface eth0
    virtual_router_id 1
    priority {priority}
    virtual_ipaddress {{
        192.0.2.1
    }}
    track_file {{
{tracks}    }}
}}
"""

BLOCKS = """\
vrrp_track_file flag {
    file "/run/flag"
    weight -2 reverse
    init_file 5 overwrite
}
track_file plain {
    file /run/plain
}
"""


def _config(*tracks: str, priority: int = 100, blocks: str = BLOCKS) -> str:
    entries = "".join(f"        {t}\n" for t in tracks)
    return blocks + INSTANCE.format(priority=priority, tracks=entries)


# --- the configuration --------------------------------------------------------------------


def test_both_spellings_parse_with_keepalived_s_defaults_and_round_trip() -> None:
    config = parse(_config("flag", "plain weight 10 noreverse"))
    flag, plain = config.track_files
    assert flag == TrackedFile(
        "flag", "/run/flag", weight=-2, reverse=True, init_value=5, init_overwrite=True
    )
    # keepalived's defaults: weight 1, no init_file.
    assert plain == TrackedFile("plain", "/run/plain")
    tracks = config.instance("vi_1").track_file
    assert tracks == [TrackFile("flag"), TrackFile("plain", 10, False)]
    assert tracks[0].resolve(flag) == (-2, True)
    assert tracks[1].resolve(plain) == (10, False)
    # init_file alone writes 0 when the file is missing.
    bare = parse("track_file f {\n    file /x\n    init_file\n}\n")
    assert (bare.track_files[0].init_value, bare.track_files[0].init_overwrite) == (0, False)
    assert parse(render(config)) == config and parse(render(bare)) == bare


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("track_file f {\n    weight 2\n}\n", "<string>:1: track_file f: missing 'file'"),
        ("track_file f {\n    file /x\n    weight 255\n}\n", "<string>:3: weight: expected an"),
        ("track_file f {\n    file /x\n    weight 2 noreverse\n}\n", "got 'noreverse'"),
        ("track_file f {\n    file /x\n    init_file x\n}\n", "init_file: expected an integer"),
        (_config("nothere"), "track_file: expected the name of a track_file (known: flag, plain)"),
        (_config("plain", "plain"), "track_file: expected each track_file once"),
        # The owner takes weight 0 only, and a track_file's default weight is 1.
        (_config("plain", priority=255), "expected no weight on plain for the address owner"),
        (
            INSTANCE.format(priority=100, tracks="        f\n") + "track_file f {\n file /x\n}\n",
            "<string>:9: track_file: expected a track_file defined before vrrp_instance vi_1",
        ),
    ],
)
def test_what_keepalived_reports_and_repairs_is_an_error_with_its_line(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert message in str(err.value), str(err.value)


def test_a_path_keepalived_could_not_read_back_is_refused() -> None:
    # A model built in Python: a file's lexer refuses the quote before the model sees it.
    with pytest.raises(ConfigError, match="file: expected a path without"):
        TrackedFile("f", '/run/a"b')


@needs_keepalived
def test_rendered_track_files_pass_keepalived_config_test(tmp_path: Path) -> None:
    assert_keepalived_accepts(parse(_config("flag", "plain weight 10 noreverse")), tmp_path)


# --- keepalived's rule (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "reverse", "value", "status"),
    [
        # Weight 0: a non-zero number is FAULT (zero, with reverse).
        (0, False, 0, 0),
        (0, False, 3, None),
        (0, False, -1, None),
        (0, True, 0, None),
        (0, True, 7, 0),
        # Otherwise number × weight (negated with reverse), FAULT at -254 or less, at most 253.
        (1, False, 20, 20),
        (-2, False, 20, -40),
        (-2, True, 20, 40),
        (10, False, 100, 253),
        (1, False, -253, -253),
        (1, False, -254, None),
        (254, False, -1, None),
        (-254, True, -1, None),
    ],
)
def test_what_a_number_does_to_an_instance(
    weight: int, reverse: bool, value: int, status: int | None
) -> None:
    assert file_status(weight, reverse, value) == status


@pytest.mark.parametrize(
    ("text", "value"),
    [("42\n", 42), ("  -7 apples", -7), ("+3", 3), ("0x1f", 31), ("010", 8), ("09", 0), ("", 0)],
)
def test_numbers_are_read_as_c_strtol_reads_them(text: str, value: int) -> None:
    assert strtol(text) == value


def test_a_missing_file_holds_zero_and_a_huge_number_is_ignored(tmp_path: Path) -> None:
    assert read_value(str(tmp_path / "missing")) == 0
    (tmp_path / "huge").write_text("99999999999\n")
    assert read_value(str(tmp_path / "huge")) is None
    (tmp_path / "edge").write_text(str(2**31))  # keepalived takes INT32_MAX + 1
    assert read_value(str(tmp_path / "edge")) == 2**31


# --- the daemon's watch on real files -----------------------------------------------------


def _changes(watch: FileWatch, timeout: float = 5.0) -> list[str]:
    """Wait for inotify to report; the names whose number changed."""
    ready, _, _ = select.select([watch.fileno()], [], [], timeout)
    assert ready, f"no inotify event within {timeout} s"
    return watch.readable()


def test_the_watch_follows_writes_moves_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "weight"
    watch = FileWatch()
    try:
        assert watch.configure((FileSpec("w", str(path)),)) == []
        assert watch.value("w") == 0 and watch.status() == {"w": 0}
        path.write_text("12\n")
        assert _changes(watch) == ["w"] and watch.value("w") == 12
        # Renamed into place, as an atomic writer does.
        (tmp_path / "new").write_text("-5\n")
        os.rename(tmp_path / "new", path)
        assert "w" in _changes(watch) and watch.value("w") == -5
        # Another file in the directory changes nothing; the tracked one deleted holds 0.
        (tmp_path / "other").write_text("9\n")
        path.unlink()
        changed = _changes(watch)
        while not changed:
            changed = _changes(watch)
        assert changed == ["w"] and watch.value("w") == 0
    finally:
        watch.close()


def test_init_file_writes_a_missing_file_and_overwrites_only_when_asked(tmp_path: Path) -> None:
    missing, present = tmp_path / "missing", tmp_path / "present"
    present.write_text("3\n")
    watch = FileWatch()
    try:
        watch.configure(
            (
                FileSpec("a", str(missing), init_value=4),
                FileSpec("b", str(present), init_value=4),
            )
        )
        assert (watch.value("a"), watch.value("b")) == (4, 3)
        watch.configure((FileSpec("b", str(present), init_value=6, init_overwrite=True),))
        assert present.read_text() == "6\n" and watch.value("b") == 6
        # Not on a reload: keepalived keeps what an operator wrote since.
        present.write_text("1\n")
        _changes(watch)
        spec = FileSpec("b", str(present), init_value=6, init_overwrite=True)
        assert watch.configure((spec,), reload=True) == []
        assert present.read_text() == "1\n"
    finally:
        watch.close()


# --- a daemon tracking one ----------------------------------------------------------------

DAEMON_CONF = """\
track_file flag {{
    file "{path}"
    weight {weight}
}}
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
    track_file {{
        flag
    }}
}}
"""


def _daemon(tmp_path: Path, weight: int, value: int) -> tuple[Any, Path]:
    from tests.unit.test_daemon_frames import _Harness

    flag = tmp_path / "flag"
    flag.write_text(f"{value}\n")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(DAEMON_CONF.format(path=flag, weight=weight))

    class Harness(_Harness):
        def _start_instance(self, ispec: Any, now: float, *, run: bool = True) -> Any:
            # The files are read before the instances start, as Daemon.run does.
            if self.files.fileno() < 0:
                self.files.configure(self.spec.files)
            return super()._start_instance(ispec, now, run=run)

    daemon = Harness(conf)
    return daemon, flag


def _write(daemon: Any, flag: Path, value: int) -> None:
    flag.write_text(f"{value}\n")
    daemon._on_files(_changes(daemon.files), time.monotonic())


def test_an_unweighted_file_faults_the_instance_while_non_zero(tmp_path: Path) -> None:
    daemon, flag = _daemon(tmp_path, 0, 1)
    inst = daemon.instances["VI_1"]
    try:
        assert inst.fault and inst.machine.state is State.INITIALIZE
        _write(daemon, flag, 0)
        assert not inst.fault and inst.machine.state is State.BACKUP
        _write(daemon, flag, 2)
        assert inst.fault
    finally:
        daemon.files.close()


def test_a_weighted_file_moves_the_priority_and_faults_at_minus_254(tmp_path: Path) -> None:
    daemon, flag = _daemon(tmp_path, -10, 3)
    inst = daemon.instances["VI_1"]
    try:
        assert inst.machine.priority == 70 and not inst.fault
        _write(daemon, flag, -5)
        assert inst.machine.priority == 150
        _write(daemon, flag, 26)
        assert inst.fault
    finally:
        daemon.files.close()


# --- a scenario's router ------------------------------------------------------------------


def test_a_router_s_trackers_render_for_keepalived_and_frr_refuses_them() -> None:
    from lab.routers.frr import UnsupportedConfig, translate
    from lab.routers.params import CheckParams, FileParams, RouterParams

    base = {"interface": "ens3", "priority": 150, "vips": ("10.0.0.10",)}
    tracked = RouterParams(**base, files=(FileParams("maintenance", "/run/m", weight=0, init=0),))
    config = parse(tracked.render())
    assert config.track_files == [TrackedFile("maintenance", "/run/m", weight=0, init_value=0)]
    assert config.instances[0].track_file == [TrackFile("maintenance")]
    checked = RouterParams(**base, checks=(CheckParams("chk", "true", weight=-20),))
    for params, keyword in ((tracked, "track_file"), (checked, "track_script")):
        with pytest.raises(UnsupportedConfig, match=f"{keyword}: FRR vrrpd has no"):
            translate(params.render(), "r.conf")
    with pytest.raises(ValueError, match=r"^files: weight: expected an integer -254\.\.254"):
        RouterParams(**base, files=(FileParams("m", "/run/m", weight=300),))


def test_a_file_flag_step_reads_its_arguments() -> None:
    from lab.faults import _step_arguments
    from lab.steps import Step

    step = Step.model_validate({"file-flag": {"node": "ha_first", "path": "/run/m"}})
    assert step.action == "file_flag" and step.is_fault  # it opens a measured failover
    assert _step_arguments(step.file_flag) == ("ha_first", "/run/m", 1)
    cleared = Step.model_validate({"file-flag": {"node": "a", "path": "/run/m", "value": None}})
    assert _step_arguments(cleared.file_flag) == ("a", "/run/m", None)
    with pytest.raises(ValueError, match="expected an absolute path inside the node"):
        Step.model_validate({"file-flag": {"node": "a", "path": "run/m"}})
