"""The Neutron → OVN logical switch port mapping (lab.ovn.neutron), rule by rule."""

from __future__ import annotations

import pytest

from lab.ovn.nb import change_commands, neutron_json
from lab.ovn.neutron import (
    UNKNOWN,
    VIRTUAL,
    NeutronPort,
    bound_virtual_ports,
    lsp_row,
    lsp_rows,
)
from lab.sdn.profiles import SdnConfig

MAC1 = "fa:16:3e:8d:dc:bb"
MAC2 = "fa:16:3e:f3:a9:a3"
VMAC = "00:00:5e:00:01:01"
NET = "10.200.51.0/24"


def port(pid: str, mac: str, ip: str, **kw: object) -> NeutronPort:
    return NeutronPort(id=pid, mac=mac, fixed_ips=(ip,), subnets=(NET,), **kw)  # type: ignore[arg-type]


def test_addresses_and_port_security_are_the_mac_and_fixed_ips() -> None:
    row = lsp_row(port("a", MAC1, "10.200.51.32"), [])
    assert row.addresses == (f"{MAC1} 10.200.51.32",)
    assert row.port_security == (f"{MAC1} 10.200.51.32",)
    assert row.type == "" and row.options == ()


def test_pair_with_the_port_mac_joins_the_port_security_entry_not_addresses() -> None:
    p = port("a", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.10", None),))
    row = lsp_row(p, [p])
    assert row.port_security == (f"{MAC1} 10.200.51.32 10.200.51.10",)
    # addresses carries fixed IPs only: a pair's IP there would make OVN answer ARP for it.
    assert row.addresses == (f"{MAC1} 10.200.51.32",)


def test_pair_with_another_mac_adds_its_own_entry_and_the_bare_mac_to_addresses() -> None:
    p = port("a", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.10", VMAC),))
    row = lsp_row(p, [p])
    assert row.port_security == (f"{MAC1} 10.200.51.32", f"{VMAC} 10.200.51.10")
    assert row.addresses == (f"{MAC1} 10.200.51.32", VMAC)


def test_cidr_pairs_pass_through() -> None:
    p = port("a", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.0/28", None),))
    assert lsp_row(p, [p]).port_security == (f"{MAC1} 10.200.51.32 10.200.51.0/28",)


def test_port_security_off_gives_unknown_and_no_port_security() -> None:
    p = port(
        "a",
        MAC1,
        "10.200.51.32",
        port_security=False,
        allowed_address_pairs=(("10.200.51.10", None),),
    )
    row = lsp_row(p, [p])
    assert row.port_security == ()
    assert row.addresses == (UNKNOWN,)
    # With DHCP on its subnet, Neutron still lists the MAC and IPs (for the DHCP options).
    row = lsp_row(NeutronPort("a", MAC1, ("10.200.51.32",), (NET,), False, dhcp=True), [])
    assert row.addresses == (f"{MAC1} 10.200.51.32", UNKNOWN)


def test_port_security_on_never_gets_unknown() -> None:
    row = lsp_row(port("a", MAC1, "10.200.51.32"), [])
    assert UNKNOWN not in row.addresses


def test_reserved_vip_port_becomes_virtual_with_its_parents() -> None:
    first = port("p1", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.10", None),))
    second = port("p2", MAC2, "10.200.51.33", allowed_address_pairs=(("10.200.51.10/32", None),))
    vip = port("vip", "fa:16:3e:00:00:10", "10.200.51.10", bound=False)
    rows = {r.name: r for r in lsp_rows([first, second, vip])}
    assert rows["vip"].type == VIRTUAL
    assert rows["vip"].option("virtual-ip") == "10.200.51.10"
    assert rows["vip"].option("virtual-parents") == "p1,p2"
    # A typed port lists its MAC and IP even without port security (the `port_type` branch).
    assert rows["vip"].addresses == ("fa:16:3e:00:00:10 10.200.51.10",)
    assert rows["p1"].type == "" and rows["p2"].type == ""


def test_no_parents_no_virtual() -> None:
    # The pair names another address, a wider CIDR, or the parent is in another subnet.
    vip = port("vip", "fa:16:3e:00:00:10", "10.200.51.10", bound=False)
    other_ip = port("p1", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.11", None),))
    wide = port("p2", MAC2, "10.200.51.33", allowed_address_pairs=(("10.200.51.0/24", None),))
    elsewhere = NeutronPort(
        "p3",
        "fa:16:3e:00:00:03",
        ("10.9.0.3",),
        ("10.9.0.0/24",),
        allowed_address_pairs=(("10.200.51.10", None),),
    )
    row = lsp_row(vip, [other_ip, wide, elsewhere, vip])
    assert row.type == "" and row.options == ()
    assert row.addresses == ("fa:16:3e:00:00:10 10.200.51.10",)


def test_a_bound_port_is_never_virtual_and_is_named_for_refusal() -> None:
    parent = port("p1", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.33", None),))
    bound = port("p2", MAC2, "10.200.51.33")
    assert lsp_row(bound, [parent, bound]).type == ""
    assert bound_virtual_ports([parent, bound]) == [("p2", "10.200.51.33", ["p1"])]


def test_a_wrong_rule_would_fail() -> None:
    # Guards against the easy mistake of putting pair IPs in `addresses` (OVN would then answer
    # ARP for the VIP from every parent, hiding VRRP's GARP entirely).
    p = port("a", MAC1, "10.200.51.32", allowed_address_pairs=(("10.200.51.10", None),))
    assert all("10.200.51.10" not in a for a in lsp_row(p, [p]).addresses)


# -- the NB transaction a port-set sends (lab.ovn.nb) -------------------------------------------


def _state() -> dict[str, object]:
    first = port("p1", MAC1, "10.200.51.32")
    second = port("p2", MAC2, "10.200.51.33")
    vip = port("vip", "fa:16:3e:00:00:10", "10.200.51.10", bound=False)

    def entry(p: NeutronPort) -> dict[str, object]:
        spec = {"network": "net", "instance": p.id}
        return {"spec": spec, "pairs": [], "engine": "ovn", "neutron": neutron_json(p)}

    return {
        "ports": {"p1": entry(first), "p2": entry(second)},
        "ovn_reserved": {"net": [neutron_json(vip)]},
    }


def test_port_set_of_the_vip_pair_types_the_reserved_port_virtual() -> None:
    argv = change_commands(_state(), "p1", [("10.200.51.10", None)])
    text = " ".join(argv)
    assert f"lsp-set-port-security p1 {MAC1} 10.200.51.32 10.200.51.10" in text
    assert "lsp-set-type vip virtual" in text
    assert "lsp-set-options vip virtual-ip=10.200.51.10 virtual-parents=p1" in text
    assert " p2 " not in f" {text} "  # an untouched port is not rewritten


def test_port_set_that_changes_nothing_sends_nothing() -> None:
    assert change_commands(_state(), "p1", []) == []


def test_sdn_block_engine_ovn_rejects_emulated_knobs() -> None:
    assert SdnConfig(engine="ovn").resolve() == SdnConfig().resolve()
    for bad in ({"profile": "ovn"}, {"port_security": "off"}):
        with pytest.raises(ValueError, match="only applies to engine: emulated"):
            SdnConfig(engine="ovn", **bad)  # type: ignore[arg-type]
    assert SdnConfig(profile="ovn").engine == "emulated"
