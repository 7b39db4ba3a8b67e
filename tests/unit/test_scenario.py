"""Scenario loading and validation: every bad input is one line naming file, line, field and fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import ScenarioError
from lab.scenario import (
    DEFAULT_SCENARIO,
    SCHEMA_FILE,
    json_schema_text,
    load_scenario,
    parse_scenario,
)

SEED_TEXT = DEFAULT_SCENARIO.read_text()


def test_seed_matches_the_blog_post() -> None:
    seed = load_scenario(DEFAULT_SCENARIO)
    ports = {
        inst.name: (port.mac_address, str(port.fixed_ips[0].ip_address), ifname)
        for inst, port, ifname in seed.ports()
    }
    assert ports == {
        "ha_first": ("fa:16:3e:8d:dc:bb", "10.200.51.32", "ens3"),
        "ha_second": ("fa:16:3e:f3:a9:a3", "10.200.51.33", "ens3"),
        "observer": ("fa:16:3e:08:e6:15", "10.200.51.34", "ens3"),
    }
    (net,) = seed.networks
    assert str(net.subnets[0].cidr) == "10.200.51.0/24"
    assert str(net.subnets[0].allocation_pools[0]) == "10.200.51.32-10.200.51.254"
    assert [str(v.address) for v in seed.vips] == ["10.200.51.10"]


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("old", "new", "expected_field", "expected_words"),
    [
        (
            "mac_address: fa:16:3e:8d:dc:bb",
            "mac_address: fa:16:3e:8d:dc",
            "instances[0].ports[0].mac_address",
            "is not a MAC address",
        ),
        ("mtu: 576", "mtuu: 576", "networks[0].mtuu", "unknown field 'mtuu'"),
        ("mtu: 576", "mtu: 20", "networks[0].mtu", "greater than or equal to 68"),
        (
            "{address: 10.200.51.10, network: ha_lab}",
            "{address: 10.200.51.40, network: ha_lab}",
            "vips[0].address",
            "lies in allocation pool 10.200.51.32-10.200.51.254",
        ),
        (
            "fixed_ips: [10.200.51.33]",
            "fixed_ips: [10.200.52.33]",
            "instances[1].ports[0].fixed_ips[0]",
            "is in no subnet of network ha_lab",
        ),
        (
            "fixed_ips: [10.200.51.33]",
            "fixed_ips: [10.200.51.32]",
            "instances[1].ports[0].fixed_ips[0]",
            "already the fixed IP of ha_first",
        ),
        (
            "network: ha_lab\n        mac_address: fa:16:3e:08:e6:15",
            "network: ha_lob\n        mac_address: fa:16:3e:08:e6:15",
            "instances[2].ports[0].network",
            "unknown network 'ha_lob'",
        ),
        ("- name: ha_second", "- name: ha_first", "instances[1].name", "appears twice"),
        (
            "cidr: 10.200.51.0/24",
            "cidr: 10.200.51.1/24",
            "networks[0].subnets[0].cidr",
            "not a network address",
        ),
        (
            "gateway_ip: 10.200.51.1",
            "gateway_ip: 10.200.9.1",
            "networks[0].subnets[0].gateway_ip",
            "outside cidr",
        ),
        ("- name: observer", "- name: 3observer", "instances[2].name", "not a valid instance"),
    ],
)
def test_bad_field_is_one_line_with_file_line_and_path(
    old: str, new: str, expected_field: str, expected_words: str
) -> None:
    assert old in SEED_TEXT
    text = SEED_TEXT.replace(old, new, 1)
    message = error_of(text)
    assert message.startswith("s.yaml:"), message
    assert f": {expected_field}" in message and expected_words in message, message
    line = int(message.split(":")[1])
    first_changed = SEED_TEXT[: SEED_TEXT.index(old)].count("\n") + 1
    assert abs(line - first_changed) <= 1, (line, first_changed, message)


def test_missing_field() -> None:
    message = error_of("name: x\nnetworks: []\n")
    assert "instances: this field is required" in message or "networks" in message


def test_invalid_yaml_names_the_line() -> None:
    message = error_of("name: x\nnetworks:\n  - name: [unclosed\n")
    assert message.startswith("s.yaml:") and "not valid YAML" in message


def test_missing_file_says_how_to_find_scenarios(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="vrrp-lab scenarios"):
        load_scenario(tmp_path / "nope.yaml")


def test_committed_json_schema_is_current() -> None:
    committed = SCHEMA_FILE
    assert committed.read_text() == json_schema_text(), "run `make schema` and commit the result"


def test_cli_bad_scenario_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SEED_TEXT.replace("mtu: 576", "mtu: lots"))
    res = subprocess.run(
        [sys.executable, "-m", "lab", "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml:" in lines[0] and "networks[0].mtu" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_cli_usage_error_exits_2() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "lab", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2 and "invalid choice" in res.stderr and "Traceback" not in res.stderr


def test_reachable_and_unreachable_name_the_address_the_observer_probes() -> None:
    # The seed probes its one VIP, 10.200.51.10: another address would be judged by its probes.
    text = SEED_TEXT.replace("unreachable: 10.200.51.10", "unreachable: 10.200.51.99")
    message = error_of(text)
    assert "expect.unreachable: the observer probes 10.200.51.10 only, not 10.200.51.99" in message
    assert parse_scenario(SEED_TEXT, "s.yaml").steps  # the VIP itself is fine


def test_host_is_refused_where_it_would_mean_nothing() -> None:
    """``instances[].host`` places an instance on an OVN chassis; the emulated fabric is one
    bridge, so there it is an error naming the field, not a silent no-op."""
    old = "  - name: ha_second\n"
    assert old in SEED_TEXT
    message = error_of(SEED_TEXT.replace(old, old + "    host: compute-2\n", 1))
    assert ": instances[1].host" in message and "emulated fabric is one bridge" in message


def test_more_hosts_than_chassis_is_one_line() -> None:
    assert "sdn: {profile: arp-caching}" in SEED_TEXT
    text = SEED_TEXT.replace("sdn: {profile: arp-caching}", "sdn: {engine: ovn}", 1)
    for i, name in enumerate(("ha_first", "ha_second", "observer")):
        text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    host: c{i}\n", 1)
    assert parse_scenario(text.replace("host: c2", "host: c1"), "s.yaml").hosts() == ["c0", "c1"]
    message = error_of(text)
    assert "3 hosts (c0, c1, c2)" in message and "at most 2 chassis" in message, message
