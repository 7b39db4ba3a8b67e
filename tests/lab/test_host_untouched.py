"""Host untouched, proven (issue 17): a whole scenario run leaves the root namespace as it was.

:mod:`lab.host_state` reads a namespace whole (links, addresses, routes and rules of every
table and both families, the nft ruleset, every readable network sysctl) and the mount
table; :func:`lab.host_state.differences` names what changed.

The whole-run test compares the root namespace before and after, not a lab's own things:
nothing any lab does, here or in another pytest-xdist worker, happens in the root namespace
(every interface, address, route, nft table and sysctl a lab makes is made inside a
namespace of its sandbox, docs/architecture.md#sandbox-and-nodes), so a lab running beside
this one cannot change what it compares, and any difference is a real breach of that rule.
The other test proves the check can fail, in a scratch namespace playing the host: the root
namespace itself is never changed to prove it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import linux
from lab.host_state import HostState, differences, snapshot
from lab.runner import ScenarioRun, StepResult
from lab.scenario import load_scenario
from tests.support.hoststate import assert_namespaces_gone

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
#: Quick (about 10 s) and broad: the neutron-ovs-hybrid SDN profile (its nft port-security
#: table and SDN controller in the fabric), allowed address pairs changed at run time, VMAC
#: macvlans, a fault (``stop``), the prober and the capture.
SCENARIO = REPO / "scenarios" / "neutron-ovs-vmac.yaml"


def test_a_whole_scenario_run_leaves_the_host_as_it_was(impl: str) -> None:
    before = snapshot()
    during: list[list[str]] = []
    fabric_tables: list[str] = []

    def progress(result: StepResult) -> None:
        # Mid-run, with the whole lab up: the root namespace is already as it was, and the
        # fabric's namespace holds the SDN's nft table the root one must not.
        if not during:
            during.append(differences(before, snapshot()))
            fabric = snapshot(f"/proc/{run.lab.fabric.pid}/ns/net")
            fabric_tables.extend(what for what, _ in fabric.nft if what.startswith("table "))

    run = ScenarioRun(load_scenario(SCENARIO), impl=impl, progress=progress)
    report = run.execute()
    after = snapshot()

    assert differences(before, after) == []
    assert during == [[]], "the root namespace changed while the lab was up"
    assert "table bridge vrrp_lab" in fabric_tables, "the SDN profile's table was not in use"
    played = [step.name for step in report.steps if not step.skipped]
    assert len(played) == len(run.scenario.steps), f"not every step was played: {played}"
    assert len(report.failovers) == 1, "the stop fault was not measured"


@pytest.fixture
def scratch_netns() -> Iterator[str]:
    """A network namespace of its own, held by one process; its ``/proc/PID/ns/net``.

    The holder ends when its stdin closes, at the latest when this process dies (its
    parent-death signal): no bind mount, no name under /run/netns, nothing to leave behind.
    """
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sh", "-c", "echo ready; exec cat >/dev/null"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=linux.set_parent_death_signal,
    )
    inodes: set[int] = set()
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready", "the scratch namespace's holder"
        path = f"/proc/{holder.pid}/ns/net"
        inodes.add(os.stat(path).st_ino)
        yield path
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()  # the holder's cue to end; what was planted goes with it
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        holder.stdout.close()
    assert_namespaces_gone(inodes, timeout=10, whose="the scratch namespace")


def inside(netns: str, *argv: str) -> None:
    """Run ``argv`` in the network namespace ``netns`` (a namespace file)."""
    subprocess.run(["nsenter", f"--net={netns}", "--", *argv], check=True, capture_output=True)


def test_a_planted_change_is_found(scratch_netns: str) -> None:
    root_before = snapshot()
    quiet = snapshot(scratch_netns)
    assert differences(quiet, snapshot(scratch_netns)) == [], "a snapshot is not stable"
    assert differences(root_before, quiet) != [], "the scratch namespace is not another one"

    inside(scratch_netns, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
    nonlocal_bind = snapshot(scratch_netns)
    assert differences(quiet, nonlocal_bind) == ["sysctl net.ipv4.ip_nonlocal_bind: 0 -> 1"]

    inside(scratch_netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    forwarding = snapshot(scratch_netns)
    # The kernel turns forwarding on, and ICMP redirects off, for "all", "default" and every
    # interface with it (inet_forward_change): those lines are the same change.
    assert differences(nonlocal_bind, forwarding) == [
        "sysctl net.ipv4.conf.all.accept_redirects: 1 -> 0",
        "sysctl net.ipv4.conf.all.forwarding: 0 -> 1",
        "sysctl net.ipv4.conf.default.forwarding: 0 -> 1",
        "sysctl net.ipv4.conf.lo.forwarding: 0 -> 1",
        "sysctl net.ipv4.ip_forward: 0 -> 1",
    ]

    inside(scratch_netns, "nft", "add table inet vrrp_lab_planted")
    with_table = snapshot(scratch_netns)
    assert differences(forwarding, with_table) == ["nft table inet vrrp_lab_planted added"]

    inside(scratch_netns, "ip", "link", "add", "planted0", "type", "bridge")
    with_link = snapshot(scratch_netns)
    link, *sysctls = differences(with_table, with_link)
    assert link == "link planted0 added (bridge)"
    assert len(sysctls) == 1
    assert re.fullmatch(
        r"sysctl net\.\*\.\{conf,neigh\}\.planted0\.\*: \d+ added with link planted0", sysctls[0]
    )

    assert differences(quiet, with_link) == [
        "link planted0 added (bridge)",
        "nft table inet vrrp_lab_planted added",
        *differences(nonlocal_bind, forwarding)[:-1],
        "sysctl net.ipv4.ip_forward: 0 -> 1",
        "sysctl net.ipv4.ip_nonlocal_bind: 0 -> 1",
        sysctls[0],
    ]
    root_after = snapshot()
    assert differences(root_before, root_after) == [], "planting touched the root namespace"


def test_the_snapshot_reads_every_part() -> None:
    """The root namespace's snapshot is not empty where a host never is."""
    state: HostState = snapshot()
    assert any(link.name == "lo" for link in state.links)
    assert state.addresses and state.routes and state.rules
    assert dict(state.sysctls).get("net.ipv4.ip_forward") in ("0", "1")
