"""The bundled daemon's VIP requests (vrrp.rtnl) against the real kernel, in a network
namespace of the test's own holding one veth pair: what the kernel answers, and what
``ip address`` then shows."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from ipaddress import ip_interface

import pytest

from lab import linux
from lab.sandbox import read_ready
from vrrp.rtnl import AddressSocket

pytestmark = pytest.mark.lab

#: A veth pair, both ends up: a link with a carrier, where IPv6 runs duplicate address
#: detection (a dummy link is NOARP and would skip it, proving nothing about IFA_F_NODAD).
_NAMESPACE = (
    "ip link add d0 type veth peer name d1 && ip link set d1 up && ip link set d0 up"
    " && echo ready && cat >/dev/null"
)


@pytest.fixture
def namespace() -> Iterator[int]:
    """Name: namespace. Scope: function. Depends: unshare(1), ip(8).

    A process in a new network namespace with the link ``d0`` (a veth, up, its peer too),
    held until the test ends; yields its pid."""
    proc = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", _NAMESPACE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert read_ready(proc, 10.0, "the test namespace") == "ready"
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def _addresses(pid: int) -> dict[str, bool]:
    """``d0``'s addresses in ``pid``'s namespace (``ADDR/LEN``), each with whether it is
    tentative (duplicate address detection still running)."""
    out = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-j", "address", "show", "dev", "d0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    infos = json.loads(out)[0]["addr_info"]
    return {f"{a['local']}/{a['prefixlen']}": a.get("tentative", False) for a in infos}


def test_vips_are_added_and_removed_with_the_kernels_answers(namespace: int) -> None:
    fd = linux.open_namespace(namespace, "net")
    try:
        requests = linux.call_in_netns(fd, AddressSocket)
        index = linux.call_in_netns(fd, lambda: socket.if_nametoindex("d0"))
    finally:
        os.close(fd)
    v4, v6 = ip_interface("192.0.2.10/24"), ip_interface("2001:db8::10/64")
    try:
        assert requests.request("add", index, v4) == 0
        assert requests.request("add", index, v6) == 0
        shown = _addresses(namespace)
        assert shown.get("192.0.2.10/24") is False, shown
        # IFA_F_NODAD: the VIP is usable at once, never tentative.
        assert shown.get("2001:db8::10/64") is False, shown
        assert requests.request("add", index, v4) == errno.EEXIST
        assert requests.request("del", index, v4) == 0
        assert requests.request("del", index, v6) == 0
        assert requests.request("del", index, v4) == errno.EADDRNOTAVAIL
        assert requests.request("add", 999_999, v4) == errno.ENODEV
        assert "192.0.2.10/24" not in _addresses(namespace)
    finally:
        requests.close()
