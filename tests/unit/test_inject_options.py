"""`vrrp-lab inject`'s options become the same :class:`Inject` a scenario step would hold, and
bad input becomes one line naming the field and the fix (no namespaces)."""

from __future__ import annotations

import pytest
import yaml

from lab.errors import UsageError
from lab.inject import spec_from_options
from lab.steps import Inject


def test_settings_build_the_model_a_step_would() -> None:
    step = yaml.safe_load(
        """
        node: mallory
        advert: {priority: 255, interval: 0.1, to: [10.200.51.32, 10.200.51.33]}
        rate: 20
        duration: 2
        """
    )
    options = spec_from_options(
        "mallory",
        "advert",
        ["priority=255", "interval=0.1", "to=[10.200.51.32, 10.200.51.33]"],
        rate=20,
        duration=2,
    )
    assert options == Inject.model_validate(step)


def test_a_mac_stays_a_mac_and_top_level_keys_go_to_the_injection() -> None:
    # YAML 1.1 would read 12:34:56:12:34:56 as a base-60 integer: plain values stay text.
    spec = spec_from_options(
        "mallory",
        "arp-reply",
        ["ip=10.200.51.10", "mac=12:34:56:12:34:56", "src-mac=fa:16:3e:66:6d:61", "seed=7"],
    )
    assert spec.arp_reply is not None and spec.arp_reply.mac == "12:34:56:12:34:56"
    assert (spec.src_mac, spec.seed) == ("fa:16:3e:66:6d:61", 7)


def test_options_override_a_spec() -> None:
    base = yaml.safe_load("{node: ha_first, garp: {ip: 10.200.51.10}, rate: 5}")
    spec = spec_from_options("mallory", "na", ["ip=2001:db8:51::10"], base=base, duration=0)
    assert (spec.node, spec.kind, spec.rate, spec.duration) == ("mallory", "na", 5, 0)
    assert spec_from_options(None, None, ["mac=random"], base=base).garp is not None


@pytest.mark.parametrize(
    ("kind", "settings", "words"),
    [
        ("advert", ["priority=300"], ["advert.priority", "255", "--set priority="]),
        ("advert", ["prio=3"], ["advert.prio", "not permitted", "priority, interval"]),
        ("advert", ["to=[10.200.51.32"], ["--set 'to=[10.200.51.32'", "YAML list"]),
        ("garp", [], ["garp.ip", "Field required", "--set ip="]),
        ("na", ["ip=fe80::1", "mac=nope"], ["na.mac", "not a MAC address", "--set mac="]),
        ("advert", ["ttl"], ["--set 'ttl'", "KEY=VALUE"]),
        (None, [], ["--kind advert|garp|arp-reply|na"]),
    ],
)
def test_bad_input_is_one_line_with_the_field_and_the_fix(
    kind: str | None, settings: list[str], words: list[str]
) -> None:
    with pytest.raises(UsageError) as caught:
        spec_from_options("mallory", kind, settings)
    message = str(caught.value)
    assert "\n" not in message
    assert all(w in message for w in words), message


def test_the_node_is_required() -> None:
    with pytest.raises(UsageError, match="--from NODE"):
        spec_from_options(None, "garp", ["ip=10.0.0.1"])
