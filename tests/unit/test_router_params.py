"""The lab's generated keepalived configs are :mod:`vrrp.config`'s model: rendered by its
renderer, judged by its checks, with no second validator in ``lab/``.

Pure logic: no namespaces, no daemons.
"""

from __future__ import annotations

from typing import Any

import pytest

from lab.errors import ScenarioError
from lab.routers import RouterParams, driver_class, known_drivers
from lab.routers.params import field_message
from lab.routers.spec import parse_router_specs
from vrrp.config import Config, ConfigError, VrrpInstance, parse, render

#: A valid set of parameters that uses every field.
FULL: dict[str, Any] = {
    "interface": "ens3",
    "priority": 150,
    "vrid": 7,
    "vips": ("10.0.0.9", "10.0.0.10/24"),
    "advert_int": 0.05,
    "unicast_src_ip": "10.0.0.2",
    "unicast_peers": ("10.0.0.3",),
    "use_vmac": True,
    "vmac_xmit_base": True,
    "nopreempt": True,
    "instance": "vi_7",
}


def test_the_rendered_config_is_the_models_and_parses_back_to_it() -> None:
    params = RouterParams(**FULL)
    config = params.to_config()
    assert params.render() == render(config)
    assert parse(params.render()) == config
    inst = config.instances[0]
    assert (inst.virtual_router_id, inst.priority, inst.advert_int_cs, inst.version) == (
        7,
        150,
        5,
        3,
    )
    assert [str(p.address) for p in inst.unicast_peer] == ["10.0.0.3"]


#: Bad parameters, and the same mistake written straight into the model's keywords.
BAD = [
    ({"vrid": 0}, {"virtual_router_id": 0}),
    ({"priority": 256}, {"priority": 256}),
    ({"advert_int": 0.005}, {"advert_int": 0.005}),
    ({"version": 2, "advert_int": 0.5}, {"version": 2, "advert_int": 0.5}),
    ({"version": 4}, {"version": 4}),
    ({"vmac_xmit_base": True}, {"vmac_xmit_base": True}),
    ({"state": "MASTER", "nopreempt": True}, {"state": "MASTER", "nopreempt": True}),
    ({"advert_int": 41}, {"advert_int": 41}),
]


def _model_error(keywords: dict[str, Any]) -> ConfigError:
    """What the model says about a plain instance with ``keywords`` changed."""
    fields: dict[str, Any] = {
        "state": "BACKUP",
        "priority": 100,
        "version": 3,
        "virtual_ipaddress": ["10.0.0.9"],
        **keywords,
    }
    vrid = fields.pop("virtual_router_id", 1)
    with pytest.raises(ConfigError) as caught:
        Config(instances=[VrrpInstance("vrrp_1", "ens3", vrid, **fields)])
    return caught.value


@pytest.mark.parametrize(("changed", "keywords"), BAD, ids=lambda v: ",".join(map(str, v)))
def test_a_bad_parameter_is_refused_with_the_models_own_words(
    changed: dict[str, Any], keywords: dict[str, Any]
) -> None:
    expected = field_message(_model_error(keywords), "vrrp_1")
    with pytest.raises(ValueError) as caught:
        RouterParams(**{"interface": "ens3", "priority": 100, "vips": ("10.0.0.9",), **changed})
    assert str(caught.value) == expected


def test_no_vip_is_refused_even_where_keepalived_only_warns() -> None:
    # VRRPv2 without a VIP is a keepalived warning; a config the lab writes draws none.
    with pytest.raises(ValueError, match=r"^vips: "):
        RouterParams(interface="ens3", priority=100, version=2)
    with pytest.raises(ValueError, match=r"^vips: expected at least one VIP"):
        RouterParams(interface="ens3", priority=100)


def test_field_names_are_the_lab_spelling() -> None:
    err = ConfigError("vrrp_instance vi: virtual_ipaddress: expected at least one VIP")
    assert field_message(err, "vi") == "vips: expected at least one VIP"
    assert field_message(ConfigError("no keyword here"), "vi") == "no keyword here"


@pytest.mark.parametrize(("changed", "keywords"), BAD, ids=lambda v: ",".join(map(str, v)))
def test_a_scenario_router_entry_is_judged_by_the_same_model(
    changed: dict[str, Any], keywords: dict[str, Any]
) -> None:
    entry = {"node": "ha_first", **changed}
    with pytest.raises(ScenarioError) as caught:
        parse_router_specs([entry], "s.yaml")
    field, _, problem = field_message(_model_error(keywords), "vrrp_1").partition(": ")
    assert caught.value.field == f"routers[0].{field}"
    assert caught.value.message == problem


def test_a_mistake_only_the_defaults_reveal_waits_for_bring_up() -> None:
    # The VIPs come from the topology at bring-up: an entry without them is judged with a
    # stand-in of the family its other addresses name, and passes here.
    (spec,) = parse_router_specs([{"node": "n", "version": 2, "unicast": True}], "s.yaml")
    assert spec.stand_in_params().vips == ("192.0.2.1",)
    (spec,) = parse_router_specs([{"node": "n", "unicast_src_ip": "2001:db8::5"}], "s.yaml")
    assert spec.stand_in_params().unicast_peers == ()
    assert spec.stand_in_params().vips == ("2001:db8::1",)
    # With unicast and use_vmac, keepalived needs vmac_xmit_base: caught before any lab is built.
    with pytest.raises(ScenarioError, match=r"routers\[0\]\.use_vmac: expected vmac_xmit_base"):
        parse_router_specs([{"node": "n", "unicast": True, "use_vmac": True}], "s.yaml")


def test_every_known_driver_is_a_driver() -> None:
    # known_drivers() takes the package's modules for drivers, less a list of the ones that
    # are not: a new helper module left off that list would be offered as a conformance column.
    names = known_drivers()
    assert {"keepalived", "bundled", "frr"} <= set(names)
    for name in names:
        assert driver_class(name).impl == name, f"lab/routers/{name}.py registers no driver"


def test_a_tracked_interface_renders_as_keepalived_reads_it() -> None:
    """``track_interface:`` entries render as keepalived's block and parse back the same; a
    bad one is refused with the model's words, naming the entry."""
    (spec,) = parse_router_specs(
        [{"node": "n", "track_interface": [{"name": "ens4"}, {"name": "ens5", "weight": -50}]}],
        "s.yaml",
    )
    text = render(spec.stand_in_params().to_config())
    assert "track_interface {\n        ens4\n        ens5 weight -50\n    }" in text
    (inst,) = parse(text).instances
    assert [(t.name, t.weight) for t in inst.track_interface] == [("ens4", None), ("ens5", -50)]
    with pytest.raises(ScenarioError, match=r"routers\[0\]\.track_interface"):
        parse_router_specs(
            [{"node": "n", "track_interface": [{"name": "ens4", "weight": 300}]}], "s.yaml"
        )
