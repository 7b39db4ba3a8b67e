"""The bundled daemon's configuration → run-time mapping (vrrp.spec, vrrp.daemon helpers).

No sockets, no namespaces: what the daemon will run is decided here, from keepalived.conf.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from pathlib import Path

import pytest

from vrrp import config, spec
from vrrp.daemon import notify_line, params_for
from vrrp.packet import Auth, ChecksumForm
from vrrp.spec import GarpSpec, Rfc9568

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "scenarios" / "seed"


def _build(tmp_path: Path, text: str) -> spec.DaemonSpec:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return spec.build(config.load(path))


def test_seed_first_maps_to_keepalived_behaviour() -> None:
    (inst,) = spec.build(config.load(SEED / "ha_first.conf")).instances
    assert (inst.name, inst.interface, inst.vrid, inst.priority) == ("vrrp_1", "ens3", 1, 200)
    # No `version` and no global vrrp_version: keepalived 2.2.7 runs VRRPv2, and so do we.
    assert inst.version == 2 and inst.family == 4
    assert inst.checksum_form is ChecksumForm.RFC3768
    assert inst.advert_int_cs == 100
    assert inst.vmac_name == "vrrp.1" and inst.vmac_address == "00:00:5e:00:01:01"
    # vmac_xmit_base: adverts leave from the base interface, GARPs still carry the VMAC.
    assert inst.tx_interface == "ens3" and inst.garp_mac_is_vmac
    assert inst.unicast_src == IPv4Address("10.200.51.32")
    assert inst.peers == (IPv4Address("10.200.51.33"),) and inst.is_unicast
    (vip,) = inst.vips
    assert vip.address == IPv4Interface("10.200.51.10/32") and vip.dev == "vrrp.1"
    assert inst.garp == GarpSpec(delay=5, repeat=5, refresh=0, refresh_repeat=1)
    assert inst.preempt and inst.auth is None and inst.rfc9568 is Rfc9568.NONE


def test_seed_second_is_the_lower_priority_peer() -> None:
    (inst,) = spec.build(config.load(SEED / "ha_second.conf")).instances
    assert inst.priority == 100
    assert inst.unicast_src == IPv4Address("10.200.51.33")
    assert inst.peers == (IPv4Address("10.200.51.32"),)


def test_named_vmac_without_xmit_base_sends_from_the_vmac(tmp_path: Path) -> None:
    (inst,) = _build(
        tmp_path,
        """
global_defs {
    vrrp_notify_fifo /run/x.fifo
    vrrp_garp_master_delay 2
    vrrp_garp_master_refresh 30
}
vrrp_instance v3 {
    interface eth0
    virtual_router_id 42
    version 3
    advert_int 0.05
    priority 150
    use_vmac vmac42
    garp_master_repeat 2
    virtual_ipaddress {
        192.0.2.10/24
        192.0.2.11 dev eth1
    }
}
""",
    ).instances
    assert inst.vmac_name == "vmac42" and inst.tx_interface == "vmac42"
    assert inst.vmac_address == "00:00:5e:00:01:2a"
    assert inst.advert_int_cs == 5 and inst.version == 3
    assert inst.checksum_form is ChecksumForm.RFC5798
    assert [(str(v.address), v.dev) for v in inst.vips] == [
        ("192.0.2.10/24", "vmac42"),
        ("192.0.2.11/32", "eth1"),
    ]
    # Instance values win over global_defs, which win over keepalived's defaults; the batches
    # answering a losing advert follow the global values (keepalived's vrrp_garp_master_repeat
    # and _delay), not the instance's garp_master_repeat.
    assert inst.garp == GarpSpec(
        delay=2, repeat=2, refresh=30, refresh_repeat=1, lower_prio_repeat=5, lower_prio_delay=2
    )
    assert not inst.is_unicast


def test_without_vmac_everything_is_on_the_interface(tmp_path: Path) -> None:
    (inst,) = _build(
        tmp_path,
        """
vrrp_instance plain {
    interface eth0
    virtual_router_id 7
    priority 255
    virtual_ipaddress {
        192.0.2.7
    }
}
""",
    ).instances
    assert inst.vmac_name is None and inst.tx_interface == "eth0"
    assert not inst.garp_mac_is_vmac
    assert [v.dev for v in inst.vips] == ["eth0"]
    assert inst.priority == 255


def test_notify_fifo_and_scripts(tmp_path: Path) -> None:
    daemon_spec = _build(
        tmp_path,
        """
global_defs {
    vrrp_notify_fifo /run/vrrp/notify.fifo
}
vrrp_instance n {
    interface eth0
    virtual_router_id 9
    notify_master "/usr/local/bin/to-master arg1 'arg 2'"
    notify "/usr/local/bin/any-state"
    virtual_ipaddress {
        192.0.2.9
    }
}
""",
    )
    assert daemon_spec.notify_fifo == "/run/vrrp/notify.fifo"
    (inst,) = daemon_spec.instances
    assert inst.notify_master == ("/usr/local/bin/to-master", "arg1", "arg 2")
    assert inst.notify == ("/usr/local/bin/any-state",)
    assert inst.notify_backup is None


def test_v2_pass_authentication(tmp_path: Path) -> None:
    (inst,) = _build(
        tmp_path,
        """
vrrp_instance v2 {
    interface eth0
    virtual_router_id 3
    version 2
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        192.0.2.3
    }
}
""",
    ).instances
    assert inst.version == 2 and inst.auth == Auth(1, b"s3cret")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vrrp_rfc9568", Rfc9568.ALL),
        ("vrrp_rfc9568 behaviour", Rfc9568.BEHAVIOUR),
        ("vrrp_rfc9568 checksum", Rfc9568.CHECKSUM),
    ],
)
def test_rfc9568_global_keyword(tmp_path: Path, line: str, expected: Rfc9568) -> None:
    daemon_spec = _build(
        tmp_path,
        f"""
global_defs {{
    {line}
}}
vrrp_instance a {{
    interface eth0
    virtual_router_id 1
    version 3
    virtual_ipaddress {{
        192.0.2.1
    }}
}}
vrrp_instance b {{
    interface eth0
    virtual_router_id 2
    version 2
    virtual_ipaddress {{
        192.0.2.2
    }}
}}
""",
    )
    v3, v2 = daemon_spec.instances
    assert v3.rfc9568 is expected
    assert v2.rfc9568 is Rfc9568.NONE  # RFC 9568 is a VRRPv3 document
    assert v3.checksum_form is (
        ChecksumForm.RFC9568 if Rfc9568.CHECKSUM in expected else ChecksumForm.RFC5798
    )
    # The keyword is ours: it is not reported as an unknown keyword.
    assert not any("rfc9568" in w for w in daemon_spec.warnings)


def test_rfc9568_instance_keyword_applies_to_its_instance_only(tmp_path: Path) -> None:
    daemon_spec = _build(
        tmp_path,
        """
vrrp_instance a {
    interface eth0
    virtual_router_id 1
    version 3
    rfc9568 behaviour
    virtual_ipaddress {
        192.0.2.1
    }
}
vrrp_instance b {
    interface eth0
    virtual_router_id 2
    version 3
    virtual_ipaddress {
        192.0.2.2
    }
}
""",
    )
    a, b = daemon_spec.instances
    assert a.rfc9568 is Rfc9568.BEHAVIOUR and b.rfc9568 is Rfc9568.NONE
    assert params_for(a, IPv4Address("192.0.2.100")).rfc9568
    assert not params_for(b, IPv4Address("192.0.2.100")).rfc9568


def test_command_line_rfc9568_override(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(
        "vrrp_instance a {\n interface eth0\n virtual_router_id 1\n version 3\n"
        " virtual_ipaddress {\n  192.0.2.1\n }\n}\n"
    )
    (inst,) = spec.build(config.load(path), rfc9568=Rfc9568.ALL).instances
    assert inst.rfc9568 is Rfc9568.ALL and inst.checksum_form is ChecksumForm.RFC9568


def test_params_for_maps_the_state_machine_parameters() -> None:
    (inst,) = spec.build(config.load(SEED / "ha_first.conf")).instances
    params = params_for(inst, inst.unicast_src or IPv4Address("0.0.0.0"))
    assert params.vrid == 1 and params.priority == 200 and params.version == 2
    assert params.primary_ip == "10.200.51.32"
    assert params.vips == ("10.200.51.10",)
    assert params.advert_interval_cs == 100 and params.preempt and not params.rfc9568


def test_ipv6_instance(tmp_path: Path) -> None:
    (inst,) = _build(
        tmp_path,
        """
vrrp_instance six {
    interface eth0
    virtual_router_id 5
    use_vmac
    virtual_ipaddress {
        2001:db8::5
    }
}
""",
    ).instances
    assert inst.family == 6 and inst.version == 3  # keepalived: IPv6 means VRRPv3
    assert inst.vmac_address == "00:00:5e:00:02:05"
    assert inst.vips[0].address.ip == IPv6Address("2001:db8::5")
    assert inst.checksum_form is ChecksumForm.RFC5798


def test_reload_identity_ignores_priority_and_vips(tmp_path: Path) -> None:
    (a,) = spec.build(config.load(SEED / "ha_first.conf")).instances
    text = (SEED / "ha_first.conf").read_text().replace("priority 200", "priority 120")
    text = text.replace("10.200.51.10\n", "10.200.51.10\n        10.200.51.11\n")
    (b,) = _build(tmp_path, text).instances
    assert a.identity() == b.identity() and a != b
    assert b.priority == 120 and len(b.vips) == 2


def test_notify_line_is_keepalived_format() -> None:
    assert notify_line("vrrp_1", "MASTER", 200) == 'INSTANCE "vrrp_1" MASTER 200\n'
    assert notify_line("vi", "STOP", 100) == 'INSTANCE "vi" STOP 100\n'


def test_scheduling_keywords(tmp_path: Path) -> None:
    daemon_spec = _build(
        tmp_path,
        """
global_defs {
    vrrp_rt_priority 50
    vrrp_priority -5
}
vrrp_instance a {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1
    }
}
""",
    )
    assert daemon_spec.rt_priority == 50 and daemon_spec.nice == -5
    assert not daemon_spec.warnings


def test_spread_phases() -> None:
    from vrrp.daemon import spread_phases

    base = spec.build(config.load(SEED / "ha_first.conf")).instances[0]
    fast = [replace(base, name=f"f{i}", vrid=i + 1, advert_int_cs=10) for i in range(4)]
    slow = replace(base, name="slow", vrid=9)
    offsets = dict((s.name, o) for s, o in spread_phases((*fast, slow)))
    assert offsets == {"f0": 0.0, "f1": 0.025, "f2": 0.05, "f3": 0.075, "slow": 0.0}


def test_a_losing_advert_draws_garps_as_keepalived_sends_them(tmp_path: Path) -> None:
    """keepalived 2.2.7 (vrrp.c): a Master hearing a losing advert sends
    ``garp_lower_prio_repeat`` GARPs per VIP (default: the global ``vrrp_garp_master_repeat``),
    and again ``vrrp_garp_master_delay`` later; none in strict mode."""
    base = "vrrp_instance v {{\n interface eth0\n virtual_router_id 1\n{extra}\n}}\n"
    (plain,) = _build(
        tmp_path, base.format(extra=" virtual_ipaddress {\n  192.0.2.10\n }")
    ).instances
    assert (plain.garp.lower_prio_repeat, plain.garp.lower_prio_delay) == (5, 5)
    (own,) = _build(
        tmp_path,
        base.format(extra=" garp_lower_prio_repeat 1\n virtual_ipaddress {\n  192.0.2.10\n }"),
    ).instances
    assert own.garp.lower_prio_repeat == 1
    (strict,) = _build(
        tmp_path,
        "global_defs {\n vrrp_strict\n}\n"
        + base.format(extra=" virtual_ipaddress {\n  192.0.2.10\n }"),
    ).instances
    assert (strict.garp.lower_prio_repeat, strict.garp.lower_prio_delay) == (0, 0)
