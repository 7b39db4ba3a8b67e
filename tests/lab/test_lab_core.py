"""The lab core on the seed topology: nodes, fabric, addressing, API and CLI access (issue 2)."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lab import Lab, linux
from lab.errors import UsageError
from lab.registry import running_labs
from lab.wait import wait_until

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def test_nodes_are_named_and_private(module_lab: Lab) -> None:
    first, second = module_lab.node("ha_first"), module_lab.node("ha_second")
    assert first.run("hostname").stdout.strip() == "ha-first"
    assert second.run("hostname").stdout.strip() == "ha-second"
    first.run("echo first > /run/marker && echo first > /tmp/marker")
    assert second.run("ls /run/marker /tmp/marker", check=False).returncode != 0
    assert first.path("/run/marker").read_text() == "first\n"
    assert not Path("/run/marker").exists() and not Path("/tmp/marker").exists()
    # /sys is this namespace's: it lists ens3, not the host's interfaces.
    assert sorted(first.run("ls /sys/class/net").stdout.split()) == ["ens3", "lo"]


def test_instance_interfaces_follow_the_ports(module_lab: Lab) -> None:
    for node in module_lab.nodes.values():
        port = node.ports[0]
        (link,) = json.loads(node.run("ip -j link show ens3").stdout)
        assert link["address"] == port.mac
        assert link["mtu"] == 576  # the seed network's MTU
        addrs = json.loads(node.run("ip -j -4 addr show ens3").stdout)[0]["addr_info"]
        assert [(a["local"], a["prefixlen"]) for a in addrs] == [(str(node.ip), 24)]
    tap = module_lab.port("ha_first").tap
    assert tap == "tap913c4131-0c"
    bridge = json.loads(module_lab.fabric.run(f"ip -j link show {tap}").stdout)[0]["master"]
    assert bridge == "br-ha_lab"


def test_instances_reach_each_other_but_not_the_vip(module_lab: Lab) -> None:
    observer = module_lab.node("observer")
    for name in ("ha_first", "ha_second"):
        observer.run(["ping", "-n", "-c", "1", "-W", "2", str(module_lab.node(name).ip)])
    res = observer.run(["ping", "-n", "-c", "1", "-W", "1", "10.200.51.10"], check=False)
    assert res.returncode != 0, "no router runs yet, so the VIP must not answer"


def test_port_lookup(module_lab: Lab) -> None:
    assert module_lab.port("ha_second").mac == "fa:16:3e:f3:a9:a3"
    assert module_lab.port("e220e2d9").instance.name == "ha_second"
    with pytest.raises(UsageError, match="ports are"):
        module_lab.port("nope")
    with pytest.raises(UsageError, match="its instances are: ha_first, ha_second, observer"):
        module_lab.node("nope")


def test_exec_from_another_terminal(module_lab: Lab) -> None:
    assert module_lab.id in [r.id for r in running_labs()]
    cli = [sys.executable, "-m", "lab"]
    res = subprocess.run(
        [*cli, "exec", "--lab", module_lab.id, "observer", "--", "hostname"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (res.returncode, res.stdout.strip()) == (0, "observer"), res.stderr
    res = subprocess.run(
        [*cli, "exec", "--lab", module_lab.id, "nobody", "--", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 2 and "has no node 'nobody'" in res.stderr


def test_interfaces_are_never_created_in_the_root_namespace() -> None:
    """Listen to the root namespace's link events while a lab is built and torn down: none."""
    rtm_newlink, rtm_dellink, rtmgrp_link = 16, 17, 1
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as mon:
        mon.bind((0, rtmgrp_link))
        with Lab.from_scenario(REPO / "scenarios" / "seed.yaml"):
            pass
        mon.setblocking(False)
        events = []
        while True:
            try:
                data = mon.recv(65536)
            except BlockingIOError:
                break
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (rtm_newlink, rtm_dellink):
                    events.append(kind)
                offset += max((length + 3) & ~3, 16)
    assert events == [], "the root namespace saw link events during a lab's life"


def test_processes_die_with_the_lab() -> None:
    with Lab.from_scenario(REPO / "scenarios" / "seed.yaml") as lab:
        node = lab.node("ha_first")
        proc = lab.node("observer").popen(["sleep", "600"])
        # A daemon that double-forks escapes its parent, but not the sandbox.
        node.run("setsid sleep 600 > /dev/null 2>&1 &")
        inode = node.netns_inode
        assert len(processes_in_netns(inode)) >= 2  # the keeper and the orphan
    assert proc.wait(timeout=10) == -9
    wait_until(
        lambda: processes_in_netns(inode),
        accept=lambda pids: not pids,
        timeout=10,
        what="every process of ha_first's namespace to die with the lab",
    )


def processes_in_netns(inode: int) -> list[int]:
    """Pids (as the runner sees them) of the processes living in the network namespace ``inode``."""
    pids = []
    for path in Path("/proc").glob("[0-9]*/ns/net"):
        try:
            if path.stat().st_ino == inode and linux.pid_alive(int(path.parts[2])):
                pids.append(int(path.parts[2]))
        except OSError:
            continue
    return pids


def test_sockets_open_in_a_node(module_lab: Lab) -> None:
    observer = module_lab.node("observer")
    with observer.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect(("10.200.51.32", 9))
        assert sock.getsockname()[0] == "10.200.51.34"
    assert os.getpid() > 0


def test_nodes_run_this_interpreter_and_checkout(module_lab: Lab) -> None:
    """Programs the lab starts in nodes run this Python on this checkout, even when either
    lives under /tmp, which every node covers with a private tmpfs."""
    import sys

    node = module_lab.node("observer")  # a node whose /tmp no other test of the module writes
    res = node.run([sys.executable, "-c", "import lab, vrrp, sys; print(lab.__file__)"])
    assert res.stdout.strip() == str(Path(__file__).resolve().parents[2] / "lab" / "__init__.py")
    # The private /tmp holds nothing but the way to those directories.
    from lab.node import host_dirs_under_tmp

    exposed = {d.split("/")[2] for d in host_dirs_under_tmp()}
    assert set(node.run("ls -A /tmp").stdout.split()) == exposed
