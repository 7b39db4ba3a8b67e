"""SDN profiles and the scenario's ``sdn:`` block: resolution, overrides and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab.errors import ScenarioError
from lab.scenario import DEFAULT_SCENARIO, load_scenario, parse_scenario
from lab.sdn.profiles import PROFILES, Knobs, SdnConfig, parse_update


def test_every_profile_of_design_section_4_exists() -> None:
    assert set(PROFILES) == {
        "l2-plain",
        "neutron-ovs-hybrid",
        "neutron-ovs-ofw",
        "ovn",
        "arp-caching",
        "cloud-l3",
    }


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("l2-plain", ("forward", "forward", "off", "flood", "flooded", "learning")),
        (
            "neutron-ovs-hybrid",
            ("forward", "vrrp-only", "separate", "responder-static", "flooded", "learning"),
        ),
        (
            "neutron-ovs-ofw",
            ("forward", "forward", "strict-pair", "responder-static", "flooded", "learning"),
        ),
        (
            "ovn",
            ("forward", "forward", "strict-pair", "responder-static", "flooded", "static-first"),
        ),
        ("arp-caching", ("drop", "drop", "ip-only", "proxy-learning", "trapped", "learning")),
        ("cloud-l3", ("drop", "drop", "strict-pair", "proxy-learning", "dropped", "static")),
    ],
)
def test_profiles_start_from_the_design_table(profile: str, expected: tuple[str, ...]) -> None:
    k = PROFILES[profile]
    assert (k.broadcast, k.multicast, k.port_security, k.arp, k.garp, k.fdb) == expected


def test_the_seed_cache_learns_the_first_reply_and_sticks() -> None:
    k = PROFILES["arp-caching"]
    assert (k.learn_from, k.update, k.arp_miss) == (("arp-reply",), "sticky", "relay")
    assert k.controller_needed and k.traps_requests
    cloud = PROFILES["cloud-l3"]
    assert (cloud.learn_from, cloud.arp_miss) == ((), "drop")  # fixed bindings only
    assert PROFILES["ovn"].check_arp_sha and not PROFILES["neutron-ovs-ofw"].check_arp_sha


def test_default_is_l2_plain_without_controller() -> None:
    knobs = SdnConfig().resolve()
    assert knobs == PROFILES["l2-plain"]
    assert not knobs.controller_needed and not knobs.traps_requests


def test_overrides_replace_only_their_knob() -> None:
    config = SdnConfig(profile="arp-caching", update="ttl=2.5", learn_from="garp")
    knobs = config.resolve()
    assert knobs.update == "ttl=2.5" and knobs.ttl == 2.5
    assert knobs.learn_from == ("garp",)
    assert knobs.port_security == "ip-only"  # untouched
    assert config.overrides() == {"update": "ttl=2.5", "learn_from": ("garp",)}


def test_cloud_l3_binds_pairs_and_responders_then_trap_every_request() -> None:
    assert PROFILES["cloud-l3"].bind_pairs
    assert not any(PROFILES[name].bind_pairs for name in PROFILES if name != "cloud-l3")
    knobs = SdnConfig(profile="neutron-ovs-ofw", bind_pairs=True).resolve()
    assert knobs.traps_requests  # pair addresses change at run time: no nft set lists them


@pytest.mark.parametrize("garp", ["trapped", "dropped"])
def test_garp_not_flooded_makes_flood_mode_trap_requests(garp: str) -> None:
    knobs = SdnConfig(profile="l2-plain", garp=garp).resolve()  # type: ignore[arg-type]
    assert knobs.controller_needed and knobs.traps_requests


@pytest.mark.parametrize(
    ("value", "ttl"), [("sticky", None), ("on-garp", None), ("ttl=3", 3.0), ("ttl=0.25s", 0.25)]
)
def test_update_policies_parse(value: str, ttl: float | None) -> None:
    assert parse_update(value) == ttl


@pytest.mark.parametrize("value", ["ttl=0", "ttl=", "ttl=-1", "forever", "ttl=1m"])
def test_bad_update_policies_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not an update policy"):
        parse_update(value)
    with pytest.raises(ValidationError):
        SdnConfig(profile="arp-caching", update=value)


def test_learning_knobs_need_proxy_learning() -> None:
    with pytest.raises(ValidationError, match="only applies with arp: proxy-learning"):
        SdnConfig(profile="neutron-ovs-ofw", update="on-garp")
    SdnConfig(profile="neutron-ovs-ofw", arp="proxy-learning", update="on-garp")


def test_on_garp_needs_to_see_garps() -> None:
    with pytest.raises(ValidationError, match="garp is dropped"):
        SdnConfig(profile="cloud-l3", update="on-garp")


def test_knobs_are_frozen_and_complete() -> None:
    with pytest.raises(ValidationError):
        Knobs(broadcast="forward")  # type: ignore[call-arg]


def test_seed_runs_the_arp_caching_profile() -> None:
    (net,) = load_scenario(DEFAULT_SCENARIO).networks
    assert net.sdn.profile == "arp-caching"


SCENARIO = """\
name: s
networks:
  - name: n
    subnets: [{cidr: 10.0.0.0/24}]
    sdn: SDN
instances:
  - name: a
    ports: [{network: n, fixed_ips: [10.0.0.5]}]
"""


@pytest.mark.parametrize(
    ("sdn", "field", "words"),
    [
        ("{profile: aws}", "networks[0].sdn.profile", "'l2-plain'"),
        ("{profile: ovn, bcast: drop}", "networks[0].sdn.bcast", "unknown field 'bcast'"),
        ("{update: ttl=0}", "networks[0].sdn.update", "is not an update policy"),
        ("{port_security: paired}", "networks[0].sdn.port_security", "'strict-pair'"),
        ("{learn_from: [arp]}", "networks[0].sdn.learn_from[0]", "'arp-reply'"),
        ("{profile: ovn, arp_miss: drop}", "networks[0].sdn", "only applies with arp"),
        ("{bind_pairs: true}", "networks[0].sdn.bind_pairs", "arp is flood"),
    ],
)
def test_scenario_errors_are_one_line_with_file_line_and_field(
    sdn: str, field: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(SCENARIO.replace("SDN", sdn), "s.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"s.yaml:5: {field}"), message
    assert words in message
