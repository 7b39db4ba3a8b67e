"""``vrrp_sync_group`` without a lab: the configuration (keepalived 2.2.7's rules, errors with
their line, rendering, ``keepalived -t`` as the oracle), the pure group rules of
:mod:`vrrp.sync_group`, the state machine's two sync events, and a daemon whose sockets are fake
moving two members together.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.keepalived_oracle import (
    assert_keepalived_accepts,
    keepalived_usable,  # noqa: F401 (a fixture)
    needs_keepalived,
)
from vrrp.config import ConfigError, SyncGroup, parse, render
from vrrp.packet import Advert, encode
from vrrp.spec import SyncGroupSpec, build
from vrrp.state import (
    BecomeBackup,
    Params,
    Reason,
    RemoveVips,
    State,
    StateMachine,
)
from vrrp.sync_group import SyncGroupRun, SyncGroups

INSTANCES = """\
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority {p1}
    virtual_ipaddress {
        192.0.2.1
    }
{extra1}}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 2
    priority 100
    virtual_ipaddress {
        192.0.2.2
    }
}
"""


def _conf(group: str, *, p1: int = 100, extra1: str = "") -> str:
    return INSTANCES.replace("{p1}", str(p1)).replace("{extra1}", extra1) + group


GROUP = """\
vrrp_sync_group G {
    group {
        VI_1 VI_2
    }
    track_interface {
        eth1
        eth2 weight -20 reverse
    }
    track_script {
        chk weight -60
    }
    notify_master "/bin/echo master"
    notify /bin/echo
}
"""


# --- the configuration ----------------------------------------------------------------------


def test_a_group_parses_renders_and_round_trips() -> None:
    config = parse(_conf(GROUP), "g.conf")
    (group,) = config.sync_groups
    assert group.group == ["VI_1", "VI_2"]
    assert [t.name for t in group.track_interface] == ["eth1", "eth2"]
    assert group.track_script[0].weight == -60
    assert group.notify_master is not None and group.notify_master.argv == ["/bin/echo", "master"]
    assert config.warnings == []
    text = render(config)
    assert "vrrp_sync_group G {" in text
    assert parse(text) == config
    assert config.sync_group_of("VI_2") is group and config.sync_group_of("nope") is None


def test_members_track_the_group_s_trackers_after_their_own() -> None:
    spec = build(parse(_conf(GROUP)))
    assert spec.sync_groups == (
        SyncGroupSpec(
            "G",
            ("VI_1", "VI_2"),
            notify_master=("/bin/echo", "master"),
            notify=("/bin/echo",),
        ),
    )
    for inst in spec.instances:
        assert inst.sync_group == "G"
        assert [(t.name, t.weight, t.reverse) for t in inst.track_interfaces] == [
            ("eth1", None, False),
            ("eth2", -20, True),
        ]
        assert [(t.name, t.weight) for t in inst.track_scripts] == [("chk", -60)]


@pytest.mark.parametrize(
    ("group", "kwargs", "line", "message"),
    [
        (
            "vrrp_sync_group G {\n    group {\n        VI_1 VI_9\n    }\n}\n",
            {},
            22,
            "group: expected the name of a vrrp_instance (known: VI_1, VI_2), got 'VI_9'",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
            "vrrp_sync_group H {\n    group {\n        VI_2\n    }\n}\n",
            {},
            28,
            "in vrrp_sync_group G already",
        ),
        ("vrrp_sync_group G {\n    notify /bin/echo\n}\n", {}, 20, "expected a 'group { }'"),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1 VI_2\n    }\n}\n",
            {"p1": 255},
            22,
            "every member or none to be the address owner",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1 VI_2\n    }\n}\n",
            {"extra1": "    track_script {\n        chk weight 10\n    }\n"},
            12,
            "vrrp_instance VI_1: track_script: expected no weight on chk in a member of "
            "vrrp_sync_group G, got 10",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1 VI_2\n    }\n"
            "    track_script {\n        chk\n    }\n}\n",
            {"extra1": "    track_script {\n        chk\n    }\n"},
            12,
            "tracked by the instance or by its vrrp_sync_group G, not both",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n    group {\n"
            "        VI_2\n    }\n}\n",
            {},
            24,
            "expected one group block",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1 VI_2\n    }\n"
            "    track_script {\n        nope\n    }\n}\n",
            {},
            25,
            "track_script: expected the name of a vrrp_script",
        ),
        (
            "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n}\n"
            "vrrp_sync_group G {\n    group {\n        VI_2\n    }\n}\n",
            {},
            25,
            "vrrp_sync_group: expected a unique name, got 'G' (already defined at g.conf:20)",
        ),
    ],
    ids=[
        "unknown-member",
        "in-two-groups",
        "no-members",
        "owner-and-not",
        "member-weight",
        "tracked-twice",
        "two-group-blocks",
        "unknown-script",
        "same-name",
    ],
)
def test_what_keepalived_reports_and_repairs_is_an_error_with_its_line(
    group: str, kwargs: dict[str, Any], line: int, message: str
) -> None:
    text = _conf(group, **kwargs)
    with pytest.raises(ConfigError) as err:
        parse(text, "g.conf")
    assert err.value.filename == "g.conf" and err.value.line == line, str(err.value)
    assert message in str(err.value)


def test_sync_group_tracking_weight_lets_members_keep_their_weights() -> None:
    group = (
        "vrrp_sync_group G {\n    group {\n        VI_1 VI_2\n    }\n"
        "    sync_group_tracking_weight\n}\n"
    )
    config = parse(_conf(group, extra1="    track_script {\n        chk weight 10\n    }\n"))
    assert config.sync_groups[0].sync_group_tracking_weight
    assert parse(render(config)) == config


def test_a_group_of_one_is_a_warning_and_smtp_alert_is_unsupported() -> None:
    group = "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n    smtp_alert\n}\n"
    config = parse(_conf(group), "g.conf")
    assert [str(w) for w in config.warnings] == [
        "g.conf:24: unsupported keyword 'smtp_alert' ignored",
        "g.conf:21: vrrp_sync_group G has only 1 virtual router - this probably isn't what "
        "you want",
    ]


def test_a_model_built_in_python_is_held_to_the_same_rules() -> None:
    config = parse(_conf(""))
    config.sync_groups = [SyncGroup("G", ["VI_1", "VI_3"])]
    with pytest.raises(ConfigError, match="vrrp_sync_group G: group: expected the name"):
        config.validate()
    with pytest.raises(ConfigError, match="expected a 'group"):
        SyncGroup("G", [])


@needs_keepalived
@pytest.mark.usefixtures("keepalived_usable")
def test_a_rendered_group_passes_keepalived_config_test(tmp_path: Path) -> None:
    config = parse(_conf(GROUP).replace("eth1", "lo").replace("eth2", "lo2"))
    config.global_defs.dynamic_interfaces = True
    # keepalived refuses to run scripts as root without these.
    config.global_defs.enable_script_security = True
    config.global_defs.script_user = "root"
    config.sync_groups[0].track_interface = config.sync_groups[0].track_interface[:1]
    config.validate()
    assert_keepalived_accepts(config, tmp_path)


def test_frr_refuses_a_sync_group() -> None:
    from lab.routers.frr import UnsupportedConfig, translate

    with pytest.raises(UnsupportedConfig, match="vrrp_sync_group G: FRR vrrpd has no sync"):
        translate(_conf(GROUP))


# --- the pure rules -------------------------------------------------------------------------


def _run(*members: str) -> SyncGroupRun:
    return SyncGroupRun(SyncGroupSpec("G", members))


def test_a_member_goes_master_only_when_every_other_wants_to() -> None:
    group = _run("a", "b", "c")
    states = {"a": "BACKUP", "b": "BACKUP", "c": "BACKUP"}
    group.want_master("a")
    assert not group.can_goto_master("a", states)
    group.want_master("b")
    assert not group.can_goto_master("b", states)
    group.want_master("c")
    assert group.can_goto_master("c", states)
    assert group.to_master("c", states) == ["a", "b"]
    # A held member that accepts a master's advert wants BACKUP again.
    group.want_backup("a")
    assert not group.can_goto_master("c", states)
    # A member in FAULT never wants MASTER, even if it wanted it before.
    group.want_master("a")
    assert not group.can_goto_master("c", {**states, "a": "FAULT"})


def test_once_the_group_is_master_a_member_may_always_go() -> None:
    group = _run("a", "b")
    assert group.settle({"a": "MASTER", "b": "MASTER"}) == "MASTER"
    assert group.can_goto_master("a", {"a": "BACKUP", "b": "BACKUP"})


def test_a_member_leaving_master_takes_the_masters_to_backup() -> None:
    group = _run("a", "b", "c")
    group.want_master("b")
    assert group.to_backup("a", {"a": "BACKUP", "b": "MASTER", "c": "MASTER"}) == ["b", "c"]
    assert group.wanting == set()


def test_a_member_s_own_fault_faults_the_others() -> None:
    group = _run("a", "b")
    assert group.fault_by("a", {"b": "interface down"}) == ("b", "interface down")
    assert group.fault_by("a", {"b": None}) is None


def test_the_group_state_is_announced_when_it_changes() -> None:
    group = _run("a", "b")
    assert group.settle({"a": "BACKUP", "b": "INIT"}) is None
    assert group.settle({"a": "BACKUP", "b": "BACKUP"}) == "BACKUP"
    assert group.settle({"a": "BACKUP", "b": "BACKUP"}) is None
    assert group.settle({"a": "MASTER", "b": "BACKUP"}) is None  # half way through a sync
    assert group.settle({"a": "MASTER", "b": "MASTER"}) == "MASTER"
    assert group.settle({"a": "FAULT", "b": "MASTER"}) == "FAULT"
    assert group.settle({"a": "FAULT", "b": "FAULT"}) is None
    assert group.settle({"a": "BACKUP", "b": "BACKUP"}) == "BACKUP"


def test_a_reload_keeps_what_an_unchanged_group_announced() -> None:
    old = SyncGroups([SyncGroupSpec("G", ("a", "b")), SyncGroupSpec("H", ("c", "d"))])
    old.groups["G"].announced = old.groups["H"].announced = "MASTER"
    new = SyncGroups([SyncGroupSpec("G", ("a", "b")), SyncGroupSpec("H", ("c",))], old)
    assert new.groups["G"].announced == "MASTER" and new.groups["H"].announced is None
    assert new.with_peers("b") == ("b", "a") and new.with_peers("x") == ("x",)


# --- the state machine's sync events ----------------------------------------------------


def _machine() -> StateMachine:
    machine = StateMachine(Params(vrid=1, priority=100, primary_ip="10.0.0.1", vips=("10.0.0.9",)))
    machine.startup(0.0)
    return machine


def test_hold_backup_starts_the_master_down_timer_again() -> None:
    machine = _machine()
    assert machine.hold_backup(5.0) == []
    assert machine.state is State.BACKUP
    assert machine.master_down_timer == pytest.approx(5.0 + machine.master_down_interval)


def test_step_down_leaves_master_without_a_priority_zero_advert() -> None:
    machine = _machine()
    machine.master_down(1.0, Reason.SYNC_GROUP)
    assert machine.state is State.MASTER
    actions = machine.step_down(2.0)
    assert actions == [RemoveVips(("10.0.0.9",)), BecomeBackup(Reason.SYNC_GROUP)]
    assert machine.state is State.BACKUP
    assert machine.master_down_timer == pytest.approx(2.0 + machine.master_down_interval)
    assert machine.step_down(3.0) == []


# --- a daemon with fake sockets -------------------------------------------------------------

DAEMON_CONF = """\
global_defs {{
    vrrp_notify_fifo {fifo}
}}
vrrp_instance VI_1 {{
    interface ens3
    virtual_router_id 1
    priority 100
    advert_int 1
    unicast_src_ip 10.200.51.32
    unicast_peer {{
        10.200.51.33
    }}
    virtual_ipaddress {{
        10.200.51.10/24
    }}
}}
vrrp_instance VI_2 {{
    interface ens3
    virtual_router_id 2
    priority 100
    advert_int 1
    unicast_src_ip 10.200.51.32
    unicast_peer {{
        10.200.51.33
    }}
    virtual_ipaddress {{
        10.200.51.11/24
    }}
}}
vrrp_sync_group G {{
    group {{
        VI_1
        VI_2
    }}
    track_interface {{
        eth9
    }}
}}
"""


def _daemon(tmp_path: Path) -> Any:
    from tests.unit.test_daemon_frames import _Harness

    conf = tmp_path / "keepalived.conf"
    conf.write_text(DAEMON_CONF.format(fifo=tmp_path / "fifo"))

    class Harness(_Harness):
        def _start_instance(self, ispec: Any, now: float, *, run: bool = True) -> Any:
            if not self.sync.groups:
                # As Daemon.run does before the instances start.
                self.sync = SyncGroups(self.spec.sync_groups)
                self.notifier.open_fifo(str(tmp_path / "fifo"))
            return super()._start_instance(ispec, now, run=run)

    return Harness(conf)


def _fifo(daemon: Any) -> list[str]:
    import os

    out = b""
    while True:
        try:
            chunk = os.read(daemon.notifier.fifo_fd, 4096)
        except BlockingIOError:
            break
        out += chunk
        if len(chunk) < 4096:
            break
    return out.decode().splitlines()


def _advert(vrid: int, priority: int) -> bytes:
    advert = Advert.v2(vrid, priority, [f"10.200.51.{9 + vrid}"])
    return encode(advert, src="10.200.51.33", dst="10.200.51.32")


def _states(daemon: Any) -> list[State]:
    return [daemon.instances[n].machine.state for n in ("VI_1", "VI_2")]


def test_the_group_takes_over_when_its_last_member_s_timer_ends(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    try:
        vi1, vi2 = daemon.instances["VI_1"], daemon.instances["VI_2"]
        assert _states(daemon) == [State.BACKUP, State.BACKUP]
        assert _fifo(daemon)[-1] == 'GROUP "G" BACKUP 0'
        # VI_2 hears a master, so its timer ends later than VI_1's.
        start = time.monotonic()
        daemon.feed(_advert(2, 200), now=start + 1.0)
        due = vi1.machine.master_down_timer
        daemon._fire_timers(due)
        assert _states(daemon) == [State.BACKUP, State.BACKUP]
        assert vi1.machine.master_down_timer > due  # held, its timer started again
        assert daemon.sync.groups["G"].wanting == {"VI_1"}
        # VI_2's timer ends: it may go, and takes VI_1 along at once.
        daemon._fire_timers(vi2.machine.master_down_timer)
        assert _states(daemon) == [State.MASTER, State.MASTER]
        assert _fifo(daemon)[-3:] == [
            'INSTANCE "VI_2" MASTER 100',
            'INSTANCE "VI_1" MASTER 100',
            'GROUP "G" MASTER 0',
        ]
        # A better master on VI_1 takes the whole group to BACKUP, without priority 0.
        sent = len(daemon.fake_tx.sent)
        daemon.feed(_advert(1, 200))
        assert _states(daemon) == [State.BACKUP, State.BACKUP]
        assert len(daemon.fake_tx.sent) == sent
        assert _fifo(daemon)[-3:] == [
            'INSTANCE "VI_1" BACKUP 100',
            'INSTANCE "VI_2" BACKUP 100',
            'GROUP "G" BACKUP 0',
        ]
        assert daemon.status()["sync_groups"]["G"]["state"] == "BACKUP"
    finally:
        daemon.notifier.close_fifo()


def test_a_held_member_that_hears_a_master_wants_backup_again(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    try:
        vi1 = daemon.instances["VI_1"]
        daemon.feed(_advert(2, 200), now=time.monotonic() + 1.0)
        daemon._fire_timers(vi1.machine.master_down_timer)
        assert daemon.sync.groups["G"].wanting == {"VI_1"}
        daemon.feed(_advert(1, 200))
        assert daemon.sync.groups["G"].wanting == set()
    finally:
        daemon.notifier.close_fifo()


def test_a_group_tracker_faults_every_member_and_they_come_back_together(
    tmp_path: Path,
) -> None:
    daemon = _daemon(tmp_path)
    try:
        vi1, vi2 = daemon.instances["VI_1"], daemon.instances["VI_2"]
        daemon._fire_timers(max(vi1.machine.master_down_timer, vi2.machine.master_down_timer))
        assert _states(daemon) == [State.MASTER, State.MASTER]
        _fifo(daemon)
        sent = len(daemon.fake_tx.sent)
        daemon.link_up["eth9"] = False
        daemon._reassess(vi1, time.monotonic())
        assert vi1.fault and vi2.fault
        # Each master left with a priority-0 advert, as keepalived's leave_master for FAULT.
        assert len(daemon.fake_tx.sent) == sent + 2
        assert _fifo(daemon) == [
            'INSTANCE "VI_1" FAULT 100',
            'INSTANCE "VI_2" FAULT 100',
            'GROUP "G" FAULT 0',
        ]
        daemon.link_up["eth9"] = True
        daemon._reassess(vi2, time.monotonic())
        assert not vi1.fault and not vi2.fault
        assert _states(daemon) == [State.BACKUP, State.BACKUP]
        assert _fifo(daemon)[-1] == 'GROUP "G" BACKUP 0'
    finally:
        daemon.notifier.close_fifo()


def test_a_member_s_own_fault_takes_the_other_to_fault(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    try:
        vi1, vi2 = daemon.instances["VI_1"], daemon.instances["VI_2"]
        assert daemon._fault_reason(vi2.spec) is None
        daemon.link_up["ens3"] = False
        assert daemon._fault_reason(vi2.spec) == "interface down"
        daemon.link_up["ens3"] = True
        # Only VI_1's own state decides here: fake VI_1 failing alone.
        daemon._own_fault = lambda spec: "interface down" if spec.name == "VI_1" else None
        assert daemon._fault_reason(vi2.spec) == "sync group G: VI_1 interface down"
        daemon._reassess(vi1, time.monotonic())
        assert vi1.fault and vi2.fault
    finally:
        daemon.notifier.close_fifo()
