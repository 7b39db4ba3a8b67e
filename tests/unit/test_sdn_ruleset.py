"""The nftables bridge table rendering and set-element diffs (pure, no nft needed)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from lab.sdn.profiles import PROFILES, SdnConfig
from lab.sdn.ruleset import (
    NFLOG_GROUP,
    NetworkSpec,
    Pair,
    PortSpec,
    element_changes,
    link_local,
    render_table,
    set_elements,
)

PORT = PortSpec(
    id="913c4131-0cc3-4df4-9f7e-b4cf4ae885ca",
    instance="ha_first",
    network="ha_lab",
    tap="tap913c4131-0c",
    mac="fa:16:3e:8d:dc:bb",
    fixed_ips=("10.200.51.32",),
)
OTHER = PortSpec(
    id="e220e2d9-f4de-4941-92e0-640ee352aa4f",
    instance="ha_second",
    network="ha_lab",
    tap="tape220e2d9-f4",
    mac="fa:16:3e:f3:a9:a3",
    fixed_ips=("10.200.51.33",),
    security=False,
)
VMAC = "00:00:5e:00:01:01"
K = PORT.key


def table(profile: str, **overrides: object) -> str:
    knobs = SdnConfig(profile=profile, **overrides).resolve()  # type: ignore[arg-type]
    return render_table([NetworkSpec("ha_lab", knobs, (PORT, OTHER))], {})


def test_link_local_is_the_kernels_eui64() -> None:
    assert str(link_local("fa:16:3e:8d:dc:bb")) == "fe80::f816:3eff:fe8d:dcbb"


def test_pair_without_mac_means_the_port_mac() -> None:
    sets = set_elements("strict-pair", PORT, [Pair("10.200.51.10")])
    assert sets[f"{K}_p4"] == {
        "fa:16:3e:8d:dc:bb . 10.200.51.32",
        "fa:16:3e:8d:dc:bb . 10.200.51.10",
    }
    assert sets[f"{K}_p6"] == {"fa:16:3e:8d:dc:bb . fe80::f816:3eff:fe8d:dcbb"}
    assert sets[f"{K}_mac"] == {"fa:16:3e:8d:dc:bb"}


def test_strict_pair_keeps_mac_and_ip_together() -> None:
    sets = set_elements("strict-pair", PORT, [Pair("10.200.51.10", VMAC), Pair("10.0.0.0/28")])
    assert f"{VMAC} . 10.200.51.10" in sets[f"{K}_p4"]
    assert "fa:16:3e:8d:dc:bb . 10.0.0.0/28" in sets[f"{K}_p4"]
    assert f"{VMAC} . 10.200.51.32" not in sets[f"{K}_p4"]
    assert f"{VMAC} . fe80::200:5eff:fe00:101" in sets[f"{K}_p6"]  # the pair MAC's link-local


def test_separate_and_ip_only_sets() -> None:
    pairs = [Pair("10.200.51.10", VMAC)]
    separate = set_elements("separate", PORT, pairs)
    assert separate[f"{K}_mac"] == {"fa:16:3e:8d:dc:bb", VMAC}
    assert separate[f"{K}_ip4"] == {"10.200.51.32", "10.200.51.10"}
    ip_only = set_elements("ip-only", PORT, pairs)
    assert f"{K}_mac" not in ip_only
    assert ip_only[f"{K}_ip4"] == {"10.200.51.32", "10.200.51.10"}


def test_overlapping_pairs_collapse_for_interval_sets() -> None:
    sets = set_elements("ip-only", PORT, [Pair("10.200.51.0/24"), Pair("10.200.51.10")])
    assert sets[f"{K}_ip4"] == {"10.200.51.0/24"}


def chain(text: str, name: str) -> str:
    """The body of chain ``name`` in a rendered table."""
    start = text.index(f"\tchain {name} {{")
    return text[start : text.index("\t}", start)]


def test_port_security_at_prerouting_policy_at_forward() -> None:
    text = table("neutron-ovs-ofw")
    assert "type filter hook prerouting priority -200" in chain(text, "prerouting")
    assert f'"{PORT.tap}" : goto port_{K}' in chain(text, "prerouting")
    # port_security_enabled: false skips the port chain
    assert f'"{OTHER.tap}" : goto net_n_ha_lab' in chain(text, "prerouting")
    forward = chain(text, "forward")
    assert "type filter hook forward priority -200" in forward
    assert f'"{PORT.tap}" : goto fwd_n_ha_lab' in forward
    # spoofed frames drop before the bridge learns their MAC; nothing else drops there
    assert "drop" not in chain(text, "net_n_ha_lab")


def test_strict_pair_rules_check_ether_ip_and_arp() -> None:
    text = table("ovn")
    assert f"ether type ip ether saddr . ip saddr @{K}_p4 goto net_n_ha_lab" in text
    assert f"ether type ip6 ether saddr . ip6 saddr @{K}_p6 goto net_n_ha_lab" in text
    assert (
        f"ether type arp ether saddr . arp saddr ip @{K}_p4 "
        f"arp saddr ether . arp saddr ip @{K}_p4 goto net_n_ha_lab"
    ) in text
    ofw = table("neutron-ovs-ofw")
    assert f"ether type arp ether saddr . arp saddr ip @{K}_p4 goto" in ofw  # no sha check


def test_separate_rules_check_mac_set_then_ip_set() -> None:
    text = table("neutron-ovs-hybrid")
    assert f"ether saddr != @{K}_mac" in text
    assert f"ether type ip ip saddr @{K}_ip4 goto" in text
    assert f"ether type arp arp saddr ip @{K}_ip4 goto" in text


def test_broadcast_and_multicast_policy() -> None:
    plain = chain(table("l2-plain"), "fwd_n_ha_lab")
    assert "ff:ff:ff:ff:ff:ff drop" not in plain
    cloud = chain(table("cloud-l3"), "fwd_n_ha_lab")
    assert "ether daddr ff:ff:ff:ff:ff:ff drop" in cloud
    assert "ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 drop" in cloud
    # ARP is governed by the ARP mode: accepted before the broadcast policy
    policy_drop = cloud.index("\tether daddr ff:ff:ff:ff:ff:ff drop")
    assert cloud.index("ether type arp accept") < policy_drop
    hybrid = chain(table("neutron-ovs-hybrid"), "fwd_n_ha_lab")
    assert "ip daddr 224.0.0.0/24 ip protocol != 112 drop" in hybrid


def test_arp_traps_copy_at_prerouting_and_drop_at_forward() -> None:
    log = f'log prefix "trap" group {NFLOG_GROUP}'
    assert "log" not in table("l2-plain")
    responder = table("neutron-ovs-ofw")
    request = "ether type arp arp operation request arp daddr ip @n_ha_lab_fixed"
    assert f"{request} {log} accept" in chain(responder, "net_n_ha_lab")
    assert f"{request} drop" in chain(responder, "fwd_n_ha_lab")
    assert "10.200.51.32, 10.200.51.33" in responder
    caching = table("arp-caching")
    copies, policy = chain(caching, "net_n_ha_lab"), chain(caching, "fwd_n_ha_lab")
    assert f"ether type arp arp operation request {log} accept" in copies
    assert f"ether daddr ff:ff:ff:ff:ff:ff {log} accept" in copies  # broadcast (GARP) replies
    assert f'arp operation reply log prefix "learn" group {NFLOG_GROUP}\n' in copies
    assert "ether type arp arp operation request drop" in policy
    learn_ip = table("arp-caching", learn_from=["ip"])
    assert 'ether type ip log prefix "learn"' in learn_ip


def test_element_changes_touch_only_what_changed() -> None:
    old = set_elements("strict-pair", PORT, [])
    new = set_elements("strict-pair", PORT, [Pair("10.200.51.10")])
    script = element_changes(old, new)
    assert script == (
        f"add element bridge vrrp_lab {K}_p4 {{ fa:16:3e:8d:dc:bb . 10.200.51.10 }}\n"
    )
    assert element_changes(new, new) == ""
    back = element_changes(new, old)
    assert back.startswith("delete element") and "add element" not in back


def test_element_changes_delete_before_adding() -> None:
    old = set_elements("ip-only", PORT, [Pair("10.0.0.0/25")])
    new = set_elements("ip-only", PORT, [Pair("10.0.0.0/24")])
    lines = element_changes(old, new).splitlines()
    assert lines[0].startswith("delete element") and lines[-1].startswith("add element")


networks = st.builds(
    lambda a, n: ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{n}", strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(8, 32),
)
pair_lists = st.lists(
    st.builds(lambda net, mac: Pair(str(net), mac), networks, st.sampled_from([None, VMAC])),
    max_size=5,
)


@given(pair_lists, pair_lists, st.sampled_from(["strict-pair", "separate", "ip-only"]))
def test_applying_a_diff_yields_the_new_sets(
    before: list[Pair], after: list[Pair], mode: str
) -> None:
    old, new = set_elements(mode, PORT, before), set_elements(mode, PORT, after)
    current = {name: set(elements) for name, elements in old.items()}
    for line in element_changes(old, new).splitlines():
        verb, _, _, _, name, rest = line.split(" ", 5)
        elements = {e.strip() for e in rest.strip("{} ").split(",")}
        if verb == "add":
            assert not elements & current[name]
            current[name] |= elements
        else:
            assert elements <= current[name]
            current[name] -= elements
    assert current == new


@given(pair_lists)
def test_interval_elements_never_overlap(pairs: list[Pair]) -> None:
    for name, elements in set_elements("ip-only", PORT, pairs).items():
        nets = [ipaddress.ip_network(e) for e in elements]
        for i, a in enumerate(nets):
            for b in nets[i + 1 :]:
                assert not a.overlaps(b), (name, a, b)


def test_every_profile_renders() -> None:
    for name in PROFILES:
        assert table(name).startswith("add table bridge vrrp_lab\ntable bridge vrrp_lab {")
