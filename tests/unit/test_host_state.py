"""A namespace's snapshot and its differences (lab.host_state): the pure parts, no privileges."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from lab.host_state import (
    VOLATILE_SYSCTLS,
    HostState,
    Link,
    differences,
    lab_mounts,
    nft_entries,
    steady_ruleset,
    steady_sysctls,
    sysctl_name,
)

ETH0 = Link(
    name="eth0",
    index=4,
    kind="",
    mac="02:fc:00:00:00:01",
    mtu=1400,
    flags=("UP", "BROADCAST", "RUNNING", "MULTICAST", "LOWER_UP"),
    operstate="UP",
    master="",
)
LO = Link("lo", 1, "", "00:00:00:00:00:00", 65536, ("UP", "LOOPBACK"), "UNKNOWN", "")

META = {"metainfo": {"version": "1.0.6", "json_schema_version": 1}}
TABLE = {"table": {"family": "inet", "name": "filter", "handle": 1}}
CHAIN = {
    "chain": {
        "family": "inet",
        "table": "filter",
        "name": "input",
        "handle": 1,
        "type": "filter",
        "hook": "input",
        "prio": 0,
        "policy": "accept",
    }
}


def rule(handle: int, port: int, packets: int = 0) -> dict:
    return {
        "rule": {
            "family": "inet",
            "table": "filter",
            "chain": "input",
            "handle": handle,
            "expr": [
                {"match": {"op": "==", "left": {"payload": {"field": "dport"}}, "right": port}},
                {"counter": {"packets": packets, "bytes": packets * 60}},
                {"accept": None},
            ],
        }
    }


def ruleset(*items: dict) -> dict:
    return {"nftables": [META, *items]}


BASE = HostState(
    links=(ETH0, LO),
    addresses=("eth0 inet prefixlen=24 address=192.0.2.2", "lo inet prefixlen=8 address=127.0.0.1"),
    routes=("inet dst_len=0 table=254 gateway=192.0.2.1 oif=eth0",),
    rules=("inet table=254 priority=32766",),
    nft=nft_entries(ruleset(TABLE, CHAIN, rule(2, 22))),
    sysctls=(
        ("net.ipv4.conf.eth0.forwarding", "0"),
        ("net.ipv4.ip_forward", "0"),
        ("net.ipv6.conf.eth0.forwarding", "0"),
    ),
    mounts=("22 1 0:21 / /proc rw,nosuid - proc proc rw",),
)


def test_the_same_state_has_no_differences() -> None:
    assert differences(BASE, BASE) == []
    assert differences(BASE, HostState.from_json(BASE.as_json())) == []


def test_a_changed_sysctl_is_one_line_with_both_values() -> None:
    after = dataclasses.replace(
        BASE,
        sysctls=(
            ("net.ipv4.conf.eth0.forwarding", "0"),
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.eth0.forwarding", "0"),
        ),
    )
    assert differences(BASE, after) == ["sysctl net.ipv4.ip_forward: 0 -> 1"]


def test_a_sysctl_that_came_or_went_alone_is_a_module_s_not_a_difference() -> None:
    # A lab's first conntrack rule loads nf_conntrack: net.netfilter.* appear everywhere.
    after = dataclasses.replace(
        BASE, sysctls=(*BASE.sysctls[1:], ("net.netfilter.nf_conntrack_max", "262144"))
    )
    assert differences(BASE, after) == []


def test_an_added_link_is_one_line_and_its_sysctls_one_more() -> None:
    dummy = Link("vrrp-xyz", 9, "dummy", "aa:bb:cc:dd:ee:ff", 1500, (), "DOWN", "")
    after = dataclasses.replace(
        BASE,
        links=(*BASE.links, dummy),
        sysctls=(
            *BASE.sysctls,
            ("net.ipv4.conf.vrrp-xyz.forwarding", "0"),
            ("net.ipv4.neigh.vrrp-xyz.retrans_time_ms", "1000"),
            ("net.ipv6.conf.vrrp-xyz.forwarding", "0"),
        ),
    )
    assert differences(BASE, after) == [
        "link vrrp-xyz added (dummy)",
        "sysctl net.*.{conf,neigh}.vrrp-xyz.*: 3 added with link vrrp-xyz",
    ]
    assert differences(after, BASE) == [
        "link vrrp-xyz removed (dummy)",
        "sysctl net.*.{conf,neigh}.vrrp-xyz.*: 3 removed with link vrrp-xyz",
    ]


def test_a_link_whose_name_has_a_dot_keeps_its_sysctls_together() -> None:
    vlan = Link("eth0.100", 10, "vlan", ETH0.mac, 1400, ("UP",), "UP", "")
    after = dataclasses.replace(
        BASE,
        links=(*BASE.links, vlan),
        sysctls=(*BASE.sysctls, ("net.ipv4.conf.eth0/100.forwarding", "0")),
    )
    assert differences(BASE, after)[1] == (
        "sysctl net.*.{conf,neigh}.eth0.100.*: 1 added with link eth0.100"
    )


def test_each_changed_field_of_a_link_is_a_line() -> None:
    changed = dataclasses.replace(
        ETH0, mtu=1500, master="br0", flags=("BROADCAST", "MULTICAST"), operstate="DOWN"
    )
    after = dataclasses.replace(BASE, links=(changed, LO))
    assert differences(BASE, after) == [
        "link eth0 mtu: 1400 -> 1500",
        "link eth0 flags: UP,BROADCAST,RUNNING,MULTICAST,LOWER_UP -> BROADCAST,MULTICAST",
        "link eth0 operstate: UP -> DOWN",
        "link eth0 master: - -> br0",
    ]


def test_a_link_replaced_under_the_same_name_shows_its_new_index() -> None:
    after = dataclasses.replace(BASE, links=(dataclasses.replace(ETH0, index=12), LO))
    assert differences(BASE, after) == ["link eth0 index: 4 -> 12"]


def test_addresses_routes_rules_and_mounts_are_lines_added_or_removed() -> None:
    after = dataclasses.replace(
        BASE,
        addresses=BASE.addresses[:1],
        routes=(*BASE.routes, "inet dst_len=24 table=100 dst=10.0.0.0 oif=eth0"),
        rules=("inet table=100 priority=100", *BASE.rules),
        mounts=(*BASE.mounts, "40 22 0:35 / /run/netns rw - tmpfs tmpfs rw"),
    )
    assert differences(BASE, after) == [
        "address removed: lo inet prefixlen=8 address=127.0.0.1",
        "route added: inet dst_len=24 table=100 dst=10.0.0.0 oif=eth0",
        "rule added: inet table=100 priority=100",
        "mount added: 40 22 0:35 / /run/netns rw - tmpfs tmpfs rw",
    ]


def test_a_duplicate_line_counts() -> None:
    after = dataclasses.replace(BASE, routes=BASE.routes * 2)
    assert differences(BASE, after) == [f"route added: {BASE.routes[0]}"]


def test_an_added_nft_table_is_one_line_however_much_it_holds() -> None:
    other = {"table": {"family": "bridge", "name": "vrrp_lab", "handle": 7}}
    chain = {"chain": {"family": "bridge", "table": "vrrp_lab", "name": "pre", "handle": 1}}
    after = dataclasses.replace(
        BASE, nft=nft_entries(ruleset(TABLE, CHAIN, rule(2, 22), other, chain))
    )
    assert differences(BASE, after) == ["nft table bridge vrrp_lab added"]
    assert differences(after, BASE) == ["nft table bridge vrrp_lab removed"]


def test_a_rule_added_to_a_chain_is_named_with_its_expression() -> None:
    after = dataclasses.replace(
        BASE, nft=nft_entries(ruleset(TABLE, CHAIN, rule(2, 22), rule(3, 80)))
    )
    (line,) = differences(BASE, after)
    assert line.startswith("nft rule added to inet filter input: [")
    assert '"right":80' in line


def test_reordered_rules_are_a_difference() -> None:
    before = dataclasses.replace(
        BASE, nft=nft_entries(ruleset(TABLE, CHAIN, rule(2, 22), rule(3, 80)))
    )
    after = dataclasses.replace(
        BASE, nft=nft_entries(ruleset(TABLE, CHAIN, rule(2, 80), rule(3, 22)))
    )
    assert differences(before, after) == ["nft rules of inet filter input reordered"]


def test_a_changed_chain_says_before_and_after() -> None:
    dropping = {"chain": {**CHAIN["chain"], "policy": "drop"}}
    after = dataclasses.replace(BASE, nft=nft_entries(ruleset(TABLE, dropping, rule(2, 22))))
    (line,) = differences(BASE, after)
    assert line.startswith("nft chain inet filter input changed: ")
    assert '"policy":"accept"' in line and '"policy":"drop"' in line


def test_counters_handles_and_expiry_do_not_count() -> None:
    """A rule's counter moves with traffic and a re-created object gets a new handle: neither
    is a change of the ruleset."""
    busy = ruleset({"table": {**TABLE["table"], "handle": 5}}, CHAIN, rule(9, 22, packets=1234))
    assert nft_entries(busy) == BASE.nft
    element = {"elem": {"val": "10.0.0.1", "timeout": 60, "expires": 17, "counter": {"packets": 3}}}
    assert steady_ruleset([element]) == [
        {"elem": {"val": "10.0.0.1", "timeout": 60, "counter": {}}}
    ]
    quota = {"family": "inet", "table": "t", "name": "q", "bytes": 100, "used": 42}
    assert steady_ruleset(quota, "quota") == {
        "family": "inet",
        "table": "t",
        "name": "q",
        "bytes": 100,
    }


def test_volatile_sysctls_are_left_out_and_the_rest_sorted() -> None:
    values = {name: "x" for name in VOLATILE_SYSCTLS} | {"net.ipv4.ip_forward": "0", "net.a": "1"}
    assert steady_sysctls(values) == (("net.a", "1"), ("net.ipv4.ip_forward", "0"))


def test_sysctl_names_are_written_as_sysctl_writes_them() -> None:
    assert sysctl_name("/proc/sys/net/ipv4/ip_forward") == "net.ipv4.ip_forward"
    assert sysctl_name("/proc/sys/net/ipv4/conf/eth0.100/rp_filter") == (
        "net.ipv4.conf.eth0/100.rp_filter"
    )


NAMES = [f"net.ipv{v}.{name}" for v in (4, 6) for name in ("a", "b_c", "conf.all.d", "e")]
VALUES = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["0", "1", "2"]), max_size=8)


@given(VALUES, VALUES)
def test_sysctl_differences_are_one_line_per_changed_value(old: dict, new: dict) -> None:
    before = dataclasses.replace(BASE, sysctls=steady_sysctls(old))
    after = dataclasses.replace(BASE, sysctls=steady_sysctls(new))
    lines = differences(before, after)
    changed = [k for k in old.keys() & new.keys() if old[k] != new[k]]
    # One line per changed value; a name that came or went alone is a module's (not counted).
    assert len(lines) == len(changed)
    assert all(any(line.startswith(f"sysctl {k}: ") for line in lines) for k in changed)


def test_only_the_mounts_a_lab_could_leave_are_compared() -> None:
    lines = [
        "22 1 0:21 / /proc rw,nosuid - proc proc rw",
        "40 22 0:35 / /run/user/0 rw - tmpfs tmpfs rw",  # a login's: not a lab's doing
        "41 22 0:4 net:[4026532] /run/netns/blue rw - nsfs nsfs rw",
        "42 22 0:36 / /tmp/vrrp-lab-x/mnt rw - tmpfs tmpfs rw",
        "43 22 0:4 net:[4026533] /somewhere rw - nsfs nsfs rw",
    ]
    assert lab_mounts(lines) == tuple(sorted(lines[2:]))
